//! Throwaway schemas on a shared database, for tests and benchmarks: each
//! gets a schema of its own, so any number can run at once on one server.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::PgSettings;
use crate::StoreError;

/// The variable naming the database tests use.
pub const TEST_URL_VAR: &str = "GAMIFY_TEST_DATABASE_URL";
/// Set to `1` (as `.ci/run` does) to fail instead of skipping when the test
/// database is unreachable.
pub const REQUIRE_VAR: &str = "GAMIFY_REQUIRE_POSTGRES";
/// The test database when [`TEST_URL_VAR`] is unset: the local server.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The test database's URL if it answers. Otherwise prints why the
/// PostgreSQL half of a test is skipped and returns `None`, or panics when
/// [`REQUIRE_VAR`] is `1`.
pub async fn test_database(test: &str) -> Option<String> {
    let url = std::env::var(TEST_URL_VAR).unwrap_or_else(|_| DEFAULT_TEST_URL.to_owned());
    let mut settings = PgSettings::new(url.clone());
    settings.connect_timeout = std::time::Duration::from_secs(3);
    let reached = match settings.pool() {
        Ok(pool) => {
            let r = sqlx::query("SELECT 1").execute(&pool).await;
            pool.close().await;
            r.map(|_| ()).map_err(|e| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    match reached {
        Ok(()) => Some(url),
        Err(why) if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") => panic!(
            "{test}: PostgreSQL is required ({REQUIRE_VAR}=1) but {} does not answer: {why}",
            settings.redacted_url()
        ),
        Err(why) => {
            // Straight to stderr, past the test harness's capture, so that a
            // skip is seen even when the test passes.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the PostgreSQL half of {test}: {} does not answer ({why}); \
                 set {TEST_URL_VAR} to a reachable database",
                settings.redacted_url()
            );
            None
        }
    }
}

/// A schema created for one user of the database, dropped (with all in it)
/// when this value is dropped.
pub struct ScratchSchema {
    settings: PgSettings,
    name: String,
}

impl ScratchSchema {
    /// Creates a new, empty schema on the database at `url`.
    pub async fn create(url: &str) -> Result<ScratchSchema, StoreError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "gamify_scratch_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pool = PgSettings::new(url).pool()?;
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&pool)
            .await
            .map_err(super::backend)?;
        pool.close().await;
        let mut settings = PgSettings::new(url);
        settings.schema = Some(name.clone());
        Ok(ScratchSchema { settings, name })
    }

    /// Settings that use this schema.
    pub fn settings(&self) -> PgSettings {
        self.settings.clone()
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchSchema {
    fn drop(&mut self) {
        // Drop may run inside an async runtime, which must not block on
        // another: do it on a thread of its own with a runtime of its own.
        let (url, name) = (self.settings.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let pool = PgSettings::new(url).pool().ok()?;
                // Its tenants' schemas (`<name>__<tenant>`) go with it.
                let r = async {
                    let names: Vec<String> = sqlx::query_scalar(
                        "SELECT nspname::text FROM pg_namespace
                         WHERE nspname = $1 OR starts_with(nspname, $1 || '__')",
                    )
                    .bind(&name)
                    .fetch_all(&pool)
                    .await?;
                    for schema in names {
                        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&pool)
                            .await?;
                    }
                    Ok::<(), sqlx::Error>(())
                }
                .await;
                pool.close().await;
                r.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("could not drop the scratch schema {}", self.name);
        }
    }
}

/// The variable naming the Redis tests use.
pub const TEST_REDIS_VAR: &str = "GAMIFY_TEST_REDIS_URL";
/// Set to `1` (as `.ci/run` does) to fail instead of skipping when the test
/// Redis is unreachable.
pub const REQUIRE_REDIS_VAR: &str = "GAMIFY_REQUIRE_REDIS";
/// The test Redis when [`TEST_REDIS_VAR`] is unset: the local server.
pub const DEFAULT_TEST_REDIS: &str = "redis://127.0.0.1:6379";

/// The test Redis's URL if it answers; otherwise prints why the Redis half
/// of a test is skipped and returns `None`, or panics when
/// [`REQUIRE_REDIS_VAR`] is `1`.
pub async fn test_redis(test: &str) -> Option<String> {
    let url = std::env::var(TEST_REDIS_VAR).unwrap_or_else(|_| DEFAULT_TEST_REDIS.to_owned());
    let reached = async {
        let client = ::redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
        let mut conn = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| "no answer in 3 s".to_owned())?
        .map_err(|e| e.to_string())?;
        ::redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match reached {
        Ok(_) => Some(url),
        Err(why) if std::env::var(REQUIRE_REDIS_VAR).as_deref() == Ok("1") => panic!(
            "{test}: Redis is required ({REQUIRE_REDIS_VAR}=1) but {} does not answer: {why}",
            super::redact_url(&url)
        ),
        Err(why) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED the Redis half of {test}: {} does not answer ({why}); \
                 set {TEST_REDIS_VAR} to a reachable Redis",
                super::redact_url(&url)
            );
            None
        }
    }
}

/// A key prefix of its own on a shared Redis, for one test; its keys are
/// deleted when this value is dropped.
pub struct ScratchRedis {
    settings: super::RedisSettings,
}

impl ScratchRedis {
    /// A fresh prefix on the Redis at `url`, named after `schema` (unique).
    pub fn new(url: &str, schema: &ScratchSchema) -> ScratchRedis {
        let mut settings = super::RedisSettings::new(url);
        settings.prefix = format!("{}:", schema.name());
        ScratchRedis { settings }
    }

    /// Settings that use this prefix.
    pub fn settings(&self) -> super::RedisSettings {
        self.settings.clone()
    }
}

impl Drop for ScratchRedis {
    fn drop(&mut self) {
        let (url, prefix) = (self.settings.url.clone(), self.settings.prefix.clone());
        let _ = std::thread::spawn(move || -> ::redis::RedisResult<()> {
            let mut conn = ::redis::Client::open(url.as_str())?.get_connection()?;
            let keys: Vec<String> = ::redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query(&mut conn)?;
            if !keys.is_empty() {
                ::redis::cmd("DEL").arg(keys).query::<()>(&mut conn)?;
            }
            Ok(())
        })
        .join();
    }
}
