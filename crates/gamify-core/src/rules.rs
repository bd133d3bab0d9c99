//! The deployment's settings around the rules: clock skew, rewards that
//! achievements grant, point expiry. What an event earns is the
//! [`crate::RuleSet`]'s.

use crate::{AchievementId, Day};

/// How long a user's streak history is kept: the longest backfill window
/// allowed, plus one day so that a backfilled day can still join the run
/// just before the window.
pub const MAX_BACKFILL_DAYS: u32 = 365;

/// The deployment's settings around the rule set (which is versioned
/// data; these are configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
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
            max_future_skew_ms: 5 * 60 * 1000,
            grants: vec![(AchievementId::POINTS_1000, SPECIAL_REWARD.to_owned())],
            expiry: None,
        }
    }
}

/// A rule set that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
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
    fn defaults_are_valid_and_bad_settings_are_refused() {
        assert_eq!(Rules::default().validate(), Ok(()));
        let bad = Rules {
            max_future_skew_ms: -1,
            ..Rules::default()
        };
        assert_eq!(bad.validate(), Err(RulesError::SkewOutOfRange));
    }
}
