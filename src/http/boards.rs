//! Leaderboard routes: a board's page (the brief's leaderboard, with
//! periods, categories, windows and a cursor), where a user stands, and the
//! privacy opt-out.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Ingest, Read};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery, json_response};
use super::handlers::with_cursor;
use crate::boards::{BoardSelect, PrivacyRequest, PrivacyResponse, StandingResponse};
use crate::engine::Engine;
use crate::model::{ErrorResponse, LeaderboardEntry};

/// Query of `GET /api/v2/gamify/leaderboard`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardQuery {
    /// How many rows, 1–100 (default 10).
    pub limit: Option<u32>,
    /// `all_time` (default), `day`, `week` or `month` (UTC; ISO weeks).
    pub period: Option<String>,
    /// Only this category's points; none: overall.
    pub category: Option<String>,
    /// Which window: `2026-11-24`, `2026-W48`, `2026-11`; none: the current.
    pub window: Option<String>,
    /// The next page: the `X-Next-Cursor` of the previous one.
    pub after: Option<String>,
}

/// A leaderboard, best first; ties ordered by user id. Without parameters,
/// the brief's: all time, by lifetime points. `period` and `category` pick
/// another board, `window` a past day, week or month; when rows remain,
/// `X-Next-Cursor` pages on. See docs/API.md, "Leaderboards".
#[utoipa::path(
    get,
    path = "/api/v2/gamify/leaderboard",
    tag = "leaderboard",
    security(("api_key" = ["read"])),
    params(LeaderboardQuery),
    responses(
        (status = 200, body = Vec<LeaderboardEntry>, headers(("X-Next-Cursor" = String, description = "Pass as `after` for the next page; absent on the last"))),
        (status = 422, description = "Invalid limit, period, category, window or cursor", body = ErrorResponse),
        (status = 503, description = "`leaderboard_unavailable`: the boards kept in Redis cannot be read now (Redis unreachable, or the boards being rebuilt); events are still recorded", body = ErrorResponse),
    )
)]
pub async fn get_leaderboard(
    _: Read,
    State(engine): State<Engine>,
    ApiQuery(q): ApiQuery<LeaderboardQuery>,
) -> Result<Response, ApiError> {
    let select = BoardSelect {
        period: q.period,
        category: q.category,
        window: q.window,
    };
    let (body, next) = engine
        .board_page(&select, q.limit, q.after.as_deref())
        .await?;
    Ok(with_cursor(json_response(StatusCode::OK, body), next))
}

/// Query of `GET /api/v2/gamify/leaderboard/{user_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StandingQuery {
    /// `all_time` (default), `day`, `week` or `month`.
    pub period: Option<String>,
    /// Only this category's points; none: overall.
    pub category: Option<String>,
    /// Which window; none: the current.
    pub window: Option<String>,
    /// Users to show above and below, 0–50 (default 5).
    pub k: Option<u32>,
}

/// Where a user stands on a board: rank, points, and the k users just
/// above and below. A hidden user sees their points with `rank: null`.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/leaderboard/{user_id}",
    tag = "leaderboard",
    security(("api_key" = ["read"])),
    params(("user_id" = String, Path, description = "The user"), StandingQuery),
    responses(
        (status = 200, body = StandingResponse),
        (status = 422, description = "Invalid user id, period, category, window or k", body = ErrorResponse),
        (status = 503, description = "`leaderboard_unavailable`: the boards kept in Redis cannot be read now", body = ErrorResponse),
    )
)]
pub async fn get_standing(
    _: Read,
    State(engine): State<Engine>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<StandingQuery>,
) -> Result<ApiJson<StandingResponse>, ApiError> {
    let select = BoardSelect {
        period: q.period,
        category: q.category,
        window: q.window,
    };
    Ok(ApiJson(engine.standing(&user_id, &select, q.k).await?))
}

/// Leave a user off every public leaderboard, or put them back. They keep
/// their points; others' ranks no longer count them. 410 `user_erased` for
/// an erased user.
#[utoipa::path(
    put,
    path = "/api/v2/gamify/users/{user_id}/privacy",
    tag = "leaderboard",
    security(("api_key" = ["ingest"])),
    params(("user_id" = String, Path, description = "The user")),
    request_body = PrivacyRequest,
    responses(
        (status = 200, body = PrivacyResponse),
        (status = 410, description = "The user was erased", body = ErrorResponse),
        (status = 422, description = "Invalid user id or body", body = ErrorResponse),
    )
)]
pub async fn put_privacy(
    _: Ingest,
    State(engine): State<Engine>,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(request): ApiJson<PrivacyRequest>,
) -> Result<ApiJson<PrivacyResponse>, ApiError> {
    Ok(ApiJson(engine.set_privacy(&user_id, request).await?))
}
