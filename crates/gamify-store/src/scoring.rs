//! What every backend does with an event once it holds the user's current
//! state: score it with the rules, and work out the ledger entries it writes.
//! Backends differ in how they lock, read and write; this part is the same.

use gamify_core::{Category, Day, EventFacts, Points, RuleSet, Scored, Value, apply_event};

use crate::economy::LedgerKind;
use crate::{EventRecord, NewEvent, StoreError, UserSnapshot};

/// The user's state after one event, and what the event earned: the rules
/// (the version the event is scored with), plus the counters the store
/// keeps beside them. Used to score a new event and to replay stored ones.
pub fn advance(
    before: Option<UserSnapshot>,
    category: Category,
    value: Value,
    occurred_at_ms: i64,
    rules: &RuleSet,
) -> Result<(UserSnapshot, Scored), StoreError> {
    let mut after = before.unwrap_or_default();
    let facts = EventFacts {
        category,
        value,
        day: Day::from_unix_millis(occurred_at_ms),
    };
    let scored = apply_event(&mut after.state, &facts, rules)?;
    after.event_count += 1;
    after.version += 1;
    after.last_event_at_ms = Some(
        after
            .last_event_at_ms
            .map_or(occurred_at_ms, |t| t.max(occurred_at_ms)),
    );
    Ok((after, scored))
}

/// Scores `event` for a user whose state is `before` (`None`: no events yet)
/// with `rules`, the version `event.rules_version` names: the record to
/// store, and the user's state after it.
pub fn score(
    event: &NewEvent,
    before: Option<UserSnapshot>,
    rules: &RuleSet,
) -> Result<(EventRecord, UserSnapshot), StoreError> {
    let (after, scored) = advance(
        before,
        event.category,
        event.value,
        event.occurred_at_ms,
        rules,
    )?;
    let record = EventRecord {
        id: event.id.clone(),
        user_id: event.user_id.as_str().to_owned(),
        category: event.category,
        action: event.action.as_str().to_owned(),
        value: event.value,
        points: scored.points,
        weight_milli: scored.weight_milli,
        streak_day: scored.streak_day,
        bonus_percent: scored.bonus_percent,
        unlocked: scored.unlocked,
        total_after: after.state.total,
        lifetime_after: after.state.lifetime,
        metadata: event.metadata.clone(),
        occurred_at_ms: event.occurred_at_ms,
        created_at_ms: event.created_at_ms,
        rules_version: event.rules_version,
    };
    Ok((record, after))
}

/// One ledger row: a change to a user's points and the balances it left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// What caused it.
    pub kind: LedgerKind,
    /// The change.
    pub amount: Points,
    /// Spendable balance after it.
    pub balance_after: Points,
    /// Lifetime points after it.
    pub lifetime_after: Points,
    /// What caused it: see [`crate::economy::LedgerRecord::reference`].
    pub reference: String,
    /// The rules version of the event it comes from (an event's points and
    /// bonuses); `None` for entries that do not depend on the rules.
    pub rules_version: Option<u32>,
}

/// The ledger rows a recorded event writes: its own points, then each
/// achievement bonus it paid, in order, each with the balance it left.
pub fn ledger_entries(record: &EventRecord) -> Vec<LedgerEntry> {
    let bonuses: i64 = record.unlocked.iter().map(|(_, b)| b.milli()).sum();
    let mut balance = record.total_after.milli() - bonuses;
    let mut lifetime = record.lifetime_after.milli() - bonuses;
    let mut entries = vec![LedgerEntry {
        kind: LedgerKind::Event,
        amount: record.points,
        balance_after: Points::from_milli(balance),
        lifetime_after: Points::from_milli(lifetime),
        reference: record.id.clone(),
        rules_version: Some(record.rules_version),
    }];
    for (id, bonus) in &record.unlocked {
        if *bonus > Points::ZERO {
            balance += bonus.milli();
            lifetime += bonus.milli();
            entries.push(LedgerEntry {
                kind: LedgerKind::AchievementBonus,
                amount: *bonus,
                balance_after: Points::from_milli(balance),
                lifetime_after: Points::from_milli(lifetime),
                reference: format!("{}/{}", record.id, id.as_str()),
                rules_version: Some(record.rules_version),
            });
        }
    }
    entries
}
