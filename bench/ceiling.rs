//! The benchmark's ceiling: the same HTTP stack and runtime as `gamify serve`,
//! parsing the same event JSON, doing no work. Gamify's throughput is reported
//! as a fraction of this, measured in the same run. See `bench/run.sh`.
//! It also stands in for a webhook receiver (`POST /hook`, 204).

use axum::extract::Path;
use axum::routing::{get, post};
use axum::{Json, Router};
use gamify::EventRequest;
use serde_json::{Value, json};

// The allocator `gamify serve` uses: the same stack, measured the same way.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn parse_event(Json(event): Json<EventRequest>) -> Json<Value> {
    Json(json!({"id": "evt_00000000000000000000", "user_id": event.user_id, "points": 0.0}))
}

/// A body of the balance's size and shape, built per request as Gamify does.
async fn balance(Path(user_id): Path<String>) -> Json<Value> {
    Json(json!({
        "user_id": user_id, "total_points": 245.5, "lifetime_points": 1250.0, "streak_days": 7,
        "best_streak": 7, "last_event": "2025-10-12T10:30:00.000Z", "level": 13, "next_level_points": 1300.0,
        "achievements": ["first_step", "streak_3", "streak_7", "points_100", "points_500"]
    }))
}

/// A webhook receiver that takes any body (`bench/webhooks.sh`).
async fn hook(body: axum::body::Bytes) -> axum::http::StatusCode {
    std::hint::black_box(body);
    axum::http::StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("CEILING_ADDR").unwrap_or_else(|_| "127.0.0.1:8100".into());
    let app = Router::new()
        .route("/api/v2/gamify/event", post(parse_event))
        .route("/api/v2/gamify/balance/{user_id}", get(balance))
        .route("/hook", post(hook));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("ceiling listening on {addr}");
    // The server loop `gamify serve` runs on, with its default header timeout.
    let header_timeout =
        std::time::Duration::from_millis(gamify::engine::Limits::default().header_timeout_ms);
    gamify::http::server::serve_app(listener, app, header_timeout, std::future::pending()).await
}
