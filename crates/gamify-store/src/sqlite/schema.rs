//! Forward-only migrations, tracked in SQLite's `user_version`.

use rusqlite::Connection;

use super::backend;
use crate::StoreError;

/// Every migration in order; the version of migration `i` is `i + 1`.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/sqlite/0001_init.sql")];

/// The schema version this binary expects.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Applies the migrations the database lacks, each in its own transaction.
/// Refuses a database whose schema is newer than this binary.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::Schema(format!(
            "database schema is version {current}, newer than this binary's {SCHEMA_VERSION}; run a newer gamify"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Schema(format!("migration {version} failed: {e}")))?;
        tx.pragma_update(None, "user_version", version)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
        tracing::info!(version, "applied sqlite migration");
    }
    Ok(())
}
