use serde_json::{Value, json};

use crate::helpers::{T0, event, spawn_app};

#[tokio::test]
async fn the_briefs_quick_start_event_earns_four_points() {
    let app = spawn_app().await;
    let response = app
        .post_event(json!({
            "user_id": "user_123", "category": "finance", "action": "paid_invoice",
            "value": 2.0, "metadata": {"invoice_amount": 150.00}
        }))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(body["user_id"], "user_123");
    assert_eq!(body["category"], "finance");
    assert_eq!(body["action"], "paid_invoice");
    assert_eq!(body["value"], 2.0);
    assert_eq!(body["points"], 4.0);
    assert_eq!(body["created_at"], "2025-10-12T10:30:00.000Z");
    assert_eq!(body["metadata"], json!({"invoice_amount": 150.0}));
    assert_eq!(body["achievements_unlocked"][0]["id"], "first_step");
    assert_eq!(
        body["achievements_unlocked"][0]["name_fi"],
        "Ensimmäinen askel"
    );
}

#[tokio::test]
async fn every_category_is_weighted_as_the_brief_says() {
    let app = spawn_app().await;
    for (category, points) in [
        ("finance", 20.0),
        ("learning", 15.0),
        ("health", 12.0),
        ("productivity", 10.0),
        ("social", 8.0),
    ] {
        let body = app.record(&format!("u_{category}"), category, 10.0).await;
        assert_eq!(body["points"], points, "{category}");
    }
}

#[tokio::test]
async fn values_keep_three_decimals_and_points_round_to_the_nearest_thousandth() {
    let app = spawn_app().await;
    // The brief's lesson: 40 minutes / 30 = 1.333…, × 1.5 = 1.9995 → 2.0.
    let body = app.record("learner", "learning", 40.0 / 30.0).await;
    assert_eq!(body["value"], 1.333);
    assert_eq!(body["points"], 2.0);
    // Sums stay exact: ten 0.1-point events are 1.0, not 0.9999999.
    for _ in 0..10 {
        app.record("tenths", "productivity", 0.1).await;
    }
    assert_eq!(app.balance("tenths").await["total_points"], 1.0);
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_returns_the_original_event() {
    let app = spawn_app().await;
    let body = json!({"user_id": "u1", "category": "health", "action": "run", "value": 5.0, "metadata": {"km": 5, "route": "park"}});
    let first = app
        .post_event_with_key(body.clone(), "run-2025-10-12")
        .await;
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();

    app.clock.advance(60_000);
    // Same body with its metadata keys in another order: the same request.
    let again_body = json!({"value": 5.0, "action": "run", "category": "health", "user_id": "u1", "metadata": {"route": "park", "km": 5}});
    let again = app.post_event_with_key(again_body, "run-2025-10-12").await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the replay is the original, byte for byte");

    let stats = app.get_json("/api/v2/gamify/stats/u1").await;
    assert_eq!(stats["total_events"], 1);
    assert_eq!(app.balance("u1").await["total_points"], 6.0);
}

#[tokio::test]
async fn the_same_idempotency_key_with_a_different_body_is_a_conflict_and_changes_nothing() {
    let app = spawn_app().await;
    let response = app
        .post_event_with_key(event("u1", "health", 5.0), "k-1")
        .await;
    assert_eq!(response.status(), 200);
    let before = app.balance("u1").await;
    let clash = app
        .post_event_with_key(event("u1", "health", 6.0), "k-1")
        .await;
    crate::helpers::assert_error(clash, 409, "idempotency_conflict").await;
    let other_user = app
        .post_event_with_key(event("u2", "health", 5.0), "k-1")
        .await;
    crate::helpers::assert_error(other_user, 409, "idempotency_conflict").await;
    assert_eq!(app.balance("u1").await, before);
    assert_eq!(app.balance("u2").await["total_points"], 0.0);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_record_one_event() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = app.client.clone();
        let url = app.url("/api/v2/gamify/event");
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("Idempotency-Key", "same")
                .json(&event("u1", "finance", 1.0))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry got the same event");
    assert_eq!(
        app.get_json("/api/v2/gamify/stats/u1").await["total_events"],
        1
    );
}

#[tokio::test]
async fn events_are_listed_newest_first_as_a_bare_array_with_a_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..25 {
        app.clock.advance(1000);
        ids.push(
            app.record("u1", "social", 1.0 + f64::from(i)).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.reverse();

    let default = app.get("/api/v2/gamify/events/u1").await;
    let cursor = default
        .headers()
        .get("x-next-cursor")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let page: Vec<Value> = default.json().await.unwrap();
    assert_eq!(page.len(), 10, "default limit is 10");
    let got: Vec<_> = page.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids[..10]);

    let mut seen: Vec<String> = got.iter().map(|s| s.to_string()).collect();
    let mut cursor = Some(cursor);
    while let Some(c) = cursor {
        let r = app
            .get(&format!("/api/v2/gamify/events/u1?limit=10&before={c}"))
            .await;
        cursor = r
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        let page: Vec<Value> = r.json().await.unwrap();
        seen.extend(page.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
    }
    assert_eq!(seen, ids, "paging visits every event once, newest first");

    let five: Vec<Value> = app
        .get_json("/api/v2/gamify/events/u1?limit=5")
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(five.len(), 5);
    let none: Value = app.get_json("/api/v2/gamify/events/nobody").await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn an_event_may_carry_its_own_time_within_the_backfill_window() {
    let app = spawn_app().await;
    let body = json!({"user_id": "u1", "category": "health", "action": "run", "value": 1.0, "occurred_at": "2025-10-10T08:00:00+02:00"});
    let response = app.post_event(body).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["occurred_at"], "2025-10-10T06:00:00.000Z");
    assert_eq!(body["created_at"], "2025-10-12T10:30:00.000Z");
    let _ = T0;
}
