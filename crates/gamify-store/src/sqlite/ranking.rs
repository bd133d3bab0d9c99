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

    /// Takes an erased user off the board.
    pub fn remove(&self, user_id: &str, lifetime: Points) {
        let mut board = self.board.write().unwrap_or_else(|e| e.into_inner());
        board.remove(&(Reverse(lifetime.milli()), user_id.to_owned()));
    }

    /// Compares the board with the `users` table that `conn` reads: every
    /// user on it at their points, and no one else. Called by the writer,
    /// so nothing changes the board meanwhile.
    pub fn compare(&self, conn: &Connection) -> Result<Vec<crate::Finding>, StoreError> {
        let board = self.board.read().unwrap_or_else(|e| e.into_inner());
        let mut findings = Vec::new();
        let mut stmt = conn
            .prepare("SELECT user_id, lifetime_milli, total_milli FROM users")
            .map_err(backend)?;
        let mut rows = stmt.query([]).map_err(backend)?;
        let mut users = 0usize;
        let limit = crate::verify::MAX_FINDINGS as usize;
        while let Some(row) = rows.next().map_err(backend)? {
            let (user, lifetime, total): (String, i64, i64) = (
                row.get(0).map_err(backend)?,
                row.get(1).map_err(backend)?,
                row.get(2).map_err(backend)?,
            );
            users += 1;
            let ranked = board.get(&(Reverse(lifetime), user.clone()));
            if ranked != Some(&total) && findings.len() < limit {
                findings.push(crate::Finding {
                    message: format!(
                        "the leaderboard holds {}, the database lifetime {lifetime}/1000 and balance {total}/1000",
                        match ranked {
                            Some(t) => format!("balance {t}/1000 at that lifetime"),
                            None => "no entry at that lifetime".into(),
                        }
                    ),
                    subject: format!("user {user}"),
                });
            }
        }
        if board.len() != users {
            findings.push(crate::Finding {
                subject: "leaderboard".into(),
                message: format!("ranks {} users, the database has {users}", board.len()),
            });
        }
        Ok(findings)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_board_is_compared_with_the_users_table_row_by_row_and_in_size() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE users (user_id TEXT, lifetime_milli INTEGER, total_milli INTEGER);
             INSERT INTO users VALUES ('a', 5000, 4000), ('b', 3000, 3000);",
        )
        .unwrap();
        let ranking = Ranking::load(&conn).unwrap();
        assert!(ranking.compare(&conn).unwrap().is_empty());

        // The board moves a and takes b off; the table does not.
        ranking.update(
            "a",
            Some(Points::whole(5)),
            Points::whole(6),
            Points::whole(4),
        );
        ranking.remove("b", Points::whole(3));
        let findings = ranking.compare(&conn).unwrap();
        let text: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with("user a: the leaderboard holds no entry"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("user b: the leaderboard holds no entry"),
            "{text:?}"
        );
        assert_eq!(text[2], "leaderboard: ranks 1 users, the database has 2");
    }
}
