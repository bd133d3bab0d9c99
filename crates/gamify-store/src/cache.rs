//! Users' current state in memory, so balance reads need neither a query nor
//! a hop to a blocking thread. The SQLite store always keeps one; the
//! PostgreSQL store keeps one only on a node that holds the database's
//! exclusive lease (`postgres::lease`), where no other node writes.
//!
//! Correctness rests on these rules.
//!
//! - **Only committed state enters.** A writer publishes a user's state
//!   after the commit ([`UserCache::offer_written`]) or drops the cached copy
//!   ([`UserCache::invalidate`]), and a reader that missed publishes what it
//!   read from the `users` table.
//! - **A copy never replaces a newer one.** Every change to a user raises its
//!   `version`, and [`UserCache::offer`] keeps the higher.
//! - **A read that overlapped a change stays out.** A reader takes a
//!   [`Ticket`] before it reads and hands it back with what it read; the
//!   copy is dropped if, meanwhile, the table changed as a whole
//!   ([`UserCache::advance_epoch`], [`UserCache::clear`]) or the user's
//!   shard had a copy dropped ([`UserCache::invalidate`]). So a reader
//!   holding an old snapshot cannot bring back a state the table has since
//!   moved past, even if the newer copy was evicted in between.
//! - **Unmaterialized state stays** (SQLite). The `users` table lags the log
//!   (see `sqlite::materialize`), so the writer's copy of a user with events
//!   not yet in it is *dirty*: it is never evicted, and only the writer, once
//!   the row is written, marks it clean.
//!
//! For SQLite this holds only while one process writes the file, which the
//! store's lock file guarantees; for PostgreSQL, while the node's lease is
//! valid.
//!
//! It also remembers users it found absent (as version 0, which the first
//! commit for that user, version 1, supersedes), so that reads of users with
//! no events do not go to the database each time.
//!
//! The cache is bounded; past the bound a shard drops an arbitrary clean
//! entry, which costs only a database read the next time that user is asked
//! for.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockWriteGuard};

use crate::UserSnapshot;

const SHARDS: usize = 64;

/// What the cache knows of a user: absent (no events, as of version 0) or
/// its state.
pub type Known = Option<Arc<UserSnapshot>>;

fn version_of(known: &Known) -> u64 {
    known.as_ref().map_or(0, |s| s.version)
}

struct Entry {
    known: Known,
    /// Newer than the user's row in the database: must not be evicted.
    dirty: bool,
}

#[derive(Default)]
struct Shard {
    users: HashMap<String, Entry>,
    /// Raised whenever a copy in this shard is dropped by
    /// [`UserCache::invalidate`].
    epoch: u64,
}

/// Taken by a reader before it reads a user from the database, and handed
/// back with what it read: see [`UserCache::offer_read`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    global: u64,
    shard: u64,
}

/// A bounded, sharded map from user id to that user's latest known state.
pub struct UserCache {
    shards: Vec<RwLock<Shard>>,
    hasher: RandomState,
    per_shard: usize,
    /// Raised after every commit that changes the `users` table as a whole
    /// (SQLite's materializations), and by [`UserCache::clear`].
    epoch: AtomicU64,
}

impl UserCache {
    /// A cache holding at most about `capacity` users.
    pub fn new(capacity: usize) -> UserCache {
        UserCache {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            epoch: AtomicU64::new(0),
        }
    }

    fn shard(&self, user_id: &str) -> &RwLock<Shard> {
        &self.shards[self.hasher.hash_one(user_id) as usize % SHARDS]
    }

    fn write(&self, user_id: &str) -> RwLockWriteGuard<'_, Shard> {
        self.shard(user_id)
            .write()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// What is known of the user, if anything: `Some(None)` means known absent.
    pub fn get(&self, user_id: &str) -> Option<Known> {
        self.shard(user_id)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .users
            .get(user_id)
            .map(|e| e.known.clone())
    }

    /// Taken by a reader before it reads the user from the `users` table,
    /// and handed back to [`UserCache::offer_read`].
    pub fn ticket(&self, user_id: &str) -> Ticket {
        let shard = self
            .shard(user_id)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .epoch;
        Ticket {
            global: self.epoch.load(Ordering::SeqCst),
            shard,
        }
    }

    /// Called by the writer after a commit that changed the `users` table,
    /// before it marks the users of that commit clean.
    pub fn advance_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The writer's copy, committed to the log; `dirty` while the `users`
    /// table does not have it yet.
    pub fn offer_written(&self, user_id: &str, state: Arc<UserSnapshot>, dirty: bool) {
        self.offer(user_id, Some(state), dirty, None);
    }

    /// A reader's copy, read from the `users` table after taking `ticket`.
    /// Dropped if the table has changed since.
    pub fn offer_read(&self, user_id: &str, known: Known, ticket: Ticket) {
        self.offer(user_id, known, false, Some(ticket));
    }

    /// The `users` table now holds the user at `version`: the copy at that
    /// version may be evicted.
    pub fn mark_clean(&self, user_id: &str, version: u64) {
        let mut shard = self.write(user_id);
        if let Some(entry) = shard.users.get_mut(user_id)
            && version_of(&entry.known) == version
        {
            entry.dirty = false;
        }
    }

    /// The user was erased: known absent from now on, whatever was cached.
    /// Called after the derived tables dropped the user (which raised the
    /// epoch), so a reader's older copy cannot come back.
    pub fn forget(&self, user_id: &str) {
        self.write(user_id).users.insert(
            user_id.to_owned(),
            Entry {
                known: None,
                dirty: false,
            },
        );
    }

    /// The user changed in a commit that has happened: drops the cached
    /// copy, and keeps out the copies of readers that took their ticket
    /// before this call (they may have read the state before the commit).
    pub fn invalidate(&self, user_id: &str) {
        let mut shard = self.write(user_id);
        shard.epoch += 1;
        shard.users.remove(user_id);
    }

    /// Forgets everything, and keeps out every reader's copy taken before.
    pub fn clear(&self) {
        self.advance_epoch();
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(|e| e.into_inner());
            shard.epoch += 1;
            shard.users.clear();
        }
    }

    /// Keeps `known` unless something at least as new is already cached, or
    /// it was read with a `ticket` that has passed.
    ///
    /// The ticket is checked under the shard's lock. The writer raises the
    /// epoch before it marks anything clean, and only clean entries are
    /// evicted; so if a reader's user is missing here because it was evicted
    /// after a materialization, the reader sees the raised epoch and keeps
    /// out. Likewise [`UserCache::invalidate`] raises the shard's epoch
    /// under the same lock as it drops the copy.
    fn offer(&self, user_id: &str, known: Known, dirty: bool, ticket: Option<Ticket>) {
        let mut shard = self.write(user_id);
        if let Some(ticket) = ticket
            && (ticket.global != self.epoch.load(Ordering::SeqCst) || ticket.shard != shard.epoch)
        {
            return;
        }
        if let Some(cached) = shard.users.get_mut(user_id) {
            if version_of(&cached.known) < version_of(&known) {
                *cached = Entry { known, dirty };
            }
            return;
        }
        if shard.users.len() >= self.per_shard
            && let Some(victim) = shard
                .users
                .iter()
                .find(|(_, e)| !e.dirty)
                .map(|(id, _)| id.clone())
        {
            shard.users.remove(&victim);
        }
        shard
            .users
            .insert(user_id.to_owned(), Entry { known, dirty });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(version: u64) -> Arc<UserSnapshot> {
        Arc::new(UserSnapshot {
            version,
            ..UserSnapshot::default()
        })
    }

    /// How many users the cache holds.
    fn held(cache: &UserCache) -> usize {
        cache
            .shards
            .iter()
            .map(|s| s.read().unwrap().users.len())
            .sum()
    }

    fn cached_version(cache: &UserCache, user: &str) -> Option<u64> {
        cache.get(user).map(|k| version_of(&k))
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_one() {
        let cache = UserCache::new(100);
        cache.offer_written("u", at(5), false);
        cache.offer_read("u", Some(at(4)), cache.ticket("u"));
        assert_eq!(cached_version(&cache, "u"), Some(5));
        cache.offer_written("u", at(6), true);
        assert_eq!(cached_version(&cache, "u"), Some(6));
    }

    #[test]
    fn a_user_found_absent_gives_way_to_its_first_commit_but_not_the_reverse() {
        let cache = UserCache::new(100);
        cache.offer_read("new", None, cache.ticket("new"));
        assert_eq!(cache.get("new"), Some(None));
        cache.offer_written("new", at(1), true);
        cache.offer_read("new", None, cache.ticket("new")); // a reader that looked before the commit
        assert_eq!(cached_version(&cache, "new"), Some(1));
    }

    #[test]
    fn a_read_that_overlapped_a_materialization_is_not_kept() {
        let cache = UserCache::new(100);
        let ticket = cache.ticket("u");
        cache.advance_epoch();
        cache.offer_read("u", Some(at(3)), ticket);
        assert_eq!(cache.get("u"), None);
    }

    #[test]
    fn the_cache_stays_within_its_bound_and_never_evicts_dirty_state() {
        let cache = UserCache::new(SHARDS);
        for i in 0..100 {
            cache.offer_written(&format!("dirty_{i}"), at(1), true);
        }
        for i in 0..10_000 {
            cache.offer_written(&format!("user_{i}"), at(1), false);
        }
        for i in 0..100 {
            assert_eq!(cached_version(&cache, &format!("dirty_{i}")), Some(1));
        }
        let count = held(&cache);
        assert!(count <= SHARDS + 100, "{count}");
        // Once clean, they can go.
        for i in 0..100 {
            cache.mark_clean(&format!("dirty_{i}"), 1);
        }
        for i in 0..10_000 {
            cache.offer_written(&format!("later_{i}"), at(1), false);
        }
        let count = held(&cache);
        assert!(count <= SHARDS + 100, "{count}");
        let dirty_left = (0..100)
            .filter(|i| cache.get(&format!("dirty_{i}")).is_some())
            .count();
        assert!(dirty_left < 100, "clean entries were never evicted");
    }

    #[test]
    fn a_read_that_overlapped_an_invalidation_is_not_kept() {
        let cache = UserCache::new(100);
        cache.offer_written("u", at(4), false);
        let ticket = cache.ticket("u"); // a reader asks, and reads version 4 ...
        cache.invalidate("u"); // ... while a commit makes it 5
        assert_eq!(cache.get("u"), None);
        cache.offer_read("u", Some(at(4)), ticket);
        assert_eq!(cache.get("u"), None, "the stale read came back");
        let ticket = cache.ticket("u");
        cache.offer_read("u", Some(at(5)), ticket);
        assert_eq!(cached_version(&cache, "u"), Some(5));
    }

    #[test]
    fn clear_forgets_everything_and_keeps_earlier_reads_out() {
        let cache = UserCache::new(100);
        cache.offer_written("a", at(2), false);
        cache.offer_read("b", None, cache.ticket("b"));
        let ticket = cache.ticket("c");
        cache.clear();
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get("b"), None);
        cache.offer_read("c", Some(at(1)), ticket);
        assert_eq!(cache.get("c"), None);
    }
}
