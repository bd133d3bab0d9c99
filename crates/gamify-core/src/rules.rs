//! The limits every event must respect.

use crate::{AchievementId, Day, Points, RuleError};

/// How long a user's streak history is kept: the longest backfill window
/// allowed, plus one day so that a backfilled day can still join the run
/// just before the window.
pub const MAX_BACKFILL_DAYS: u32 = 365;

/// The tunable limits of the rule set. The weights, streak policy, level curve
/// and catalogue are the brief's and fixed in code for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// The largest `value` one event may carry.
    pub max_event_value: Points,
    /// How many days back `occurred_at` may lie (1..=365).
    pub backfill_days: u32,
    /// How far in the future `occurred_at` may lie, to absorb clock skew.
    pub max_future_skew_ms: i64,
    /// Rewards an achievement grants, free, when it unlocks: (achievement,
    /// reward id). The reward itself is catalogue data; a grant whose reward
    /// does not exist or cannot be redeemed then is skipped (and logged).
    pub grants: Vec<(AchievementId, String)>,
    /// Point expiry; `None` (the default): points never expire.
    pub expiry: Option<crate::Expiry>,
}

/// The reward id the brief's "Tuhat pistettä — Badge + Special reward"
/// grants by default.
pub const SPECIAL_REWARD: &str = "special_reward";

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            max_event_value: Points::whole(1000),
            backfill_days: 30,
            max_future_skew_ms: 5 * 60 * 1000,
            grants: vec![(AchievementId::Points1000, SPECIAL_REWARD.to_owned())],
            expiry: None,
        }
    }
}

/// A rule set that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// `max_event_value` is not positive.
    #[error("max_event_value must be greater than 0")]
    MaxValueNotPositive,
    /// `backfill_days` is outside 1..=365.
    #[error("backfill_days must be between 1 and {MAX_BACKFILL_DAYS}")]
    BackfillOutOfRange,
    /// `max_future_skew_ms` is negative or over a day.
    #[error("max_future_skew_seconds must be between 0 and 86400")]
    SkewOutOfRange,
    /// Expiry after 0 days, or after more than ten years.
    #[error("points_expire_after_days must be between 1 and 3650, or 0 for never")]
    ExpiryOutOfRange,
    /// A grant names no reward, or one achievement grants twice.
    #[error("achievement_rewards: {0}")]
    BadGrant(String),
}

impl Rules {
    /// Checks that the limits make sense.
    pub fn validate(&self) -> Result<(), RulesError> {
        if self.max_event_value <= Points::ZERO {
            return Err(RulesError::MaxValueNotPositive);
        }
        if !(1..=MAX_BACKFILL_DAYS).contains(&self.backfill_days) {
            return Err(RulesError::BackfillOutOfRange);
        }
        if !(0..=86_400_000).contains(&self.max_future_skew_ms) {
            return Err(RulesError::SkewOutOfRange);
        }
        if self.expiry.is_some_and(|e| !(1..=3650).contains(&e.days)) {
            return Err(RulesError::ExpiryOutOfRange);
        }
        for (i, (achievement, reward)) in self.grants.iter().enumerate() {
            if reward.is_empty() {
                return Err(RulesError::BadGrant(format!(
                    "{} names an empty reward id",
                    achievement.as_str()
                )));
            }
            if self.grants[..i].iter().any(|(a, _)| a == achievement) {
                return Err(RulesError::BadGrant(format!(
                    "{} is listed twice",
                    achievement.as_str()
                )));
            }
        }
        Ok(())
    }

    /// Checks an event's time against `now`: at most the skew ahead, at most
    /// `backfill_days` behind (measured in instants, not calendar days).
    pub fn check_occurred_at(&self, occurred_ms: i64, now_ms: i64) -> Result<(), RuleError> {
        if occurred_ms > now_ms.saturating_add(self.max_future_skew_ms) {
            return Err(RuleError::OccurredInFuture {
                max_skew_seconds: self.max_future_skew_ms / 1000,
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

    /// The reward `achievement` grants, if any.
    pub fn grant_for(&self, achievement: AchievementId) -> Option<&str> {
        self.grants
            .iter()
            .find(|(a, _)| *a == achievement)
            .map(|(_, r)| r.as_str())
    }

    /// The oldest day whose run must still be remembered, given the newest
    /// active day: anything older cannot be touched by an accepted event.
    pub fn history_horizon(last_day: Day) -> Day {
        Day(last_day.0 - i64::from(MAX_BACKFILL_DAYS) - 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occurred_at_window() {
        let rules = Rules::default();
        let now = 100 * 86_400_000;
        assert!(rules.check_occurred_at(now, now).is_ok());
        assert!(rules.check_occurred_at(now + 300_000, now).is_ok());
        assert!(rules.check_occurred_at(now + 300_001, now).is_err());
        assert!(rules.check_occurred_at(now - 30 * 86_400_000, now).is_ok());
        assert!(
            rules
                .check_occurred_at(now - 30 * 86_400_000 - 1, now)
                .is_err()
        );
    }

    #[test]
    fn defaults_are_valid_and_bad_limits_are_refused() {
        assert_eq!(Rules::default().validate(), Ok(()));
        let bad = Rules {
            backfill_days: 0,
            ..Rules::default()
        };
        assert_eq!(bad.validate(), Err(RulesError::BackfillOutOfRange));
    }
}
