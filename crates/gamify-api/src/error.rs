//! The error body every non-2xx answer has.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every non-2xx response: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorBody,
}

/// The error itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `validation_failed`, `malformed_json`,
    /// `malformed_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `idempotency_conflict`, `insufficient_points`,
    /// `payload_too_large`, `unsupported_media_type`, `rate_limited`,
    /// `internal`, `unavailable`, `leaderboard_unavailable` (and the others
    /// docs/API.md lists).
    pub code: String,
    /// For people; names the offending field where there is one.
    pub message: String,
    /// One entry per offending field (may be empty).
    pub details: Vec<FieldError>,
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// The field (`value`, `metadata.amount`, `limit`, `Idempotency-Key`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}
