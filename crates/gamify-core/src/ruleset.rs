//! A rule set: everything that decides what an event earns, as data. The
//! default is exactly the brief's rules; a product team replaces it with
//! its own (see [`crate::rulefile`] for the file form). Rule sets are
//! versioned by storage: an event keeps the version it was scored with.

use crate::{
    Achievement, Category, LevelCurve, Points, RuleError, StreakPolicy, brief_catalogue,
    rules::MAX_BACKFILL_DAYS,
};

/// Most categories one rule set may name.
pub const MAX_CATEGORIES: usize = 64;
/// Most achievements one rule set may define.
pub const MAX_ACHIEVEMENTS: usize = 256;
/// Most thresholds a level table may have.
pub const MAX_LEVELS: usize = 1000;
/// The largest category weight, in thousandths (1000.0).
pub const MAX_WEIGHT_MILLI: i64 = 1_000_000;
/// The largest per-event value cap (one billion).
pub const MAX_VALUE_CAP: Points = Points::whole(1_000_000_000);
/// The largest achievement bonus (one million points).
pub const MAX_BONUS: Points = Points::whole(1_000_000);

/// Everything that decides what an event earns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    /// The categories and their weights in thousandths (2.0 is 2000), in
    /// presentation order.
    pub categories: Vec<(Category, i64)>,
    /// How a streak raises an event's points.
    pub streak: StreakPolicy,
    /// How lifetime points map to levels.
    pub levels: LevelCurve,
    /// What can be unlocked, in the order unlocks are checked and reported.
    pub achievements: Vec<Achievement>,
    /// The largest `value` one event may carry.
    pub max_event_value: Points,
    /// How many days back `occurred_at` may lie (1..=365).
    pub backfill_days: u32,
}

impl Default for RuleSet {
    /// The brief's rules.
    fn default() -> RuleSet {
        RuleSet {
            categories: vec![
                (Category::FINANCE, 2000),
                (Category::LEARNING, 1500),
                (Category::HEALTH, 1200),
                (Category::PRODUCTIVITY, 1000),
                (Category::SOCIAL, 800),
            ],
            streak: StreakPolicy::default(),
            levels: LevelCurve::default(),
            achievements: brief_catalogue(),
            max_event_value: Points::whole(1000),
            backfill_days: 30,
        }
    }
}

impl RuleSet {
    /// The category called `name`, if this rule set has it; the error names
    /// the ones it has.
    pub fn category(&self, name: &str) -> Result<Category, RuleError> {
        self.categories
            .iter()
            .find(|(c, _)| c.as_str() == name)
            .map(|(c, _)| *c)
            .ok_or_else(|| self.unknown_category(name))
    }

    /// The error for a category `name` this rule set does not have: it
    /// names the ones it has.
    pub fn unknown_category(&self, name: &str) -> RuleError {
        RuleError::UnknownCategory {
            given: name.chars().take(64).collect(),
            known: self
                .categories
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The weight of `category` in thousandths, if this rule set has it.
    pub fn weight_milli(&self, category: Category) -> Option<i64> {
        self.categories
            .iter()
            .find(|(c, _)| *c == category)
            .map(|(_, w)| *w)
    }

    /// The catalogue entry for `id`, if this rule set has it.
    pub fn achievement(&self, id: crate::AchievementId) -> Option<&Achievement> {
        self.achievements.iter().find(|a| a.id == id)
    }

    /// The level reached with `lifetime` points.
    pub fn level_for(&self, lifetime: Points) -> u64 {
        self.levels.level_for(lifetime)
    }

    /// The lifetime points at which `level` ends.
    pub fn next_level_points(&self, level: u64) -> Points {
        self.levels.next_level_points(level)
    }

    /// Checks an event's time against `now`: at most `max_future_skew_ms`
    /// ahead, at most `backfill_days` behind (measured in instants, not
    /// calendar days).
    pub fn check_occurred_at(
        &self,
        occurred_ms: i64,
        now_ms: i64,
        max_future_skew_ms: i64,
    ) -> Result<(), RuleError> {
        if occurred_ms > now_ms.saturating_add(max_future_skew_ms) {
            return Err(RuleError::OccurredInFuture {
                max_skew_seconds: max_future_skew_ms / 1000,
            });
        }
        let window_ms = i64::from(self.backfill_days) * 86_400_000;
        if occurred_ms < now_ms.saturating_sub(window_ms) {
            return Err(RuleError::OccurredTooOld {
                backfill_days: self.backfill_days,
            });
        }
        Ok(())
    }

    /// Every way this rule set cannot work, each as (where, what is wrong);
    /// `where` is a path such as `categories.finance` or
    /// `achievements[2].bonus`. Empty when it is valid.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bad = |at: String, what: String| out.push((at, what));
        if self.categories.is_empty() {
            bad("categories".into(), "expected at least one category".into());
        }
        if self.categories.len() > MAX_CATEGORIES {
            bad(
                "categories".into(),
                format!("expected at most {MAX_CATEGORIES} categories"),
            );
        }
        for (i, (c, w)) in self.categories.iter().enumerate() {
            if !(1..=MAX_WEIGHT_MILLI).contains(w) {
                bad(
                    format!("categories.{c}"),
                    "expected a weight from 0.001 to 1000".into(),
                );
            }
            if self.categories[..i].iter().any(|(d, _)| d == c) {
                bad(format!("categories.{c}"), "is listed twice".into());
            }
        }
        let s = self.streak;
        if !(1..=MAX_BACKFILL_DAYS).contains(&s.first_bonus_day) {
            bad(
                "streak.first_bonus_day".into(),
                format!("expected 1 to {MAX_BACKFILL_DAYS}"),
            );
        }
        if s.percent_per_day > 100 {
            bad("streak.percent_per_day".into(), "expected 0 to 100".into());
        }
        if s.max_percent > 1000 {
            bad("streak.max_percent".into(), "expected 0 to 1000".into());
        }
        match &self.levels {
            LevelCurve::Linear { step } if *step <= Points::ZERO => {
                bad(
                    "levels.points_per_level".into(),
                    "expected a number greater than 0".into(),
                );
            }
            LevelCurve::Table { starts } => {
                if starts.is_empty() || starts.len() > MAX_LEVELS {
                    bad(
                        "levels.thresholds".into(),
                        format!("expected 1 to {MAX_LEVELS} thresholds"),
                    );
                }
                if starts.first().is_some_and(|p| *p <= Points::ZERO)
                    || starts.windows(2).any(|w| w[0] >= w[1])
                {
                    bad(
                        "levels.thresholds".into(),
                        "expected positive thresholds, each greater than the one before".into(),
                    );
                }
            }
            LevelCurve::Linear { .. } => {}
        }
        if self.achievements.len() > MAX_ACHIEVEMENTS {
            bad(
                "achievements".into(),
                format!("expected at most {MAX_ACHIEVEMENTS} achievements"),
            );
        }
        for (i, a) in self.achievements.iter().enumerate() {
            let at = |field: &str| format!("achievements[{i}].{field}");
            if self.achievements[..i].iter().any(|b| b.id == a.id) {
                bad(at("id"), format!("{} is defined twice", a.id));
            }
            if !(Points::ZERO..=MAX_BONUS).contains(&a.bonus) {
                bad(at("bonus"), "expected 0 to 1000000".into());
            }
            for (field, text, max) in [
                ("name.fi", &a.name.fi, 100),
                ("name.en", &a.name.en, 100),
                ("description.fi", &a.description.fi, 500),
                ("description.en", &a.description.en, 500),
            ] {
                let len = text.chars().count();
                if (field.starts_with("name") && len == 0) || len > max {
                    bad(at(field), format!("expected 1 to {max} characters"));
                } else if text.chars().any(char::is_control) {
                    // Shown as is in apps and stored as text (PostgreSQL
                    // cannot hold a NUL); a line break has no place either.
                    bad(at(field), "must not contain control characters".into());
                }
            }
            if let Some(c) = a.requirement.category()
                && self.weight_milli(c).is_none()
            {
                bad(at("category"), format!("{c} is not one of the categories"));
            }
            // A threshold is named as a rules file names it.
            let threshold = match a.requirement {
                crate::Requirement::FirstEvent => None,
                crate::Requirement::StreakDays(n) => (n < 1).then_some(("days", "of at least 1")),
                crate::Requirement::CategoryEvents(_, n) => {
                    (n < 1).then_some(("events", "of at least 1"))
                }
                crate::Requirement::LifetimePoints(p)
                | crate::Requirement::CategoryPoints(_, p) => {
                    (p <= Points::ZERO).then_some(("points", "greater than 0"))
                }
            };
            if let Some((field, least)) = threshold {
                bad(at(field), format!("expected a number {least}"));
            }
        }
        if !(Points::from_milli(1)..=MAX_VALUE_CAP).contains(&self.max_event_value) {
            bad(
                "max_event_value".into(),
                "expected a number from 0.001 to 1000000000".into(),
            );
        }
        if !(1..=MAX_BACKFILL_DAYS).contains(&self.backfill_days) {
            bad(
                "backfill_days".into(),
                format!("expected 1 to {MAX_BACKFILL_DAYS}"),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_briefs_and_valid() {
        let rules = RuleSet::default();
        assert_eq!(rules.problems(), Vec::<(String, String)>::new());
        assert_eq!(rules.weight_milli(Category::FINANCE), Some(2000));
        assert_eq!(rules.streak.bonus_percent(7), 35);
        assert_eq!(rules.level_for(Points::whole(250)), 3);
    }

    #[test]
    fn unknown_category_error_names_the_known_ones() {
        let err = RuleSet::default().category("gaming").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown category \"gaming\"; known categories: finance, learning, health, productivity, social"
        );
        assert_eq!(err.field(), "category");
    }

    #[test]
    fn occurred_at_window() {
        let rules = RuleSet::default();
        let now = 100 * 86_400_000;
        let skew = 300_000;
        assert!(rules.check_occurred_at(now, now, skew).is_ok());
        assert!(rules.check_occurred_at(now + 300_000, now, skew).is_ok());
        assert!(rules.check_occurred_at(now + 300_001, now, skew).is_err());
        assert!(
            rules
                .check_occurred_at(now - 30 * 86_400_000, now, skew)
                .is_ok()
        );
        assert!(
            rules
                .check_occurred_at(now - 30 * 86_400_000 - 1, now, skew)
                .is_err()
        );
    }

    #[test]
    fn each_broken_part_is_named() {
        let mut rules = RuleSet::default();
        rules.categories.push((Category::FINANCE, 0));
        rules.achievements[1].requirement =
            crate::Requirement::CategoryEvents(Category::named("chess").unwrap(), 3);
        rules.backfill_days = 0;
        let at: Vec<String> = rules.problems().into_iter().map(|(at, _)| at).collect();
        assert_eq!(
            at,
            [
                "categories.finance",
                "categories.finance",
                "achievements[1].category",
                "backfill_days"
            ]
        );
    }
}
