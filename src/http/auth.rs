//! Keys on the wire: the [`Ingest`], [`Read`] and [`Admin`] extractors that
//! give each route its scope, and the admin routes for keys.

use std::time::Instant;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header::AUTHORIZATION};
use axum::response::{IntoResponse, Response};
use gamify_store::keys::Scope;

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use crate::auth::Caller;
use crate::engine::Engine;
use crate::model::{ErrorResponse, KeyCreated, KeyRequest, KeyResponse};

/// The secret in `Authorization: Bearer <secret>` (the scheme in any case),
/// if the request sent the header; another scheme presents no valid secret.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(AUTHORIZATION).map(|v| {
        let v = v.as_bytes();
        match v.split_at_checked(7) {
            Some((scheme, secret)) if scheme.eq_ignore_ascii_case(b"bearer ") => secret,
            _ => b"",
        }
    })
}

/// Lets the request through if its key may use a route that needs
/// `needed` and has requests left in its budget on this node.
pub(super) fn authorize(
    engine: &Engine,
    headers: &HeaderMap,
    needed: Scope,
) -> Result<(), ApiError> {
    let caller = engine
        .key_ring()
        .authorize(bearer(headers), needed)
        .map_err(ApiError::Denied)?;
    let key = match &caller {
        Caller::Anonymous => return Ok(()),
        Caller::Configured => "configured",
        Caller::Key(id) => id,
    };
    // Who made the request, in its span: every debug line of it (the
    // store's writers included) says which key.
    tracing::Span::current().record("key", key);
    engine
        .limiter()
        .take(key, Instant::now())
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })
}

/// Declares a proof that a request's key has a scope: an extractor, the
/// first argument of each handler that needs the scope, so that the key is
/// checked before anything else of the request is read. (Extractors, not a
/// middleware layer per group of routes: a layer cost every request a
/// boxed service and future.)
macro_rules! scope_proof {
    ($(#[$doc:meta])* $proof:ident, $scope:expr) => {
        $(#[$doc])*
        pub struct $proof;

        impl FromRequestParts<Engine> for $proof {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                engine: &Engine,
            ) -> Result<$proof, ApiError> {
                authorize(engine, &parts.headers, $scope).map(|()| $proof)
            }
        }
    };
}

scope_proof!(
    /// Proof that the request may record what users do: its key has the
    /// `ingest` scope (or no key exists).
    Ingest,
    Scope::Ingest
);
scope_proof!(
    /// Proof that the request may read: its key has the `read` scope (or
    /// no key exists).
    Read,
    Scope::Read
);
scope_proof!(
    /// Proof that the request carries a key with the `admin` scope.
    Admin,
    Scope::Admin
);

/// Make an API key (admin). The answer carries its `secret`, shown only
/// here: only its hash is stored.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/admin/keys",
    tag = "admin",
    request_body = KeyRequest,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = KeyCreated),
        (status = 422, description = "A field breaks a rule", body = ErrorResponse),
    )
)]
pub async fn create_key(
    _: Admin,
    State(engine): State<Engine>,
    ApiJson(request): ApiJson<KeyRequest>,
) -> Result<Response, ApiError> {
    let created = engine.create_key(request).await?;
    Ok((StatusCode::CREATED, ApiJson(created)).into_response())
}

/// The API keys (admin), revoked ones too, oldest first; never a secret.
#[utoipa::path(
    get,
    path = "/api/v2/gamify/admin/keys",
    tag = "admin",
    security(("api_key" = ["admin"])),
    responses((status = 200, body = Vec<KeyResponse>))
)]
pub async fn list_keys(
    _: Admin,
    State(engine): State<Engine>,
) -> Result<ApiJson<Vec<KeyResponse>>, ApiError> {
    Ok(ApiJson(engine.keys().await?))
}

/// Revoke an API key (admin): refused from now on by this node, and by
/// every other node within a second. Revoking it again changes nothing.
#[utoipa::path(
    post,
    path = "/api/v2/gamify/admin/keys/{key_id}/revoke",
    tag = "admin",
    params(("key_id" = String, Path, description = "The key")),
    security(("api_key" = ["admin"])),
    responses(
        (status = 200, body = KeyResponse),
        (status = 404, description = "No such key", body = ErrorResponse),
    )
)]
pub async fn revoke_key(
    _: Admin,
    State(engine): State<Engine>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<KeyResponse>, ApiError> {
    Ok(ApiJson(engine.revoke_key(&id).await?))
}
