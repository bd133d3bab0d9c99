//! Every non-2xx response, in one shape: `{"error": {"code", "message", "details"}}`.
//!
//! 400 means the request could not be read (malformed JSON); 422 means it was
//! read but breaks a rule (wrong type, missing or unknown field, value out of
//! range), whether in the body, the query string, the path or a header.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use gamify_core::Refusal;
use gamify_store::StoreError;

use super::extract::ApiJson;
use crate::auth::Denied;
use crate::engine::EngineError;
use crate::model::{ErrorBody, ErrorResponse, FieldError, shown};

/// An error on its way to becoming a response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// From the engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The body is not well-formed JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A field could not be read as its type (or is missing, or unknown).
    #[error("invalid {}", .0.field)]
    Invalid(FieldError),
    /// The body is not declared as what the route takes: the message says
    /// what it should be.
    #[error("unsupported media type")]
    UnsupportedMediaType(&'static str),
    /// The body did not arrive in time (408).
    #[error("the body did not arrive in time")]
    BodyTimeout(std::time::Duration),
    /// The body is larger than the limit (in bytes).
    #[error("payload too large")]
    PayloadTooLarge(usize),
    /// No such route.
    #[error("not found")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request's key may not use the route (401 or 403).
    #[error("access denied: {0:?}")]
    Denied(Denied),
    /// The route's handler panicked (a bug): 500, with the panic's message
    /// in the log.
    #[error("the request's handler panicked: {0}")]
    Panicked(String),
    /// The request's key spent its budget on this node (429).
    #[error("rate limited")]
    RateLimited {
        /// Whole seconds until a request would pass.
        retry_after_secs: u64,
    },
}

impl ApiError {
    /// An [`ApiError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Invalid(FieldError {
            field: field.into(),
            message: message.into(),
        })
    }

    fn parts(&self) -> (StatusCode, &'static str, String, Vec<FieldError>) {
        match self {
            ApiError::Engine(EngineError::Invalid(details)) => {
                let message = details.iter().map(shown).collect::<Vec<_>>().join("; ");
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    message,
                    details.clone(),
                )
            }
            ApiError::Engine(EngineError::IdempotencyConflict) => (
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "Idempotency-Key was already used with a different request body".into(),
                vec![],
            ),
            ApiError::Engine(EngineError::Refused(refusal)) => (
                StatusCode::CONFLICT,
                match refusal {
                    Refusal::InsufficientPoints { .. } => "insufficient_points",
                    Refusal::RewardInactive => "reward_inactive",
                    Refusal::OutsideWindow => "reward_not_available",
                    Refusal::OutOfStock => "out_of_stock",
                    Refusal::LimitReached { .. } => "limit_reached",
                },
                refusal.to_string(),
                vec![],
            ),
            ApiError::Engine(EngineError::NotFound(what)) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such {what}"),
                vec![],
            ),
            ApiError::Engine(EngineError::Erased) => (
                StatusCode::GONE,
                "user_erased",
                "user_id names a user who was erased on request; nothing more is recorded for them"
                    .into(),
                vec![FieldError {
                    field: "user_id".into(),
                    message: "this user was erased".into(),
                }],
            ),
            ApiError::Engine(EngineError::Conflict { code, message }) => {
                (StatusCode::CONFLICT, code, message.clone(), vec![])
            }
            ApiError::Denied(Denied::Unauthenticated(scope)) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                format!(
                    "this route needs an API key with the {} scope: Authorization: Bearer <key>",
                    scope.as_str()
                ),
                vec![FieldError {
                    field: "Authorization".into(),
                    message: "missing, unknown or revoked key".into(),
                }],
            ),
            ApiError::Denied(Denied::Forbidden(scope)) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this key lacks the {} scope this route needs",
                    scope.as_str()
                ),
                vec![FieldError {
                    field: "Authorization".into(),
                    message: format!("a key with the {} scope is needed", scope.as_str()),
                }],
            ),
            ApiError::RateLimited { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this key has made more requests than its rate limit allows; retry after {retry_after_secs} s"
                ),
                vec![FieldError {
                    field: "Authorization".into(),
                    message: "this key's request budget is spent for now".into(),
                }],
            ),
            ApiError::Denied(Denied::AdminOff) => (
                StatusCode::FORBIDDEN,
                "admin_disabled",
                "the admin API is off until an admin key exists: start gamify with \
                 GAMIFY_API_KEY set, or run `gamify keys create --scope admin`"
                    .into(),
                vec![],
            ),
            ApiError::Denied(Denied::OtherTenant) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "this key belongs to another tenant than the one this request is for".into(),
                vec![FieldError {
                    field: "Authorization".into(),
                    message: "a key of the tenant the Gamify-Tenant header names (the default \
                              tenant's for /admin/tenants) is needed"
                        .into(),
                }],
            ),
            ApiError::Denied(Denied::UnknownTenant) => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the tenant the Gamify-Tenant header names is reached only with one of its \
                 keys: Authorization: Bearer <key>"
                    .into(),
                vec![FieldError {
                    field: "Authorization".into(),
                    message: "missing, unknown or revoked key".into(),
                }],
            ),
            ApiError::Engine(EngineError::Unavailable(StoreError::BoardsUnavailable(why))) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "leaderboard_unavailable",
                (*why).to_owned(),
                vec![],
            ),
            ApiError::Engine(EngineError::Unavailable(StoreError::Unavailable(why)))
                if *why == gamify_store::postgres::lease::REFUSED =>
            {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    (*why).to_owned(),
                    vec![],
                )
            }
            ApiError::Engine(EngineError::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is temporarily unavailable; retry with the same Idempotency-Key"
                    .into(),
                vec![],
            ),
            ApiError::Engine(EngineError::Store(_)) | ApiError::Panicked(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error".into(),
                vec![],
            ),
            ApiError::MalformedJson(message) => (
                StatusCode::BAD_REQUEST,
                "malformed_json",
                message.clone(),
                vec![],
            ),
            ApiError::Invalid(detail) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                shown(detail),
                vec![detail.clone()],
            ),
            ApiError::UnsupportedMediaType(expected) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                (*expected).into(),
                vec![],
            ),
            ApiError::BodyTimeout(timeout) => (
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the body did not arrive within {} ms of the request's head (limits.header_timeout_ms)",
                    timeout.as_millis()
                ),
                vec![],
            ),
            ApiError::PayloadTooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body must be at most {max} bytes"),
                vec![],
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such route".into(),
                vec![],
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method".into(),
                vec![],
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        let (status, code, message, details) = self.parts();
        if status.is_server_error() {
            // The cause goes to the log, never to the client.
            let mut causes = Vec::new();
            let mut source = std::error::Error::source(&self);
            while let Some(s) = source {
                causes.push(s.to_string());
                source = s.source();
            }
            tracing::error!(error = %self, causes = ?causes, status = status.as_u16(), "request failed");
        }
        let body = ErrorResponse {
            error: ErrorBody {
                code: code.into(),
                message,
                details,
            },
        };
        let mut response = (status, ApiJson(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
