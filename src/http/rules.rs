//! The rules (admin): the current version, replacing it with a rules file,
//! and every version ever in force.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;

use super::auth::Admin;
use super::error::ApiError;
use super::extract::{ApiBody, ApiJson, ApiPath};
use crate::engine::Engine;
use crate::model::{ErrorResponse, RuleVersionsResponse, RulesResponse};

/// The rules new events are scored with (admin), as data and as a rules
/// file: categories and weights, the streak bonus, the level curve, the
/// achievement catalogue, the limits of an event; with the deployment's
/// point expiry and the rewards achievements grant.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/rules",
    tag = "admin",
    security(("api_key" = ["admin"])),
    responses((status = 200, body = RulesResponse))
)]
pub async fn current(_: Admin, State(engine): State<Engine>) -> ApiJson<RulesResponse> {
    ApiJson(engine.rules_now())
}

/// Replaces the rules (admin). The body is a rules file (TOML, as
/// `gamify rules check` takes it and `toml` in the answer shows it); a part
/// it leaves out is the brief's default, not the current version's. New
/// events are scored with it from now on (on other nodes within a second);
/// recorded events keep their points and the version they were scored with.
/// The same rules as the current version's change nothing (the answer shows
/// the current version). Each mistake is a `422` field error naming its line.
#[utoipa::path(
    put,
    path = "/api/v2/gamify/admin/rules",
    tag = "admin",
    security(("api_key" = ["admin"])),
    request_body(content = String, content_type = "application/toml",
        description = "A rules file (docs/RULES.md)"),
    responses(
        (status = 200, body = RulesResponse, description = "The version now in force"),
        (status = 413, body = ErrorResponse, description = "Body too large (`limits.max_body_bytes`)"),
        (status = 415, body = ErrorResponse, description = "The body is not TOML text"),
        (status = 422, body = ErrorResponse, description = "The file has mistakes; nothing changed"),
    )
)]
pub async fn replace(
    _: Admin,
    State(engine): State<Engine>,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Result<ApiJson<RulesResponse>, ApiError> {
    let mime = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    if !matches!(
        mime.as_deref(),
        Some("application/toml" | "text/plain" | "text/x-toml")
    ) {
        return Err(ApiError::UnsupportedMediaType(
            "the body must be a rules file (TOML), sent with Content-Type: application/toml",
        ));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid("rules", "rules: the body is not UTF-8 text"))?;
    let (doc, _) = engine.replace_rules(text).await?;
    Ok(ApiJson(doc))
}

/// Every version of the rules, oldest first (admin).
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/rules/versions",
    tag = "admin",
    security(("api_key" = ["admin"])),
    responses((status = 200, body = RuleVersionsResponse))
)]
pub async fn versions(_: Admin, State(engine): State<Engine>) -> ApiJson<RuleVersionsResponse> {
    ApiJson(engine.rule_versions())
}

/// One version of the rules (admin): what the events that name it were
/// scored with.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/rules/versions/{version}",
    tag = "admin",
    security(("api_key" = ["admin"])),
    params(("version" = u32, Path, description = "1, 2, …")),
    responses(
        (status = 200, body = RulesResponse),
        (status = 404, body = ErrorResponse, description = "No such version"),
    )
)]
pub async fn version(
    _: Admin,
    State(engine): State<Engine>,
    ApiPath(version): ApiPath<String>,
) -> Result<ApiJson<RulesResponse>, ApiError> {
    let version: u32 = version
        .parse()
        .map_err(|_| ApiError::invalid("version", "version must be a whole number such as 2"))?;
    Ok(ApiJson(engine.rules_version(version)?))
}
