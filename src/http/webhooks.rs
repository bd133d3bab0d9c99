//! Webhook routes (admin): subscriptions, their delivery log, and replay.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Admin;
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::handlers::with_cursor;
use crate::engine::Engine;
use crate::model::ErrorResponse;
use crate::webhooks::{
    DeliveryResponse, SubscriptionCreated, SubscriptionRequest, SubscriptionResponse,
};

/// Subscribe a URL to event types (admin). From now on each change of those
/// types is posted to it, signed with the `secret` in this answer (shown
/// only here); see docs/API.md, "Webhooks".
#[utoipa::path(
    post,
    path = "/api/v2/gamify/admin/webhooks",
    tag = "admin",
    request_body = SubscriptionRequest,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = SubscriptionCreated),
        (status = 422, description = "A field breaks a rule", body = ErrorResponse),
    )
)]
pub async fn create_webhook(
    _: Admin,
    State(engine): State<Engine>,
    ApiJson(request): ApiJson<SubscriptionRequest>,
) -> Result<Response, ApiError> {
    let created = engine.subscribe(request).await?;
    Ok((StatusCode::CREATED, ApiJson(created)).into_response())
}

/// The webhook subscriptions (admin), oldest first; secrets are not shown.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/webhooks",
    tag = "admin",
    security(("api_key" = ["admin"])),
    responses((status = 200, body = Vec<SubscriptionResponse>))
)]
pub async fn list_webhooks(
    _: Admin,
    State(engine): State<Engine>,
) -> Result<ApiJson<Vec<SubscriptionResponse>>, ApiError> {
    Ok(ApiJson(engine.subscriptions().await?))
}

/// Delete a subscription (admin): nothing more is sent to it, and what it
/// had pending is cancelled. Its delivery log stays readable.
#[utoipa::path(
    delete,
    path = "/api/v2/gamify/admin/webhooks/{webhook_id}",
    tag = "admin",
    params(("webhook_id" = String, Path, description = "The subscription")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such subscription", body = ErrorResponse),
    )
)]
pub async fn delete_webhook(
    _: Admin,
    State(engine): State<Engine>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    engine.unsubscribe(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /api/v2/gamify/admin/webhooks/{webhook_id}/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// `pending`, `delivered`, `failed` or `cancelled`.
    pub status: Option<String>,
    /// How many, 1–100 (default 10).
    pub limit: Option<u32>,
    /// A cursor from `X-Next-Cursor`.
    pub before: Option<String>,
}

/// A subscription's delivery log, newest first (admin): each delivery's
/// status, attempts, and the last attempt's HTTP status or error. Finished
/// deliveries leave it `keep_days` (30) after their last attempt.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/webhooks/{webhook_id}/deliveries",
    tag = "admin",
    params(("webhook_id" = String, Path, description = "The subscription"), DeliveriesQuery),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = Vec<DeliveryResponse>, headers(("X-Next-Cursor" = String, description = "Cursor for the next, older page"))),
        (status = 404, description = "No such subscription", body = ErrorResponse),
        (status = 422, description = "Invalid status, limit or cursor", body = ErrorResponse),
    )
)]
pub async fn list_deliveries(
    _: Admin,
    State(engine): State<Engine>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Response, ApiError> {
    let (page, next) = engine
        .deliveries(&id, q.status.as_deref(), q.limit, q.before.as_deref())
        .await?;
    Ok(with_cursor(ApiJson(page).into_response(), next))
}

/// Send a delivery again (admin), whatever its status: it becomes pending
/// and due now. Receivers see the same `Gamify-Delivery` id.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/admin/webhooks/deliveries/{delivery_id}/replay",
    tag = "admin",
    params(("delivery_id" = String, Path, description = "The delivery")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 202, body = DeliveryResponse),
        (status = 404, description = "No such delivery (or pruned from the log)", body = ErrorResponse),
    )
)]
pub async fn replay_delivery(
    _: Admin,
    State(engine): State<Engine>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let delivery = engine.replay_delivery(&id).await?;
    Ok((StatusCode::ACCEPTED, ApiJson(delivery)).into_response())
}
