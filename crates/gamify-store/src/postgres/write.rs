//! The writer tasks: many requests, one transaction, one commit.
//!
//! A batch is planned in memory once its users' rows are locked and read
//! (see the module docs of `super`). A request refused while planning (a
//! reused idempotency key with another body, a rule) is answered alone and
//! writes nothing, so the rest of the batch goes on. If the database refuses
//! the batch's writes (a unique index caught a key another node used in the
//! meantime, a deadlock it broke), the batch is rolled back and its requests
//! are retried one per transaction, where the committed rows are visible.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use gamify_core::{Category, Points, Rules, Window};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Row};
use tokio::sync::{Mutex, mpsc};

use super::lease::{self, Lease};
use super::queue::{self, Request};
use super::read::{
    EVENT_COLUMNS, MOVEMENT_COLUMNS, REDEMPTION_COLUMNS, REWARD_COLUMNS, USER_COLUMNS, movement,
    redemption, reward, stored_event, stored_user,
};
use super::redis_boards::RedisBoards;
use super::webhooks::{self, Hooks};
use super::{backend, classify, is_fenced, is_unavailable};
use crate::board::{BoardKey, EventPoints, LiveTotals, UserBoards, WINDOWED};
use crate::economy::{self, Done, Op};
use crate::export::Page;
use crate::scoring::LedgerEntry;
use crate::webhook;
use crate::{
    Delivery, EventRecord, Expire, Idempotency, Moved, Movement, NewEvent, NewMovement,
    NewRedemption, Recorded, Redeemed, Redemption, Reward, RewardDraft, Settle, StoreError,
    UserSnapshot, encode_achievements, encode_categories, encode_unlocked, scoring,
};

/// One write request.
pub type Job = Request<Op, Done>;

/// How often a request is tried on its own before its error is final.
const SOLO_ATTEMPTS: usize = 3;

/// Takes batches off the shared queue and commits them until the queue
/// closes. Keeps one connection between batches; drops it after an error
/// that says it is broken, and opens another for the next batch.
pub async fn writer(
    pool: PgPool,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    rules: Arc<Rules>,
    book: Arc<crate::RuleBook>,
    boards: Option<Arc<RedisBoards>>,
    hooks: Arc<Hooks>,
    lease: Option<Arc<Lease>>,
) {
    let mut held: Option<PoolConnection<Postgres>> = None;
    while let Some(mut jobs) = queue::next_batch(&queue).await {
        let Some(mut conn) = queue::connection(&mut held, &pool, &mut jobs).await else {
            continue;
        };
        let around = Around {
            boards: boards.as_deref(),
            hooks: &hooks,
            lease: lease.as_deref(),
        };
        if commit_jobs(&mut conn, jobs, (&rules, &book), around).await {
            held = Some(conn);
        } else {
            conn.close_on_drop();
        }
    }
}

/// The deployment's rule settings and every version of the rules.
type RulesAt<'a> = (&'a Rules, &'a crate::RuleBook);

/// What a writer keeps in step with its commits besides the database.
#[derive(Clone, Copy)]
struct Around<'a> {
    /// Redis's boards, if kept there.
    boards: Option<&'a RedisBoards>,
    hooks: &'a Hooks,
    /// The exclusive lease and its cache, on an exclusive node.
    lease: Option<&'a Lease>,
}

impl Around<'_> {
    /// This node's name for the fence.
    fn me(&self) -> &str {
        self.lease.map_or("", Lease::me)
    }

    /// After a commit, before anyone is answered: what changed on the
    /// boards goes to Redis, and the changed users' cached copies go.
    fn committed(&self, changes: Option<BoardChanges>, changed: &[String]) {
        if let (Some(boards), Some(changes)) = (self.boards, changes) {
            boards.write(changes);
        }
        if let Some(lease) = self.lease {
            for user in changed {
                lease.cache.invalidate(user);
            }
        }
    }

    /// A transaction failed for want of the database: it may have committed
    /// all the same (the connection broke during `COMMIT`), so no cached
    /// copy can be trusted. The fence's refusal changed nothing.
    fn failed(&self, e: &sqlx::Error) {
        if let Some(lease) = self.lease
            && !is_fenced(e)
        {
            lease.cache.clear();
        }
    }
}

/// Commits `jobs`, hands what changed on the boards to Redis's writer task
/// (if Redis keeps them), and answers each. Returns whether the connection
/// is still usable.
async fn commit_jobs(
    conn: &mut PgConnection,
    jobs: Vec<Job>,
    rules: RulesAt<'_>,
    around: Around<'_>,
) -> bool {
    let ops: Vec<&Op> = jobs.iter().map(|j| &j.payload).collect();
    match commit(conn, &ops, rules, around).await {
        Ok((outcomes, changes, changed)) => {
            around.committed(changes, &changed);
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                answer(job, outcome);
            }
            return true;
        }
        Err(e) if is_unavailable(&e) => {
            around.failed(&e);
            let usable = is_fenced(&e);
            queue::fail_all(jobs, &classify(e));
            return usable;
        }
        Err(e) => {
            tracing::debug!(error = %e, batch = jobs.len(), "batch refused; retrying its requests one by one");
        }
    }
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        let mut last = None;
        for _ in 0..SOLO_ATTEMPTS {
            match commit(conn, &[&job.payload], rules, around).await {
                Ok((mut outcomes, changes, changed)) => {
                    around.committed(changes, &changed);
                    last = outcomes.pop();
                    break;
                }
                Err(e) if is_unavailable(&e) => {
                    // The connection is gone (or the fence refuses): this
                    // request and the ones not yet retried all get the same
                    // answer.
                    around.failed(&e);
                    let usable = is_fenced(&e);
                    queue::fail_all(std::iter::once(job).chain(jobs), &classify(e));
                    return usable;
                }
                // Another transaction committed the same idempotency key
                // between our check and our insert, or a deadlock was broken:
                // the next attempt sees the committed row.
                Err(e) if is_retryable(&e) => last = Some(Err(backend(e))),
                Err(e) => {
                    last = Some(Err(backend(e)));
                    break;
                }
            }
        }
        answer(
            job,
            last.unwrap_or(Err(StoreError::Unavailable("the writer lost a request"))),
        );
    }
    true
}

/// Answers a request, logging what came of it in the request's span.
fn answer(job: Job, outcome: Result<Done, StoreError>) {
    job.span.in_scope(|| {
        tracing::debug!(
            outcome = economy::outcome(&outcome),
            "postgres: write answered"
        )
    });
    let _ = job.reply.send(outcome);
}

fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("40001" | "40P01") => true,
            Some("23505") => matches!(
                db.constraint(),
                Some(
                    "events_by_idempotency_key"
                        | "movements_by_idempotency_key"
                        | "redemptions_by_idempotency_key"
                        | "redemptions_granted_by_key"
                )
            ),
            _ => false,
        },
        _ => false,
    }
}

/// Where an in-batch idempotency key was first used: its fingerprint and
/// the outcome to repeat.
type KeyUse<'a> = HashMap<(&'static str, &'a str), (&'a str, usize)>;

/// What a batch writes, gathered while planning.
#[derive(Default)]
struct Writes<'a> {
    /// New events, with their key and fingerprint.
    events: Vec<(EventRecord, Option<(&'a str, &'a str)>)>,
    movements: Vec<(Movement, Option<&'a Idempotency>)>,
    redemptions: Vec<(Redemption, Option<&'a Idempotency>)>,
    /// Redemptions whose status changed.
    settled: Vec<Redemption>,
    /// Every ledger entry, in order, with its user and time.
    ledger: Vec<(String, LedgerEntry, i64)>,
    /// Users whose state changed.
    users: BTreeSet<String>,
    /// Rewards whose redeemed count changed.
    rewards: BTreeSet<String>,
    /// Webhook deliveries of the batch's notices.
    deliveries: Vec<Delivery>,
}

/// What the batch has read and changed so far, for the requests after.
struct World {
    states: HashMap<String, UserSnapshot>,
    /// Users' points in their latest windows (`users.board_windows`).
    live: HashMap<String, LiveTotals>,
    /// Users with an event in a window their totals had left behind (a
    /// node's clock behind another's): their boards are recounted from the
    /// log after the commit.
    recount: BTreeSet<String>,
    rewards: HashMap<String, Reward>,
    held: HashMap<(String, String), u32>,
    redemptions: HashMap<String, Redemption>,
    /// For expiries: what each user was credited since the cutoff, as
    /// committed before this batch.
    credited: HashMap<(String, i64), Points>,
}

impl World {
    fn held(&self, user: &str, reward: &str) -> u32 {
        self.held
            .get(&(user.to_owned(), reward.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

/// What a committed batch changed on the leaderboards.
pub struct BoardChanges {
    /// Each changed user's absolute points on the boards the batch touched.
    pub users: Vec<UserBoards>,
    /// Users whose boards must be recounted (see [`World::recount`]).
    pub recount: Vec<String>,
    /// The batch's time (Unix ms).
    pub at_ms: i64,
}

/// What a committed batch gives: one outcome per op, in order; what it
/// changed on the boards (when Redis keeps them); the users it changed.
type Committed = (
    Vec<Result<Done, StoreError>>,
    Option<BoardChanges>,
    Vec<String>,
);

/// Applies `ops` in one transaction (see [`Committed`]). An `Err` means the
/// transaction was rolled back and nothing was written (or, if the
/// connection broke, that it may have been).
async fn commit(
    conn: &mut PgConnection,
    ops: &[&Op],
    (rules, book): RulesAt<'_>,
    around: Around<'_>,
) -> Result<Committed, sqlx::Error> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    lease::fence(&mut tx, around.me()).await?;
    let subscriptions = around.hooks.current(&mut tx).await?;
    let wanted = webhook::Topics::of(&subscriptions);

    // A settlement names a redemption; its user (which never changes) is
    // the one to lock.
    let settle_ids: Vec<&str> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Settle(s) => Some(s.redemption_id.as_str()),
            _ => None,
        })
        .collect();
    let mut redemptions = if settle_ids.is_empty() {
        HashMap::new()
    } else {
        redemptions_by_id(&mut tx, &settle_ids).await?
    };

    // Lock every user's row, creating it if missing, in user id order.
    let mut users: BTreeSet<&str> = ops
        .iter()
        .filter_map(|op| op.user_id().map(|u| u.as_str()))
        .collect();
    let settle_users: Vec<String> = redemptions.values().map(|r| r.user_id.clone()).collect();
    users.extend(settle_users.iter().map(String::as_str));
    let users: Vec<&str> = users.into_iter().collect();
    let now = ops.iter().map(|op| op_time(op)).max().unwrap_or(0);
    let locked = sqlx::query(&format!(
        "INSERT INTO users (user_id, created_at, updated_at)
         SELECT u, $2, $2 FROM unnest($1::text[]) AS t(u) ORDER BY u COLLATE \"C\"
         ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
         RETURNING user_id, {USER_COLUMNS}, board_windows"
    ))
    .bind(&users)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut states: HashMap<String, UserSnapshot> = HashMap::with_capacity(locked.len());
    let mut live: HashMap<String, LiveTotals> = HashMap::with_capacity(locked.len());
    let mut uncounted: Vec<String> = Vec::new();
    for row in &locked {
        let user: String = row.try_get(0)?;
        let snapshot = stored_user(row, 1)?.decode().map_err(protocol)?;
        match LiveTotals::decode(row.try_get("board_windows")?).map_err(protocol)? {
            Some(totals) => {
                live.insert(user.clone(), totals);
            }
            None if snapshot.version == 0 => {
                live.insert(user.clone(), LiveTotals::default());
            }
            None => uncounted.push(user.clone()),
        }
        states.insert(user, snapshot);
    }
    if !uncounted.is_empty() {
        live.extend(count_live_totals(&mut tx, &uncounted, now).await?);
    }
    if !settle_ids.is_empty() {
        // Read again under the users' locks: now no one else can settle them.
        redemptions = redemptions_by_id(&mut tx, &settle_ids).await?;
    }

    // Erased users are refused, retries included: checked now that the
    // rows are locked, so an erasure that held one has committed.
    let erased = super::erase::refused_users(&mut tx, &users).await?;

    // The idempotency keys already used, now that no one else can write
    // these users (a key reused for another user is caught by the index).
    let used = UsedKeys::read(&mut tx, ops).await?;

    // The rewards redeemed or returned, locked in id order, and what each
    // redeeming user holds of them.
    let mut reward_ids: BTreeSet<&str> = BTreeSet::new();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for op in ops {
        if let Op::Redeem(r) = op {
            reward_ids.insert(r.reward_id.as_str());
            pairs.push((r.user_id.as_str(), r.reward_id.as_str()));
        }
    }
    reward_ids.extend(redemptions.values().map(|r| r.reward_id.as_str()));
    let reward_ids: Vec<&str> = reward_ids.into_iter().collect();
    let rewards = lock_rewards(&mut tx, &reward_ids).await?;
    let held = held_counts(&mut tx, &pairs).await?;
    let credited = credited_since(&mut tx, ops, rules).await?;
    let mut world = World {
        states,
        live,
        recount: BTreeSet::new(),
        rewards,
        held,
        redemptions,
        credited,
    };

    // Plan in arrival order.
    let mut outcomes: Vec<Result<Done, StoreError>> = Vec::with_capacity(ops.len());
    let mut writes = Writes::default();
    let mut new_keys: KeyUse = HashMap::new();
    let mut new_ids: HashSet<&str> = HashSet::new();
    for op in ops {
        if op.user_id().is_some_and(|u| erased.contains(u.as_str())) {
            outcomes.push(Err(StoreError::Erased));
            continue;
        }
        // A key used before (stored, or earlier in this batch) replays.
        if let Some((kind, idem)) = op_key(op) {
            if let Some(answer) = used.replay(kind, idem) {
                outcomes.push(answer);
                continue;
            }
            if let Some(&(fingerprint, n)) = new_keys.get(&(kind, idem.key.as_str())) {
                outcomes.push(if fingerprint == idem.fingerprint {
                    outcomes[n]
                        .as_ref()
                        .map(replayed)
                        .map_err(|_| StoreError::IdempotencyConflict)
                } else {
                    Err(StoreError::IdempotencyConflict)
                });
                continue;
            }
        }
        // What the webhooks' notices compare with, if anyone listens.
        let before = (!subscriptions.is_empty()).then(|| {
            let user = op.user_id().map(|u| u.as_str());
            webhook::Before::of(op, user.and_then(|u| world.states.get(u)))
        });
        let granted_from = writes.redemptions.len();
        let outcome = match op {
            Op::Event(event) => {
                if !new_ids.insert(event.id.as_str()) {
                    outcomes.push(Err(StoreError::Backend(
                        format!("event id {} was used twice in one batch", event.id).into(),
                    )));
                    continue;
                }
                plan_event(&mut tx, event, (rules, book), &mut world, &mut writes).await?
            }
            Op::Move(m) => plan_move(m, rules, &mut world, &mut writes),
            Op::Redeem(r) => plan_redeem(r, rules, &mut world, &mut writes),
            Op::Settle(s) => plan_settle(s, &mut world, &mut writes),
            Op::Expire(e) => plan_expire(e, &mut world, &mut writes),
        };
        if let (Some(before), Ok(done), Some(user)) = (before, &outcome, op.user_id()) {
            let after = world.states.get(user.as_str());
            let mut notices = webhook::notices(before, after, done, wanted, book);
            if wanted.has(webhook::Topic::RewardRedeemed) {
                notices.extend(
                    writes.redemptions[granted_from..]
                        .iter()
                        .filter(|(r, _)| r.granted_by.is_some())
                        .map(|(r, _)| webhook::redeemed_notice(r, after)),
                );
            }
            writes
                .deliveries
                .extend(webhook::fan_out(&notices, &subscriptions));
        }
        if outcome.is_ok()
            && let Some((kind, idem)) = op_key(op)
        {
            new_keys.insert(
                (kind, idem.key.as_str()),
                (idem.fingerprint.as_str(), outcomes.len()),
            );
        }
        outcomes.push(outcome);
    }

    write_all(&mut tx, &writes, &world, now).await?;
    webhooks::insert(&mut tx, &writes.deliveries).await?;
    // Rows created above for users whose every request was refused.
    let unused: Vec<&str> = users
        .iter()
        .copied()
        .filter(|u| !writes.users.contains(*u))
        .collect();
    if !unused.is_empty() {
        sqlx::query("DELETE FROM users WHERE user_id = ANY($1::text[]) AND version = 0")
            .bind(&unused)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    // Gathered only for Redis: without it nothing reads them.
    let changes = around
        .boards
        .is_some()
        .then(|| board_changes(&writes, &world, now));
    let changed = writes.users.iter().cloned().collect();
    Ok((outcomes, changes, changed))
}

/// Every changed user's points on the boards the batch touched: all time
/// overall, and the categories and windows of their new events.
fn board_changes(writes: &Writes<'_>, world: &World, now: i64) -> BoardChanges {
    let mut touched: HashMap<&str, Vec<Category>> = HashMap::new();
    for (event, _) in &writes.events {
        let categories = touched.entry(event.user_id.as_str()).or_default();
        if !categories.contains(&event.category) {
            categories.push(event.category);
        }
    }
    let mut users = Vec::with_capacity(writes.users.len());
    for user in &writes.users {
        let Some(state) = world.states.get(user) else {
            continue;
        };
        let categories = touched.get(user.as_str()).map_or(&[][..], Vec::as_slice);
        let mut points = vec![(BoardKey::ALL_TIME, Window::ALL_TIME, state.state.lifetime)];
        for total in &state.state.categories {
            if categories.contains(&total.category) && total.points > Points::ZERO {
                let key = BoardKey {
                    period: gamify_core::Period::AllTime,
                    category: Some(total.category),
                };
                points.push((key, Window::ALL_TIME, total.points));
            }
        }
        if let Some(live) = world.live.get(user) {
            points.extend(live.boards(categories));
        }
        users.push(UserBoards {
            user_id: user.clone(),
            points,
        });
    }
    BoardChanges {
        users,
        recount: world.recount.iter().cloned().collect(),
        at_ms: now,
    }
}

/// Counts, from the log, the points of `users` in the day, week and month
/// containing `now`: for rows that predate `users.board_windows`.
async fn count_live_totals(
    tx: &mut PgConnection,
    users: &[String],
    now: i64,
) -> Result<Vec<(String, LiveTotals)>, sqlx::Error> {
    let windows = WINDOWED.map(|p| Window::containing(p, now));
    let starts = windows.map(|w| w.start_ms());
    let from = starts.iter().copied().min().unwrap_or(now);
    let rows = sqlx::query(
        "SELECT user_id, category,
                coalesce(sum(points_milli) FILTER (WHERE created_at >= $2), 0)::bigint,
                coalesce(sum(points_milli) FILTER (WHERE created_at >= $3), 0)::bigint,
                coalesce(sum(points_milli) FILTER (WHERE created_at >= $4), 0)::bigint
         FROM events WHERE user_id = ANY($1::text[]) AND created_at >= $5
         GROUP BY user_id, category
         UNION ALL
         SELECT user_id, '*',
                coalesce(sum(amount_milli) FILTER (WHERE created_at >= $2), 0)::bigint,
                coalesce(sum(amount_milli) FILTER (WHERE created_at >= $3), 0)::bigint,
                coalesce(sum(amount_milli) FILTER (WHERE created_at >= $4), 0)::bigint
         FROM ledger WHERE user_id = ANY($1::text[]) AND created_at >= $5
           AND kind IN ('event', 'achievement_bonus')
         GROUP BY user_id",
    )
    .bind(users)
    .bind(starts[0])
    .bind(starts[1])
    .bind(starts[2])
    .bind(from)
    .fetch_all(&mut *tx)
    .await?;
    let mut out: HashMap<String, LiveTotals> = users
        .iter()
        .map(|u| {
            let totals = LiveTotals {
                starts: Some(windows.map(|w| w.start_day)),
                rows: Vec::new(),
            };
            (u.clone(), totals)
        })
        .collect();
    for row in rows {
        let user: String = row.try_get(0)?;
        let name: String = row.try_get(1)?;
        let category = match name.as_str() {
            "*" => None,
            c => Some(Category::named(c).ok_or_else(|| {
                protocol(StoreError::Backend(
                    format!("unknown category {c:?}").into(),
                ))
            })?),
        };
        let values = [row.try_get(2)?, row.try_get(3)?, row.try_get(4)?];
        if let Some(totals) = out.get_mut(&user) {
            totals.rows.push((category, values));
            totals.rows.sort_by_key(|(c, _)| *c);
        }
    }
    Ok(out.into_iter().collect())
}

/// The same answer, marked as a replay.
fn replayed(done: &Done) -> Done {
    match done {
        Done::Event(r) => Done::Event(Recorded {
            event: r.event.clone(),
            replayed: true,
        }),
        Done::Move(m) => Done::Move(Moved {
            movement: m.movement.clone(),
            replayed: true,
        }),
        Done::Redeem(r) => Done::Redeem(Redeemed {
            redemption: r.redemption.clone(),
            replayed: true,
        }),
        Done::Settle(r) => Done::Settle(r.clone()),
        Done::Expire(p) => Done::Expire(*p),
    }
}

fn op_time(op: &Op) -> i64 {
    match op {
        Op::Event(e) => e.created_at_ms,
        Op::Move(m) => m.created_at_ms,
        Op::Redeem(r) => r.created_at_ms,
        Op::Settle(s) => s.at_ms,
        Op::Expire(e) => e.at_ms,
    }
}

/// The op's idempotency key, with the namespace it is unique in.
fn op_key(op: &Op) -> Option<(&'static str, &Idempotency)> {
    match op {
        Op::Event(e) => e.idempotency.as_ref().map(|i| ("event", i)),
        Op::Move(m) => m.idempotency.as_ref().map(|i| ("movement", i)),
        Op::Redeem(r) => r.idempotency.as_ref().map(|i| ("redemption", i)),
        Op::Settle(_) | Op::Expire(_) => None,
    }
}

/// The stored requests that used the batch's keys, by namespace and key,
/// with their fingerprints.
struct UsedKeys(HashMap<(&'static str, String), (Option<String>, Done)>);

impl UsedKeys {
    async fn read(tx: &mut PgConnection, ops: &[&Op]) -> Result<UsedKeys, sqlx::Error> {
        let mut keys: HashMap<&'static str, Vec<&str>> = HashMap::new();
        for op in ops {
            if let Some((kind, idem)) = op_key(op) {
                keys.entry(kind).or_default().push(idem.key.as_str());
            }
        }
        let mut used = HashMap::new();
        for (kind, keys) in keys {
            let (table, columns) = match kind {
                "event" => ("events", EVENT_COLUMNS),
                "movement" => ("movements", MOVEMENT_COLUMNS),
                _ => ("redemptions", REDEMPTION_COLUMNS),
            };
            let rows = sqlx::query(&format!(
                "SELECT idempotency_key, request_hash, {columns} FROM {table}
                 WHERE idempotency_key = ANY($1::text[])"
            ))
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await?;
            for row in &rows {
                let done = match kind {
                    "event" => Done::Event(Recorded {
                        event: stored_event(row, 2)?.decode().map_err(protocol)?,
                        replayed: true,
                    }),
                    "movement" => Done::Move(Moved {
                        movement: movement(row, 2)?,
                        replayed: true,
                    }),
                    _ => Done::Redeem(Redeemed {
                        redemption: redemption(row, 2)?,
                        replayed: true,
                    }),
                };
                used.insert((kind, row.try_get(0)?), (row.try_get(1)?, done));
            }
        }
        Ok(UsedKeys(used))
    }

    /// The answer for a request whose key was stored before, if it was.
    fn replay(&self, kind: &'static str, idem: &Idempotency) -> Option<Result<Done, StoreError>> {
        let (hash, done) = self.0.get(&(kind, idem.key.clone()))?;
        Some(economy::replay(hash.as_deref(), idem, || {
            Ok(replayed(done))
        }))
    }
}

async fn redemptions_by_id(
    tx: &mut PgConnection,
    ids: &[&str],
) -> Result<HashMap<String, Redemption>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = ANY($1::text[])"
    ))
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let r = redemption(row, 0)?;
        found.insert(r.id.clone(), r);
    }
    Ok(found)
}

/// Locks the rewards' rows, in id order, and reads them.
async fn lock_rewards(
    tx: &mut PgConnection,
    ids: &[&str],
) -> Result<HashMap<String, Reward>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(&format!(
        "SELECT {REWARD_COLUMNS} FROM rewards WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
    ))
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in &rows {
        let r = reward(row)?;
        found.insert(r.draft.id.clone(), r);
    }
    Ok(found)
}

/// How many redemptions (not cancelled) each (user, reward) pair holds.
async fn held_counts(
    tx: &mut PgConnection,
    pairs: &[(&str, &str)],
) -> Result<HashMap<(String, String), u32>, sqlx::Error> {
    if pairs.is_empty() {
        return Ok(HashMap::new());
    }
    let (users, rewards): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
    let rows = sqlx::query(
        "SELECT d.user_id, d.reward_id, count(*) FROM redemptions d
         JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS p(u, r)
              ON d.user_id = p.u AND d.reward_id = p.r
         WHERE d.status <> 'cancelled' GROUP BY 1, 2",
    )
    .bind(&users)
    .bind(&rewards)
    .fetch_all(&mut *tx)
    .await?;
    let mut held = HashMap::with_capacity(rows.len());
    for row in &rows {
        held.insert(
            (row.try_get(0)?, row.try_get(1)?),
            row.try_get::<i64, _>(2)? as u32,
        );
    }
    Ok(held)
}

/// For the batch's expiries: what each user was credited since the cutoff,
/// committed before this batch (the users' rows are locked, so nothing else
/// can credit them now). One query per distinct cutoff.
async fn credited_since(
    tx: &mut PgConnection,
    ops: &[&Op],
    rules: &Rules,
) -> Result<HashMap<(String, i64), Points>, sqlx::Error> {
    let mut by_cutoff: HashMap<i64, Vec<&str>> = HashMap::new();
    for op in ops {
        let wanted = match (op, rules.expiry) {
            (Op::Expire(e), _) => Some((e.user_id.as_str(), e.cutoff_ms)),
            // With expiry on, a debit first expires what is due.
            (Op::Move(m), Some(x)) if m.amount < Points::ZERO => {
                Some((m.user_id.as_str(), x.cutoff_ms(m.created_at_ms)))
            }
            (Op::Redeem(r), Some(x)) => Some((r.user_id.as_str(), x.cutoff_ms(r.created_at_ms))),
            _ => None,
        };
        if let Some((user, cutoff)) = wanted {
            by_cutoff.entry(cutoff).or_default().push(user);
        }
    }
    let mut credited = HashMap::new();
    for (cutoff, users) in by_cutoff {
        let rows = sqlx::query(&format!(
            "SELECT user_id, coalesce(sum(amount_milli), 0)::int8 FROM ledger
             WHERE user_id = ANY($1::text[]) AND created_at >= $2 AND {}
             GROUP BY user_id",
            economy::CREDIT_SQL
        ))
        .bind(&users)
        .bind(cutoff)
        .fetch_all(&mut *tx)
        .await?;
        for user in users {
            credited.insert((user.to_owned(), cutoff), Points::ZERO);
        }
        for row in &rows {
            credited.insert(
                (row.try_get(0)?, cutoff),
                Points::from_milli(row.try_get(1)?),
            );
        }
    }
    Ok(credited)
}

fn plan_expire(e: &Expire, world: &mut World, writes: &mut Writes<'_>) -> Result<Done, StoreError> {
    let expired = expire_due(world, writes, e.user_id.as_str(), e.cutoff_ms, e.at_ms)?;
    Ok(Done::Expire(expired))
}

/// Expires what is due of the user's points (credited before `cutoff` and
/// still held), if anything; returns how much.
fn expire_due(
    world: &mut World,
    writes: &mut Writes<'_>,
    user: &str,
    cutoff: i64,
    at: i64,
) -> Result<Points, StoreError> {
    let committed = world
        .credited
        .get(&(user.to_owned(), cutoff))
        .copied()
        .unwrap_or(Points::ZERO);
    // Credits planned earlier in this batch are not in the table yet.
    let mut credited = committed;
    for (who, entry, entry_at) in &writes.ledger {
        if who == user && *entry_at >= cutoff && economy::is_credit(entry) {
            credited = credited.checked_add(entry.amount)?;
        }
    }
    let before = world.states.get(user).cloned();
    match economy::plan_expiry(before, credited, at)? {
        None => Ok(Points::ZERO),
        Some((after, entry)) => {
            let expired = Points::from_milli(-entry.amount.milli());
            changed(world, writes, user, after, entry, at);
            Ok(expired)
        }
    }
}

/// With expiry on, expires what is due of the user's points before a debit
/// at `at`, so that points past their day can never be spent. The expiry
/// stands even if the debit is then refused: it was due either way.
fn expire_before_debit(
    rules: &Rules,
    world: &mut World,
    writes: &mut Writes<'_>,
    user: &str,
    at: i64,
) -> Result<(), StoreError> {
    if let Some(expiry) = rules.expiry {
        expire_due(world, writes, user, expiry.cutoff_ms(at), at)?;
    }
    Ok(())
}

/// Notes a user's new state and the ledger entry that got it there.
fn changed(
    world: &mut World,
    writes: &mut Writes<'_>,
    user: &str,
    after: UserSnapshot,
    entry: LedgerEntry,
    at: i64,
) {
    world.states.insert(user.to_owned(), after);
    writes.users.insert(user.to_owned());
    writes.ledger.push((user.to_owned(), entry, at));
}

async fn plan_event<'a>(
    tx: &mut PgConnection,
    event: &'a NewEvent,
    (rules, book): RulesAt<'_>,
    world: &mut World,
    writes: &mut Writes<'a>,
) -> Result<Result<Done, StoreError>, sqlx::Error> {
    let user = event.user_id.as_str();
    let before = world.states.get(user).cloned();
    let scored = book
        .rules(event.rules_version, &event.id)
        .and_then(|rules| scoring::score(event, before, &rules));
    let (record, after) = match scored {
        Ok(scored) => scored,
        Err(e) => return Ok(Err(e)),
    };
    world.states.insert(user.to_owned(), after);
    writes.users.insert(user.to_owned());
    match EventPoints::of(&record) {
        Ok(points) => {
            if !world.live.entry(user.to_owned()).or_default().add(&points) {
                world.recount.insert(user.to_owned());
            }
        }
        Err(e) => return Ok(Err(e)),
    }
    for entry in scoring::ledger_entries(&record) {
        writes
            .ledger
            .push((user.to_owned(), entry, record.created_at_ms));
    }
    let idem = event
        .idempotency
        .as_ref()
        .map(|i| (i.key.as_str(), i.fingerprint.as_str()));
    writes.events.push((record.clone(), idem));
    // The rewards its achievements grant, free; one that cannot be granted
    // is skipped and logged, and the event stands.
    for (achievement, _) in &record.unlocked {
        let Some(reward_id) = rules.grant_for(*achievement) else {
            continue;
        };
        if !world.rewards.contains_key(reward_id) {
            world.rewards.extend(lock_rewards(tx, &[reward_id]).await?);
        }
        let key = (user.to_owned(), reward_id.to_owned());
        if !world.held.contains_key(&key) {
            world
                .held
                .extend(held_counts(tx, &[(user, reward_id)]).await?);
        }
        let granted_by = format!("{}/{}", record.id, achievement.as_str());
        let id = economy::grant_id(&record.id, *achievement);
        let result = match world.rewards.get(reward_id) {
            None => Err(StoreError::NotFound("reward")),
            Some(reward) => economy::plan_redemption(
                None,
                reward,
                world.held(user, reward_id),
                &id,
                user,
                Some(&granted_by),
                record.created_at_ms,
            ),
        };
        match result {
            Ok(planned) => took_unit(world, writes, planned.redemption, None),
            Err(e) => {
                tracing::warn!(user, achievement = achievement.as_str(), reward = reward_id, reason = %e, "achievement reward not granted");
            }
        }
    }
    Ok(Ok(Done::Event(Recorded {
        event: record,
        replayed: false,
    })))
}

/// A new redemption takes a unit of its reward.
fn took_unit<'a>(
    world: &mut World,
    writes: &mut Writes<'a>,
    redemption: Redemption,
    idempotency: Option<&'a Idempotency>,
) {
    if let Some(reward) = world.rewards.get_mut(&redemption.reward_id) {
        reward.redeemed += 1;
    }
    *world
        .held
        .entry((redemption.user_id.clone(), redemption.reward_id.clone()))
        .or_insert(0) += 1;
    writes.rewards.insert(redemption.reward_id.clone());
    writes.redemptions.push((redemption, idempotency));
}

fn plan_move<'a>(
    m: &'a NewMovement,
    rules: &Rules,
    world: &mut World,
    writes: &mut Writes<'a>,
) -> Result<Done, StoreError> {
    let user = m.user_id.as_str();
    if m.amount < Points::ZERO {
        expire_before_debit(rules, world, writes, user, m.created_at_ms)?;
    }
    let before = world.states.get(user).cloned();
    let (movement, after, entry) = economy::plan_movement(before, m)?;
    changed(world, writes, user, after, entry, m.created_at_ms);
    writes
        .movements
        .push((movement.clone(), m.idempotency.as_ref()));
    Ok(Done::Move(Moved {
        movement,
        replayed: false,
    }))
}

fn plan_redeem<'a>(
    r: &'a NewRedemption,
    rules: &Rules,
    world: &mut World,
    writes: &mut Writes<'a>,
) -> Result<Done, StoreError> {
    let user = r.user_id.as_str();
    expire_before_debit(rules, world, writes, user, r.created_at_ms)?;
    let reward = world
        .rewards
        .get(&r.reward_id)
        .ok_or(StoreError::NotFound("reward"))?;
    let before = world.states.get(user).cloned();
    let planned = economy::plan_redemption(
        before,
        reward,
        world.held(user, &r.reward_id),
        &r.id,
        user,
        None,
        r.created_at_ms,
    )?;
    if let Some((after, entry)) = planned.payment {
        changed(world, writes, user, after, entry, r.created_at_ms);
    }
    took_unit(
        world,
        writes,
        planned.redemption.clone(),
        r.idempotency.as_ref(),
    );
    Ok(Done::Redeem(Redeemed {
        redemption: planned.redemption,
        replayed: false,
    }))
}

fn plan_settle(s: &Settle, world: &mut World, writes: &mut Writes<'_>) -> Result<Done, StoreError> {
    let current = world
        .redemptions
        .get(&s.redemption_id)
        .ok_or(StoreError::NotFound("redemption"))?
        .clone();
    let before = world.states.get(&current.user_id).cloned();
    let planned = economy::plan_settle(&current, before, s)?;
    if planned.changed {
        if planned.returns_unit
            && let Some(reward) = world.rewards.get_mut(&current.reward_id)
        {
            reward.redeemed = reward.redeemed.saturating_sub(1);
            writes.rewards.insert(current.reward_id.clone());
        }
        if let Some((after, entry)) = planned.refund {
            changed(world, writes, &current.user_id, after, entry, s.at_ms);
        }
        world
            .redemptions
            .insert(current.id.clone(), planned.redemption.clone());
        writes.settled.push(planned.redemption.clone());
    }
    Ok(Done::Settle(planned.redemption))
}

/// A stored value this binary cannot read, as a query error (it aborts the
/// transaction like one).
pub(super) fn protocol(e: StoreError) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// Writes what the batch planned: events, ledger entries and users' new
/// state in one statement (one round trip: two data-modifying CTEs and an
/// upsert); then movements, redemptions and rewards' counts, if any.
async fn write_all(
    tx: &mut PgConnection,
    writes: &Writes<'_>,
    world: &World,
    now: i64,
) -> Result<(), sqlx::Error> {
    if !writes.users.is_empty() || !writes.events.is_empty() {
        write_records(tx, writes, world, now).await?;
    }
    if !writes.movements.is_empty() {
        write_movements(tx, &writes.movements).await?;
    }
    if !writes.redemptions.is_empty() {
        write_redemptions(tx, &writes.redemptions).await?;
    }
    if !writes.settled.is_empty() {
        let ids: Vec<&str> = writes.settled.iter().map(|r| r.id.as_str()).collect();
        let statuses: Vec<&str> = writes.settled.iter().map(|r| r.status.as_str()).collect();
        let at: Vec<i64> = writes.settled.iter().map(|r| r.updated_at_ms).collect();
        sqlx::query(
            "UPDATE redemptions d SET status = n.status, updated_at = n.at
             FROM unnest($1::text[], $2::text[], $3::int8[]) AS n(id, status, at) WHERE d.id = n.id",
        )
        .bind(ids)
        .bind(statuses)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    if !writes.rewards.is_empty() {
        let ids: Vec<&str> = writes.rewards.iter().map(String::as_str).collect();
        let counts: Vec<i64> = ids
            .iter()
            .map(|id| world.rewards.get(*id).map_or(0, |r| i64::from(r.redeemed)))
            .collect();
        sqlx::query(
            "UPDATE rewards r SET redeemed = n.redeemed
             FROM unnest($1::text[], $2::int8[]) AS n(id, redeemed) WHERE r.id = n.id",
        )
        .bind(ids)
        .bind(counts)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

async fn write_movements(
    tx: &mut PgConnection,
    movements: &[(Movement, Option<&Idempotency>)],
) -> Result<(), sqlx::Error> {
    let col = |f: fn(&Movement) -> i64| movements.iter().map(|(m, _)| f(m)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO movements (id, user_id, kind, amount_milli, reason, metadata, balance_after, lifetime_after,
                                created_at, idempotency_key, request_hash)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::int8[],
                              $8::int8[], $9::int8[], $10::text[], $11::text[])",
    )
    .bind(movements.iter().map(|(m, _)| m.id.as_str()).collect::<Vec<_>>())
    .bind(movements.iter().map(|(m, _)| m.user_id.as_str()).collect::<Vec<_>>())
    .bind(movements.iter().map(|(m, _)| m.kind.as_str()).collect::<Vec<_>>())
    .bind(col(|m| m.amount.milli()))
    .bind(movements.iter().map(|(m, _)| m.reason.as_str()).collect::<Vec<_>>())
    .bind(movements.iter().map(|(m, _)| m.metadata.as_deref()).collect::<Vec<_>>())
    .bind(col(|m| m.balance_after.milli()))
    .bind(col(|m| m.lifetime_after.milli()))
    .bind(col(|m| m.created_at_ms))
    .bind(movements.iter().map(|(_, i)| i.map(|i| i.key.as_str())).collect::<Vec<_>>())
    .bind(movements.iter().map(|(_, i)| i.map(|i| i.fingerprint.as_str())).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn write_redemptions(
    tx: &mut PgConnection,
    redemptions: &[(Redemption, Option<&Idempotency>)],
) -> Result<(), sqlx::Error> {
    let text =
        |f: fn(&Redemption) -> &str| redemptions.iter().map(|(r, _)| f(r)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO redemptions (id, reward_id, user_id, cost_milli, status, granted_by, created_at, updated_at,
                                  idempotency_key, request_hash)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::int8[],
                              $8::int8[], $9::text[], $10::text[])",
    )
    .bind(text(|r| r.id.as_str()))
    .bind(text(|r| r.reward_id.as_str()))
    .bind(text(|r| r.user_id.as_str()))
    .bind(redemptions.iter().map(|(r, _)| r.cost.milli()).collect::<Vec<_>>())
    .bind(text(|r| r.status.as_str()))
    .bind(redemptions.iter().map(|(r, _)| r.granted_by.as_deref()).collect::<Vec<_>>())
    .bind(redemptions.iter().map(|(r, _)| r.created_at_ms).collect::<Vec<_>>())
    .bind(redemptions.iter().map(|(r, _)| r.updated_at_ms).collect::<Vec<_>>())
    .bind(redemptions.iter().map(|(_, i)| i.map(|i| i.key.as_str())).collect::<Vec<_>>())
    .bind(redemptions.iter().map(|(_, i)| i.map(|i| i.fingerprint.as_str())).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Events, every ledger entry and the changed users, in one statement.
async fn write_records(
    tx: &mut PgConnection,
    writes: &Writes<'_>,
    world: &World,
    now: i64,
) -> Result<(), sqlx::Error> {
    let states = &world.states;
    let records = &writes.events;
    let written = &writes.users;
    let n = records.len();
    let mut id = Vec::with_capacity(n);
    let mut user = Vec::with_capacity(n);
    let mut category = Vec::with_capacity(n);
    let mut action = Vec::with_capacity(n);
    let mut value = Vec::with_capacity(n);
    let mut points = Vec::with_capacity(n);
    let mut weight = Vec::with_capacity(n);
    let mut streak_day = Vec::with_capacity(n);
    let mut bonus = Vec::with_capacity(n);
    let mut unlocked = Vec::with_capacity(n);
    let mut total_after = Vec::with_capacity(n);
    let mut lifetime_after = Vec::with_capacity(n);
    let mut metadata = Vec::with_capacity(n);
    let mut occurred_at = Vec::with_capacity(n);
    let mut created_at = Vec::with_capacity(n);
    let mut key = Vec::with_capacity(n);
    let mut hash = Vec::with_capacity(n);
    let mut rules_version = Vec::with_capacity(n);
    let mut l_user = Vec::with_capacity(n);
    let mut l_kind = Vec::with_capacity(n);
    let mut l_amount = Vec::with_capacity(n);
    let mut l_balance = Vec::with_capacity(n);
    let mut l_lifetime = Vec::with_capacity(n);
    let mut l_reference = Vec::with_capacity(n);
    let mut l_created = Vec::with_capacity(n);
    let mut l_rules = Vec::with_capacity(n);
    for (r, idem) in records {
        id.push(r.id.as_str());
        user.push(r.user_id.as_str());
        category.push(r.category.as_str());
        action.push(r.action.as_str());
        value.push(r.value.milli());
        points.push(r.points.milli());
        weight.push(r.weight_milli);
        streak_day.push(r.streak_day as i32);
        bonus.push(r.bonus_percent as i32);
        unlocked.push(encode_unlocked(&r.unlocked));
        total_after.push(r.total_after.milli());
        lifetime_after.push(r.lifetime_after.milli());
        metadata.push(r.metadata.as_deref());
        occurred_at.push(r.occurred_at_ms);
        created_at.push(r.created_at_ms);
        key.push(idem.map(|(k, _)| k));
        hash.push(idem.map(|(_, h)| h));
        rules_version.push(r.rules_version as i32);
    }
    for (who, entry, at) in &writes.ledger {
        l_user.push(who.as_str());
        l_kind.push(entry.kind.as_str());
        l_amount.push(entry.amount.milli());
        l_balance.push(entry.balance_after.milli());
        l_lifetime.push(entry.lifetime_after.milli());
        l_reference.push(entry.reference.as_str());
        l_created.push(*at);
        l_rules.push(entry.rules_version.map(|v| v as i32));
    }
    let mut u_user = Vec::with_capacity(written.len());
    let mut u_total = Vec::with_capacity(written.len());
    let mut u_lifetime = Vec::with_capacity(written.len());
    let mut u_best = Vec::with_capacity(written.len());
    let mut u_runs = Vec::with_capacity(written.len());
    let mut u_achievements = Vec::with_capacity(written.len());
    let mut u_count = Vec::with_capacity(written.len());
    let mut u_categories = Vec::with_capacity(written.len());
    let mut u_last = Vec::with_capacity(written.len());
    let mut u_version = Vec::with_capacity(written.len());
    let mut u_windows = Vec::with_capacity(written.len());
    for who in written {
        let Some(s) = states.get(who) else { continue };
        u_user.push(who.as_str());
        u_total.push(s.state.total.milli());
        u_lifetime.push(s.state.lifetime.milli());
        u_best.push(s.state.best_streak as i32);
        u_runs.push(s.state.runs.encode());
        u_achievements.push(encode_achievements(&s.state.achievements));
        u_count.push(s.event_count as i64);
        u_categories.push(encode_categories(&s.state.categories));
        u_last.push(s.last_event_at_ms);
        u_version.push(s.version as i64);
        u_windows.push(
            world
                .live
                .get(who)
                .map_or_else(String::new, LiveTotals::encode),
        );
    }
    // The users part is an upsert rather than UPDATE … FROM unnest: every
    // row exists (locked above), and the conflict path finds each through
    // the primary key, where a join's plan can turn into a scan of the whole
    // table (measured: it did, and cost half the throughput).
    sqlx::query(
        "WITH new_events AS (
             INSERT INTO events (id, user_id, category, action, value_milli, points_milli, weight_milli,
                                 streak_day, bonus_percent, unlocked, total_after, lifetime_after, metadata,
                                 occurred_at, created_at, idempotency_key, request_hash, rules_version)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                                  $7::int8[], $8::int4[], $9::int4[], $10::text[], $11::int8[], $12::int8[],
                                  $13::text[], $14::int8[], $15::int8[], $16::text[], $17::text[], $37::int4[])
         ), new_ledger AS (
             INSERT INTO ledger (user_id, kind, amount_milli, balance_after_milli, lifetime_after_milli,
                                 reference, created_at, rules_version)
             SELECT * FROM unnest($18::text[], $19::text[], $20::int8[], $21::int8[], $22::int8[],
                                  $23::text[], $24::int8[], $38::int4[])
         )
         INSERT INTO users (user_id, total_milli, lifetime_milli, best_streak, streak_runs, achievements,
                            event_count, category_totals, last_event_at, version, board_windows,
                            created_at, updated_at)
         SELECT n.*, $35, $35
         FROM unnest($25::text[], $26::int8[], $27::int8[], $28::int4[], $29::text[], $30::text[],
                     $31::int8[], $32::text[], $33::int8[], $34::int8[], $36::text[]) AS n
         ON CONFLICT (user_id) DO UPDATE SET total_milli = EXCLUDED.total_milli,
                lifetime_milli = EXCLUDED.lifetime_milli, best_streak = EXCLUDED.best_streak,
                streak_runs = EXCLUDED.streak_runs, achievements = EXCLUDED.achievements,
                event_count = EXCLUDED.event_count, category_totals = EXCLUDED.category_totals,
                last_event_at = EXCLUDED.last_event_at, version = EXCLUDED.version,
                board_windows = EXCLUDED.board_windows, updated_at = EXCLUDED.updated_at",
    )
    .bind(id)
    .bind(user)
    .bind(category)
    .bind(action)
    .bind(value)
    .bind(points)
    .bind(weight)
    .bind(streak_day)
    .bind(bonus)
    .bind(unlocked)
    .bind(total_after)
    .bind(lifetime_after)
    .bind(metadata)
    .bind(occurred_at)
    .bind(created_at)
    .bind(key)
    .bind(hash)
    .bind(l_user)
    .bind(l_kind)
    .bind(l_amount)
    .bind(l_balance)
    .bind(l_lifetime)
    .bind(l_reference)
    .bind(l_created)
    .bind(u_user)
    .bind(u_total)
    .bind(u_lifetime)
    .bind(u_best)
    .bind(u_runs)
    .bind(u_achievements)
    .bind(u_count)
    .bind(u_categories)
    .bind(u_last)
    .bind(u_version)
    .bind(now)
    .bind(u_windows)
    .bind(rules_version)
    .bind(l_rules)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Creates or updates a reward, keeping its redeemed count; the row lock
/// makes the stock check and the write one step.
pub async fn save_reward(
    conn: &mut PgConnection,
    d: &RewardDraft,
    create: bool,
) -> Result<Reward, StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(classify)?;
    let existing = lock_rewards(&mut tx, &[d.id.as_str()])
        .await
        .map_err(classify)?
        .remove(&d.id);
    let saved = economy::plan_save_reward(existing.as_ref(), d, create)?;
    let inserted = sqlx::query(
        "INSERT INTO rewards (id, name_fi, name_en, description, cost_milli, stock, per_user_limit, available_from,
                              available_until, active, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (id) DO UPDATE SET name_fi = EXCLUDED.name_fi, name_en = EXCLUDED.name_en,
             description = EXCLUDED.description, cost_milli = EXCLUDED.cost_milli, stock = EXCLUDED.stock,
             per_user_limit = EXCLUDED.per_user_limit, available_from = EXCLUDED.available_from,
             available_until = EXCLUDED.available_until, active = EXCLUDED.active,
             updated_at = EXCLUDED.updated_at",
    )
    .bind(&d.id)
    .bind(&d.name_fi)
    .bind(&d.name_en)
    .bind(&d.description)
    .bind(d.cost.milli())
    .bind(d.stock.map(i64::from))
    .bind(d.per_user_limit.map(i64::from))
    .bind(d.available_from_ms)
    .bind(d.available_until_ms)
    .bind(d.active)
    .bind(saved.created_at_ms)
    .bind(d.saved_at_ms)
    .execute(&mut *tx)
    .await;
    match inserted {
        // Created by another node since the lock found nothing.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("23505") => {
            return Err(StoreError::AlreadyExists("reward"));
        }
        other => other.map_err(classify)?,
    };
    tx.commit().await.map_err(classify)?;
    Ok(saved)
}

/// Writes an export page's rows as they are (an import): one statement per
/// page, arrival numbers kept (`OVERRIDING SYSTEM VALUE`) and the identity
/// sequences moved past them, in one transaction.
pub async fn import_page(conn: &mut PgConnection, page: &Page, me: &str) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(classify)?;
    lease::fence(&mut tx, me).await.map_err(classify)?;
    import_rows(&mut tx, page).await.map_err(classify)?;
    let table = match page {
        Page::Events(_) => Some("events"),
        Page::Movements(_) => Some("movements"),
        Page::Redemptions(_) => Some("redemptions"),
        Page::Ledger(_) => Some("ledger"),
        _ => None,
    };
    if let Some(table) = table {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'seq'), (SELECT max(seq) FROM {table}))"
        ))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    }
    tx.commit().await.map_err(classify)
}

fn keys_of<'a, T>(
    rows: &'a [T],
    idempotency: impl Fn(&'a T) -> &'a Option<(String, String)>,
) -> (Vec<Option<&'a str>>, Vec<Option<&'a str>>) {
    rows.iter()
        .map(|r| match idempotency(r) {
            Some((k, h)) => (Some(k.as_str()), Some(h.as_str())),
            None => (None, None),
        })
        .unzip()
}

async fn import_rows(tx: &mut PgConnection, page: &Page) -> Result<(), sqlx::Error> {
    match page {
        Page::Rewards(rows) => {
            let d: Vec<&RewardDraft> = rows.iter().map(|r| &r.draft).collect();
            sqlx::query(
                "INSERT INTO rewards (id, name_fi, name_en, description, cost_milli, stock, redeemed, per_user_limit,
                                      available_from, available_until, active, created_at, updated_at, erased_units)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::int8[],
                                      $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::bool[], $12::int8[], $13::int8[],
                                      $14::int8[])",
            )
            .bind(d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.name_fi.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.name_en.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.description.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.cost.milli()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.stock.map(i64::from)).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| i64::from(r.redeemed)).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.per_user_limit.map(i64::from)).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.available_from_ms).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.available_until_ms).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.active).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.created_at_ms).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.saved_at_ms).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| i64::from(r.erased_units)).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        Page::Users(rows) => {
            let s: Vec<&UserSnapshot> = rows.iter().map(|(_, s)| s).collect();
            sqlx::query(
                "INSERT INTO users (user_id, total_milli, lifetime_milli, best_streak, streak_runs, achievements,
                                    event_count, category_totals, last_event_at, version, created_at, updated_at)
                 SELECT n.*, 0, 0 FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int4[], $5::text[], $6::text[],
                                              $7::int8[], $8::text[], $9::int8[], $10::int8[]) AS n",
            )
            .bind(rows.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.state.total.milli()).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.state.lifetime.milli()).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.state.best_streak as i32).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.state.runs.encode()).collect::<Vec<_>>())
            .bind(s.iter().map(|s| encode_achievements(&s.state.achievements)).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.event_count as i64).collect::<Vec<_>>())
            .bind(s.iter().map(|s| encode_categories(&s.state.categories)).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.last_event_at_ms).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.version as i64).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        Page::Events(rows) => {
            let r: Vec<&EventRecord> = rows.iter().map(|e| &e.record).collect();
            let (key, hash) = keys_of(rows, |e| &e.idempotency);
            sqlx::query(
                "INSERT INTO events (seq, id, user_id, category, action, value_milli, points_milli, weight_milli,
                                     streak_day, bonus_percent, unlocked, total_after, lifetime_after, metadata,
                                     occurred_at, created_at, idempotency_key, request_hash, rules_version)
                 OVERRIDING SYSTEM VALUE
                 SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[],
                                      $7::int8[], $8::int8[], $9::int4[], $10::int4[], $11::text[], $12::int8[],
                                      $13::int8[], $14::text[], $15::int8[], $16::int8[], $17::text[], $18::text[],
                                      $19::int4[])",
            )
            .bind(rows.iter().map(|e| e.seq).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.user_id.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.category.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.action.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.value.milli()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.points.milli()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.weight_milli).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.streak_day as i32).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.bonus_percent as i32).collect::<Vec<_>>())
            .bind(r.iter().map(|r| encode_unlocked(&r.unlocked)).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.total_after.milli()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.lifetime_after.milli()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.metadata.as_deref()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.occurred_at_ms).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.created_at_ms).collect::<Vec<_>>())
            .bind(key)
            .bind(hash)
            .bind(r.iter().map(|r| r.rules_version as i32).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        Page::Movements(rows) => {
            let m: Vec<&Movement> = rows.iter().map(|m| &m.movement).collect();
            let (key, hash) = keys_of(rows, |m| &m.idempotency);
            sqlx::query(
                "INSERT INTO movements (seq, id, user_id, kind, amount_milli, reason, metadata, balance_after,
                                        lifetime_after, created_at, idempotency_key, request_hash)
                 OVERRIDING SYSTEM VALUE
                 SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[],
                                      $7::text[], $8::int8[], $9::int8[], $10::int8[], $11::text[], $12::text[])",
            )
            .bind(rows.iter().map(|m| m.seq).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.id.as_str()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.user_id.as_str()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.kind.as_str()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.amount.milli()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.reason.as_str()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.metadata.as_deref()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.balance_after.milli()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.lifetime_after.milli()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.created_at_ms).collect::<Vec<_>>())
            .bind(key)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        }
        Page::Redemptions(rows) => {
            let d: Vec<&Redemption> = rows.iter().map(|r| &r.redemption).collect();
            let (key, hash) = keys_of(rows, |r| &r.idempotency);
            sqlx::query(
                "INSERT INTO redemptions (seq, id, reward_id, user_id, cost_milli, status, granted_by, created_at,
                                          updated_at, idempotency_key, request_hash)
                 OVERRIDING SYSTEM VALUE
                 SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[],
                                      $7::text[], $8::int8[], $9::int8[], $10::text[], $11::text[])",
            )
            .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.id.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.reward_id.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.user_id.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.cost.milli()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.status.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.granted_by.as_deref()).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.created_at_ms).collect::<Vec<_>>())
            .bind(d.iter().map(|d| d.updated_at_ms).collect::<Vec<_>>())
            .bind(key)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        }
        Page::Ledger(rows) => {
            sqlx::query(
                "INSERT INTO ledger (seq, user_id, kind, amount_milli, balance_after_milli, lifetime_after_milli,
                                     reference, created_at, rules_version)
                 OVERRIDING SYSTEM VALUE
                 SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[],
                                      $7::text[], $8::int8[], $9::int4[])",
            )
            .bind(rows.iter().map(|l| l.seq).collect::<Vec<_>>())
            .bind(rows.iter().map(|l| l.user_id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|l| l.kind.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|l| l.amount.milli()).collect::<Vec<_>>())
            .bind(rows.iter().map(|l| l.balance_after.milli()).collect::<Vec<_>>())
            .bind(rows.iter().map(|l| l.lifetime_after.milli()).collect::<Vec<_>>())
            .bind(rows.iter().map(|l| l.reference.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|l| l.created_at_ms).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|l| l.rules_version.map(|v| v as i32))
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
        }
        Page::Hidden(rows) => {
            sqlx::query(
                "INSERT INTO hidden_users (user_id, hidden_at)
                 SELECT * FROM unnest($1::text[], $2::int8[])",
            )
            .bind(rows.iter().map(|(u, _)| u.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|(_, at)| *at).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        Page::Erasures(rows) => {
            let r: Vec<&crate::Erasure> = rows.iter().map(|e| &e.erasure).collect();
            sqlx::query(
                "INSERT INTO erasures (id, user_hash, events, ledger_entries, movements, redemptions, erased_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[], $6::int8[],
                                      $7::int8[])",
            )
            .bind(r.iter().map(|e| e.id.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|e| e.user_hash.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.events as i64).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.ledger_entries as i64).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.movements as i64).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.redemptions as i64).collect::<Vec<_>>())
            .bind(r.iter().map(|e| e.erased_at_ms).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}
