//! Rule versions in PostgreSQL: a small table every node reads. A node adds
//! the next version under a lock on the table, so two nodes changing the
//! rules at once get two versions, never one number twice.

use std::sync::Arc;

use gamify_core::RuleSet;
use sqlx::{PgConnection, Row};

use super::classify;
use crate::StoreError;
use crate::rulebook::{RuleVersion, first_version};

/// The versions after `after`, oldest first.
pub async fn after(conn: &mut PgConnection, after: u32) -> Result<Vec<RuleVersion>, StoreError> {
    let rows = sqlx::query(
        "SELECT version, rules, created_at FROM rule_versions WHERE version > $1 ORDER BY version",
    )
    .bind(after as i32)
    .fetch_all(conn)
    .await
    .map_err(classify)?;
    rows.iter()
        .map(|r| {
            let version: i32 = r.try_get("version").map_err(classify)?;
            let text: String = r.try_get("rules").map_err(classify)?;
            let created_at: i64 = r.try_get("created_at").map_err(classify)?;
            RuleVersion::from_stored(version as u32, &text, created_at)
        })
        .collect()
}

/// Every version; version 1 (the brief's rules) is added first if the
/// database has none (by whichever node gets there first).
pub async fn load_or_start(conn: &mut PgConnection) -> Result<Vec<RuleVersion>, StoreError> {
    let first = first_version();
    sqlx::query(
        "INSERT INTO rule_versions (version, rules, created_at) VALUES (1, $1, $2)
         ON CONFLICT (version) DO NOTHING",
    )
    .bind(first.stored_text())
    .bind(first.created_at_ms)
    .execute(&mut *conn)
    .await
    .map_err(classify)?;
    after(conn, 0).await
}

/// Adds `rules` as the next version unless the newest version has them;
/// returns every version after `known` (the new one last).
pub async fn add(
    conn: &mut PgConnection,
    rules: &Arc<RuleSet>,
    known: u32,
    at_ms: i64,
) -> Result<Vec<RuleVersion>, StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(classify)?;
    sqlx::query("LOCK TABLE rule_versions IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    let newer = after(&mut tx, known).await?;
    let newest = match newer.last() {
        Some(v) => Some(v.clone()),
        None => after(&mut tx, known.saturating_sub(1)).await?.pop(),
    };
    let mut added = newer;
    if newest.as_ref().is_none_or(|v| v.rules != *rules) {
        let version = RuleVersion {
            version: newest.map_or(1, |v| v.version + 1),
            rules: rules.clone(),
            created_at_ms: at_ms,
        };
        sqlx::query("INSERT INTO rule_versions (version, rules, created_at) VALUES ($1, $2, $3)")
            .bind(version.version as i32)
            .bind(version.stored_text())
            .bind(at_ms)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        added.push(version);
    }
    tx.commit().await.map_err(classify)?;
    Ok(added)
}
