//! Erasing a user on the embedded backend (see [`crate::erasure`]).
//!
//! The writer does it alone, after every earlier write has reached the
//! derived tables: it finds the user's rows through the derived per-user
//! indexes (the log has none by user), deletes them from the log in one
//! transaction that also records the erasure, then has the derived tables
//! drop the user ([`crate::sqlite::materialize`]), and last clears the plain
//! id from the record. A crash between those steps is finished by
//! [`finish_unfinished`] when the store next opens.
//!
//! Deleting the newest rows lets SQLite hand their `seq` out again, which
//! would put a new event at or below `materialized.through_seq`, where
//! recovery and listings would not look. So the derived tables' marks are
//! lowered to the log's new highest `seq` in the same step that drops the
//! user's derived rows ([`Removed`]).

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::backend;
use crate::StoreError;
use crate::erasure::{Erasure, unit_changes};

/// What the derived tables must drop after the log's rows of a user went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The erased user.
    pub user_id: String,
    /// The log's highest event `seq` after the erasure (0: none).
    pub events_max: i64,
    /// The log's highest ledger `seq` after it.
    pub ledger_max: i64,
}

/// The hashes of every erased user id, for the writer's check.
pub fn erased_hashes(conn: &Connection) -> Result<HashSet<String>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT user_hash FROM erasures")
        .map_err(backend)?;
    let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

/// The erasure of the user with this hash, if there was one.
pub fn find(conn: &Connection, user_hash: &str) -> Result<Option<Erasure>, StoreError> {
    conn.prepare_cached(
        "SELECT id, erased_at, events, ledger_entries, movements, redemptions
         FROM erasures WHERE user_hash = ?1",
    )
    .and_then(|mut s| {
        s.query_row([user_hash], |r| {
            Ok(Erasure {
                id: r.get(0)?,
                erased_at_ms: r.get(1)?,
                events: r.get(2)?,
                ledger_entries: r.get(3)?,
                movements: r.get(4)?,
                redemptions: r.get(5)?,
            })
        })
        .optional()
    })
    .map_err(backend)
}

/// The user's rows in the log, by `seq` or id: found through the derived
/// indexes and the log's tail past their marks. `conn` reads the log with
/// the derived tables attached.
pub struct Rows {
    events: Vec<i64>,
    ledger: Vec<i64>,
    movements: Vec<String>,
    deliveries: Vec<i64>,
}

/// Finds what [`erase_log`] deletes.
pub fn rows_of(conn: &Connection, user: &str) -> Result<Rows, StoreError> {
    let column = |sql: &str| -> Result<Vec<i64>, StoreError> {
        let mut stmt = conn.prepare(sql).map_err(backend)?;
        let rows = stmt.query_map([user], |r| r.get(0)).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    };
    let events = column(
        "SELECT seq FROM user_events WHERE user_id = ?1
         UNION SELECT seq FROM events
               WHERE seq > (SELECT through_seq FROM materialized WHERE id = 1) AND user_id = ?1",
    )?;
    let ledger = column(
        "SELECT seq FROM user_ledger WHERE user_id = ?1
         UNION SELECT seq FROM ledger
               WHERE seq > (SELECT through_ledger_seq FROM materialized WHERE id = 1) AND user_id = ?1",
    )?;
    // Webhook deliveries carry the id in their data. Their seq is never
    // handed out twice (log migration 0011), so the mark needs no lowering.
    let deliveries = column(
        "SELECT seq FROM user_deliveries WHERE user_id = ?1
         UNION SELECT seq FROM webhook_deliveries
               WHERE seq > (SELECT through_delivery_seq FROM materialized WHERE id = 1)
                 AND user_id = ?1",
    )?;
    // Every spend and adjustment has its ledger entry, which names it.
    let mut movements = Vec::new();
    {
        let mut stmt = conn
            .prepare_cached(
                "SELECT reference FROM ledger WHERE seq = ?1 AND kind IN ('spend', 'adjustment')",
            )
            .map_err(backend)?;
        for seq in &ledger {
            if let Some(id) = stmt
                .query_row([seq], |r| r.get::<_, String>(0))
                .optional()
                .map_err(backend)?
            {
                movements.push(id);
            }
        }
    }
    Ok(Rows {
        events,
        ledger,
        movements,
        deliveries,
    })
}

/// Records the erasure and deletes the user's rows from the log, inside
/// `tx`; returns the record and what the derived tables must drop.
pub fn erase_log(
    tx: &Connection,
    user: &str,
    user_hash: &str,
    id: &str,
    at_ms: i64,
    rows: &Rows,
) -> Result<(Erasure, Removed), StoreError> {
    // What the user holds of each reward changes its counts first.
    let held: Vec<(String, String)> = {
        let mut stmt = tx
            .prepare(
                "SELECT reward_id, status FROM redemptions WHERE user_id = ?1 AND status <> 'cancelled'",
            )
            .map_err(backend)?;
        let rows = stmt
            .query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)?
    };
    for (reward, change) in unit_changes(&held)? {
        tx.execute(
            "UPDATE rewards SET redeemed = redeemed - ?2, erased_units = erased_units + ?3 WHERE id = ?1",
            params![reward, change.returned, change.kept],
        )
        .map_err(backend)?;
    }

    // The record first: it is what lets the ledger's trigger allow the deletes.
    tx.execute(
        "INSERT INTO erasures (id, user_hash, erasing_user_id, events, ledger_entries, movements,
                               redemptions, erased_at)
         VALUES (?1, ?2, ?3, 0, 0, 0, 0, ?4)",
        params![id, user_hash, user, at_ms],
    )
    .map_err(backend)?;
    let delete_each = |sql: &str, keys: &mut dyn Iterator<Item = rusqlite::types::Value>| {
        let mut stmt = tx.prepare(sql).map_err(backend)?;
        let mut n = 0u64;
        for key in keys {
            n += stmt.execute([key]).map_err(backend)? as u64;
        }
        Ok::<u64, StoreError>(n)
    };
    let events = delete_each(
        "DELETE FROM events WHERE seq = ?1",
        &mut rows.events.iter().map(|s| (*s).into()),
    )?;
    let ledger_entries = delete_each(
        "DELETE FROM ledger WHERE seq = ?1",
        &mut rows.ledger.iter().map(|s| (*s).into()),
    )?;
    let movements = delete_each(
        "DELETE FROM movements WHERE id = ?1",
        &mut rows.movements.iter().map(|s| s.clone().into()),
    )?;
    let redemptions = tx
        .execute("DELETE FROM redemptions WHERE user_id = ?1", [user])
        .map_err(backend)? as u64;
    tx.execute("DELETE FROM hidden_users WHERE user_id = ?1", [user])
        .map_err(backend)?;
    {
        let mut stmt = tx
            .prepare("DELETE FROM webhook_deliveries WHERE seq = ?1 AND user_id = ?2")
            .map_err(backend)?;
        for seq in &rows.deliveries {
            stmt.execute(params![seq, user]).map_err(backend)?;
        }
    }
    tx.execute(
        "UPDATE erasures SET events = ?2, ledger_entries = ?3, movements = ?4, redemptions = ?5
         WHERE id = ?1",
        params![id, events, ledger_entries, movements, redemptions],
    )
    .map_err(backend)?;
    let max = |table: &str| max_seq(tx, table);
    let removed = Removed {
        user_id: user.to_owned(),
        events_max: max("events")?,
        ledger_max: max("ledger")?,
    };
    let erasure = Erasure {
        id: id.to_owned(),
        erased_at_ms: at_ms,
        events,
        ledger_entries,
        movements,
        redemptions,
    };
    Ok((erasure, removed))
}

/// Drops the erased users' rows from the derived tables and lowers their
/// marks (see the module docs), inside the derived file's transaction `tx`.
pub fn erase_derived(tx: &Connection, removed: &[Removed]) -> Result<(), StoreError> {
    for r in removed {
        for table in ["users", "user_events", "user_ledger", "user_deliveries"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE user_id = ?1"),
                [&r.user_id],
            )
            .map_err(backend)?;
        }
        tx.execute(
            "UPDATE materialized SET through_seq = min(through_seq, ?1),
                                     through_ledger_seq = min(through_ledger_seq, ?2) WHERE id = 1",
            [r.events_max, r.ledger_max],
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// The highest `seq` of a log table (0: empty).
fn max_seq(conn: &Connection, table: &str) -> Result<i64, StoreError> {
    conn.query_row(
        &format!("SELECT coalesce(max(seq), 0) FROM {table}"),
        [],
        |r| r.get(0),
    )
    .map_err(backend)
}

/// Clears the plain id from the record once the derived tables are done.
pub fn finish(log: &Connection, user: &str) -> Result<(), StoreError> {
    log.execute(
        "UPDATE erasures SET erasing_user_id = NULL WHERE erasing_user_id = ?1",
        [user],
    )
    .map_err(backend)?;
    Ok(())
}

/// Finishes the erasures a crash interrupted (the log's rows gone, the
/// derived tables' perhaps not): run when the store opens, before anything
/// reads the derived tables.
pub fn finish_unfinished(log: &Connection, derived: &mut Connection) -> Result<(), StoreError> {
    let users: Vec<String> = {
        let mut stmt = log
            .prepare("SELECT erasing_user_id FROM erasures WHERE erasing_user_id IS NOT NULL")
            .map_err(backend)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)?
    };
    if users.is_empty() {
        return Ok(());
    }
    let max = |table: &str| max_seq(log, table);
    let (events_max, ledger_max) = (max("events")?, max("ledger")?);
    let removed: Vec<Removed> = users
        .iter()
        .map(|u| Removed {
            user_id: u.clone(),
            events_max,
            ledger_max,
        })
        .collect();
    let tx = derived.transaction().map_err(backend)?;
    erase_derived(&tx, &removed)?;
    tx.commit().map_err(backend)?;
    for user in &users {
        finish(log, user)?;
    }
    tracing::info!(
        erasures = users.len(),
        "finished erasures a stop had interrupted"
    );
    Ok(())
}
