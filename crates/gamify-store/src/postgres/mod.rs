//! PostgreSQL: one database shared by any number of `gamify` nodes.
//!
//! Nothing here is kept between requests that another node could change: a
//! node holds no cache and no lock of its own. What one node does is made
//! safe against the others by the database. The exception is a node that
//! holds the exclusive lease ([`lease`], `GAMIFY_PG_EXCLUSIVE`): no other
//! node writes while it holds it, so it keeps users' state in memory.
//!
//! **Writes** wait in a queue that a few writer tasks drain. Each takes every
//! request waiting (up to [`MAX_BATCH`]) and commits them in one transaction
//! ([`write`]): it locks the rows of the users involved (`INSERT … ON
//! CONFLICT DO UPDATE`, in user id order, so two batches never deadlock),
//! reads their state and the idempotency keys already used, scores the events
//! with the shared rules, writes events, ledger entries and users, and
//! commits. One commit (one WAL flush) thus covers many requests, while the
//! row locks serialise each user's updates across tasks and nodes, and the
//! unique index on idempotency keys rejects a second use of a key anywhere.
//!
//! **Reads** of a user's state are batched the same way ([`read`]): reader
//! tasks answer every lookup waiting with one `= ANY($1)` query. Each query
//! starts after its requests arrived, so a read sees every write acknowledged
//! before it was asked. Listings and the leaderboard are single queries.
//!
//! **Failures**: a lost connection, a statement timeout or an unreachable
//! server becomes [`StoreError::Unavailable`] (503 at the edge) within the
//! configured timeouts; the pool reconnects by itself when the server is back.

mod boards;
mod erase;
mod keys;
pub mod lease;
mod queue;
mod read;
pub mod redis_boards;
mod rules;
mod schema;
pub mod scratch;
mod tenants;
mod webhooks;
mod write;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gamify_core::{Points, Rules, UserId};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;

use crate::economy::{Done, Op, expect_done};
use crate::keys::ApiKey;
use crate::{Attempt, Delivery, DeliveryStatus, Due, Subscription};
use crate::{
    EventPage, Expire, Finding, LeaderRow, LedgerPage, Moved, NewEvent, NewMovement, NewRedemption,
    Recorded, Redeemed, Redemption, RedemptionStatus, Reward, RewardDraft, Settle, Store,
    StoreError, UserSnapshot,
};

pub use redis_boards::RedisSettings;
pub use schema::SCHEMA_VERSION;

/// The most requests one writer commits, or one reader looks up, at once.
pub const MAX_BATCH: usize = 512;

/// Writer tasks per node, and reader tasks, at most. Few and large batches
/// beat many small ones: each batch costs a handful of statements and a
/// commit whatever its size (docs/BENCHMARKS.md has the measurements).
pub const WORKERS: usize = 2;

/// How long a starting node waits for its leaderboards in Redis to be
/// built before it serves anyway (see [`PgStore::keep_boards_in_sync`]).
pub const BOARDS_START_WAIT: Duration = Duration::from_secs(5);

/// How to reach the database, and how hard to try.
#[derive(Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// `postgres://user:password@host:port/db?sslmode=…`. Holds a password:
    /// [`fmt::Debug`] prints it redacted, and nothing here logs it.
    pub url: String,
    /// Connections per node, at most.
    pub pool_size: u32,
    /// How long to wait for a connection (opening one included) before a
    /// request fails with 503.
    pub connect_timeout: Duration,
    /// How long one statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full`; overrides
    /// the URL's `sslmode` when set.
    pub sslmode: Option<String>,
    /// The schema to use (`search_path`), if not the user's default.
    pub schema: Option<String>,
    /// Keep the leaderboards in Redis (`REDIS_URL`); `None`: read them
    /// from SQL.
    pub redis: Option<RedisSettings>,
    /// Be the only node writing this database, for leases of this length,
    /// and keep users' state in memory ([`lease`]); `None`: share it.
    pub exclusive: Option<Duration>,
}

impl PgSettings {
    /// Settings with the defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> PgSettings {
        PgSettings {
            url: url.into(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
            sslmode: None,
            schema: None,
            redis: None,
            exclusive: None,
        }
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    fn connect_options(&self) -> Result<PgConnectOptions, StoreError> {
        let mut options = PgConnectOptions::from_str(&self.url).map_err(|e| {
            StoreError::Config(format!(
                "cannot read the PostgreSQL URL {}: {}",
                self.redacted_url(),
                redact_text(&e.to_string(), &self.url)
            ))
        })?;
        if let Some(mode) = &self.sslmode {
            check_sslmode(mode).map_err(|e| StoreError::Config(format!("sslmode: {e}")))?;
            let mode = PgSslMode::from_str(mode)
                .map_err(|e| StoreError::Config(format!("sslmode: {e}")))?;
            options = options.ssl_mode(mode);
        }
        let mut server_options = vec![(
            "statement_timeout",
            format!("{}", self.statement_timeout.as_millis()),
        )];
        if let Some(schema) = &self.schema {
            check_schema(schema).map_err(|e| StoreError::Config(format!("schema: {e}")))?;
            server_options.push(("search_path", schema.clone()));
        }
        Ok(options.application_name("gamify").options(server_options))
    }

    /// The connection options these settings give, for tests that need a
    /// connection of their own beside a store's.
    #[doc(hidden)]
    pub fn connect_options_for_tests(&self) -> PgConnectOptions {
        self.connect_options()
            .expect("settings that a store accepted")
            .application_name("gamify-test")
    }

    fn pool(&self) -> Result<PgPool, StoreError> {
        if self.pool_size < 4 {
            return Err(StoreError::Config(
                "pool_size: expected at least 4 connections".into(),
            ));
        }
        Ok(PgPoolOptions::new()
            .max_connections(self.pool_size)
            .acquire_timeout(self.connect_timeout)
            .connect_lazy_with(self.connect_options()?))
    }
}

impl fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &self.redacted_url())
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("sslmode", &self.sslmode)
            .field("schema", &self.schema)
            .field("redis", &self.redis)
            .field("exclusive", &self.exclusive)
            .finish()
    }
}

/// Whether `mode` is one of libpq's `sslmode`s; the error says which are.
pub fn check_sslmode(mode: &str) -> Result<(), String> {
    const MODES: [&str; 6] = [
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ];
    if MODES.contains(&mode) {
        Ok(())
    } else {
        Err(format!(
            "expected disable, allow, prefer, require, verify-ca or verify-full, got {mode:?}"
        ))
    }
}

/// Whether `schema` is a plain identifier (used unquoted in `search_path`).
pub fn check_schema(schema: &str) -> Result<(), String> {
    let plain = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if plain {
        Ok(())
    } else {
        Err(format!(
            "expected letters, digits and underscores, got {schema:?}"
        ))
    }
}

/// `url` with the password of its user info, and any `password=` parameter,
/// replaced by `***`. Anything unparsable is kept as is but for those parts.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        out = format!("{base}{query}");
    }
    out
}

/// `text` with the password that `url` holds, if any, replaced by `***`.
fn redact_text(text: &str, url: &str) -> String {
    let password = url.split_once("://").and_then(|(_, rest)| {
        let authority = rest.split(['/', '?']).next()?;
        let (userinfo, _) = authority.rsplit_once('@')?;
        userinfo.split_once(':').map(|(_, p)| p)
    });
    match password {
        Some(p) if !p.is_empty() => text.replace(p, "***"),
        _ => text.to_owned(),
    }
}

/// Whether [`PgStore::connect`] may change the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply what is missing (`gamify migrate`, `gamify serve --migrate`).
    Apply,
    /// Refuse a schema that is not exactly this binary's.
    Check,
}

/// A store on PostgreSQL. Cheap to share; dropping it lets the writer and
/// reader tasks finish what is queued and stop.
pub struct PgStore {
    pool: PgPool,
    writes: mpsc::Sender<write::Job>,
    lookups: mpsc::Sender<read::Lookup>,
    /// How long a request may wait for the database in all.
    patience: Duration,
    /// The leaderboards in Redis, if kept there.
    redis: Option<Arc<redis_boards::RedisBoards>>,
    /// The writers' copy of the webhook subscriptions.
    hooks: Arc<webhooks::Hooks>,
    /// Every version of the rules this node knows.
    book: Arc<crate::RuleBook>,
    /// With [`PgSettings::exclusive`]: the lease and the users' cache.
    lease: Option<Arc<lease::Lease>>,
}

impl PgStore {
    /// Connects, checks (or applies) the schema, and starts the writer and
    /// reader tasks. Fails if the database cannot be reached within the
    /// connect timeout.
    pub async fn connect(
        settings: &PgSettings,
        rules: Rules,
        migrations: Migrations,
    ) -> Result<PgStore, StoreError> {
        let pool = settings.pool()?;
        let book = {
            let mut conn = pool.acquire().await.map_err(|e| unreachable(settings, e))?;
            match migrations {
                Migrations::Apply => {
                    if let Some(name) = &settings.schema {
                        schema::ensure_schema(&mut conn, name).await?;
                    }
                    schema::migrate(&mut conn).await?;
                }
                Migrations::Check => schema::check(&mut conn).await?,
            }
            Arc::new(crate::RuleBook::new(
                rules::load_or_start(&mut conn).await?,
            )?)
        };
        // Up to a quarter of the pool writes, as much looks users up; the rest
        // serves listings, the leaderboard and health checks.
        let writers = (settings.pool_size as usize / 4).clamp(1, WORKERS);
        let readers = writers;
        let (writes, write_queue) = mpsc::channel(MAX_BATCH * 8);
        let write_queue = Arc::new(Mutex::new(write_queue));
        let rules = Arc::new(rules);
        let redis = match &settings.redis {
            Some(r) => Some(redis_boards::RedisBoards::new(
                r,
                pool.clone(),
                book.clone(),
            )?),
            None => None,
        };
        let hooks = Arc::new(webhooks::Hooks::default());
        let lease = settings.exclusive.map(|ttl| {
            let schema = settings.schema.as_deref().unwrap_or("public");
            Arc::new(lease::Lease::new(ttl, schema))
        });
        for _ in 0..writers {
            tokio::spawn(write::writer(
                pool.clone(),
                write_queue.clone(),
                rules.clone(),
                book.clone(),
                redis.clone(),
                hooks.clone(),
                lease.clone(),
            ));
        }
        let (lookups, lookup_queue) = mpsc::channel(MAX_BATCH * 8);
        let lookup_queue = Arc::new(Mutex::new(lookup_queue));
        for _ in 0..readers {
            tokio::spawn(read::reader(pool.clone(), lookup_queue.clone()));
        }
        tracing::info!(
            url = %settings.redacted_url(),
            pool_size = settings.pool_size,
            writers,
            readers,
            schema_version = SCHEMA_VERSION,
            redis = ?settings.redis.as_ref().map(RedisSettings::redacted_url),
            exclusive = settings.exclusive.is_some(),
            "postgres store ready"
        );
        Ok(PgStore {
            pool,
            writes,
            lookups,
            patience: settings.connect_timeout + settings.statement_timeout,
            redis,
            hooks,
            book,
            lease,
        })
    }

    /// With [`PgSettings::exclusive`], takes the lease (waiting up to two
    /// lease lengths for one left by a node that stopped without releasing
    /// it) and keeps renewing it while the store lives; from then on other
    /// nodes cannot write, and this one serves users' state from memory.
    /// Serving nodes call it; maintenance commands do not (their writes are
    /// refused while a node holds the lease). Fails, saying who holds it,
    /// if another node keeps it.
    pub async fn hold_lease(&self) -> Result<(), StoreError> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        let began = Instant::now();
        let patience = lease.ttl() * 2;
        loop {
            match lease.take(&self.pool).await.map_err(classify)? {
                None => break,
                Some(holder) if began.elapsed() >= patience => {
                    return Err(StoreError::Config(format!(
                        "another gamify node ({holder}) holds this database exclusively \
                         (GAMIFY_PG_EXCLUSIVE, schema {}); stop it, or start this node \
                         without GAMIFY_PG_EXCLUSIVE",
                        lease.schema()
                    )));
                }
                Some(_) => tokio::time::sleep(lease.ttl() / 10).await,
            }
        }
        tracing::info!(
            holder = lease.me(),
            schema = lease.schema(),
            ttl_ms = lease.ttl().as_millis() as u64,
            "exclusive lease taken; users' state is served from memory"
        );
        tokio::spawn(lease.clone().keep(self.pool.clone()));
        Ok(())
    }

    /// For tests: the lease, if this store is exclusive.
    #[doc(hidden)]
    pub fn lease(&self) -> Option<&lease::Lease> {
        self.lease.as_deref()
    }

    /// This node's name in the fence: its lease holder name, or none.
    fn me(&self) -> &str {
        self.lease.as_deref().map_or("", lease::Lease::me)
    }

    /// Keeps the Redis leaderboards in step from now on (see
    /// [`redis_boards`]): builds them if Redis lacks them, rebuilds them
    /// after a failure. Serving nodes run it; maintenance commands do not.
    /// Returns once the first check is done and any build it started has
    /// finished, or after [`BOARDS_START_WAIT`] if that takes longer (a
    /// first build at millions of users): the node then serves, and board
    /// reads answer 503 until the build is done.
    pub async fn keep_boards_in_sync(&self) {
        if let Some(redis) = &self.redis {
            tokio::spawn(redis.clone().keep_in_sync(self.pool.clone()));
            let began = Instant::now();
            while redis.building() && began.elapsed() < BOARDS_START_WAIT {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Applies the migrations the database lacks; returns how many.
    pub async fn migrate(settings: &PgSettings) -> Result<usize, StoreError> {
        let pool = settings.pool()?;
        let mut conn = pool.acquire().await.map_err(|e| unreachable(settings, e))?;
        if let Some(name) = &settings.schema {
            schema::ensure_schema(&mut conn, name).await?;
        }
        let applied = schema::migrate(&mut conn).await;
        drop(conn);
        pool.close().await;
        applied
    }

    /// Queues `payload` for a writer or reader task and waits for its
    /// answer, at most as long as the timeouts allow in all.
    async fn ask<T, R>(
        &self,
        queue: &mpsc::Sender<queue::Request<T, R>>,
        payload: T,
    ) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = queue::Request {
            payload,
            reply,
            deadline: Instant::now() + self.patience,
            span: tracing::Span::current(),
        };
        queue
            .send(request)
            .await
            .map_err(|_| StoreError::Unavailable("the store is shutting down"))?;
        match tokio::time::timeout(self.patience, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(StoreError::Unavailable("the store's worker stopped")),
            Err(_) => Err(StoreError::Unavailable(
                "the database did not answer in time",
            )),
        }
    }
}

fn unreachable(settings: &PgSettings, e: sqlx::Error) -> StoreError {
    StoreError::Config(format!(
        "cannot connect to PostgreSQL at {}: {}",
        settings.redacted_url(),
        redact_text(&e.to_string(), &settings.url)
    ))
}

impl PgStore {
    async fn apply(&self, op: Op) -> Result<Done, StoreError> {
        self.ask(&self.writes, op).await
    }

    /// Redis, if it keeps the boards of `window` now.
    fn redis_for(&self, window: gamify_core::Window) -> Option<&redis_boards::RedisBoards> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.redis
            .as_deref()
            .filter(|_| redis_boards::RedisBoards::keeps(window, now))
    }
}

#[async_trait]
impl Store for PgStore {
    async fn record_event(&self, event: NewEvent) -> Result<Recorded, StoreError> {
        expect_done!(self.apply(Op::Event(event)).await, Event)
    }

    async fn move_points(&self, movement: NewMovement) -> Result<Moved, StoreError> {
        expect_done!(self.apply(Op::Move(movement)).await, Move)
    }

    async fn redeem(&self, redemption: NewRedemption) -> Result<Redeemed, StoreError> {
        expect_done!(self.apply(Op::Redeem(redemption)).await, Redeem)
    }

    async fn settle(&self, settle: Settle) -> Result<Redemption, StoreError> {
        expect_done!(self.apply(Op::Settle(settle)).await, Settle)
    }

    async fn save_reward(&self, draft: RewardDraft, create: bool) -> Result<Reward, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        write::save_reward(&mut conn, &draft, create).await
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        webhooks::subscribe(&mut conn, &subscription).await?;
        self.hooks.forget();
        Ok(())
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        webhooks::subscriptions(&mut conn).await
    }

    async fn subscription_made(&self, id: &str) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        webhooks::made(&mut conn, id).await
    }

    async fn unsubscribe(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        webhooks::unsubscribe(&mut conn, id, at_ms).await?;
        self.hooks.forget();
        Ok(())
    }

    async fn create_key(&self, key: ApiKey) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        keys::create(&mut conn, &key).await
    }

    async fn tenants(&self) -> Result<Vec<crate::tenants::Tenant>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        tenants::all(&mut conn).await
    }

    async fn add_tenant(&self, tenant: crate::tenants::Tenant) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        tenants::add(&mut conn, &tenant).await
    }

    fn rule_book(&self) -> Arc<crate::RuleBook> {
        self.book.clone()
    }

    async fn add_rules(
        &self,
        rules: gamify_core::RuleSet,
        at_ms: i64,
    ) -> Result<Arc<crate::RuleVersion>, StoreError> {
        let rules = Arc::new(rules);
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let known = self.book.current().version;
        self.book
            .extend(self::rules::add(&mut conn, &rules, known, at_ms).await?)?;
        crate::version_holding(&self.book, &rules)
    }

    async fn refresh_rules(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let known = self.book.current().version;
        self.book
            .extend(self::rules::after(&mut conn, known).await?)
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        keys::all(&mut conn).await
    }

    async fn revoke_key(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        keys::revoke(&mut conn, id, at_ms).await
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Due>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        webhooks::due(&mut conn, now_ms, lease_ms, limit).await
    }

    async fn delivery_attempted(&self, attempts: Vec<Attempt>) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        webhooks::attempted(&mut conn, &attempts).await
    }

    async fn deliveries(
        &self,
        subscription_id: &str,
        status: Option<DeliveryStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        webhooks::list(&mut conn, subscription_id, status, before, limit).await
    }

    async fn replay_delivery(&self, id: &str, at_ms: i64) -> Result<Delivery, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        webhooks::replay(&mut conn, id, at_ms).await
    }

    async fn analytics(
        &self,
        active_since: Vec<i64>,
        days_from_ms: i64,
    ) -> Result<crate::analytics::Analytics, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        read::analytics(&mut conn, &active_since, days_from_ms).await
    }

    async fn pending_deliveries(&self) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        webhooks::pending(&mut conn).await
    }

    async fn prune_deliveries(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        webhooks::prune(&mut conn, before_ms, limit).await
    }

    async fn notify(&self, notices: Vec<crate::webhook::Notice>) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let subscriptions = self.hooks.current(&mut conn).await.map_err(classify)?;
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .map_err(classify)?;
        // A notice made before its user was erased is not written after:
        // the users' rows are locked (in the writers' order; an erasure
        // holds its user's row until it commits), and only users still
        // there are told about.
        let users: Vec<&str> = notices.iter().map(|n| n.user_id.as_str()).collect();
        let present: std::collections::HashSet<String> = sqlx::query_scalar(
            "SELECT user_id FROM users WHERE user_id = ANY($1::text[])
             ORDER BY user_id COLLATE \"C\" FOR SHARE",
        )
        .bind(&users)
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?
        .into_iter()
        .collect();
        let notices: Vec<_> = notices
            .into_iter()
            .filter(|n| present.contains(&n.user_id))
            .collect();
        let deliveries = crate::webhook::fan_out(&notices, &subscriptions);
        webhooks::insert(&mut tx, &deliveries)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)
    }

    async fn rewards(&self) -> Result<Vec<Reward>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        read::rewards(&mut conn).await
    }

    async fn redemptions(
        &self,
        user_id: Option<&UserId>,
        status: Option<RedemptionStatus>,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<Redemption>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        read::redemptions(
            &mut conn,
            user_id.map(UserId::as_str),
            status,
            limit,
            before,
        )
        .await
    }

    async fn ledger(
        &self,
        user_id: &UserId,
        limit: u32,
        before: Option<i64>,
    ) -> Result<LedgerPage, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        read::ledger(&mut conn, user_id.as_str(), limit, before).await
    }

    async fn verify(&self) -> Result<Vec<Finding>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let mut findings = read::verify(&mut conn).await?;
        drop(conn);
        if let Some(redis) = &self.redis {
            findings.extend(redis.verify(&self.pool).await?);
        }
        Ok(findings)
    }

    async fn credited_since(&self, user_id: &UserId, since_ms: i64) -> Result<Points, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        read::credited_since(&mut conn, user_id.as_str(), since_ms).await
    }

    async fn expire(
        &self,
        user_id: &UserId,
        cutoff_ms: i64,
        at_ms: i64,
    ) -> Result<Points, StoreError> {
        let expire = Expire {
            user_id: user_id.clone(),
            cutoff_ms,
            at_ms,
            credited_since: None,
        };
        expect_done!(self.apply(Op::Expire(expire)).await, Expire)
    }

    async fn export_page(
        &self,
        table: crate::export::Table,
        after: crate::export::After,
        filter: &crate::export::ExportFilter,
        limit: u32,
    ) -> Result<crate::export::Page, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        read::export_page(&mut conn, table, &after, filter, limit).await
    }

    async fn import_page(&self, page: crate::export::Page) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        let imported = write::import_page(&mut conn, &page, self.me()).await;
        if let Some(lease) = &self.lease {
            lease.cache.clear();
        }
        imported?;
        if self.redis.is_some() {
            // Rows written around the writer: serving nodes rebuild Redis.
            redis_boards::mark_dirty(&mut conn, 0).await;
        }
        Ok(())
    }

    async fn erasure(&self, user_id: &UserId) -> Result<Option<crate::Erasure>, StoreError> {
        let hash = crate::erasure::user_hash(user_id.as_str());
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        erase::find(&mut conn, &hash).await.map_err(classify)
    }

    async fn erase(
        &self,
        user_id: &UserId,
        id: &str,
        at_ms: i64,
    ) -> Result<crate::Erasure, StoreError> {
        let erased = erase::erase(&self.pool, user_id.as_str(), id, at_ms, self.me()).await;
        if let Some(lease) = &self.lease {
            lease.cache.invalidate(user_id.as_str());
        }
        let erased = erased?;
        if let Some(redis) = &self.redis {
            redis.erased(&self.pool, user_id.as_str()).await;
        }
        Ok(erased)
    }

    async fn board(
        &self,
        key: crate::board::BoardKey,
        window: gamify_core::Window,
        after: Option<crate::board::Cursor>,
        limit: u32,
    ) -> Result<Vec<crate::board::BoardRow>, StoreError> {
        if let Some(redis) = self.redis_for(window) {
            return redis.page(key, window, after.as_ref(), limit).await;
        }
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        boards::page(&mut conn, key, window, after.as_ref(), limit).await
    }

    async fn standing(
        &self,
        key: crate::board::BoardKey,
        window: gamify_core::Window,
        user_id: &UserId,
        k: u32,
    ) -> Result<crate::board::Standing, StoreError> {
        if let Some(redis) = self.redis_for(window) {
            let (mut standing, hidden) = redis.standing(key, window, user_id.as_str(), k).await?;
            if hidden {
                // Redis keeps no points for hidden users.
                let mut conn = self.pool.acquire().await.map_err(classify)?;
                standing.points =
                    boards::own_points(&mut conn, key, window, user_id.as_str()).await?;
            }
            return Ok(standing);
        }
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        boards::standing(&mut conn, key, window, user_id.as_str(), k).await
    }

    async fn set_hidden(
        &self,
        user_id: &UserId,
        hidden: bool,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        boards::set_hidden(&mut conn, user_id.as_str(), hidden, at_ms).await?;
        drop(conn);
        if let Some(redis) = &self.redis {
            redis.set_hidden(&self.pool, user_id.as_str(), hidden).await;
        }
        Ok(())
    }

    async fn users_where(
        &self,
        filter: crate::UserFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        read::users_where(&mut conn, filter, after, limit).await
    }

    async fn user(&self, user_id: &UserId) -> Result<Option<Arc<UserSnapshot>>, StoreError> {
        let Some(cache) = self.lease.as_deref().and_then(lease::Lease::trusted) else {
            return self.ask(&self.lookups, user_id.as_str().to_owned()).await;
        };
        if let Some(known) = cache.get(user_id.as_str()) {
            return Ok(known);
        }
        let ticket = cache.ticket(user_id.as_str());
        let found = self.ask(&self.lookups, user_id.as_str().to_owned()).await?;
        cache.offer_read(user_id.as_str(), found.clone(), ticket);
        Ok(found)
    }

    async fn events(
        &self,
        user_id: &UserId,
        limit: u32,
        before: Option<&str>,
    ) -> Result<EventPage, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        read::events(&mut conn, user_id.as_str(), limit, before).await
    }

    async fn leaderboard(&self, limit: u32) -> Result<Vec<LeaderRow>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        read::leaderboard(&mut conn, limit).await
    }

    async fn rebuild_boards(&self) -> Result<Option<u64>, StoreError> {
        match &self.redis {
            Some(redis) => redis.rebuild_now(&self.pool).await.map(Some),
            None => Ok(None),
        }
    }

    fn gauges(&self) -> Vec<crate::Gauge> {
        let mut out = vec![
            crate::Gauge {
                name: "gamify_pg_pool_connections",
                help: "Connections the PostgreSQL pool holds now.",
                value: f64::from(self.pool.size()),
            },
            crate::Gauge {
                name: "gamify_pg_pool_idle_connections",
                help: "Of those, the ones idle now.",
                value: self.pool.num_idle() as f64,
            },
        ];
        if let Some(lease) = &self.lease {
            out.push(crate::Gauge {
                name: "gamify_pg_exclusive_lease_trusted",
                help: "1 while this node holds the exclusive lease and serves users' state from memory, 0 while it reads from the database.",
                value: if lease.trusted().is_some() { 1.0 } else { 0.0 },
            });
        }
        if let Some(redis) = &self.redis {
            out.push(crate::Gauge {
                name: "gamify_leaderboards_available",
                help: "1 when the leaderboards in Redis can be read, 0 while Redis is unreachable or they are being rebuilt.",
                value: if redis.available() { 1.0 } else { 0.0 },
            });
        }
        out
    }

    async fn close(&self) {
        if let Some(lease) = &self.lease {
            lease.release(&self.pool).await;
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?;
        sqlx::query("SELECT 1")
            .execute(&mut *conn)
            .await
            .map_err(classify)?;
        Ok(())
    }
}

/// An error from a query: [`StoreError::Unavailable`] when the server is
/// unreachable, restarting, overloaded or too slow (worth a retry), else
/// [`StoreError::Backend`].
pub(crate) fn classify(e: sqlx::Error) -> StoreError {
    if is_fenced(&e) {
        StoreError::Unavailable(lease::REFUSED)
    } else if is_unavailable(&e) {
        tracing::warn!(error = %e, "postgres unavailable");
        StoreError::Unavailable("the database is unreachable or too slow")
    } else {
        backend(e)
    }
}

/// [`classify`], except that a unique violation (`23505`) means a row with
/// that key exists: [`StoreError::AlreadyExists`] of `what`.
pub(crate) fn classify_unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            StoreError::AlreadyExists(what)
        }
        _ => classify(e),
    }
}

/// Whether `e` is the fence's refusal: another node holds the lease.
pub(crate) fn is_fenced(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some(lease::FENCED))
}

/// Whether `e` says the connection or server is gone or overloaded, or
/// that another node holds the lease ([`is_fenced`]), rather than that the
/// query was wrong.
pub(crate) fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // GM001: the fence (see lease);
            // 08: connection exception; 53: insufficient resources;
            // 57014: statement timeout; 57P01-57P03: shutdown, cannot connect now.
            code == lease::FENCED
                || code.starts_with("08")
                || code.starts_with("53")
                || code == "57014"
                || code.starts_with("57P")
        }),
        _ => false,
    }
}

pub(crate) use crate::backend;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_debug_output_or_redacted_urls() {
        let s = PgSettings::new("postgres://gamify:s3cret@db.example:5432/gamify?sslmode=require");
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://gamify:***@db.example:5432/gamify?sslmode=require"),
            "{shown}"
        );
        assert_eq!(
            redact_url("postgresql://u@h/db?password=hunter2&sslmode=disable"),
            "postgresql://u@h/db?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }

    #[test]
    fn unusable_settings_are_refused_with_the_setting_named() {
        let mut s = PgSettings::new("postgres://u:pw@localhost/db");
        s.sslmode = Some("sometimes".into());
        let e = s.connect_options().unwrap_err().to_string();
        assert!(e.contains("sslmode"), "{e}");
        s.sslmode = None;
        s.schema = Some("x; DROP TABLE users".into());
        let e = s.connect_options().unwrap_err().to_string();
        assert!(e.contains("schema"), "{e}");
        let e = PgSettings::new("postgres://u:pw@localhost:notaport/db")
            .connect_options()
            .unwrap_err()
            .to_string();
        assert!(!e.contains("pw@"), "{e}");
    }
}
