//! Events, balances, statistics, the leaderboard's rows and the
//! achievement catalogue.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a user did: the body of `POST /api/v2/gamify/event`, and what an
/// embedder passes to `gamify::Engine::record_event`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// 1–128 characters: ASCII letters, digits and `_ - . : @`.
    #[schema(example = "user_123")]
    pub user_id: String,
    /// One of `finance`, `learning`, `health`, `productivity`, `social`.
    #[schema(example = "finance")]
    pub category: String,
    /// What was done, 1–100 characters.
    #[schema(example = "paid_invoice")]
    pub action: String,
    /// Size of the event: a finite number > 0, at most the configured maximum
    /// (default 1000), kept to three decimals.
    #[schema(example = 2.0)]
    pub value: f64,
    /// Any JSON object, stored and returned as given (at most 4096 bytes
    /// as JSON by default: `limits.max_metadata_bytes`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// When it happened (RFC 3339); defaults to now. At most 5 minutes ahead
    /// and at most the backfill window (default 30 days) behind.
    #[serde(default)]
    #[schema(example = "2025-10-12T10:30:00Z")]
    pub occurred_at: Option<String>,
}

/// An achievement an event unlocked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnlockedAchievement {
    /// Achievement id (`streak_3`).
    pub id: String,
    /// Finnish name.
    pub name_fi: String,
    /// English name.
    pub name_en: String,
    /// Bonus points it paid.
    pub bonus_points: f64,
}

/// A recorded event: the brief's fields, then what it earned and changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventResponse {
    /// `evt_`, 12 hex digits of time, then 16 more: random for a node's first
    /// id in a millisecond, one more for each next one.
    #[schema(example = "evt_0199d89d0f8a3c5e7a1b2d4f6e8091a3")]
    pub id: String,
    /// The user.
    pub user_id: String,
    /// The category.
    pub category: String,
    /// The action.
    pub action: String,
    /// The value, to three decimals.
    pub value: f64,
    /// The event's own points: value × weight × (1 + streak bonus).
    /// Achievement bonuses are in `bonus_points`, not here.
    pub points: f64,
    /// When it was recorded (UTC, RFC 3339, milliseconds).
    pub created_at: String,
    /// When it happened (UTC, RFC 3339, milliseconds); decides the streak day.
    pub occurred_at: String,
    /// Metadata as sent.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// The category weight applied.
    pub category_weight: f64,
    /// The streak ending on the event's day, counting it.
    pub streak_day: u32,
    /// The streak bonus applied, as a fraction (0.35 for +35 %).
    pub streak_bonus: f64,
    /// Achievements this event unlocked.
    pub achievements_unlocked: Vec<UnlockedAchievement>,
    /// The sum of their bonuses.
    pub bonus_points: f64,
    /// Spendable balance after this event.
    pub total_points: f64,
    /// Lifetime points after this event.
    pub lifetime_points: f64,
    /// Level after this event.
    pub level: u64,
    /// Whether this event raised the level.
    pub level_up: bool,
    /// The version of the rules it was scored with (see
    /// `GET /api/v2/gamify/admin/rules/versions/{version}`).
    #[serde(default)]
    pub rules_version: u32,
}

/// What an event would earn if it were recorded now
/// (`POST /api/v2/gamify/simulate`): the breakdown recording would return,
/// without an id or a recording time, because nothing is recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SimulationResponse {
    /// The user.
    pub user_id: String,
    /// The category.
    pub category: String,
    /// The action.
    pub action: String,
    /// The value, to three decimals.
    pub value: f64,
    /// When it would have happened; decides the streak day.
    pub occurred_at: String,
    /// The category weight it would get.
    pub category_weight: f64,
    /// The streak ending on its day, counting it.
    pub streak_day: u32,
    /// The streak bonus, as a fraction (0.35 for +35 %).
    pub streak_bonus: f64,
    /// Its own points: value × weight × (1 + streak bonus).
    pub points: f64,
    /// Achievements it would unlock.
    pub achievements_unlocked: Vec<UnlockedAchievement>,
    /// The sum of their bonuses.
    pub bonus_points: f64,
    /// Spendable balance after it.
    pub total_points: f64,
    /// Lifetime points after it.
    pub lifetime_points: f64,
    /// Level after it.
    pub level: u64,
    /// Whether it would raise the level.
    pub level_up: bool,
    /// The version of the rules it would be scored with: the current one.
    #[serde(default)]
    pub rules_version: u32,
}

impl From<EventResponse> for SimulationResponse {
    /// The breakdown of an event, without what only recording gives it.
    fn from(e: EventResponse) -> SimulationResponse {
        SimulationResponse {
            user_id: e.user_id,
            category: e.category,
            action: e.action,
            value: e.value,
            occurred_at: e.occurred_at,
            category_weight: e.category_weight,
            streak_day: e.streak_day,
            streak_bonus: e.streak_bonus,
            points: e.points,
            achievements_unlocked: e.achievements_unlocked,
            bonus_points: e.bonus_points,
            total_points: e.total_points,
            lifetime_points: e.lifetime_points,
            level: e.level,
            level_up: e.level_up,
            rules_version: e.rules_version,
        }
    }
}

/// A user's wallet (`GET /api/v2/gamify/balance/{user_id}`). A user with no
/// events reads as zeros at level 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BalanceResponse {
    /// The user.
    pub user_id: String,
    /// Spendable balance.
    pub total_points: f64,
    /// Every point ever earned.
    pub lifetime_points: f64,
    /// The live streak: 0 unless the last active day is today or yesterday (UTC).
    pub streak_days: u32,
    /// The longest streak ever.
    pub best_streak: u32,
    /// The latest `occurred_at`, or null.
    pub last_event: Option<String>,
    /// Level N covers (N−1)×100 ≤ lifetime < N×100.
    pub level: u64,
    /// Lifetime points where the next level starts (level × 100).
    pub next_level_points: f64,
    /// Unlocked achievement ids, in unlock order.
    pub achievements: Vec<String>,
    /// Points that expire within the next 30 days unless spent first
    /// (always 0 while point expiry is off).
    pub expiring_points: f64,
}

/// A user's statistics (`GET /api/v2/gamify/stats/{user_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StatsResponse {
    /// The user.
    pub user_id: String,
    /// Events recorded.
    pub total_events: u64,
    /// Events per category (categories with none are left out).
    pub events_by_category: BTreeMap<String, u64>,
    /// Event points per category (achievement bonuses belong to none).
    pub points_by_category: BTreeMap<String, f64>,
    /// The longest streak ever.
    pub best_streak: u32,
    /// The live streak, as `streak_days` in the balance.
    pub current_streak: u32,
    /// Unlocked achievement ids, in unlock order.
    pub achievements: Vec<String>,
}

/// One row of the leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeaderboardEntry {
    /// 1-based position; ties in points are ordered by user id.
    pub rank: u64,
    /// The user.
    pub user_id: String,
    /// Points on this board, the ranking key (lifetime points on the
    /// default all-time board).
    pub points: f64,
    /// Lifetime points.
    pub lifetime_points: f64,
    /// Spendable balance.
    pub total_points: f64,
    /// Level.
    pub level: u64,
}

/// An entry of the achievement catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AchievementResponse {
    /// Id, as in balances.
    pub id: String,
    /// Finnish name (the brief's).
    pub name_fi: String,
    /// English name.
    pub name_en: String,
    /// What it takes, in Finnish.
    pub description_fi: String,
    /// What it takes, in English.
    pub description_en: String,
    /// `first_event`, `streak_days`, `lifetime_points`, `category_events`
    /// or `category_points`.
    pub requirement: String,
    /// Days, points or events for the requirement; null for `first_event`.
    pub threshold: Option<f64>,
    /// The category a `category_…` requirement counts in; null otherwise.
    #[serde(default)]
    pub category: Option<String>,
    /// Points paid once on unlock.
    pub bonus_points: f64,
}

impl EventRequest {
    /// An event with no metadata that occurred now.
    pub fn new(
        user_id: impl Into<String>,
        category: impl Into<String>,
        action: impl Into<String>,
        value: f64,
    ) -> Self {
        EventRequest {
            user_id: user_id.into(),
            category: category.into(),
            action: action.into(),
            value,
            metadata: None,
            occurred_at: None,
        }
    }

    /// With metadata.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// With an explicit time (RFC 3339).
    pub fn occurred_at(mut self, at: impl Into<String>) -> Self {
        self.occurred_at = Some(at.into());
        self
    }
}
