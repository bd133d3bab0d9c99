//! Bringing the derived tables up to date with the log.
//!
//! Acknowledging an event appends to `events` and `ledger` only, in the log
//! file: rows with growing keys, so a commit of many events dirties few pages.
//! Each user's row in `users` and their entries in `user_events` live in a
//! second file and are written there later, by a thread of their own, for
//! thousands of events at once ([`Backlog`]): a user with several events in
//! that time is written once, index pages are written once per batch instead
//! of once per acknowledgement, and the writer never waits for any of it.
//! `materialized.through_seq` moves in the same transaction, so the derived
//! tables always reflect exactly the events up to it.
//!
//! Until then, the user's state is served from the cache (which never evicts
//! it), and event listings add the events past `through_seq` (see
//! `super::read::events`). When the store opens, [`recover`] replays the
//! events past `through_seq` with the same rules (after a crash, a few
//! thousand; all of them if the derived file was deleted).

use std::collections::HashMap;
use std::sync::Arc;

use gamify_core::{Category, Points, Rules, UserId, Value};
use rusqlite::{Connection, TransactionBehavior, params};

use super::{backend, read};
use crate::{
    StoreError, UserSnapshot, corrupt, decode_unlocked, encode_achievements, encode_categories,
};

/// Users and index entries logged but not yet in the derived tables.
#[derive(Default)]
pub struct Backlog {
    /// Per user: the version its `users` row is at (0: no row) and its
    /// latest state.
    pub users: HashMap<String, Dirty>,
    /// `user_events` entries to add: (user_id, occurred_at, seq).
    pub index: Vec<(String, i64, i64)>,
    /// The highest seq logged.
    pub through_seq: i64,
}

/// One user's unwritten state.
pub struct Dirty {
    /// The version of the user's row in the database (0: none yet).
    pub stored_version: u64,
    /// The state to write.
    pub latest: Arc<UserSnapshot>,
}

impl Backlog {
    /// How many events it holds.
    pub fn events(&self) -> usize {
        self.index.len()
    }

    /// Adds a logged event of `user`, whose state was at `stored_version`
    /// before the backlog touched it, and is `latest` after it.
    pub fn add(
        &mut self,
        user: &str,
        stored_version: u64,
        latest: Arc<UserSnapshot>,
        occurred_at: i64,
        seq: i64,
    ) {
        match self.users.get_mut(user) {
            Some(dirty) => dirty.latest = latest,
            None => {
                self.users.insert(
                    user.to_owned(),
                    Dirty {
                        stored_version,
                        latest,
                    },
                );
            }
        }
        self.index.push((user.to_owned(), occurred_at, seq));
        self.through_seq = self.through_seq.max(seq);
    }

    /// Adds a later backlog to this one: its users' latest states replace
    /// those here, while the stored versions here (older) stay.
    pub fn absorb(&mut self, later: Backlog) {
        for (user, dirty) in later.users {
            match self.users.get_mut(&user) {
                Some(mine) => mine.latest = dirty.latest,
                None => {
                    self.users.insert(user, dirty);
                }
            }
        }
        self.index.extend(later.index);
        self.through_seq = self.through_seq.max(later.through_seq);
    }

    /// The user's latest state and the version of their row in the derived
    /// tables: from the backlog if it holds the user, else from `stored`
    /// (which reads what the derived tables hold).
    pub fn state_of(
        &self,
        user: &str,
        stored: impl FnOnce() -> Result<Option<UserSnapshot>, StoreError>,
    ) -> Result<(Option<UserSnapshot>, u64), StoreError> {
        if let Some(dirty) = self.users.get(user) {
            return Ok((Some((*dirty.latest).clone()), dirty.stored_version));
        }
        let stored = stored()?;
        let version = stored.as_ref().map_or(0, |s| s.version);
        Ok((stored, version))
    }
}

/// Writes the backlog to `users` and `user_events` and moves `through_seq`,
/// in one transaction. On error nothing is written and the backlog is kept.
pub fn write(conn: &mut Connection, backlog: &mut Backlog, now_ms: i64) -> Result<(), StoreError> {
    if backlog.index.is_empty() {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    // In key order, so that consecutive writes land on neighbouring pages.
    let mut users: Vec<(&String, &Dirty)> = backlog.users.iter().collect();
    users.sort_unstable_by(|a, b| a.0.cmp(b.0));
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO users (total_milli, lifetime_milli, best_streak, streak_runs, achievements, event_count,
                                    category_totals, last_event_at, version, updated_at, user_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?10)",
            )
            .map_err(backend)?;
        // The version check guards against writing over a row this backlog
        // did not start from: it fails the batch instead of losing points.
        let mut update = tx
            .prepare_cached(
                "UPDATE users SET total_milli = ?1, lifetime_milli = ?2, best_streak = ?3, streak_runs = ?4,
                                  achievements = ?5, event_count = ?6, category_totals = ?7, last_event_at = ?8,
                                  version = ?9, updated_at = ?10
                 WHERE user_id = ?11 AND version = ?12",
            )
            .map_err(backend)?;
        for (user, dirty) in users {
            let after = &dirty.latest;
            let state = &after.state;
            let values = params![
                state.total.milli(),
                state.lifetime.milli(),
                state.best_streak,
                state.runs.encode(),
                encode_achievements(&state.achievements),
                after.event_count,
                encode_categories(&after.categories),
                after.last_event_at_ms,
                after.version,
                now_ms,
                user,
            ];
            let changed = if dirty.stored_version == 0 {
                insert.execute(values)
            } else {
                let mut with_check = values.to_vec();
                with_check.push(&dirty.stored_version);
                update.execute(with_check.as_slice())
            }
            .map_err(backend)?;
            if changed != 1 {
                return Err(StoreError::Corrupt(format!(
                    "user {user} was not at version {} in the database",
                    dirty.stored_version
                )));
            }
        }
    }
    backlog.index.sort_unstable();
    {
        let mut index = tx
            .prepare_cached(
                "INSERT INTO user_events (user_id, occurred_at, seq) VALUES (?1, ?2, ?3)",
            )
            .map_err(backend)?;
        for (user, occurred_at, seq) in &backlog.index {
            index
                .execute(params![user, occurred_at, seq])
                .map_err(backend)?;
        }
    }
    tx.execute(
        "UPDATE materialized SET through_seq = ?1 WHERE id = 1",
        [backlog.through_seq],
    )
    .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(())
}

/// Events replayed per derived-table transaction during [`recover`].
const REPLAY_CHUNK: usize = 50_000;

/// Replays the events of the `log` past the derived tables' `through_seq`
/// into them, as the writer would have. Run at open, before any request;
/// returns how many events it replayed. Each replayed event must score
/// exactly what was acknowledged for it, or the store refuses to open.
pub fn recover(
    log: &Connection,
    derived: &mut Connection,
    rules: &Rules,
) -> Result<u64, StoreError> {
    let through: i64 = derived
        .query_row(
            "SELECT through_seq FROM materialized WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let last_logged: i64 = log
        .query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
        .map_err(backend)?;
    if through > last_logged {
        // A log restored from an older copy beside newer derived tables: they
        // describe events this log does not have.
        return Err(StoreError::Schema(format!(
            "the derived tables reflect events up to seq {through}, but the log ends at seq \
             {last_logged}: they belong to another copy of the log; delete the derived file \
             (the one ending in -derived) and start again to rebuild it from this log"
        )));
    }
    let pending: u64 = log
        .query_row(
            "SELECT count(*) FROM events WHERE seq > ?1",
            [through],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if pending == 0 {
        return Ok(0);
    }
    let started = std::time::Instant::now();
    tracing::info!(
        events = pending,
        from_seq = through + 1,
        "replaying events logged but not yet applied to users"
    );
    let mut stmt = log
        .prepare(
            "SELECT seq, id, user_id, category, value_milli, occurred_at, points_milli, unlocked,
                    total_after, lifetime_after
             FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
        )
        .map_err(backend)?;
    let mut rows = stmt.query(params![through, last_logged]).map_err(backend)?;
    let mut backlog = Backlog::default();
    let mut done = 0u64;
    while let Some(row) = rows.next().map_err(backend)? {
        let event = Logged {
            seq: row.get(0).map_err(backend)?,
            id: row.get(1).map_err(backend)?,
            user_id: row.get(2).map_err(backend)?,
            category: row.get(3).map_err(backend)?,
            value_milli: row.get(4).map_err(backend)?,
            occurred_at: row.get(5).map_err(backend)?,
            points_milli: row.get(6).map_err(backend)?,
            unlocked: row.get(7).map_err(backend)?,
            total_after: row.get(8).map_err(backend)?,
            lifetime_after: row.get(9).map_err(backend)?,
        };
        replay_one(derived, &mut backlog, &event, rules)?;
        done += 1;
        if backlog.events() >= REPLAY_CHUNK {
            write(derived, &mut backlog, super::now_ms())?;
            backlog = Backlog::default();
            tracing::info!(done, of = pending, "replaying");
        }
    }
    write(derived, &mut backlog, super::now_ms())?;
    tracing::info!(
        events = done,
        millis = started.elapsed().as_millis() as u64,
        "replayed"
    );
    Ok(done)
}

/// Scores one logged event on top of the user's state (from the backlog, or
/// the derived tables), checks it against what was acknowledged, and adds it
/// to the backlog.
fn replay_one(
    derived: &Connection,
    backlog: &mut Backlog,
    event: &Logged,
    rules: &Rules,
) -> Result<(), StoreError> {
    let (before, stored_version) = backlog.state_of(&event.user_id, || {
        let id = UserId::parse(&event.user_id).map_err(|_| corrupt("user id", &event.user_id))?;
        read::user(derived, &id)
    })?;
    let category =
        Category::parse(&event.category).map_err(|_| corrupt("category", &event.category))?;
    let (after, scored) = crate::scoring::advance(
        before,
        category,
        Value::from_milli(event.value_milli),
        event.occurred_at,
        rules,
    )?;
    let as_acknowledged = scored.points == Points::from_milli(event.points_milli)
        && scored.unlocked == decode_unlocked(&event.unlocked)?
        && after.state.total == Points::from_milli(event.total_after)
        && after.state.lifetime == Points::from_milli(event.lifetime_after);
    if !as_acknowledged {
        return Err(StoreError::Corrupt(format!(
            "replaying event {} (seq {}) does not give the points it was acknowledged with",
            event.id, event.seq
        )));
    }
    backlog.add(
        &event.user_id,
        stored_version,
        Arc::new(after),
        event.occurred_at,
        event.seq,
    );
    Ok(())
}

/// An event as the log holds it, with what it was acknowledged with.
struct Logged {
    seq: i64,
    id: String,
    user_id: String,
    category: String,
    value_milli: i64,
    occurred_at: i64,
    points_milli: i64,
    unlocked: String,
    total_after: i64,
    lifetime_after: i64,
}
