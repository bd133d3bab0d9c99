//! Which events and ledger entries of each user are in the log but not yet
//! in the derived per-user indexes (`user_events`, `user_ledger`).
//!
//! A listing reads a user's rows through those indexes and adds the rows
//! past the derived tables' marks. It takes those from here, by `seq`,
//! instead of scanning the log's tail for the user's id (see
//! `super::read`; a user with more than a few dozen here is read by one
//! scan from their first): most users have nothing here, and a listing's
//! cost then does not grow with how far the derived tables lag, so they can
//! be written in large batches (`super::MATERIALIZE_AFTER`).
//!
//! Why a listing loses nothing acknowledged: the writer adds a row here
//! after the log commit and before it answers the request
//! (`Writer::publish`), and the derived-table thread drops it only after
//! the commit that indexed it (`written`). A listing copies the user's
//! `seq`s from here before it takes its snapshot, so every row acknowledged
//! before the listing began is either copied or in the indexes its snapshot
//! sees (rows in both are read once: the listing keeps the copied ones past
//! its snapshot's mark). A row kept here longer than needed (a user erased,
//! or a write the derived tables have not taken yet) costs only a lookup.

use std::sync::Mutex;

use hashbrown::HashMap;

/// One user's rows not yet indexed, oldest first.
#[derive(Debug, Default)]
struct Rows {
    events: Vec<i64>,
    ledger: Vec<i64>,
}

/// Per user, the `seq`s of their unindexed rows.
#[derive(Default)]
pub struct Unindexed {
    users: Mutex<HashMap<String, Rows>>,
}

impl Unindexed {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Rows>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a commit's events `(user, seq)` and ledger entries
    /// `(user, seq)`, before its requests are answered. A commit's `seq`s
    /// are above every earlier commit's.
    pub fn logged<'a>(
        &self,
        events: impl Iterator<Item = (&'a str, i64)>,
        ledger: impl Iterator<Item = (&'a str, i64)>,
    ) {
        let mut users = self.lock();
        for (user, seq) in events {
            users.entry_ref(user).or_default().events.push(seq);
        }
        for (user, seq) in ledger {
            users.entry_ref(user).or_default().ledger.push(seq);
        }
    }

    /// The derived tables now index every event up to `through_seq` and
    /// every ledger entry up to `through_ledger_seq` (their commit is
    /// done): drops those of `users`.
    pub fn written<'a>(
        &self,
        users: impl Iterator<Item = &'a String>,
        through_seq: i64,
        through_ledger_seq: i64,
    ) {
        let mut all = self.lock();
        for user in users {
            if let Some(rows) = all.get_mut(user.as_str()) {
                let done = rows.events.partition_point(|&s| s <= through_seq);
                rows.events.drain(..done);
                let done = rows.ledger.partition_point(|&s| s <= through_ledger_seq);
                rows.ledger.drain(..done);
                if rows.events.is_empty() && rows.ledger.is_empty() {
                    all.remove(user.as_str());
                }
            }
        }
    }

    /// The `seq`s of the user's events not yet in `user_events`.
    pub fn events_of(&self, user: &str) -> Vec<i64> {
        self.lock()
            .get(user)
            .map(|r| r.events.clone())
            .unwrap_or_default()
    }

    /// The `seq`s of the user's ledger entries not yet in `user_ledger`.
    pub fn ledger_of(&self, user: &str) -> Vec<i64> {
        self.lock()
            .get(user)
            .map(|r| r.ledger.clone())
            .unwrap_or_default()
    }

    /// Drops an erased user (their rows are gone from the log).
    pub fn forget(&self, user: &str) {
        self.lock().remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_stays_until_the_derived_tables_index_it() {
        let u = Unindexed::default();
        u.logged(
            [("a", 10), ("b", 11), ("a", 12)].into_iter(),
            [("a", 20)].into_iter(),
        );
        assert_eq!(u.events_of("a"), [10, 12]);
        assert_eq!(u.ledger_of("a"), [20]);
        assert_eq!(u.events_of("b"), [11]);
        assert!(u.ledger_of("b").is_empty());
        assert!(u.events_of("c").is_empty());
        let (a, b) = ("a".to_owned(), "b".to_owned());
        // Indexed through event 11 and entry 20: a's event 12 is not.
        u.written([&a, &b].into_iter(), 11, 20);
        assert_eq!(u.events_of("a"), [12]);
        assert!(u.events_of("b").is_empty());
        // A later write for a before the next materialization.
        u.logged([("a", 13)].into_iter(), std::iter::empty());
        u.written([&a].into_iter(), 12, 20);
        assert_eq!(u.events_of("a"), [13]);
        u.written([&a].into_iter(), 13, 20);
        assert!(u.events_of("a").is_empty());
        assert!(u.lock().is_empty());
    }
}
