//! Queries, and the reader tasks that answer user lookups in batches.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres, Row};
use tokio::sync::{Mutex, mpsc};

use super::queue::{self, Request};
use super::{backend, classify, is_unavailable};
use crate::export::{
    After, ERASURE_COLUMNS, ExportFilter, ExportedEvent, ExportedMovement, ExportedRedemption,
    Page, Table, erasure_from,
};
use crate::rows::{StoredEvent, StoredLedger, StoredRedemption, StoredUser};
use crate::{
    EventPage, LeaderRow, LedgerPage, Movement, MovementKind, Redemption, RedemptionStatus, Reward,
    RewardDraft, StoreError, UserSnapshot,
};
use gamify_core::Points;

/// The `users` columns [`stored_user`] reads, in its order.
pub const USER_COLUMNS: &str =
    "total_milli, lifetime_milli, best_streak, streak_runs, achievements, event_count,
    last_event_at, version, category_totals";

/// The `events` columns [`stored_event`] reads, in its order.
pub const EVENT_COLUMNS: &str =
    "id, user_id, category, action, value_milli, points_milli, weight_milli, streak_day,
    bonus_percent, unlocked, total_after, lifetime_after, metadata, occurred_at, created_at, rules_version";

/// A `users` row from [`USER_COLUMNS`], starting at column `at`.
pub fn stored_user(row: &PgRow, at: usize) -> Result<StoredUser, sqlx::Error> {
    Ok(StoredUser {
        total_milli: row.try_get(at)?,
        lifetime_milli: row.try_get(at + 1)?,
        best_streak: row.try_get::<i32, _>(at + 2)? as u32,
        streak_runs: row.try_get(at + 3)?,
        achievements: row.try_get(at + 4)?,
        event_count: row.try_get::<i64, _>(at + 5)? as u64,
        last_event_at: row.try_get(at + 6)?,
        version: row.try_get::<i64, _>(at + 7)? as u64,
        category_totals: row.try_get(at + 8)?,
    })
}

/// How many columns [`EVENT_COLUMNS`] names.
pub const EVENT_COLUMN_COUNT: usize = 16;

/// An `events` row from [`EVENT_COLUMNS`], starting at column `at`.
pub fn stored_event(row: &PgRow, at: usize) -> Result<StoredEvent, sqlx::Error> {
    Ok(StoredEvent {
        id: row.try_get(at)?,
        user_id: row.try_get(at + 1)?,
        category: row.try_get(at + 2)?,
        action: row.try_get(at + 3)?,
        value_milli: row.try_get(at + 4)?,
        points_milli: row.try_get(at + 5)?,
        weight_milli: row.try_get(at + 6)?,
        streak_day: row.try_get::<i32, _>(at + 7)? as u32,
        bonus_percent: row.try_get::<i32, _>(at + 8)? as u32,
        unlocked: row.try_get(at + 9)?,
        total_after: row.try_get(at + 10)?,
        lifetime_after: row.try_get(at + 11)?,
        metadata: row.try_get(at + 12)?,
        occurred_at: row.try_get(at + 13)?,
        created_at: row.try_get(at + 14)?,
        rules_version: i64::from(row.try_get::<i32, _>(at + EVENT_COLUMN_COUNT - 1)?),
    })
}

/// One request for a user's state (by id): `None` for a user with no events.
pub type Lookup = Request<String, Option<Arc<UserSnapshot>>>;

/// Answers lookups off the shared queue, all those waiting with one query,
/// until the queue closes.
pub async fn reader(pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<Lookup>>>) {
    let mut held: Option<PoolConnection<Postgres>> = None;
    while let Some(mut lookups) = queue::next_batch(&queue).await {
        let Some(mut conn) = queue::connection(&mut held, &pool, &mut lookups).await else {
            continue;
        };
        let ids: Vec<&str> = lookups.iter().map(|l| l.payload.as_str()).collect();
        match users(&mut conn, &ids).await {
            Ok(found) => {
                for l in lookups {
                    let answer = match found.get(&l.payload) {
                        Some(Ok(snapshot)) => Ok(Some(snapshot.clone())),
                        Some(Err(e)) => Err(StoreError::Corrupt(e.to_string())),
                        None => Ok(None),
                    };
                    let _ = l.reply.send(answer);
                }
                held = Some(conn);
            }
            Err(e) => {
                let broken = is_unavailable(&e);
                queue::fail_all(lookups, &classify(e));
                if broken {
                    conn.close_on_drop();
                } else {
                    held = Some(conn);
                }
            }
        }
    }
}

type Found = HashMap<String, Result<Arc<UserSnapshot>, StoreError>>;

/// The users among `ids` that have events, by id.
async fn users(conn: &mut PgConnection, ids: &[&str]) -> Result<Found, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT user_id, {USER_COLUMNS} FROM users WHERE user_id = ANY($1::text[]) AND version > 0"
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let id: String = row.try_get(0)?;
        found.insert(id, stored_user(row, 1)?.decode().map(Arc::new));
    }
    Ok(found)
}

/// A page of the user's events, newest `occurred_at` first (ties by arrival,
/// newest first), older than the event `before` names.
pub async fn events(
    conn: &mut PgConnection,
    user_id: &str,
    limit: u32,
    before: Option<&str>,
) -> Result<EventPage, StoreError> {
    let position: (i64, i64) = match before {
        None => (i64::MAX, i64::MAX),
        Some(id) => {
            let row =
                sqlx::query("SELECT occurred_at, seq FROM events WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(classify)?
                    .ok_or(StoreError::UnknownCursor)?;
            (
                row.try_get(0).map_err(backend)?,
                row.try_get(1).map_err(backend)?,
            )
        }
    };
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE user_id = $1 AND (occurred_at, seq) < ($2, $3)
         ORDER BY occurred_at DESC, seq DESC LIMIT $4"
    ))
    .bind(user_id)
    .bind(position.0)
    .bind(position.1)
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    let mut events = Vec::with_capacity(rows.len());
    for row in &rows {
        events.push(stored_event(row, 0).map_err(backend)?.decode()?);
    }
    Ok(EventPage::from_overfetch(events, limit))
}

/// The top `limit` users by lifetime points, ties by user id.
pub async fn leaderboard(
    conn: &mut PgConnection,
    limit: u32,
) -> Result<Vec<LeaderRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT user_id, lifetime_milli, total_milli FROM users u
         WHERE version > 0 AND NOT EXISTS (SELECT 1 FROM hidden_users h WHERE h.user_id = u.user_id)
         ORDER BY lifetime_milli DESC, user_id LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    rows.iter()
        .enumerate()
        .map(|(i, row)| {
            Ok(LeaderRow {
                rank: i as u64 + 1,
                user_id: row.try_get(0).map_err(backend)?,
                lifetime: Points::from_milli(row.try_get(1).map_err(backend)?),
                total: Points::from_milli(row.try_get(2).map_err(backend)?),
            })
        })
        .collect()
}

/// The `rewards` columns [`reward`] reads, in its order.
pub const REWARD_COLUMNS: &str =
    "id, name_fi, name_en, description, cost_milli, stock, per_user_limit,
    available_from, available_until, active, updated_at, redeemed, created_at, erased_units";

/// A reward from [`REWARD_COLUMNS`].
pub fn reward(row: &PgRow) -> Result<Reward, sqlx::Error> {
    let count = |i: usize| -> Result<Option<u32>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(i)?.map(|n| n as u32))
    };
    Ok(Reward {
        draft: RewardDraft {
            id: row.try_get(0)?,
            name_fi: row.try_get(1)?,
            name_en: row.try_get(2)?,
            description: row.try_get(3)?,
            cost: Points::from_milli(row.try_get(4)?),
            stock: count(5)?,
            per_user_limit: count(6)?,
            available_from_ms: row.try_get(7)?,
            available_until_ms: row.try_get(8)?,
            active: row.try_get(9)?,
            saved_at_ms: row.try_get(10)?,
        },
        redeemed: row.try_get::<i64, _>(11)? as u32,
        created_at_ms: row.try_get(12)?,
        erased_units: row.try_get::<i64, _>(13)? as u32,
    })
}

/// The whole catalogue, by id.
pub async fn rewards(conn: &mut PgConnection) -> Result<Vec<Reward>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {REWARD_COLUMNS} FROM rewards ORDER BY id"))
        .fetch_all(&mut *conn)
        .await
        .map_err(classify)?;
    rows.iter().map(|r| reward(r).map_err(backend)).collect()
}

/// The `redemptions` columns [`redemption`] reads, in its order.
pub const REDEMPTION_COLUMNS: &str =
    "id, reward_id, user_id, cost_milli, status, granted_by, created_at, updated_at";

/// A redemption from [`REDEMPTION_COLUMNS`], starting at column `at`.
pub fn redemption(row: &PgRow, at: usize) -> Result<Redemption, sqlx::Error> {
    StoredRedemption {
        id: row.try_get(at)?,
        reward_id: row.try_get(at + 1)?,
        user_id: row.try_get(at + 2)?,
        cost_milli: row.try_get(at + 3)?,
        status: row.try_get(at + 4)?,
        granted_by: row.try_get(at + 5)?,
        created_at: row.try_get(at + 6)?,
        updated_at: row.try_get(at + 7)?,
    }
    .decode()
    .map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// Redemptions newest first, filtered.
pub async fn redemptions(
    conn: &mut PgConnection,
    user_id: Option<&str>,
    status: Option<RedemptionStatus>,
    limit: u32,
    before: Option<&str>,
) -> Result<Vec<Redemption>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions
         WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(user_id)
    .bind(status.map(|s| s.as_str()))
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    rows.iter()
        .map(|r| redemption(r, 0).map_err(backend))
        .collect()
}

/// The `movements` columns [`movement`] reads, in its order.
pub const MOVEMENT_COLUMNS: &str =
    "id, user_id, kind, amount_milli, reason, metadata, balance_after,
    lifetime_after, created_at";

/// A movement from [`MOVEMENT_COLUMNS`], starting at column `at`.
pub fn movement(row: &PgRow, at: usize) -> Result<Movement, sqlx::Error> {
    let kind: String = row.try_get(at + 2)?;
    Ok(Movement {
        id: row.try_get(at)?,
        user_id: row.try_get(at + 1)?,
        kind: MovementKind::parse(&kind).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        amount: Points::from_milli(row.try_get(at + 3)?),
        reason: row.try_get(at + 4)?,
        metadata: row.try_get(at + 5)?,
        balance_after: Points::from_milli(row.try_get(at + 6)?),
        lifetime_after: Points::from_milli(row.try_get(at + 7)?),
        created_at_ms: row.try_get(at + 8)?,
    })
}

/// A page of the user's ledger, newest first.
pub async fn ledger(
    conn: &mut PgConnection,
    user_id: &str,
    limit: u32,
    before: Option<i64>,
) -> Result<LedgerPage, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, user_id, kind, amount_milli, balance_after_milli, lifetime_after_milli, reference,
                created_at, rules_version
         FROM ledger WHERE user_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
    )
    .bind(user_id)
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    let mut entries = Vec::with_capacity(rows.len());
    for row in &rows {
        entries.push(ledger_row(row).map_err(backend)?.decode()?);
    }
    Ok(LedgerPage::from_overfetch(entries, limit))
}

/// Runs every check of [`crate::verify`] on one snapshot.
pub async fn verify(conn: &mut PgConnection) -> Result<Vec<crate::Finding>, StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(classify)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    // A full scan of a large ledger may outlast the request timeout.
    sqlx::query("SET LOCAL statement_timeout = 0")
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    let mut findings = Vec::new();
    for (_, sql) in crate::verify::checks() {
        for row in sqlx::query(&sql)
            .fetch_all(&mut *tx)
            .await
            .map_err(classify)?
        {
            findings.push(crate::Finding {
                subject: row.try_get(0).map_err(backend)?,
                message: row.try_get(1).map_err(backend)?,
            });
        }
    }
    // Ended here rather than when the connection is next used: an open
    // snapshot holds locks that would make DDL (a migration) wait.
    tx.rollback().await.map_err(classify)?;
    Ok(findings)
}

/// The points credited to the user at or after `since_ms`.
pub async fn credited_since(
    conn: &mut PgConnection,
    user_id: &str,
    since_ms: i64,
) -> Result<Points, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT coalesce(sum(amount_milli), 0)::int8 FROM ledger
         WHERE user_id = $1 AND created_at >= $2 AND {}",
        crate::economy::CREDIT_SQL
    ))
    .bind(user_id)
    .bind(since_ms)
    .fetch_one(&mut *conn)
    .await
    .map_err(classify)?;
    Ok(Points::from_milli(row.try_get(0).map_err(backend)?))
}

/// Users holding points, by id, after `after`.
pub async fn users_where(
    conn: &mut PgConnection,
    filter: crate::UserFilter,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT user_id FROM users WHERE {} AND user_id > $1 ORDER BY user_id LIMIT $2",
        filter.sql()
    ))
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    rows.iter().map(|r| r.try_get(0).map_err(backend)).collect()
}

/// One page of one table for an export, in the table's export order.
pub async fn export_page(
    conn: &mut PgConnection,
    table: Table,
    after: &After,
    filter: &ExportFilter,
    limit: u32,
) -> Result<Page, StoreError> {
    let seq = match after {
        After::Seq(n) => *n,
        _ => 0,
    };
    let id = match after {
        After::Id(id) => id.as_str(),
        _ => "",
    };
    let user = filter.user_id();
    let (from, to) = filter.bounds();
    let history = |columns: &str, table: &str, time: &str| {
        format!(
            "SELECT seq, {columns}, idempotency_key, request_hash FROM {table}
             WHERE seq > $1 AND ($2::text IS NULL OR user_id = $2) AND {time} >= $3 AND {time} < $4
             ORDER BY seq LIMIT $5"
        )
    };
    let bounds = (seq, user, from, to, i64::from(limit));
    let keyed = |row: &PgRow, at: usize| -> Result<Option<(String, String)>, sqlx::Error> {
        let key: Option<String> = row.try_get(at)?;
        let hash: Option<String> = row.try_get(at + 1)?;
        Ok(key.zip(hash))
    };
    let page = match table {
        Table::Rewards => {
            let rows = sqlx::query(&format!(
                "SELECT {REWARD_COLUMNS} FROM rewards WHERE id > $1 ORDER BY id LIMIT $2"
            ))
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(classify)?;
            Page::Rewards(
                rows.iter()
                    .map(|r| reward(r).map_err(backend))
                    .collect::<Result<_, _>>()?,
            )
        }
        Table::Users => {
            let rows = sqlx::query(&format!(
                "SELECT user_id, {USER_COLUMNS} FROM users
                 WHERE version > 0 AND user_id > $1 AND ($2::text IS NULL OR user_id = $2)
                 ORDER BY user_id LIMIT $3"
            ))
            .bind(id)
            .bind(user)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(classify)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push((
                    row.try_get(0).map_err(backend)?,
                    stored_user(row, 1).map_err(backend)?.decode()?,
                ));
            }
            Page::Users(out)
        }
        Table::Events => {
            let rows = fetch_history(
                conn,
                &history(EVENT_COLUMNS, "events", "occurred_at"),
                bounds,
            )
            .await
            .map_err(classify)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(ExportedEvent {
                    seq: row.try_get(0).map_err(backend)?,
                    record: stored_event(row, 1).map_err(backend)?.decode()?,
                    idempotency: keyed(row, 1 + EVENT_COLUMN_COUNT).map_err(backend)?,
                });
            }
            Page::Events(out)
        }
        Table::Movements => {
            let rows = fetch_history(
                conn,
                &history(MOVEMENT_COLUMNS, "movements", "created_at"),
                bounds,
            )
            .await
            .map_err(classify)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(ExportedMovement {
                    seq: row.try_get(0).map_err(backend)?,
                    movement: movement(row, 1).map_err(backend)?,
                    idempotency: keyed(row, 10).map_err(backend)?,
                });
            }
            Page::Movements(out)
        }
        Table::Redemptions => {
            let rows = fetch_history(
                conn,
                &history(REDEMPTION_COLUMNS, "redemptions", "created_at"),
                bounds,
            )
            .await
            .map_err(classify)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(ExportedRedemption {
                    seq: row.try_get(0).map_err(backend)?,
                    redemption: redemption(row, 1).map_err(backend)?,
                    idempotency: keyed(row, 9).map_err(backend)?,
                });
            }
            Page::Redemptions(out)
        }
        Table::Ledger => {
            let rows = fetch_history(
                conn,
                "SELECT seq, user_id, kind, amount_milli, balance_after_milli, lifetime_after_milli,
                        reference, created_at, rules_version
                 FROM ledger
                 WHERE seq > $1 AND ($2::text IS NULL OR user_id = $2) AND created_at >= $3 AND created_at < $4
                 ORDER BY seq LIMIT $5",
                bounds,
            )
            .await
            .map_err(classify)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(ledger_row(row).map_err(backend)?.decode()?);
            }
            Page::Ledger(out)
        }
        Table::Erasures => {
            let rows = sqlx::query(&format!(
                "SELECT {ERASURE_COLUMNS} FROM erasures
                 WHERE id > $1 AND ($2::text IS NULL OR user_hash = $2) ORDER BY id LIMIT $3"
            ))
            .bind(id)
            .bind(user.map(crate::erasure::user_hash))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(classify)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                out.push(erasure_from(|i| row.try_get(i), |i| row.try_get(i)).map_err(backend)?);
            }
            Page::Erasures(out)
        }
        Table::Hidden => {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT user_id, hidden_at FROM hidden_users
                 WHERE user_id > $1 AND ($2::text IS NULL OR user_id = $2) ORDER BY user_id LIMIT $3",
            )
            .bind(id)
            .bind(user)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(classify)?;
            Page::Hidden(rows)
        }
    };
    Ok(page)
}

/// Runs a history page query with its binds: after seq, user, from, to, limit.
async fn fetch_history(
    conn: &mut PgConnection,
    sql: &str,
    (seq, user, from, to, limit): (i64, Option<&str>, i64, i64, i64),
) -> Result<Vec<PgRow>, sqlx::Error> {
    sqlx::query(sql)
        .bind(seq)
        .bind(user)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await
}

/// A ledger row: seq, user_id, kind, amount, balance after, lifetime after,
/// reference, created_at, rules_version.
fn ledger_row(row: &PgRow) -> Result<StoredLedger, sqlx::Error> {
    Ok(StoredLedger {
        seq: row.try_get(0)?,
        user_id: row.try_get(1)?,
        kind: row.try_get(2)?,
        amount_milli: row.try_get(3)?,
        balance_after_milli: row.try_get(4)?,
        lifetime_after_milli: row.try_get(5)?,
        reference: row.try_get(6)?,
        created_at: row.try_get(7)?,
        rules_version: row.try_get::<Option<i32>, _>(8)?.map(i64::from),
    })
}

/// The dashboard's numbers (see [`crate::analytics`]).
pub async fn analytics(
    conn: &mut PgConnection,
    active_since: &[i64],
    days_from: i64,
) -> Result<crate::analytics::Analytics, StoreError> {
    use crate::analytics::{Analytics, categories_sql, days_sql, users_sql};
    let row = sqlx::query(&users_sql(active_since))
        .fetch_one(&mut *conn)
        .await
        .map_err(classify)?;
    let count = |i: usize| -> Result<u64, StoreError> {
        Ok(row.try_get::<i64, _>(i).map_err(backend)?.max(0) as u64)
    };
    let mut out = Analytics {
        users: count(0)?,
        events: count(1)?,
        lifetime: total(&row, 2)?,
        active: (0..active_since.len())
            .map(|i| count(4 + i))
            .collect::<Result<_, _>>()?,
        ..Analytics::default()
    };
    out.categories = counted(conn, &categories_sql()).await?;
    out.days = counted(conn, &days_sql(days_from)).await?;
    Ok(out)
}

/// The sum in columns `i` and `i + 1`, as the analytics' SQL splits it.
fn total(row: &PgRow, i: usize) -> Result<crate::analytics::Total, StoreError> {
    Ok(crate::analytics::Total::from_parts(
        row.try_get(i).map_err(backend)?,
        row.try_get(i + 1).map_err(backend)?,
    ))
}

/// Rows of (key, count, points), as the analytics' grouped queries return
/// them.
async fn counted<K>(
    conn: &mut PgConnection,
    sql: &str,
) -> Result<Vec<(K, u64, crate::analytics::Total)>, StoreError>
where
    K: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    let rows = sqlx::query(sql)
        .fetch_all(&mut *conn)
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|r| {
            let n: i64 = r.try_get(1).map_err(backend)?;
            Ok((
                r.try_get(0).map_err(backend)?,
                n.max(0) as u64,
                total(r, 2)?,
            ))
        })
        .collect()
}
