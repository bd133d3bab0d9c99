//! Configuration: the compiled-in defaults (`config.default.toml`), then an
//! optional TOML file, then environment variables, validated once at start.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use gamify_core::{Points, Rules};
use serde::Deserialize;

use crate::engine::Storage;

/// The defaults, with a comment on every setting.
pub const DEFAULT_TOML: &str = include_str!("../config.default.toml");

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
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    pub addr: String,
}

/// `[storage]`
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// A database URL; may hold a password, so never printed as is.
    pub database_url: Option<String>,
    /// Where the default SQLite file lives.
    pub data_dir: PathBuf,
}

/// `[rules]`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// Largest event value.
    pub max_event_value: f64,
    /// Backfill window in days.
    pub backfill_days: u32,
    /// Allowed clock skew in seconds.
    pub max_future_skew_seconds: i64,
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
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
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
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
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
        if let Some(v) = env("DATABASE_URL").filter(|v| !v.is_empty()) {
            config.storage.database_url = Some(v);
        }
        if let Some(v) = env("GAMIFY_DATA_DIR") {
            config.storage.data_dir = v.into();
        }
        if let Some(v) = env("GAMIFY_MAX_EVENT_VALUE") {
            config.rules.max_event_value = v.parse().map_err(|_| {
                invalid(
                    "GAMIFY_MAX_EVENT_VALUE",
                    format!("expected a number, got {v:?}"),
                )
            })?;
        }
        if let Some(v) = env("GAMIFY_BACKFILL_DAYS") {
            config.rules.backfill_days = v.parse().map_err(|_| {
                invalid(
                    "GAMIFY_BACKFILL_DAYS",
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
        config.validate()?;
        Ok(config)
    }

    /// Checks every setting; the first problem found is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.addr()?;
        self.storage()?;
        self.rules()?;
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            return Err(invalid(
                "log.format",
                format!("expected \"json\" or \"pretty\", got {:?}", self.log.format),
            ));
        }
        Ok(())
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
            return Err(invalid(
                "storage.database_url",
                format!(
                    "PostgreSQL ({}) is not supported by this build yet; use sqlite://PATH",
                    redact_url(url)
                ),
            ));
        }
        Err(invalid(
            "storage.database_url",
            format!("expected sqlite://PATH, got {}", redact_url(url)),
        ))
    }

    /// The rule limits.
    pub fn rules(&self) -> Result<Rules, ConfigError> {
        let r = &self.rules;
        if !(r.max_event_value.is_finite()
            && r.max_event_value >= 0.001
            && r.max_event_value <= 1e9)
        {
            return Err(invalid(
                "rules.max_event_value",
                "expected a number from 0.001 to 1000000000",
            ));
        }
        let rules = Rules {
            max_event_value: Points::from_milli((r.max_event_value * 1000.0).round() as i64),
            backfill_days: r.backfill_days,
            max_future_skew_ms: r.max_future_skew_seconds.saturating_mul(1000),
        };
        rules
            .validate()
            .map_err(|e| invalid("rules", e.to_string()))?;
        Ok(rules)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("storage", &self.storage)
            .field("rules", &self.rules)
            .field("log", &self.log)
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
            .finish()
    }
}

/// The URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_owned(),
    }
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
        assert_eq!(config.rules.backfill_days, 7);
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
    }

    #[test]
    fn passwords_never_appear_in_debug_or_errors() {
        let env = |k: &str| {
            (k == "DATABASE_URL").then(|| "postgres://app:s3cret@db:5432/gamify".to_owned())
        };
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("app:***@db:5432"), "{err}");
        let mut config = Config::load(None, no_env).unwrap();
        config.storage.database_url = Some("postgres://app:s3cret@db/gamify".into());
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
