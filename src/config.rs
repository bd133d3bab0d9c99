//! Configuration: the compiled-in defaults (`config.default.toml`), then an
//! optional TOML file, then environment variables, validated once at start.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gamify_core::{AchievementId, Expiry, Points, Rules};
pub use gamify_store::postgres::redact_url;
use gamify_store::postgres::{PgSettings, RedisSettings, check_schema, check_sslmode};
use serde::Deserialize;

use crate::engine::{Limits, Storage};

/// The defaults, with a comment on every setting.
pub const DEFAULT_TOML: &str = include_str!("../config.default.toml");
/// The longest `[webhooks] keep_days` (a hundred years; 0 is for ever).
const MAX_KEEP_DAYS: u32 = 36_500;

/// The most request threads `server.workers` may ask for.
pub const MAX_WORKERS: u32 = 1024;

/// Everything `gamify serve` needs.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[storage]`
    pub storage: StorageConfig,
    /// `[rules]`
    pub rules: RulesConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[ingest]`
    pub ingest: IngestConfig,
    /// `[webhooks]`
    pub webhooks: WebhooksConfig,
    /// `[limits]`: how large a request may be.
    pub limits: Limits,
}

/// `[webhooks]`: how deliveries are retried, and forwarding.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Forward every recorded event to this service (the brief's
    /// `GAMIFY_EXTERNAL_API`).
    #[serde(default)]
    pub external_api: Option<String>,
    /// The bearer token forwarded events carry (the brief's
    /// `GAMIFY_API_KEY`). A secret, so never printed.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Attempts in all before a delivery is failed.
    pub max_attempts: u32,
    /// Wait after the first failure (ms).
    pub retry_base_ms: u64,
    /// The longest wait between attempts (ms).
    pub retry_max_ms: u64,
    /// How long a receiver may take (ms).
    pub timeout_ms: u64,
    /// From this UTC hour a live streak with no event today is at risk.
    pub at_risk_hour: u32,
    /// Whether this node sends deliveries (every node writes them).
    pub send: bool,
    /// Days finished deliveries stay in the log; 0: for ever.
    pub keep_days: u32,
}

/// `[ingest]`: where events come from besides HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// `[ingest.nats]`
    pub nats: NatsConfig,
}

/// `[ingest.nats]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:port`; unset: no NATS consumer.
    pub url: Option<String>,
    /// The JetStream stream.
    pub stream: String,
    /// The subject events are published to.
    pub subject: String,
    /// The durable consumer.
    pub consumer: String,
    /// Where refused messages go.
    pub dead_letter_subject: String,
    /// Seconds before an unacknowledged message is delivered again.
    pub ack_wait_seconds: u64,
}

/// `[server]`
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    pub addr: String,
    /// A key with every scope (`ingest`, `read`, `admin`), besides the keys
    /// made with `gamify keys create`; `admin_token` is its older name.
    /// A secret, so never printed.
    #[serde(default, alias = "admin_token")]
    pub api_key: Option<String>,
    /// Origins whose pages may read the API from a browser (the
    /// embeddable wallet): `https://site.example`, or `*`.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Requests per second each API key may make on one node; 0: no limit.
    #[serde(default)]
    pub key_rate_per_second: u32,
    /// Requests a key may make at once after a quiet spell (0: one
    /// second's worth).
    #[serde(default)]
    pub key_burst: u32,
    /// Threads that serve requests; 0: one per core.
    #[serde(default)]
    pub workers: u32,
}

impl fmt::Debug for WebhooksConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhooksConfig")
            .field(
                "external_api",
                &self.external_api.as_deref().map(redact_url),
            )
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("max_attempts", &self.max_attempts)
            .field("retry_base_ms", &self.retry_base_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("at_risk_hour", &self.at_risk_hour)
            .field("send", &self.send)
            .field("keep_days", &self.keep_days)
            .finish()
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("cors_origins", &self.cors_origins)
            .field("key_rate_per_second", &self.key_rate_per_second)
            .field("key_burst", &self.key_burst)
            .field("workers", &self.workers)
            .finish()
    }
}

/// `[storage]`
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// A database URL; may hold a password, so never printed as is.
    pub database_url: Option<String>,
    /// Where the default SQLite file lives.
    pub data_dir: PathBuf,
    /// `[storage.postgres]`: used when the URL names PostgreSQL.
    pub postgres: PostgresConfig,
    /// `[storage.redis]`: leaderboards in Redis, with PostgreSQL.
    pub redis: RedisConfig,
}

/// `[storage.redis]`
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://…`; may hold a password, so never printed as is.
    pub url: Option<String>,
    /// Put before every key.
    pub prefix: String,
    /// How long one Redis call may take.
    pub timeout_ms: u64,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("prefix", &self.prefix)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// `[storage.postgres]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connections per node, at most.
    pub pool_size: u32,
    /// How long a request waits for a connection before failing with 503.
    pub connect_timeout_ms: u64,
    /// How long one statement may run.
    pub statement_timeout_ms: u64,
    /// Overrides the URL's `sslmode`.
    pub sslmode: Option<String>,
    /// The schema to use, if not the database user's default.
    pub schema: Option<String>,
    /// Be the only node writing the database (a lease), and serve users'
    /// state from memory.
    pub exclusive: bool,
}

/// `[rules]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// A rules file to make current at start.
    pub file: Option<PathBuf>,
    /// Largest event value, overriding the rules' at start.
    pub max_event_value: Option<f64>,
    /// Backfill window in days, overriding the rules' at start.
    pub backfill_days: Option<u32>,
    /// Allowed clock skew in seconds.
    pub max_future_skew_seconds: i64,
    /// Days points stay spendable after the day they were credited; 0: never expire.
    pub points_expire_after_days: u32,
    /// Achievement id → the reward it grants free ("" grants nothing).
    pub achievement_rewards: std::collections::BTreeMap<String, String>,
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `json` or `pretty`.
    pub format: String,
    /// A tracing filter.
    pub level: String,
}

/// A configuration that cannot be used, with what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {what} {path}: {reason}")]
    Read {
        /// Which file: "config file" or "rules file".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why (in the message, and so not also a `source`, which would
        /// print it twice in an error chain).
        reason: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file (or "built-in defaults").
        path: String,
        /// What the parser said, with the line.
        message: String,
    },
    /// A setting has an unusable value.
    #[error("{setting}: {message}")]
    Invalid {
        /// The setting, as `section.key` or the env var.
        setting: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

fn invalid(setting: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting: setting.to_owned(),
        message: message.into(),
    }
}

impl Config {
    /// Loads the defaults, overlays `file` if given, then the environment
    /// (`env` is a lookup so tests need not touch the process's variables).
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            DEFAULT_TOML
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: "built-in defaults".into(),
                    message: e.to_string(),
                })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
                what: "config file",
                path: path.to_owned(),
                reason,
            })?;
            let overlay: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
            merge(&mut table, overlay);
        }
        let mut config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: file.map_or("built-in defaults".into(), |p| p.display().to_string()),
                    message: e.to_string(),
                })?;

        if let Some(v) = env("GAMIFY_ADDR") {
            config.server.addr = v;
        }
        for (var, field) in [
            ("GAMIFY_MAX_BODY_BYTES", &mut config.limits.max_body_bytes),
            (
                "GAMIFY_MAX_METADATA_BYTES",
                &mut config.limits.max_metadata_bytes,
            ),
        ] {
            if let Some(v) = env(var) {
                *field = parse_env(var, &v, "a whole number of bytes")?;
            }
        }
        if let Some(v) = env("GAMIFY_MAX_PAGE") {
            config.limits.max_page = parse_env("GAMIFY_MAX_PAGE", &v, "a whole number of rows")?;
        }
        if let Some(v) = env("GAMIFY_HEADER_TIMEOUT_MS") {
            config.limits.header_timeout_ms = parse_env(
                "GAMIFY_HEADER_TIMEOUT_MS",
                &v,
                "a whole number of milliseconds",
            )?;
        }
        let l = &config.limits;
        if !(1024..=16 * 1024 * 1024).contains(&l.max_body_bytes) {
            return Err(invalid(
                "limits.max_body_bytes",
                "expected 1024 to 16777216 (16 MiB)",
            ));
        }
        if !(2..=l.max_body_bytes).contains(&l.max_metadata_bytes) {
            return Err(invalid(
                "limits.max_metadata_bytes",
                "expected 2 (an empty object) up to limits.max_body_bytes",
            ));
        }
        if !(10..=1000).contains(&l.max_page) {
            return Err(invalid("limits.max_page", "expected 10 to 1000"));
        }
        if !(100..=3_600_000).contains(&l.header_timeout_ms) {
            return Err(invalid(
                "limits.header_timeout_ms",
                "expected 100 to 3600000 milliseconds",
            ));
        }
        for (var, field) in [
            (
                "GAMIFY_KEY_RATE_PER_SECOND",
                &mut config.server.key_rate_per_second,
            ),
            ("GAMIFY_KEY_BURST", &mut config.server.key_burst),
        ] {
            if let Some(v) = env(var) {
                *field = parse_env(var, &v, "a whole number of requests")?;
            }
        }
        if let Some(v) = env("GAMIFY_WORKERS") {
            config.server.workers = parse_env("GAMIFY_WORKERS", &v, "a whole number of threads")?;
        }
        if config.server.workers > MAX_WORKERS {
            return Err(invalid(
                "server.workers",
                format!("expected 0 (one per core) to {MAX_WORKERS} threads"),
            ));
        }
        if let Some(v) = env("GAMIFY_CORS_ORIGINS") {
            config.server.cors_origins = v
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(o) = config.server.cors_origins.iter().find(|o| {
            o.as_str() != "*"
                && !((o.starts_with("http://") || o.starts_with("https://"))
                    && !o.ends_with('/')
                    && o.split("://")
                        .nth(1)
                        .is_some_and(|rest| !rest.contains('/')))
        }) {
            return Err(invalid(
                "server.cors_origins",
                format!(
                    "expected origins such as https://site.example (scheme and host, no path), or *; got {o:?}"
                ),
            ));
        }
        let api_key = env("GAMIFY_API_KEY").filter(|v| !v.is_empty());
        let admin_token = env("GAMIFY_ADMIN_TOKEN").filter(|v| !v.is_empty());
        if let (Some(a), Some(b)) = (&api_key, &admin_token)
            && a != b
        {
            return Err(invalid(
                "GAMIFY_API_KEY",
                "GAMIFY_API_KEY and GAMIFY_ADMIN_TOKEN (its older name) differ; set one",
            ));
        }
        if let Some(v) = api_key.or(admin_token) {
            config.server.api_key = Some(v.clone());
            config.webhooks.api_key = Some(v);
        }
        if config
            .server
            .api_key
            .as_ref()
            .is_some_and(|t| t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(invalid(
                "server.api_key",
                "expected at least 16 visible ASCII characters (a long random string)",
            ));
        }
        if let Some(v) = env("DATABASE_URL").filter(|v| !v.is_empty()) {
            config.storage.database_url = Some(v);
        }
        if let Some(v) = env("REDIS_URL").filter(|v| !v.is_empty()) {
            config.storage.redis.url = Some(v);
        }
        if let Some(v) = env("GAMIFY_REDIS_PREFIX") {
            config.storage.redis.prefix = v;
        }
        if let Some(v) = env("GAMIFY_REDIS_TIMEOUT_MS") {
            config.storage.redis.timeout_ms =
                parse_env("GAMIFY_REDIS_TIMEOUT_MS", &v, "whole milliseconds")?;
        }
        if let Some(v) = env("GAMIFY_DATA_DIR") {
            config.storage.data_dir = v.into();
        }
        let pg = &mut config.storage.postgres;
        if let Some(v) = env("GAMIFY_PG_POOL_SIZE") {
            pg.pool_size = parse_env("GAMIFY_PG_POOL_SIZE", &v, "a whole number")?;
        }
        if let Some(v) = env("GAMIFY_PG_CONNECT_TIMEOUT_MS") {
            pg.connect_timeout_ms =
                parse_env("GAMIFY_PG_CONNECT_TIMEOUT_MS", &v, "whole milliseconds")?;
        }
        if let Some(v) = env("GAMIFY_PG_STATEMENT_TIMEOUT_MS") {
            pg.statement_timeout_ms =
                parse_env("GAMIFY_PG_STATEMENT_TIMEOUT_MS", &v, "whole milliseconds")?;
        }
        if let Some(v) = env("GAMIFY_PG_SSLMODE").filter(|v| !v.is_empty()) {
            pg.sslmode = Some(v);
        }
        if let Some(v) = env("GAMIFY_PG_SCHEMA").filter(|v| !v.is_empty()) {
            pg.schema = Some(v);
        }
        if let Some(v) = env("GAMIFY_PG_EXCLUSIVE") {
            pg.exclusive = parse_env("GAMIFY_PG_EXCLUSIVE", &v, "true or false")?;
        }
        if let Some(v) = env("GAMIFY_MAX_EVENT_VALUE") {
            config.rules.max_event_value = Some(v.parse().map_err(|_| {
                invalid(
                    "GAMIFY_MAX_EVENT_VALUE",
                    format!("expected a number, got {v:?}"),
                )
            })?);
        }
        if let Some(v) = env("GAMIFY_BACKFILL_DAYS") {
            config.rules.backfill_days = Some(v.parse().map_err(|_| {
                invalid(
                    "GAMIFY_BACKFILL_DAYS",
                    format!("expected a whole number of days, got {v:?}"),
                )
            })?);
        }
        if let Some(v) = env("GAMIFY_RULES_FILE").filter(|v| !v.is_empty()) {
            config.rules.file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("GAMIFY_POINTS_EXPIRE_AFTER_DAYS") {
            config.rules.points_expire_after_days = v.parse().map_err(|_| {
                invalid(
                    "GAMIFY_POINTS_EXPIRE_AFTER_DAYS",
                    format!("expected a whole number of days, got {v:?}"),
                )
            })?;
        }
        if let Some(v) = env("GAMIFY_MAX_FUTURE_SKEW_SECONDS") {
            config.rules.max_future_skew_seconds = v.parse().map_err(|_| {
                invalid(
                    "GAMIFY_MAX_FUTURE_SKEW_SECONDS",
                    format!("expected whole seconds, got {v:?}"),
                )
            })?;
        }
        if let Some(v) = env("GAMIFY_LOG_FORMAT") {
            config.log.format = v;
        }
        if let Some(v) = env("GAMIFY_LOG") {
            config.log.level = v;
        }
        let nats = &mut config.ingest.nats;
        if let Some(v) = env("GAMIFY_NATS_URL").filter(|v| !v.is_empty()) {
            nats.url = Some(v);
        }
        for (var, field) in [
            ("GAMIFY_NATS_STREAM", &mut nats.stream),
            ("GAMIFY_NATS_SUBJECT", &mut nats.subject),
            ("GAMIFY_NATS_CONSUMER", &mut nats.consumer),
            (
                "GAMIFY_NATS_DEAD_LETTER_SUBJECT",
                &mut nats.dead_letter_subject,
            ),
        ] {
            if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                *field = v;
            }
        }
        if let Some(v) = env("GAMIFY_NATS_ACK_WAIT_SECONDS") {
            config.ingest.nats.ack_wait_seconds =
                parse_env("GAMIFY_NATS_ACK_WAIT_SECONDS", &v, "whole seconds")?;
        }
        for (var, field) in [
            (
                "GAMIFY_WEBHOOK_RETRY_BASE_MS",
                &mut config.webhooks.retry_base_ms,
            ),
            (
                "GAMIFY_WEBHOOK_RETRY_MAX_MS",
                &mut config.webhooks.retry_max_ms,
            ),
            ("GAMIFY_WEBHOOK_TIMEOUT_MS", &mut config.webhooks.timeout_ms),
        ] {
            if let Some(v) = env(var) {
                *field = parse_env(var, &v, "whole milliseconds")?;
            }
        }
        if let Some(v) = env("GAMIFY_EXTERNAL_API").filter(|v| !v.is_empty()) {
            config.webhooks.external_api = Some(v);
        }
        if let Some(v) = env("GAMIFY_WEBHOOK_SEND") {
            config.webhooks.send = parse_env("GAMIFY_WEBHOOK_SEND", &v, "true or false")?;
        }
        if let Some(v) = env("GAMIFY_WEBHOOK_AT_RISK_HOUR") {
            config.webhooks.at_risk_hour =
                parse_env("GAMIFY_WEBHOOK_AT_RISK_HOUR", &v, "an hour 0 to 23")?;
        }
        if let Some(v) = env("GAMIFY_WEBHOOK_MAX_ATTEMPTS") {
            config.webhooks.max_attempts =
                parse_env("GAMIFY_WEBHOOK_MAX_ATTEMPTS", &v, "a whole number")?;
        }
        if let Some(v) = env("GAMIFY_WEBHOOK_KEEP_DAYS") {
            config.webhooks.keep_days =
                parse_env("GAMIFY_WEBHOOK_KEEP_DAYS", &v, "whole days (0: for ever)")?;
        }
        config.validate()?;
        Ok(config)
    }

    /// How webhook deliveries are sent and retried.
    pub fn webhooks(&self) -> Result<crate::webhooks::WebhookSettings, ConfigError> {
        let w = &self.webhooks;
        if !(1..=100).contains(&w.max_attempts) {
            return Err(invalid(
                "webhooks.max_attempts",
                format!("expected 1 to 100, got {}", w.max_attempts),
            ));
        }
        for (field, ms) in [
            ("webhooks.retry_base_ms", w.retry_base_ms),
            ("webhooks.retry_max_ms", w.retry_max_ms),
            ("webhooks.timeout_ms", w.timeout_ms),
        ] {
            if !(1..=86_400_000).contains(&ms) {
                return Err(invalid(
                    field,
                    format!("expected 1 to 86400000 milliseconds, got {ms}"),
                ));
            }
        }
        if w.at_risk_hour > 23 {
            return Err(invalid(
                "webhooks.at_risk_hour",
                format!("expected an hour 0 to 23 (UTC), got {}", w.at_risk_hour),
            ));
        }
        if w.keep_days > MAX_KEEP_DAYS {
            return Err(invalid(
                "webhooks.keep_days",
                format!(
                    "expected 1 to {MAX_KEEP_DAYS} days, or 0 to keep deliveries for ever, got {}",
                    w.keep_days
                ),
            ));
        }
        if w.retry_max_ms < w.retry_base_ms {
            return Err(invalid(
                "webhooks.retry_max_ms",
                "must be at least webhooks.retry_base_ms",
            ));
        }
        let forward = match (&w.external_api, &w.api_key) {
            (None, _) => None,
            (Some(url), _) if !crate::webhooks::deliverable(url) => {
                return Err(invalid(
                    "webhooks.external_api",
                    format!(
                        "expected an http:// or https:// URL, got {}",
                        redact_url(url)
                    ),
                ));
            }
            (Some(_), None) => {
                return Err(invalid(
                    "webhooks.api_key",
                    "GAMIFY_EXTERNAL_API needs GAMIFY_API_KEY: forwarded events carry it as their bearer token",
                ));
            }
            (Some(url), Some(key)) => Some(crate::webhooks::Forward {
                url: url.clone(),
                api_key: key.clone(),
            }),
        };
        Ok(crate::webhooks::WebhookSettings {
            forward,
            max_attempts: w.max_attempts,
            retry_base: Duration::from_millis(w.retry_base_ms),
            retry_max: Duration::from_millis(w.retry_max_ms),
            timeout: Duration::from_millis(w.timeout_ms),
            at_risk_hour: w.at_risk_hour,
            keep_deliveries: (w.keep_days > 0)
                .then(|| Duration::from_secs(u64::from(w.keep_days) * 86_400)),
        })
    }

    /// Checks every setting; the first problem found is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.addr()?;
        self.storage()?;
        self.rules()?;
        self.rule_source()?;
        self.nats()?;
        self.webhooks()?;
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            return Err(invalid(
                "log.format",
                format!("expected \"json\" or \"pretty\", got {:?}", self.log.format),
            ));
        }
        Ok(())
    }

    /// Each key's request budget on one node.
    pub fn rate_limit(&self) -> crate::auth::RateLimit {
        crate::auth::RateLimit {
            per_second: self.server.key_rate_per_second,
            burst: self.server.key_burst,
        }
    }

    /// The listen address.
    pub fn addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.addr.parse().map_err(|_| {
            invalid(
                "server.addr",
                format!(
                    "expected host:port such as 127.0.0.1:8000, got {:?}",
                    self.server.addr
                ),
            )
        })
    }

    /// The storage the URL (or the data dir) names.
    pub fn storage(&self) -> Result<Storage, ConfigError> {
        let Some(url) = &self.storage.database_url else {
            return Ok(Storage::Sqlite(self.storage.data_dir.join("gamify.db")));
        };
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or("");
            if path.is_empty() {
                return Err(invalid(
                    "storage.database_url",
                    "sqlite:// needs a file path, as in sqlite://./data/gamify.db",
                ));
            }
            return Ok(Storage::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return self.postgres(url).map(Storage::Postgres);
        }
        Err(invalid(
            "storage.database_url",
            format!(
                "expected sqlite://PATH or postgres://USER@HOST/DB, got {}",
                redact_url(url)
            ),
        ))
    }

    fn postgres(&self, url: &str) -> Result<PgSettings, ConfigError> {
        let pg = &self.storage.postgres;
        if !(4..=1000).contains(&pg.pool_size) {
            return Err(invalid(
                "storage.postgres.pool_size",
                format!("expected 4 to 1000 connections, got {}", pg.pool_size),
            ));
        }
        for (setting, ms) in [
            ("storage.postgres.connect_timeout_ms", pg.connect_timeout_ms),
            (
                "storage.postgres.statement_timeout_ms",
                pg.statement_timeout_ms,
            ),
        ] {
            if !(100..=600_000).contains(&ms) {
                return Err(invalid(
                    setting,
                    format!("expected 100 to 600000 milliseconds, got {ms}"),
                ));
            }
        }
        if let Some(mode) = &pg.sslmode {
            check_sslmode(mode).map_err(|e| invalid("storage.postgres.sslmode", e))?;
        }
        if let Some(schema) = &pg.schema {
            check_schema(schema).map_err(|e| invalid("storage.postgres.schema", e))?;
        }
        let mut settings = PgSettings::new(url);
        settings.pool_size = pg.pool_size;
        settings.connect_timeout = Duration::from_millis(pg.connect_timeout_ms);
        settings.statement_timeout = Duration::from_millis(pg.statement_timeout_ms);
        settings.sslmode.clone_from(&pg.sslmode);
        settings.schema.clone_from(&pg.schema);
        settings.exclusive = pg
            .exclusive
            .then_some(gamify_store::postgres::lease::DEFAULT_TTL);
        settings.redis = self.redis()?;
        Ok(settings)
    }

    /// The NATS consumer, if a URL is set.
    pub fn nats(&self) -> Result<Option<crate::bus::NatsSettings>, ConfigError> {
        let n = &self.ingest.nats;
        let Some(url) = &n.url else {
            return Ok(None);
        };
        if !(url.starts_with("nats://") || url.starts_with("tls://")) {
            return Err(invalid(
                "ingest.nats.url",
                format!("expected nats://HOST:PORT, got {}", redact_url(url)),
            ));
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        for (setting, value) in [
            ("ingest.nats.stream", &n.stream),
            ("ingest.nats.consumer", &n.consumer),
        ] {
            if !name_ok(value) {
                return Err(invalid(
                    setting,
                    format!("expected letters, digits, - and _, got {value:?}"),
                ));
            }
        }
        let subject_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 255
                && !s.contains(['*', '>', ' '])
                && s.split('.').all(|t| !t.is_empty())
        };
        for (setting, value) in [
            ("ingest.nats.subject", &n.subject),
            ("ingest.nats.dead_letter_subject", &n.dead_letter_subject),
        ] {
            if !subject_ok(value) {
                return Err(invalid(
                    setting,
                    format!(
                        "expected a subject such as gamify.events (no wildcards), got {value:?}"
                    ),
                ));
            }
        }
        if !(1..=3600).contains(&n.ack_wait_seconds) {
            return Err(invalid(
                "ingest.nats.ack_wait_seconds",
                format!("expected 1 to 3600 seconds, got {}", n.ack_wait_seconds),
            ));
        }
        if n.subject == n.dead_letter_subject {
            return Err(invalid(
                "ingest.nats.dead_letter_subject",
                "must differ from ingest.nats.subject",
            ));
        }
        Ok(Some(crate::bus::NatsSettings {
            url: url.clone(),
            stream: n.stream.clone(),
            subject: n.subject.clone(),
            consumer: n.consumer.clone(),
            dead_letter_subject: n.dead_letter_subject.clone(),
            ack_wait: Duration::from_secs(n.ack_wait_seconds),
        }))
    }

    /// Redis for the leaderboards, if a URL is set.
    fn redis(&self) -> Result<Option<RedisSettings>, ConfigError> {
        let r = &self.storage.redis;
        let Some(url) = &r.url else {
            return Ok(None);
        };
        if !(url.starts_with("redis://") || url.starts_with("redis+unix://")) {
            return Err(invalid(
                "storage.redis.url",
                format!("expected redis://HOST:PORT[/DB], got {}", redact_url(url)),
            ));
        }
        if r.prefix.len() > 64 || r.prefix.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(invalid(
                "storage.redis.prefix",
                "expected at most 64 visible ASCII characters",
            ));
        }
        if !(10..=60_000).contains(&r.timeout_ms) {
            return Err(invalid(
                "storage.redis.timeout_ms",
                format!("expected 10 to 60000 milliseconds, got {}", r.timeout_ms),
            ));
        }
        let mut settings = RedisSettings::new(url.clone());
        settings.prefix.clone_from(&r.prefix);
        settings.timeout = Duration::from_millis(r.timeout_ms);
        Ok(Some(settings))
    }

    /// The deployment's settings around the rules.
    pub fn rules(&self) -> Result<Rules, ConfigError> {
        let r = &self.rules;
        let mut grants = Vec::new();
        for (achievement, reward) in &r.achievement_rewards {
            // Which achievements exist is the rules' business (they change at
            // runtime); a grant for one the rules lack never fires.
            let id = AchievementId::parse(achievement).ok_or_else(|| {
                invalid(
                    &format!("rules.achievement_rewards.{achievement}"),
                    "expected an achievement id: a-z, 0-9 and _, starting with a letter",
                )
            })?;
            if !reward.is_empty() {
                grants.push((id, reward.clone()));
            }
        }
        let rules = Rules {
            max_future_skew_ms: r.max_future_skew_seconds.saturating_mul(1000),
            grants,
            expiry: (r.points_expire_after_days > 0).then_some(Expiry {
                days: r.points_expire_after_days,
            }),
        };
        rules
            .validate()
            .map_err(|e| invalid("rules", e.to_string()))?;
        Ok(rules)
    }

    /// What the configuration says about the rules themselves: a file to
    /// make current, and overrides of two of their values. The file is read
    /// and checked here; every mistake is reported with its line.
    pub fn rule_source(&self) -> Result<RuleSource, ConfigError> {
        let r = &self.rules;
        let mut source = RuleSource::default();
        if let Some(path) = &r.file {
            let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
                what: "rules file",
                path: path.clone(),
                reason,
            })?;
            let rules = gamify_core::parse_rules(&text).map_err(|errors| {
                invalid(
                    "rules.file",
                    format!(
                        "{} is not a valid rules file:\n{}",
                        path.display(),
                        errors
                            .iter()
                            .map(|e| format!("  {e}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    ),
                )
            })?;
            source.file = Some((path.clone(), rules));
        }
        if let Some(v) = r.max_event_value {
            if !(v.is_finite() && (0.001..=1e9).contains(&v)) {
                return Err(invalid(
                    "rules.max_event_value",
                    "expected a number from 0.001 to 1000000000",
                ));
            }
            source.max_event_value = Some(Points::from_milli((v * 1000.0).round() as i64));
        }
        if let Some(days) = r.backfill_days {
            if !(1..=gamify_core::rules::MAX_BACKFILL_DAYS).contains(&days) {
                return Err(invalid(
                    "rules.backfill_days",
                    format!(
                        "backfill_days must be between 1 and {}",
                        gamify_core::rules::MAX_BACKFILL_DAYS
                    ),
                ));
            }
            source.backfill_days = Some(days);
        }
        Ok(source)
    }
}

/// The rules the configuration asks for at start (see
/// [`Config::rule_source`]); all `None`: whatever is current stays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleSource {
    /// A rules file and what it says.
    pub file: Option<(PathBuf, gamify_core::RuleSet)>,
    /// `rules.max_event_value`.
    pub max_event_value: Option<Points>,
    /// `rules.backfill_days`.
    pub backfill_days: Option<u32>,
}

impl RuleSource {
    /// The rules to run with when `current` are in force.
    pub fn apply(&self, current: &gamify_core::RuleSet) -> gamify_core::RuleSet {
        let mut rules = self
            .file
            .as_ref()
            .map_or_else(|| current.clone(), |(_, r)| r.clone());
        if let Some(v) = self.max_event_value {
            rules.max_event_value = v;
        }
        if let Some(days) = self.backfill_days {
            rules.backfill_days = days;
        }
        rules
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("storage", &self.storage)
            .field("rules", &self.rules)
            .field("log", &self.log)
            .field("ingest", &self.ingest)
            .field("webhooks", &self.webhooks)
            .field("limits", &self.limits)
            .finish()
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageConfig")
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("data_dir", &self.data_dir)
            .field("postgres", &self.postgres)
            .field("redis", &self.redis)
            .finish()
    }
}

fn parse_env<T: std::str::FromStr>(var: &str, value: &str, what: &str) -> Result<T, ConfigError> {
    value
        .parse()
        .map_err(|_| invalid(var, format!("expected {what}, got {value:?}")))
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_load_and_name_the_embedded_database() {
        let config = Config::load(None, no_env).unwrap();
        assert_eq!(config.addr().unwrap().to_string(), "127.0.0.1:8000");
        assert_eq!(config.limits, Limits::default());
        assert_eq!(
            config.storage().unwrap(),
            Storage::Sqlite(PathBuf::from("./data/gamify.db"))
        );
        assert_eq!(config.rules().unwrap(), Rules::default());
    }

    #[test]
    fn a_file_overrides_defaults_and_env_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gamify.toml");
        std::fs::write(
            &file,
            "[server]\naddr = \"0.0.0.0:9000\"\n[rules]\nbackfill_days = 7\n",
        )
        .unwrap();
        let env = |k: &str| (k == "GAMIFY_ADDR").then(|| "127.0.0.1:9100".to_owned());
        let config = Config::load(Some(&file), env).unwrap();
        assert_eq!(config.server.addr, "127.0.0.1:9100");
        assert_eq!(config.rules.backfill_days, Some(7));
    }

    #[test]
    fn a_file_that_cannot_be_read_is_named_with_its_reason_once() {
        let missing = Path::new("/nonexistent/gamify.toml");
        let err = Config::load(Some(missing), no_env).unwrap_err();
        // The whole chain, as `gamify` prints it.
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert!(
            shown.starts_with("cannot read config file /nonexistent/gamify.toml: "),
            "{shown}"
        );
        assert_eq!(shown.matches("No such file").count(), 1, "{shown}");

        let env =
            |k: &str| (k == "GAMIFY_RULES_FILE").then(|| "/nonexistent/rules.toml".to_owned());
        let shown = Config::load(None, env)
            .and_then(|c| c.rule_source())
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            shown.starts_with("cannot read rules file /nonexistent/rules.toml: "),
            "{shown}"
        );
    }

    #[test]
    fn a_forwarding_url_events_could_never_be_posted_to_is_refused_at_start() {
        for url in [
            "ftp://other.example",
            "http://other.example:70000",
            "https://user:hunter2@other host.example",
        ] {
            let env = |k: &str| match k {
                "GAMIFY_EXTERNAL_API" => Some(url.to_owned()),
                "GAMIFY_API_KEY" => Some("k".repeat(20)),
                _ => None,
            };
            let err = Config::load(None, env)
                .and_then(|c| c.webhooks())
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("webhooks.external_api"), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let env = |k: &str| match k {
            "GAMIFY_EXTERNAL_API" => Some("https://gamify.example.fi:8443/".to_owned()),
            "GAMIFY_API_KEY" => Some("k".repeat(20)),
            _ => None,
        };
        let forward = Config::load(None, env).unwrap().webhooks().unwrap().forward;
        assert!(forward.is_some());
    }

    #[test]
    fn bad_settings_are_reported_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gamify.toml");
        std::fs::write(&file, "[rules]\nbackfil_days = 7\n").unwrap();
        let err = Config::load(Some(&file), no_env).unwrap_err().to_string();
        assert!(err.contains("backfil_days"), "{err}");

        let env = |k: &str| (k == "GAMIFY_BACKFILL_DAYS").then(|| "400".to_owned());
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(
            err.contains("backfill_days must be between 1 and 365"),
            "{err}"
        );

        let env = |k: &str| (k == "GAMIFY_ADDR").then(|| "localhost".to_owned());
        assert!(
            Config::load(None, env)
                .unwrap_err()
                .to_string()
                .starts_with("server.addr")
        );

        for (var, value, name) in [
            ("GAMIFY_MAX_PAGE", "5", "limits.max_page"),
            ("GAMIFY_MAX_BODY_BYTES", "100", "limits.max_body_bytes"),
            (
                "GAMIFY_MAX_METADATA_BYTES",
                "70000",
                "limits.max_metadata_bytes",
            ),
            ("GAMIFY_HEADER_TIMEOUT_MS", "50", "limits.header_timeout_ms"),
            ("GAMIFY_API_KEY", "short", "server.api_key"),
            ("GAMIFY_WORKERS", "5000", "server.workers"),
            ("GAMIFY_WORKERS", "two", "GAMIFY_WORKERS"),
            ("GAMIFY_WEBHOOK_KEEP_DAYS", "40000", "webhooks.keep_days"),
            ("GAMIFY_WEBHOOK_KEEP_DAYS", "-1", "GAMIFY_WEBHOOK_KEEP_DAYS"),
        ] {
            let env = |k: &str| (k == var).then(|| value.to_owned());
            let err = Config::load(None, env).unwrap_err().to_string();
            assert!(err.starts_with(name), "{var}={value}: {err}");
        }
        let env = |k: &str| (k == "GAMIFY_WORKERS").then(|| "1".to_owned());
        assert_eq!(Config::load(None, env).unwrap().server.workers, 1);
        assert_eq!(Config::load(None, no_env).unwrap().server.workers, 0);
        let env = |k: &str| (k == "GAMIFY_MAX_PAGE").then(|| "500".to_owned());
        assert_eq!(Config::load(None, env).unwrap().limits.max_page, 500);
    }

    #[test]
    fn the_delivery_log_keeps_thirty_days_unless_told_otherwise() {
        let keep = |days: Option<&str>| {
            let env = |k: &str| {
                days.filter(|_| k == "GAMIFY_WEBHOOK_KEEP_DAYS")
                    .map(String::from)
            };
            let config = Config::load(None, env).unwrap();
            config.webhooks().unwrap().keep_deliveries
        };
        assert_eq!(keep(None), Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(keep(Some("2")), Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(keep(Some("0")), None, "0 keeps the log for ever");
    }

    #[test]
    fn a_postgres_url_takes_its_pool_timeouts_and_tls_from_the_settings() {
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://gamify@db/gamify?sslmode=prefer".to_owned()),
            "GAMIFY_PG_POOL_SIZE" => Some("32".to_owned()),
            "GAMIFY_PG_STATEMENT_TIMEOUT_MS" => Some("1500".to_owned()),
            "GAMIFY_PG_SSLMODE" => Some("require".to_owned()),
            _ => None,
        };
        let Storage::Postgres(pg) = Config::load(None, env).unwrap().storage().unwrap() else {
            panic!("expected PostgreSQL");
        };
        assert_eq!(pg.pool_size, 32);
        assert_eq!(pg.statement_timeout, Duration::from_millis(1500));
        assert_eq!(pg.connect_timeout, Duration::from_millis(2000));
        assert_eq!(pg.sslmode.as_deref(), Some("require"));
        assert_eq!(pg.exclusive, None);
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://gamify@db/gamify".to_owned()),
            "GAMIFY_PG_EXCLUSIVE" => Some("true".to_owned()),
            _ => None,
        };
        let Storage::Postgres(pg) = Config::load(None, env).unwrap().storage().unwrap() else {
            panic!("expected PostgreSQL");
        };
        assert_eq!(
            pg.exclusive,
            Some(gamify_store::postgres::lease::DEFAULT_TTL)
        );
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://gamify@db/gamify".to_owned()),
            "GAMIFY_PG_SSLMODE" => Some("always".to_owned()),
            _ => None,
        };
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.starts_with("storage.postgres.sslmode"), "{err}");
    }

    #[test]
    fn passwords_never_appear_in_debug_or_errors() {
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://app:s3cret@db:5432/gamify".to_owned()),
            "GAMIFY_PG_POOL_SIZE" => Some("1".to_owned()),
            _ => None,
        };
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("pool_size"), "{err}");
        let env =
            |k: &str| (k == "DATABASE_URL").then(|| "mysql://app:s3cret@db:5432/gamify".to_owned());
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("app:***@db:5432"), "{err}");
        let env = |k: &str| {
            (k == "DATABASE_URL").then(|| "postgres://app:s3cret@db:5432/gamify".to_owned())
        };
        let storage = Config::load(None, env).unwrap().storage().unwrap();
        let shown = format!("{storage:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("app:***@db:5432"), "{shown}");
        let mut config = Config::load(None, no_env).unwrap();
        config.storage.database_url = Some("postgres://app:s3cret@db/gamify".into());
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn redis_is_taken_with_postgres_and_its_password_never_shown() {
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://gamify@db/gamify".to_owned()),
            "REDIS_URL" => Some("redis://:s3cret@cache:6379/2".to_owned()),
            "GAMIFY_REDIS_PREFIX" => Some("shop:".to_owned()),
            _ => None,
        };
        let config = Config::load(None, env).unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
        let Storage::Postgres(pg) = config.storage().unwrap() else {
            panic!("expected PostgreSQL");
        };
        let redis = pg.redis.clone().expect("REDIS_URL taken");
        assert_eq!(redis.prefix, "shop:");
        assert_eq!(redis.timeout, Duration::from_millis(1000));
        let shown = format!("{pg:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains(":***@cache"),
            "{shown}"
        );
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://gamify@db/gamify".to_owned()),
            "REDIS_URL" => Some("http://cache:6379".to_owned()),
            _ => None,
        };
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.starts_with("storage.redis.url"), "{err}");
    }

    #[test]
    fn nats_is_taken_from_the_environment_and_bad_names_refused() {
        assert_eq!(Config::load(None, no_env).unwrap().nats().unwrap(), None);
        let env = |k: &str| match k {
            "GAMIFY_NATS_URL" => Some("nats://bus:4222".to_owned()),
            "GAMIFY_NATS_SUBJECT" => Some("shop.events".to_owned()),
            "GAMIFY_NATS_ACK_WAIT_SECONDS" => Some("5".to_owned()),
            _ => None,
        };
        let nats = Config::load(None, env).unwrap().nats().unwrap().unwrap();
        assert_eq!(nats.subject, "shop.events");
        assert_eq!(nats.stream, "GAMIFY_EVENTS");
        assert_eq!(nats.dead_letter_subject, "gamify.events.dead");
        assert_eq!(nats.ack_wait, Duration::from_secs(5));
        let env = |k: &str| match k {
            "GAMIFY_NATS_URL" => Some("nats://bus:4222".to_owned()),
            "GAMIFY_NATS_SUBJECT" => Some("shop.>".to_owned()),
            _ => None,
        };
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.starts_with("ingest.nats.subject"), "{err}");
        let env = |k: &str| match k {
            "GAMIFY_NATS_URL" => Some("http://bus:4222".to_owned()),
            _ => None,
        };
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.starts_with("ingest.nats.url"), "{err}");
    }
}
