//! Every version of the rules a store has scored with. Version 1 is the
//! brief's rules (what every store scored with before rules were data);
//! each change adds the next number. Versions are never changed or
//! deleted: an event keeps the version it was scored with, and replaying
//! it (recovery, checks) uses that version again.

use std::sync::{Arc, RwLock};

use gamify_core::{RuleSet, parse_rules, write_rules};

use crate::{StoreError, corrupt};

/// One version of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleVersion {
    /// 1, 2, …
    pub version: u32,
    /// The rules.
    pub rules: Arc<RuleSet>,
    /// When it was added (Unix ms).
    pub created_at_ms: i64,
}

impl RuleVersion {
    /// A version from its stored form: the canonical TOML of
    /// [`gamify_core::write_rules`].
    pub fn from_stored(
        version: u32,
        text: &str,
        created_at_ms: i64,
    ) -> Result<RuleVersion, StoreError> {
        let rules = parse_rules(text).map_err(|errors| {
            corrupt(
                "rules version",
                &format!(
                    "{version}: {}",
                    errors.first().map(ToString::to_string).unwrap_or_default()
                ),
            )
        })?;
        Ok(RuleVersion {
            version,
            rules: Arc::new(rules),
            created_at_ms,
        })
    }

    /// Its stored form.
    pub fn stored_text(&self) -> String {
        write_rules(&self.rules)
    }
}

/// The versions a store knows, oldest first; shared by the store and the
/// engine above it. Never empty.
#[derive(Debug)]
pub struct RuleBook {
    versions: RwLock<Vec<Arc<RuleVersion>>>,
}

impl RuleBook {
    /// A book of `versions` (sorted by number, starting at 1, no gaps).
    pub fn new(versions: Vec<RuleVersion>) -> Result<RuleBook, StoreError> {
        let book = RuleBook {
            versions: RwLock::new(Vec::new()),
        };
        book.extend(versions)?;
        if book.read().is_empty() {
            return Err(corrupt("rules versions", "none stored"));
        }
        Ok(book)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<RuleVersion>>> {
        self.versions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The rules new events are scored with.
    pub fn current(&self) -> Arc<RuleVersion> {
        self.read()
            .last()
            .cloned()
            .expect("a rule book is never empty")
    }

    /// Version `version`, if known.
    pub fn get(&self, version: u32) -> Option<Arc<RuleVersion>> {
        let index = usize::try_from(version).ok()?.checked_sub(1)?;
        self.read().get(index).cloned()
    }

    /// The rules of version `version`, or a corruption error naming what
    /// needed it.
    pub fn rules(&self, version: u32, needed_by: &str) -> Result<Arc<RuleSet>, StoreError> {
        self.get(version)
            .map(|v| v.rules.clone())
            .ok_or_else(|| corrupt("rules version", &format!("{version} (of {needed_by})")))
    }

    /// Every version, oldest first.
    pub fn all(&self) -> Vec<Arc<RuleVersion>> {
        self.read().clone()
    }

    /// Every category any version has had, in order of first appearance:
    /// boards of a category a change removed stay readable.
    pub fn categories(&self) -> Vec<gamify_core::Category> {
        let mut out = Vec::new();
        for v in self.read().iter() {
            for (c, _) in &v.rules.categories {
                if !out.contains(c) {
                    out.push(*c);
                }
            }
        }
        out
    }

    /// Adds the versions after the newest known one (others are ignored:
    /// versions never change). A gap in the numbers is corruption.
    pub fn extend(&self, versions: Vec<RuleVersion>) -> Result<(), StoreError> {
        let mut known = self
            .versions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for v in versions {
            let next = known.len() as u32 + 1;
            if v.version < next {
                continue;
            }
            if v.version > next {
                return Err(corrupt(
                    "rules version",
                    &format!("{} follows {}", v.version, next - 1),
                ));
            }
            known.push(Arc::new(v));
        }
        Ok(())
    }
}

/// What a store adds at open when it has no versions yet: version 1 is the
/// brief's rules, which every event before versions existed was scored
/// with. Built in rather than made, it is dated the Unix epoch (0), the
/// same in every store, so that an export and its import agree.
pub fn first_version() -> RuleVersion {
    RuleVersion {
        version: 1,
        rules: Arc::new(RuleSet::default()),
        created_at_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_kept_in_order_and_never_replaced() {
        let book = RuleBook::new(vec![first_version()]).unwrap();
        let changed = RuleSet {
            backfill_days: 7,
            ..RuleSet::default()
        };
        let second = RuleVersion {
            version: 2,
            rules: Arc::new(changed.clone()),
            created_at_ms: 2,
        };
        book.extend(vec![first_version(), second.clone()]).unwrap();
        assert_eq!(book.current().version, 2);
        assert_eq!(book.get(1).unwrap().created_at_ms, 0);
        assert_eq!(*book.rules(2, "test").unwrap(), changed);
        assert!(book.get(3).is_none() && book.get(0).is_none());
        let gap = RuleVersion {
            version: 4,
            ..second.clone()
        };
        assert!(book.extend(vec![gap]).is_err());
        let text = second.stored_text();
        assert_eq!(RuleVersion::from_stored(2, &text, 2).unwrap(), second);
    }
}
