//! The embedded default: one SQLite file, in WAL mode, fsync'd on every commit.
//!
//! **Writes** go through one writer thread that owns the only write connection.
//! It takes every request waiting in its queue (up to [`MAX_BATCH`]), applies
//! each inside its own savepoint of one transaction, commits once, and only
//! then answers each request. One fsync thus covers a whole batch (group
//! commit), yet each request gets its own result: a request that fails rolls
//! back its savepoint and leaves its neighbours alone. Serialising all writes
//! on one connection is also what serialises each user's updates.
//!
//! **Reads** use a small pool of read-only connections on blocking threads;
//! WAL lets them run beside the writer and see only committed data.

mod read;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

use async_trait::async_trait;
use gamify_core::{Rules, UserId};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::{
    CategoryTotal, EventPage, LeaderRow, NewEvent, Recorded, Store, StoreError, UserSnapshot,
};

pub use schema::SCHEMA_VERSION;

/// The most requests one commit covers. Large enough that a burst shares an
/// fsync, small enough that the first request in it does not wait long.
pub const MAX_BATCH: usize = 512;
/// How many requests may wait for the writer before senders wait for room.
const QUEUE_DEPTH: usize = 4096;
/// Read connections.
const READERS: usize = 4;

type Reply = oneshot::Sender<Result<Recorded, StoreError>>;

/// The SQLite store. Cheap to clone; all clones share the writer and the pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: mpsc::Sender<(NewEvent, Reply)>,
    readers: Mutex<Vec<Connection>>,
    reader_slots: Semaphore,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies pending
    /// migrations, and starts the writer thread.
    pub fn open(path: &Path, rules: Rules) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(backend)?;
        }
        let mut conn = Connection::open(path).map_err(backend)?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(backend)?;
        schema::migrate(&mut conn)?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI;
            let reader = Connection::open_with_flags(path, flags).map_err(backend)?;
            configure(&reader)?;
            readers.push(reader);
        }

        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        thread::Builder::new()
            .name("gamify-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, rules))
            .map_err(backend)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: tx,
                readers: Mutex::new(readers),
                reader_slots: Semaphore::new(READERS),
            }),
        })
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
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(backend)?;
    Ok(())
}

pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<(NewEvent, Reply)>, rules: Rules) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let results = commit_batch(&mut conn, &batch, &rules);
        for ((_, reply), result) in batch.drain(..).zip(results) {
            // The requester may have gone away; the event is stored regardless.
            let _ = reply.send(result);
        }
    }
    tracing::debug!("sqlite writer stopped");
}

/// Applies every request in its own savepoint and commits once. If the commit
/// itself fails nothing is stored, so every request is told so.
fn commit_batch(
    conn: &mut Connection,
    batch: &[(NewEvent, Reply)],
    rules: &Rules,
) -> Vec<Result<Recorded, StoreError>> {
    let run = |conn: &mut Connection| -> Result<Vec<Result<Recorded, StoreError>>, StoreError> {
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let mut results = Vec::with_capacity(batch.len());
        for (event, _) in batch {
            let mut sp = tx.savepoint().map_err(backend)?;
            let result = write::record(&sp, event, rules);
            if result.is_ok() {
                sp.commit().map_err(backend)?;
            } else {
                sp.rollback().map_err(backend)?;
            }
            results.push(result);
        }
        tx.commit().map_err(backend)?;
        Ok(results)
    };
    match run(conn) {
        Ok(results) => results,
        Err(e) => {
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), batch = batch.len(), "sqlite batch commit failed");
            batch
                .iter()
                .map(|_| Err(StoreError::Unavailable("commit failed")))
                .collect()
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn record_event(&self, event: NewEvent) -> Result<Recorded, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send((event, reply))
            .await
            .map_err(|_| StoreError::Unavailable("writer stopped"))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("writer stopped"))?
    }

    async fn user(&self, user_id: &UserId) -> Result<Option<UserSnapshot>, StoreError> {
        let user_id = user_id.clone();
        self.read(move |c| read::user(c, &user_id)).await
    }

    async fn user_stats(
        &self,
        user_id: &UserId,
    ) -> Result<Option<(UserSnapshot, Vec<CategoryTotal>)>, StoreError> {
        let user_id = user_id.clone();
        self.read(move |c| {
            let Some(user) = read::user(c, &user_id)? else {
                return Ok(None);
            };
            Ok(Some((user, read::category_totals(c, &user_id)?)))
        })
        .await
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
        self.read(move |c| read::leaderboard(c, limit)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.inner.writer.is_closed() {
            return Err(StoreError::Unavailable("writer stopped"));
        }
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
            .await
    }
}
