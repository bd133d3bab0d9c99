//! Backing up and restoring the embedded database, while a server runs.
//!
//! Only the log (`gamify.db`) is copied: it alone determines everything, and
//! the derived file is rebuilt from it on the next start. The copy is taken
//! with `VACUUM INTO` on a read-only connection: one read transaction, so it
//! is a consistent snapshot of every commit before it began, and (WAL) the
//! server's writer never waits for it. It does not take the store's lock file,
//! so it runs beside `gamify serve`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{SCHEMA_VERSION, backend, derived_path};
use crate::StoreError;

/// What a backup or restore copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Bytes written.
    pub bytes: u64,
    /// Events in the copy.
    pub events: u64,
    /// Ledger entries in the copy.
    pub ledger_entries: u64,
}

/// Copies the log at `log` to `out` (which must not exist), calling
/// `progress` with the bytes written so far about once a second.
pub fn backup(
    log: &Path,
    out: &Path,
    progress: impl Fn(u64) + Send + Sync,
) -> Result<Copied, StoreError> {
    if out.exists() {
        return Err(StoreError::Config(format!(
            "{} exists already; choose a new file",
            out.display()
        )));
    }
    let folder = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return Err(StoreError::Config(format!(
            "cannot write {}: {} is not a directory",
            out.display(),
            folder.display()
        )));
    }
    let out_text = out
        .to_str()
        .ok_or_else(|| StoreError::Config(format!("{} is not UTF-8", out.display())))?;
    let conn = open_read_only(log)?;
    let done = Arc::new(AtomicBool::new(false));
    std::thread::scope(|scope| {
        let watcher = {
            let (done, progress) = (done.clone(), &progress);
            scope.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(200));
                    if let Ok(meta) = std::fs::metadata(out) {
                        progress(meta.len());
                    }
                }
            })
        };
        let copied = conn.execute("VACUUM INTO ?1", [out_text]).map_err(backend);
        done.store(true, Ordering::Relaxed);
        let _ = watcher.join();
        copied
    })?;
    // VACUUM INTO writes without syncing: make the copy durable before
    // saying it exists.
    std::fs::File::open(out)
        .and_then(|f| f.sync_all())
        .map_err(backend)?;
    describe(out)
}

/// Puts the backup `from` in place as the log at `log`, for a store that is
/// not running (refused if one holds the files). Checks the backup first
/// (integrity, a schema this binary can open), removes the old log's WAL and
/// the derived file (rebuilt from the restored log on the next start), and
/// replaces the log atomically.
pub fn restore(from: &Path, log: &Path) -> Result<Copied, StoreError> {
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        super::data_dir(dir)?;
    }
    let lock = super::lock_files(log)?;

    let checked = open_read_only(from)?;
    let verdict: String = checked
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| {
            StoreError::Schema(format!(
                "{} is not a gamify backup: SQLite cannot read it ({e})",
                from.display()
            ))
        })?;
    if verdict != "ok" {
        return Err(StoreError::Corrupt(format!(
            "{} fails SQLite's integrity check: {verdict}",
            from.display()
        )));
    }
    let version: i64 = checked
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(backend)?;
    if version == 0 || version > SCHEMA_VERSION {
        return Err(StoreError::Schema(format!(
            "{} is not a gamify log this binary can open (schema version {version}, this binary's is {SCHEMA_VERSION})",
            from.display()
        )));
    }
    // Another SQLite file (the derived tables' file beside the log, another
    // program's database) can pass the checks above; every log has these.
    for table in ["events", "ledger"] {
        let there: bool = checked
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [table],
                |r| r.get(0),
            )
            .map_err(backend)?;
        if !there {
            return Err(StoreError::Schema(format!(
                "{} is not a gamify log: it has no {table} table (restore takes a file made by `gamify backup`, or a stopped server's gamify.db)",
                from.display()
            )));
        }
    }
    drop(checked);

    let mut staging = log.as_os_str().to_owned();
    staging.push(".restoring");
    let staging = PathBuf::from(staging);
    std::fs::copy(from, &staging).map_err(backend)?;
    std::fs::File::open(&staging)
        .and_then(|f| f.sync_all())
        .map_err(backend)?;
    // A WAL left beside the old log would be read as part of the new one.
    let derived = derived_path(log);
    for file in [log, derived.as_path()] {
        for suffix in ["-wal", "-shm"] {
            let mut side = file.as_os_str().to_owned();
            side.push(suffix);
            remove_if_there(Path::new(&side))?;
        }
    }
    remove_if_there(&derived)?;
    std::fs::rename(&staging, log).map_err(backend)?;
    if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(backend)?;
    }
    drop(lock);
    describe(log)
}

fn remove_if_there(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(backend(e)),
        _ => Ok(()),
    }
}

fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Config(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(backend)?;
    Ok(conn)
}

fn describe(path: &Path) -> Result<Copied, StoreError> {
    let conn = open_read_only(path)?;
    let count = |table: &str| -> Result<u64, StoreError> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(backend)
    };
    Ok(Copied {
        bytes: std::fs::metadata(path).map_err(backend)?.len(),
        events: count("events")?,
        ledger_entries: count("ledger")?,
    })
}
