//! The embedded default: two SQLite files in WAL mode. `gamify.db` is the
//! log, fsync'd on every commit; `gamify.db-derived` holds what is derived
//! from it.
//!
//! **Writes** go through one writer thread that owns the only write connection
//! to the log. It takes every request waiting in its queue (up to
//! [`MAX_BATCH`]), plans and applies each in one transaction, commits once,
//! and only then answers. One fsync thus covers a whole batch (group commit),
//! yet each request gets its own result: refusals (a reused idempotency key, a
//! rule) are decided before a request writes anything, so they leave the batch
//! alone; if a write itself fails, the batch is rolled back and its requests
//! are retried one per transaction, so only the request that fails again is
//! refused. Serialising all writes on one connection is also what serialises
//! each user's updates.
//!
//! **What a commit writes** is the log: the `events` and `ledger` rows, which
//! only ever append. Users' rows and the per-user event index are derived from
//! it ([`materialize`]): the writer hands what it logged to a second thread
//! every [`MATERIALIZE_AFTER`] events or [`MATERIALIZE_EVERY`], whichever
//! comes first, and when the store closes; that thread writes them to the
//! derived file in one transaction per hand-over, while the writer goes on.
//! Opening the store replays what the derived file lacks.
//!
//! **Reads** of a user's state come from a [`cache::UserCache`] and the
//! leaderboard from a [`ranking::Ranking`], both of which the writer updates
//! after each commit; cache misses and event listings use a small pool of
//! read-only connections (the log with the derived file attached) on blocking
//! threads. WAL lets them run beside the writers and see only committed data.
//!
//! **Checkpoints** (copying each WAL back into its database file) run on a
//! thread of their own, so neither writer stalls on them.
//!
//! One process owns the files: a lock file next to the log refuses a second
//! one, because the cache is only right while this process is the only
//! writer.

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
/// Logged events after which the writer hands them over to be written to the
/// derived tables. Larger batches share more page writes; the events not yet
/// written there are what an event listing scans and what a restart after a
/// crash replays. Measured on the distinct-user benchmark: 1024 was slower,
/// 16384 no faster.
pub const MATERIALIZE_AFTER: usize = 4096;
/// How often the background thread checkpoints both files and asks the
/// writer to hand over whatever it has logged since the last hand-over.
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
    /// Opens (creating if needed) the log at `path` and its derived tables
    /// beside it ([`derived_path`]), applies pending migrations, replays
    /// into the derived tables what they lack, and starts the writer,
    /// derived-table and checkpoint threads. Fails with
    /// [`StoreError::InUse`] if another process has the files open as a store.
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

        let mut log = Connection::open(path).map_err(backend)?;
        configure(&log, "FULL")?;
        log.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        // 8 MiB of page cache for the writer. Measured: 2 to 128 MiB made no
        // difference to ingest, and past 64 MiB each commit got slower, as
        // SQLite scans its page cache at the end of every write transaction.
        log.pragma_update(None, "cache_size", -8_192)
            .map_err(backend)?;
        // The checkpointer keeps up; this is only a backstop should it not.
        log.pragma_update(None, "wal_autocheckpoint", 16_384)
            .map_err(backend)?;
        log.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(backend)?;
        schema::migrate(&mut log, schema::LOG, "log")?;

        let derived_path = derived_path(path);
        let mut derived = Connection::open(&derived_path).map_err(backend)?;
        // NORMAL: no fsync per commit. A commit lost to a power cut takes
        // `through_seq` back with it, and the log replays it.
        configure(&derived, "NORMAL")?;
        derived
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        derived
            .pragma_update(None, "cache_size", -32_768)
            .map_err(backend)?;
        schema::migrate(&mut derived, schema::DERIVED, "derived tables")?;
        materialize::recover(&log, &mut derived, &rules)?;
        let ranking = Arc::new(ranking::Ranking::load(&derived)?);

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open_reader(path, &derived_path)?);
        }

        let cache = Arc::new(cache::UserCache::new(CACHED_USERS));
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (to_materializer, backlogs) = std::sync::mpsc::sync_channel(1);
        let materializer_cache = cache.clone();
        let materializer = thread::Builder::new()
            .name("gamify-sqlite-derive".into())
            .spawn(move || materializer_loop(derived, backlogs, materializer_cache))
            .map_err(backend)?;
        let published = Published {
            cache: cache.clone(),
            ranking: ranking.clone(),
        };
        let users = open_read_only(&derived_path)?;
        let writer = Writer {
            log,
            users,
            rules,
            published,
            to_materializer,
            materializer: JoinOnDrop(Some(materializer)),
        };
        let writer_thread = thread::Builder::new()
            .name("gamify-sqlite-writer".into())
            .spawn(move || writer.run(rx))
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
        let checkpoint = [
            open_reader_writer(path, "FULL")?,
            open_reader_writer(&derived_path, "NORMAL")?,
        ];
        let weak = Arc::downgrade(&inner);
        thread::Builder::new()
            .name("gamify-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoint, weak))
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

/// The file that holds the derived tables of the log at `path`.
pub fn derived_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-derived");
    PathBuf::from(name)
}

/// `synchronous`: FULL for the log (every commit fsyncs the WAL, so an
/// acknowledged write survives a crash or power loss, not only a killed
/// process), NORMAL for the derived tables (rebuilt from the log).
fn configure(conn: &Connection, synchronous: &str) -> Result<(), StoreError> {
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
    Ok(())
}

fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
    Ok(conn)
}

/// A read connection on the log with the derived tables attached; their
/// table names are distinct, so queries need no schema prefix.
fn open_reader(path: &Path, derived: &Path) -> Result<Connection, StoreError> {
    let conn = open_read_only(path)?;
    let derived = derived
        .to_str()
        .ok_or_else(|| StoreError::Schema(format!("{} is not UTF-8", derived.display())))?;
    conn.execute("ATTACH DATABASE ?1 AS derived", [derived])
        .map_err(backend)?;
    Ok(conn)
}

fn open_reader_writer(path: &Path, synchronous: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    configure(&conn, synchronous)?;
    Ok(conn)
}

pub(crate) use crate::backend;

/// What the writer publishes after each commit, for readers.
struct Published {
    cache: Arc<cache::UserCache>,
    ranking: Arc<ranking::Ranking>,
}

/// The writer thread's state.
struct Writer {
    /// The only write connection to the log.
    log: Connection,
    /// A read connection to the derived tables, for users not in the cache.
    users: Connection,
    rules: Rules,
    published: Published,
    to_materializer: std::sync::mpsc::SyncSender<materialize::Backlog>,
    /// Joined once the writer has handed over its last backlog.
    materializer: JoinOnDrop,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut backlog = materialize::Backlog::default();
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
                let results = self.commit_batch(&events, &mut backlog);
                for ((_, reply), result) in batch.drain(..).zip(results) {
                    // The requester may have gone away; the event is stored regardless.
                    let _ = reply.send(result);
                }
            }
            if backlog.events() > 0 && (tick || backlog.events() >= MATERIALIZE_AFTER) {
                backlog = self.hand_over(backlog);
            }
        }
        if backlog.events() > 0 && self.to_materializer.send(backlog).is_err() {
            tracing::error!(
                "the derived-table writer stopped; the log will be replayed at the next start"
            );
        }
        drop(self.to_materializer);
        drop(self.materializer);
        tracing::debug!("sqlite writer stopped");
    }

    /// Passes the backlog to the materializer if it is free; keeps it (and
    /// returns it to grow) if not, unless it has grown so large that the
    /// writer should wait rather than let event listings scan ever more.
    fn hand_over(&self, backlog: materialize::Backlog) -> materialize::Backlog {
        use std::sync::mpsc::TrySendError;
        match self.to_materializer.try_send(backlog) {
            Ok(()) => materialize::Backlog::default(),
            Err(TrySendError::Full(backlog)) if backlog.events() < 4 * MATERIALIZE_AFTER => backlog,
            Err(TrySendError::Full(backlog)) => match self.to_materializer.send(backlog) {
                Ok(()) => materialize::Backlog::default(),
                Err(std::sync::mpsc::SendError(backlog)) => backlog,
            },
            Err(TrySendError::Disconnected(backlog)) => backlog,
        }
    }

    /// Commits `events` together; if a write fails, retries them one per
    /// transaction so that only the failing request is refused.
    fn commit_batch(
        &mut self,
        events: &[&NewEvent],
        backlog: &mut materialize::Backlog,
    ) -> Vec<Result<Recorded, StoreError>> {
        match self.run_transaction(events, backlog) {
            Ok(results) => results,
            Err(e) if events.len() > 1 => {
                tracing::warn!(error = %e, batch = events.len(), "batch rolled back; retrying its requests one by one");
                // Nothing of the batch was stored or published.
                events
                    .iter()
                    .map(
                        |event| match self.run_transaction(std::slice::from_ref(event), backlog) {
                            Ok(mut results) => results
                                .pop()
                                .unwrap_or(Err(StoreError::Unavailable("no result"))),
                            Err(e) => Err(e),
                        },
                    )
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
        &mut self,
        events: &[&NewEvent],
        backlog: &mut materialize::Backlog,
    ) -> Result<Vec<Result<Recorded, StoreError>>, StoreError> {
        let tx = self
            .log
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        // Users this transaction changed: their lifetime before it (None: new
        // user), the version of their row in the derived tables, and their
        // state after it; published only once committed.
        let mut pending: HashMap<&str, Changed> = HashMap::new();
        // (user, occurred_at, seq) of each event logged.
        let mut logged = Vec::with_capacity(events.len());
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            let user = event.user_id.as_str();
            // Newest first: this transaction, then the backlog, then the cache
            // (which holds every user whose row is behind), then the table.
            let (before, stored_version) = match pending.get(user) {
                Some(changed) => (Some(changed.after.clone()), changed.stored_version),
                None => backlog.state_of(user, || match self.published.cache.get(user) {
                    Some(known) => Ok(known.map(|state| (*state).clone())),
                    None => read::user(&self.users, &event.user_id),
                })?,
            };
            let lifetime_before = before.as_ref().map(|b| b.state.lifetime);
            match write::plan(&tx, event, before, &self.rules) {
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
        let published = &self.published;
        let mut states = HashMap::with_capacity(pending.len());
        for (user, changed) in pending {
            published.ranking.update(
                user,
                changed.lifetime_before,
                changed.after.state.lifetime,
                changed.after.state.total,
            );
            let state = Arc::new(changed.after);
            published.cache.offer_written(user, state.clone(), true);
            states.insert(user, (changed.stored_version, state));
        }
        for (user, occurred_at, seq) in logged {
            let (stored_version, state) = &states[user];
            backlog.add(user, *stored_version, state.clone(), occurred_at, seq);
        }
        Ok(results)
    }
}

/// A user changed by the transaction in progress.
struct Changed {
    lifetime_before: Option<Points>,
    stored_version: u64,
    after: UserSnapshot,
}

/// Writes the backlogs the writer hands over to the derived tables, in
/// order, merging those that wait. On failure keeps them (the log has every
/// event; reads are served from memory meanwhile) and tries again a second
/// later; if the store is closing, gives up and leaves them to the replay at
/// the next start.
fn materializer_loop(
    mut conn: Connection,
    backlogs: std::sync::mpsc::Receiver<materialize::Backlog>,
    cache: Arc<cache::UserCache>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut pending = materialize::Backlog::default();
    let mut open = true;
    while open {
        match backlogs.recv() {
            Ok(backlog) => pending.absorb(backlog),
            Err(_) => break,
        }
        loop {
            while let Ok(more) = backlogs.try_recv() {
                pending.absorb(more);
            }
            match materialize::write(&mut conn, &mut pending, now_ms()) {
                Ok(()) => {
                    // Epoch first: see cache::UserCache::offer.
                    cache.advance_epoch();
                    for (user, dirty) in pending.users.drain() {
                        cache.mark_clean(&user, dirty.latest.version);
                    }
                    pending.index.clear();
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, events = pending.events(), "writing the derived tables failed; will retry");
                    match backlogs.recv_timeout(Duration::from_secs(1)) {
                        Ok(more) => pending.absorb(more),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                }
            }
        }
    }
    tracing::debug!("sqlite derived-table writer stopped");
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Copies the WAL back into the database file in the background, until the
/// store is dropped. PASSIVE never blocks the writer or the readers.
fn checkpoint_loop(conns: [Connection; 2], store: Weak<Inner>) {
    loop {
        thread::sleep(MATERIALIZE_EVERY);
        let Some(inner) = store.upgrade() else { break };
        // A full queue means the writer is busy and will materialize anyway.
        let _ = inner.writer.try_send(Job::Tick);
        drop(inner);
        for conn in &conns {
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "wal checkpoint failed");
            }
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
