//! The writer tasks: many requests, one transaction, one commit.
//!
//! A batch is planned in memory once its users' rows are locked and read
//! (see the module docs of `super`). A request refused while planning (a
//! reused idempotency key with another body, a rule) is answered alone and
//! writes nothing, so the rest of the batch goes on. If the database refuses
//! the batch's writes (a unique index caught a key another node used in the
//! meantime, a deadlock it broke), the batch is rolled back and its requests
//! are retried one per transaction, where the committed rows are visible.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use gamify_core::Rules;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Row};
use tokio::sync::{Mutex, mpsc};

use super::queue::{self, Request};
use super::read::{EVENT_COLUMNS, USER_COLUMNS, stored_event, stored_user};
use super::{backend, classify, is_unavailable};
use crate::rows::StoredEvent;
use crate::{
    EventRecord, NewEvent, Recorded, StoreError, UserSnapshot, encode_achievements,
    encode_categories, encode_unlocked, scoring,
};

/// One request to record an event.
pub type Job = Request<NewEvent, Recorded>;

/// How often a request is tried on its own before its error is final.
const SOLO_ATTEMPTS: usize = 3;

/// Takes batches off the shared queue and commits them until the queue
/// closes. Keeps one connection between batches; drops it after an error
/// that says it is broken, and opens another for the next batch.
pub async fn writer(pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<Job>>>, rules: Arc<Rules>) {
    let mut held: Option<PoolConnection<Postgres>> = None;
    while let Some(mut jobs) = queue::next_batch(&queue).await {
        let Some(mut conn) = queue::connection(&mut held, &pool, &mut jobs).await else {
            continue;
        };
        if commit_jobs(&mut conn, jobs, &rules).await {
            held = Some(conn);
        } else {
            conn.close_on_drop();
        }
    }
}

/// Commits `jobs` and answers each. Returns whether the connection is still
/// usable.
async fn commit_jobs(conn: &mut PgConnection, jobs: Vec<Job>, rules: &Rules) -> bool {
    let events: Vec<&NewEvent> = jobs.iter().map(|j| &j.payload).collect();
    match commit(conn, &events, rules).await {
        Ok(outcomes) => {
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
            return true;
        }
        Err(e) if is_unavailable(&e) => {
            queue::fail_all(jobs, &classify(e));
            return false;
        }
        Err(e) => {
            tracing::debug!(error = %e, batch = jobs.len(), "batch refused; retrying its requests one by one");
        }
    }
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        let mut last = None;
        for _ in 0..SOLO_ATTEMPTS {
            match commit(conn, &[&job.payload], rules).await {
                Ok(mut outcomes) => {
                    last = outcomes.pop();
                    break;
                }
                Err(e) if is_unavailable(&e) => {
                    // The connection is gone: this request and the ones not
                    // yet retried all get the same answer.
                    queue::fail_all(std::iter::once(job).chain(jobs), &classify(e));
                    return false;
                }
                // Another transaction committed the same idempotency key
                // between our check and our insert, or a deadlock was broken:
                // the next attempt sees the committed row.
                Err(e) if is_retryable(&e) => last = Some(Err(backend(e))),
                Err(e) => {
                    last = Some(Err(backend(e)));
                    break;
                }
            }
        }
        let _ = job
            .reply
            .send(last.unwrap_or(Err(StoreError::Unavailable("the writer lost a request"))));
    }
    true
}

fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("40001" | "40P01") => true,
            Some("23505") => db.constraint() == Some("events_by_idempotency_key"),
            _ => false,
        },
        _ => false,
    }
}

/// What planning decided for one request.
enum Outcome {
    /// Answered without writing: a replay of a stored event, or a refusal.
    Done(Result<Recorded, StoreError>),
    /// The `n`th record written by this batch.
    New(usize),
    /// A repeat, within this batch, of the `n`th record's request.
    RepeatOf(usize),
}

/// Records `events` in one transaction; one outcome per event, in order. An
/// `Err` means the transaction was rolled back and nothing was written.
async fn commit(
    conn: &mut PgConnection,
    events: &[&NewEvent],
    rules: &Rules,
) -> Result<Vec<Result<Recorded, StoreError>>, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;

    // Lock every user's row, creating it if missing, in user id order.
    let users: Vec<&str> = events
        .iter()
        .map(|e| e.user_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let now = events.iter().map(|e| e.created_at_ms).max().unwrap_or(0);
    let locked = sqlx::query(&format!(
        "INSERT INTO users (user_id, created_at, updated_at)
         SELECT u, $2, $2 FROM unnest($1::text[]) AS t(u) ORDER BY u COLLATE \"C\"
         ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
         RETURNING user_id, {USER_COLUMNS}"
    ))
    .bind(&users)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut states: HashMap<String, UserSnapshot> = HashMap::with_capacity(locked.len());
    for row in &locked {
        let user: String = row.try_get(0)?;
        let snapshot = stored_user(row, 1)?.decode().map_err(protocol)?;
        states.insert(user, snapshot);
    }

    // The idempotency keys already used, now that no one else can write
    // these users (a key reused for another user is caught by the index).
    let keys: Vec<&str> = events
        .iter()
        .filter_map(|e| e.idempotency.as_ref().map(|i| i.key.as_str()))
        .collect();
    let mut used: HashMap<String, (Option<String>, StoredEvent)> = HashMap::new();
    if !keys.is_empty() {
        let rows = sqlx::query(&format!(
            "SELECT idempotency_key, request_hash, {EVENT_COLUMNS} FROM events
             WHERE idempotency_key = ANY($1::text[])"
        ))
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            used.insert(row.try_get(0)?, (row.try_get(1)?, stored_event(row, 2)?));
        }
    }

    // Plan in arrival order.
    let mut outcomes = Vec::with_capacity(events.len());
    let mut records: Vec<(EventRecord, Option<(&str, &str)>)> = Vec::new();
    let mut new_keys: HashMap<&str, (&str, usize)> = HashMap::new();
    let mut new_ids: HashSet<&str> = HashSet::new();
    for event in events {
        if let Some(idem) = &event.idempotency {
            if let Some((hash, original)) = used.get(&idem.key) {
                let outcome = if hash.as_deref() == Some(idem.fingerprint.as_str()) {
                    original.clone().decode().map(|event| Recorded {
                        event,
                        replayed: true,
                    })
                } else {
                    Err(StoreError::IdempotencyConflict)
                };
                outcomes.push(Outcome::Done(outcome));
                continue;
            }
            if let Some(&(fingerprint, n)) = new_keys.get(idem.key.as_str()) {
                outcomes.push(if fingerprint == idem.fingerprint {
                    Outcome::RepeatOf(n)
                } else {
                    Outcome::Done(Err(StoreError::IdempotencyConflict))
                });
                continue;
            }
        }
        if !new_ids.insert(event.id.as_str()) {
            outcomes.push(Outcome::Done(Err(StoreError::Backend(
                format!("event id {} was used twice in one batch", event.id).into(),
            ))));
            continue;
        }
        let user = event.user_id.as_str();
        let before = states.get(user).cloned();
        match scoring::score(event, before, rules) {
            Ok((record, after)) => {
                states.insert(user.to_owned(), after);
                let idem = event
                    .idempotency
                    .as_ref()
                    .map(|i| (i.key.as_str(), i.fingerprint.as_str()));
                if let Some((key, fingerprint)) = idem {
                    new_keys.insert(key, (fingerprint, records.len()));
                }
                outcomes.push(Outcome::New(records.len()));
                records.push((record, idem));
            }
            Err(e) => outcomes.push(Outcome::Done(Err(e))),
        }
    }

    let written: BTreeSet<&str> = records.iter().map(|(r, _)| r.user_id.as_str()).collect();
    if !records.is_empty() {
        write_records(&mut tx, &records, &states, &written, now).await?;
    }
    // Rows created above for users whose every request was refused.
    let unused: Vec<&str> = users
        .iter()
        .copied()
        .filter(|u| !written.contains(u))
        .collect();
    if !unused.is_empty() {
        sqlx::query("DELETE FROM users WHERE user_id = ANY($1::text[]) AND version = 0")
            .bind(&unused)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;

    Ok(outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Done(result) => result,
            Outcome::New(n) => Ok(Recorded {
                event: records[n].0.clone(),
                replayed: false,
            }),
            Outcome::RepeatOf(n) => Ok(Recorded {
                event: records[n].0.clone(),
                replayed: true,
            }),
        })
        .collect())
}

/// A stored value this binary cannot read, as a query error (it aborts the
/// transaction like one).
fn protocol(e: StoreError) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// Writes the batch's events, their ledger rows and the users' new state in
/// one statement (one round trip): two data-modifying CTEs and an upsert.
async fn write_records(
    tx: &mut PgConnection,
    records: &[(EventRecord, Option<(&str, &str)>)],
    states: &HashMap<String, UserSnapshot>,
    written: &BTreeSet<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let n = records.len();
    let mut id = Vec::with_capacity(n);
    let mut user = Vec::with_capacity(n);
    let mut category = Vec::with_capacity(n);
    let mut action = Vec::with_capacity(n);
    let mut value = Vec::with_capacity(n);
    let mut points = Vec::with_capacity(n);
    let mut weight = Vec::with_capacity(n);
    let mut streak_day = Vec::with_capacity(n);
    let mut bonus = Vec::with_capacity(n);
    let mut unlocked = Vec::with_capacity(n);
    let mut total_after = Vec::with_capacity(n);
    let mut lifetime_after = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut occurred_at = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    let mut key = Vec::with_capacity(n);
    let mut hash = Vec::with_capacity(n);
    let mut l_user = Vec::with_capacity(n);
    let mut l_kind = Vec::with_capacity(n);
    let mut l_amount = Vec::with_capacity(n);
    let mut l_balance = Vec::with_capacity(n);
    let mut l_lifetime = Vec::with_capacity(n);
    let mut l_reference = Vec::with_capacity(n);
    let mut l_created = Vec::with_capacity(n);
    for (r, idem) in records {
        id.push(r.id.as_str());
        user.push(r.user_id.as_str());
        category.push(r.category.as_str());
        action.push(r.action.as_str());
        value.push(r.value.milli());
        points.push(r.points.milli());
        weight.push(r.weight_milli);
        streak_day.push(r.streak_day as i32);
        bonus.push(r.bonus_percent as i32);
        unlocked.push(encode_unlocked(&r.unlocked));
        total_after.push(r.total_after.milli());
        lifetime_after.push(r.lifetime_after.milli());
        metadata.push(r.metadata.as_deref());
        occurred_at.push(r.occurred_at_ms);
        created_at.push(r.created_at_ms);
        key.push(idem.map(|(k, _)| k));
        hash.push(idem.map(|(_, h)| h));
        for entry in scoring::ledger_entries(r) {
            l_user.push(r.user_id.as_str());
            l_kind.push(entry.kind);
            l_amount.push(entry.amount.milli());
            l_balance.push(entry.balance_after.milli());
            l_lifetime.push(entry.lifetime_after.milli());
            l_reference.push(entry.reference);
            l_created.push(r.created_at_ms);
        }
    }
    let mut u_user = Vec::with_capacity(written.len());
    let mut u_total = Vec::with_capacity(written.len());
    let mut u_lifetime = Vec::with_capacity(written.len());
    let mut u_best = Vec::with_capacity(written.len());
    let mut u_runs = Vec::with_capacity(written.len());
    let mut u_achievements = Vec::with_capacity(written.len());
    let mut u_count = Vec::with_capacity(written.len());
    let mut u_categories = Vec::with_capacity(written.len());
    let mut u_last = Vec::with_capacity(written.len());
    let mut u_version = Vec::with_capacity(written.len());
    for &who in written {
        let Some(s) = states.get(who) else { continue };
        u_user.push(who);
        u_total.push(s.state.total.milli());
        u_lifetime.push(s.state.lifetime.milli());
        u_best.push(s.state.best_streak as i32);
        u_runs.push(s.state.runs.encode());
        u_achievements.push(encode_achievements(&s.state.achievements));
        u_count.push(s.event_count as i64);
        u_categories.push(encode_categories(&s.categories));
        u_last.push(s.last_event_at_ms);
        u_version.push(s.version as i64);
    }
    // The users part is an upsert rather than UPDATE … FROM unnest: every
    // row exists (locked above), and the conflict path finds each through
    // the primary key, where a join's plan can turn into a scan of the whole
    // table (measured: it did, and cost half the throughput).
    sqlx::query(
        "WITH new_events AS (
             INSERT INTO events (id, user_id, category, action, value_milli, points_milli, weight_milli,
                                 streak_day, bonus_percent, unlocked, total_after, lifetime_after, metadata,
                                 occurred_at, created_at, idempotency_key, request_hash)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                                  $7::int8[], $8::int4[], $9::int4[], $10::text[], $11::int8[], $12::int8[],
                                  $13::text[], $14::int8[], $15::int8[], $16::text[], $17::text[])
         ), new_ledger AS (
             INSERT INTO ledger (user_id, kind, amount_milli, balance_after_milli, lifetime_after_milli,
                                 reference, created_at)
             SELECT * FROM unnest($18::text[], $19::text[], $20::int8[], $21::int8[], $22::int8[],
                                  $23::text[], $24::int8[])
         )
         INSERT INTO users (user_id, total_milli, lifetime_milli, best_streak, streak_runs, achievements,
                            event_count, category_totals, last_event_at, version, created_at, updated_at)
         SELECT n.*, $35, $35
         FROM unnest($25::text[], $26::int8[], $27::int8[], $28::int4[], $29::text[], $30::text[],
                     $31::int8[], $32::text[], $33::int8[], $34::int8[]) AS n
         ON CONFLICT (user_id) DO UPDATE SET total_milli = EXCLUDED.total_milli,
                lifetime_milli = EXCLUDED.lifetime_milli, best_streak = EXCLUDED.best_streak,
                streak_runs = EXCLUDED.streak_runs, achievements = EXCLUDED.achievements,
                event_count = EXCLUDED.event_count, category_totals = EXCLUDED.category_totals,
                last_event_at = EXCLUDED.last_event_at, version = EXCLUDED.version,
                updated_at = EXCLUDED.updated_at",
    )
    .bind(id)
    .bind(user)
    .bind(category)
    .bind(action)
    .bind(value)
    .bind(points)
    .bind(weight)
    .bind(streak_day)
    .bind(bonus)
    .bind(unlocked)
    .bind(total_after)
    .bind(lifetime_after)
    .bind(metadata)
    .bind(occurred_at)
    .bind(created_at)
    .bind(key)
    .bind(hash)
    .bind(l_user)
    .bind(l_kind)
    .bind(l_amount)
    .bind(l_balance)
    .bind(l_lifetime)
    .bind(l_reference)
    .bind(l_created)
    .bind(u_user)
    .bind(u_total)
    .bind(u_lifetime)
    .bind(u_best)
    .bind(u_runs)
    .bind(u_achievements)
    .bind(u_count)
    .bind(u_categories)
    .bind(u_last)
    .bind(u_version)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
