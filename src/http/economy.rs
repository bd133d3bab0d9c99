//! Routes of the points economy: spending, the ledger, rewards and
//! redemptions for users; the catalogue, settlements and adjustments for
//! admins (behind [`super::auth::Admin`]).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use gamify_store::RedemptionStatus;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Admin;
use super::auth::{Ingest, Read};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::handlers::{idempotency_key, with_cursor, with_replayed};
use crate::engine::Engine;
use crate::model::ErrorResponse;
use crate::wallet::{
    AdjustmentRequest, LedgerEntryResponse, MovementResponse, RedeemRequest, RedemptionResponse,
    RewardRequest, RewardResponse, SpendRequest,
};

/// Spend a user's points.
///
/// Lowers `total_points` only (lifetime points and level never go down) and
/// writes a `spend` ledger entry. Not enough points: 409
/// `insufficient_points`, nothing changed. With an `Idempotency-Key`, a retry
/// returns the original spend (`Idempotent-Replayed: true`), charged once.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/spend",
    tag = "economy",
    security(("api_key" = ["ingest"])),
    request_body = SpendRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 200, description = "Spent (or replayed)", body = MovementResponse),
        (status = 409, description = "insufficient_points, or idempotency_conflict", body = ErrorResponse),
        (status = 410, description = "user_erased: the user was erased on request", body = ErrorResponse),
        (status = 422, description = "A field breaks a rule", body = ErrorResponse),
        (status = 503, description = "Storage unavailable; retry with the same key", body = ErrorResponse),
    )
)]
pub async fn spend_points(
    _: Ingest,
    State(engine): State<Engine>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SpendRequest>,
) -> Result<Response, ApiError> {
    let (spent, replayed) = engine.spend(request, idempotency_key(&headers)?).await?;
    Ok(with_replayed(spent, replayed))
}

/// Query of the paged listings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// How many, 1–100 (default 10).
    pub limit: Option<u32>,
    /// A cursor from `X-Next-Cursor`.
    pub before: Option<String>,
}

/// A user's ledger: every change to their points, newest first.
///
/// Each entry has its kind, the change, the balance and lifetime points it
/// left, and what caused it. When older entries remain, `X-Next-Cursor`
/// holds the cursor for `before`.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/ledger/{user_id}",
    tag = "economy",
    security(("api_key" = ["read"])),
    params(("user_id" = String, Path, description = "The user"), PageQuery),
    responses(
        (status = 200, body = Vec<LedgerEntryResponse>, headers(("X-Next-Cursor" = String, description = "Cursor for the next, older page"))),
        (status = 422, description = "Invalid user id, limit or cursor", body = ErrorResponse),
    )
)]
pub async fn get_ledger(
    _: Read,
    State(engine): State<Engine>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let (entries, next) = engine
        .ledger(&user_id, query.limit, query.before.as_deref())
        .await?;
    Ok(with_cursor(ApiJson(entries).into_response(), next))
}

/// Query of `GET /api/v2/gamify/rewards`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RewardsQuery {
    /// With a user: each reward says whether their balance covers it.
    pub user_id: Option<String>,
}

/// The rewards on offer now (active, inside their window), by id.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/rewards",
    tag = "economy",
    security(("api_key" = ["read"])),
    params(RewardsQuery),
    responses(
        (status = 200, body = Vec<RewardResponse>),
        (status = 422, description = "Invalid user id", body = ErrorResponse),
    )
)]
pub async fn list_rewards(
    _: Read,
    State(engine): State<Engine>,
    ApiQuery(query): ApiQuery<RewardsQuery>,
) -> Result<ApiJson<Vec<RewardResponse>>, ApiError> {
    Ok(ApiJson(
        engine.offered_rewards(query.user_id.as_deref()).await?,
    ))
}

/// Redeem a reward for a user.
///
/// Checks the reward (active, window, stock, per-user limit) and the balance,
/// then takes a unit and the points at once; the redemption is `pending`
/// until an admin fulfils or cancels it. Refusals are 409 with the code
/// `insufficient_points`, `out_of_stock`, `limit_reached`, `reward_inactive`
/// or `reward_not_available`. With an `Idempotency-Key`, a retry returns the
/// original redemption, charged once.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/rewards/{reward_id}/redeem",
    tag = "economy",
    security(("api_key" = ["ingest"])),
    request_body = RedeemRequest,
    params(
        ("reward_id" = String, Path, description = "The reward"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
    ),
    responses(
        (status = 200, description = "Redeemed (or replayed)", body = RedemptionResponse),
        (status = 404, description = "No such reward", body = ErrorResponse),
        (status = 409, description = "Refused; see the code", body = ErrorResponse),
        (status = 410, description = "user_erased: the user was erased on request", body = ErrorResponse),
        (status = 422, description = "A field breaks a rule", body = ErrorResponse),
    )
)]
pub async fn redeem_reward(
    _: Ingest,
    State(engine): State<Engine>,
    ApiPath(reward_id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<RedeemRequest>,
) -> Result<Response, ApiError> {
    let (redemption, replayed) = engine
        .redeem(&reward_id, request, idempotency_key(&headers)?)
        .await?;
    Ok(with_replayed(redemption, replayed))
}

/// Query of the redemption listings.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RedemptionsQuery {
    /// `pending`, `fulfilled` or `cancelled`.
    pub status: Option<String>,
    /// How many, 1–100 (default 10).
    pub limit: Option<u32>,
    /// A cursor from `X-Next-Cursor` (the last id of the previous page).
    pub before: Option<String>,
}

/// A user's redemptions, newest first. When older ones remain,
/// `X-Next-Cursor` holds the cursor for `before`.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/redemptions/{user_id}",
    tag = "economy",
    security(("api_key" = ["read"])),
    params(("user_id" = String, Path, description = "The user"), RedemptionsQuery),
    responses(
        (status = 200, body = Vec<RedemptionResponse>, headers(("X-Next-Cursor" = String, description = "Cursor for the next, older page"))),
        (status = 422, description = "Invalid user id, status, limit or cursor", body = ErrorResponse),
    )
)]
pub async fn list_user_redemptions(
    _: Read,
    State(engine): State<Engine>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RedemptionsQuery>,
) -> Result<Response, ApiError> {
    let (page, next) = engine
        .redemptions(
            Some(&user_id),
            q.status.as_deref(),
            q.limit,
            q.before.as_deref(),
        )
        .await?;
    Ok(with_cursor(ApiJson(page).into_response(), next))
}

/// Every redemption, newest first (admin): the queue to fulfil. When older
/// ones remain, `X-Next-Cursor` holds the cursor for `before`.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/redemptions",
    tag = "admin",
    params(RedemptionsQuery),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = Vec<RedemptionResponse>, headers(("X-Next-Cursor" = String, description = "Cursor for the next, older page"))),
        (status = 401, description = "Wrong or missing admin token", body = ErrorResponse),
        (status = 403, description = "Admin API off", body = ErrorResponse),
        (status = 422, description = "Invalid status, limit or cursor", body = ErrorResponse),
    )
)]
pub async fn list_redemptions(
    _: Admin,
    State(engine): State<Engine>,
    ApiQuery(q): ApiQuery<RedemptionsQuery>,
) -> Result<Response, ApiError> {
    let (page, next) = engine
        .redemptions(None, q.status.as_deref(), q.limit, q.before.as_deref())
        .await?;
    Ok(with_cursor(ApiJson(page).into_response(), next))
}

/// Mark a pending redemption as handed over (admin). Repeating it is safe.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/admin/redemptions/{redemption_id}/fulfil",
    tag = "admin",
    params(("redemption_id" = String, Path, description = "The redemption")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = RedemptionResponse),
        (status = 404, description = "No such redemption", body = ErrorResponse),
        (status = 409, description = "redemption_closed: it was cancelled", body = ErrorResponse),
    )
)]
pub async fn fulfil_redemption(
    _: Admin,
    State(engine): State<Engine>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<RedemptionResponse>, ApiError> {
    Ok(ApiJson(
        engine.settle(&id, RedemptionStatus::Fulfilled).await?,
    ))
}

/// Cancel a pending redemption (admin): its points come back as a `refund`
/// ledger entry and its unit returns to the stock. Repeating it is safe.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/admin/redemptions/{redemption_id}/cancel",
    tag = "admin",
    params(("redemption_id" = String, Path, description = "The redemption")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = RedemptionResponse),
        (status = 404, description = "No such redemption", body = ErrorResponse),
        (status = 409, description = "redemption_closed: it was fulfilled", body = ErrorResponse),
    )
)]
pub async fn cancel_redemption(
    _: Admin,
    State(engine): State<Engine>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<RedemptionResponse>, ApiError> {
    Ok(ApiJson(
        engine.settle(&id, RedemptionStatus::Cancelled).await?,
    ))
}

/// The whole catalogue, inactive rewards included (admin).
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/rewards",
    tag = "admin",
    security(("api_key" = ["admin"])),
    responses((status = 200, body = Vec<RewardResponse>))
)]
pub async fn list_all_rewards(
    _: Admin,
    State(engine): State<Engine>,
) -> Result<ApiJson<Vec<RewardResponse>>, ApiError> {
    Ok(ApiJson(engine.all_rewards().await?))
}

/// Create a reward (admin).
#[utoipa::path(
    post,
    path = "/api/v2/gamify/admin/rewards",
    tag = "admin",
    request_body = RewardRequest,
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = RewardResponse),
        (status = 409, description = "already_exists", body = ErrorResponse),
        (status = 422, description = "A field breaks a rule", body = ErrorResponse),
    )
)]
pub async fn create_reward(
    _: Admin,
    State(engine): State<Engine>,
    ApiJson(request): ApiJson<RewardRequest>,
) -> Result<ApiJson<RewardResponse>, ApiError> {
    Ok(ApiJson(engine.create_reward(request).await?))
}

/// Replace a reward's terms (admin). Its redeemed count is kept; the stock
/// cannot go below it.
#[utoipa::path(
    put,
    path = "/api/v2/gamify/admin/rewards/{reward_id}",
    tag = "admin",
    request_body = RewardRequest,
    params(("reward_id" = String, Path, description = "The reward")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = RewardResponse),
        (status = 404, description = "No such reward", body = ErrorResponse),
        (status = 422, description = "A field breaks a rule", body = ErrorResponse),
    )
)]
pub async fn update_reward(
    _: Admin,
    State(engine): State<Engine>,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<RewardRequest>,
) -> Result<ApiJson<RewardResponse>, ApiError> {
    Ok(ApiJson(engine.update_reward(&id, request).await?))
}

/// Deactivate a reward (admin): no new redemptions; pending ones stay.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/admin/rewards/{reward_id}/deactivate",
    tag = "admin",
    params(("reward_id" = String, Path, description = "The reward")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = RewardResponse),
        (status = 404, description = "No such reward", body = ErrorResponse),
    )
)]
pub async fn deactivate_reward(
    _: Admin,
    State(engine): State<Engine>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<RewardResponse>, ApiError> {
    Ok(ApiJson(engine.deactivate_reward(&id).await?))
}

/// Correct a user's balance (admin): positive credits (and counts as
/// earned), negative debits (never below zero). An `adjustment` ledger entry.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/admin/adjustments",
    tag = "admin",
    request_body = AdjustmentRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = MovementResponse),
        (status = 409, description = "insufficient_points, or idempotency_conflict", body = ErrorResponse),
        (status = 410, description = "user_erased: the user was erased on request", body = ErrorResponse),
        (status = 422, description = "A field breaks a rule", body = ErrorResponse),
    )
)]
pub async fn adjust_points(
    _: Admin,
    State(engine): State<Engine>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<AdjustmentRequest>,
) -> Result<Response, ApiError> {
    let (moved, replayed) = engine.adjust(request, idempotency_key(&headers)?).await?;
    Ok(with_replayed(moved, replayed))
}
