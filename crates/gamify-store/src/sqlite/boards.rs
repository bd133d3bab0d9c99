//! The embedded leaderboards: every board (see [`crate::board`]) as an
//! order-statistic index in memory ([`crate::rank`]), for all time and for
//! the newest two windows of each period (the current one and the one
//! before, so that last week's final standings stay exact however recent
//! its last events were). Older windows are summed from the log when asked
//! for ([`window_from_log`]): correct, but a scan of the events.
//!
//! Built when the store opens: the all-time boards from the `users` table,
//! the windows from the log's newest events (back to the start of the
//! previous month), with progress in the log. The writer updates them after
//! each commit, so they never hold uncommitted points and are rebuilt to
//! match the database after any restart. Keeping them here rather than as
//! SQL indexes spares every event several scattered page writes.

use std::collections::HashMap;
use std::sync::RwLock;

use gamify_core::{Category, Period, Points, Window};
// The boards' own maps are keyed by category, period or member number (never
// by a user's text), so foldhash serves them; SipHash was a sixth of the
// boards thread's instructions.
use hashbrown::{HashMap as Map, HashSet};
use rusqlite::{Connection, OptionalExtension, params};

use super::backend;
use crate::board::{BoardKey, BoardRow, Cursor, EventPoints, Standing};
use crate::rank::{Entry, Names, RankIndex};
use crate::{StoreError, decode_categories, decode_unlocked};

/// Members' scores on one board, by member number: a plain array (8
/// bytes a member), since every write reads one and hashing showed up.
#[derive(Default)]
struct Scores {
    by_member: Vec<i64>,
    len: usize,
}

/// Marks a member without a score.
const NONE: i64 = i64::MIN;

impl Scores {
    fn get(&self, member: &u32) -> Option<i64> {
        self.by_member
            .get(*member as usize)
            .copied()
            .filter(|s| *s != NONE)
    }

    fn insert(&mut self, member: u32, score: i64) -> Option<i64> {
        let i = member as usize;
        if i >= self.by_member.len() {
            self.by_member.resize(i + 1, NONE);
        }
        let old = std::mem::replace(&mut self.by_member[i], score);
        if old == NONE {
            self.len += 1;
            None
        } else {
            Some(old)
        }
    }

    fn remove(&mut self, member: &u32) -> Option<i64> {
        let old = self.get(member)?;
        self.by_member[*member as usize] = NONE;
        self.len -= 1;
        Some(old)
    }

    fn len(&self) -> usize {
        self.len
    }
}

/// One board: its index and every member's score (hidden ones too, so
/// that showing them again needs no reload).
#[derive(Default)]
struct Board {
    index: RankIndex,
    scores: Scores,
}

impl Board {
    fn set(&mut self, member: u32, score: i64, hidden: bool, names: &Names) {
        if let Some(old) = self.scores.insert(member, score) {
            if old == score {
                return;
            }
            if !hidden {
                self.index.remove(names.entry(member, old));
            }
        }
        if !hidden {
            self.index.insert(names.entry(member, score));
        }
    }

    fn add(&mut self, member: u32, points: i64, hidden: bool, names: &Names) {
        let score = self.scores.get(&member).unwrap_or(0) + points;
        self.set(member, score, hidden, names);
    }

    fn drop_member(&mut self, member: u32, hidden: bool, names: &Names) {
        if let Some(old) = self.scores.remove(&member)
            && !hidden
        {
            self.index.remove(names.entry(member, old));
        }
    }

    fn show(&mut self, member: u32, visible: bool, names: &Names) {
        if let Some(score) = self.scores.get(&member) {
            let entry = names.entry(member, score);
            if visible {
                self.index.insert(entry);
            } else {
                self.index.remove(entry);
            }
        }
    }

    fn row(&self, position: usize, entry: Entry, names: &Names) -> BoardRow {
        BoardRow {
            rank: position as u64 + 1,
            user_id: names.name(entry.member).to_owned(),
            points: Points::from_milli(entry.score),
        }
    }

    fn rows(&self, after: Option<&Cursor>, limit: usize, names: &Names) -> Vec<BoardRow> {
        // The first position after the cursor's key, whether or not its
        // user is still there.
        let from = after.map_or(0, |c| {
            self.index
                .first_after(c.points.milli(), names.tie_at_or_before(&c.user_id))
        });
        self.index
            .range(from, limit)
            .into_iter()
            .enumerate()
            .map(|(i, e)| self.row(from + i, e, names))
            .collect()
    }

    fn standing(&self, member: Option<u32>, hidden: bool, k: usize, names: &Names) -> Standing {
        let score = member.and_then(|m| self.scores.get(&m));
        let position = match (member, score, hidden) {
            (Some(member), Some(score), false) => self.index.position(&names.entry(member, score)),
            _ => None,
        };
        let (above, below) = match position {
            None => (Vec::new(), Vec::new()),
            Some(p) => {
                let start = p.saturating_sub(k);
                let above = self.index.range(start, p - start);
                let below = self.index.range(p + 1, k);
                (
                    above
                        .into_iter()
                        .enumerate()
                        .map(|(i, e)| self.row(start + i, e, names))
                        .collect(),
                    below
                        .into_iter()
                        .enumerate()
                        .map(|(i, e)| self.row(p + 1 + i, e, names))
                        .collect(),
                )
            }
        };
        Standing {
            rank: position.map(|p| p as u64 + 1),
            points: Points::from_milli(score.unwrap_or(0)),
            hidden,
            above,
            below,
            ranked: self.index.len() as u64,
        }
    }
}

/// One window's boards: overall and per category.
#[derive(Default)]
struct WindowBoards {
    boards: Map<Option<Category>, Board>,
}

#[derive(Default)]
struct State {
    names: Names,
    hidden: HashSet<u32>,
    all_time: Map<Option<Category>, Board>,
    /// Per period, the newest windows held, oldest first (at most two).
    windows: Map<Period, Vec<(Window, WindowBoards)>>,
}

/// How many windows of each period are held.
const KEPT: usize = 2;

impl State {
    /// The member number of a user, giving one; rewrites every board's tie
    /// keys if giving it renumbered them.
    fn intern(&mut self, user: &str) -> u32 {
        let (member, renumbered) = self.names.intern(user);
        if renumbered {
            let names = std::mem::take(&mut self.names);
            for board in self.every_board() {
                board.index.retie(&names);
            }
            self.names = names;
        }
        member
    }

    /// A user's all-time points: lifetime overall, event points per
    /// category (a category joins its board once it has points).
    fn set_all_time(&mut self, user: &str, lifetime: i64, categories: &[crate::CategoryTotal]) {
        let member = self.intern(user);
        let hidden = self.hidden.contains(&member);
        let names = &self.names;
        self.all_time
            .entry(None)
            .or_default()
            .set(member, lifetime, hidden, names);
        for c in categories.iter().filter(|c| c.points > Points::ZERO) {
            self.all_time.entry(Some(c.category)).or_default().set(
                member,
                c.points.milli(),
                hidden,
                names,
            );
        }
    }

    fn board_mut(&mut self, key: BoardKey, window: Window) -> Option<&mut Board> {
        if key.period == Period::AllTime {
            return Some(self.all_time.entry(key.category).or_default());
        }
        let kept = self.windows.entry(key.period).or_default();
        let newest = kept.last().map(|(w, _)| *w);
        if newest.is_none_or(|n| window > n) {
            kept.push((window, WindowBoards::default()));
            if kept.len() > KEPT {
                kept.remove(0);
            }
        }
        kept.iter_mut()
            .find(|(w, _)| *w == window)
            .map(|(_, b)| b.boards.entry(key.category).or_default())
    }

    fn add_event(&mut self, e: &EventPoints) {
        let member = self.intern(&e.user_id);
        let hidden = self.hidden.contains(&member);
        for (key, window, points) in e.contributions() {
            // Split borrows: the board, then the names.
            let names = std::mem::take(&mut self.names);
            if let Some(board) = self.board_mut(key, window) {
                board.add(member, points.milli(), hidden, &names);
            }
            self.names = names;
        }
    }

    fn every_board(&mut self) -> impl Iterator<Item = &mut Board> {
        self.all_time.values_mut().chain(
            self.windows
                .values_mut()
                .flat_map(|kept| kept.iter_mut().flat_map(|(_, w)| w.boards.values_mut())),
        )
    }
}

/// A change to the boards, in commit order.
pub enum Change {
    /// A commit: users' all-time points and the events it logged.
    Commit(
        Vec<(String, Points, Vec<crate::CategoryTotal>)>,
        Vec<EventPoints>,
    ),
    /// An erasure.
    Remove(String),
    /// A privacy choice.
    Hidden(String, bool),
}

/// Where the writer sends [`Change`]s, numbered.
pub type Changes = std::sync::mpsc::Sender<(u64, Change)>;

/// Every board, in memory. Changes are applied by a thread of their own
/// ([`apply_loop`]), off the writer's path; a read first waits until every
/// change sent before it began is applied, so it sees every write
/// acknowledged before it (the wait is the time to apply one batch).
#[derive(Default)]
pub struct Boards {
    state: RwLock<State>,
    sent: std::sync::atomic::AtomicU64,
    applied: std::sync::Mutex<u64>,
    caught_up: std::sync::Condvar,
}

/// What a read of a board found: rows from memory, or that the window is
/// not held (older than the newest two) and must come from the log.
pub enum Held<T> {
    /// Answered from memory.
    Yes(T),
    /// Not held.
    No,
}

impl Boards {
    /// Builds every board from the database: `derived` reads the `users`
    /// table, `log` the events and who is hidden.
    pub fn load(log: &Connection, derived: &Connection) -> Result<Boards, StoreError> {
        let started = std::time::Instant::now();
        tracing::info!("loading the leaderboards");
        let mut state = State::default();
        {
            let mut stmt = log
                .prepare("SELECT user_id FROM hidden_users")
                .map_err(backend)?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            for user in rows {
                let member = state.intern(&user.map_err(backend)?);
                state.hidden.insert(member);
            }
        }
        let mut stmt = derived
            .prepare("SELECT user_id, lifetime_milli, category_totals FROM users")
            .map_err(backend)?;
        let mut rows = stmt.query([]).map_err(backend)?;
        let mut users = 0u64;
        while let Some(row) = rows.next().map_err(backend)? {
            let user: String = row.get(0).map_err(backend)?;
            let lifetime: i64 = row.get(1).map_err(backend)?;
            let categories = decode_categories(&row.get::<_, String>(2).map_err(backend)?)?;
            state.set_all_time(&user, lifetime, &categories);
            users += 1;
            if users.is_multiple_of(1_000_000) {
                tracing::info!(users, "loading the all-time leaderboards");
            }
        }
        drop(rows);
        let events = load_windows(log, &mut state)?;
        tracing::info!(
            users,
            events,
            millis = started.elapsed().as_millis() as u64,
            "leaderboards loaded"
        );
        Ok(Boards {
            state: RwLock::new(state),
            ..Boards::default()
        })
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every change sent so far is applied, then reads.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.catch_up();
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// How many changes the boards have applied, once they hold every
    /// change sent before the call. Every commit, hiding and erasure is a
    /// change, so while this number stays the same a board page (balances
    /// and levels included: the writer updates the user cache before it
    /// sends a commit here) reads the same. See [`crate::Store::board_stamp`].
    pub fn stamp(&self) -> u64 {
        self.catch_up()
    }

    /// Waits (at most five seconds) until every change sent so far is
    /// applied; returns how many are.
    fn catch_up(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let target = self.sent.load(Ordering::SeqCst);
        let mut applied = self.applied.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while *applied < target {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                tracing::error!(
                    applied = *applied,
                    target,
                    "the leaderboards fell behind; answering from what they hold"
                );
                break;
            }
            applied = self
                .caught_up
                .wait_timeout(applied, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *applied
    }

    /// Sends a change to the applying thread (the writer calls this, in
    /// commit order).
    pub fn send(&self, changes: &Changes, change: Change) {
        use std::sync::atomic::Ordering;
        let seq = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        if changes.send((seq, change)).is_err() {
            tracing::error!("the leaderboard thread has stopped");
        }
    }

    fn apply(&self, change: Change) {
        match change {
            Change::Commit(users, events) => self.update(&users, &events),
            Change::Remove(user) => self.remove(&user),
            Change::Hidden(user, hidden) => self.set_hidden(&user, hidden),
        }
    }

    /// After a commit: a user's all-time points, and the events it logged.
    fn update(
        &self,
        users: &[(String, Points, Vec<crate::CategoryTotal>)],
        events: &[EventPoints],
    ) {
        let mut state = self.write();
        for (user, lifetime, categories) in users {
            state.set_all_time(user, lifetime.milli(), categories);
        }
        for e in events {
            state.add_event(e);
        }
    }

    /// Takes an erased user off every board.
    fn remove(&self, user: &str) {
        let mut state = self.write();
        let Some(member) = state.names.number(user) else {
            return;
        };
        let hidden = state.hidden.remove(&member);
        let names = std::mem::take(&mut state.names);
        for board in state.every_board() {
            board.drop_member(member, hidden, &names);
        }
        state.names = names;
    }

    /// Hides a user from every board, or shows them again.
    fn set_hidden(&self, user: &str, hidden: bool) {
        let mut state = self.write();
        let member = state.intern(user);
        let changed = if hidden {
            state.hidden.insert(member)
        } else {
            state.hidden.remove(&member)
        };
        if !changed {
            return;
        }
        let names = std::mem::take(&mut state.names);
        for board in state.every_board() {
            board.show(member, !hidden, &names);
        }
        state.names = names;
    }

    /// Whether the window is held, and if not, whether it is newer than
    /// any held (so empty).
    fn held(state: &State, key: BoardKey, window: Window) -> Held<Option<&Board>> {
        if key.period == Period::AllTime {
            return Held::Yes(state.all_time.get(&key.category));
        }
        let kept = state.windows.get(&key.period);
        let newest = kept.and_then(|k| k.last()).map(|(w, _)| *w);
        if let Some((_, boards)) = kept.and_then(|k| k.iter().find(|(w, _)| *w == window)) {
            return Held::Yes(boards.boards.get(&key.category));
        }
        if newest.is_none_or(|n| window > n) {
            return Held::Yes(None);
        }
        Held::No
    }

    /// A page of a board, if its window is held.
    pub fn rows(
        &self,
        key: BoardKey,
        window: Window,
        after: Option<&Cursor>,
        limit: usize,
    ) -> Held<Vec<BoardRow>> {
        let state = self.read();
        match Self::held(&state, key, window) {
            Held::Yes(None) => Held::Yes(Vec::new()),
            Held::Yes(Some(board)) => Held::Yes(board.rows(after, limit, &state.names)),
            Held::No => Held::No,
        }
    }

    /// A user's standing on a board, if its window is held.
    pub fn standing(&self, key: BoardKey, window: Window, user: &str, k: usize) -> Held<Standing> {
        let state = self.read();
        let member = state.names.number(user);
        let hidden = member.is_some_and(|m| state.hidden.contains(&m));
        match Self::held(&state, key, window) {
            Held::Yes(None) => Held::Yes(Board::default().standing(None, hidden, k, &state.names)),
            Held::Yes(Some(board)) => Held::Yes(board.standing(member, hidden, k, &state.names)),
            Held::No => Held::No,
        }
    }

    /// Whether a user is hidden.
    pub fn is_hidden(&self, user: &str) -> bool {
        let state = self.read();
        state
            .names
            .number(user)
            .is_some_and(|m| state.hidden.contains(&m))
    }

    /// Compares the all-time boards with the `users` table that `conn`
    /// reads: every user on them at their points, and no one else. Called
    /// by the writer, so nothing changes the boards meanwhile.
    pub fn compare(&self, conn: &Connection) -> Result<Vec<crate::Finding>, StoreError> {
        let state = self.read();
        let mut findings = Vec::new();
        let limit = crate::verify::MAX_FINDINGS as usize;
        let empty = Board::default();
        let overall = state.all_time.get(&None).unwrap_or(&empty);
        let mut stmt = conn
            .prepare("SELECT user_id, lifetime_milli, category_totals FROM users")
            .map_err(backend)?;
        let mut rows = stmt.query([]).map_err(backend)?;
        let mut users = 0usize;
        while let Some(row) = rows.next().map_err(backend)? {
            let user: String = row.get(0).map_err(backend)?;
            let lifetime: i64 = row.get(1).map_err(backend)?;
            let categories = decode_categories(&row.get::<_, String>(2).map_err(backend)?)?;
            users += 1;
            let member = state.names.number(&user);
            let hidden = member.is_some_and(|m| state.hidden.contains(&m));
            let mut expect = vec![(None, lifetime)];
            expect.extend(
                categories
                    .iter()
                    .filter(|c| c.points > Points::ZERO)
                    .map(|c| (Some(c.category), c.points.milli())),
            );
            for (category, points) in expect {
                let board = state.all_time.get(&category).unwrap_or(&empty);
                let held = member.and_then(|m| board.scores.get(&m));
                let ranked = member.is_some_and(|m| {
                    board
                        .index
                        .position(&state.names.entry(m, points))
                        .is_some()
                });
                if (held != Some(points) || ranked == hidden) && findings.len() < limit {
                    findings.push(crate::Finding {
                        subject: format!("user {user}"),
                        message: format!(
                            "the all-time {} leaderboard holds {}, the database {points}/1000{}",
                            category.map_or("overall", |c| c.as_str()),
                            held.map_or("nothing".into(), |h| format!("{h}/1000")),
                            if hidden { " (hidden)" } else { "" }
                        ),
                    });
                }
            }
        }
        if overall.scores.len() != users {
            findings.push(crate::Finding {
                subject: "leaderboard".into(),
                message: format!(
                    "the all-time board holds {} users, the database has {users}",
                    overall.scores.len()
                ),
            });
        }
        Ok(findings)
    }
}

/// Applies the changes the writer sends, in order, until it stops: a batch
/// of waiting changes under one write lock, then wakes the readers waiting.
pub fn apply_loop(
    boards: std::sync::Arc<Boards>,
    changes: std::sync::mpsc::Receiver<(u64, Change)>,
) {
    while let Ok((mut seq, change)) = changes.recv() {
        boards.apply(change);
        while let Ok((next, change)) = changes.try_recv() {
            boards.apply(change);
            seq = next;
        }
        *boards.applied.lock().unwrap_or_else(|e| e.into_inner()) = seq;
        boards.caught_up.notify_all();
    }
    tracing::debug!("leaderboard thread stopped");
}

/// Adds the log's newest events to the windows (those recorded since the
/// start of the month before the newest event's), newest first. Returns how
/// many it read.
fn load_windows(log: &Connection, state: &mut State) -> Result<u64, StoreError> {
    // The newest event by arrival (the log has no index on `created_at`;
    // an event stamped a little later that arrived earlier opens its window
    // when the scan below meets it, as it would have live).
    let newest: Option<i64> = log
        .query_row(
            "SELECT created_at FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(backend)?;
    let Some(newest) = newest else {
        return Ok(0);
    };
    let month = Window::containing(Period::Month, newest);
    // Windows begin in order: create the older one first.
    for period in [Period::Day, Period::Week, Period::Month] {
        let current = Window::containing(period, newest);
        let kept = state.windows.entry(period).or_default();
        kept.push((current.previous(), WindowBoards::default()));
        kept.push((current, WindowBoards::default()));
    }
    // Arrival order and `created_at` agree up to the writer's queue (events
    // are stamped on receipt): a day's margin covers any disorder.
    let from = month.previous().start_ms();
    let mut stmt = log
        .prepare(&format!(
            "SELECT {EVENT_POINTS} FROM events ORDER BY seq DESC"
        ))
        .map_err(backend)?;
    let mut rows = stmt.query([]).map_err(backend)?;
    let mut read = 0u64;
    while let Some(row) = rows.next().map_err(backend)? {
        let created_at: i64 = row.get(1).map_err(backend)?;
        if created_at < from - 86_400_000 {
            break;
        }
        read += 1;
        if created_at < from {
            continue;
        }
        state.add_event(&event_points(row)?);
        if read.is_multiple_of(1_000_000) {
            tracing::info!(events = read, "loading the leaderboard windows");
        }
    }
    Ok(read)
}

/// The `events` columns [`event_points`] reads, in its order.
const EVENT_POINTS: &str = "user_id, created_at, category, points_milli, unlocked";

/// What an event row (read as [`EVENT_POINTS`]) adds to the boards.
fn event_points(row: &rusqlite::Row<'_>) -> Result<EventPoints, StoreError> {
    let category: String = row.get(2).map_err(backend)?;
    let unlocked = decode_unlocked(&row.get::<_, String>(4).map_err(backend)?)?;
    Ok(EventPoints {
        user_id: row.get(0).map_err(backend)?,
        created_at_ms: row.get(1).map_err(backend)?,
        category: Category::named(&category)
            .ok_or_else(|| crate::corrupt("category", &category))?,
        points: Points::from_milli(row.get(3).map_err(backend)?),
        bonuses: Points::from_milli(unlocked.iter().map(|(_, b)| b.milli()).sum()),
    })
}

/// A window older than the held ones, summed from the log: every event
/// recorded in it (a scan of the events), without hidden users.
pub fn window_from_log(
    conn: &Connection,
    key: BoardKey,
    window: Window,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {EVENT_POINTS} FROM events e
             WHERE e.created_at >= ?1 AND e.created_at < ?2
               AND NOT EXISTS (SELECT 1 FROM hidden_users h WHERE h.user_id = e.user_id)"
        ))
        .map_err(backend)?;
    let mut rows = stmt
        .query(params![window.start_ms(), window.end_ms()])
        .map_err(backend)?;
    let mut sums: HashMap<String, i64> = HashMap::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let e = event_points(row)?;
        if let Some(points) = e.points_on(key.category) {
            *sums.entry(e.user_id).or_default() += points.milli();
        }
    }
    let mut board: Vec<(String, i64)> = sums.into_iter().filter(|(_, p)| *p > 0).collect();
    board.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(board)
}
