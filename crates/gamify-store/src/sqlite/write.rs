//! One event, inside the writer's transaction.

use gamify_core::{Day, EventFacts, Points, Rules, apply_event};
use rusqlite::{Connection, OptionalExtension, params};

use super::{backend, read};
use crate::{EventRecord, NewEvent, Recorded, StoreError, encode_achievements, encode_unlocked};

/// Scores `event` against the user's stored state and writes the outcome:
/// the event, the user's new state, unlocked achievements, category totals
/// and ledger entries. The caller's savepoint makes it all-or-nothing.
pub fn record(conn: &Connection, event: &NewEvent, rules: &Rules) -> Result<Recorded, StoreError> {
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
            return Ok(Recorded {
                event: original,
                replayed: true,
            });
        }
    }

    let user = event.user_id.as_str();
    let mut snapshot = read::user(conn, &event.user_id)?.unwrap_or_default();
    let facts = EventFacts {
        category: event.category,
        value: event.value,
        day: Day::from_unix_millis(event.occurred_at_ms),
    };
    let scored = apply_event(&mut snapshot.state, &facts, rules)?;
    let state = &snapshot.state;
    let last_event_at = snapshot
        .last_event_at_ms
        .map_or(event.occurred_at_ms, |t| t.max(event.occurred_at_ms));
    let now = event.created_at_ms;

    conn.prepare_cached(
        "INSERT INTO users (user_id, total_milli, lifetime_milli, best_streak, streak_runs, achievements,
                            event_count, last_event_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?8)
         ON CONFLICT (user_id) DO UPDATE SET
            total_milli = excluded.total_milli, lifetime_milli = excluded.lifetime_milli,
            best_streak = excluded.best_streak, streak_runs = excluded.streak_runs,
            achievements = excluded.achievements, event_count = users.event_count + 1,
            last_event_at = excluded.last_event_at, updated_at = excluded.updated_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            user,
            state.total.milli(),
            state.lifetime.milli(),
            state.best_streak,
            state.runs.encode(),
            encode_achievements(&state.achievements),
            last_event_at,
            now,
        ])
    })
    .map_err(backend)?;

    let record = EventRecord {
        id: event.id.clone(),
        user_id: user.to_owned(),
        category: event.category,
        action: event.action.as_str().to_owned(),
        value: event.value,
        points: scored.points,
        weight_milli: scored.weight_milli,
        streak_day: scored.streak_day,
        bonus_percent: scored.bonus_percent,
        unlocked: scored.unlocked.clone(),
        total_after: state.total,
        lifetime_after: state.lifetime,
        metadata: event.metadata.clone(),
        occurred_at_ms: event.occurred_at_ms,
        created_at_ms: now,
    };
    let (key, hash) = match &event.idempotency {
        Some(i) => (Some(i.key.as_str()), Some(i.fingerprint.as_str())),
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

    conn.prepare_cached(
        "INSERT INTO user_categories (user_id, category, events, points_milli) VALUES (?1, ?2, 1, ?3)
         ON CONFLICT (user_id, category) DO UPDATE SET
            events = events + 1, points_milli = points_milli + excluded.points_milli",
    )
    .and_then(|mut s| s.execute(params![user, record.category.as_str(), record.points.milli()]))
    .map_err(backend)?;

    // The ledger: the event's points, then each bonus, each with the balance it left.
    let mut ledger = conn
        .prepare_cached(
            "INSERT INTO ledger (user_id, kind, amount_milli, balance_after_milli, lifetime_after_milli, reference, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(backend)?;
    let bonuses = scored.bonus_points();
    let mut balance = state.total.milli() - bonuses.milli();
    let mut lifetime = state.lifetime.milli() - bonuses.milli();
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
    let mut unlock = conn
        .prepare_cached(
            "INSERT INTO user_achievements (user_id, achievement_id, event_id, bonus_milli, unlocked_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(backend)?;
    for (id, bonus) in &scored.unlocked {
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
    Ok(Recorded {
        event: record,
        replayed: false,
    })
}
