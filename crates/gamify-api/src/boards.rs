//! Leaderboards: rows, a user's standing, privacy.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One user around another on a board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BoardRowResponse {
    /// 1-based position.
    pub rank: u64,
    /// The user.
    pub user_id: String,
    /// Their points on the board.
    pub points: f64,
}

/// `GET /api/v2/gamify/leaderboard/{user_id}`: where a user stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StandingResponse {
    /// The user.
    pub user_id: String,
    /// The board's period.
    #[schema(example = "week")]
    pub period: String,
    /// The board's category; null: overall.
    pub category: Option<String>,
    /// The window: `all_time`, `2026-11-24`, `2026-W48`, `2026-11`.
    #[schema(example = "2026-W48")]
    pub window: String,
    /// Their rank; null when they are not on the board (hidden, or no
    /// points on it).
    pub rank: Option<u64>,
    /// Their points on the board.
    pub points: f64,
    /// Whether they asked to be hidden from leaderboards.
    pub hidden: bool,
    /// How many users the board ranks.
    pub ranked: u64,
    /// Up to k users just above, best first.
    pub above: Vec<BoardRowResponse>,
    /// Up to k users just below, best first.
    pub below: Vec<BoardRowResponse>,
}

/// Body of `PUT /api/v2/gamify/users/{user_id}/privacy`, and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacyRequest {
    /// True: leave the user off every public leaderboard (they keep their
    /// points and can still see their own standing).
    pub hidden_from_leaderboards: bool,
}

/// The answer to a privacy change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PrivacyResponse {
    /// The user.
    pub user_id: String,
    /// As set.
    pub hidden_from_leaderboards: bool,
}
