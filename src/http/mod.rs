//! The HTTP layer: routes, extractors, errors, the OpenAPI document.
//!
//! Handlers are thin: they parse the request, call the [`Engine`] and render
//! its answer. [`router`] and [`serve`] are apart so that tests and embedders
//! can mount the router on a listener of their own.

mod auth;
mod boards;
mod data;
mod economy;
mod error;
mod extract;
mod handlers;
mod log;
pub mod openapi;
mod rules;
pub mod server;
mod tenants;
mod ui;
mod webhooks;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use tokio::net::TcpListener;

use crate::engine::Engine;
use crate::tenants::Tenancy;

pub use error::ApiError;
pub use handlers::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, NEXT_CURSOR};
pub use log::panic_message;
pub use tenants::{App, TENANT_HEADER, app};

/// Every route, with the API's fallbacks for unknown routes and methods.
///
/// Routes are grouped by the scope a key needs (see [`crate::auth`]), which
/// each handler's first argument checks: `ingest` (`auth::Ingest`) for
/// what records what users do, `read` (`auth::Read`) for what reads,
/// `admin` (`auth::Admin`) for the operator's routes; health, metrics,
/// the contract and the web pages' files need no key. (tests/api/auth.rs
/// sends every documented route each kind of key.)
pub fn router(engine: Engine) -> Router {
    let ingest = Router::new()
        .route("/api/v2/gamify/event", post(handlers::record_event))
        .route(
            "/api/v2/gamify/users/{user_id}/privacy",
            put(boards::put_privacy),
        )
        .route("/api/v2/gamify/spend", post(economy::spend_points))
        .route(
            "/api/v2/gamify/rewards/{reward_id}/redeem",
            post(economy::redeem_reward),
        );
    let read = Router::new()
        .route("/api/v2/gamify/simulate", post(handlers::simulate_event))
        .route(
            "/api/v2/gamify/events/{user_id}",
            get(handlers::list_events),
        )
        .route(
            "/api/v2/gamify/balance/{user_id}",
            get(handlers::get_balance),
        )
        .route("/api/v2/gamify/stats/{user_id}", get(handlers::get_stats))
        .route("/api/v2/gamify/leaderboard", get(boards::get_leaderboard))
        .route(
            "/api/v2/gamify/leaderboard/{user_id}",
            get(boards::get_standing),
        )
        .route(
            "/api/v2/gamify/achievements",
            get(handlers::list_achievements),
        )
        .route("/api/v2/gamify/categories", get(handlers::list_categories))
        .route("/api/v2/gamify/ledger/{user_id}", get(economy::get_ledger))
        .route("/api/v2/gamify/rewards", get(economy::list_rewards))
        .route(
            "/api/v2/gamify/redemptions/{user_id}",
            get(economy::list_user_redemptions),
        );
    let admin = Router::new()
        .route(
            "/api/v2/gamify/admin/rewards",
            get(economy::list_all_rewards).post(economy::create_reward),
        )
        .route(
            "/api/v2/gamify/admin/rewards/{reward_id}",
            put(economy::update_reward),
        )
        .route(
            "/api/v2/gamify/admin/rewards/{reward_id}/deactivate",
            post(economy::deactivate_reward),
        )
        .route(
            "/api/v2/gamify/admin/redemptions",
            get(economy::list_redemptions),
        )
        .route(
            "/api/v2/gamify/admin/redemptions/{redemption_id}/fulfil",
            post(economy::fulfil_redemption),
        )
        .route(
            "/api/v2/gamify/admin/redemptions/{redemption_id}/cancel",
            post(economy::cancel_redemption),
        )
        .route(
            "/api/v2/gamify/admin/adjustments",
            post(economy::adjust_points),
        )
        .route(
            "/api/v2/gamify/admin/webhooks",
            post(webhooks::create_webhook).get(webhooks::list_webhooks),
        )
        .route(
            "/api/v2/gamify/admin/webhooks/{webhook_id}",
            delete(webhooks::delete_webhook),
        )
        .route(
            "/api/v2/gamify/admin/webhooks/{webhook_id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route(
            "/api/v2/gamify/admin/webhooks/deliveries/{delivery_id}/replay",
            post(webhooks::replay_delivery),
        )
        .route(
            "/api/v2/gamify/admin/keys",
            post(auth::create_key).get(auth::list_keys),
        )
        .route(
            "/api/v2/gamify/admin/keys/{key_id}/revoke",
            post(auth::revoke_key),
        )
        .route("/api/v2/gamify/analytics", get(data::analytics))
        .route(
            "/api/v2/gamify/admin/rules",
            get(rules::current).put(rules::replace),
        )
        .route("/api/v2/gamify/admin/rules/versions", get(rules::versions))
        .route(
            "/api/v2/gamify/admin/rules/versions/{version}",
            get(rules::version),
        )
        .route("/api/v2/gamify/admin/verify", get(data::verify))
        .route("/api/v2/gamify/admin/export", get(data::export))
        .route("/api/v2/gamify/users/{user_id}", delete(data::erase_user));
    Router::new()
        .merge(ingest)
        .merge(read)
        .merge(admin)
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi_json))
        .route("/docs", get(handlers::docs_page))
        .route("/ui", get(ui::index))
        .route("/ui/wallet", get(ui::wallet))
        .route("/ui/leaderboards", get(ui::leaderboards))
        .route("/ui/admin", get(ui::admin))
        .route("/ui/gamify-wallet.js", get(ui::widget))
        .route("/ui/page.js", get(ui::page_js))
        .route("/ui/page.css", get(ui::page_css))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(engine.limits().max_body_bytes))
        .layer(log::LogLayer::new(engine.clone()))
        .with_state(engine)
}

/// Serves `tenancy` (an [`Engine`] alone, or tenants) on `listener` until
/// `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    tenancy: impl Into<Tenancy>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tenancy = tenancy.into();
    let engine = tenancy.default_engine().clone();
    // The key table is read before the first request, so a node never
    // answers as if no key existed; then it is kept fresh.
    engine
        .refresh_keys()
        .await
        .map_err(|e| std::io::Error::other(format!("could not read the API keys: {e}")))?;
    let refresh = tokio::spawn(engine.clone().run_key_refresh());
    let rules_refresh = tokio::spawn(engine.clone().run_rules_refresh());
    let tenants_refresh = tokio::spawn(tenancy.clone().run_refresh());
    let header_timeout = std::time::Duration::from_millis(engine.limits().header_timeout_ms);
    let served = server::serve_app(listener, app(tenancy), header_timeout, shutdown).await;
    refresh.abort();
    rules_refresh.abort();
    tenants_refresh.abort();
    served
}
