//! Owning the data: erasure and verification reports.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What `DELETE /api/v2/gamify/users/{user_id}` answers: the erasure's
/// record. Erasing again answers the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErasureResponse {
    /// The user erased.
    #[schema(example = "user_123")]
    pub user_id: String,
    /// `era_…`
    pub erasure_id: String,
    /// When (RFC 3339, UTC).
    pub erased_at: String,
    /// How many rows went.
    pub removed: RemovedCounts,
}

/// Rows removed by an erasure, per kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RemovedCounts {
    /// Events, with their metadata and idempotency keys.
    pub events: u64,
    /// Ledger entries.
    pub ledger_entries: u64,
    /// Spends and adjustments.
    pub movements: u64,
    /// Redemptions (pending ones were cancelled, their units returned).
    pub redemptions: u64,
}

/// One finding of `gamify verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FindingResponse {
    /// What it concerns.
    pub subject: String,
    /// What differs.
    pub message: String,
}

/// `GET /api/v2/gamify/analytics`: how the habit economy is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnalyticsResponse {
    /// Events recorded.
    pub total_events: u64,
    /// Users with at least one event.
    pub total_users: u64,
    /// Users whose latest event occurred in the last 7 days (7 × 24 h).
    pub active_users_7d: u64,
    /// Users whose latest event occurred in the last 30 days.
    pub active_users_30d: u64,
    /// Lifetime points (bonuses included) per user with events.
    pub average_points_per_user: f64,
    /// Events per category (categories with none left out).
    pub events_by_category: std::collections::BTreeMap<String, u64>,
    /// Event points per category (achievement bonuses belong to none).
    pub points_by_category: std::collections::BTreeMap<String, f64>,
    /// Each of the last `days` UTC days, oldest first, today last, by when
    /// the events occurred; days without events included as zeros.
    pub events_per_day: Vec<DayCount>,
}

/// One day of [`AnalyticsResponse::events_per_day`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DayCount {
    /// The UTC day, `2026-11-27`.
    pub day: String,
    /// Events that occurred on it.
    pub events: u64,
    /// Their points.
    pub points: f64,
}
