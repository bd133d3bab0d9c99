//! Categories of behaviour. Which categories exist, and what each weighs,
//! is rule data ([`crate::RuleSet::categories`]); a [`Category`] is only a
//! checked name.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// The longest category name.
pub const MAX_CATEGORY_LEN: usize = 32;

/// What kind of behaviour an event rewards: a name of 1 to 32 characters,
/// `a`–`z`, `0`–`9` and `_`, starting with a letter (the brief's five, and
/// custom ones such as `custom_category`).
///
/// A `Category` is `Copy`: the name is interned, kept once for the life of
/// the process. Names come from rule sets (a few dozen) and from stored rows
/// that a rule set once named, so the interned set stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Category(&'static str);

impl Category {
    /// Paying invoices, tracking expenses (2.0 by default).
    pub const FINANCE: Category = Category("finance");
    /// Lessons, articles, quizzes (1.5 by default).
    pub const LEARNING: Category = Category("learning");
    /// Exercise, sleep, meals (1.2 by default).
    pub const HEALTH: Category = Category("health");
    /// Tasks, goals, milestones (1.0 by default).
    pub const PRODUCTIVITY: Category = Category("productivity");
    /// Collaboration, community, reviews (0.8 by default).
    pub const SOCIAL: Category = Category("social");

    /// The brief's categories, in its order.
    pub const BRIEF: [Category; 5] = [
        Category::FINANCE,
        Category::LEARNING,
        Category::HEALTH,
        Category::PRODUCTIVITY,
        Category::SOCIAL,
    ];

    /// The name used on the wire and in storage.
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// The category called `name`, if the name is well formed. Whether a
    /// rule set knows it is [`crate::RuleSet::category`]'s question.
    pub fn named(name: &str) -> Option<Category> {
        if !is_name(name, MAX_CATEGORY_LEN) {
            return None;
        }
        if let Some(c) = Category::BRIEF.into_iter().find(|c| c.0 == name) {
            return Some(c);
        }
        Some(Category(intern(name)))
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// True for `[a-z][a-z0-9_]*` of at most `max` bytes: the shape of rule
/// names (categories, achievement ids).
pub(crate) fn is_name(name: &str, max: usize) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// The one copy of `name` kept for the process. Each distinct name is
/// allocated once and never freed (names are short and few).
pub(crate) fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(kept) = names.get(name) {
        return kept;
    }
    let kept: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(kept);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_interned_once() {
        assert_eq!(Category::named("finance"), Some(Category::FINANCE));
        let a = Category::named("custom_category").unwrap();
        let b = Category::named(&String::from("custom_category")).unwrap();
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        for bad in ["", "Finance", "1abc", "a-b", "naïve", &"x".repeat(33)] {
            assert_eq!(Category::named(bad), None, "{bad:?}");
        }
    }
}
