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
//! **Reads** of a user's state come from a [`crate::cache::UserCache`] and the
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

pub mod backup;
mod boards;
mod erase;
mod keys;
mod materialize;
mod read;
mod rules;
mod schema;
mod tenants;
mod unindexed;
mod webhooks;
mod write;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use gamify_core::{Points, Rules, UserId, Window};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::board::{BoardKey, BoardRow, Cursor, Standing};
use crate::cache;
use crate::economy::{Done, Op, expect_done};
use crate::keys::ApiKey;
use crate::{Attempt, Delivery, DeliveryStatus, Due, Subscription};
use crate::{
    EventPage, Expire, Finding, LedgerPage, Moved, NewEvent, NewMovement, NewRedemption, Recorded,
    Redeemed, Redemption, RedemptionStatus, Reward, RewardDraft, Settle, Store, StoreError,
    UserSnapshot,
};
use writer::{HookJob, Job, Published, Writer};

pub use schema::SCHEMA_VERSION;

/// [`backend`], except that a constraint violation means a row with that
/// key exists: [`StoreError::AlreadyExists`] of `what`.
pub(crate) fn backend_unique(what: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::AlreadyExists(what),
        _ => backend(e),
    }
}

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
/// derived tables. Larger batches share more page writes: with 100k users,
/// 16,384 took the derived-table thread from 13–14 to 7–8 µs of CPU per
/// event against 4,096, and distinct-user ingest up 16% on two cores
/// (docs/BENCHMARKS.md, "Bigger derived batches"). The events not yet
/// written there are what a restart after a crash replays; listings find
/// them through [`unindexed`], not by scanning, so their number does not
/// slow reads.
pub const MATERIALIZE_AFTER: usize = 16384;
/// How often the background thread checkpoints both files and asks the
/// writer to hand over whatever it has logged since the last hand-over.
pub const MATERIALIZE_EVERY: Duration = Duration::from_millis(1000);

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
    boards: Arc<boards::Boards>,
    /// Users with rows the derived indexes do not list yet.
    unindexed: Arc<unindexed::Unindexed>,
    /// Every version of the rules (shared with the writer).
    book: Arc<crate::RuleBook>,
    /// Whether the boards were built (see [`SqliteStore::open_with`]).
    leaderboards: bool,
    /// Held for the store's life; the OS releases it if the process dies.
    _lock: File,
    /// The writer's commits so far ([`Writer::commits`]).
    commits: Arc<AtomicU64>,
    /// The commit count at which the outbox was last seen empty (none
    /// pending, none to retry); `u64::MAX`: not known empty. While the count
    /// stays there, the outbox reads answer without a query: an idle store
    /// (a tenant nobody uses just now) costs its delivery loop no reads.
    quiet_outbox: AtomicU64,
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

/// Makes the database's directory if needed; one that cannot be (a file
/// in its place, no permission) is named with the reason.
pub(crate) fn data_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.exists() && !dir.is_dir() {
        return Err(StoreError::Config(format!(
            "{} is not a directory: the database file goes in one",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        StoreError::Config(format!("cannot make the directory {}: {e}", dir.display()))
    })
}

impl SqliteStore {
    /// Whether the outbox was seen empty and nothing was committed since.
    fn outbox_quiet(&self) -> bool {
        self.inner.quiet_outbox.load(Ordering::Acquire)
            == self.inner.commits.load(Ordering::Acquire)
    }

    /// Opens (creating if needed) the log at `path` and its derived tables
    /// beside it ([`derived_path`]), applies pending migrations, replays
    /// into the derived tables what they lack, and starts the writer,
    /// derived-table and checkpoint threads. Fails with
    /// [`StoreError::InUse`] if another process has the files open as a store.
    pub fn open(path: &Path, rules: Rules) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, rules, true)
    }

    /// [`SqliteStore::open`], choosing whether to build the leaderboards: a
    /// process that serves no requests (an export, an import, a check)
    /// saves their start-up time and memory; its board reads are refused.
    pub fn open_with(
        path: &Path,
        rules: Rules,
        leaderboards: bool,
    ) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            data_dir(dir)?;
        }
        let lock = lock_files(path)?;

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
        if !derived_path.exists() {
            // Deleted to be rebuilt: a WAL left beside it belongs to the old
            // file, and SQLite would read it as part of the new one.
            for suffix in ["-wal", "-shm"] {
                let mut stale = derived_path.as_os_str().to_owned();
                stale.push(suffix);
                let _ = std::fs::remove_file(stale);
            }
        }
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
        erase::finish_unfinished(&log, &mut derived)?;
        let book = Arc::new(crate::RuleBook::new(rules::load_or_start(&log)?)?);
        materialize::recover(&log, &mut derived, &book)?;
        materialize::recover_deliveries(&log, &mut derived)?;
        let boards = Arc::new(if leaderboards {
            boards::Boards::load(&log, &derived)?
        } else {
            boards::Boards::default()
        });

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open_reader(path, &derived_path)?);
        }

        let cache = Arc::new(cache::UserCache::new(CACHED_USERS));
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let (to_materializer, backlogs) = std::sync::mpsc::sync_channel(1);
        let materializer_cache = cache.clone();
        let unindexed = Arc::new(unindexed::Unindexed::default());
        let materializer_unindexed = unindexed.clone();
        let materializer = thread::Builder::new()
            .name("gamify-sqlite-derive".into())
            .spawn(move || {
                writer::materializer_loop(
                    derived,
                    backlogs,
                    materializer_cache,
                    materializer_unindexed,
                )
            })
            .map_err(backend)?;
        let published = Published {
            cache: cache.clone(),
            boards: boards.clone(),
            unindexed: unindexed.clone(),
        };
        let users = open_read_only(&derived_path)?;
        let erased = erase::erased_hashes(&log)?;
        let hooks = webhooks::subscriptions(&log)?;
        let board_changes = if leaderboards {
            let (board_changes, changes) = std::sync::mpsc::channel();
            let applying = boards.clone();
            thread::Builder::new()
                .name("gamify-sqlite-boards".into())
                .spawn(move || boards::apply_loop(applying, changes))
                .map_err(backend)?;
            Some(board_changes)
        } else {
            None
        };
        let commits = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            log,
            users,
            checker: open_reader(path, &derived_path)?,
            rules,
            book: book.clone(),
            published,
            to_materializer,
            materializer: JoinOnDrop(Some(materializer)),
            erased,
            board_changes,
            hooks,
            commits: commits.clone(),
        };
        let writer_thread = thread::Builder::new()
            .name("gamify-sqlite-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(backend)?;
        let inner = Arc::new(Inner {
            path: path.to_owned(),
            writer: tx,
            _writer_thread: JoinOnDrop(Some(writer_thread)),
            commits,
            quiet_outbox: AtomicU64::new(u64::MAX),
            readers: Mutex::new(readers),
            reader_slots: Semaphore::new(READERS),
            cache,
            boards,
            unindexed,
            book,
            leaderboards,
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

/// Takes the lock that says one process owns the log at `path` (and its
/// derived file): [`StoreError::InUse`] if another holds it. Held as long
/// as the file is open; the OS releases it if the process dies.
pub(crate) fn lock_files(path: &Path) -> Result<File, StoreError> {
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
    Ok(lock)
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Copies the WAL back into the database file in the background, until the
/// store is dropped. PASSIVE never blocks the writer or the readers. A
/// round in which neither file changed (SQLite's `data_version`: another
/// connection committed) does nothing, so an idle store (a tenant nobody
/// uses just now) costs next to no CPU.
fn checkpoint_loop(conns: [Connection; 2], store: Weak<Inner>) {
    let mut seen = [None, None];
    loop {
        thread::sleep(MATERIALIZE_EVERY);
        let versions = [0, 1].map(|i| {
            conns[i]
                .query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0))
                .ok()
        });
        if versions == seen && versions.iter().all(Option::is_some) {
            if store.strong_count() == 0 {
                break;
            }
            continue;
        }
        seen = versions;
        let Some(inner) = store.upgrade() else { break };
        // A full queue means the writer is busy and will materialize anyway.
        let _ = inner.writer.try_send(Job::Tick);
        drop(inner);
        for conn in &conns {
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                Ok(()) => {}
                // Another connection holds the lock (the last one closing
                // checkpoints the log itself): the next round copies it.
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(
                            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                        )
                    ) =>
                {
                    tracing::debug!(error = %e, "wal checkpoint deferred: the database is busy");
                }
                Err(e) => tracing::warn!(error = %e, "wal checkpoint failed"),
            }
        }
    }
}

impl SqliteStore {
    /// Sends a job to the writer and waits for its answer.
    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(job(reply))
            .await
            .map_err(|_| StoreError::Unavailable("writer stopped"))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("writer stopped"))?
    }

    async fn hook(&self, job: HookJob) -> Result<Option<Delivery>, StoreError> {
        self.ask(|reply| Job::Hook(job, reply)).await
    }

    async fn apply(&self, op: Op) -> Result<Done, StoreError> {
        self.ask(|reply| Job::Apply(op, reply, tracing::Span::current()))
            .await
    }

    fn check_leaderboards(&self) -> Result<(), StoreError> {
        if self.inner.leaderboards {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "this process opened the store without its leaderboards",
            ))
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
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
        self.ask(|reply| Job::SaveReward(draft, create, reply))
            .await
    }

    async fn rewards(&self) -> Result<Vec<Reward>, StoreError> {
        self.read(read::rewards).await
    }

    async fn redemptions(
        &self,
        user_id: Option<&UserId>,
        status: Option<RedemptionStatus>,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<Redemption>, StoreError> {
        let user = user_id.map(|u| u.as_str().to_owned());
        let before = before.map(str::to_owned);
        self.read(move |c| read::redemptions(c, user.as_deref(), status, limit, before.as_deref()))
            .await
    }

    async fn ledger(
        &self,
        user_id: &UserId,
        limit: u32,
        before: Option<i64>,
    ) -> Result<LedgerPage, StoreError> {
        let user_id = user_id.clone();
        // Before the read takes its snapshot: see `unindexed`.
        let unindexed = self.inner.unindexed.ledger_of(user_id.as_str());
        self.read(move |c| read::ledger(c, &user_id, limit, before, &unindexed))
            .await
    }

    async fn verify(&self) -> Result<Vec<Finding>, StoreError> {
        self.ask(Job::Verify).await
    }

    async fn credited_since(&self, user_id: &UserId, since_ms: i64) -> Result<Points, StoreError> {
        let user = user_id.as_str().to_owned();
        // Before the read takes its snapshot: see `unindexed`.
        let unindexed = self.inner.unindexed.ledger_of(&user);
        self.read(move |c| read::credited_since(c, &user, since_ms, &unindexed))
            .await
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
        expect_done!(self.ask(|reply| Job::Expire(expire, reply)).await, Expire)
    }

    async fn export_page(
        &self,
        table: crate::export::Table,
        after: crate::export::After,
        filter: &crate::export::ExportFilter,
        limit: u32,
    ) -> Result<crate::export::Page, StoreError> {
        let filter = filter.clone();
        if table == crate::export::Table::Users {
            // Users' rows lag the log: the writer brings them up to date first.
            return self
                .ask(|reply| Job::ExportUsers(after, filter, limit, reply))
                .await;
        }
        self.read(move |c| read::export_page(c, table, &after, &filter, limit))
            .await
    }

    async fn import_page(&self, page: crate::export::Page) -> Result<(), StoreError> {
        self.ask(|reply| Job::Import(page, reply)).await
    }

    async fn erase(
        &self,
        user_id: &UserId,
        id: &str,
        at_ms: i64,
    ) -> Result<crate::Erasure, StoreError> {
        let (user, id) = (user_id.clone(), id.to_owned());
        self.ask(|reply| Job::Erase(user, id, at_ms, reply)).await
    }

    async fn erasure(&self, user_id: &UserId) -> Result<Option<crate::Erasure>, StoreError> {
        let hash = crate::erasure::user_hash(user_id.as_str());
        self.read(move |c| erase::find(c, &hash)).await
    }

    async fn users_where(
        &self,
        filter: crate::UserFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let after = after.map(str::to_owned);
        self.ask(|reply| Job::UsersWhere(filter, after, limit, reply))
            .await
    }

    async fn user(&self, user_id: &UserId) -> Result<Option<Arc<UserSnapshot>>, StoreError> {
        if let Some(known) = self.inner.cache.get(user_id.as_str()) {
            return Ok(known);
        }
        let ticket = self.inner.cache.ticket(user_id.as_str());
        let id = user_id.clone();
        let found = self.read(move |c| read::user(c, &id)).await?.map(Arc::new);
        self.inner
            .cache
            .offer_read(user_id.as_str(), found.clone(), ticket);
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
        // Before the read takes its snapshot: see `unindexed`.
        let unindexed = self.inner.unindexed.events_of(user_id.as_str());
        self.read(move |c| read::events(c, &user_id, limit, before.as_deref(), &unindexed))
            .await
    }

    async fn board(
        &self,
        key: BoardKey,
        window: Window,
        after: Option<Cursor>,
        limit: u32,
    ) -> Result<Vec<BoardRow>, StoreError> {
        self.check_leaderboards()?;
        match self
            .inner
            .boards
            .rows(key, window, after.as_ref(), limit as usize)
        {
            boards::Held::Yes(rows) => Ok(rows),
            boards::Held::No => {
                let board = self
                    .read(move |c| boards::window_from_log(c, key, window))
                    .await?;
                Ok(crate::board::page_of(
                    &board,
                    after.as_ref(),
                    limit as usize,
                ))
            }
        }
    }

    async fn board_stamp(&self) -> Result<Option<u64>, StoreError> {
        self.check_leaderboards()?;
        Ok(Some(self.inner.boards.stamp()))
    }

    async fn standing(
        &self,
        key: BoardKey,
        window: Window,
        user_id: &UserId,
        k: u32,
    ) -> Result<Standing, StoreError> {
        self.check_leaderboards()?;
        let user = user_id.as_str().to_owned();
        match self.inner.boards.standing(key, window, &user, k as usize) {
            boards::Held::Yes(standing) => Ok(standing),
            boards::Held::No => {
                let hidden = self.inner.boards.is_hidden(&user);
                let board = self
                    .read(move |c| boards::window_from_log(c, key, window))
                    .await?;
                // A hidden user's own points are not on the summed board.
                Ok(crate::board::standing_of(
                    &board,
                    &user,
                    hidden,
                    Points::ZERO,
                    k as usize,
                ))
            }
        }
    }

    async fn set_hidden(
        &self,
        user_id: &UserId,
        hidden: bool,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let user = user_id.clone();
        self.ask(|reply| Job::SetHidden(user, hidden, at_ms, reply))
            .await
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<(), StoreError> {
        self.hook(HookJob::Subscribe(subscription)).await.map(drop)
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.read(webhooks::subscriptions).await
    }

    async fn subscription_made(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.read(move |c| webhooks::made(c, &id)).await
    }

    async fn unsubscribe(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        self.hook(HookJob::Unsubscribe(id.to_owned(), at_ms))
            .await
            .map(drop)
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        _lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Due>, StoreError> {
        if self.outbox_quiet() {
            return Ok(Vec::new());
        }
        self.read(move |c| webhooks::due(c, now_ms, limit)).await
    }

    async fn delivery_attempted(&self, attempts: Vec<Attempt>) -> Result<(), StoreError> {
        self.hook(HookJob::Attempted(attempts)).await.map(drop)
    }

    async fn deliveries(
        &self,
        subscription_id: &str,
        status: Option<DeliveryStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let id = subscription_id.to_owned();
        self.read(move |c| webhooks::list(c, &id, status, before, limit))
            .await
    }

    async fn replay_delivery(&self, id: &str, at_ms: i64) -> Result<Delivery, StoreError> {
        self.hook(HookJob::Replay(id.to_owned(), at_ms))
            .await?
            .ok_or(StoreError::NotFound("delivery"))
    }

    async fn analytics(
        &self,
        active_since: Vec<i64>,
        days_from_ms: i64,
    ) -> Result<crate::analytics::Analytics, StoreError> {
        self.ask(|reply| Job::Analytics(active_since, days_from_ms, reply))
            .await
    }

    async fn pending_deliveries(&self) -> Result<u64, StoreError> {
        if self.outbox_quiet() {
            return Ok(0);
        }
        // Read before the query: a commit meanwhile makes it stale at once.
        let commits = self.inner.commits.load(Ordering::Acquire);
        let pending = self.read(webhooks::pending).await?;
        if pending == 0 {
            self.inner.quiet_outbox.store(commits, Ordering::Release);
        }
        Ok(pending)
    }

    async fn prune_deliveries(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError> {
        self.ask(|reply| Job::PruneDeliveries(before_ms, limit, reply))
            .await
    }

    async fn notify(&self, notices: Vec<crate::webhook::Notice>) -> Result<(), StoreError> {
        self.hook(HookJob::Notify(notices)).await.map(drop)
    }

    async fn create_key(&self, key: ApiKey) -> Result<(), StoreError> {
        self.hook(HookJob::CreateKey(key)).await.map(drop)
    }

    async fn keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.read(keys::all).await
    }

    async fn revoke_key(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        self.hook(HookJob::RevokeKey(id.to_owned(), at_ms))
            .await
            .map(drop)
    }

    async fn tenants(&self) -> Result<Vec<crate::tenants::Tenant>, StoreError> {
        self.read(tenants::all).await
    }

    async fn add_tenant(&self, tenant: crate::tenants::Tenant) -> Result<(), StoreError> {
        self.hook(HookJob::AddTenant(tenant)).await.map(drop)
    }

    fn rule_book(&self) -> Arc<crate::RuleBook> {
        self.inner.book.clone()
    }

    async fn add_rules(
        &self,
        rules: gamify_core::RuleSet,
        at_ms: i64,
    ) -> Result<Arc<crate::RuleVersion>, StoreError> {
        let rules = Arc::new(rules);
        self.hook(HookJob::AddRules(crate::RuleVersion {
            version: 0,
            rules: rules.clone(),
            created_at_ms: at_ms,
        }))
        .await?;
        crate::version_holding(&self.inner.book, &rules)
    }

    async fn refresh_rules(&self) -> Result<(), StoreError> {
        // Only this process writes the file.
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.inner.writer.is_closed() {
            return Err(StoreError::Unavailable("writer stopped"));
        }
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
            .await
    }
}
