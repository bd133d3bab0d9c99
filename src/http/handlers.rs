//! Route handlers: read the request, call the engine, shape the response.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::{Ingest, Read};
use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use crate::engine::Engine;
use crate::model::{
    AchievementResponse, BalanceResponse, CategoryRule, ErrorResponse, EventRequest, EventResponse,
    SimulationResponse, StatsResponse, achievement_catalogue, category_rules,
};

// Header names are `HeaderName`s, not `&str`s: a `&str` is parsed and
// checked again on every lookup.

/// The header a client sets to make a POST safe to retry.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on the response when an idempotency key replayed an earlier event.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Set on an events page when older events remain; pass it as `before`.
pub const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

/// Record what a user did.
///
/// Scores the event (value × category weight × (1 + streak bonus)), unlocks
/// achievements and answers once the event is on disk. With an
/// `Idempotency-Key`, a retry of the same request returns the original event
/// (with the header `Idempotent-Replayed: true`) and records nothing; the same
/// key with a different body is refused with 409.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/event",
    tag = "events",
    security(("api_key" = ["ingest"])),
    request_body = EventRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1–255 visible ASCII characters; makes retries safe")),
    responses(
        (status = 200, description = "Recorded (or replayed)", body = EventResponse),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 409, description = "Idempotency-Key reused with a different body", body = ErrorResponse),
        (status = 410, description = "user_erased: the user was erased on request", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 415, description = "Body not sent as JSON", body = ErrorResponse),
        (status = 422, description = "A field breaks a rule", body = ErrorResponse),
        (status = 503, description = "Storage unavailable; retry with the same key", body = ErrorResponse),
    )
)]
pub async fn record_event(
    _: Ingest,
    State(engine): State<Engine>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<EventRequest>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let (event, replayed) = engine.record_event(request, key).await?;
    Ok(with_replayed(event, replayed))
}

/// What an event would earn if it were recorded now.
///
/// Takes the body of `POST /event`, checks it the same way (the same 422s),
/// and scores it on the user's current state with the same rules, answering
/// the breakdown recording would return: weight, streak day, streak bonus,
/// points, the achievements and bonuses it would unlock, the balances and
/// level after it. Nothing is written; an `Idempotency-Key` is not used.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/simulate",
    tag = "events",
    security(("api_key" = ["read"])),
    request_body = EventRequest,
    responses(
        (status = 200, description = "What recording it now would earn", body = SimulationResponse),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 410, description = "The user was erased: recording would be refused", body = ErrorResponse),
        (status = 413, description = "Body too large", body = ErrorResponse),
        (status = 415, description = "Body not sent as JSON", body = ErrorResponse),
        (status = 422, description = "A field breaks a rule", body = ErrorResponse),
        (status = 503, description = "Storage unavailable", body = ErrorResponse),
    )
)]
pub async fn simulate_event(
    _: Read,
    State(engine): State<Engine>,
    ApiJson(request): ApiJson<EventRequest>,
) -> Result<ApiJson<SimulationResponse>, ApiError> {
    Ok(ApiJson(engine.simulate(request).await?))
}

/// The request's `Idempotency-Key`, if it sent one.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match headers.get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            ApiError::invalid("Idempotency-Key", "Idempotency-Key must be visible ASCII")
        }),
    }
}

/// A user's wallet: balances, streak, level and achievements.
///
/// A user with no events gets zeros at level 1, not 404: every valid user id
/// has a (possibly empty) wallet.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/balance/{user_id}",
    tag = "users",
    security(("api_key" = ["read"])),
    params(("user_id" = String, Path, description = "The user")),
    responses(
        (status = 200, body = BalanceResponse),
        (status = 422, description = "Invalid user id", body = ErrorResponse),
    )
)]
pub async fn get_balance(
    _: Read,
    State(engine): State<Engine>,
    ApiPath(user_id): ApiPath<String>,
) -> Result<ApiJson<BalanceResponse>, ApiError> {
    Ok(ApiJson(engine.balance(&user_id).await?))
}

/// A user's statistics: events and points per category, streaks, achievements.
/// Zeros for a user with no events.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/stats/{user_id}",
    tag = "users",
    security(("api_key" = ["read"])),
    params(("user_id" = String, Path, description = "The user")),
    responses(
        (status = 200, body = StatsResponse),
        (status = 422, description = "Invalid user id", body = ErrorResponse),
    )
)]
pub async fn get_stats(
    _: Read,
    State(engine): State<Engine>,
    ApiPath(user_id): ApiPath<String>,
) -> Result<ApiJson<StatsResponse>, ApiError> {
    Ok(ApiJson(engine.stats(&user_id).await?))
}

/// Query of `GET /api/v2/gamify/events/{user_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// How many events, 1–100 (default 10).
    pub limit: Option<u32>,
    /// A cursor from `X-Next-Cursor`: return events older than that one.
    pub before: Option<String>,
}

/// A user's events, newest `occurred_at` first, as a bare array.
///
/// When older events remain, the response carries `X-Next-Cursor`; pass it
/// back as `before` to read the next page.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/events/{user_id}",
    tag = "events",
    security(("api_key" = ["read"])),
    params(("user_id" = String, Path, description = "The user"), EventsQuery),
    responses(
        (status = 200, body = Vec<EventResponse>, headers(("X-Next-Cursor" = String, description = "Cursor for the next, older page"))),
        (status = 422, description = "Invalid user id, limit or cursor", body = ErrorResponse),
    )
)]
pub async fn list_events(
    _: Read,
    State(engine): State<Engine>,
    ApiPath(user_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let (events, next) = engine
        .events(&user_id, query.limit, query.before.as_deref())
        .await?;
    Ok(with_cursor(ApiJson(events).into_response(), next))
}

/// `body` as JSON, marked `Idempotent-Replayed: true` when an idempotency
/// key replayed an earlier answer.
pub fn with_replayed(body: impl serde::Serialize, replayed: bool) -> Response {
    let mut response = ApiJson(body).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Adds `X-Next-Cursor` to a page when older items remain.
pub fn with_cursor(mut response: Response, next: Option<String>) -> Response {
    if let Some(cursor) = next.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(NEXT_CURSOR, cursor);
    }
    response
}

/// The achievement catalogue, with Finnish and English names.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/achievements",
    tag = "achievements",
    security(("api_key" = ["read"])),
    responses((status = 200, body = Vec<AchievementResponse>))
)]
pub async fn list_achievements(
    _: Read,
    State(engine): State<Engine>,
) -> ApiJson<Vec<AchievementResponse>> {
    ApiJson(achievement_catalogue(&engine.current_rules().rules))
}

/// The categories an event may name now, with their weights, in the
/// rules' order (the brief's five unless the rules say otherwise).
#[utoipa::path(
    get,
    path = "/api/v2/gamify/categories",
    tag = "achievements",
    security(("api_key" = ["read"])),
    responses((status = 200, body = Vec<CategoryRule>))
)]
pub async fn list_categories(_: Read, State(engine): State<Engine>) -> ApiJson<Vec<CategoryRule>> {
    ApiJson(category_rules(&engine.current_rules().rules))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> ApiJson<serde_json::Value> {
    ApiJson(serde_json::json!({"status": "ok"}))
}

/// Readiness: storage reads and its writer runs.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((status = 200, description = "Ready"), (status = 503, description = "Storage unavailable", body = ErrorResponse))
)]
pub async fn readyz(State(engine): State<Engine>) -> Result<ApiJson<serde_json::Value>, ApiError> {
    match engine.ready().await {
        Ok(()) => Ok(ApiJson(
            serde_json::json!({"status": "ready", "checks": {"storage": "ok"}}),
        )),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(ApiError::Engine(crate::engine::EngineError::Unavailable(
                gamify_store::StoreError::Unavailable("storage check failed"),
            )))
        }
    }
}

/// Prometheus metrics, in its text format: requests and latencies by route,
/// events and points by category, achievements, level-ups, replays, and
/// the store's gauges (see docs/DEPLOYMENT.md, "Monitoring").
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain"))
)]
pub async fn metrics(State(engine): State<Engine>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        engine.render_metrics(),
    )
}

/// The OpenAPI document, generated from this code.
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        super::openapi::spec_json(),
    )
}

/// A human-readable page of the API, rendered from `/openapi.json` in the browser.
pub async fn docs_page() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}

pub(super) async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub(super) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
