//! Bringing the derived tables up to date with the log.
//!
//! Acknowledging an event (or a spend, a redemption…) appends to `events`,
//! `ledger` and the like only, in the log file: rows with growing keys, so a
//! commit of many events dirties few pages. Each user's row in `users` and
//! their entries in `user_events` and `user_ledger` live in a second file and are written there later, by a thread of their own, for
//! thousands of events at once ([`Backlog`]): a user with several events in
//! that time is written once, index pages are written once per batch instead
//! of once per acknowledgement, and the writer never waits for any of it.
//! `materialized.through_seq` and `through_ledger_seq` move in the same
//! transaction, so the derived tables always reflect exactly the events and
//! ledger entries up to them.
//!
//! Until then, the user's state is served from the cache (which never evicts
//! it), and listings add the rows past those marks (see `super::read`). When
//! the store opens, [`recover`] replays the ledger entries past
//! `through_ledger_seq` (events with the same rules) — after a crash, a few
//! thousand; all of them if the derived file was deleted.

use std::sync::Arc;

use gamify_core::{Category, Points, UserId, Value};
// foldhash (seeded per process), not SipHash: the backlog holds only the
// users whose events still wait for the derived tables, and is hot.
use hashbrown::HashMap;
use rusqlite::{Connection, TransactionBehavior, params};

use super::{backend, read};
use crate::economy::{LedgerKind, move_points};
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
    /// `user_ledger` entries to add: (user_id, seq).
    pub ledger: Vec<(String, i64)>,
    /// `user_deliveries` entries to add: (user_id, seq).
    pub deliveries: Vec<(String, i64)>,
    /// `user_deliveries` entries to drop: deliveries pruned from the log.
    pub pruned: Vec<(String, i64)>,
    /// The highest event seq logged.
    pub through_seq: i64,
    /// The highest ledger seq written.
    pub through_ledger_seq: i64,
    /// The highest delivery seq written (the log never hands a delivery
    /// seq out twice: log migration 0011).
    pub through_delivery_seq: i64,
    /// Users erased from the log, to drop before anything above is written.
    pub erased: Vec<super::erase::Removed>,
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

    /// Whether it holds nothing to write.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.index.is_empty()
            && self.ledger.is_empty()
            && self.deliveries.is_empty()
            && self.pruned.is_empty()
            && self.erased.is_empty()
    }

    /// Notes that `user`, whose row was at `stored_version` before the
    /// backlog touched it, is now at `latest`.
    pub fn touch(&mut self, user: &str, stored_version: u64, latest: Arc<UserSnapshot>) {
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
    }

    /// Adds a logged event to the per-user event index.
    pub fn add_event(&mut self, user: &str, occurred_at: i64, seq: i64) {
        self.index.push((user.to_owned(), occurred_at, seq));
        self.through_seq = self.through_seq.max(seq);
    }

    /// Adds a written ledger entry to the per-user ledger index.
    pub fn add_ledger(&mut self, user: &str, seq: i64) {
        self.ledger.push((user.to_owned(), seq));
        self.through_ledger_seq = self.through_ledger_seq.max(seq);
    }

    /// Adds written webhook deliveries to the per-user delivery index.
    pub fn add_deliveries(&mut self, written: Vec<(String, i64)>) {
        for (_, seq) in &written {
            self.through_delivery_seq = self.through_delivery_seq.max(*seq);
        }
        self.deliveries.extend(written);
    }

    /// Notes deliveries pruned from the log: their index entries go (those
    /// still waiting here are not written at all).
    pub fn prune_deliveries(&mut self, pruned: Vec<(String, i64)>) {
        if pruned.is_empty() {
            return;
        }
        let gone: std::collections::HashSet<&(String, i64)> = pruned.iter().collect();
        self.deliveries.retain(|d| !gone.contains(d));
        self.pruned.extend(pruned);
    }

    /// Adds a later backlog to this one: its users' latest states replace
    /// those here, while the stored versions here (older) stay.
    ///
    /// An erasure in the later backlog drops what this one holds of its
    /// user, and its lowered marks bound this one's (see `super::erase`).
    pub fn absorb(&mut self, later: Backlog) {
        for removed in &later.erased {
            let user = removed.user_id.as_str();
            self.users.remove(user);
            self.index.retain(|(u, _, _)| u != user);
            self.ledger.retain(|(u, _)| u != user);
            self.deliveries.retain(|(u, _)| u != user);
            self.through_seq = self.through_seq.min(removed.events_max);
            self.through_ledger_seq = self.through_ledger_seq.min(removed.ledger_max);
        }
        self.erased.extend(later.erased);
        self.prune_deliveries(later.pruned);
        for (user, dirty) in later.users {
            match self.users.get_mut(&user) {
                Some(mine) => mine.latest = dirty.latest,
                None => {
                    self.users.insert(user, dirty);
                }
            }
        }
        self.index.extend(later.index);
        self.ledger.extend(later.ledger);
        self.deliveries.extend(later.deliveries);
        self.through_seq = self.through_seq.max(later.through_seq);
        self.through_ledger_seq = self.through_ledger_seq.max(later.through_ledger_seq);
        self.through_delivery_seq = self.through_delivery_seq.max(later.through_delivery_seq);
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
    if backlog.is_empty() {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)?;
    // Erasures first: everything else in the backlog came after them.
    super::erase::erase_derived(&tx, &backlog.erased)?;
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
                encode_categories(&after.state.categories),
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
    backlog.ledger.sort_unstable();
    {
        let mut index = tx
            .prepare_cached("INSERT INTO user_ledger (user_id, seq) VALUES (?1, ?2)")
            .map_err(backend)?;
        for (user, seq) in &backlog.ledger {
            index.execute(params![user, seq]).map_err(backend)?;
        }
    }
    // Pruned first: a seq is never handed out twice, so nothing below
    // re-adds one of these.
    {
        let mut drop = tx
            .prepare_cached("DELETE FROM user_deliveries WHERE user_id = ?1 AND seq = ?2")
            .map_err(backend)?;
        for (user, seq) in &backlog.pruned {
            drop.execute(params![user, seq]).map_err(backend)?;
        }
    }
    backlog.deliveries.sort_unstable();
    {
        let mut index = tx
            .prepare_cached(
                "INSERT INTO user_deliveries (user_id, seq) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )
            .map_err(backend)?;
        for (user, seq) in &backlog.deliveries {
            index.execute(params![user, seq]).map_err(backend)?;
        }
    }
    // max(): a backlog of spends alone carries no event seq, and the reverse.
    tx.execute(
        "UPDATE materialized SET through_seq = max(through_seq, ?1),
                                 through_ledger_seq = max(through_ledger_seq, ?2),
                                 through_delivery_seq = max(through_delivery_seq, ?3) WHERE id = 1",
        [
            backlog.through_seq,
            backlog.through_ledger_seq,
            backlog.through_delivery_seq,
        ],
    )
    .map_err(backend)?;
    tx.commit().map_err(backend)?;
    Ok(())
}

/// Ledger entries replayed per derived-table transaction during [`recover`].
const REPLAY_CHUNK: usize = 50_000;

/// Replays the ledger of the `log` past the derived tables'
/// `through_ledger_seq` into them, as the writer would have: every change to
/// a user's points is a ledger entry, and an event's entry brings the event
/// (streak, achievements, categories) with it. Run at open, before any
/// request; returns how many entries it replayed. Each replayed entry must
/// give exactly the balance it was written with, or the store refuses to
/// open.
pub fn recover(
    log: &Connection,
    derived: &mut Connection,
    book: &crate::RuleBook,
) -> Result<u64, StoreError> {
    let through: i64 = derived
        .query_row(
            "SELECT through_ledger_seq FROM materialized WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    let last_logged: i64 = log
        .query_row("SELECT coalesce(max(seq), 0) FROM ledger", [], |r| r.get(0))
        .map_err(backend)?;
    if through > last_logged {
        // A log restored from an older copy beside newer derived tables: they
        // describe entries this log does not have.
        return Err(StoreError::Schema(format!(
            "the derived tables reflect ledger entries up to seq {through}, but the log ends at \
             seq {last_logged}: they belong to another copy of the log; delete the derived file \
             (the one ending in -derived) and start again to rebuild it from this log"
        )));
    }
    let pending: u64 = log
        .query_row(
            "SELECT count(*) FROM ledger WHERE seq > ?1",
            [through],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if pending == 0 {
        return Ok(0);
    }
    let started = std::time::Instant::now();
    tracing::info!(
        entries = pending,
        from_seq = through + 1,
        "replaying ledger entries not yet applied to users"
    );
    let mut stmt = log
        .prepare(
            "SELECT l.seq, l.user_id, l.kind, l.amount_milli, l.balance_after_milli, l.lifetime_after_milli,
                    e.seq, e.id, e.category, e.value_milli, e.occurred_at, e.points_milli, e.unlocked,
                    e.rules_version
             FROM ledger l LEFT JOIN events e ON l.kind = 'event' AND e.id = l.reference
             WHERE l.seq > ?1 AND l.seq <= ?2 ORDER BY l.seq",
        )
        .map_err(backend)?;
    let mut rows = stmt.query(params![through, last_logged]).map_err(backend)?;
    let mut backlog = Backlog::default();
    let mut done = 0u64;
    while let Some(row) = rows.next().map_err(backend)? {
        let entry = Entry {
            seq: row.get(0).map_err(backend)?,
            user_id: row.get(1).map_err(backend)?,
            kind: LedgerKind::parse(&row.get::<_, String>(2).map_err(backend)?)?,
            amount_milli: row.get(3).map_err(backend)?,
            balance_after: row.get(4).map_err(backend)?,
            lifetime_after: row.get(5).map_err(backend)?,
        };
        let event = match row.get::<_, Option<i64>>(6).map_err(backend)? {
            None => None,
            Some(seq) => Some(Logged {
                seq,
                id: row.get(7).map_err(backend)?,
                category: row.get(8).map_err(backend)?,
                value_milli: row.get(9).map_err(backend)?,
                occurred_at: row.get(10).map_err(backend)?,
                points_milli: row.get(11).map_err(backend)?,
                unlocked: row.get(12).map_err(backend)?,
                rules_version: row.get(13).map_err(backend)?,
            }),
        };
        replay_one(derived, &mut backlog, &entry, event.as_ref(), book)?;
        done += 1;
        if backlog.ledger.len() >= REPLAY_CHUNK {
            write(derived, &mut backlog, super::now_ms())?;
            backlog = Backlog::default();
            tracing::info!(done, of = pending, "replaying");
        }
    }
    write(derived, &mut backlog, super::now_ms())?;
    tracing::info!(
        entries = done,
        millis = started.elapsed().as_millis() as u64,
        "replayed"
    );
    Ok(done)
}

/// Lists the log's webhook deliveries past the derived tables'
/// `through_delivery_seq` in `user_deliveries`, as the writer would have.
/// Run at open, after [`recover`]; returns how many it listed (all of them
/// the first time after derived migration 0003).
pub fn recover_deliveries(log: &Connection, derived: &mut Connection) -> Result<u64, StoreError> {
    let through: i64 = derived
        .query_row(
            "SELECT through_delivery_seq FROM materialized WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    // The highest seq the log ever handed out (AUTOINCREMENT keeps it).
    let handed_out: i64 = log
        .query_row(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'webhook_deliveries'), 0)",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if through > handed_out {
        return Err(StoreError::Schema(format!(
            "the derived tables list webhook deliveries up to seq {through}, but the log has \
             handed out seqs only up to {handed_out}: they belong to another copy of the log; \
             delete the derived file (the one ending in -derived) and start again to rebuild it \
             from this log"
        )));
    }
    let pending: u64 = log
        .query_row(
            "SELECT count(*) FROM webhook_deliveries WHERE seq > ?1",
            [through],
            |r| r.get(0),
        )
        .map_err(backend)?;
    if pending == 0 {
        return Ok(0);
    }
    tracing::info!(
        deliveries = pending,
        from_seq = through + 1,
        "listing webhook deliveries not yet in the per-user index"
    );
    let mut stmt = log
        .prepare("SELECT user_id, seq FROM webhook_deliveries WHERE seq > ?1 ORDER BY seq")
        .map_err(backend)?;
    let mut rows = stmt.query([through]).map_err(backend)?;
    let mut backlog = Backlog::default();
    let mut done = 0u64;
    while let Some(row) = rows.next().map_err(backend)? {
        let user: String = row.get(0).map_err(backend)?;
        let seq: i64 = row.get(1).map_err(backend)?;
        backlog.add_deliveries(vec![(user, seq)]);
        done += 1;
        if backlog.deliveries.len() >= REPLAY_CHUNK {
            write(derived, &mut backlog, super::now_ms())?;
            backlog = Backlog::default();
            tracing::info!(done, of = pending, "listing deliveries");
        }
    }
    write(derived, &mut backlog, super::now_ms())?;
    tracing::info!(deliveries = done, "listed");
    Ok(done)
}

/// Applies one ledger entry to the user's state (from the backlog, or the
/// derived tables), checks it against what was written, and adds it to the
/// backlog. An event's own entry replays the event with the rules; its
/// bonus entries were part of that, and are only checked.
fn replay_one(
    derived: &Connection,
    backlog: &mut Backlog,
    entry: &Entry,
    event: Option<&Logged>,
    book: &crate::RuleBook,
) -> Result<(), StoreError> {
    let user = entry.user_id.as_str();
    let (before, stored_version) = backlog.state_of(user, || {
        let id = UserId::parse(user).map_err(|_| corrupt("user id", user))?;
        read::user(derived, &id)
    })?;
    let mismatch = || {
        StoreError::Corrupt(format!(
            "replaying ledger entry {} of user {user} does not give the balance it was written with",
            entry.seq
        ))
    };
    let after = match (entry.kind, event) {
        (LedgerKind::Event, Some(event)) => {
            let category = Category::named(&event.category)
                .ok_or_else(|| corrupt("category", &event.category))?;
            let rules = book.rules(event.rules_version, &event.id)?;
            let (after, scored) = crate::scoring::advance(
                before,
                category,
                Value::from_milli(event.value_milli),
                event.occurred_at,
                &rules,
            )?;
            let bonuses = scored.bonus_points().milli();
            let as_logged = scored.points == Points::from_milli(event.points_milli)
                && scored.unlocked == decode_unlocked(&event.unlocked)?
                && after.state.total.milli() - bonuses == entry.balance_after
                && after.state.lifetime.milli() - bonuses == entry.lifetime_after;
            if !as_logged {
                return Err(StoreError::Corrupt(format!(
                    "replaying event {} (seq {}) does not give the points it was acknowledged with",
                    event.id, event.seq
                )));
            }
            backlog.add_event(user, event.occurred_at, event.seq);
            after
        }
        (LedgerKind::Event, None) => return Err(mismatch()),
        (LedgerKind::AchievementBonus, _) => {
            // Paid by the event replayed just before; the state has it.
            let state = before.ok_or_else(mismatch)?;
            if state.state.total.milli() < entry.balance_after {
                return Err(mismatch());
            }
            backlog.add_ledger(user, entry.seq);
            return Ok(());
        }
        (kind, _) => {
            let mut after = before.unwrap_or_default();
            move_points(&mut after, kind, Points::from_milli(entry.amount_milli))?;
            if after.state.total.milli() != entry.balance_after
                || after.state.lifetime.milli() != entry.lifetime_after
            {
                return Err(mismatch());
            }
            after
        }
    };
    backlog.touch(user, stored_version, Arc::new(after));
    backlog.add_ledger(user, entry.seq);
    Ok(())
}

/// A ledger entry as the log holds it.
struct Entry {
    seq: i64,
    user_id: String,
    kind: LedgerKind,
    amount_milli: i64,
    balance_after: i64,
    lifetime_after: i64,
}

/// An event as the log holds it, with what it was acknowledged with.
struct Logged {
    seq: i64,
    id: String,
    category: String,
    value_milli: i64,
    occurred_at: i64,
    points_milli: i64,
    unlocked: String,
    rules_version: u32,
}
