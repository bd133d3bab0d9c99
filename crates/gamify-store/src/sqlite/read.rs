//! Queries. Used by the read pool and, for the user's state, by the writer.

use gamify_core::{Points, UserId};
use rusqlite::{CachedStatement, Connection, OptionalExtension, Row, params};

use super::backend;
use crate::export::{
    After, ERASURE_COLUMNS, ExportFilter, ExportedEvent, ExportedMovement, ExportedRedemption,
    Page, Table, erasure_from,
};
use crate::rows::{StoredEvent, StoredLedger, StoredRedemption, StoredUser};
use crate::{
    EventPage, EventRecord, LedgerPage, Movement, MovementKind, Redemption, RedemptionStatus,
    Reward, RewardDraft, StoreError, UserSnapshot,
};

const EVENT_COLUMNS: &str =
    "id, user_id, category, action, value_milli, points_milli, weight_milli, streak_day,
    bonus_percent, unlocked, total_after, lifetime_after, metadata, occurred_at, created_at, rules_version";
/// The same, of `events e` in a join.
const EVENT_COLUMNS_OF_E: &str =
    "e.id, e.user_id, e.category, e.action, e.value_milli, e.points_milli, e.weight_milli, e.streak_day,
    e.bonus_percent, e.unlocked, e.total_after, e.lifetime_after, e.metadata, e.occurred_at, e.created_at,
    e.rules_version";

const USER_COLUMNS: &str = "total_milli, lifetime_milli, best_streak, streak_runs, achievements,
    event_count, last_event_at, version, category_totals";

/// A user's [`USER_COLUMNS`], starting at column `o`.
fn user_at(r: &Row<'_>, o: usize) -> rusqlite::Result<StoredUser> {
    Ok(StoredUser {
        total_milli: r.get(o)?,
        lifetime_milli: r.get(o + 1)?,
        best_streak: r.get(o + 2)?,
        streak_runs: r.get(o + 3)?,
        achievements: r.get(o + 4)?,
        event_count: r.get(o + 5)?,
        last_event_at: r.get(o + 6)?,
        version: r.get(o + 7)?,
        category_totals: r.get(o + 8)?,
    })
}

/// The user's stored state.
pub fn user(conn: &Connection, user_id: &UserId) -> Result<Option<UserSnapshot>, StoreError> {
    user_by(&mut user_statement(conn)?, user_id)
}

/// The statement [`user_by`] runs, to keep for several users.
pub fn user_statement(conn: &Connection) -> Result<CachedStatement<'_>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE user_id = ?1"
    ))
    .map_err(backend)
}

/// The user's stored state, by a statement from [`user_statement`].
pub fn user_by(
    statement: &mut CachedStatement<'_>,
    user_id: &UserId,
) -> Result<Option<UserSnapshot>, StoreError> {
    statement
        .query_row([user_id.as_str()], |r| user_at(r, 0))
        .optional()
        .map_err(backend)?
        .map(StoredUser::decode)
        .transpose()
}

/// One event by id.
pub fn event_by_id(conn: &Connection, id: &str) -> Result<Option<EventRecord>, StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1");
    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([id], raw_event).optional())
        .map_err(backend)?;
    raw.map(StoredEvent::decode).transpose()
}

/// Above this many, a user's unindexed rows are read by one scan of the
/// log from the first of them rather than one lookup each.
const LOOKUPS: usize = 64;

/// How a listing reads the user's rows past its snapshot's mark `through`
/// (those at or below it are in the index too), given their `seq`s
/// (`super::unindexed`): `(by_seq, seq)` for each, or for many,
/// `(from_seq, first)` once.
fn tail_reads<'a>(
    unindexed: &[i64],
    through: i64,
    by_seq: &'a str,
    from_seq: &'a str,
) -> Vec<(&'a str, i64)> {
    let left = &unindexed[unindexed.partition_point(|&seq| seq <= through)..];
    match left {
        [] => Vec::new(),
        [first, ..] if left.len() > LOOKUPS => vec![(from_seq, *first)],
        _ => left.iter().map(|&seq| (by_seq, seq)).collect(),
    }
}

/// A page of the user's events, newest first: those `user_events` lists, and
/// those logged since it was last brought up to date, looked up by their
/// `seq`s in `unindexed` (taken before this call: see `super::unindexed`),
/// read in one snapshot.
pub fn events(
    conn: &Connection,
    user_id: &UserId,
    limit: u32,
    before: Option<&str>,
    unindexed: &[i64],
) -> Result<EventPage, StoreError> {
    let user = user_id.as_str();
    let snapshot = conn.unchecked_transaction().map_err(backend)?;
    // The cursor is an event id; page from its (occurred_at, seq) position.
    let position: (i64, i64) = match before {
        None => (i64::MAX, i64::MAX),
        Some(id) => snapshot
            .prepare_cached("SELECT occurred_at, seq FROM events WHERE id = ?1 AND user_id = ?2")
            .and_then(|mut s| {
                s.query_row([id, user], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(backend)?
            .ok_or(StoreError::UnknownCursor)?,
    };
    let through: i64 = snapshot
        .prepare_cached("SELECT through_seq FROM materialized WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(backend)?;
    let want = i64::from(limit) + 1;
    let indexed = format!(
        "SELECT {EVENT_COLUMNS_OF_E}, e.seq FROM user_events u JOIN events e ON e.seq = u.seq
         WHERE u.user_id = ?1 AND (u.occurred_at, u.seq) < (?2, ?3)
         ORDER BY u.occurred_at DESC, u.seq DESC LIMIT ?4"
    );
    let by_seq = format!(
        "SELECT {EVENT_COLUMNS}, seq FROM events
         WHERE seq = ?4 AND user_id = ?1 AND (occurred_at, seq) < (?2, ?3)"
    );
    let from_seq = format!(
        "SELECT {EVENT_COLUMNS}, seq FROM events
         WHERE seq >= ?4 AND user_id = ?1 AND (occurred_at, seq) < (?2, ?3)"
    );
    let mut rows: Vec<(StoredEvent, i64)> = Vec::new();
    let reads = std::iter::once((indexed.as_str(), want))
        .chain(tail_reads(unindexed, through, &by_seq, &from_seq));
    for (sql, last) in reads {
        let mut stmt = snapshot.prepare_cached(sql).map_err(backend)?;
        let found = stmt
            .query_map(params![user, position.0, position.1, last], |r| {
                let mut o = 0;
                let raw = event_at(r, &mut o)?;
                Ok((raw, r.get::<_, i64>(o)?))
            })
            .map_err(backend)?;
        for row in found {
            rows.push(row.map_err(backend)?);
        }
    }
    drop(snapshot);
    rows.sort_unstable_by_key(|(raw, seq)| std::cmp::Reverse((raw.occurred_at, *seq)));
    rows.truncate(want as usize);
    let mut events = Vec::with_capacity(rows.len());
    for (raw, _) in rows {
        events.push(raw.decode()?);
    }
    Ok(EventPage::from_overfetch(events, limit))
}

fn raw_event(r: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    event_at(r, &mut 0)
}

/// An event's [`EVENT_COLUMNS`], starting at column `*o`, which is moved
/// past them.
fn event_at(r: &Row<'_>, o: &mut usize) -> rusqlite::Result<StoredEvent> {
    let mut next = || {
        *o += 1;
        *o - 1
    };
    Ok(StoredEvent {
        id: r.get(next())?,
        user_id: r.get(next())?,
        category: r.get(next())?,
        action: r.get(next())?,
        value_milli: r.get(next())?,
        points_milli: r.get(next())?,
        weight_milli: r.get(next())?,
        streak_day: r.get(next())?,
        bonus_percent: r.get(next())?,
        unlocked: r.get(next())?,
        total_after: r.get(next())?,
        lifetime_after: r.get(next())?,
        metadata: r.get(next())?,
        occurred_at: r.get(next())?,
        created_at: r.get(next())?,
        rules_version: r.get(next())?,
    })
}

const REWARD_COLUMNS: &str = "id, name_fi, name_en, description, cost_milli, stock, per_user_limit,
    available_from, available_until, active, updated_at, redeemed, created_at, erased_units";

fn raw_reward(r: &Row<'_>) -> rusqlite::Result<Reward> {
    Ok(Reward {
        draft: RewardDraft {
            id: r.get(0)?,
            name_fi: r.get(1)?,
            name_en: r.get(2)?,
            description: r.get(3)?,
            cost: Points::from_milli(r.get(4)?),
            stock: r.get(5)?,
            per_user_limit: r.get(6)?,
            available_from_ms: r.get(7)?,
            available_until_ms: r.get(8)?,
            active: r.get(9)?,
            saved_at_ms: r.get(10)?,
        },
        redeemed: r.get(11)?,
        created_at_ms: r.get(12)?,
        erased_units: r.get(13)?,
    })
}

/// One reward.
pub fn reward(conn: &Connection, id: &str) -> Result<Option<Reward>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {REWARD_COLUMNS} FROM rewards WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], raw_reward).optional())
    .map_err(backend)
}

/// The whole catalogue, by id.
pub fn rewards(conn: &Connection) -> Result<Vec<Reward>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {REWARD_COLUMNS} FROM rewards ORDER BY id"))
        .map_err(backend)?;
    let rows = stmt.query_map([], raw_reward).map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

const REDEMPTION_COLUMNS: &str =
    "id, reward_id, user_id, cost_milli, status, granted_by, created_at, updated_at";

fn raw_redemption(r: &Row<'_>) -> rusqlite::Result<StoredRedemption> {
    redemption_at(r, 0)
}

/// A redemption's [`REDEMPTION_COLUMNS`], starting at column `o`.
fn redemption_at(r: &Row<'_>, o: usize) -> rusqlite::Result<StoredRedemption> {
    Ok(StoredRedemption {
        id: r.get(o)?,
        reward_id: r.get(o + 1)?,
        user_id: r.get(o + 2)?,
        cost_milli: r.get(o + 3)?,
        status: r.get(o + 4)?,
        granted_by: r.get(o + 5)?,
        created_at: r.get(o + 6)?,
        updated_at: r.get(o + 7)?,
    })
}

/// One redemption.
pub fn redemption(conn: &Connection, id: &str) -> Result<Option<Redemption>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {REDEMPTION_COLUMNS} FROM redemptions WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], raw_redemption).optional())
    .map_err(backend)?
    .map(StoredRedemption::decode)
    .transpose()
}

/// The redemption that used an idempotency key, with the fingerprint.
pub fn redemption_by_key(
    conn: &Connection,
    key: &str,
) -> Result<Option<(Option<String>, Redemption)>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT request_hash, {REDEMPTION_COLUMNS} FROM redemptions WHERE idempotency_key = ?1"
        ))
        .and_then(|mut s| {
            s.query_row([key], |r| {
                Ok((r.get::<_, Option<String>>(0)?, redemption_at(r, 1)?))
            })
            .optional()
        })
        .map_err(backend)?;
    found
        .map(|(hash, raw)| Ok((hash, raw.decode()?)))
        .transpose()
}

/// How many redemptions of `reward_id` the user holds (not cancelled).
pub fn held(conn: &Connection, user_id: &str, reward_id: &str) -> Result<u32, StoreError> {
    conn.prepare_cached(
        "SELECT count(*) FROM redemptions
         WHERE user_id = ?1 AND reward_id = ?2 AND status <> 'cancelled'",
    )
    .and_then(|mut s| s.query_row([user_id, reward_id], |r| r.get(0)))
    .map_err(backend)
}

/// Redemptions newest first, filtered.
pub fn redemptions(
    conn: &Connection,
    user_id: Option<&str>,
    status: Option<RedemptionStatus>,
    limit: u32,
    before: Option<&str>,
) -> Result<Vec<Redemption>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {REDEMPTION_COLUMNS} FROM redemptions
             WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR id < ?3)
             ORDER BY id DESC LIMIT ?4"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(
            params![user_id, status.map(|s| s.as_str()), before, limit],
            raw_redemption,
        )
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(backend)?.decode()?);
    }
    Ok(out)
}

const MOVEMENT_COLUMNS: &str = "id, user_id, kind, amount_milli, reason, metadata, balance_after,
    lifetime_after, created_at";

/// A movement's [`MOVEMENT_COLUMNS`], starting at column `o`.
fn movement_at(r: &Row<'_>, o: usize) -> rusqlite::Result<(Movement, String)> {
    Ok((
        Movement {
            id: r.get(o)?,
            user_id: r.get(o + 1)?,
            kind: MovementKind::Spend,
            amount: Points::from_milli(r.get(o + 3)?),
            reason: r.get(o + 4)?,
            metadata: r.get(o + 5)?,
            balance_after: Points::from_milli(r.get(o + 6)?),
            lifetime_after: Points::from_milli(r.get(o + 7)?),
            created_at_ms: r.get(o + 8)?,
        },
        r.get(o + 2)?,
    ))
}

/// The movement with its kind decoded.
fn decode_movement((mut m, kind): (Movement, String)) -> Result<Movement, StoreError> {
    m.kind = MovementKind::parse(&kind)?;
    Ok(m)
}

/// The movement that used an idempotency key, with the fingerprint.
pub fn movement_by_key(
    conn: &Connection,
    key: &str,
) -> Result<Option<(Option<String>, Movement)>, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT request_hash, {MOVEMENT_COLUMNS} FROM movements WHERE idempotency_key = ?1"
        ))
        .and_then(|mut s| {
            s.query_row([key], |r| {
                Ok((r.get::<_, Option<String>>(0)?, movement_at(r, 1)?))
            })
            .optional()
        })
        .map_err(backend)?;
    found
        .map(|(hash, raw)| Ok((hash, decode_movement(raw)?)))
        .transpose()
}

const LEDGER_COLUMNS: &str = "l.seq, l.user_id, l.kind, l.amount_milli, l.balance_after_milli,
    l.lifetime_after_milli, l.reference, l.created_at, l.rules_version";

fn raw_ledger(r: &Row<'_>) -> rusqlite::Result<StoredLedger> {
    Ok(StoredLedger {
        seq: r.get(0)?,
        user_id: r.get(1)?,
        kind: r.get(2)?,
        amount_milli: r.get(3)?,
        balance_after_milli: r.get(4)?,
        lifetime_after_milli: r.get(5)?,
        reference: r.get(6)?,
        created_at: r.get(7)?,
        rules_version: r.get(8)?,
    })
}

/// A page of the user's ledger, newest first: the entries `user_ledger`
/// lists and those past `through_ledger_seq`, looked up by their `seq`s in
/// `unindexed`, in one snapshot, as for events.
pub fn ledger(
    conn: &Connection,
    user_id: &UserId,
    limit: u32,
    before: Option<i64>,
    unindexed: &[i64],
) -> Result<LedgerPage, StoreError> {
    let user = user_id.as_str();
    let before = before.unwrap_or(i64::MAX);
    let snapshot = conn.unchecked_transaction().map_err(backend)?;
    let through: i64 = snapshot
        .prepare_cached("SELECT through_ledger_seq FROM materialized WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(backend)?;
    let want = i64::from(limit) + 1;
    let indexed = format!(
        "SELECT {LEDGER_COLUMNS} FROM user_ledger u JOIN ledger l ON l.seq = u.seq
         WHERE u.user_id = ?1 AND u.seq < ?2 ORDER BY u.seq DESC LIMIT ?3"
    );
    let by_seq = format!(
        "SELECT {LEDGER_COLUMNS} FROM ledger l
         WHERE l.seq = ?3 AND l.user_id = ?1 AND l.seq < ?2"
    );
    let from_seq = format!(
        "SELECT {LEDGER_COLUMNS} FROM ledger l
         WHERE l.seq >= ?3 AND l.user_id = ?1 AND l.seq < ?2"
    );
    let mut rows = Vec::new();
    let reads = std::iter::once((indexed.as_str(), want))
        .chain(tail_reads(unindexed, through, &by_seq, &from_seq));
    for (sql, last) in reads {
        let mut stmt = snapshot.prepare_cached(sql).map_err(backend)?;
        let found = stmt
            .query_map(params![user, before, last], raw_ledger)
            .map_err(backend)?;
        for row in found {
            rows.push(row.map_err(backend)?);
        }
    }
    drop(snapshot);
    rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.seq));
    rows.truncate(want as usize);
    let entries = rows
        .into_iter()
        .map(StoredLedger::decode)
        .collect::<Result<_, _>>()?;
    Ok(LedgerPage::from_overfetch(entries, limit))
}

/// The points credited to the user at or after `since_ms`: from the entries
/// `user_ledger` lists and those past `through_ledger_seq` (their `seq`s in
/// `unindexed`, taken before this call: see `super::unindexed`), in one
/// snapshot.
pub fn credited_since(
    conn: &Connection,
    user: &str,
    since_ms: i64,
    unindexed: &[i64],
) -> Result<Points, StoreError> {
    let credit = crate::economy::CREDIT_SQL;
    let sum = "SELECT coalesce(sum(amount_milli), 0) FROM ledger";
    // Every statement takes the same three parameters; this one's third is 0.
    let indexed = format!(
        "{sum} WHERE seq IN (SELECT seq FROM user_ledger WHERE user_id = ?1)
                 AND created_at >= ?2 AND {credit} AND ?3 = 0"
    );
    let by_seq = format!("{sum} WHERE seq = ?3 AND user_id = ?1 AND created_at >= ?2 AND {credit}");
    let from_seq =
        format!("{sum} WHERE seq >= ?3 AND user_id = ?1 AND created_at >= ?2 AND {credit}");
    let snapshot = conn.unchecked_transaction().map_err(backend)?;
    let through: i64 = snapshot
        .prepare_cached("SELECT through_ledger_seq FROM materialized WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(backend)?;
    let mut total = 0i64;
    for (sql, seq) in std::iter::once((indexed.as_str(), 0))
        .chain(tail_reads(unindexed, through, &by_seq, &from_seq))
    {
        let part: i64 = snapshot
            .prepare_cached(sql)
            .and_then(|mut s| s.query_row(params![user, since_ms, seq], |r| r.get(0)))
            .map_err(backend)?;
        total = total
            .checked_add(part)
            .ok_or_else(|| StoreError::Corrupt(format!("credits of {user} overflow")))?;
    }
    Ok(Points::from_milli(total))
}

/// Users holding points, by id, after `after`.
pub fn users_where(
    conn: &Connection,
    filter: crate::UserFilter,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT user_id FROM users WHERE {} AND user_id > ?1 ORDER BY user_id LIMIT ?2",
            filter.sql()
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![after.unwrap_or(""), limit], |r| r.get(0))
        .map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

/// One page of one table for an export (users excepted: see
/// [`export_users`]), in arrival order after `after`.
pub fn export_page(
    conn: &Connection,
    table: Table,
    after: &After,
    filter: &ExportFilter,
    limit: u32,
) -> Result<Page, StoreError> {
    let seq = match after {
        After::Seq(n) => *n,
        _ => 0,
    };
    let id = match after {
        After::Id(id) => id.as_str(),
        _ => "",
    };
    let user = filter.user_id();
    let (from, to) = filter.bounds();
    // The rows of `table` after `seq`, of the user if given, in the range.
    let history = |columns: &str, table: &str, time: &str| {
        format!(
            "SELECT seq, {columns}, idempotency_key, request_hash FROM {table}
             WHERE seq > ?1 AND (?2 IS NULL OR user_id = ?2) AND {time} >= ?3 AND {time} < ?4
             ORDER BY seq LIMIT ?5"
        )
    };
    let args = params![seq, user, from, to, limit];
    let page = match table {
        Table::Rewards => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {REWARD_COLUMNS} FROM rewards WHERE id > ?1 ORDER BY id LIMIT ?2"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![id, limit], raw_reward)
                .map_err(backend)?;
            Page::Rewards(rows.collect::<Result<_, _>>().map_err(backend)?)
        }
        Table::Users => return Err(StoreError::Unavailable("users are exported by the writer")),
        Table::Events => {
            let mut stmt = conn
                .prepare_cached(&history(EVENT_COLUMNS, "events", "occurred_at"))
                .map_err(backend)?;
            let rows = stmt
                .query_map(args, |r| {
                    let mut o = 1;
                    let raw = event_at(r, &mut o)?;
                    Ok((r.get(0)?, raw, keyed(r, o)?))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, raw, idempotency) = row.map_err(backend)?;
                out.push(ExportedEvent {
                    seq,
                    record: raw.decode()?,
                    idempotency,
                });
            }
            Page::Events(out)
        }
        Table::Movements => {
            let mut stmt = conn
                .prepare_cached(&history(MOVEMENT_COLUMNS, "movements", "created_at"))
                .map_err(backend)?;
            let rows = stmt
                .query_map(args, |r| Ok((r.get(0)?, movement_at(r, 1)?, keyed(r, 10)?)))
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, raw, idempotency) = row.map_err(backend)?;
                out.push(ExportedMovement {
                    seq,
                    movement: decode_movement(raw)?,
                    idempotency,
                });
            }
            Page::Movements(out)
        }
        Table::Redemptions => {
            let mut stmt = conn
                .prepare_cached(&history(REDEMPTION_COLUMNS, "redemptions", "created_at"))
                .map_err(backend)?;
            let rows = stmt
                .query_map(args, |r| {
                    Ok((r.get(0)?, redemption_at(r, 1)?, keyed(r, 9)?))
                })
                .map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, raw, idempotency) = row.map_err(backend)?;
                out.push(ExportedRedemption {
                    seq,
                    redemption: raw.decode()?,
                    idempotency,
                });
            }
            Page::Redemptions(out)
        }
        Table::Ledger => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {LEDGER_COLUMNS} FROM ledger l
                     WHERE l.seq > ?1 AND (?2 IS NULL OR l.user_id = ?2)
                       AND l.created_at >= ?3 AND l.created_at < ?4
                     ORDER BY l.seq LIMIT ?5"
                ))
                .map_err(backend)?;
            let rows = stmt.query_map(args, raw_ledger).map_err(backend)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(row.map_err(backend)?.decode()?);
            }
            Page::Ledger(out)
        }
        Table::Erasures => {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {ERASURE_COLUMNS} FROM erasures
                     WHERE id > ?1 AND (?2 IS NULL OR user_hash = ?2) ORDER BY id LIMIT ?3"
                ))
                .map_err(backend)?;
            let hash = user.map(crate::erasure::user_hash);
            let rows = stmt
                .query_map(params![id, hash, limit], |r| {
                    erasure_from(|i| r.get(i), |i| r.get(i))
                })
                .map_err(backend)?;
            Page::Erasures(rows.collect::<Result<_, _>>().map_err(backend)?)
        }
        Table::Hidden => {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT user_id, hidden_at FROM hidden_users
                     WHERE user_id > ?1 AND (?2 IS NULL OR user_id = ?2) ORDER BY user_id LIMIT ?3",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![id, user, limit], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(backend)?;
            Page::Hidden(rows.collect::<Result<_, _>>().map_err(backend)?)
        }
    };
    Ok(page)
}

/// A page of users' current state, by id; on a connection that sees the
/// derived tables up to date.
pub fn export_users(
    conn: &Connection,
    after: &After,
    filter: &ExportFilter,
    limit: u32,
) -> Result<Page, StoreError> {
    let id = match after {
        After::Id(id) => id.as_str(),
        _ => "",
    };
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT user_id, {USER_COLUMNS} FROM users
             WHERE user_id > ?1 AND (?2 IS NULL OR user_id = ?2) ORDER BY user_id LIMIT ?3"
        ))
        .map_err(backend)?;
    let rows = stmt
        .query_map(params![id, filter.user_id(), limit], |r| {
            Ok((r.get::<_, String>(0)?, user_at(r, 1)?))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (user, stored) = row.map_err(backend)?;
        out.push((user, stored.decode()?));
    }
    Ok(Page::Users(out))
}

/// An idempotency key and fingerprint at columns `o`, `o + 1`, if set.
fn keyed(r: &Row<'_>, o: usize) -> rusqlite::Result<Option<(String, String)>> {
    let key: Option<String> = r.get(o)?;
    let hash: Option<String> = r.get(o + 1)?;
    Ok(key.zip(hash))
}

/// The dashboard's numbers (see [`crate::analytics`]).
pub fn analytics(
    conn: &Connection,
    active_since: &[i64],
    days_from: i64,
) -> Result<crate::analytics::Analytics, StoreError> {
    use crate::analytics::{Analytics, Total, categories_sql, days_sql, users_sql};
    let mut out = conn
        .query_row(&users_sql(active_since), [], |r| {
            let mut active = Vec::with_capacity(active_since.len());
            for i in 0..active_since.len() {
                active.push(r.get::<_, u64>(4 + i)?);
            }
            Ok(Analytics {
                users: r.get(0)?,
                events: r.get(1)?,
                lifetime: Total::from_parts(r.get(2)?, r.get(3)?),
                active,
                ..Analytics::default()
            })
        })
        .map_err(backend)?;
    let rows = |sql: &str| -> Result<Vec<(rusqlite::types::Value, u64, Total)>, StoreError> {
        let mut stmt = conn.prepare(sql).map_err(backend)?;
        let mapped = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    Total::from_parts(r.get(2)?, r.get(3)?),
                ))
            })
            .map_err(backend)?;
        mapped.collect::<Result<_, _>>().map_err(backend)
    };
    for (category, n, points) in rows(&categories_sql())? {
        if let rusqlite::types::Value::Text(c) = category {
            out.categories.push((c, n, points));
        }
    }
    for (day, n, points) in rows(&days_sql(days_from))? {
        if let rusqlite::types::Value::Integer(d) = day {
            out.days.push((d, n, points));
        }
    }
    Ok(out)
}
