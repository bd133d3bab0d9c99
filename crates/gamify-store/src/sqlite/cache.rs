//! Users' current state in memory, so balance reads need neither a query nor
//! a hop to a blocking thread.
//!
//! Correctness rests on two rules. Only committed state enters: the writer
//! publishes after its commit, and a reader that missed publishes what it read
//! from the database. And a copy never replaces a newer one: every change to a
//! user raises its `version`, and [`UserCache::offer`] keeps the higher. So a
//! reader that read an old row just before a commit cannot overwrite the
//! writer's newer copy. This holds only while one process writes the file,
//! which the store's lock file guarantees.
//!
//! It also remembers users it found absent (as version 0, which the first
//! commit for that user, version 1, supersedes), so that reads of users with
//! no events do not go to the database each time.
//!
//! The cache is bounded; past the bound a shard drops an arbitrary entry,
//! which costs only a database read the next time that user is asked for.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, RwLock};

use crate::UserSnapshot;

const SHARDS: usize = 64;

/// What the cache knows of a user: absent (no events, as of version 0) or
/// its state.
pub type Known = Option<Arc<UserSnapshot>>;

fn version(known: &Known) -> u64 {
    known.as_ref().map_or(0, |s| s.version)
}

/// A bounded, sharded map from user id to that user's latest known state.
pub struct UserCache {
    shards: Vec<RwLock<HashMap<String, Known>>>,
    hasher: RandomState,
    per_shard: usize,
}

impl UserCache {
    /// A cache holding at most about `capacity` users.
    pub fn new(capacity: usize) -> UserCache {
        UserCache {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, user_id: &str) -> &RwLock<HashMap<String, Known>> {
        &self.shards[self.hasher.hash_one(user_id) as usize % SHARDS]
    }

    /// What is known of the user, if anything: `Some(None)` means known absent.
    pub fn get(&self, user_id: &str) -> Option<Known> {
        self.shard(user_id)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(user_id)
            .cloned()
    }

    /// Drops what is known of the user; the next read goes to the database.
    pub fn forget(&self, user_id: &str) {
        self.shard(user_id)
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(user_id);
    }

    /// Keeps `known` unless something at least as new is already cached.
    pub fn offer(&self, user_id: &str, known: Known) {
        let mut shard = self
            .shard(user_id)
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(cached) = shard.get_mut(user_id) {
            if version(cached) < version(&known) {
                *cached = known;
            }
            return;
        }
        if shard.len() >= self.per_shard
            && let Some(victim) = shard.keys().next().cloned()
        {
            shard.remove(&victim);
        }
        shard.insert(user_id.to_owned(), known);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(version: u64) -> Known {
        Some(Arc::new(UserSnapshot {
            version,
            ..UserSnapshot::default()
        }))
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_one() {
        let cache = UserCache::new(100);
        cache.offer("u", at(5));
        cache.offer("u", at(4));
        assert_eq!(version(&cache.get("u").unwrap()), 5);
        cache.offer("u", at(6));
        assert_eq!(version(&cache.get("u").unwrap()), 6);
    }

    #[test]
    fn a_user_found_absent_gives_way_to_its_first_commit_but_not_the_reverse() {
        let cache = UserCache::new(100);
        cache.offer("new", None);
        assert_eq!(cache.get("new"), Some(None));
        cache.offer("new", at(1));
        cache.offer("new", None); // a reader that looked before the commit
        assert_eq!(version(&cache.get("new").unwrap()), 1);
    }

    #[test]
    fn the_cache_stays_within_its_bound() {
        let cache = UserCache::new(SHARDS);
        for i in 0..10_000 {
            cache.offer(&format!("user_{i}"), at(1));
        }
        let held: usize = cache.shards.iter().map(|s| s.read().unwrap().len()).sum();
        assert!(held <= SHARDS, "{held}");
    }
}
