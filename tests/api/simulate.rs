//! `POST /simulate`: what an event would earn, with its breakdown, without
//! writing anything; and it equals what recording then earns.

use serde_json::{Value, json};

use crate::helpers::{DAY, T0, assert_error, error_fields, event, spawn_app};

/// The recorded event without what only recording gives it.
fn breakdown(mut recorded: Value) -> Value {
    let fields = recorded.as_object_mut().unwrap();
    for only_recorded in ["id", "created_at", "metadata"] {
        fields.remove(only_recorded);
    }
    recorded
}

#[tokio::test]
async fn simulate_answers_what_recording_then_earns_across_a_streak_and_its_bonuses() {
    let app = spawn_app().await;
    // Seven days: streak bonuses from day 3, streak_3 and streak_7 with their
    // bonus points, points_100 unlocked by a bonus, a level-up on day 7.
    for day in 0..7 {
        app.clock.set(T0 + day * DAY + 3_600_000);
        let body = event("runner", "productivity", 10.0);
        let simulated = app
            .post("/api/v2/gamify/simulate", body.clone(), None)
            .await;
        assert_eq!(simulated.status(), 200);
        let simulated: Value = simulated.json().await.unwrap();
        let recorded = app.record("runner", "productivity", 10.0).await;
        assert_eq!(simulated, breakdown(recorded), "day {}", day + 1);
    }
    let last = app
        .post(
            "/api/v2/gamify/simulate",
            event("runner", "finance", 2.0),
            None,
        )
        .await;
    let last: Value = last.json().await.unwrap();
    assert_eq!(last["category_weight"], 2.0);
    assert_eq!(last["streak_day"], 7, "a second event on day 7");
    assert_eq!(last["streak_bonus"], 0.35);
    assert_eq!(last["points"], 5.4, "2 × 2.0 × 1.35");
    assert_eq!(last["achievements_unlocked"], json!([]));
}

#[tokio::test]
async fn simulate_writes_nothing() {
    let app = spawn_app().await;
    app.clock.set(T0);
    app.record("u1", "learning", 4.0).await;
    let before = app.balance("u1").await;
    for _ in 0..3 {
        let response = app
            .post(
                "/api/v2/gamify/simulate",
                event("u1", "learning", 900.0),
                None,
            )
            .await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["lifetime_points"], 1356.0, "6 + 1350: {body}");
        let ids: Vec<&str> = body["achievements_unlocked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["points_100", "points_500", "points_1000"]);
    }
    // A user never seen: simulated as a first event, and still unknown after.
    let fresh = app
        .post(
            "/api/v2/gamify/simulate",
            event("nobody", "social", 5.0),
            None,
        )
        .await;
    let fresh: Value = fresh.json().await.unwrap();
    assert_eq!(fresh["points"], 4.0);
    assert_eq!(fresh["achievements_unlocked"][0]["id"], "first_step");
    assert_eq!(
        fresh["achievements_unlocked"][0]["name_fi"],
        "Ensimmäinen askel"
    );

    assert_eq!(app.balance("u1").await, before);
    let events = app.get_json("/api/v2/gamify/events/u1").await;
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(app.balance("nobody").await["lifetime_points"], 0.0);
    let stats = app.get_json("/api/v2/gamify/stats/nobody").await;
    assert_eq!(stats["total_events"], 0);
}

#[tokio::test]
async fn simulate_refuses_what_recording_refuses_naming_every_field() {
    let app = spawn_app().await;
    app.clock.set(T0);
    let response = app
        .post(
            "/api/v2/gamify/simulate",
            json!({"user_id": "u1", "category": "gardening", "action": "", "value": -1.0,
                   "occurred_at": "2020-01-01T00:00:00Z"}),
            None,
        )
        .await;
    let err = assert_error(response, 422, "validation_failed").await;
    assert_eq!(
        error_fields(&err),
        ["category", "action", "value", "occurred_at"]
    );
    let response = app
        .post("/api/v2/gamify/simulate", json!({"user_id": "u1"}), None)
        .await;
    let err = assert_error(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["category"], "the first missing field");
    assert_eq!(app.balance("u1").await["lifetime_points"], 0.0);
}
