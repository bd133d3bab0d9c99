//! Request size limits, as configured: a body, a metadata object or a page
//! past its limit gets a clear 4xx naming it, and changes nothing; ids past
//! their fixed lengths too.

use gamify::engine::Limits;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, error_fields, error_message, event, serve, spawn_app};

/// A second server over the app's engine with small limits.
async fn small(app: &TestApp) -> String {
    let engine = app.engine.clone().with_limits(Limits {
        max_body_bytes: 2048,
        max_metadata_bytes: 64,
        max_page: 20,
    });
    serve(engine).await
}

#[tokio::test]
async fn each_limit_exceeded_is_a_clear_4xx_and_changes_nothing() {
    let app = spawn_app().await;
    let base = small(&app).await;
    let post = |body: Value| {
        app.client
            .post(format!("{base}/api/v2/gamify/event"))
            .json(&body)
            .send()
    };

    let mut big = event("u1", "finance", 2.0);
    big["metadata"] = json!({"note": "x".repeat(3000)});
    let err = assert_error(post(big).await.unwrap(), 413, "payload_too_large").await;
    assert!(error_message(&err).contains("2048"), "{err}");

    let mut meta = event("u1", "finance", 2.0);
    meta["metadata"] = json!({"note": "x".repeat(70)});
    let err = assert_error(post(meta).await.unwrap(), 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["metadata"]);
    assert!(error_message(&err).contains("64 bytes"), "{err}");

    let long_id = event(&"u".repeat(129), "finance", 2.0);
    let err = assert_error(post(long_id).await.unwrap(), 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["user_id"]);

    assert_eq!(
        app.balance("u1").await["lifetime_points"],
        0.0,
        "nothing recorded"
    );

    let mut fits = event("u1", "finance", 2.0);
    fits["metadata"] = json!({"note": "short"});
    assert_eq!(post(fits).await.unwrap().status(), 200);

    let page = |limit: u32| {
        app.client
            .get(format!("{base}/api/v2/gamify/events/u1?limit={limit}"))
            .send()
    };
    let err = assert_error(page(21).await.unwrap(), 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["limit"]);
    assert!(error_message(&err).contains("between 1 and 20"));
    assert_eq!(page(20).await.unwrap().status(), 200);
    let board = app
        .client
        .get(format!("{base}/api/v2/gamify/leaderboard?limit=21"))
        .send()
        .await
        .unwrap();
    assert_error(board, 422, "validation_failed").await;
}

#[tokio::test]
async fn the_default_limits_are_the_documented_ones() {
    let app = spawn_app().await;
    let mut meta = event("u1", "finance", 2.0);
    meta["metadata"] = json!({"note": "x".repeat(4100)});
    let err = assert_error(app.post_event(meta).await, 422, "validation_failed").await;
    assert!(error_message(&err).contains("4096 bytes"));
    let page = app.get("/api/v2/gamify/events/u1?limit=101").await;
    assert_error(page, 422, "validation_failed").await;
    let mut body = event("u1", "finance", 2.0);
    body["metadata"] = json!({"note": "x".repeat(70_000)});
    let err = assert_error(app.post_event(body).await, 413, "payload_too_large").await;
    assert!(error_message(&err).contains("65536"));
}
