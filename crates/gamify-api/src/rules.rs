//! The rules in force, as data (`GET /api/v2/gamify/admin/rules`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AchievementResponse;

/// Everything that decides what an event earns.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct RulesResponse {
    /// The version: 1 is the brief's rules; each change adds one.
    pub version: u32,
    /// When this version was made (UTC, RFC 3339).
    pub created_at: String,
    /// `built-in` when they are exactly the brief's rules, else `custom`.
    pub source: String,
    /// The same rules as a rules file (TOML), as
    /// `PUT /api/v2/gamify/admin/rules` and `gamify rules check` take it.
    pub toml: String,
    /// The categories and their weights, in the file's order.
    pub categories: Vec<CategoryRule>,
    /// How a streak raises points.
    pub streak: StreakRule,
    /// The level curve.
    pub levels: LevelRule,
    /// The achievement catalogue.
    pub achievements: Vec<AchievementResponse>,
    /// The largest `value` one event may carry.
    pub max_event_value: f64,
    /// How many days back `occurred_at` may lie.
    pub backfill_days: u32,
    /// How far ahead `occurred_at` may lie.
    pub max_future_skew_seconds: i64,
    /// Days points stay spendable; null: they never expire.
    pub points_expire_after_days: Option<u32>,
    /// Rewards an achievement grants when it unlocks: achievement → reward.
    pub achievement_rewards: BTreeMap<String, String>,
}

/// One category.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct CategoryRule {
    /// Its wire name.
    pub name: String,
    /// What a unit of value is worth in it.
    pub weight: f64,
}

/// The streak bonus: none before `first_bonus_day`, then
/// `percent_per_day` × streak day, at most `max_percent`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct StreakRule {
    /// The first streak day that earns a bonus.
    pub first_bonus_day: u32,
    /// Percent per streak day.
    pub percent_per_day: u32,
    /// The cap, in percent.
    pub max_percent: u32,
}

/// The level curve. `linear`: level N covers (N−1) × `points_per_level` ≤
/// lifetime points < N × `points_per_level`. `table`: level N+1 starts at
/// `thresholds[N-1]`; past the table, levels keep coming at its last step.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct LevelRule {
    /// `linear` or `table`.
    pub curve: String,
    /// Lifetime points per level (`linear`); null for a table.
    pub points_per_level: Option<f64>,
    /// Where levels 2, 3, … start (`table`); null for `linear`.
    #[serde(default)]
    pub thresholds: Option<Vec<f64>>,
}

/// One version of the rules in a listing.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct RuleVersionSummary {
    /// The version.
    pub version: u32,
    /// When it was made (UTC, RFC 3339).
    pub created_at: String,
    /// Whether new events are scored with it.
    pub current: bool,
}

/// Every version of the rules, oldest first
/// (`GET /api/v2/gamify/admin/rules/versions`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct RuleVersionsResponse {
    /// The versions.
    pub versions: Vec<RuleVersionSummary>,
}
