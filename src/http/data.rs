//! Routes that let an operator own the data (admin): verify the stored
//! data, export it all, and erase a person.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Admin;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::analytics::AnalyticsResponse;
use crate::engine::Engine;
use crate::erasure::ErasureResponse;
use crate::model::ErrorResponse;
use crate::verify::FindingResponse;

/// Check every invariant of the stored data (admin): ledger chains,
/// balances against the ledger, event counts, reward stock. An empty list
/// means all hold. `gamify verify` does the same from the command line.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/verify",
    tag = "admin",
    security(("api_key" = ["admin"])),
    responses((status = 200, body = Vec<FindingResponse>))
)]
pub async fn verify(
    _: Admin,
    State(engine): State<Engine>,
) -> Result<ApiJson<Vec<FindingResponse>>, ApiError> {
    Ok(ApiJson(engine.verify().await?))
}

/// Query of `GET /api/v2/gamify/admin/export`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Only this user's data.
    pub user_id: Option<String>,
    /// Only what happened at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Only what happened before this time (RFC 3339).
    pub to: Option<String>,
}

/// Every event, ledger entry, balance, reward, spend and redemption, as
/// NDJSON streamed a page at a time (admin). The first line describes the
/// export, the last (`"type": "end"`) counts the lines; amounts are exact
/// integer thousandths. See docs/API.md, "Export".
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/export",
    tag = "admin",
    params(ExportQuery),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, description = "NDJSON, one object per line", content_type = "application/x-ndjson", body = String),
        (status = 422, description = "Invalid user id or time", body = ErrorResponse),
    )
)]
pub async fn export(
    _: Admin,
    State(engine): State<Engine>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let filter =
        crate::export::parse_filter(q.user_id.as_deref(), q.from.as_deref(), q.to.as_deref())?;
    let exporter = crate::export::Exporter::new(engine, filter);
    // A failure after the first bytes cannot become an error response: the
    // stream ends early, without the closing "end" line, and the log says why.
    let lines = futures_util::stream::unfold(exporter, |mut exporter| async move {
        match exporter.next_chunk().await {
            Ok(Some(chunk)) => Some((Ok::<_, std::io::Error>(chunk), exporter)),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "export failed part-way");
                None
            }
        }
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response())
}

/// Erase a person (admin): their events (with metadata and idempotency
/// keys), ledger, spends, adjustments, redemptions, balance, achievements
/// and leaderboard place. Pending redemptions are cancelled (their units go
/// back to stock); fulfilled ones stay counted against the reward's stock.
/// Only a hash of the id is kept, so that later events, retries, spends
/// and redemptions for it are refused with 410 `user_erased`. Erasing again
/// answers with the same record. See docs/API.md, "Erasure".
#[utoipa::path(
    delete,
    path = "/api/v2/gamify/users/{user_id}",
    tag = "admin",
    params(("user_id" = String, Path, description = "The user to erase")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, description = "Erased (now or before)", body = ErasureResponse),
        (status = 404, description = "No such user", body = ErrorResponse),
        (status = 422, description = "Invalid user id", body = ErrorResponse),
    )
)]
pub async fn erase_user(
    _: Admin,
    State(engine): State<Engine>,
    ApiPath(user_id): ApiPath<String>,
) -> Result<ApiJson<ErasureResponse>, ApiError> {
    Ok(ApiJson(engine.erase_user(&user_id).await?))
}

/// Query of `GET /api/v2/gamify/analytics`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsQuery {
    /// Days of `events_per_day`, 1–366 (default 30).
    pub days: Option<u32>,
}

/// How the habit economy is doing (admin): the brief's total events, active
/// users (last 7 and 30 days) and average points per user, events and
/// points by category, and events per day. Scans the data: see
/// docs/API.md, "Analytics".
#[utoipa::path(
    get,
    path = "/api/v2/gamify/analytics",
    tag = "admin",
    params(AnalyticsQuery),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = AnalyticsResponse),
        (status = 422, description = "Invalid days", body = ErrorResponse),
    )
)]
pub async fn analytics(
    _: Admin,
    State(engine): State<Engine>,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> Result<ApiJson<AnalyticsResponse>, ApiError> {
    Ok(ApiJson(engine.analytics(q.days).await?))
}
