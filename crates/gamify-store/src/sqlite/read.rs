//! Queries. Used by the read pool and, for the user's state, by the writer.

use gamify_core::UserId;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::backend;
use crate::rows::{StoredEvent, StoredUser};
use crate::{EventPage, EventRecord, StoreError, UserSnapshot};

const EVENT_COLUMNS: &str =
    "id, user_id, category, action, value_milli, points_milli, weight_milli, streak_day,
    bonus_percent, unlocked, total_after, lifetime_after, metadata, occurred_at, created_at";
/// The same, of `events e` in a join.
const EVENT_COLUMNS_OF_E: &str =
    "e.id, e.user_id, e.category, e.action, e.value_milli, e.points_milli, e.weight_milli, e.streak_day,
    e.bonus_percent, e.unlocked, e.total_after, e.lifetime_after, e.metadata, e.occurred_at, e.created_at";

/// The user's stored state.
pub fn user(conn: &Connection, user_id: &UserId) -> Result<Option<UserSnapshot>, StoreError> {
    conn.prepare_cached(
        "SELECT total_milli, lifetime_milli, best_streak, streak_runs, achievements, event_count, last_event_at,
                version, category_totals
         FROM users WHERE user_id = ?1",
    )
    .and_then(|mut s| {
        s.query_row([user_id.as_str()], |r| {
            Ok(StoredUser {
                total_milli: r.get(0)?,
                lifetime_milli: r.get(1)?,
                best_streak: r.get(2)?,
                streak_runs: r.get(3)?,
                achievements: r.get(4)?,
                event_count: r.get(5)?,
                last_event_at: r.get(6)?,
                version: r.get(7)?,
                category_totals: r.get(8)?,
            })
        })
        .optional()
    })
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

/// A page of the user's events, newest first: those `user_events` lists, and
/// those logged since it was last brought up to date (a bounded scan of the
/// log's tail), read in one snapshot.
pub fn events(
    conn: &Connection,
    user_id: &UserId,
    limit: u32,
    before: Option<&str>,
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
    let tail = format!(
        "SELECT {EVENT_COLUMNS}, seq FROM events
         WHERE seq > ?4 AND user_id = ?1 AND (occurred_at, seq) < (?2, ?3)"
    );
    let mut rows: Vec<(StoredEvent, i64)> = Vec::new();
    for (sql, last) in [(indexed, want), (tail, through)] {
        let mut stmt = snapshot.prepare_cached(&sql).map_err(backend)?;
        let found = stmt
            .query_map(params![user, position.0, position.1, last], |r| {
                Ok((raw_event(r)?, r.get::<_, i64>(15)?))
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
    Ok(StoredEvent {
        id: r.get(0)?,
        user_id: r.get(1)?,
        category: r.get(2)?,
        action: r.get(3)?,
        value_milli: r.get(4)?,
        points_milli: r.get(5)?,
        weight_milli: r.get(6)?,
        streak_day: r.get(7)?,
        bonus_percent: r.get(8)?,
        unlocked: r.get(9)?,
        total_after: r.get(10)?,
        lifetime_after: r.get(11)?,
        metadata: r.get(12)?,
        occurred_at: r.get(13)?,
        created_at: r.get(14)?,
    })
}
