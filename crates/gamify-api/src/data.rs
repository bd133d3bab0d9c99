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
