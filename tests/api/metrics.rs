//! `GET /metrics`: Prometheus's text format, counting what users care about
//! (events and points by category, achievements, replays) and requests by
//! route template, never by a path that holds a user id.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn metrics_count_events_points_achievements_replays_and_routes() {
    let app = spawn_app().await;
    let body =
        json!({"user_id": "ann_secret_id", "category": "finance", "action": "paid", "value": 2.0});
    for _ in 0..2 {
        let r = app.post_event_with_key(body.clone(), "key-1").await;
        assert_eq!(r.status(), 200);
    }
    app.record("bob", "learning", 10.0).await;
    assert_eq!(
        app.get("/api/v2/gamify/balance/ann_secret_id")
            .await
            .status(),
        200
    );

    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    for line in [
        // The replay is not a second event.
        "gamify_events_total{category=\"finance\"} 1",
        "gamify_events_total{category=\"learning\"} 1",
        "gamify_event_replays_total 1",
        // 2.0 × 2.0; 10 × 1.5 and bob's first_step pays nothing extra.
        "gamify_points_total{category=\"finance\"} 4",
        "gamify_points_total{category=\"learning\"} 15",
        "gamify_achievements_unlocked_total{achievement=\"first_step\"} 2",
        "gamify_level_ups_total 0",
        "gamify_http_requests_total{method=\"POST\",route=\"/api/v2/gamify/event\",status=\"200\"} 3",
        "gamify_http_requests_total{method=\"GET\",route=\"/api/v2/gamify/balance/{user_id}\",status=\"200\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        text.contains("gamify_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v2/gamify/event\",status=\"200\",le=\"+Inf\"} 3"),
        "{text}"
    );
    assert!(
        !text.contains("ann_secret_id"),
        "user ids stay out of metrics"
    );
    if std::env::var("GAMIFY_TEST_BACKEND").is_ok_and(|b| b.starts_with("postgres")) {
        assert!(text.contains("gamify_pg_pool_connections "), "{text}");
    }
    if std::env::var("GAMIFY_TEST_BACKEND").is_ok_and(|b| b == "postgres+exclusive") {
        assert!(
            text.contains("gamify_pg_exclusive_lease_trusted 1"),
            "{text}"
        );
    }
}
