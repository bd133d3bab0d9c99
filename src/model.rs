//! The JSON the API speaks: requests, responses and the error body. Field
//! names and shapes follow the brief; fields beyond the brief's are additions.
//! Amounts are exact integers inside and become JSON numbers only here.

use std::collections::BTreeMap;

use gamify_core::{AchievementId, CATALOGUE, Points, Requirement, level_for, next_level_points};
use gamify_store::{EventRecord, LeaderRow};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

/// What a user did: the body of `POST /api/v2/gamify/event`, and what an
/// embedder passes to [`crate::Engine::record_event`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// 1–128 characters: ASCII letters, digits and `_ - . : @`.
    #[schema(example = "user_123")]
    pub user_id: String,
    /// One of `finance`, `learning`, `health`, `productivity`, `social`.
    #[schema(example = "finance")]
    pub category: String,
    /// What was done, 1–100 characters.
    #[schema(example = "paid_invoice")]
    pub action: String,
    /// Size of the event: a finite number > 0, at most the configured maximum
    /// (default 1000), kept to three decimals.
    #[schema(example = 2.0)]
    pub value: f64,
    /// Any JSON object, stored and returned as given (at most 4096 bytes).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// When it happened (RFC 3339); defaults to now. At most 5 minutes ahead
    /// and at most the backfill window (default 30 days) behind.
    #[serde(default)]
    #[schema(example = "2025-10-12T10:30:00Z")]
    pub occurred_at: Option<String>,
}

impl EventRequest {
    /// An event with no metadata that occurred now.
    pub fn new(
        user_id: impl Into<String>,
        category: impl Into<String>,
        action: impl Into<String>,
        value: f64,
    ) -> Self {
        EventRequest {
            user_id: user_id.into(),
            category: category.into(),
            action: action.into(),
            value,
            metadata: None,
            occurred_at: None,
        }
    }

    /// With metadata.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// With an explicit time (RFC 3339).
    pub fn occurred_at(mut self, at: impl Into<String>) -> Self {
        self.occurred_at = Some(at.into());
        self
    }
}

/// An achievement an event unlocked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnlockedAchievement {
    /// Achievement id (`streak_3`).
    pub id: String,
    /// Finnish name.
    pub name_fi: String,
    /// English name.
    pub name_en: String,
    /// Bonus points it paid.
    pub bonus_points: f64,
}

/// A recorded event: the brief's fields, then what it earned and changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventResponse {
    /// `evt_`, 12 hex digits of time and 16 random ones.
    #[schema(example = "evt_0199d89d0f8a3c5e7a1b2d4f6e8091a3")]
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The category.
    pub category: String,
    /// The action.
    pub action: String,
    /// The value, to three decimals.
    pub value: f64,
    /// The event's own points: value × weight × (1 + streak bonus).
    /// Achievement bonuses are in `bonus_points`, not here.
    pub points: f64,
    /// When it was recorded (UTC, RFC 3339, milliseconds).
    pub created_at: String,
    /// When it happened (UTC, RFC 3339, milliseconds); decides the streak day.
    pub occurred_at: String,
    /// Metadata as sent.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// The category weight applied.
    pub category_weight: f64,
    /// The streak ending on the event's day, counting it.
    pub streak_day: u32,
    /// The streak bonus applied, as a fraction (0.35 for +35 %).
    pub streak_bonus: f64,
    /// Achievements this event unlocked.
    pub achievements_unlocked: Vec<UnlockedAchievement>,
    /// The sum of their bonuses.
    pub bonus_points: f64,
    /// Spendable balance after this event.
    pub total_points: f64,
    /// Lifetime points after this event.
    pub lifetime_points: f64,
    /// Level after this event.
    pub level: u32,
    /// Whether this event raised the level.
    pub level_up: bool,
}

impl EventResponse {
    /// Renders a stored event.
    pub fn from_record(e: &EventRecord) -> EventResponse {
        let bonus = Points::from_milli(e.unlocked.iter().map(|(_, p)| p.milli()).sum());
        let lifetime_before =
            Points::from_milli(e.lifetime_after.milli() - e.points.milli() - bonus.milli());
        let level = level_for(e.lifetime_after);
        EventResponse {
            id: e.id.clone(),
            user_id: e.user_id.clone(),
            category: e.category.as_str().to_owned(),
            action: e.action.clone(),
            value: e.value.as_points().to_f64(),
            points: e.points.to_f64(),
            created_at: rfc3339_ms(e.created_at_ms),
            occurred_at: rfc3339_ms(e.occurred_at_ms),
            // Stored metadata was serialised by us; a parse failure means a
            // damaged row, which is shown as absent rather than failing reads.
            metadata: e
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
            category_weight: Points::from_milli(e.weight_milli).to_f64(),
            streak_day: e.streak_day,
            streak_bonus: f64::from(e.bonus_percent) / 100.0,
            achievements_unlocked: e
                .unlocked
                .iter()
                .map(|&(id, bonus)| unlocked(id, bonus))
                .collect(),
            bonus_points: bonus.to_f64(),
            total_points: e.total_after.to_f64(),
            lifetime_points: e.lifetime_after.to_f64(),
            level,
            level_up: level > level_for(lifetime_before),
        }
    }
}

fn unlocked(id: AchievementId, bonus: Points) -> UnlockedAchievement {
    let def = id.definition();
    UnlockedAchievement {
        id: def.id_str.to_owned(),
        name_fi: def.name_fi.to_owned(),
        name_en: def.name_en.to_owned(),
        bonus_points: bonus.to_f64(),
    }
}

/// A user's wallet (`GET /api/v2/gamify/balance/{user_id}`). A user with no
/// events reads as zeros at level 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BalanceResponse {
    /// The user.
    pub user_id: String,
    /// Spendable balance.
    pub total_points: f64,
    /// Every point ever earned.
    pub lifetime_points: f64,
    /// The live streak: 0 unless the last active day is today or yesterday (UTC).
    pub streak_days: u32,
    /// The longest streak ever.
    pub best_streak: u32,
    /// The latest `occurred_at`, or null.
    pub last_event: Option<String>,
    /// Level N covers (N−1)×100 ≤ lifetime < N×100.
    pub level: u32,
    /// Lifetime points where the next level starts (level × 100).
    pub next_level_points: f64,
    /// Unlocked achievement ids, in unlock order.
    pub achievements: Vec<String>,
    /// Points that expire within the next 30 days unless spent first
    /// (always 0 while point expiry is off).
    pub expiring_points: f64,
}

/// A user's statistics (`GET /api/v2/gamify/stats/{user_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsResponse {
    /// The user.
    pub user_id: String,
    /// Events recorded.
    pub total_events: u64,
    /// Events per category (categories with none are left out).
    pub events_by_category: BTreeMap<String, u64>,
    /// Event points per category (achievement bonuses belong to none).
    pub points_by_category: BTreeMap<String, f64>,
    /// The longest streak ever.
    pub best_streak: u32,
    /// The live streak, as `streak_days` in the balance.
    pub current_streak: u32,
    /// Unlocked achievement ids, in unlock order.
    pub achievements: Vec<String>,
}

/// One row of the leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeaderboardEntry {
    /// 1-based position; ties in points are ordered by user id.
    pub rank: u64,
    /// The user.
    pub user_id: String,
    /// Points on this board, the ranking key (lifetime points on the
    /// default all-time board).
    pub points: f64,
    /// Lifetime points.
    pub lifetime_points: f64,
    /// Spendable balance.
    pub total_points: f64,
    /// Level.
    pub level: u32,
}

impl From<&LeaderRow> for LeaderboardEntry {
    fn from(row: &LeaderRow) -> Self {
        LeaderboardEntry {
            rank: row.rank,
            user_id: row.user_id.clone(),
            points: row.lifetime.to_f64(),
            lifetime_points: row.lifetime.to_f64(),
            total_points: row.total.to_f64(),
            level: level_for(row.lifetime),
        }
    }
}

/// An entry of the achievement catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AchievementResponse {
    /// Id, as in balances.
    pub id: String,
    /// Finnish name (the brief's).
    pub name_fi: String,
    /// English name.
    pub name_en: String,
    /// What it takes, in Finnish.
    pub description_fi: String,
    /// What it takes, in English.
    pub description_en: String,
    /// `first_event`, `streak_days` or `lifetime_points`.
    pub requirement: String,
    /// Days or points for the requirement; null for `first_event`.
    pub threshold: Option<f64>,
    /// Points paid once on unlock.
    pub bonus_points: f64,
}

/// The whole catalogue, in its fixed order.
pub fn achievement_catalogue() -> Vec<AchievementResponse> {
    CATALOGUE
        .iter()
        .map(|a| {
            let (requirement, threshold) = match a.requirement {
                Requirement::FirstEvent => ("first_event", None),
                Requirement::StreakDays(n) => ("streak_days", Some(f64::from(n))),
                Requirement::LifetimePoints(p) => ("lifetime_points", Some(p.to_f64())),
            };
            AchievementResponse {
                id: a.id_str.to_owned(),
                name_fi: a.name_fi.to_owned(),
                name_en: a.name_en.to_owned(),
                description_fi: a.description_fi.to_owned(),
                description_en: a.description_en.to_owned(),
                requirement: requirement.to_owned(),
                threshold,
                bonus_points: a.bonus.to_f64(),
            }
        })
        .collect()
}

/// Level fields for a lifetime total.
pub(crate) fn level_fields(lifetime: Points) -> (u32, f64) {
    let level = level_for(lifetime);
    (level, next_level_points(level).to_f64())
}

/// Every non-2xx response: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorBody,
}

/// The error itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `validation_failed`, `malformed_json`,
    /// `invalid_query`, `invalid_header`, `idempotency_conflict`, `not_found`,
    /// `method_not_allowed`, `payload_too_large`, `unsupported_media_type`,
    /// `internal`, `unavailable`, `leaderboard_unavailable` (and the others
    /// docs/API.md lists).
    pub code: String,
    /// For people; names the offending field where there is one.
    pub message: String,
    /// One entry per offending field (may be empty).
    pub details: Vec<FieldError>,
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// The field (`value`, `metadata.amount`, `limit`, `Idempotency-Key`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds: `2025-10-12T10:30:00.000Z`.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s, milli) = (t.hour(), t.minute(), t.second(), t.millisecond());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses RFC 3339 into Unix milliseconds (sub-millisecond digits are dropped).
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_render_as_utc_with_milliseconds_and_parse_back() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        let ms = parse_rfc3339_ms("2025-10-12T12:30:00.250+02:00").unwrap();
        assert_eq!(rfc3339_ms(ms), "2025-10-12T10:30:00.250Z");
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }
}
