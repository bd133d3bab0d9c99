//! The engine: what an embedder calls and what the HTTP layer wraps.
//!
//! It parses raw input into domain types (collecting every field error at
//! once), asks the [`Store`] to score and keep events, and renders what the
//! store returns in the brief's shapes. It holds no state of its own beyond
//! the store, the rule limits and the clock, so any number of engines (or
//! nodes) can share one database.

use std::path::PathBuf;
use std::sync::Arc;

use gamify_core::{Action, Day, Expiry, Points, RuleError, Rules, UserId, Value};
use gamify_store::postgres::{Migrations, PgSettings, PgStore};
use gamify_store::scoring::score;
use gamify_store::sqlite::SqliteStore;
use gamify_store::{
    Idempotency, NewEvent, RuleBook, RuleVersion, Store, StoreError, UserFilter, UserSnapshot,
};
use sha2::{Digest, Sha256};

use crate::auth::{KeyRing, Limiter, RateLimit};
use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::model::{
    BalanceResponse, EventRequest, EventResponse, FieldError, LeaderboardEntry, SimulationResponse,
    StatsResponse, level_fields, parse_rfc3339_ms, render_event, render_leader, rfc3339_ms,
};

/// Events returned per page when no limit is given.
pub const DEFAULT_PAGE: u32 = 10;

/// The sizes a request may have (`[limits]` in the configuration); the
/// defaults are `config.default.toml`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The largest request body (413 past it).
    pub max_body_bytes: usize,
    /// The largest `metadata` object, serialised (422 past it).
    pub max_metadata_bytes: usize,
    /// The largest `limit` of a page of events, ledger entries,
    /// redemptions, deliveries or leaderboard rows (422 past it).
    pub max_page: u32,
    /// How long a connection may take to send a request's head (its line
    /// and headers), in milliseconds; past it the connection is closed, so
    /// that slow or stalled clients cannot hold connections open forever.
    /// The clock runs while a kept-alive connection waits for its next
    /// request too, so this is also its idle timeout: it should outlast a
    /// load balancer's (75 s by default, above the 60 s of AWS's and
    /// nginx's), or the balancer may send a request on a connection just
    /// as it is closed.
    pub header_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 64 * 1024,
            max_metadata_bytes: 4096,
            max_page: 100,
            header_timeout_ms: 75_000,
        }
    }
}

/// The longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Where the engine keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// An SQLite file, created if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL database, which any number of engines may share. Its
    /// `Debug` output hides the password.
    Postgres(PgSettings),
}

/// Where, for a message: the file, or the database's URL without its
/// password and the schema if one is set.
impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Sqlite(path) => write!(f, "SQLite file {}", path.display()),
            Storage::Postgres(s) => {
                write!(f, "PostgreSQL {}", s.redacted_url())?;
                match &s.schema {
                    Some(schema) => write!(f, " (schema {schema})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// Why the engine refused or failed a call.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The input is invalid; one entry per offending field. Nothing changed.
    #[error("invalid input: {}", summary(.0))]
    Invalid(Vec<FieldError>),
    /// The idempotency key was used before with a different request.
    #[error("idempotency key was already used with a different request")]
    IdempotencyConflict,
    /// Refused by the rules of spending (409); nothing changed.
    #[error(transparent)]
    Refused(gamify_core::Refusal),
    /// No such reward or redemption (404).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// The request conflicts with what is stored (409): `code` says how.
    #[error("{message}")]
    Conflict {
        /// `already_exists` or `redemption_closed`.
        code: &'static str,
        /// What conflicts.
        message: String,
    },
    /// The user was erased (410): nothing more is recorded for the id.
    #[error("this user was erased; nothing more is recorded for them")]
    Erased,
    /// Storage is unavailable (shutting down, or its writer stopped).
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    /// Storage failed.
    #[error("storage failed")]
    Store(#[source] StoreError),
}

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl EngineError {
    /// The field errors of an [`EngineError::Invalid`]; none otherwise.
    pub fn fields(self) -> Vec<FieldError> {
        match self {
            EngineError::Invalid(errors) => errors,
            _ => Vec::new(),
        }
    }

    pub(crate) fn field(field: &str, message: impl Into<String>) -> EngineError {
        EngineError::Invalid(vec![FieldError {
            field: field.to_owned(),
            message: message.into(),
        }])
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IdempotencyConflict => EngineError::IdempotencyConflict,
            StoreError::UnknownCursor => {
                EngineError::field("before", "does not name an event of this user")
            }
            StoreError::Rule(rule) => EngineError::field(rule.field(), rule.to_string()),
            StoreError::Refused(refusal) => EngineError::Refused(refusal),
            StoreError::NotFound(what) => EngineError::NotFound(what),
            StoreError::AlreadyExists(_) => EngineError::Conflict {
                code: "already_exists",
                message: e.to_string(),
            },
            StoreError::RedemptionClosed(_) => EngineError::Conflict {
                code: "redemption_closed",
                message: e.to_string(),
            },
            StoreError::StockBelowRedeemed(_) => EngineError::field("stock", e.to_string()),
            StoreError::Unavailable(_) | StoreError::BoardsUnavailable(_) => {
                EngineError::Unavailable(e)
            }
            StoreError::Erased => EngineError::Erased,
            other => EngineError::Store(other),
        }
    }
}

/// Opens (and with [`Migrations::Apply`] migrates) the store at `storage`.
/// `leaderboards`: build the embedded store's rank index, or keep Redis in
/// step, and take PostgreSQL's exclusive lease if configured; maintenance
/// commands skip it.
pub(crate) async fn open_store(
    storage: &Storage,
    rules: &Rules,
    migrations: Migrations,
    leaderboards: bool,
) -> Result<Arc<dyn Store>, EngineError> {
    Ok(match storage {
        Storage::Postgres(settings) => {
            let store = PgStore::connect(settings, rules.clone(), migrations).await?;
            if leaderboards {
                store.hold_lease().await?;
                store.keep_boards_in_sync().await;
            }
            Arc::new(store)
        }
        Storage::Sqlite(path) => {
            let (path, rules) = (path.clone(), rules.clone());
            // Opening migrates: file I/O, kept off the async workers.
            let store = tokio::task::spawn_blocking(move || {
                SqliteStore::open_with(&path, rules, leaderboards)
            })
            .await
            .map_err(|_| EngineError::Unavailable(StoreError::Unavailable("open task failed")))??;
            Arc::new(store)
        }
    })
}

fn rule_error(e: RuleError) -> FieldError {
    FieldError {
        field: e.field().to_owned(),
        message: e.to_string(),
    }
}

/// The Gamify engine. Cheap to clone: one shared pointer, since every
/// request clones it several times (each extractor's `State`), and copying
/// a handful of shared pointers and the rules was a tenth of a leaderboard
/// read's CPU.
#[derive(Clone)]
pub struct Engine {
    parts: Arc<Parts>,
}

/// What an [`Engine`] holds.
#[derive(Clone)]
struct Parts {
    store: Arc<dyn Store>,
    /// The store's rule versions (shared with it).
    book: Arc<RuleBook>,
    rules: Rules,
    clock: Arc<dyn Clock>,
    keys: Arc<KeyRing>,
    limiter: Arc<Limiter>,
    limits: Limits,
    cors_origins: Arc<[String]>,
    metrics: Arc<Metrics>,
    /// Board pages kept for reuse (see [`Engine::board_page`]); one set per
    /// store.
    pages: Arc<crate::boards::PageCache>,
}

impl Engine {
    /// Opens the engine on `storage` with the system clock. An SQLite file is
    /// created and migrated as needed (this process owns it); a PostgreSQL
    /// database must already have this binary's schema (see
    /// [`Engine::open_migrating`]), because other nodes share it.
    pub async fn open(storage: &Storage, rules: Rules) -> Result<Engine, EngineError> {
        Engine::open_with(storage, rules, Migrations::Check, true).await
    }

    /// Like [`Engine::open`] (or [`Engine::open_migrating`] with
    /// `migrating`), for a command that reads or writes rows and serves no
    /// requests (export, import, verify, erase): the embedded store skips
    /// building its leaderboards, which at millions of users costs seconds
    /// and memory; board reads are then refused.
    pub async fn open_for_maintenance(
        storage: &Storage,
        rules: Rules,
        migrating: bool,
    ) -> Result<Engine, EngineError> {
        let migrations = if migrating {
            Migrations::Apply
        } else {
            Migrations::Check
        };
        Engine::open_with(storage, rules, migrations, false).await
    }

    /// Like [`Engine::open`], but first applies any PostgreSQL migrations the
    /// database lacks (safe while other nodes do the same).
    pub async fn open_migrating(storage: &Storage, rules: Rules) -> Result<Engine, EngineError> {
        Engine::open_with(storage, rules, Migrations::Apply, true).await
    }

    /// Applies the migrations `storage` lacks (each is logged). For SQLite
    /// that is creating or opening the file.
    pub async fn migrate(storage: &Storage, rules: Rules) -> Result<(), EngineError> {
        match storage {
            Storage::Postgres(settings) => {
                PgStore::migrate(settings).await?;
            }
            Storage::Sqlite(_) => {
                Engine::open(storage, rules).await?;
            }
        }
        Ok(())
    }

    async fn open_with(
        storage: &Storage,
        rules: Rules,
        migrations: Migrations,
        leaderboards: bool,
    ) -> Result<Engine, EngineError> {
        rules
            .validate()
            .map_err(|e| EngineError::field("rules", e.to_string()))?;
        let store = open_store(storage, &rules, migrations, leaderboards).await?;
        Ok(Engine::with_store(store, rules, Arc::new(SystemClock)))
    }

    /// An engine for another tenant on this node, over `store`: the same
    /// deployment rules, clock, limits, CORS origins and metrics, and no
    /// keys but the tenant's own (read by [`Engine::refresh_keys`]).
    pub fn for_tenant(&self, store: Arc<dyn Store>) -> Engine {
        Engine {
            parts: Arc::new(Parts {
                book: store.rule_book(),
                store,
                rules: self.parts.rules.clone(),
                clock: self.parts.clock.clone(),
                keys: Arc::new(KeyRing::new(None)),
                limiter: Arc::new(Limiter::new(self.parts.limiter.limit())),
                limits: self.parts.limits,
                cors_origins: self.parts.cors_origins.clone(),
                metrics: self.parts.metrics.clone(),
                pages: Arc::default(),
            }),
        }
    }

    /// An engine over any store and clock (tests use a manual clock).
    pub fn with_store(store: Arc<dyn Store>, rules: Rules, clock: Arc<dyn Clock>) -> Engine {
        Engine {
            parts: Arc::new(Parts {
                book: store.rule_book(),
                store,
                rules,
                clock,
                keys: Arc::new(KeyRing::new(None)),
                limiter: Arc::default(),
                limits: Limits::default(),
                cors_origins: Arc::from(Vec::new()),
                metrics: Arc::default(),
                pages: Arc::default(),
            }),
        }
    }

    /// The same engine, with a key of every scope from the configuration
    /// (`GAMIFY_API_KEY`), besides the keys in storage. With neither, the
    /// HTTP API is open and its admin routes are off (see [`crate::auth`]).
    pub fn with_api_key(mut self, key: Option<String>) -> Engine {
        Arc::make_mut(&mut self.parts).keys = Arc::new(KeyRing::new(key.as_deref()));
        self
    }

    /// The same engine, letting pages from `origins` (`https://site.example`,
    /// or `*` for any) read the API from a browser: the embeddable wallet.
    pub fn with_cors_origins(mut self, origins: Vec<String>) -> Engine {
        Arc::make_mut(&mut self.parts).cors_origins = Arc::from(origins);
        self
    }

    /// The `Access-Control-Allow-Origin` value for a request from
    /// `origin`, if that origin may read the answer.
    pub fn cors_allows(&self, origin: &str) -> Option<&str> {
        self.parts
            .cors_origins
            .iter()
            .find_map(|o| match o.as_str() {
                "*" => Some("*"),
                o if o == origin => Some(o),
                _ => None,
            })
    }

    /// The keys this engine's HTTP API accepts.
    pub fn key_ring(&self) -> &KeyRing {
        &self.parts.keys
    }

    /// The same engine, limiting how many requests each key makes on it.
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Engine {
        Arc::make_mut(&mut self.parts).limiter = Arc::new(Limiter::new(limit));
        self
    }

    /// Every key's request budget on this node.
    pub fn limiter(&self) -> &Limiter {
        &self.parts.limiter
    }

    /// The same engine, with other request size limits.
    pub fn with_limits(mut self, limits: Limits) -> Engine {
        Arc::make_mut(&mut self.parts).limits = limits;
        self
    }

    /// The request size limits in force.
    pub fn limits(&self) -> Limits {
        self.parts.limits
    }

    /// A page size: `limit`, or the default, if within 1..=`max_page`.
    pub(crate) fn check_limit(&self, limit: Option<u32>) -> Result<u32, EngineError> {
        let max = self.parts.limits.max_page;
        match limit.unwrap_or(DEFAULT_PAGE.min(max)) {
            n if (1..=max).contains(&n) => Ok(n),
            _ => Err(EngineError::field(
                "limit",
                format!("limit must be between 1 and {max}"),
            )),
        }
    }

    /// A page from `rows` fetched with one more than `limit` asked for:
    /// the first `limit` of them, and when there were more, the cursor of
    /// the last one kept (`cursor` says what it is), for the next page.
    pub(crate) fn page_of<T>(
        mut rows: Vec<T>,
        limit: u32,
        cursor: impl Fn(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            let next = rows.last().map(cursor);
            (rows, next)
        } else {
            (rows, None)
        }
    }

    /// A request's `metadata` as stored: a JSON object of at most
    /// `max_metadata_bytes`, or nothing.
    pub(crate) fn metadata_text(
        &self,
        metadata: &Option<serde_json::Value>,
    ) -> Result<Option<String>, FieldError> {
        let max = self.parts.limits.max_metadata_bytes;
        match metadata {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(m @ serde_json::Value::Object(_)) => {
                let text = m.to_string();
                if text.len() > max {
                    return Err(FieldError {
                        field: "metadata".into(),
                        message: format!("metadata must be at most {max} bytes as JSON"),
                    });
                }
                Ok(Some(text))
            }
            Some(_) => Err(FieldError {
                field: "metadata".into(),
                message: "metadata must be a JSON object".into(),
            }),
        }
    }

    /// The deployment's settings around the rules (skew, grants, expiry).
    pub fn rules(&self) -> &Rules {
        &self.parts.rules
    }

    /// The rules new events are scored with, and their version.
    pub fn current_rules(&self) -> Arc<RuleVersion> {
        self.parts.book.current()
    }

    /// Every version of the rules.
    pub fn rule_book(&self) -> &RuleBook {
        &self.parts.book
    }

    /// Records an event and returns it with what it earned.
    ///
    /// With an idempotency key, a repeat of the same request returns the
    /// original event (the `bool` is true) and records nothing; the same key
    /// with a different request is [`EngineError::IdempotencyConflict`].
    pub async fn record_event(
        &self,
        request: EventRequest,
        idempotency_key: Option<&str>,
    ) -> Result<(EventResponse, bool), EngineError> {
        let event = self.parse_event(&request, idempotency_key)?;
        let recorded = self.parts.store.record_event(event).await?;
        let response = render_event(&recorded.event, &self.parts.book);
        if recorded.replayed {
            self.parts.metrics.replay();
        } else {
            self.parts.metrics.event(&recorded.event, response.level_up);
        }
        Ok((response, recorded.replayed))
    }

    /// What `request` would earn if it were recorded now, with the same
    /// breakdown, without writing anything. Scored by the same function as
    /// recording, on the user's latest committed state; an event recorded
    /// in between may change the answer.
    pub async fn simulate(&self, request: EventRequest) -> Result<SimulationResponse, EngineError> {
        let event = self.parse_event(&request, None)?;
        // Recording it would be refused: say so, as recording would.
        if self.parts.store.erasure(&event.user_id).await?.is_some() {
            return Err(EngineError::Erased);
        }
        let before = self.parts.store.user(&event.user_id).await?;
        let rules = self
            .parts
            .book
            .rules(event.rules_version, "a simulated event")?;
        let (record, _) = score(&event, before.map(|s| (*s).clone()), &rules)?;
        Ok(SimulationResponse::from(render_event(
            &record,
            &self.parts.book,
        )))
    }

    /// Checks every field of an event (all errors at once) and makes it a
    /// new event stamped now.
    fn parse_event(
        &self,
        request: &EventRequest,
        idempotency_key: Option<&str>,
    ) -> Result<NewEvent, EngineError> {
        let now = self.parts.clock.now_ms();
        // Checked against the current version, and scored with it too.
        let current = self.parts.book.current();
        let rules = &current.rules;
        let mut errors = Vec::new();
        let user_id = UserId::parse(&request.user_id)
            .map_err(|e| errors.push(rule_error(e)))
            .ok();
        let category = rules
            .category(&request.category)
            .map_err(|e| errors.push(rule_error(e)))
            .ok();
        let action = Action::parse(&request.action)
            .map_err(|e| errors.push(rule_error(e)))
            .ok();
        let value = Value::from_f64(request.value, rules.max_event_value)
            .map_err(|e| errors.push(rule_error(e)))
            .ok();
        let occurred_at = match &request.occurred_at {
            None => Some(now),
            Some(text) => match parse_rfc3339_ms(text) {
                None => {
                    errors.push(FieldError {
                        field: "occurred_at".into(),
                        message:
                            "occurred_at must be an RFC 3339 time such as 2025-10-12T10:30:00Z"
                                .into(),
                    });
                    None
                }
                Some(at) => rules
                    .check_occurred_at(at, now, self.parts.rules.max_future_skew_ms)
                    .map_err(|e| errors.push(rule_error(e)))
                    .map(|_| at)
                    .ok(),
            },
        };
        let metadata = self.metadata_text(&request.metadata).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        if let Some(key) = idempotency_key
            && let Err(message) = check_idempotency_key(key)
        {
            errors.push(FieldError {
                field: "Idempotency-Key".into(),
                message,
            });
        }
        let (Some(user_id), Some(category), Some(action), Some(value), Some(occurred_at_ms), true) = (
            user_id,
            category,
            action,
            value,
            occurred_at,
            errors.is_empty(),
        ) else {
            return Err(EngineError::Invalid(errors));
        };

        let idempotency = idempotency_key.map(|key| Idempotency {
            key: key.to_owned(),
            fingerprint: fingerprint(request, value),
        });
        Ok(NewEvent {
            id: new_event_id(now),
            user_id,
            category,
            action,
            value,
            metadata,
            occurred_at_ms,
            created_at_ms: now,
            idempotency,
            rules_version: current.version,
        })
    }

    /// The user's wallet; zeros for a user with no events.
    pub async fn balance(&self, user_id: &str) -> Result<BalanceResponse, EngineError> {
        let user = parse_user(user_id)?;
        let snapshot = self.parts.store.user(&user).await?.unwrap_or_default();
        self.render_balance(user.as_str(), &snapshot).await
    }

    /// A stored user's wallet, as `GET /balance` shows it now.
    pub(crate) async fn render_balance(
        &self,
        user_id: &str,
        snapshot: &UserSnapshot,
    ) -> Result<BalanceResponse, EngineError> {
        let user = parse_user(user_id)?;
        let state = &snapshot.state;
        let expiring = match self.parts.rules.expiry {
            Some(expiry) if state.total > Points::ZERO => {
                // Whatever will be past its cutoff 30 days from now.
                let cutoff = expiry.cutoff_ms(self.now_ms() + 30 * 86_400_000);
                let credited = self.parts.store.credited_since(&user, cutoff).await?;
                Expiry::due(state.total, credited)
            }
            _ => Points::ZERO,
        };
        let (level, next_level_points) =
            level_fields(&self.parts.book.current().rules, state.lifetime);
        Ok(BalanceResponse {
            user_id: user_id.to_owned(),
            total_points: state.total.to_f64(),
            lifetime_points: state.lifetime.to_f64(),
            streak_days: state.runs.current(self.today()),
            best_streak: state.best_streak,
            last_event: snapshot.last_event_at_ms.map(rfc3339_ms),
            level,
            next_level_points,
            achievements: state
                .achievements
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            expiring_points: expiring.to_f64(),
        })
    }

    /// Expires what is due of every user's points (a no-op while expiry is
    /// off): walks the users holding points, 500 at a time, and asks the
    /// store to expire each (decided under the user's serialisation).
    /// Returns the users whose points expired, and the points.
    pub async fn expire_due_points(&self) -> Result<(u64, Points), EngineError> {
        let Some(expiry) = self.parts.rules.expiry else {
            return Ok((0, Points::ZERO));
        };
        let now = self.now_ms();
        let cutoff = expiry.cutoff_ms(now);
        let (mut users, mut expired, mut checked) = (0u64, Points::ZERO, 0u64);
        let mut after: Option<String> = None;
        loop {
            let page = self
                .parts
                .store
                .users_where(UserFilter::Holding, after.as_deref(), 500)
                .await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            let mut tasks = tokio::task::JoinSet::new();
            for id in page {
                let store = self.parts.store.clone();
                tasks.spawn(async move {
                    let user = UserId::parse(&id)
                        .map_err(|_| StoreError::Corrupt(format!("stored user id {id:?}")))?;
                    store.expire(&user, cutoff, now).await
                });
            }
            while let Some(done) = tasks.join_next().await {
                let points = done.map_err(|_| {
                    EngineError::Unavailable(StoreError::Unavailable("expiry task"))
                })??;
                checked += 1;
                if points > Points::ZERO {
                    users += 1;
                    expired = expired.checked_add(points).map_err(StoreError::Rule)?;
                }
            }
            tracing::info!(checked, users, expired = %expired, "expiring points");
            after = Some(last);
        }
        Ok((users, expired))
    }

    /// Runs [`Engine::expire_due_points`] now and then shortly after every
    /// UTC midnight (when points become due), and hourly in between in case
    /// a sweep failed, until dropped. Does nothing while expiry is off.
    pub async fn run_expiry_sweeps(self) {
        if self.parts.rules.expiry.is_none() {
            return;
        }
        loop {
            match self.expire_due_points().await {
                Ok((users, points)) => {
                    tracing::info!(users, points = %points, "expiry sweep done")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "expiry sweep failed; retrying within the hour")
                }
            }
            let day = 86_400_000;
            let now = self.now_ms();
            let next_midnight = (now.div_euclid(day) + 1) * day + 30_000;
            let wait = (next_midnight - now).clamp(1_000, 3_600_000);
            tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
        }
    }

    /// The user's statistics; zeros for a user with no events.
    pub async fn stats(&self, user_id: &str) -> Result<StatsResponse, EngineError> {
        let user = parse_user(user_id)?;
        let snapshot = self.parts.store.user(&user).await?.unwrap_or_default();
        let totals = &snapshot.state.categories;
        Ok(StatsResponse {
            user_id: user.as_str().to_owned(),
            total_events: snapshot.event_count,
            events_by_category: totals
                .iter()
                .map(|t| (t.category.as_str().to_owned(), t.events))
                .collect(),
            points_by_category: totals
                .iter()
                .map(|t| (t.category.as_str().to_owned(), t.points.to_f64()))
                .collect(),
            best_streak: snapshot.state.best_streak,
            current_streak: snapshot.state.runs.current(self.today()),
            achievements: snapshot
                .state
                .achievements
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
        })
    }

    /// A page of the user's events, newest first, and the cursor for the next
    /// (older) page if there is one.
    pub async fn events(
        &self,
        user_id: &str,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<(Vec<EventResponse>, Option<String>), EngineError> {
        let user = parse_user(user_id)?;
        let limit = self.check_limit(limit)?;
        let page = self.parts.store.events(&user, limit, before).await?;
        Ok((
            page.events
                .iter()
                .map(|e| render_event(e, &self.parts.book))
                .collect(),
            page.next_cursor,
        ))
    }

    /// The top users by lifetime points.
    pub async fn leaderboard(
        &self,
        limit: Option<u32>,
    ) -> Result<Vec<LeaderboardEntry>, EngineError> {
        let limit = self.check_limit(limit)?;
        let rows = self.parts.store.leaderboard(limit).await?;
        let current = self.parts.book.current();
        Ok(rows
            .iter()
            .map(|row| render_leader(row, &current.rules))
            .collect())
    }

    /// Whether storage answers.
    pub async fn ready(&self) -> Result<(), EngineError> {
        Ok(self.parts.store.ping().await?)
    }

    /// The store (for the engine's other modules).
    /// The node stops serving: the store gives up what others wait for
    /// (PostgreSQL's exclusive lease).
    pub async fn close(&self) {
        self.store().close().await;
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.parts.store.as_ref()
    }

    /// The board pages kept for reuse (see [`Engine::board_page`]).
    pub(crate) fn board_pages(&self) -> &crate::boards::PageCache {
        &self.parts.pages
    }

    /// This process's counters (`GET /metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.parts.metrics
    }

    /// The metrics in Prometheus's text format, the store's gauges included.
    pub fn render_metrics(&self) -> String {
        self.parts.metrics.render(&self.parts.store.gauges())
    }

    /// The engine clock's now, in Unix ms.
    pub(crate) fn now_ms(&self) -> i64 {
        self.parts.clock.now_ms()
    }

    fn today(&self) -> Day {
        Day::from_unix_millis(self.parts.clock.now_ms())
    }
}

pub(crate) fn parse_user(user_id: &str) -> Result<UserId, EngineError> {
    UserId::parse(user_id).map_err(|e| EngineError::Invalid(vec![rule_error(e)]))
}

pub(crate) fn check_idempotency_key(key: &str) -> Result<(), String> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
        ));
    }
    Ok(())
}

/// `evt_`, the time in milliseconds (12 hex digits), then 64 random bits (16
/// hex digits). Random so that any number of nodes can mint ids without
/// coordinating (the UNIQUE constraint catches a collision); time first so
/// that new ids land at the end of the id index instead of all over it,
/// which keeps each commit's writes small.
fn new_event_id(now_ms: i64) -> String {
    new_id("evt", now_ms)
}

/// An id of this shape with another prefix (`spd`, `adj`, `red`).
///
/// Ids one process makes within one millisecond sort in the order it made
/// them (see [`tail_after`]), so listings ordered by id (redemptions, and
/// keys and webhooks made in one millisecond) read newest first exactly.
///
/// Written digit by digit, with its random bits from a per-thread
/// buffer that the OS random source fills for 32 ids at a time: an id is
/// made for every event, and `format!` and a `getrandom` call each took
/// more than the rest of making it. (Ids are unique, not secret: API key
/// secrets come from `auth::new_secret`.)
pub(crate) fn new_id(prefix: &str, now_ms: i64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let time = now_ms.clamp(0, 0xffff_ffff_ffff) as u64;
    let random = tail_after(time, random_u64());
    let mut id = String::with_capacity(prefix.len() + 29);
    id.push_str(prefix);
    id.push('_');
    for shift in (0..12).rev() {
        id.push(char::from(HEX[(time >> (4 * shift)) as usize & 15]));
    }
    for shift in (0..16).rev() {
        id.push(char::from(HEX[(random >> (4 * shift)) as usize & 15]));
    }
    id
}

/// The last 64 bits of an id made at `time`: one more than the previous
/// id this process made in that millisecond, or `fresh` with its top bit
/// cleared for the millisecond's first (counting up from there cannot run
/// out: 2^63 ids). Across milliseconds the time digits order ids; across
/// nodes, within one millisecond, the order is arbitrary (their clocks do
/// not agree that finely anyway). 63 random bits per node and millisecond
/// still make a clash between nodes vanishingly rare, and the UNIQUE
/// constraint catches one.
///
/// Each millisecond's last tail is kept in one of 4,096 slots (by time),
/// not in one "last id" pair: requests take the time a little before they
/// make an id, so ids for neighbouring milliseconds interleave, and one
/// pair would forget a millisecond as soon as its neighbour's id came
/// between two of its own. A slot is taken over by a millisecond 4.096 s
/// later, long after any request of the earlier one has made its id.
/// The tail counts ids, but only within one millisecond: it tells nobody
/// how many ids a node made between two they saw.
fn tail_after(time: u64, fresh: u64) -> u64 {
    use std::sync::Mutex;
    const SLOTS: usize = 4096;
    /// Per slot: the millisecond it holds and the last tail made in it.
    static LAST: [Mutex<(u64, u64)>; SLOTS] = [const { Mutex::new((u64::MAX, 0)) }; SLOTS];
    let slot = &LAST[(time % SLOTS as u64) as usize];
    // Nothing in here can panic, so a poisoned lock still holds a whole pair.
    let mut last = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let tail = if last.0 == time {
        last.1 + 1
    } else {
        fresh >> 1
    };
    *last = (time, tail);
    tail
}

/// 64 bits from the OS random source, taken from a per-thread buffer.
fn random_u64() -> u64 {
    use std::cell::RefCell;
    const IDS: usize = 32;
    thread_local! {
        static BUFFER: RefCell<([u8; 8 * IDS], usize)> = const { RefCell::new(([0; 8 * IDS], 8 * IDS)) };
    }
    BUFFER.with_borrow_mut(|(bytes, used)| {
        if *used == bytes.len() {
            // The OS random source failing is not something to limp on from.
            getrandom::fill(bytes).expect("the operating system's random source is available");
            *used = 0;
        }
        let mut next = [0u8; 8];
        next.copy_from_slice(&bytes[*used..*used + 8]);
        // Each id's bits are used once.
        bytes[*used..*used + 8].fill(0);
        *used += 8;
        u64::from_be_bytes(next)
    })
}

/// A hash of what makes a request the same request: a retry must match it.
/// Metadata is hashed with its object keys sorted, so key order does not
/// matter; the value is compared as stored (to the thousandth).
fn fingerprint(request: &EventRequest, value: Value) -> String {
    let canonical = serde_json::json!([
        request.user_id,
        request.category,
        request.action,
        value.milli(),
        request.occurred_at.as_deref().and_then(parse_rfc3339_ms),
        request.metadata.as_ref().map(sorted),
    ]);
    fingerprint_of(&canonical)
}

/// SHA-256 of a JSON value with its object keys sorted, in hex.
pub(crate) fn fingerprint_of(canonical: &serde_json::Value) -> String {
    let digest = Sha256::digest(sorted(canonical).to_string().as_bytes());
    gamify_store::hex(&digest)
}

fn sorted(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Array(
                entries
                    .into_iter()
                    .map(|(k, v)| serde_json::json!([k, sorted(v)]))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(sorted).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_metadata_key_order_but_not_values() {
        let a = EventRequest::new("u", "finance", "x", 1.0)
            .metadata(serde_json::json!({"a": 1, "b": 2}));
        let b = EventRequest::new("u", "finance", "x", 1.0)
            .metadata(serde_json::json!({"b": 2, "a": 1}));
        let c = EventRequest::new("u", "finance", "x", 1.0)
            .metadata(serde_json::json!({"a": 1, "b": 3}));
        let v = Value::from_milli(1000);
        assert_eq!(fingerprint(&a, v), fingerprint(&b, v));
        assert_ne!(fingerprint(&a, v), fingerprint(&c, v));
    }

    #[test]
    fn event_ids_look_like_the_briefs_and_differ() {
        let (a, b) = (
            new_event_id(1_760_265_000_000),
            new_event_id(1_760_265_000_001),
        );
        assert!(a.starts_with("evt_") && a.len() == 32, "{a}");
        assert_ne!(a, new_event_id(1_760_265_000_000), "random part differs");
        assert!(a < b, "later ids sort after earlier ones");
        assert_eq!(&a[4..16], format!("{:012x}", 1_760_265_000_000u64), "{a}");
        assert!(
            a[4..]
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn ids_made_past_several_refills_of_the_random_buffer_are_all_distinct() {
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| new_id("spd", 1_760_265_000_000))
            .collect();
        assert_eq!(ids.len(), 1000);
        let randoms: std::collections::HashSet<&str> = ids.iter().map(|id| &id[16..]).collect();
        assert_eq!(randoms.len(), 1000, "no random part repeats");
    }

    #[test]
    fn ids_made_in_one_millisecond_sort_in_the_order_they_were_made() {
        let made: Vec<Vec<String>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..500).map(|_| new_id("red", 1_760_265_000_123)).collect()))
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        for ids in &made {
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        }
        let all: std::collections::HashSet<&String> = made.iter().flatten().collect();
        assert_eq!(all.len(), 2000);
        // The next millisecond starts afresh and still sorts after.
        let later = new_id("red", 1_760_265_000_124);
        assert!(made.iter().flatten().all(|id| *id < later));
        // Requests take the time before they make an id, so neighbouring
        // milliseconds interleave; each still comes out in order.
        let (mut even, mut odd) = (Vec::new(), Vec::new());
        for i in 0..100 {
            even.push(new_id("red", 1_760_265_000_200));
            if i % 3 == 0 {
                odd.push(new_id("red", 1_760_265_000_201));
            }
        }
        for ids in [&even, &odd] {
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        }
    }
}
