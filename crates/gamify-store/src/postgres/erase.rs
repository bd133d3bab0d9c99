//! Erasing a user on PostgreSQL (see [`crate::erasure`]): one transaction.
//!
//! It locks the user's row first, as every write for the user does, then
//! the rewards the user holds in id order (the order writes lock them in),
//! so it waits for and is waited on by the same locks as the writers on
//! every node. A write that waited for it finds the erasure's record once it
//! gets the row, and is refused ([`refused_users`]).

use std::collections::HashSet;

use sqlx::{PgConnection, PgPool, Row};

use super::classify;
use crate::StoreError;
use crate::erasure::{Erasure, unit_changes, user_hash};

/// The erasure of the user with this hash, if there was one.
pub async fn find(conn: &mut PgConnection, hash: &str) -> Result<Option<Erasure>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, erased_at, events, ledger_entries, movements, redemptions
         FROM erasures WHERE user_hash = $1",
    )
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        let count = |i: usize| r.try_get::<i64, _>(i).map(|n| n as u64);
        Ok(Erasure {
            id: r.try_get(0)?,
            erased_at_ms: r.try_get(1)?,
            events: count(2)?,
            ledger_entries: count(3)?,
            movements: count(4)?,
            redemptions: count(5)?,
        })
    })
    .transpose()
}

/// Which of `users` were erased. Called by a batch after it locked their
/// rows, so an erasure that held one of them has committed by then.
pub async fn refused_users<'a>(
    conn: &mut PgConnection,
    users: &[&'a str],
) -> Result<HashSet<&'a str>, sqlx::Error> {
    let hashes: Vec<String> = users.iter().map(|u| user_hash(u)).collect();
    let found: Vec<String> =
        sqlx::query_scalar("SELECT user_hash FROM erasures WHERE user_hash = ANY($1::text[])")
            .bind(&hashes)
            .fetch_all(&mut *conn)
            .await?;
    if found.is_empty() {
        return Ok(HashSet::new());
    }
    let found: HashSet<String> = found.into_iter().collect();
    Ok(users
        .iter()
        .zip(&hashes)
        .filter(|(_, h)| found.contains(*h))
        .map(|(u, _)| *u)
        .collect())
}

/// Erases `user` (see [`crate::Store::erase`]).
pub async fn erase(
    pool: &PgPool,
    user: &str,
    id: &str,
    at_ms: i64,
    me: &str,
) -> Result<Erasure, StoreError> {
    let hash = user_hash(user);
    let mut tx = pool.begin().await.map_err(classify)?;
    super::lease::fence(&mut tx, me).await.map_err(classify)?;
    let locked: Option<i64> =
        sqlx::query_scalar("SELECT version FROM users WHERE user_id = $1 FOR UPDATE")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
    if locked.is_none() {
        // Never seen, or erased (perhaps by another node while we waited).
        return find(&mut tx, &hash)
            .await
            .map_err(classify)?
            .ok_or(StoreError::NotFound("user"));
    }

    let held: Vec<(String, String)> = sqlx::query_as(
        "SELECT reward_id, status FROM redemptions WHERE user_id = $1 AND status <> 'cancelled'",
    )
    .bind(user)
    .fetch_all(&mut *tx)
    .await
    .map_err(classify)?;
    for (reward, change) in unit_changes(&held)? {
        sqlx::query(
            "UPDATE rewards SET redeemed = redeemed - $2, erased_units = erased_units + $3 WHERE id = $1",
        )
        .bind(reward)
        .bind(i64::from(change.returned))
        .bind(i64::from(change.kept))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    }

    // The record first: it is what lets the ledger's trigger allow the deletes.
    sqlx::query(
        "INSERT INTO erasures (id, user_hash, erasing_user_id, events, ledger_entries, movements,
                               redemptions, erased_at)
         VALUES ($1, $2, $3, 0, 0, 0, 0, $4)",
    )
    .bind(id)
    .bind(&hash)
    .bind(user)
    .bind(at_ms)
    .execute(&mut *tx)
    .await
    .map_err(classify)?;
    // Movements by the ledger entries that name them (movements have no
    // index by user), so before the ledger goes.
    let mut removed = Vec::new();
    for sql in [
        "DELETE FROM movements WHERE id IN (SELECT reference FROM ledger
             WHERE user_id = $1 AND kind IN ('spend', 'adjustment'))",
        "DELETE FROM events WHERE user_id = $1",
        "DELETE FROM ledger WHERE user_id = $1",
        "DELETE FROM redemptions WHERE user_id = $1",
        "DELETE FROM users WHERE user_id = $1",
        "DELETE FROM hidden_users WHERE user_id = $1",
        "DELETE FROM webhook_deliveries WHERE user_id = $1",
    ] {
        let done = sqlx::query(sql)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        removed.push(done.rows_affected());
    }
    let erasure = Erasure {
        id: id.to_owned(),
        erased_at_ms: at_ms,
        movements: removed[0],
        events: removed[1],
        ledger_entries: removed[2],
        redemptions: removed[3],
    };
    sqlx::query(
        "UPDATE erasures SET events = $2, ledger_entries = $3, movements = $4, redemptions = $5,
                             erasing_user_id = NULL
         WHERE id = $1",
    )
    .bind(id)
    .bind(erasure.events as i64)
    .bind(erasure.ledger_entries as i64)
    .bind(erasure.movements as i64)
    .bind(erasure.redemptions as i64)
    .execute(&mut *tx)
    .await
    .map_err(classify)?;
    tx.commit().await.map_err(classify)?;
    tracing::info!(erasure = %erasure.id, events = erasure.events, ledger_entries = erasure.ledger_entries, "user erased");
    Ok(erasure)
}
