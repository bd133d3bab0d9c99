//! The rules of the Gamify habit economy, as pure functions.
//!
//! Nothing here does I/O, reads a clock or draws random numbers: the time of an
//! event arrives as a [`Day`] or as Unix milliseconds, and the rule set as an
//! argument. The same inputs always give the same outcome, which is what lets
//! the rules be property-tested and reused by embedders and by every storage
//! backend alike.
//!
//! Map of the crate:
//! - [`points`]: [`Points`] and [`Value`], exact amounts in thousandths.
//! - [`ruleset`]: [`RuleSet`], everything that decides what an event earns,
//!   as data (the default is the brief's rules); [`rulefile`] reads and
//!   writes it as TOML.
//! - [`category`]: category names.
//! - [`streak`]: [`Day`], the active-day history and the streak policy.
//! - [`level`]: level curves.
//! - [`achievement`]: achievements and the brief's catalogue.
//! - [`ids`]: validated user ids and action names.
//! - [`rules`]: the deployment's settings around the rule set ([`Rules`]).
//! - [`wallet`]: spending: debits, credits and what makes a reward
//!   redeemable ([`RewardTerms`]).
//! - [`score`]: [`apply_event`], which turns one event into points, bonuses and
//!   unlocked achievements for a user's state.

pub mod achievement;
pub mod category;
pub mod ids;
pub mod level;
pub mod points;
pub mod rulefile;
pub mod rules;
pub mod ruleset;
pub mod score;
pub mod streak;
pub mod wallet;
pub mod window;

pub use achievement::{
    Achievement, AchievementId, History, Requirement, Text, achievement_breaches, brief_catalogue,
};
pub use category::Category;
pub use ids::{Action, UserId};
pub use level::LevelCurve;
pub use points::{Points, Value};
pub use rulefile::{RuleFileError, parse_rules, write_rules};
pub use rules::{Rules, RulesError, SPECIAL_REWARD};
pub use ruleset::RuleSet;
pub use score::{CategoryTotal, EventFacts, Scored, UserState, add_to_category, apply_event};
pub use streak::{Day, STREAK_POLICY, StreakPolicy, StreakRuns};
pub use wallet::{Expiry, Refusal, RewardTerms, credit, debit};
pub use window::{Period, Window};

/// Why an input does not satisfy the rules. Each variant names the field it
/// concerns through [`RuleError::field`], so that an API can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// `value` was NaN or infinite.
    #[error("value must be a finite number")]
    ValueNotFinite,
    /// `value` was zero or negative.
    #[error("value must be greater than 0")]
    ValueNotPositive,
    /// `value` rounds to zero thousandths.
    #[error("value must be at least 0.001")]
    ValueTooSmall,
    /// `value` is above the configured per-event maximum.
    #[error("value must be at most {max}")]
    ValueTooLarge {
        /// The configured maximum.
        max: Points,
    },
    /// The category is not one of the known ones.
    #[error("unknown category {given:?}; known categories: {known}")]
    UnknownCategory {
        /// What the caller sent.
        given: String,
        /// The known categories, comma-separated.
        known: String,
    },
    /// `occurred_at` lies further in the future than the allowed clock skew.
    #[error("occurred_at is more than {max_skew_seconds} seconds in the future")]
    OccurredInFuture {
        /// The allowed skew.
        max_skew_seconds: i64,
    },
    /// `occurred_at` is older than the backfill window.
    #[error("occurred_at is older than the backfill window of {backfill_days} days")]
    OccurredTooOld {
        /// The configured window.
        backfill_days: u32,
    },
    /// `user_id` is empty, too long or has characters outside the allowed set.
    #[error("user_id {0}")]
    InvalidUserId(&'static str),
    /// `action` is empty, too long or has control characters.
    #[error("action {0}")]
    InvalidAction(&'static str),
    /// A sum would leave the range of [`Points`]. Unreachable with sane limits,
    /// but checked rather than wrapped.
    #[error("points would overflow")]
    Overflow,
}

impl RuleError {
    /// The request field the error concerns.
    pub fn field(&self) -> &'static str {
        match self {
            RuleError::ValueNotFinite
            | RuleError::ValueNotPositive
            | RuleError::ValueTooSmall
            | RuleError::ValueTooLarge { .. }
            | RuleError::Overflow => "value",
            RuleError::UnknownCategory { .. } => "category",
            RuleError::OccurredInFuture { .. } | RuleError::OccurredTooOld { .. } => "occurred_at",
            RuleError::InvalidUserId(_) => "user_id",
            RuleError::InvalidAction(_) => "action",
        }
    }
}
