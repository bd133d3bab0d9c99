//! The embedded leaderboard: every user ordered by lifetime points (highest
//! first, ties by user id), in memory.
//!
//! It is built from the `users` table when the store opens and updated by the
//! writer after each commit, so it never holds uncommitted points and is
//! rebuilt to match the database after any restart. Keeping it here rather
//! than as an SQL index spares every event two scattered page writes.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::RwLock;

use gamify_core::Points;
use rusqlite::Connection;

use super::backend;
use crate::{LeaderRow, StoreError};

/// Users by (lifetime descending, user id ascending) → spendable balance.
#[derive(Default)]
pub struct Ranking {
    board: RwLock<BTreeMap<(Reverse<i64>, String), i64>>,
}

impl Ranking {
    /// Reads every user's points from the database.
    pub fn load(conn: &Connection) -> Result<Ranking, StoreError> {
        let started = std::time::Instant::now();
        tracing::info!("loading the leaderboard from the users table");
        let mut board = BTreeMap::new();
        let mut stmt = conn
            .prepare("SELECT user_id, lifetime_milli, total_milli FROM users")
            .map_err(backend)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(backend)?;
        for row in rows {
            let (user_id, lifetime, total) = row.map_err(backend)?;
            board.insert((Reverse(lifetime), user_id), total);
            if board.len() % 1_000_000 == 0 {
                tracing::info!(users = board.len(), "loading the leaderboard");
            }
        }
        tracing::info!(
            users = board.len(),
            millis = started.elapsed().as_millis() as u64,
            "leaderboard loaded"
        );
        Ok(Ranking {
            board: RwLock::new(board),
        })
    }

    /// Moves `user_id` from `old_lifetime` (None: not ranked yet) to its new points.
    pub fn update(
        &self,
        user_id: &str,
        old_lifetime: Option<Points>,
        lifetime: Points,
        total: Points,
    ) {
        let mut board = self.board.write().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = old_lifetime {
            board.remove(&(Reverse(old.milli()), user_id.to_owned()));
        }
        board.insert(
            (Reverse(lifetime.milli()), user_id.to_owned()),
            total.milli(),
        );
    }

    /// The first `limit` rows.
    pub fn top(&self, limit: usize) -> Vec<LeaderRow> {
        let board = self.board.read().unwrap_or_else(|e| e.into_inner());
        board
            .iter()
            .take(limit)
            .enumerate()
            .map(|(i, ((Reverse(lifetime), user_id), total))| LeaderRow {
                rank: i as u64 + 1,
                user_id: user_id.clone(),
                lifetime: Points::from_milli(*lifetime),
                total: Points::from_milli(*total),
            })
            .collect()
    }
}
