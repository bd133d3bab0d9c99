//! Forward-only migrations, tracked in the table `gamify_schema` of the
//! schema the connection uses.
//!
//! Applying them takes a session advisory lock first, so two nodes that
//! migrate at once take turns: the second finds the work done. Checking (what
//! `gamify serve` does without `--migrate`) takes no lock and changes nothing.

use sqlx::{PgConnection, Row};

use super::backend;
use crate::StoreError;

/// The migrations in order; the version of migration `i` is `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_init.sql"),
    include_str!("../../migrations/postgres/0002_economy.sql"),
    include_str!("../../migrations/postgres/0003_erasure.sql"),
    include_str!("../../migrations/postgres/0004_leaderboards.sql"),
    include_str!("../../migrations/postgres/0005_redis_boards.sql"),
    include_str!("../../migrations/postgres/0006_webhooks.sql"),
    include_str!("../../migrations/postgres/0007_api_keys.sql"),
    include_str!("../../migrations/postgres/0008_rule_versions.sql"),
    include_str!("../../migrations/postgres/0009_tenants.sql"),
    include_str!("../../migrations/postgres/0010_node_lease.sql"),
    include_str!("../../migrations/postgres/0011_delivery_age.sql"),
];

/// The schema version this binary expects.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock's first key ("ga"); the second is the schema's name hashed.
const LOCK_CLASS: i32 = 0x6761;

/// The version the database is at: 0 for an empty one.
pub async fn current(conn: &mut PgConnection) -> Result<i64, StoreError> {
    let exists: bool = sqlx::query("SELECT to_regclass('gamify_schema') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let version: Option<i32> = sqlx::query("SELECT max(version) FROM gamify_schema")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?
        .get(0);
    Ok(i64::from(version.unwrap_or(0)))
}

/// Refuses a database whose schema is not exactly this binary's, saying what
/// to run.
pub async fn check(conn: &mut PgConnection) -> Result<(), StoreError> {
    let found = current(conn).await?;
    if found < SCHEMA_VERSION {
        return Err(StoreError::Schema(format!(
            "the database schema is at version {found}, this binary needs {SCHEMA_VERSION}; \
             run `gamify migrate` (or start with `gamify serve --migrate`)"
        )));
    }
    too_new(found)
}

fn too_new(found: i64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::Schema(format!(
            "the database schema is at version {found}, newer than this binary's {SCHEMA_VERSION}; \
             run a newer gamify"
        )));
    }
    Ok(())
}

/// Creates the schema `name` (a plain identifier) unless it exists, so that
/// migrating a configured schema, or a new tenant's, needs no step before.
/// Two nodes doing it at once both succeed.
pub async fn ensure_schema(conn: &mut PgConnection, name: &str) -> Result<(), StoreError> {
    if schema_exists(conn, name).await? {
        return Ok(());
    }
    let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {name}"))
        .execute(&mut *conn)
        .await;
    match created {
        Ok(_) => Ok(()),
        // Another node created it between the check and this statement.
        Err(_) if schema_exists(conn, name).await? => Ok(()),
        Err(e) => Err(backend(e)),
    }
}

async fn schema_exists(conn: &mut PgConnection, name: &str) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(name)
            .fetch_one(conn)
            .await
            .map_err(backend)?
            .get(0),
    )
}

/// Applies the migrations the database lacks, each in its own transaction,
/// holding the advisory lock throughout. Returns how many it applied.
pub async fn migrate(conn: &mut PgConnection) -> Result<usize, StoreError> {
    sqlx::query("SELECT pg_advisory_lock($1, hashtext(current_schema()))")
        .bind(LOCK_CLASS)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    let result = apply_pending(conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, hashtext(current_schema()))")
        .bind(LOCK_CLASS)
        .execute(&mut *conn)
        .await;
    let applied = result?;
    unlocked.map_err(backend)?;
    Ok(applied)
}

async fn apply_pending(conn: &mut PgConnection) -> Result<usize, StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS gamify_schema (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    let found = current(conn).await?;
    too_new(found)?;
    let mut applied = 0;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as i32 + 1;
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(backend)?;
        // Several statements: the simple query protocol runs them in order.
        sqlx::Executor::execute(&mut *tx, *sql)
            .await
            .map_err(|e| StoreError::Schema(format!("migration {version} failed: {e}")))?;
        sqlx::query("INSERT INTO gamify_schema (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        tracing::info!(version, "applied postgres migration");
        applied += 1;
    }
    Ok(applied)
}
