//! Webhook subscriptions and the outbox on PostgreSQL. The writers add
//! deliveries inside their batches ([`insert`]); any node's delivery worker
//! leases due rows with `FOR UPDATE SKIP LOCKED`, so two nodes never send
//! the same row at once, and a node that dies mid-send leaves the row to be
//! sent again once its lease ends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::{classify, classify_unique};
use crate::StoreError;
use crate::webhook::{
    Attempt, Delivery, DeliveryStatus, Due, Subscription, Topic, decode_topics, encode_topics,
};

/// How long a node trusts its copy of the subscriptions: a subscription
/// made on another node reaches this one's writes within it.
const FRESH_FOR: Duration = Duration::from_secs(1);

const DELIVERY_COLUMNS: &str = "d.seq, d.id, d.subscription_id, d.topic, d.user_id, d.data, \
     d.created_at, d.status, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_status, \
     d.last_error";

/// This node's copy of the subscriptions not deleted, for its writers.
#[derive(Default)]
pub struct Hooks {
    /// The copy, and when it was read.
    copy: Mutex<Option<(Instant, Arc<Vec<Subscription>>)>>,
    /// Counts [`Hooks::forget`]s: a read that overlapped one is used by the
    /// writer that made it but not kept, or a subscription made on this
    /// node could be left out of the copy for up to [`FRESH_FOR`].
    generation: std::sync::atomic::AtomicU64,
}

impl Hooks {
    /// The subscriptions, read again in `tx` if the copy is older than
    /// [`FRESH_FOR`].
    pub async fn current(
        &self,
        tx: &mut PgConnection,
    ) -> Result<Arc<Vec<Subscription>>, sqlx::Error> {
        use std::sync::atomic::Ordering;
        if let Some((at, subs)) = &*self.copy.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < FRESH_FOR
        {
            return Ok(subs.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let subs = Arc::new(read_subscriptions(tx).await?);
        let mut copy = self.copy.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) == generation {
            *copy = Some((Instant::now(), subs.clone()));
        }
        Ok(subs)
    }

    /// Forgets the copy (this node changed the subscriptions).
    pub fn forget(&self) {
        let mut copy = self.copy.lock().unwrap_or_else(|e| e.into_inner());
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        *copy = None;
    }
}

async fn read_subscriptions(conn: &mut PgConnection) -> Result<Vec<Subscription>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, url, topics, secret, description, created_at FROM webhook_subscriptions
         WHERE deleted_at IS NULL ORDER BY created_at, id",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Subscription {
                id: r.try_get(0)?,
                url: r.try_get(1)?,
                topics: decode_topics(r.try_get(2)?).map_err(super::write::protocol)?,
                secret: r.try_get(3)?,
                description: r.try_get(4)?,
                created_at_ms: r.try_get(5)?,
            })
        })
        .collect()
}

/// The subscriptions not deleted, oldest first.
pub async fn subscriptions(conn: &mut PgConnection) -> Result<Vec<Subscription>, StoreError> {
    read_subscriptions(conn).await.map_err(classify)
}

/// Whether a subscription with this id was ever made.
pub async fn made(conn: &mut PgConnection, id: &str) -> Result<bool, StoreError> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE id = $1)")
        .bind(id)
        .fetch_one(conn)
        .await
        .map_err(classify)
}

/// Adds a subscription, or brings back a deleted one with its id (a
/// forwarding subscription, whose id comes from its settings).
pub async fn subscribe(conn: &mut PgConnection, s: &Subscription) -> Result<(), StoreError> {
    let done = sqlx::query(&format!(
        "INSERT INTO webhook_subscriptions (id, url, topics, secret, description, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) {}",
        crate::webhook::REVIVE
    ))
    .bind(&s.id)
    .bind(&s.url)
    .bind(encode_topics(&s.topics))
    .bind(&s.secret)
    .bind(&s.description)
    .bind(s.created_at_ms)
    .execute(conn)
    .await
    .map_err(classify_unique("webhook"))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::AlreadyExists("webhook"));
    }
    Ok(())
}

/// Deletes a subscription and cancels its pending deliveries, in one
/// transaction.
pub async fn unsubscribe(conn: &mut PgConnection, id: &str, at_ms: i64) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin(conn).await.map_err(classify)?;
    let done = sqlx::query(
        "UPDATE webhook_subscriptions SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .bind(at_ms)
    .execute(&mut *tx)
    .await
    .map_err(classify)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("webhook"));
    }
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'cancelled'
         WHERE subscription_id = $1 AND status = 'pending'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(classify)?;
    tx.commit().await.map_err(classify)
}

/// Writes a batch's new deliveries in its transaction, in one statement;
/// one already there (a retried request) is kept.
pub async fn insert(tx: &mut PgConnection, deliveries: &[Delivery]) -> Result<(), sqlx::Error> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Delivery) -> String| deliveries.iter().map(f).collect::<Vec<String>>();
    let ids = col(|d| d.id.clone());
    let subs = col(|d| d.subscription_id.clone());
    let topics = col(|d| d.topic.as_str().to_owned());
    let users = col(|d| d.user_id.clone());
    let data = col(|d| d.data.clone());
    let at: Vec<i64> = deliveries.iter().map(|d| d.created_at_ms).collect();
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, subscription_id, topic, user_id, data, created_at,
                                         status, attempts, next_attempt_at)
         SELECT id, sub, topic, u, data, at, 'pending', 0, at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
              AS t(id, sub, topic, u, data, at)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&subs)
    .bind(&topics)
    .bind(&users)
    .bind(&data)
    .bind(&at)
    .execute(tx)
    .await?;
    Ok(())
}

fn delivery(r: &PgRow) -> Result<Delivery, StoreError> {
    let get = |e: sqlx::Error| classify(e);
    let topic: String = r.try_get(3).map_err(get)?;
    let status: String = r.try_get(7).map_err(get)?;
    let last_status: Option<i32> = r.try_get(11).map_err(get)?;
    let attempts: i32 = r.try_get(8).map_err(get)?;
    Ok(Delivery {
        seq: r.try_get(0).map_err(get)?,
        id: r.try_get(1).map_err(get)?,
        subscription_id: r.try_get(2).map_err(get)?,
        topic: Topic::parse(&topic).ok_or_else(|| crate::corrupt("webhook topic", &topic))?,
        user_id: r.try_get(4).map_err(get)?,
        data: r.try_get(5).map_err(get)?,
        created_at_ms: r.try_get(6).map_err(get)?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| crate::corrupt("webhook delivery status", &status))?,
        attempts: attempts.max(0) as u32,
        next_attempt_at_ms: r.try_get(9).map_err(get)?,
        last_attempt_at_ms: r.try_get(10).map_err(get)?,
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: r.try_get(12).map_err(get)?,
    })
}

/// Leases up to `limit` due deliveries until `now_ms + lease_ms`.
pub async fn due(
    conn: &mut PgConnection,
    now_ms: i64,
    lease_ms: i64,
    limit: u32,
) -> Result<Vec<Due>, StoreError> {
    let rows = sqlx::query(&format!(
        "WITH due AS (
             SELECT seq FROM webhook_deliveries
             WHERE status = 'pending' AND next_attempt_at <= $1
             ORDER BY next_attempt_at, seq LIMIT $3
             FOR UPDATE SKIP LOCKED),
         leased AS (
             UPDATE webhook_deliveries d SET next_attempt_at = $1 + $2
             FROM due WHERE d.seq = due.seq
             RETURNING d.*)
         SELECT {DELIVERY_COLUMNS}, s.url, s.secret, s.deleted_at IS NULL AS live
         FROM leased d JOIN webhook_subscriptions s ON s.id = d.subscription_id
         ORDER BY d.seq"
    ))
    .bind(now_ms)
    .bind(lease_ms)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(classify)?;
    rows.iter()
        .map(|r| {
            let delivery = delivery(r)?;
            let live: bool = r.try_get("live").map_err(classify)?;
            Ok(Due {
                delivery,
                url: if live {
                    Some(r.try_get("url").map_err(classify)?)
                } else {
                    None
                },
                secret: r.try_get("secret").map_err(classify)?,
            })
        })
        .collect()
}

/// Records attempts, in one statement.
pub async fn attempted(conn: &mut PgConnection, attempts: &[Attempt]) -> Result<(), StoreError> {
    if attempts.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = attempts.iter().map(|a| a.id.as_str()).collect();
    let at: Vec<i64> = attempts.iter().map(|a| a.at_ms).collect();
    let codes: Vec<Option<i32>> = attempts
        .iter()
        .map(|a| a.status_code.map(i32::from))
        .collect();
    let errors: Vec<Option<&str>> = attempts.iter().map(|a| a.error.as_deref()).collect();
    let statuses: Vec<&str> = attempts.iter().map(|a| a.status.as_str()).collect();
    let next: Vec<i64> = attempts.iter().map(|a| a.next_attempt_at_ms).collect();
    sqlx::query(
        "UPDATE webhook_deliveries d SET attempts = d.attempts + 1, last_attempt_at = t.at,
             last_status = t.code, last_error = t.error, status = t.status,
             next_attempt_at = t.next
         FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::bigint[])
              AS t(id, at, code, error, status, next)
         WHERE d.id = t.id AND d.status = 'pending'",
    )
    .bind(&ids)
    .bind(&at)
    .bind(&codes)
    .bind(&errors)
    .bind(&statuses)
    .bind(&next)
    .execute(conn)
    .await
    .map_err(classify)?;
    Ok(())
}

/// A subscription's deliveries, newest first.
pub async fn list(
    conn: &mut PgConnection,
    subscription_id: &str,
    status: Option<DeliveryStatus>,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d
         WHERE d.subscription_id = $1 AND d.seq < $2 AND ($3::text IS NULL OR d.status = $3)
         ORDER BY d.seq DESC LIMIT $4"
    ))
    .bind(subscription_id)
    .bind(before.unwrap_or(i64::MAX))
    .bind(status.map(DeliveryStatus::as_str))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await
    .map_err(classify)?;
    rows.iter().map(delivery).collect()
}

/// Makes a delivery pending and due at `at_ms`.
pub async fn replay(conn: &mut PgConnection, id: &str, at_ms: i64) -> Result<Delivery, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE webhook_deliveries d SET status = 'pending', next_attempt_at = $2 WHERE d.id = $1
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(id)
    .bind(at_ms)
    .fetch_optional(conn)
    .await
    .map_err(classify)?
    .ok_or(StoreError::NotFound("delivery"))?;
    delivery(&row)
}

/// How many deliveries are pending.
pub async fn pending(conn: &mut PgConnection) -> Result<u64, StoreError> {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
            .fetch_one(conn)
            .await
            .map_err(classify)?;
    Ok(n as u64)
}

/// Deletes up to `limit` finished deliveries made and last tried before
/// `before_ms`, oldest first, in one statement; returns how many. Rows
/// another node is deleting (or replaying) are skipped, not waited for.
pub async fn prune(conn: &mut PgConnection, before_ms: i64, limit: u32) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM webhook_deliveries WHERE seq IN (
             SELECT seq FROM webhook_deliveries
             WHERE created_at < $1 AND status <> 'pending'
               AND coalesce(last_attempt_at, created_at) < $1
             ORDER BY created_at LIMIT $2
             FOR UPDATE SKIP LOCKED)",
    )
    .bind(before_ms)
    .bind(i64::from(limit))
    .execute(conn)
    .await
    .map_err(classify)?;
    Ok(done.rows_affected())
}
