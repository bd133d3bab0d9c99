//! Taking all the data out, a page at a time: every table in a stable order
//! (arrival order, or id), read by keyset pages so that memory stays flat
//! whatever the size. Both backends answer [`crate::Store::export_page`];
//! the engine turns the rows into NDJSON.

use gamify_core::UserId;

use crate::{Erasure, EventRecord, LedgerRecord, Movement, Redemption, Reward, UserSnapshot};

/// What an export covers. Times are Unix ms, `from` inclusive, `to`
/// exclusive; they select events by when they occurred, and ledger entries,
/// movements and redemptions by when they were written. Users' balances,
/// the catalogue and the erasures are current, whatever the range (with a
/// user, only that user's erasure, found by the hash of the id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    /// Only this user's data (and the whole catalogue).
    pub user: Option<UserId>,
    /// From this time on.
    pub from_ms: Option<i64>,
    /// Before this time.
    pub to_ms: Option<i64>,
}

impl ExportFilter {
    /// The user id to compare with, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user.as_ref().map(UserId::as_str)
    }

    /// The range as bounds an SQL `BETWEEN`-like check can take.
    pub fn bounds(&self) -> (i64, i64) {
        (
            self.from_ms.unwrap_or(i64::MIN),
            self.to_ms.unwrap_or(i64::MAX),
        )
    }
}

/// The tables, in the order an export writes them: the catalogue first
/// (redemptions name rewards), then users' current state, then the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `rewards`, by id.
    Rewards,
    /// `users`: current balances, streaks, achievements; by user id.
    Users,
    /// `events`, in arrival order.
    Events,
    /// `movements` (spends and adjustments), in arrival order.
    Movements,
    /// `redemptions`, in arrival order.
    Redemptions,
    /// `ledger`, in order.
    Ledger,
    /// `erasures`, by id: what refuses erased users, wherever the data goes.
    Erasures,
    /// `hidden_users`, by user id: who opted out of the leaderboards.
    Hidden,
}

impl Table {
    /// All of them, in export order.
    pub const ALL: [Table; 8] = [
        Table::Rewards,
        Table::Users,
        Table::Events,
        Table::Movements,
        Table::Redemptions,
        Table::Ledger,
        Table::Erasures,
        Table::Hidden,
    ];

    /// The record type an export line carries.
    pub fn record_type(self) -> &'static str {
        match self {
            Table::Rewards => "reward",
            Table::Users => "user",
            Table::Events => "event",
            Table::Movements => "movement",
            Table::Redemptions => "redemption",
            Table::Ledger => "ledger",
            Table::Erasures => "erasure",
            Table::Hidden => "hidden_user",
        }
    }
}

/// Where a page starts: after this arrival number, or after this id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// From the beginning.
    Start,
    /// After the row with this `seq` (events, movements, redemptions, ledger).
    Seq(i64),
    /// After the row with this id (rewards, users, erasures).
    Id(String),
}

/// An event as stored, with what an import needs beyond [`EventRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedEvent {
    /// Arrival number.
    pub seq: i64,
    /// The event.
    pub record: EventRecord,
    /// Its idempotency key and request fingerprint, if it came with one.
    pub idempotency: Option<(String, String)>,
}

/// A movement as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedMovement {
    /// Arrival number.
    pub seq: i64,
    /// The movement.
    pub movement: Movement,
    /// Its idempotency key and request fingerprint, if any.
    pub idempotency: Option<(String, String)>,
}

/// A redemption as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedRedemption {
    /// Arrival number.
    pub seq: i64,
    /// The redemption.
    pub redemption: Redemption,
    /// Its idempotency key and request fingerprint, if any.
    pub idempotency: Option<(String, String)>,
}

/// An erasure as stored: its record and the hash of the erased id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedErasure {
    /// [`crate::erasure::user_hash`] of the erased id.
    pub user_hash: String,
    /// The record.
    pub erasure: Erasure,
}

/// One page of one table.
#[derive(Debug, Clone, PartialEq)]
pub enum Page {
    /// Rewards.
    Rewards(Vec<Reward>),
    /// Users and their state.
    Users(Vec<(String, UserSnapshot)>),
    /// Events.
    Events(Vec<ExportedEvent>),
    /// Movements.
    Movements(Vec<ExportedMovement>),
    /// Redemptions.
    Redemptions(Vec<ExportedRedemption>),
    /// Ledger entries.
    Ledger(Vec<LedgerRecord>),
    /// Erasures.
    Erasures(Vec<ExportedErasure>),
    /// Users hidden from the leaderboards, and since when (Unix ms).
    Hidden(Vec<(String, i64)>),
}

impl Page {
    /// How many rows it holds.
    pub fn len(&self) -> usize {
        match self {
            Page::Rewards(v) => v.len(),
            Page::Users(v) => v.len(),
            Page::Events(v) => v.len(),
            Page::Movements(v) => v.len(),
            Page::Redemptions(v) => v.len(),
            Page::Ledger(v) => v.len(),
            Page::Erasures(v) => v.len(),
            Page::Hidden(v) => v.len(),
        }
    }

    /// Whether it is empty (the table is done).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the next page starts.
    pub fn next(&self) -> After {
        let last_seq = |s: Option<i64>| s.map_or(After::Start, After::Seq);
        let last_id = |s: Option<&String>| s.map_or(After::Start, |id| After::Id(id.clone()));
        match self {
            Page::Rewards(v) => last_id(v.last().map(|r| &r.draft.id)),
            Page::Users(v) => last_id(v.last().map(|(id, _)| id)),
            Page::Events(v) => last_seq(v.last().map(|e| e.seq)),
            Page::Movements(v) => last_seq(v.last().map(|m| m.seq)),
            Page::Redemptions(v) => last_seq(v.last().map(|r| r.seq)),
            Page::Ledger(v) => last_seq(v.last().map(|l| l.seq)),
            Page::Erasures(v) => last_id(v.last().map(|e| &e.erasure.id)),
            Page::Hidden(v) => last_id(v.last().map(|(u, _)| u)),
        }
    }
}

/// The columns of `erasures` an export reads, in [`erasure_from`]'s order.
pub const ERASURE_COLUMNS: &str =
    "id, user_hash, erased_at, events, ledger_entries, movements, redemptions";

/// An exported erasure from [`ERASURE_COLUMNS`], whatever the backend's row
/// type: `get(i)` reads column `i` as text or integer.
pub fn erasure_from<E>(
    text: impl Fn(usize) -> Result<String, E>,
    int: impl Fn(usize) -> Result<i64, E>,
) -> Result<ExportedErasure, E> {
    Ok(ExportedErasure {
        user_hash: text(1)?,
        erasure: Erasure {
            id: text(0)?,
            erased_at_ms: int(2)?,
            events: int(3)? as u64,
            ledger_entries: int(4)? as u64,
            movements: int(5)? as u64,
            redemptions: int(6)? as u64,
        },
    })
}
