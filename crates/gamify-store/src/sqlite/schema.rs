//! Forward-only migrations of the two files, each tracked in its own
//! SQLite `user_version`.

use rusqlite::Connection;

use super::backend;
use crate::StoreError;

/// The log's migrations in order; the version of migration `i` is `i + 1`.
pub const LOG: &[&str] = &[
    include_str!("../../migrations/sqlite/log/0001_init.sql"),
    include_str!("../../migrations/sqlite/log/0002_economy.sql"),
    include_str!("../../migrations/sqlite/log/0003_erasure.sql"),
    include_str!("../../migrations/sqlite/log/0004_leaderboards.sql"),
    include_str!("../../migrations/sqlite/log/0005_webhooks.sql"),
    include_str!("../../migrations/sqlite/log/0006_api_keys.sql"),
    include_str!("../../migrations/sqlite/log/0007_rule_versions.sql"),
    include_str!("../../migrations/sqlite/log/0008_tenants.sql"),
    include_str!("../../migrations/sqlite/log/0009_ledger_check.sql"),
    include_str!("../../migrations/sqlite/log/0010_delivery_age.sql"),
    include_str!("../../migrations/sqlite/log/0011_delivery_order.sql"),
];
/// The derived tables' migrations, likewise.
pub const DERIVED: &[&str] = &[
    include_str!("../../migrations/sqlite/derived/0001_init.sql"),
    include_str!("../../migrations/sqlite/derived/0002_economy.sql"),
    include_str!("../../migrations/sqlite/derived/0003_deliveries.sql"),
];

/// The log's schema version this binary expects.
pub const SCHEMA_VERSION: i64 = LOG.len() as i64;

/// Applies the `migrations` the database lacks, each in its own transaction.
/// Refuses a database whose schema is newer than this binary. `what` names
/// the file in messages.
pub fn migrate(conn: &mut Connection, migrations: &[&str], what: &str) -> Result<(), StoreError> {
    let known = migrations.len() as i64;
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    if current > known {
        return Err(StoreError::Schema(format!(
            "the {what} schema is version {current}, newer than this binary's {known}; run a newer gamify"
        )));
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Schema(format!("{what} migration {version} failed: {e}")))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(what, version, "applied sqlite migration");
    }
    Ok(())
}
