use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
    assert_eq!(app.get_json("/readyz").await["status"], "ready");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("x-request-id").unwrap(), "trace-me");
    let response = app.get("/healthz").await;
    assert!(response.headers().get("x-request-id").is_some());
}

/// The committed `docs/openapi.json` must equal what the code generates.
/// Regenerate with `cargo run -- openapi > docs/openapi.json`.
#[tokio::test]
async fn the_served_openapi_document_matches_the_committed_copy() {
    let app = spawn_app().await;
    let served = app.get("/openapi.json").await.text().await.unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .unwrap_or_default();
    assert!(
        served == committed,
        "docs/openapi.json is stale: run `cargo run -- openapi > docs/openapi.json` and commit it"
    );
    let spec: Value = serde_json::from_str(&served).unwrap();
    for path in [
        "/api/v2/gamify/event",
        "/api/v2/gamify/balance/{user_id}",
        "/api/v2/gamify/stats/{user_id}",
        "/api/v2/gamify/events/{user_id}",
        "/api/v2/gamify/leaderboard",
        "/api/v2/gamify/achievements",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn the_docs_page_is_served() {
    let app = spawn_app().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("/openapi.json"));
}
