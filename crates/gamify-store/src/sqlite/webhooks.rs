//! Webhook subscriptions and the outbox in the log file. The writer thread
//! alone writes them (inside its batches, so a delivery commits with its
//! change); the functions that only read run on the read connections.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{backend, backend_unique};
use crate::StoreError;
use crate::webhook::{
    Attempt, Delivery, DeliveryStatus, Due, Subscription, decode_topics, encode_topics,
};

const DELIVERY_COLUMNS: &str = "d.seq, d.id, d.subscription_id, d.topic, d.user_id, d.data, \
     d.created_at, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status, \
     d.last_error";

/// The subscriptions not deleted, oldest first.
pub fn subscriptions(conn: &Connection) -> Result<Vec<Subscription>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, url, topics, secret, description, created_at FROM webhook_subscriptions
             WHERE deleted_at IS NULL ORDER BY created_at, id",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, url, topics, secret, description, created_at_ms) = row.map_err(backend)?;
        out.push(Subscription {
            id,
            url,
            topics: decode_topics(&topics)?,
            secret,
            description,
            created_at_ms,
        });
    }
    Ok(out)
}

/// Whether a subscription with this id was ever made.
pub fn made(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE id = ?1)",
        [id],
        |r| r.get(0),
    )
    .map_err(backend)
}

/// Adds a subscription, or brings back a deleted one with its id (a
/// forwarding subscription, whose id comes from its settings).
pub fn subscribe(conn: &Connection, s: &Subscription) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO webhook_subscriptions (id, url, topics, secret, description, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) {}",
        crate::webhook::REVIVE
    );
    let topics = encode_topics(&s.topics);
    let changed = conn
        .execute(
            &sql,
            params![
                s.id,
                s.url,
                topics,
                s.secret,
                s.description,
                s.created_at_ms
            ],
        )
        .map_err(backend_unique("webhook"))?;
    if changed == 0 {
        return Err(StoreError::AlreadyExists("webhook"));
    }
    Ok(())
}

/// Deletes a subscription and cancels its pending deliveries.
pub fn unsubscribe(conn: &Connection, id: &str, at_ms: i64) -> Result<(), StoreError> {
    let changed = conn
        .execute(
            "UPDATE webhook_subscriptions SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
            params![id, at_ms],
        )
        .map_err(backend)?;
    if changed == 0 {
        return Err(StoreError::NotFound("webhook"));
    }
    conn.execute(
        "UPDATE webhook_deliveries SET status = 'cancelled'
         WHERE subscription_id = ?1 AND status = 'pending'",
        [id],
    )
    .map_err(backend)?;
    Ok(())
}

/// Writes new deliveries; one already there (a retried request) is kept.
/// Returns the user and `seq` of each one written, for `user_deliveries`
/// (see `super::materialize`).
pub fn insert(
    conn: &Connection,
    deliveries: &[Delivery],
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut written = Vec::new();
    if deliveries.is_empty() {
        return Ok(written);
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO webhook_deliveries (id, subscription_id, topic, user_id, data, created_at,
                                             status, attempts, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', 0, ?7) ON CONFLICT (id) DO NOTHING",
        )
        .map_err(backend)?;
    for d in deliveries {
        let inserted = stmt
            .execute(params![
                d.id,
                d.subscription_id,
                d.topic.as_str(),
                d.user_id,
                d.data,
                d.created_at_ms,
                d.next_attempt_at_ms
            ])
            .map_err(backend)?;
        if inserted == 1 {
            written.push((d.user_id.clone(), conn.last_insert_rowid()));
        }
    }
    Ok(written)
}

fn delivery(r: &Row<'_>) -> rusqlite::Result<Result<Delivery, StoreError>> {
    let topic: String = r.get(3)?;
    let status: String = r.get(7)?;
    let last_status: Option<i64> = r.get(11)?;
    let (Some(topic), Some(status)) = (
        crate::webhook::Topic::parse(&topic),
        DeliveryStatus::parse(&status),
    ) else {
        return Ok(Err(crate::corrupt("webhook delivery", &topic)));
    };
    Ok(Ok(Delivery {
        seq: r.get(0)?,
        id: r.get(1)?,
        subscription_id: r.get(2)?,
        topic,
        user_id: r.get(4)?,
        data: r.get(5)?,
        created_at_ms: r.get(6)?,
        status,
        attempts: r.get(8)?,
        next_attempt_at_ms: r.get(9)?,
        last_attempt_at_ms: r.get(10)?,
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: r.get(12)?,
    }))
}

/// Pending deliveries due at `now_ms`, oldest first. (One process owns the
/// file and sends them one round at a time, so no lease is written.)
pub fn due(conn: &Connection, now_ms: i64, limit: u32) -> Result<Vec<Due>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS}, s.url, s.secret, s.deleted_at IS NULL
             FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
             ORDER BY d.next_attempt_at, d.seq LIMIT ?2"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![now_ms, limit], |r| {
            Ok((
                delivery(r)?,
                r.get::<_, String>(13)?,
                r.get::<_, String>(14)?,
                r.get::<_, bool>(15)?,
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (delivery, url, secret, live) = row.map_err(backend)?;
        out.push(Due {
            delivery: delivery?,
            url: live.then_some(url),
            secret,
        });
    }
    Ok(out)
}

/// Records an attempt.
pub fn attempted(conn: &Connection, a: &Attempt) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?2,
             last_status = ?3, last_error = ?4, status = ?5, next_attempt_at = ?6
         WHERE id = ?1 AND status = 'pending'",
        params![
            a.id,
            a.at_ms,
            a.status_code,
            a.error,
            a.status.as_str(),
            a.next_attempt_at_ms
        ],
    )
    .map_err(backend)?;
    Ok(())
}

/// A subscription's deliveries, newest first.
pub fn list(
    conn: &Connection,
    subscription_id: &str,
    status: Option<DeliveryStatus>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
             WHERE d.subscription_id = ?1 AND d.seq < ?2 AND (?3 IS NULL OR d.status = ?3)
             ORDER BY d.seq DESC LIMIT ?4"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            params![
                subscription_id,
                before.unwrap_or(i64::MAX),
                status.map(DeliveryStatus::as_str),
                limit
            ],
            delivery,
        )
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(backend)??);
    }
    Ok(out)
}

/// Makes a delivery pending and due at `at_ms`.
pub fn replay(conn: &Connection, id: &str, at_ms: i64) -> Result<Delivery, StoreError> {
    conn.execute(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?2 WHERE id = ?1",
        params![id, at_ms],
    )
    .map_err(backend)?;
    conn.query_row(
        &format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.id = ?1"),
        [id],
        delivery,
    )
    .optional()
    .map_err(backend)?
    .ok_or(StoreError::NotFound("delivery"))?
}

/// How many deliveries are pending.
pub fn pending(conn: &Connection) -> Result<u64, StoreError> {
    conn.query_row(
        "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'",
        [],
        |r| r.get(0),
    )
    .map_err(backend)
}

/// Deletes up to `limit` finished deliveries made and last tried before
/// `before_ms`, oldest first, in one statement; returns the user and `seq`
/// of each one deleted, for `user_deliveries`.
pub fn prune(
    conn: &Connection,
    before_ms: i64,
    limit: u32,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "DELETE FROM webhook_deliveries WHERE seq IN (
                 SELECT seq FROM webhook_deliveries
                 WHERE created_at < ?1 AND status <> 'pending'
                   AND coalesce(last_attempt_at, created_at) < ?1
                 ORDER BY created_at LIMIT ?2)
             RETURNING user_id, seq",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![before_ms, limit], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}
