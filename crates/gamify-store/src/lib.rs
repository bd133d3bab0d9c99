//! Storage for Gamify: one [`Store`] trait and its backends.
//!
//! The engine talks to storage only through [`Store`]. Each backend loads a
//! user's [`UserState`], lets [`gamify_core::apply_event`] decide what the
//! event earns, and writes the outcome back in one transaction, so the rules
//! live in one place and every backend applies them identically.
//!
//! Map of the crate:
//! - this file: the trait, the records it speaks in, and [`StoreError`].
//! - [`rows`]: rows as the backends store them, and their decoding.
//! - [`scoring`]: what every backend does with an event once it holds the
//!   user's state: the rules' verdict and the ledger rows it writes.
//! - [`analytics`]: the admin dashboard's numbers, as SQL both backends run.
//! - [`board`]: the leaderboards: what each counts, and their records.
//! - [`economy`]: the same for spending: movements, rewards, redemptions
//!   and the ledger.
//! - [`erasure`]: removing a person, and what is kept to refuse them after.
//! - [`export`]: every table, a keyset page at a time.
//! - [`webhook`]: what is worth telling apps, and the outbox of deliveries
//!   the writers fill in the transaction of the change.
//! - [`verify`]: the invariants of stored data, checked the same way on
//!   every backend.
//! - [`rank`]: an order-statistic index, the embedded leaderboards.
//! - [`sqlite`]: the embedded default, one file on disk, with group commit.
//! - [`postgres`]: one database shared by many nodes, with batched commits.
//! - `migrations/sqlite/`, `migrations/postgres/`: their schemas, forward-only.
//! - `tests/contract.rs`: the behaviour every backend must show.

pub mod analytics;
pub mod board;
pub mod cache;
pub mod economy;
pub mod erasure;
pub mod export;
pub mod keys;
pub mod postgres;
pub mod rank;
pub mod rows;
pub mod rulebook;
pub mod scoring;
pub mod sqlite;
pub mod tenants;
pub mod verify;
pub mod webhook;

use std::sync::Arc;

use async_trait::async_trait;
use gamify_core::{
    AchievementId, Action, Category, Points, Refusal, RuleError, UserId, UserState, Value,
};

pub use gamify_core::{CategoryTotal, add_to_category};
pub use rulebook::{RuleBook, RuleVersion};

pub use economy::{
    Expire, LedgerKind, LedgerPage, LedgerRecord, Moved, Movement, MovementKind, NewMovement,
    NewRedemption, Redeemed, Redemption, RedemptionStatus, Reward, RewardDraft, Settle,
};
pub use erasure::Erasure;
pub use verify::Finding;
pub use webhook::{Attempt, Delivery, DeliveryStatus, Due, Subscription};

/// An event that passed validation, ready to be scored and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Its id (`evt_…`), chosen by the caller.
    pub id: String,
    /// Whose event it is.
    pub user_id: UserId,
    /// Its category.
    pub category: Category,
    /// What the user did.
    pub action: Action,
    /// Its size.
    pub value: Value,
    /// A JSON object as text, if any.
    pub metadata: Option<String>,
    /// When it happened (Unix ms); decides the streak day.
    pub occurred_at_ms: i64,
    /// When it was received (Unix ms).
    pub created_at_ms: i64,
    /// The idempotency key and a fingerprint of the request it came with.
    pub idempotency: Option<Idempotency>,
    /// The version of the rules it was checked against, and is scored with
    /// (one the store's [`RuleBook`] has).
    pub rules_version: u32,
}

/// An idempotency key with the fingerprint of the request that used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key.
    pub key: String,
    /// A hash of the request body; a reuse with another body is a conflict.
    pub fingerprint: String,
}

/// A stored event with what it earned.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// `evt_…`
    pub id: String,
    /// Whose event it is.
    pub user_id: String,
    /// Its category.
    pub category: Category,
    /// What the user did.
    pub action: String,
    /// Its size.
    pub value: Value,
    /// Its own points (streak bonus included, achievement bonuses not).
    pub points: Points,
    /// The category weight applied, in thousandths.
    pub weight_milli: i64,
    /// The streak ending on its day when it was recorded.
    pub streak_day: u32,
    /// The streak bonus applied, in percent.
    pub bonus_percent: u32,
    /// Achievements it unlocked, with their bonuses.
    pub unlocked: Vec<(AchievementId, Points)>,
    /// Spendable balance right after it.
    pub total_after: Points,
    /// Lifetime points right after it.
    pub lifetime_after: Points,
    /// Its metadata as JSON text.
    pub metadata: Option<String>,
    /// When it happened (Unix ms).
    pub occurred_at_ms: i64,
    /// When it was recorded (Unix ms).
    pub created_at_ms: i64,
    /// The version of the rules it was scored with.
    pub rules_version: u32,
}

/// The outcome of [`Store::record_event`].
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// The event: the new one, or the original for a replayed idempotency key.
    pub event: EventRecord,
    /// True when the key had been used with the same request before and
    /// nothing new was recorded.
    pub replayed: bool,
}

/// A user's current state as stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserSnapshot {
    /// What the rules need.
    pub state: UserState,
    /// How many events the user has.
    pub event_count: u64,
    /// The latest `occurred_at` (Unix ms).
    pub last_event_at_ms: Option<i64>,
    /// Grows by one with every change to the user; a copy with a higher
    /// version is newer.
    pub version: u64,
}

/// One leaderboard row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderRow {
    /// 1-based position.
    pub rank: u64,
    /// The user.
    pub user_id: String,
    /// Lifetime points, the ranking key.
    pub lifetime: Points,
    /// Spendable balance.
    pub total: Points,
}

/// A page of a user's events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events.
    pub events: Vec<EventRecord>,
    /// Pass as `before` to read the next, older page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl EventPage {
    /// A page from up to `limit + 1` events, newest first: the extra one,
    /// if there, only says that older events remain.
    pub fn from_overfetch(mut events: Vec<EventRecord>, limit: u32) -> EventPage {
        let next_cursor = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events.last().map(|e| e.id.clone())
        } else {
            None
        };
        EventPage {
            events,
            next_cursor,
        }
    }
}

/// Which users a sweep walks ([`Store::users_where`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFilter {
    /// Users holding points (what an expiry sweep walks).
    Holding,
    /// Users whose latest event occurred in `[from_ms, to_ms)`.
    LastActive {
        /// From (Unix ms, inclusive).
        from_ms: i64,
        /// To (Unix ms, exclusive).
        to_ms: i64,
    },
}

impl UserFilter {
    /// Its condition on `users` (both backends name the columns alike),
    /// with its bounds inlined: they are integers.
    pub(crate) fn sql(self) -> String {
        match self {
            UserFilter::Holding => "total_milli > 0".to_owned(),
            UserFilter::LastActive { from_ms, to_ms } => {
                format!("last_event_at >= {from_ms} AND last_event_at < {to_ms}")
            }
        }
    }
}

/// A value a store reports for monitoring, as of now.
#[derive(Debug, Clone, PartialEq)]
pub struct Gauge {
    /// Its Prometheus name (`gamify_…`).
    pub name: &'static str,
    /// What it measures.
    pub help: &'static str,
    /// Its value.
    pub value: f64,
}

/// Why storage could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The idempotency key was used before with a different request.
    #[error("idempotency key was already used with a different request")]
    IdempotencyConflict,
    /// The paging cursor names no event of this user.
    #[error("cursor does not name an event of this user")]
    UnknownCursor,
    /// The request is refused by the rules of spending; nothing changed.
    #[error(transparent)]
    Refused(Refusal),
    /// The thing named does not exist: `reward` or `redemption`.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// A reward with this id exists already.
    #[error("a {0} with this id exists already")]
    AlreadyExists(&'static str),
    /// A reward's stock cannot be set below the units already redeemed.
    #[error("stock must be at least the {0} units already redeemed")]
    StockBelowRedeemed(u32),
    /// The redemption is no longer pending and cannot take that status.
    #[error("the redemption is {} and can no longer change", .0.as_str())]
    RedemptionClosed(RedemptionStatus),
    /// The user was erased: nothing is recorded for that id any more.
    #[error("this user was erased; nothing more is recorded for them")]
    Erased,
    /// The rules refused the event (an overflow; validation happens earlier).
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The store is shutting down or its writer has stopped.
    #[error("store unavailable: {0}")]
    Unavailable(&'static str),
    /// The leaderboards cannot be read right now (Redis is unreachable or
    /// the boards are being rebuilt); everything else works.
    #[error("{0}")]
    BoardsUnavailable(&'static str),
    /// The database holds something this binary cannot read.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// Another process holds the database file.
    #[error("another gamify process is using {0}; one process owns an SQLite database")]
    InUse(std::path::PathBuf),
    /// The schema is not this binary's, or a migration failed.
    #[error("schema: {0}")]
    Schema(String),
    /// The settings are unusable, or the database cannot be reached at start.
    #[error("{0}")]
    Config(String),
    /// The backend failed.
    #[error("database error")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Storage for the engine. Every method is safe to call concurrently; each
/// user's updates are serialised by the backend's transactions.
#[async_trait]
pub trait Store: Send + Sync {
    /// Scores and stores one event, or returns the original event when its
    /// idempotency key was used before with the same request. Returns only
    /// once the event is durable.
    async fn record_event(&self, event: NewEvent) -> Result<Recorded, StoreError>;

    /// The user's state (per-category totals included), or `None` for a
    /// user whose points never moved (no event, no adjustment).
    async fn user(&self, user_id: &UserId) -> Result<Option<Arc<UserSnapshot>>, StoreError>;

    /// Up to `limit` of the user's events, newest `occurred_at` first (ties by
    /// arrival, newest first), older than the event `before` names if given.
    async fn events(
        &self,
        user_id: &UserId,
        limit: u32,
        before: Option<&str>,
    ) -> Result<EventPage, StoreError>;

    /// The top `limit` users by lifetime points, ties by user id ascending
    /// (the all-time board), with their balances.
    async fn leaderboard(&self, limit: u32) -> Result<Vec<LeaderRow>, StoreError> {
        let rows = self
            .board(
                board::BoardKey::ALL_TIME,
                gamify_core::Window::ALL_TIME,
                None,
                limit,
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = UserId::parse(&row.user_id).map_err(|_| corrupt("user id", &row.user_id))?;
            let total = self
                .user(&id)
                .await?
                .map_or(Points::ZERO, |s| s.state.total);
            out.push(LeaderRow {
                rank: row.rank,
                user_id: row.user_id,
                lifetime: row.points,
                total,
            });
        }
        Ok(out)
    }

    /// A page of a board's window (see [`board`]): up to `limit` rows after
    /// `after`'s place, or from the top.
    async fn board(
        &self,
        key: board::BoardKey,
        window: gamify_core::Window,
        after: Option<board::Cursor>,
        limit: u32,
    ) -> Result<Vec<board::BoardRow>, StoreError>;

    /// A number that changes whenever a board page ([`Store::board`], with
    /// the balances and levels of its users) could read differently, taken
    /// once every write acknowledged before the call is on the boards; a
    /// page read after taking it may be reused while it stays the same.
    /// `None` where the store cannot tell (other nodes write too): then
    /// every page is read afresh.
    async fn board_stamp(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// A user's rank and points on a board's window, and the `k` users
    /// just above and below them.
    async fn standing(
        &self,
        key: board::BoardKey,
        window: gamify_core::Window,
        user_id: &UserId,
        k: u32,
    ) -> Result<board::Standing, StoreError>;

    /// Hides the user from every board (they keep their points and see
    /// their own standing), or shows them again. [`StoreError::Erased`]
    /// for an erased user.
    async fn set_hidden(
        &self,
        user_id: &UserId,
        hidden: bool,
        at_ms: i64,
    ) -> Result<(), StoreError>;

    /// Rebuilds the leaderboards from the stored rows where they are kept
    /// apart from them (Redis); returns how many board entries were written,
    /// or `None` where there is nothing to rebuild (the embedded index is
    /// rebuilt at every start; SQL boards are the rows themselves).
    async fn rebuild_boards(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Checks that the store can read and write.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The node stops serving: gives up what it holds that others wait for
    /// (PostgreSQL's exclusive lease). The store stays usable.
    async fn close(&self) {}

    /// The store's own gauges for `GET /metrics` (connection pool, …).
    fn gauges(&self) -> Vec<Gauge> {
        Vec::new()
    }

    /// Applies a spend or an adjustment, or returns the original for a
    /// replayed idempotency key. A debit beyond the balance is refused with
    /// [`Refusal::InsufficientPoints`] and changes nothing.
    async fn move_points(&self, movement: NewMovement) -> Result<Moved, StoreError>;

    /// Up to `limit` of the user's ledger entries, newest first, older than
    /// the entry `before` (a [`LedgerRecord::seq`]) if given.
    async fn ledger(
        &self,
        user_id: &UserId,
        limit: u32,
        before: Option<i64>,
    ) -> Result<LedgerPage, StoreError>;

    /// Creates a reward (`create`: [`StoreError::AlreadyExists`] if the id
    /// is taken) or replaces an existing one's terms
    /// ([`StoreError::NotFound`] if none). Its redeemed count is kept.
    async fn save_reward(&self, draft: RewardDraft, create: bool) -> Result<Reward, StoreError>;

    /// The whole catalogue, inactive rewards included, by id.
    async fn rewards(&self) -> Result<Vec<Reward>, StoreError>;

    /// Redeems a reward: checks it and the balance, takes a unit of stock and
    /// the points, all or nothing. A replayed key returns the original.
    async fn redeem(&self, redemption: NewRedemption) -> Result<Redeemed, StoreError>;

    /// Fulfils or cancels a pending redemption; cancelling refunds its points
    /// and returns its unit.
    async fn settle(&self, settle: Settle) -> Result<Redemption, StoreError>;

    /// Redemptions, newest first, optionally of one user and one status,
    /// older than the redemption `before` if given; at most `limit`.
    async fn redemptions(
        &self,
        user_id: Option<&UserId>,
        status: Option<RedemptionStatus>,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<Redemption>, StoreError>;

    /// Checks every invariant of the stored data (see [`verify`]) and
    /// returns what breaks them; empty when all hold.
    async fn verify(&self) -> Result<Vec<Finding>, StoreError>;

    /// The points credited to the user (see [`economy::CREDIT_SQL`]) at or
    /// after `since_ms`.
    async fn credited_since(&self, user_id: &UserId, since_ms: i64) -> Result<Points, StoreError>;

    /// Expires what is due of the user's points at `at_ms` (those credited
    /// before `cutoff_ms` and still held) with one `expiry` ledger entry;
    /// returns how many expired. Decided under the user's serialisation, so
    /// a concurrent spend is never double-counted.
    async fn expire(
        &self,
        user_id: &UserId,
        cutoff_ms: i64,
        at_ms: i64,
    ) -> Result<Points, StoreError>;

    /// Erases the user (see [`erasure`]): every row that names them goes,
    /// in one step, and a record with a hash of the id stays, with `id`
    /// (`era_…`) and `at_ms`. Erasing again answers with the first
    /// erasure's record; a user never seen is [`StoreError::NotFound`].
    /// From then on every write for the id is [`StoreError::Erased`].
    async fn erase(&self, user_id: &UserId, id: &str, at_ms: i64) -> Result<Erasure, StoreError>;

    /// The erasure of this user id, if it was erased (see [`Store::erase`]):
    /// what a read can say about writes that [`StoreError::Erased`] would
    /// refuse.
    async fn erasure(&self, user_id: &UserId) -> Result<Option<Erasure>, StoreError>;

    /// Users that `filter` selects, by id, after `after`; at most `limit`.
    /// What the sweeps (expiry, streak notices) walk, a page at a time.
    async fn users_where(
        &self,
        filter: UserFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;

    /// Writes the rows of an export page as they are (ids, arrival numbers,
    /// idempotency keys kept), for an import into a store that held nothing
    /// before it began. On SQLite the users' rows are not written but
    /// rebuilt from the log, so the store must be reopened after an import
    /// before it is used.
    async fn import_page(&self, page: export::Page) -> Result<(), StoreError>;

    /// Up to `limit` rows of `table` after `after`, as `filter` selects, in
    /// the table's export order (see [`export`]). An empty page ends it.
    async fn export_page(
        &self,
        table: export::Table,
        after: export::After,
        filter: &export::ExportFilter,
        limit: u32,
    ) -> Result<export::Page, StoreError>;

    /// Adds a webhook subscription. From its commit on, every write that
    /// gives a notice it wants also writes a delivery for it, in the same
    /// transaction (on PostgreSQL, nodes other than this one pick it up
    /// within a second).
    async fn subscribe(&self, subscription: Subscription) -> Result<(), StoreError>;

    /// The subscriptions not deleted, oldest first.
    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;

    /// Whether a subscription with this id was ever made, deleted ones
    /// included (their delivery logs stay readable).
    async fn subscription_made(&self, id: &str) -> Result<bool, StoreError>;

    /// Deletes a subscription at `at_ms`: no new deliveries for it, and
    /// those still pending are cancelled. Unknown or already deleted:
    /// [`StoreError::NotFound`] (`webhook`).
    async fn unsubscribe(&self, id: &str, at_ms: i64) -> Result<(), StoreError>;

    /// Up to `limit` pending deliveries due at `now_ms`, oldest first, with
    /// where to send them (none if the subscription was deleted: the worker
    /// cancels those). Each is leased
    /// until `now_ms + lease_ms` (not handed out again before, by any
    /// node) unless [`Store::delivery_attempted`] records it first.
    async fn due_deliveries(
        &self,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<Due>, StoreError>;

    /// Records attempts' outcomes, in one transaction.
    async fn delivery_attempted(&self, attempts: Vec<Attempt>) -> Result<(), StoreError>;

    /// A subscription's deliveries, newest first, before `before` (a
    /// delivery's `seq`), with `status` if given; at most `limit`.
    async fn deliveries(
        &self,
        subscription_id: &str,
        status: Option<DeliveryStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Makes a delivery pending and due at `at_ms` again, whatever its
    /// status (an admin's replay); its attempts so far are kept. Unknown:
    /// [`StoreError::NotFound`] (`delivery`).
    async fn replay_delivery(&self, id: &str, at_ms: i64) -> Result<Delivery, StoreError>;

    /// The dashboard's numbers: users with events (and of them those whose
    /// latest event occurred at or after each of `active_since`), events,
    /// points, per category, and per day from `days_from_ms`. Sees every
    /// write acknowledged before it.
    async fn analytics(
        &self,
        active_since: Vec<i64>,
        days_from_ms: i64,
    ) -> Result<analytics::Analytics, StoreError>;

    /// How many deliveries are pending: the outbox's depth.
    async fn pending_deliveries(&self) -> Result<u64, StoreError>;

    /// Deletes up to `limit` finished deliveries (delivered, failed or
    /// cancelled) made before `before_ms` and last tried before it too (a
    /// replayed one counts from its latest attempt); pending ones are kept
    /// whatever their age. Returns how many it deleted: fewer than `limit`
    /// means none of that age is left. Several nodes may prune at once.
    async fn prune_deliveries(&self, before_ms: i64, limit: u32) -> Result<u64, StoreError>;

    /// Writes a delivery of each notice to every subscription that wants
    /// it, as a write's notices are (for what no write causes: the streak
    /// sweeps). A notice already delivered or pending (the same key) is not
    /// written again, so a sweep repeated by a restart or by another node
    /// sends nothing twice. A notice about a user erased since the sweep
    /// read them is dropped.
    async fn notify(&self, notices: Vec<webhook::Notice>) -> Result<(), StoreError>;

    // API keys.

    /// Stores a new key (`AlreadyExists` if its id or secret is taken).
    async fn create_key(&self, key: keys::ApiKey) -> Result<(), StoreError>;

    /// Every key, revoked ones too, oldest first.
    async fn keys(&self) -> Result<Vec<keys::ApiKey>, StoreError>;

    /// Revokes a key; revoking it again changes nothing (`NotFound` if
    /// there is no such key).
    async fn revoke_key(&self, id: &str, at_ms: i64) -> Result<(), StoreError>;

    // Rules.

    /// Every version of the rules this store knows, shared: new events name
    /// its current version ([`NewEvent::rules_version`]).
    fn rule_book(&self) -> Arc<RuleBook>;

    /// Makes `rules` the current version: adds them as the next version,
    /// unless they are the current version's already. Returns the version
    /// that holds them.
    async fn add_rules(
        &self,
        rules: gamify_core::RuleSet,
        at_ms: i64,
    ) -> Result<Arc<RuleVersion>, StoreError>;

    /// Picks up versions that other processes added (a no-op where no other
    /// process writes).
    async fn refresh_rules(&self) -> Result<(), StoreError>;

    /// The tenants besides the default one, oldest first (kept in the
    /// default tenant's store; see [`tenants`]).
    async fn tenants(&self) -> Result<Vec<tenants::Tenant>, StoreError>;

    /// Adds a tenant to the list; [`StoreError::AlreadyExists`] if its name
    /// is taken.
    async fn add_tenant(&self, tenant: tenants::Tenant) -> Result<(), StoreError>;
}

/// The newest version in `book` whose rules are `rules`: what
/// [`Store::add_rules`] answers once it has added them (or found them
/// current).
pub fn version_holding(
    book: &RuleBook,
    rules: &gamify_core::RuleSet,
) -> Result<Arc<RuleVersion>, StoreError> {
    book.all()
        .into_iter()
        .rev()
        .find(|v| *v.rules == *rules)
        .ok_or_else(|| StoreError::Corrupt("the rules just added are not in the book".into()))
}

/// Encodes the achievements an event unlocked: `id:bonus_milli,…`.
pub fn encode_unlocked(unlocked: &[(AchievementId, Points)]) -> String {
    comma_separated(unlocked, 16, |out, digits, (id, bonus)| {
        out.push_str(id.as_str());
        out.push(':');
        out.push_str(digits.format(bonus.milli()));
    })
}

/// Decodes [`encode_unlocked`].
pub fn decode_unlocked(text: &str) -> Result<Vec<(AchievementId, Points)>, StoreError> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (id, milli) = part
                .split_once(':')
                .ok_or_else(|| corrupt("unlocked", part))?;
            let id = AchievementId::parse(id).ok_or_else(|| corrupt("achievement id", id))?;
            let milli = milli.parse().map_err(|_| corrupt("bonus", milli))?;
            Ok((id, Points::from_milli(milli)))
        })
        .collect()
}

/// Encodes per-category totals: `category:events:points_milli,…`.
pub fn encode_categories(totals: &[CategoryTotal]) -> String {
    comma_separated(totals, 24, |out, digits, t| {
        out.push_str(t.category.as_str());
        out.push(':');
        out.push_str(digits.format(t.events));
        out.push(':');
        out.push_str(digits.format(t.points.milli()));
    })
}

/// `items`, each written by `write`, comma-separated. Written field by
/// field: a `format!` per part cost about 6% of the SQLite materializer's
/// instructions (callgrind). `per_item`: the bytes to reserve for each.
fn comma_separated<T>(
    items: &[T],
    per_item: usize,
    mut write: impl FnMut(&mut String, &mut itoa::Buffer, &T),
) -> String {
    let mut out = String::with_capacity(items.len() * per_item);
    let mut digits = itoa::Buffer::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(&mut out, &mut digits, item);
    }
    out
}

/// Decodes [`encode_categories`].
pub fn decode_categories(text: &str) -> Result<Vec<CategoryTotal>, StoreError> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|part| {
            let mut fields = part.split(':');
            let (Some(c), Some(n), Some(p), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(corrupt("category totals", part));
            };
            Ok(CategoryTotal {
                category: Category::named(c).ok_or_else(|| corrupt("category", c))?,
                events: n.parse().map_err(|_| corrupt("event count", n))?,
                points: Points::from_milli(p.parse().map_err(|_| corrupt("points", p))?),
            })
        })
        .collect()
}

/// Encodes a user's unlocked achievements: ids, comma-separated.
pub fn encode_achievements(ids: &[AchievementId]) -> String {
    ids.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(",")
}

/// Decodes [`encode_achievements`].
pub fn decode_achievements(text: &str) -> Result<Vec<AchievementId>, StoreError> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(|id| AchievementId::parse(id).ok_or_else(|| corrupt("achievement id", id)))
        .collect()
}

/// What a write refused because the embedded database's disk is full says
/// (a 503: once the operator frees space, the same request succeeds).
pub const DISK_FULL: &str = "the database's disk is full";

/// A [`StoreError::Backend`] wrapping a backend's own error; but a full
/// disk is [`StoreError::Unavailable`] ([`DISK_FULL`]), as PostgreSQL's
/// is (class 53), since nothing is wrong with the request.
pub(crate) fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    let sqlite = (&e as &dyn std::any::Any).downcast_ref::<rusqlite::Error>();
    if sqlite.and_then(rusqlite::Error::sqlite_error_code) == Some(rusqlite::ErrorCode::DiskFull) {
        return StoreError::Unavailable(DISK_FULL);
    }
    StoreError::Backend(Box::new(e))
}

/// `bytes` in lower-case hex: how hashes, ids and secrets are written.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A [`StoreError::Corrupt`] naming what could not be read.
pub fn corrupt(what: &str, found: &str) -> StoreError {
    StoreError::Corrupt(format!("unreadable {what}: {found:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_unavailable_and_other_failures_are_backend_errors() {
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        assert!(matches!(
            backend(failure(rusqlite::ffi::SQLITE_FULL)),
            StoreError::Unavailable(DISK_FULL)
        ));
        assert!(matches!(
            backend(failure(rusqlite::ffi::SQLITE_CORRUPT)),
            StoreError::Backend(_)
        ));
        assert!(matches!(
            backend(std::io::Error::other("elsewhere")),
            StoreError::Backend(_)
        ));
    }

    #[test]
    fn stored_texts_keep_their_form_and_read_back() {
        let totals = vec![
            CategoryTotal {
                category: Category::FINANCE,
                events: 12,
                points: Points::from_milli(-1),
            },
            CategoryTotal {
                category: Category::HEALTH,
                events: u64::MAX,
                points: Points::from_milli(i64::MAX),
            },
        ];
        let text = encode_categories(&totals);
        assert_eq!(
            text,
            format!("finance:12:-1,health:{}:{}", u64::MAX, i64::MAX)
        );
        assert_eq!(decode_categories(&text).unwrap(), totals);
        assert_eq!(encode_categories(&[]), "");

        let unlocked = vec![
            (AchievementId::STREAK_3, Points::from_milli(5_000)),
            (AchievementId::POINTS_100, Points::ZERO),
        ];
        let text = encode_unlocked(&unlocked);
        assert_eq!(text, "streak_3:5000,points_100:0");
        assert_eq!(decode_unlocked(&text).unwrap(), unlocked);
        assert_eq!(encode_unlocked(&[]), "");
    }
}
