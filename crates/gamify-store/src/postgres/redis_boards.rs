//! The leaderboards in Redis, for many nodes on one PostgreSQL database
//! (`REDIS_URL`). PostgreSQL stays the truth; Redis holds a sorted set per
//! board that any node can rank from in microseconds.
//!
//! **What is in Redis.** One sorted set per all-time board, and per board of
//! the current and the previous day, ISO week and month (older windows are
//! read from SQL, as without Redis); the set of hidden users; and a marker
//! saying the boards were built. A member's score is its points in
//! thousandths, negated: Redis orders equal scores by member bytes,
//! ascending, so `ZRANGE`/`ZRANK` give the documented order (points
//! highest first, ties by user id ascending) without a tie-break encoding.
//!
//! **Writes.** After each commit the writer hands every changed user's
//! *absolute* points on the boards the commit touched to a task of their
//! own (the commit knows them: lifetime and category totals are on the
//! user's row, and so are the points in the user's latest windows,
//! `users.board_windows`), which writes everything waiting with one script
//! call: `ZADD … LT` (a score only ever moves up the board), unless the
//! user is hidden. So a write may be repeated or overtaken by a newer one
//! from another node and the board stays right. A read on this node first
//! waits for the writes of commits it acknowledged before.
//!
//! **Failures.** If Redis cannot be written, the event still stands: the
//! writer marks the boards dirty in PostgreSQL (`board_sync`, durable and
//! shared) and board reads answer 503. Every node checks Redis and the
//! marker once a second; the first that finds Redis reachable and the
//! boards dirty (or Redis emptied, the marker gone) rebuilds them from the
//! database under an advisory lock, while the others keep answering 503,
//! and then clears the marker. No manual step; `gamify leaderboard rebuild`
//! does the same on demand.
//!
//! **Rebuild.** Each board is filled from SQL into a fresh key and renamed
//! over the live one. Writes that landed on the old key meanwhile are not
//! lost: the users changed since the rebuild began are then written again
//! from the database, absolute values as always.

use std::fmt;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Pipeline, RedisError};
use futures_util::TryStreamExt;
use gamify_core::{Period, Points, Window};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Row};
use tokio::sync::{mpsc, watch};

use super::boards::{source, visible};
use super::write::BoardChanges;
use crate::StoreError;
use crate::board::{BoardKey, BoardRow, Cursor, Standing, UserBoards};
use crate::verify::Finding;

/// How to reach Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `redis://[:password@]host:port[/db]` (`rediss://` for TLS is not
    /// built in). May hold a password: [`fmt::Debug`] redacts it.
    pub url: String,
    /// Put before every key, so that several deployments (or tests) can
    /// share one Redis.
    pub prefix: String,
    /// How long one Redis call may take before it counts as a failure.
    pub timeout: Duration,
}

impl RedisSettings {
    /// Settings with the default prefix (`gamify:`) and timeout (1 s).
    pub fn new(url: impl Into<String>) -> RedisSettings {
        RedisSettings {
            url: url.into(),
            prefix: "gamify:".into(),
            timeout: Duration::from_secs(1),
        }
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        super::redact_url(&self.url)
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.redacted_url())
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sets users' absolute points on boards, skipping hidden users. KEYS[1]:
/// the hidden set; KEYS[2..]: the boards. ARGV, per user: the user, how
/// many boards, then per board its index in KEYS and the score. One call
/// per batch: Redis's cost per call is paid once, not per user. (Window
/// keys get their expiry from the sync loop.)
const WRITE_SCRIPT: &str = r"
local i = 1
while i <= #ARGV do
  local user, n = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  if redis.call('SISMEMBER', KEYS[1], user) == 0 then
    for j = 1, n do
      redis.call('ZADD', KEYS[tonumber(ARGV[i])], 'LT', ARGV[i + 1], user)
      i = i + 2
    end
  else
    i = i + 2 * n
  end
end
return 1
";

/// How far back, before a rebuild began, users are written again after it
/// (for nodes whose clocks run behind this one's).
const REBUILD_MARGIN_MS: i64 = 10_000;

/// The advisory lock class a rebuild holds, so one node does it; the object
/// is a hash of the key prefix (deployments sharing a database but not a
/// prefix rebuild independently).
const REBUILD_LOCK_CLASS: i32 = 0x7262;

/// How many members one `ZADD` of a rebuild carries.
const CHUNK: usize = 2_000;

const READY: u8 = 0;
const DOWN: u8 = 1;
const REBUILDING: u8 = 2;
const STARTING: u8 = 3;

/// The Redis side of the PostgreSQL store's leaderboards.
pub struct RedisBoards {
    conn: ConnectionManager,
    pool: PgPool,
    /// Whose categories have boards.
    book: Arc<crate::RuleBook>,
    /// Commits' changes, numbered, to the task that writes them. Numbered
    /// and sent under the lock, so that they arrive in their numbers' order.
    queue: std::sync::Mutex<mpsc::UnboundedSender<(u64, BoardChanges)>>,
    /// The number of the last changes queued.
    sent: AtomicU64,
    /// The number up to which every queued change is written (or, on a
    /// failure, the boards marked dirty).
    applied: watch::Receiver<u64>,
    prefix: String,
    timeout: Duration,
    script_sha: String,
    state: AtomicU8,
    /// The advisory lock a rebuild holds.
    lock: (i32, i32),
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn unavailable(state: u8) -> StoreError {
    StoreError::BoardsUnavailable(match state {
        REBUILDING => "the leaderboards are being rebuilt from the database; retry shortly",
        STARTING => "the leaderboards are starting; retry shortly",
        _ => "the leaderboards are unavailable: Redis cannot be reached; events are still recorded",
    })
}

/// The score of `points`: negated, so that ascending order is best first.
fn score(points: Points) -> i64 {
    -points.milli()
}

fn points_of(score: f64) -> Points {
    Points::from_milli(-(score.round() as i64))
}

impl RedisBoards {
    /// A client for `settings`; connects lazily (and again after every
    /// failure), so a Redis that is down at start-up delays nothing. Starts
    /// the task that writes commits' changes.
    pub fn new(
        settings: &RedisSettings,
        pool: PgPool,
        book: Arc<crate::RuleBook>,
    ) -> Result<Arc<RedisBoards>, StoreError> {
        let client = ::redis::Client::open(settings.url.as_str()).map_err(|e| {
            StoreError::Config(format!(
                "cannot read the Redis URL {}: {}",
                settings.redacted_url(),
                super::redact_text(&e.to_string(), &settings.url)
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            StoreError::Config(format!(
                "cannot set up Redis at {}: {}",
                settings.redacted_url(),
                super::redact_text(&e.to_string(), &settings.url)
            ))
        })?;
        let (queue, changes) = mpsc::unbounded_channel();
        let (done, applied) = watch::channel(0);
        let boards = Arc::new(RedisBoards {
            conn,
            pool,
            book,
            queue: std::sync::Mutex::new(queue),
            sent: AtomicU64::new(0),
            applied,
            prefix: settings.prefix.clone(),
            timeout: settings.timeout,
            script_sha: ::redis::Script::new(WRITE_SCRIPT).get_hash().to_owned(),
            state: AtomicU8::new(STARTING),
            lock: (REBUILD_LOCK_CLASS, fnv32(&settings.prefix)),
        });
        tokio::spawn(write_changes(Arc::downgrade(&boards), changes, done));
        Ok(boards)
    }

    fn board_key(&self, key: BoardKey, window: Window) -> String {
        let category = key.category.map_or("overall", |c| c.as_str());
        match key.period {
            Period::AllTime => format!("{}board:all:{category}", self.prefix),
            p => format!(
                "{}board:{}:{}:{category}",
                self.prefix,
                p.as_str(),
                window.label()
            ),
        }
    }

    fn hidden_key(&self) -> String {
        format!("{}hidden", self.prefix)
    }

    fn built_key(&self) -> String {
        format!("{}built", self.prefix)
    }

    /// When a window's key may go: a day after the window that follows it
    /// ends, so the previous window stays readable throughout the current.
    fn expires_at(window: Window) -> i64 {
        if window.period == Period::AllTime {
            0
        } else {
            window.next().end_ms() / 1000 + 86_400
        }
    }

    /// Whether Redis keeps `window`: all time, and each period's current and
    /// previous window at `now`.
    pub fn keeps(window: Window, now: i64) -> bool {
        if window.period == Period::AllTime {
            return true;
        }
        let current = Window::containing(window.period, now);
        window == current || window == current.previous()
    }

    /// Every board Redis keeps at `now`, with its window.
    fn kept_boards(&self, now: i64) -> Vec<(BoardKey, Window)> {
        let categories = self.book.categories();
        BoardKey::all(&categories)
            .flat_map(|key| {
                if key.period == Period::AllTime {
                    vec![(key, Window::ALL_TIME)]
                } else {
                    let current = Window::containing(key.period, now);
                    vec![(key, current), (key, current.previous())]
                }
            })
            .collect()
    }

    async fn run<T: ::redis::FromRedisValue>(&self, pipe: &Pipeline) -> Result<T, RedisError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, pipe.query_async(&mut conn)).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from((
                ::redis::ErrorKind::Io,
                "Redis did not answer in time",
            ))),
        }
    }

    /// Refuses when the boards cannot be read; otherwise waits until every
    /// change committed before the call is written, so that a read sees
    /// every write this node acknowledged.
    async fn ready(&self) -> Result<(), StoreError> {
        match self.state.load(Ordering::Acquire) {
            READY => {}
            state => return Err(unavailable(state)),
        }
        let target = self.sent.load(Ordering::Acquire);
        let mut applied = self.applied.clone();
        match tokio::time::timeout(self.timeout, applied.wait_for(|n| *n >= target)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(StoreError::BoardsUnavailable(
                "the leaderboards are behind the latest events; retry shortly",
            )),
        }
    }

    fn failed(&self, what: &str, e: &RedisError) -> StoreError {
        if self.state.swap(DOWN, Ordering::AcqRel) != DOWN {
            tracing::warn!(error = %e, what, "redis unreachable: leaderboard reads answer 503 until it is back and the boards are rebuilt");
        }
        unavailable(DOWN)
    }

    /// Queues what a commit changed, for the task that writes it to Redis
    /// (see the module docs); the writer goes on with its next batch.
    pub fn write(&self, changes: BoardChanges) {
        if changes.users.is_empty() {
            return;
        }
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.sent.fetch_add(1, Ordering::AcqRel) + 1;
        // Fails only once the task has stopped, with the store.
        let _ = queue.send((n, changes));
    }

    /// Writes the queued changes (all that waited, in one round trip) and
    /// recounts from the log the users their commits could not count. On
    /// any failure marks the boards dirty, so that they are rebuilt.
    async fn write_queued(&self, batch: Vec<BoardChanges>) {
        let now = now_ms();
        let at_ms = batch.iter().map(|c| c.at_ms).min().unwrap_or(now);
        let mut users: Vec<UserBoards> = Vec::new();
        let mut recount: Vec<String> = Vec::new();
        for changes in batch {
            users.extend(changes.users);
            recount.extend(changes.recount);
        }
        let written = if self.state.load(Ordering::Acquire) == DOWN {
            Err(None)
        } else {
            match self.write_users(&users, now).await {
                Ok(()) if recount.is_empty() => Ok(()),
                Ok(()) => match self.pool.acquire().await {
                    Ok(mut conn) => self.rewrite(&mut conn, &recount, now).await.map_err(Some),
                    Err(e) => Err(Some(sql_failed(e))),
                },
                Err(e) => Err(Some(e)),
            }
        };
        if let Err(e) = written {
            if let Some(e) = e {
                self.failed("write", &e);
            }
            match self.pool.acquire().await {
                Ok(mut conn) => mark_dirty(&mut conn, at_ms).await,
                Err(e) => {
                    tracing::error!(error = %e, "could not mark the leaderboards for a rebuild; run `gamify leaderboard rebuild` once the database is back")
                }
            }
        }
    }

    /// Writes users' points on the boards Redis keeps at `now` (a window
    /// it does not keep is read from SQL, and needs no key).
    async fn write_users(&self, users: &[UserBoards], now: i64) -> Result<(), RedisError> {
        let mut pipe = ::redis::pipe();
        for batch in users.chunks(512) {
            let mut keys: Vec<(BoardKey, Window)> = Vec::new();
            let mut args: Vec<String> = Vec::new();
            for user in batch {
                let kept: Vec<_> = user
                    .points
                    .iter()
                    .filter(|(_, window, _)| Self::keeps(*window, now))
                    .collect();
                if kept.is_empty() {
                    continue;
                }
                args.push(user.user_id.clone());
                args.push(kept.len().to_string());
                for (key, window, points) in kept {
                    let at = match keys.iter().position(|k| *k == (*key, *window)) {
                        Some(at) => at,
                        None => {
                            keys.push((*key, *window));
                            keys.len() - 1
                        }
                    };
                    // KEYS[1] is the hidden set; Lua counts from 1.
                    args.push((at + 2).to_string());
                    args.push(score(*points).to_string());
                }
            }
            if args.is_empty() {
                continue;
            }
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(&self.script_sha)
                .arg(keys.len() + 1)
                .arg(self.hidden_key());
            for (key, window) in &keys {
                cmd.arg(self.board_key(*key, *window));
            }
            cmd.arg(args).ignore();
        }
        if pipe.is_empty() {
            return Ok(());
        }
        match self.run::<()>(&pipe).await {
            Err(e)
                if e.kind() == ::redis::ErrorKind::Server(::redis::ServerErrorKind::NoScript) =>
            {
                self.load_script().await?;
                self.run::<()>(&pipe).await
            }
            other => other,
        }
    }

    async fn load_script(&self) -> Result<(), RedisError> {
        let mut pipe = ::redis::pipe();
        pipe.cmd("SCRIPT").arg("LOAD").arg(WRITE_SCRIPT).ignore();
        self.run::<()>(&pipe).await
    }

    /// A page of a board, after `after`'s place.
    pub async fn page(
        &self,
        key: BoardKey,
        window: Window,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Vec<BoardRow>, StoreError> {
        self.ready().await?;
        let name = self.board_key(key, window);
        let start = match after {
            None => 0,
            Some(cursor) => self
                .position_after(&name, cursor)
                .await
                .map_err(|e| self.failed("read", &e))?,
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut pipe = ::redis::pipe();
        pipe.cmd("ZRANGE")
            .arg(&name)
            .arg(start)
            .arg(start + u64::from(limit) - 1)
            .arg("WITHSCORES");
        let (rows,): (Vec<(String, f64)>,) =
            self.run(&pipe).await.map_err(|e| self.failed("read", &e))?;
        Ok(rows
            .into_iter()
            .enumerate()
            .map(|(i, (user_id, s))| BoardRow {
                rank: start + i as u64 + 1,
                user_id,
                points: points_of(s),
            })
            .collect())
    }

    /// How many members come at or before the cursor's place.
    async fn position_after(&self, name: &str, cursor: &Cursor) -> Result<u64, RedisError> {
        let s = score(cursor.points);
        let mut pipe = ::redis::pipe();
        pipe.cmd("ZSCORE").arg(name).arg(&cursor.user_id);
        pipe.cmd("ZRANK").arg(name).arg(&cursor.user_id);
        let (current, rank): (Option<f64>, Option<u64>) = self.run(&pipe).await?;
        if let (Some(current), Some(rank)) = (current, rank)
            && current.round() as i64 == s
        {
            return Ok(rank + 1);
        }
        // The cursor's user moved (or left): count the members with more
        // points, and those with as many and an id not after the cursor's.
        let mut pipe = ::redis::pipe();
        pipe.cmd("ZCOUNT")
            .arg(name)
            .arg("-inf")
            .arg(format!("({s}"));
        pipe.cmd("ZRANGE").arg(name).arg(s).arg(s).arg("BYSCORE");
        let (better, ties): (u64, Vec<String>) = self.run(&pipe).await?;
        let tied_before = ties
            .iter()
            .filter(|u| u.as_str() <= cursor.user_id.as_str())
            .count();
        Ok(better + tied_before as u64)
    }

    /// A user's standing; `own` gives a hidden user's points (Redis does not
    /// keep them).
    pub async fn standing(
        &self,
        key: BoardKey,
        window: Window,
        user: &str,
        k: u32,
    ) -> Result<(Standing, bool), StoreError> {
        self.ready().await?;
        let name = self.board_key(key, window);
        let mut pipe = ::redis::pipe();
        pipe.cmd("SISMEMBER").arg(self.hidden_key()).arg(user);
        pipe.cmd("ZRANK").arg(&name).arg(user);
        pipe.cmd("ZCARD").arg(&name);
        let (hidden, rank, ranked): (bool, Option<u64>, u64) =
            self.run(&pipe).await.map_err(|e| self.failed("read", &e))?;
        let mut standing = Standing {
            rank: None,
            points: Points::ZERO,
            hidden,
            above: Vec::new(),
            below: Vec::new(),
            ranked,
        };
        let Some(rank) = rank else {
            return Ok((standing, hidden));
        };
        let from = rank.saturating_sub(u64::from(k));
        let mut pipe = ::redis::pipe();
        pipe.cmd("ZRANGE")
            .arg(&name)
            .arg(from)
            .arg(rank + u64::from(k))
            .arg("WITHSCORES");
        let (rows,): (Vec<(String, f64)>,) =
            self.run(&pipe).await.map_err(|e| self.failed("read", &e))?;
        for (i, (user_id, s)) in rows.into_iter().enumerate() {
            let row = BoardRow {
                rank: from + i as u64 + 1,
                user_id,
                points: points_of(s),
            };
            match row.rank.cmp(&(rank + 1)) {
                std::cmp::Ordering::Less => standing.above.push(row),
                std::cmp::Ordering::Equal => {
                    standing.rank = Some(row.rank);
                    standing.points = row.points;
                }
                std::cmp::Ordering::Greater => standing.below.push(row),
            }
        }
        Ok((standing, false))
    }

    /// After a user was hidden: off every board, and on the hidden set so
    /// that a late write cannot put them back. After they were shown again:
    /// off the set, and written back from the database.
    pub async fn set_hidden(&self, pool: &PgPool, user: &str, hidden: bool) {
        let result = if hidden {
            let mut pipe = ::redis::pipe();
            pipe.cmd("SADD").arg(self.hidden_key()).arg(user).ignore();
            self.remove_from_boards(&mut pipe, user);
            self.run::<()>(&pipe).await
        } else {
            let mut pipe = ::redis::pipe();
            pipe.cmd("SREM").arg(self.hidden_key()).arg(user).ignore();
            match (self.run::<()>(&pipe).await, pool.acquire().await) {
                (Ok(()), Ok(mut conn)) => {
                    self.rewrite(&mut conn, &[user.to_owned()], now_ms()).await
                }
                (Err(e), _) => Err(e),
                (_, Err(e)) => Err(sql_failed(e)),
            }
        };
        self.after_change(pool, result).await;
    }

    /// After a user was erased: off every board and the hidden set.
    pub async fn erased(&self, pool: &PgPool, user: &str) {
        let mut pipe = ::redis::pipe();
        pipe.cmd("SREM").arg(self.hidden_key()).arg(user).ignore();
        self.remove_from_boards(&mut pipe, user);
        let result = self.run::<()>(&pipe).await;
        self.after_change(pool, result).await;
    }

    async fn after_change(&self, pool: &PgPool, result: Result<(), RedisError>) {
        if let Err(e) = result {
            self.failed("write", &e);
            if let Ok(mut conn) = pool.acquire().await {
                mark_dirty(&mut conn, now_ms()).await;
            }
        }
    }

    fn remove_from_boards(&self, pipe: &mut Pipeline, user: &str) {
        for (key, window) in self.kept_boards(now_ms()) {
            pipe.cmd("ZREM")
                .arg(self.board_key(key, window))
                .arg(user)
                .ignore();
        }
    }

    /// Writes `users`' absolute points on every kept board, from the
    /// database.
    async fn rewrite(
        &self,
        conn: &mut PgConnection,
        users: &[String],
        now: i64,
    ) -> Result<(), RedisError> {
        // A few users: each board's rows for them. Many: each board whole,
        // once (a window board's rows for a few users still scan the
        // window), keeping theirs.
        let many = users.len() > 1_000;
        let wanted: std::collections::HashSet<&str> = users.iter().map(String::as_str).collect();
        let mut per_user: std::collections::HashMap<String, UserBoards> = Default::default();
        for (key, window) in self.kept_boards(now) {
            let rows = if many {
                sqlx::query(&source(key, window))
                    .fetch_all(&mut *conn)
                    .await
            } else {
                sqlx::query(&format!(
                    "SELECT user_id, pts FROM ({}) b WHERE user_id = ANY($1::text[])",
                    source(key, window)
                ))
                .bind(users)
                .fetch_all(&mut *conn)
                .await
            }
            .map_err(sql_failed)?;
            for row in rows {
                let user: String = row.try_get(0).map_err(sql_failed)?;
                if many && !wanted.contains(user.as_str()) {
                    continue;
                }
                let points = Points::from_milli(row.try_get(1).map_err(sql_failed)?);
                per_user
                    .entry(user.clone())
                    .or_insert_with(|| UserBoards {
                        user_id: user,
                        points: Vec::new(),
                    })
                    .points
                    .push((key, window, points));
            }
        }
        let all: Vec<UserBoards> = per_user.into_values().collect();
        for chunk in all.chunks(256) {
            self.write_users(chunk, now).await?;
        }
        Ok(())
    }

    /// Rebuilds every kept board from the database (see the module docs),
    /// logging progress. Returns how many board entries were written.
    pub async fn rebuild(&self, pool: &PgPool) -> Result<u64, StoreError> {
        let began = now_ms();
        let fail = |e: RedisError| self.failed("rebuild", &e);
        self.load_script().await.map_err(fail)?;
        let mut written = 0u64;
        let boards = self.kept_boards(began);
        let mut renames = Vec::with_capacity(boards.len() + 1);
        // Streaming a board of millions into Redis outlasts the statement
        // timeout meant for requests: this connection has none.
        let mut conn = unlimited(pool).await?;
        for (i, (key, window)) in boards.iter().enumerate() {
            let live = self.board_key(*key, *window);
            let fresh = format!("{}rebuild:{live}", self.prefix);
            let mut pipe = ::redis::pipe();
            pipe.cmd("DEL").arg(&fresh).ignore();
            self.run::<()>(&pipe).await.map_err(fail)?;
            let sql = visible(*key, *window);
            let mut rows = sqlx::query(&sql).fetch(&mut *conn);
            let mut chunk: Vec<(i64, String)> = Vec::with_capacity(CHUNK);
            let mut count = 0u64;
            loop {
                let row = rows.try_next().await.map_err(super::classify)?;
                if let Some(row) = &row {
                    let user: String = row.try_get(0).map_err(super::backend)?;
                    let pts: i64 = row.try_get(1).map_err(super::backend)?;
                    chunk.push((-pts, user));
                }
                if chunk.len() >= CHUNK || (row.is_none() && !chunk.is_empty()) {
                    let mut pipe = ::redis::pipe();
                    pipe.cmd("ZADD").arg(&fresh).arg(&chunk).ignore();
                    self.run::<()>(&pipe).await.map_err(fail)?;
                    count += chunk.len() as u64;
                    chunk.clear();
                    if count % 100_000 < CHUNK as u64 {
                        tracing::info!(board = %live, entries = count, "rebuilding leaderboard");
                    }
                }
                if row.is_none() {
                    break;
                }
            }
            if count > 0 && window.period != Period::AllTime {
                let mut pipe = ::redis::pipe();
                pipe.cmd("EXPIREAT")
                    .arg(&fresh)
                    .arg(Self::expires_at(*window))
                    .ignore();
                self.run::<()>(&pipe).await.map_err(fail)?;
            }
            if count > 0 {
                tracing::info!(board = %live, entries = count, done = i + 1, of = boards.len(), "leaderboard rebuilt");
            }
            written += count;
            renames.push((fresh, live, count > 0));
        }
        let hidden: Vec<String> = sqlx::query_scalar("SELECT user_id FROM hidden_users")
            .fetch_all(&mut *conn)
            .await
            .map_err(super::classify)?;
        let fresh_hidden = format!("{}rebuild:{}", self.prefix, self.hidden_key());
        let mut pipe = ::redis::pipe();
        pipe.cmd("DEL").arg(&fresh_hidden).ignore();
        for chunk in hidden.chunks(CHUNK) {
            pipe.cmd("SADD").arg(&fresh_hidden).arg(chunk).ignore();
        }
        renames.push((fresh_hidden, self.hidden_key(), !hidden.is_empty()));
        // Swap every fresh key in, in one transaction.
        pipe.atomic();
        for (fresh, live, filled) in &renames {
            if *filled {
                pipe.cmd("RENAME").arg(fresh).arg(live).ignore();
            } else {
                pipe.cmd("DEL").arg(live).ignore();
            }
        }
        self.run::<()>(&pipe).await.map_err(fail)?;
        // What other nodes wrote to the old keys meanwhile, written again.
        let changed: Vec<String> =
            sqlx::query_scalar("SELECT user_id FROM users WHERE updated_at >= $1 AND version > 0")
                .bind(began - REBUILD_MARGIN_MS)
                .fetch_all(&mut *conn)
                .await
                .map_err(super::classify)?;
        self.rewrite(&mut conn, &changed, began)
            .await
            .map_err(fail)?;
        let mut pipe = ::redis::pipe();
        pipe.cmd("SET").arg(self.built_key()).arg(began).ignore();
        self.run::<()>(&pipe).await.map_err(fail)?;
        tracing::info!(
            entries = written,
            rewritten = changed.len(),
            seconds = (now_ms() - began) as f64 / 1000.0,
            "leaderboards rebuilt in redis"
        );
        Ok(written)
    }

    /// Rebuilds under the advisory lock, waiting for it (`gamify
    /// leaderboard rebuild`), and clears the dirty marker it saw.
    pub async fn rebuild_now(&self, pool: &PgPool) -> Result<u64, StoreError> {
        let mut lock = pool.acquire().await.map_err(super::classify)?;
        sqlx::query("SELECT pg_advisory_lock($1, $2)")
            .bind(self.lock.0)
            .bind(self.lock.1)
            .execute(&mut *lock)
            .await
            .map_err(super::classify)?;
        self.rebuild_and_clear(pool, &mut lock).await
    }

    /// Rebuilds, clears the dirty marker it saw, and releases the advisory
    /// lock held on `lock`, whatever happened.
    async fn rebuild_and_clear(
        &self,
        pool: &PgPool,
        lock: &mut PgConnection,
    ) -> Result<u64, StoreError> {
        let result = self.rebuild_and_clear_locked(pool, lock).await;
        let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
            .bind(self.lock.0)
            .bind(self.lock.1)
            .execute(&mut *lock)
            .await;
        result
    }

    async fn rebuild_and_clear_locked(
        &self,
        pool: &PgPool,
        lock: &mut PgConnection,
    ) -> Result<u64, StoreError> {
        let generation: i64 = sqlx::query_scalar("SELECT generation FROM board_sync")
            .fetch_one(&mut *lock)
            .await
            .map_err(super::classify)?;
        let written = self.rebuild(pool).await?;
        // Cleared only if no write failed meanwhile: a failure bumps the
        // generation, and the next check rebuilds again.
        sqlx::query("UPDATE board_sync SET dirty_since = NULL WHERE generation = $1")
            .bind(generation)
            .execute(&mut *lock)
            .await
            .map_err(super::classify)?;
        Ok(written)
    }

    /// Checks Redis and the dirty marker, rebuilding if needed, once a
    /// second until the store is dropped. Run by every serving node.
    pub async fn keep_in_sync(self: Arc<Self>, pool: PgPool) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if Arc::strong_count(&self) == 1 {
                return;
            }
            let state = self.check(&pool).await;
            let before = self.state.swap(state, Ordering::AcqRel);
            if before != state && state == READY {
                tracing::info!("leaderboards in redis are ready");
            }
            if state == READY {
                self.set_expiries().await;
            }
        }
    }

    /// Gives each kept window's key its expiry if it has none (keys that
    /// writes created since the last tick).
    async fn set_expiries(&self) {
        let mut pipe = ::redis::pipe();
        for (key, window) in self.kept_boards(now_ms()) {
            if window.period != Period::AllTime {
                pipe.cmd("EXPIREAT")
                    .arg(self.board_key(key, window))
                    .arg(Self::expires_at(window))
                    .arg("NX")
                    .ignore();
            }
        }
        if let Err(e) = self.run::<()>(&pipe).await {
            self.failed("expire", &e);
        }
    }

    /// Whether board reads are answered now.
    pub fn available(&self) -> bool {
        self.state.load(Ordering::Acquire) == READY
    }

    /// Whether the boards are still being built (or not yet checked).
    pub fn building(&self) -> bool {
        matches!(self.state.load(Ordering::Acquire), STARTING | REBUILDING)
    }

    async fn check(&self, pool: &PgPool) -> u8 {
        let mut pipe = ::redis::pipe();
        pipe.cmd("EXISTS").arg(self.built_key());
        let built = match self.run::<(bool,)>(&pipe).await {
            Ok((built,)) => built,
            Err(e) => {
                self.failed("check", &e);
                return DOWN;
            }
        };
        let dirty: Option<i64> = match sqlx::query_scalar("SELECT dirty_since FROM board_sync")
            .fetch_one(pool)
            .await
        {
            Ok(d) => d,
            // The database is down: events fail anyway; boards keep serving.
            Err(_) => return self.state.load(Ordering::Acquire),
        };
        if built && dirty.is_none() {
            return READY;
        }
        let Ok(mut lock) = pool.acquire().await else {
            return REBUILDING;
        };
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(self.lock.0)
            .bind(self.lock.1)
            .fetch_one(&mut *lock)
            .await
            .unwrap_or(false);
        if !got {
            // Another node is rebuilding.
            return REBUILDING;
        }
        self.state.store(REBUILDING, Ordering::Release);
        tracing::info!(
            redis_emptied = !built,
            dirty_since = dirty,
            "rebuilding the leaderboards in redis"
        );
        let result = self.rebuild_and_clear(pool, &mut lock).await;
        match result {
            Ok(_) => {
                match sqlx::query_scalar::<_, Option<i64>>("SELECT dirty_since FROM board_sync")
                    .fetch_one(pool)
                    .await
                {
                    Ok(None) => READY,
                    _ => REBUILDING,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "leaderboard rebuild failed; retrying");
                DOWN
            }
        }
    }

    /// Whether each kept board in Redis equals the database's, member by
    /// member, and the hidden set equals `hidden_users`. Exact on a quiet
    /// database; under load, a write in flight may show as a difference that
    /// a second run no longer finds.
    pub async fn verify(&self, pool: &PgPool) -> Result<Vec<Finding>, StoreError> {
        let mut findings = Vec::new();
        let finding = |subject: String, message: String| Finding { subject, message };
        let mut pipe = ::redis::pipe();
        pipe.cmd("EXISTS").arg(self.built_key());
        pipe.cmd("SMEMBERS").arg(self.hidden_key());
        let (built, mut hidden): (bool, Vec<String>) = match self.run(&pipe).await {
            Ok(answer) => answer,
            Err(e) => {
                return Ok(vec![finding(
                    "redis".into(),
                    format!("cannot be reached to compare the leaderboards: {e}"),
                )]);
            }
        };
        if !built {
            return Ok(vec![finding(
                "redis".into(),
                "the leaderboards have not been built (run `gamify leaderboard rebuild`, or start a node)".into(),
            )]);
        }
        let mut conn = unlimited(pool).await?;
        let mut stored: Vec<String> =
            sqlx::query_scalar("SELECT user_id FROM hidden_users ORDER BY user_id")
                .fetch_all(&mut *conn)
                .await
                .map_err(super::classify)?;
        hidden.sort();
        stored.sort();
        if hidden != stored {
            findings.push(finding(
                "redis hidden users".into(),
                format!(
                    "Redis hides {} users, the database {}",
                    hidden.len(),
                    stored.len()
                ),
            ));
        }
        for (key, window) in self.kept_boards(now_ms()) {
            let name = self.board_key(key, window);
            let sql = format!("{} ORDER BY pts DESC, user_id", visible(key, window));
            let mut rows = sqlx::query(&sql).fetch(&mut *conn);
            let mut at = 0u64;
            let mut cached: std::collections::VecDeque<(String, f64)> = Default::default();
            let mut difference = None;
            while difference.is_none() {
                let row = rows.try_next().await.map_err(super::classify)?;
                if cached.is_empty() {
                    let mut pipe = ::redis::pipe();
                    pipe.cmd("ZRANGE")
                        .arg(&name)
                        .arg(at)
                        .arg(at + CHUNK as u64 - 1)
                        .arg("WITHSCORES");
                    let (page,): (Vec<(String, f64)>,) = self.run(&pipe).await.map_err(|e| {
                        StoreError::BoardsUnavailable(if e.is_timeout() {
                            "Redis did not answer in time"
                        } else {
                            "Redis cannot be reached"
                        })
                    })?;
                    cached.extend(page);
                }
                let expected = match &row {
                    Some(row) => Some((
                        row.try_get::<String, _>(0).map_err(super::backend)?,
                        // As Redis holds it: a double (exact to 2^53).
                        points_of(score(Points::from_milli(
                            row.try_get::<i64, _>(1).map_err(super::backend)?,
                        )) as f64)
                        .milli(),
                    )),
                    None => None,
                };
                let found = cached.pop_front().map(|(u, s)| (u, points_of(s).milli()));
                at += 1;
                match (expected, found) {
                    (None, None) => break,
                    (e, f) if e == f => {}
                    (e, f) => difference = Some((e, f)),
                }
            }
            if let Some((expected, found)) = difference {
                let show = |x: Option<(String, i64)>| {
                    x.map_or("nothing".to_owned(), |(u, p)| {
                        format!("{u} with {}", Points::from_milli(p))
                    })
                };
                findings.push(finding(
                    format!("redis {name}"),
                    format!(
                        "rank {at}: the database has {}, Redis {}",
                        show(expected),
                        show(found)
                    ),
                ));
            }
        }
        Ok(findings)
    }
}

/// FNV-1a, folded to an `i32`: a stable hash (the same on every node).
fn fnv32(text: &str) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h as i32
}

/// A connection without a statement timeout, for reading whole boards
/// (rebuild, verify); closed when dropped, so that no request ever gets it.
async fn unlimited(pool: &PgPool) -> Result<PoolConnection<Postgres>, StoreError> {
    let mut conn = pool.acquire().await.map_err(super::classify)?;
    conn.close_on_drop();
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut *conn)
        .await
        .map_err(super::classify)?;
    Ok(conn)
}

fn sql_failed(e: sqlx::Error) -> RedisError {
    RedisError::from((
        ::redis::ErrorKind::Io,
        "reading the database",
        e.to_string(),
    ))
}

/// Marks the boards dirty from `at_ms` on (see `board_sync`).
pub(super) async fn mark_dirty(conn: &mut PgConnection, at_ms: i64) {
    let marked = sqlx::query(
        "UPDATE board_sync SET dirty_since = least(coalesce(dirty_since, $1), $1),
                               generation = generation + 1",
    )
    .bind(at_ms)
    .execute(&mut *conn)
    .await;
    if let Err(e) = marked {
        tracing::error!(error = %e, "could not mark the leaderboards for a rebuild; run `gamify leaderboard rebuild` once the database is back");
    }
}

/// The task that writes commits' changes to Redis, everything waiting at
/// once, until the store is dropped.
async fn write_changes(
    boards: Weak<RedisBoards>,
    mut changes: mpsc::UnboundedReceiver<(u64, BoardChanges)>,
    done: watch::Sender<u64>,
) {
    let mut taken = Vec::new();
    while changes.recv_many(&mut taken, 256).await > 0 {
        let Some(boards) = boards.upgrade() else {
            return;
        };
        let last = taken.last().map_or(0, |(n, _)| *n);
        boards
            .write_queued(taken.drain(..).map(|(_, c)| c).collect())
            .await;
        done.send_replace(last);
    }
}
