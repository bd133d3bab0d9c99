//! What every request passes through: its id, its log line, its count in
//! `/metrics`, and the CORS headers a browser needs.
//!
//! A layer written out by hand rather than `axum::middleware::from_fn`:
//! that one boxes a clone of the inner service on every request as well as
//! the future, and on a leaderboard read it showed.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN,
    VARY,
};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use super::error::ApiError;
use crate::engine::Engine;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

/// Wraps every route of a router in [`Logged`].
#[derive(Clone)]
pub(crate) struct LogLayer {
    engine: Engine,
}

impl LogLayer {
    /// Counts requests in `engine`'s metrics and answers browsers from the
    /// origins it allows.
    pub(crate) fn new(engine: Engine) -> LogLayer {
        LogLayer { engine }
    }
}

impl<S> Layer<S> for LogLayer {
    type Service = Logged<S>;

    fn layer(&self, inner: S) -> Logged<S> {
        Logged {
            inner,
            engine: self.engine.clone(),
        }
    }
}

/// Gives each request an id (the client's `X-Request-Id`, or a new number),
/// echoes it, logs the request by route template, not by raw path, and
/// counts it for `/metrics`; answers a browser's CORS preflight from an
/// allowed origin. Kept allocation-free on the common path but for the
/// boxed future: it runs on every request.
#[derive(Clone)]
pub(crate) struct Logged<S> {
    inner: S,
    engine: Engine,
}

impl<S> Service<Request> for Logged<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from(REQUEST_SEQ.fetch_add(1, Ordering::Relaxed)));
        let allowed_origin = request
            .headers()
            .get(ORIGIN)
            .and_then(|o| o.to_str().ok())
            .and_then(|o| self.engine.cors_allows(o))
            .and_then(|o| HeaderValue::from_str(o).ok());
        // A browser asking whether a page of an allowed origin may send its
        // key (the widget's `Authorization` header makes its GETs
        // non-simple).
        if method == Method::OPTIONS
            && request
                .headers()
                .contains_key(ACCESS_CONTROL_REQUEST_METHOD)
            && let Some(origin) = allowed_origin
        {
            return Box::pin(async move { Ok(preflight(origin)) });
        }
        // At debug level (off by default: a disabled span costs next to
        // nothing), every log event of the request, the store's writers
        // included, carries its id and route. `key` is filled in once the
        // request's key is checked (auth.rs).
        let span = {
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            tracing::debug_span!(
                "request",
                request_id = request_id.to_str().unwrap_or("-"),
                %method,
                route,
                key = tracing::field::Empty,
            )
        };
        let answer = span.in_scope(|| self.inner.call(request));
        let engine = self.engine.clone();
        Box::pin(async move {
            // A bug that panics in a handler is answered with 500 in the
            // error shape (and logged), not with a dropped connection.
            let mut response = match AssertUnwindSafe(answer.instrument(span.clone()))
                .catch_unwind()
                .await
            {
                Ok(Ok(response)) => response,
                Err(panic) => ApiError::Panicked(panic_message(panic.as_ref())).into_response(),
            };
            let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
            let status = response.status().as_u16();
            let micros = started.elapsed().as_micros() as u64;
            engine.metrics().request(&method, route, status, micros);
            let id = request_id.to_str().unwrap_or("-");
            if status >= 500 {
                tracing::warn!(parent: &span, %method, route, status, micros, request_id = id, "request");
            } else {
                tracing::debug!(parent: &span, %method, route, status, micros, request_id = id, "request");
            }
            response.headers_mut().insert(REQUEST_ID, request_id);
            if let Some(origin) = allowed_origin {
                let headers = response.headers_mut();
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                headers.append(VARY, HeaderValue::from_static("origin"));
                headers.insert(
                    ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static("x-next-cursor, x-request-id, gamify-tenant"),
                );
            }
            Ok(response)
        })
    }
}

/// What a panic said, if it said it in words.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// The answer to a CORS preflight from an allowed `origin`.
fn preflight(origin: HeaderValue) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET"),
    );
    headers.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("authorization"),
    );
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    headers.append(VARY, HeaderValue::from_static("origin"));
    response
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;

    use super::*;

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_with_500_in_the_error_shape() {
        let dir = tempfile::tempdir().unwrap();
        let store = gamify_store::sqlite::SqliteStore::open(
            &dir.path().join("g.db"),
            gamify_core::Rules::default(),
        )
        .unwrap();
        let engine = Engine::with_store(
            Arc::new(store),
            gamify_core::Rules::default(),
            Arc::new(crate::clock::SystemClock),
        );
        let mut app: Router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    panic!("a bug");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .layer(LogLayer::new(engine.clone()));
        let request = Request::builder()
            .uri("/boom")
            .header("x-request-id", "trace-me")
            .body(Body::empty())
            .unwrap();
        std::future::poll_fn(|cx| Service::<Request>::poll_ready(&mut app, cx))
            .await
            .unwrap();
        let response = Service::<Request>::call(&mut app, request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[REQUEST_ID], "trace-me");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(
            body["error"]["message"], "internal error",
            "nothing of the panic"
        );
    }
}
