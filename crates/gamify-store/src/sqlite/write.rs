//! One event, in two steps, inside the writer's transaction.
//!
//! [`plan`] reads and decides (idempotency, the rules) without writing, so any
//! refusal it returns leaves the transaction clean and the rest of the batch
//! unaffected. [`apply`] only writes; if it fails, the writer rolls the whole
//! batch back and retries its requests one by one (see `super::commit_batch`).

use gamify_core::{Day, EventFacts, Points, Rules, apply_event};
use rusqlite::{Connection, OptionalExtension, params};

use super::{backend, read};
use crate::{
    EventRecord, NewEvent, Recorded, StoreError, UserSnapshot, add_to_category,
    encode_achievements, encode_categories, encode_unlocked,
};

/// What a request will do.
pub enum Planned {
    /// Its idempotency key was used before with the same request: answer with
    /// the original, write nothing.
    Replay(Recorded),
    /// A new event to write.
    Write(Box<Plan>),
}

/// A new event, scored, with the user's state after it.
pub struct Plan {
    record: EventRecord,
    after: UserSnapshot,
    idempotency: Option<(String, String)>,
}

impl Plan {
    /// The user's state once this plan is applied.
    pub fn after(&self) -> &UserSnapshot {
        &self.after
    }
}

/// Decides what `event` does, given the user's current state `before`
/// (`None`: no events yet). Writes nothing.
pub fn plan(
    conn: &Connection,
    event: &NewEvent,
    before: Option<UserSnapshot>,
    rules: &Rules,
) -> Result<Planned, StoreError> {
    if let Some(idem) = &event.idempotency {
        let prior: Option<(String, Option<String>)> = conn
            .prepare_cached("SELECT id, request_hash FROM events WHERE idempotency_key = ?1")
            .and_then(|mut s| {
                s.query_row([&idem.key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(backend)?;
        if let Some((id, hash)) = prior {
            if hash.as_deref() != Some(idem.fingerprint.as_str()) {
                return Err(StoreError::IdempotencyConflict);
            }
            let original = read::event_by_id(conn, &id)?
                .ok_or_else(|| StoreError::Corrupt(format!("event {id} vanished")))?;
            return Ok(Planned::Replay(Recorded {
                event: original,
                replayed: true,
            }));
        }
    }

    let mut after = before.unwrap_or_default();
    let facts = EventFacts {
        category: event.category,
        value: event.value,
        day: Day::from_unix_millis(event.occurred_at_ms),
    };
    let scored = apply_event(&mut after.state, &facts, rules)?;
    add_to_category(&mut after.categories, event.category, scored.points)?;
    after.event_count += 1;
    after.version += 1;
    after.last_event_at_ms = Some(
        after
            .last_event_at_ms
            .map_or(event.occurred_at_ms, |t| t.max(event.occurred_at_ms)),
    );

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
    };
    let idempotency = event
        .idempotency
        .as_ref()
        .map(|i| (i.key.clone(), i.fingerprint.clone()));
    Ok(Planned::Write(Box::new(Plan {
        record,
        after,
        idempotency,
    })))
}

/// Writes a plan: the user's new state (category totals included), the event,
/// unlocked achievements and the ledger entries.
pub fn apply(conn: &Connection, plan: &Plan) -> Result<Recorded, StoreError> {
    let (record, after) = (&plan.record, &plan.after);
    let user = record.user_id.as_str();
    let state = &after.state;
    let now = record.created_at_ms;

    // The writer knows whether the user exists (version 1 is its first
    // change), so it inserts or updates without an upsert's second search.
    // The update also checks that the row is at the version the plan started
    // from: if the state the plan used were ever stale, this write fails (and
    // the request with it) instead of overwriting newer points.
    let sql = if after.version == 1 {
        "INSERT INTO users (total_milli, lifetime_milli, best_streak, streak_runs, achievements, event_count,
                            category_totals, last_event_at, version, updated_at, user_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?10)"
    } else {
        "UPDATE users SET total_milli = ?1, lifetime_milli = ?2, best_streak = ?3, streak_runs = ?4,
                          achievements = ?5, event_count = ?6, category_totals = ?7, last_event_at = ?8,
                          version = ?9, updated_at = ?10
         WHERE user_id = ?11 AND version = ?9 - 1"
    };
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.execute(params![
                state.total.milli(),
                state.lifetime.milli(),
                state.best_streak,
                state.runs.encode(),
                encode_achievements(&state.achievements),
                after.event_count,
                encode_categories(&after.categories),
                after.last_event_at_ms,
                after.version,
                now,
                user,
            ])
        })
        .map_err(backend)?;
    if changed != 1 {
        return Err(StoreError::Corrupt(format!(
            "user {user} was not at version {}",
            after.version - 1
        )));
    }

    let (key, hash) = match &plan.idempotency {
        Some((k, h)) => (Some(k.as_str()), Some(h.as_str())),
        None => (None, None),
    };
    conn.prepare_cached(
        "INSERT INTO events (id, user_id, category, action, value_milli, points_milli, weight_milli, streak_day,
                             bonus_percent, unlocked, total_after, lifetime_after, metadata, occurred_at, created_at,
                             idempotency_key, request_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )
    .and_then(|mut s| {
        s.execute(params![
            record.id,
            user,
            record.category.as_str(),
            record.action,
            record.value.milli(),
            record.points.milli(),
            record.weight_milli,
            record.streak_day,
            record.bonus_percent,
            encode_unlocked(&record.unlocked),
            record.total_after.milli(),
            record.lifetime_after.milli(),
            record.metadata,
            record.occurred_at_ms,
            now,
            key,
            hash,
        ])
    })
    .map_err(backend)?;

    // The ledger: the event's points, then each bonus, each with the balance it left.
    let mut ledger = conn
        .prepare_cached(
            "INSERT INTO ledger (user_id, kind, amount_milli, balance_after_milli, lifetime_after_milli, reference, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(backend)?;
    let bonuses: i64 = record.unlocked.iter().map(|(_, b)| b.milli()).sum();
    let mut balance = state.total.milli() - bonuses;
    let mut lifetime = state.lifetime.milli() - bonuses;
    ledger
        .execute(params![
            user,
            "event",
            record.points.milli(),
            balance,
            lifetime,
            record.id,
            now
        ])
        .map_err(backend)?;
    if !record.unlocked.is_empty() {
        let mut unlock = conn
            .prepare_cached(
                "INSERT INTO user_achievements (user_id, achievement_id, event_id, bonus_milli, unlocked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(backend)?;
        for (id, bonus) in &record.unlocked {
            unlock
                .execute(params![user, id.as_str(), record.id, bonus.milli(), now])
                .map_err(backend)?;
            if *bonus > Points::ZERO {
                balance += bonus.milli();
                lifetime += bonus.milli();
                let reference = format!("{}/{}", record.id, id.as_str());
                ledger
                    .execute(params![
                        user,
                        "achievement_bonus",
                        bonus.milli(),
                        balance,
                        lifetime,
                        reference,
                        now
                    ])
                    .map_err(backend)?;
            }
        }
    }
    Ok(Recorded {
        event: record.clone(),
        replayed: false,
    })
}
