//! The exclusive lease: a node that is the only one writing a database (a
//! deployment of one node on PostgreSQL, `GAMIFY_PG_EXCLUSIVE=true`) keeps
//! users' state in memory, as the SQLite store does, so balance and stats
//! reads skip the database.
//!
//! A cache is only right while no one else writes, so the node holds a
//! lease, a row of `node_lease` with an expiry in the database's clock,
//! and every write transaction of every node starts with `gamify_fence`
//! (migration 0010):
//!
//! - **Others cannot write while the lease is valid.** The fence refuses a
//!   write transaction while another node's lease has not expired
//!   (`GM001`, a 503 naming the holder).
//! - **No write that passed the fence before is still running** when the
//!   lease is taken or renewed: the fence holds the lease lock (an advisory
//!   lock of the schema, class 0x6c65) in shared mode until its transaction
//!   ends, and taking or renewing (`gamify_take_lease`,
//!   `gamify_renew_lease`, one statement each, so the lock is never held
//!   across a round trip) holds it in exclusive mode, so it waits for them,
//!   and a fence that waited for it sees the renewed lease.
//! - **The node trusts its cache for less time than the lease lasts.** Its
//!   own clock (monotonic) starts counting before it asks for the lease, and
//!   it stops reading from the cache when three quarters of the lease have
//!   passed without a renewal; the database's expiry is at least a whole
//!   lease after that moment. A renewal that finds the lease expired (or
//!   taken) means others may have written: the cache is emptied before it
//!   is used again.
//!
//! What this assumes: the database server's clock does not jump forward by
//! a quarter of the lease, and the node's and the server's clocks run at
//! about the same rate. While the cache is not trusted, reads go to the
//! database as on any node. A node that stops without releasing its lease
//! (killed) keeps others from writing until it expires.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio::time::Instant;

use crate::cache::UserCache;

/// The SQLSTATE `gamify_fence` raises when another node holds the lease.
pub const FENCED: &str = "GM001";

/// What a write refused by the fence is told (as
/// [`crate::StoreError::Unavailable`]; the API shows it as it is).
pub const REFUSED: &str =
    "another gamify node holds this database exclusively (GAMIFY_PG_EXCLUSIVE); send writes to it";

/// How long a lease lasts by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// Users whose state the exclusive node keeps in memory.
const CACHED_USERS: usize = 1_000_000;

/// Starts a write transaction's work: refuses it (`GM001`) while another
/// node holds the lease. `me` is this node's lease holder name, or empty.
pub async fn fence(tx: &mut PgConnection, me: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT gamify_fence($1)")
        .bind(me)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// This node's lease, and the cache it makes safe.
pub struct Lease {
    /// This node's name in `node_lease.holder`.
    me: String,
    /// The schema whose lease it is (`public` when none is configured):
    /// with tenants, one process holds several.
    schema: String,
    ttl: Duration,
    base: Instant,
    /// Until when (ms after `base`) the cache may be read; 0: not now.
    trusted_until: AtomicU64,
    /// Whether this node believes the database's lease is continuously its
    /// own since it last emptied the cache.
    held: AtomicBool,
    /// For tests: stop renewing, as a node cut off from the database would.
    paused: AtomicBool,
    /// Released for good: stop renewing.
    released: AtomicBool,
    /// Users' state, as of this node's commits and reads.
    pub cache: UserCache,
}

impl Lease {
    /// A lease on `schema`'s data, not yet taken; `ttl` is how long each
    /// grant lasts.
    pub fn new(ttl: Duration, schema: &str) -> Lease {
        use std::hash::BuildHasher;
        let nonce = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        Lease {
            me: format!("pid{}-{:08x}", std::process::id(), nonce as u32),
            schema: schema.to_owned(),
            ttl,
            base: Instant::now(),
            trusted_until: AtomicU64::new(0),
            held: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            released: AtomicBool::new(false),
            cache: UserCache::new(CACHED_USERS),
        }
    }

    /// How long each grant lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// This node's holder name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The schema whose lease it is.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// The cache, if it may be read now.
    pub fn trusted(&self) -> Option<&UserCache> {
        (self.now_ms() < self.trusted_until.load(Ordering::Acquire)).then_some(&self.cache)
    }

    /// A grant asked for at `asked` (ms after `base`) was given.
    fn granted(&self, asked: u64) {
        let trust = self.ttl.as_millis() as u64 * 3 / 4;
        self.trusted_until.store(asked + trust, Ordering::Release);
    }

    fn lost(&self) {
        self.trusted_until.store(0, Ordering::Release);
        self.held.store(false, Ordering::Release);
        self.cache.clear();
    }

    /// Takes the lease if it is free, expired or already this node's;
    /// otherwise returns who holds it. Once taken, empties the cache before
    /// trusting it (others may have written since this node last held it).
    pub async fn take(&self, pool: &PgPool) -> Result<Option<String>, sqlx::Error> {
        let asked = self.now_ms();
        let holder: String = sqlx::query_scalar("SELECT gamify_take_lease($1, $2)")
            .bind(&self.me)
            .bind(self.ttl.as_secs_f64())
            .fetch_one(pool)
            .await?;
        if holder != self.me {
            return Ok(Some(holder));
        }
        self.cache.clear();
        self.held.store(true, Ordering::Release);
        self.granted(asked);
        Ok(None)
    }

    /// Extends the lease if it is still this node's and unexpired; `false`
    /// if not (then others may have written).
    async fn renew(&self, pool: &PgPool) -> Result<bool, sqlx::Error> {
        let asked = self.now_ms();
        let renewed: bool = sqlx::query_scalar("SELECT gamify_renew_lease($1, $2)")
            .bind(&self.me)
            .bind(self.ttl.as_secs_f64())
            .fetch_one(pool)
            .await?;
        if renewed {
            self.granted(asked);
        }
        Ok(renewed)
    }

    /// Ends the lease now, so other nodes may write at once, and stops
    /// renewing it; this node's reads go to the database from now on.
    pub async fn release(&self, pool: &PgPool) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        self.lost();
        let released = sqlx::query(
            "UPDATE node_lease SET expires_at = clock_timestamp() WHERE id = 1 AND holder = $1",
        )
        .bind(&self.me)
        .execute(pool)
        .await;
        match released {
            Ok(_) => {
                tracing::info!(holder = %self.me, schema = %self.schema, "exclusive lease released")
            }
            Err(e) => tracing::warn!(
                error = %e,
                schema = %self.schema,
                "could not release the exclusive lease; it expires by itself"
            ),
        }
    }

    /// Renews the lease every quarter of its length, or takes it again once
    /// lost, until the store is dropped; then releases it.
    pub async fn keep(self: Arc<Self>, pool: PgPool) {
        let mut tick = tokio::time::interval(self.ttl / 4);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if self.released.load(Ordering::Acquire) {
                return;
            }
            if Arc::strong_count(&self) == 1 {
                self.release(&pool).await;
                return;
            }
            if self.paused.load(Ordering::Acquire) {
                continue;
            }
            if self.held.load(Ordering::Acquire) {
                match self.renew(&pool).await {
                    Ok(true) => continue,
                    Ok(false) => {
                        tracing::warn!(
                            holder = %self.me,
                            schema = %self.schema,
                            "the exclusive lease expired before it was renewed; cache emptied"
                        );
                        self.lost();
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            schema = %self.schema,
                            "could not renew the exclusive lease"
                        );
                        continue;
                    }
                }
            }
            match self.take(&pool).await {
                Ok(None) => tracing::info!(
                    holder = %self.me,
                    schema = %self.schema,
                    "exclusive lease taken again"
                ),
                Ok(Some(other)) => tracing::warn!(
                    holder = %other,
                    schema = %self.schema,
                    "another node holds the exclusive lease"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    schema = %self.schema,
                    "could not take the exclusive lease"
                ),
            }
        }
    }

    /// For tests: stop (or resume) renewing the lease.
    pub fn pause(&self, paused: bool) {
        self.paused.store(paused, Ordering::Release);
    }
}
