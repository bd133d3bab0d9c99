//! Rows as every backend stores them, before their encoded columns are
//! decoded: each backend reads its columns into these, and the decoding (and
//! what counts as corrupt) is the same everywhere.

use gamify_core::{Category, Points, StreakRuns, UserState, Value};

use crate::{
    EventRecord, LedgerKind, LedgerRecord, Redemption, RedemptionStatus, StoreError, UserSnapshot,
    corrupt, decode_achievements, decode_categories, decode_unlocked,
};

/// An `events` row.
#[allow(missing_docs)]
#[derive(Clone)]
pub struct StoredEvent {
    pub id: String,
    pub user_id: String,
    pub category: String,
    pub action: String,
    pub value_milli: i64,
    pub points_milli: i64,
    pub weight_milli: i64,
    pub streak_day: u32,
    pub bonus_percent: u32,
    pub unlocked: String,
    pub total_after: i64,
    pub lifetime_after: i64,
    pub metadata: Option<String>,
    pub occurred_at: i64,
    pub created_at: i64,
    pub rules_version: i64,
}

impl StoredEvent {
    /// The record, or [`StoreError::Corrupt`] naming the unreadable column.
    pub fn decode(self) -> Result<EventRecord, StoreError> {
        Ok(EventRecord {
            category: Category::named(&self.category)
                .ok_or_else(|| corrupt("category", &self.category))?,
            rules_version: u32::try_from(self.rules_version)
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| corrupt("rules version", &self.rules_version.to_string()))?,
            unlocked: decode_unlocked(&self.unlocked)?,
            id: self.id,
            user_id: self.user_id,
            action: self.action,
            value: Value::from_milli(self.value_milli),
            points: Points::from_milli(self.points_milli),
            weight_milli: self.weight_milli,
            streak_day: self.streak_day,
            bonus_percent: self.bonus_percent,
            total_after: Points::from_milli(self.total_after),
            lifetime_after: Points::from_milli(self.lifetime_after),
            metadata: self.metadata,
            occurred_at_ms: self.occurred_at,
            created_at_ms: self.created_at,
        })
    }
}

/// A `users` row.
#[allow(missing_docs)]
pub struct StoredUser {
    pub total_milli: i64,
    pub lifetime_milli: i64,
    pub best_streak: u32,
    pub streak_runs: String,
    pub achievements: String,
    pub event_count: u64,
    pub last_event_at: Option<i64>,
    pub version: u64,
    pub category_totals: String,
}

impl StoredUser {
    /// The snapshot, or [`StoreError::Corrupt`] naming the unreadable column.
    pub fn decode(self) -> Result<UserSnapshot, StoreError> {
        Ok(UserSnapshot {
            state: UserState {
                total: Points::from_milli(self.total_milli),
                lifetime: Points::from_milli(self.lifetime_milli),
                best_streak: self.best_streak,
                runs: StreakRuns::decode(&self.streak_runs)
                    .ok_or_else(|| corrupt("streak runs", &self.streak_runs))?,
                achievements: decode_achievements(&self.achievements)?,
                categories: decode_categories(&self.category_totals)?,
            },
            event_count: self.event_count,
            last_event_at_ms: self.last_event_at,
            version: self.version,
        })
    }
}

/// A `ledger` row.
#[allow(missing_docs)]
pub struct StoredLedger {
    pub seq: i64,
    pub user_id: String,
    pub kind: String,
    pub amount_milli: i64,
    pub balance_after_milli: i64,
    pub lifetime_after_milli: i64,
    pub reference: String,
    pub created_at: i64,
    pub rules_version: Option<i64>,
}

impl StoredLedger {
    /// The record, or [`StoreError::Corrupt`] for an unknown kind.
    pub fn decode(self) -> Result<LedgerRecord, StoreError> {
        let kind = LedgerKind::parse(&self.kind)?;
        // Entries written before versions existed carry none: version 1.
        let rules_version = match kind {
            LedgerKind::Event | LedgerKind::AchievementBonus => Some(
                u32::try_from(self.rules_version.unwrap_or(1))
                    .map_err(|_| corrupt("rules version", &format!("{:?}", self.rules_version)))?,
            ),
            _ => None,
        };
        Ok(LedgerRecord {
            seq: self.seq,
            kind,
            rules_version,
            user_id: self.user_id,
            amount: Points::from_milli(self.amount_milli),
            balance_after: Points::from_milli(self.balance_after_milli),
            lifetime_after: Points::from_milli(self.lifetime_after_milli),
            reference: self.reference,
            created_at_ms: self.created_at,
        })
    }
}

/// A `redemptions` row.
#[allow(missing_docs)]
pub struct StoredRedemption {
    pub id: String,
    pub reward_id: String,
    pub user_id: String,
    pub cost_milli: i64,
    pub status: String,
    pub granted_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl StoredRedemption {
    /// The record, or [`StoreError::Corrupt`] for an unknown status.
    pub fn decode(self) -> Result<Redemption, StoreError> {
        Ok(Redemption {
            status: RedemptionStatus::parse(&self.status)
                .ok_or_else(|| corrupt("redemption status", &self.status))?,
            id: self.id,
            reward_id: self.reward_id,
            user_id: self.user_id,
            cost: Points::from_milli(self.cost_milli),
            granted_by: self.granted_by,
            created_at_ms: self.created_at,
            updated_at_ms: self.updated_at,
        })
    }
}
