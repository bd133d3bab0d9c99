//! The embedded default: one SQLite file, in WAL mode, fsync'd on every commit.
//!
//! **Writes** go through one writer thread that owns the only write connection.
//! It takes every request waiting in its queue (up to [`MAX_BATCH`]), plans and
//! applies each in one transaction, commits once, and only then answers. One
//! fsync thus covers a whole batch (group commit), yet each request gets its
//! own result: refusals (a reused idempotency key, a rule) are decided before a
//! request writes anything, so they leave the batch alone; if a write itself
//! fails, the batch is rolled back and its requests are retried one per
//! transaction, so only the request that fails again is refused. Serialising
//! all writes on one connection is also what serialises each user's updates.
//!
//! **What a commit writes** is the log: the `events` and `ledger` rows, which
//! only ever append. Users' rows and the per-user event index are derived from
//! it and written by the same thread in larger batches
//! ([`materialize`]), every [`MATERIALIZE_AFTER`] events or
//! [`MATERIALIZE_EVERY`], whichever comes first, and when the store closes;
//! after a crash, opening the store replays what they lack.
//!
//! **Reads** of a user's state come from a [`cache::UserCache`] and the
//! leaderboard from a [`ranking::Ranking`], both of which the writer updates
//! after each commit; cache misses and event listings use a small pool of
//! read-only connections on blocking threads (WAL lets them run beside the
//! writer and see only committed data).
//!
//! **Checkpoints** (copying the WAL back into the database file) run on a
//! thread of their own, so the writer does not stall on them.
//!
//! One process owns the file: a lock file next to it refuses a second one,
//! because the cache is only right while this process is the only writer.

mod cache;
mod materialize;
mod ranking;
mod read;
mod schema;
mod write;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use gamify_core::{Points, Rules, UserId};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::{EventPage, LeaderRow, NewEvent, Recorded, Store, StoreError, UserSnapshot};
use write::Planned;

pub use schema::SCHEMA_VERSION;

/// The most requests one commit covers. Large enough that a burst shares an
/// fsync, small enough that the first request in it does not wait long.
pub const MAX_BATCH: usize = 512;
/// How many requests may wait for the writer before senders wait for room.
const QUEUE_DEPTH: usize = 4096;
/// Read connections.
const READERS: usize = 4;
/// Users whose state is kept in memory (about 300 bytes each).
const CACHED_USERS: usize = 1_000_000;
/// Logged events after which the writer brings the derived tables up to
/// date. Larger batches share more page writes; the events past the last
/// batch are what an event listing scans and what a restart after a crash
/// replays.
pub const MATERIALIZE_AFTER: usize = 4096;
/// How often the background thread copies the WAL back into the database
/// (checkpoint) and asks the writer to bring the derived tables up to date
/// with whatever has been logged since the last time.
pub const MATERIALIZE_EVERY: Duration = Duration::from_millis(250);

type Reply = oneshot::Sender<Result<Recorded, StoreError>>;

/// What the writer thread is asked to do.
enum Job {
    Record(NewEvent, Reply),
    /// Time has passed: bring the derived tables up to date if anything waits.
    Tick,
}

/// The SQLite store. Cheap to clone; all clones share the writer and the pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

// Fields drop in order: the queue closes, then the writer thread is joined
// (it writes what it holds and stops), and only then is the file unlocked.
struct Inner {
    path: PathBuf,
    writer: mpsc::Sender<Job>,
    _writer_thread: JoinOnDrop,
    readers: Mutex<Vec<Connection>>,
    reader_slots: Semaphore,
    cache: Arc<cache::UserCache>,
    ranking: Arc<ranking::Ranking>,
    /// Held for the store's life; the OS releases it if the process dies.
    _lock: File,
}

struct JoinOnDrop(Option<JoinHandle<()>>);

impl Drop for JoinOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take()
            && handle.join().is_err()
        {
            tracing::error!("sqlite writer panicked");
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies pending
    /// migrations, and starts the writer and checkpoint threads. Fails with
    /// [`StoreError::InUse`] if another process has the file open as a store.
    pub fn open(path: &Path, rules: Rules) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(backend)?;
        }
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(backend)?;
        lock.try_lock()
            .map_err(|_| StoreError::InUse(path.to_owned()))?;

        let mut conn = Connection::open(path).map_err(backend)?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        // 8 MiB of page cache for the writer. Measured: 2 to 128 MiB made no
        // difference to ingest, and past 64 MiB each commit got slower, as
        // SQLite scans its page cache at the end of every write transaction.
        conn.pragma_update(None, "cache_size", -8_192)
            .map_err(backend)?;
        // The checkpointer keeps up; this is only a backstop should it not.
        conn.pragma_update(None, "wal_autocheckpoint", 16_384)
            .map_err(backend)?;
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(backend)?;
        schema::migrate(&mut conn)?;
        materialize::recover(&mut conn, &rules, now_ms())?;
        let ranking = Arc::new(ranking::Ranking::load(&conn)?);

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open_reader(path)?);
        }

        let cache = Arc::new(cache::UserCache::new(CACHED_USERS));
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let published = Published {
            cache: cache.clone(),
            ranking: ranking.clone(),
        };
        let writer_thread = thread::Builder::new()
            .name("gamify-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, rules, published))
            .map_err(backend)?;
        let inner = Arc::new(Inner {
            path: path.to_owned(),
            writer: tx,
            _writer_thread: JoinOnDrop(Some(writer_thread)),
            readers: Mutex::new(readers),
            reader_slots: Semaphore::new(READERS),
            cache,
            ranking,
            _lock: lock,
        });
        let checkpoint_conn = open_reader_writer(path)?;
        let weak = Arc::downgrade(&inner);
        thread::Builder::new()
            .name("gamify-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint_conn, weak))
            .map_err(backend)?;
        Ok(SqliteStore { inner })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a pooled read connection, on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _slot = self
            .inner
            .reader_slots
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("reader pool closed"))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A slot guarantees a free connection; the lock is held only to take it.
            let conn = inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            let conn = conn.ok_or(StoreError::Unavailable("no free read connection"))?;
            let result = f(&conn);
            inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
            result
        })
        .await
        .map_err(|_| StoreError::Unavailable("read task failed"))?
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    // FULL: in WAL mode, every commit fsyncs the log, so an acknowledged
    // write survives a crash or power loss, not only a killed process.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(backend)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
    Ok(())
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(backend)?;
    configure(&conn)?;
    Ok(conn)
}

fn open_reader_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    configure(&conn)?;
    Ok(conn)
}

pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// What the writer publishes after each commit, for readers.
struct Published {
    cache: Arc<cache::UserCache>,
    ranking: Arc<ranking::Ranking>,
}

fn writer_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    rules: Rules,
    published: Published,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut backlog = materialize::Backlog::default();
    let mut retry_at = None;
    while let Some(first) = rx.blocking_recv() {
        let mut tick = false;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Record(event, reply) => batch.push((event, reply)),
                Job::Tick => tick = true,
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let events: Vec<&NewEvent> = batch.iter().map(|(event, _)| event).collect();
            let results = commit_batch(&mut conn, &events, &rules, &published, &mut backlog);
            for ((_, reply), result) in batch.drain(..).zip(results) {
                // The requester may have gone away; the event is stored regardless.
                let _ = reply.send(result);
            }
        }
        let due = tick || backlog.events() >= MATERIALIZE_AFTER;
        if due && retry_at.is_none_or(|at| std::time::Instant::now() >= at) {
            retry_at = materialize(&mut conn, &mut backlog, &published);
        }
    }
    materialize(&mut conn, &mut backlog, &published);
    tracing::debug!("sqlite writer stopped");
}

/// Writes the backlog to the derived tables. On failure keeps it (the log
/// has every event, reads are served from memory meanwhile) and returns when
/// to try again.
fn materialize(
    conn: &mut Connection,
    backlog: &mut materialize::Backlog,
    published: &Published,
) -> Option<std::time::Instant> {
    if backlog.events() == 0 {
        return None;
    }
    match materialize::write(conn, backlog, now_ms()) {
        Ok(()) => {
            // Epoch first: see cache::UserCache::offer.
            published.cache.advance_epoch();
            for (user, dirty) in backlog.users.drain() {
                published.cache.mark_clean(&user, dirty.latest.version);
            }
            backlog.index.clear();
            None
        }
        Err(e) => {
            tracing::error!(error = %e, events = backlog.events(), "bringing users up to date failed; will retry");
            Some(std::time::Instant::now() + Duration::from_secs(1))
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Commits `events` together; if a write fails, retries them one per
/// transaction so that only the failing request is refused.
fn commit_batch(
    conn: &mut Connection,
    events: &[&NewEvent],
    rules: &Rules,
    published: &Published,
    backlog: &mut materialize::Backlog,
) -> Vec<Result<Recorded, StoreError>> {
    match run_transaction(conn, events, rules, published, backlog) {
        Ok(results) => results,
        Err(e) if events.len() > 1 => {
            tracing::warn!(error = %e, batch = events.len(), "batch rolled back; retrying its requests one by one");
            // Nothing of the batch was stored or published.
            events
                .iter()
                .map(|event| {
                    match run_transaction(
                        conn,
                        std::slice::from_ref(event),
                        rules,
                        published,
                        backlog,
                    ) {
                        Ok(mut results) => results
                            .pop()
                            .unwrap_or(Err(StoreError::Unavailable("no result"))),
                        Err(e) => Err(e),
                    }
                })
                .collect()
        }
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "sqlite write failed");
            vec![Err(e)]
        }
    }
}

/// Plans and applies `events` in one transaction. A refusal decided by
/// planning is that request's result; a failed write (or commit) aborts the
/// transaction and is returned as the outer error, with nothing stored.
fn run_transaction(
    conn: &mut Connection,
    events: &[&NewEvent],
    rules: &Rules,
    published: &Published,
    backlog: &mut materialize::Backlog,
) -> Result<Vec<Result<Recorded, StoreError>>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    // Users this transaction changed: their lifetime before it (None: new
    // user), the version of their row in the database, and their state after
    // it; published only once committed.
    let mut pending: HashMap<&str, Changed> = HashMap::new();
    // (user, occurred_at, seq) of each event logged.
    let mut logged = Vec::with_capacity(events.len());
    let mut results = Vec::with_capacity(events.len());
    for event in events {
        let user = event.user_id.as_str();
        // Newest first: this transaction, then the backlog (not yet in the
        // users table), then the cache, then the table.
        let (before, stored_version) = match pending.get(user) {
            Some(changed) => (Some(changed.after.clone()), changed.stored_version),
            None => match backlog.user(user) {
                Some(latest) => (Some((**latest).clone()), 0),
                None => {
                    let stored = match published.cache.get(user) {
                        Some(known) => known.map(|state| (*state).clone()),
                        None => read::user(&tx, &event.user_id)?,
                    };
                    let version = stored.as_ref().map_or(0, |s| s.version);
                    (stored, version)
                }
            },
        };
        let lifetime_before = before.as_ref().map(|b| b.state.lifetime);
        match write::plan(&tx, event, before, rules) {
            Ok(Planned::Replay(recorded)) => results.push(Ok(recorded)),
            Ok(Planned::Write(plan)) => {
                let (recorded, seq) = write::apply(&tx, &plan)?;
                logged.push((user, event.occurred_at_ms, seq));
                results.push(Ok(recorded));
                let first_before = pending
                    .get(user)
                    .map_or(lifetime_before, |c| c.lifetime_before);
                pending.insert(
                    user,
                    Changed {
                        lifetime_before: first_before,
                        stored_version,
                        after: plan.after().clone(),
                    },
                );
            }
            Err(e @ StoreError::Backend(_)) => return Err(e),
            Err(refused) => results.push(Err(refused)),
        }
    }
    tx.commit().map_err(backend)?;
    let mut published_states = HashMap::with_capacity(pending.len());
    for (user, changed) in pending {
        published.ranking.update(
            user,
            changed.lifetime_before,
            changed.after.state.lifetime,
            changed.after.state.total,
        );
        let state = Arc::new(changed.after);
        published.cache.offer_written(user, state.clone(), true);
        published_states.insert(user, (changed.stored_version, state));
    }
    for (user, occurred_at, seq) in logged {
        // The stored version matters only the first time the backlog meets
        // the user; later events of the same user keep the first one.
        let (stored_version, state) = &published_states[user];
        backlog.add(user, *stored_version, state.clone(), occurred_at, seq);
    }
    Ok(results)
}

/// A user changed by the transaction in progress.
struct Changed {
    lifetime_before: Option<Points>,
    stored_version: u64,
    after: UserSnapshot,
}

/// Copies the WAL back into the database file in the background, until the
/// store is dropped. PASSIVE never blocks the writer or the readers.
fn checkpoint_loop(conn: Connection, store: Weak<Inner>) {
    loop {
        thread::sleep(MATERIALIZE_EVERY);
        let Some(inner) = store.upgrade() else { break };
        // A full queue means the writer is busy and will materialize anyway.
        let _ = inner.writer.try_send(Job::Tick);
        drop(inner);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "wal checkpoint failed");
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn record_event(&self, event: NewEvent) -> Result<Recorded, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(Job::Record(event, reply))
            .await
            .map_err(|_| StoreError::Unavailable("writer stopped"))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("writer stopped"))?
    }

    async fn user(&self, user_id: &UserId) -> Result<Option<Arc<UserSnapshot>>, StoreError> {
        if let Some(known) = self.inner.cache.get(user_id.as_str()) {
            return Ok(known);
        }
        let epoch = self.inner.cache.epoch();
        let id = user_id.clone();
        let found = self.read(move |c| read::user(c, &id)).await?.map(Arc::new);
        self.inner
            .cache
            .offer_read(user_id.as_str(), found.clone(), epoch);
        Ok(found)
    }

    async fn events(
        &self,
        user_id: &UserId,
        limit: u32,
        before: Option<&str>,
    ) -> Result<EventPage, StoreError> {
        let user_id = user_id.clone();
        let before = before.map(str::to_owned);
        self.read(move |c| read::events(c, &user_id, limit, before.as_deref()))
            .await
    }

    async fn leaderboard(&self, limit: u32) -> Result<Vec<LeaderRow>, StoreError> {
        Ok(self.inner.ranking.top(limit as usize))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.inner.writer.is_closed() {
            return Err(StoreError::Unavailable("writer stopped"));
        }
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
            .await
    }
}
