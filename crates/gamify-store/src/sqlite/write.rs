//! One event, in two steps, inside the writer's transaction.
//!
//! [`plan`] reads and decides (idempotency, the rules) without writing, so any
//! refusal it returns leaves the transaction clean and the rest of the batch
//! unaffected. [`apply`] only writes; if it fails, the writer rolls the whole
//! batch back and retries its requests one by one (see `super::commit_batch`).

use gamify_core::Rules;
use rusqlite::{Connection, OptionalExtension, params};

use super::{backend, read};
use crate::{EventRecord, NewEvent, Recorded, StoreError, UserSnapshot, encode_unlocked, scoring};

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

    let (record, after) = scoring::score(event, before, rules)?;
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

/// Appends a plan to the log: the event and its ledger entries. The user's
/// row and the per-user index follow later (see `super::materialize`).
/// Returns the event's `seq`.
pub fn apply(conn: &Connection, plan: &Plan) -> Result<(Recorded, i64), StoreError> {
    let record = &plan.record;
    let user = record.user_id.as_str();
    let now = record.created_at_ms;

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
    let seq = conn.last_insert_rowid();

    // The ledger: the event's points, then each bonus, each with the balance it left.
    let mut ledger = conn
        .prepare_cached(
            "INSERT INTO ledger (user_id, kind, amount_milli, balance_after_milli, lifetime_after_milli, reference, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .map_err(backend)?;
    for entry in scoring::ledger_entries(record) {
        ledger
            .execute(params![
                user,
                entry.kind,
                entry.amount.milli(),
                entry.balance_after.milli(),
                entry.lifetime_after.milli(),
                entry.reference,
                now
            ])
            .map_err(backend)?;
    }
    Ok((
        Recorded {
            event: record.clone(),
            replayed: false,
        },
        seq,
    ))
}
