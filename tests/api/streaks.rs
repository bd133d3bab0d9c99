use serde_json::{Value, json};

use crate::helpers::{DAY, T0, event, spawn_app};

#[tokio::test]
async fn a_seven_day_streak_pays_thirty_five_percent_and_unlocks_the_streak_achievements() {
    let app = spawn_app().await;
    let mut responses = Vec::new();
    for day in 0..7 {
        app.clock.set(T0 + day * DAY);
        responses.push(app.record("runner", "productivity", 10.0).await);
    }
    let bonus: Vec<f64> = responses
        .iter()
        .map(|r| r["streak_bonus"].as_f64().unwrap())
        .collect();
    assert_eq!(bonus, [0.0, 0.0, 0.15, 0.2, 0.25, 0.3, 0.35]);
    assert_eq!(responses[6]["points"], 13.5);
    assert_eq!(responses[6]["streak_day"], 7);
    assert_eq!(responses[2]["achievements_unlocked"][0]["id"], "streak_3");
    assert_eq!(responses[2]["bonus_points"], 10.0);
    let day7: Vec<&str> = responses[6]["achievements_unlocked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    // 92.5 points before the +25 bonus, 117.5 after: points_100 follows in the same event.
    assert_eq!(day7, ["streak_7", "points_100"]);
    assert_eq!(responses[6]["level_up"], true);

    let balance = app.balance("runner").await;
    assert_eq!(balance["streak_days"], 7);
    assert_eq!(balance["lifetime_points"], 117.5);
    assert_eq!(balance["level"], 2);
    assert_eq!(balance["next_level_points"], 200.0);
    assert_eq!(
        balance["achievements"],
        json!(["first_step", "streak_3", "streak_7", "points_100"])
    );
}

#[tokio::test]
async fn several_events_on_one_day_count_once() {
    let app = spawn_app().await;
    for hour in 0..5 {
        app.clock.set(T0 + hour * 3_600_000);
        let body = app.record("u1", "health", 1.0).await;
        assert_eq!(body["streak_day"], 1);
    }
    assert_eq!(app.balance("u1").await["streak_days"], 1);
}

#[tokio::test]
async fn the_streak_survives_until_the_end_of_the_next_day_then_reads_zero_and_restarts() {
    let app = spawn_app().await;
    for day in 0..3 {
        app.clock.set(T0 + day * DAY);
        app.record("u1", "learning", 1.0).await;
    }
    app.clock.set(T0 + 3 * DAY);
    assert_eq!(
        app.balance("u1").await["streak_days"],
        3,
        "yesterday's streak is alive today"
    );
    app.clock.set(T0 + 4 * DAY);
    let balance = app.balance("u1").await;
    assert_eq!(balance["streak_days"], 0, "a missed day breaks it");
    assert_eq!(balance["best_streak"], 3);
    let body = app.record("u1", "learning", 1.0).await;
    assert_eq!(body["streak_day"], 1);
    let stats = app.get_json("/api/v2/gamify/stats/u1").await;
    assert_eq!(stats["current_streak"], 1);
    assert_eq!(stats["best_streak"], 3);
}

#[tokio::test]
async fn a_late_event_fills_a_gap_without_rewriting_earlier_points() {
    let app = spawn_app().await;
    app.record("u1", "finance", 1.0).await; // day 0
    app.clock.set(T0 + 2 * DAY);
    let day2 = app.record("u1", "finance", 1.0).await;
    assert_eq!(day2["streak_day"], 1);
    assert_eq!(app.balance("u1").await["streak_days"], 1);

    // The day-1 event arrives late; it joins the runs into a 3-day streak.
    let late = app
        .post_event(
            json!({"user_id": "u1", "category": "finance", "action": "paid_invoice", "value": 1.0,
                           "occurred_at": "2025-10-13T09:00:00Z"}),
        )
        .await;
    assert_eq!(late.status(), 200);
    let late: Value = late.json().await.unwrap();
    assert_eq!(late["streak_day"], 2, "the streak ending on its own day");
    assert_eq!(late["achievements_unlocked"][0]["id"], "streak_3");

    let balance = app.balance("u1").await;
    assert_eq!(balance["streak_days"], 3);
    // Points already awarded stand: 2 + 2 (day 2, recorded at streak day 1) + 2 (late) + 10 bonus.
    assert_eq!(balance["lifetime_points"], 16.0);
    let events: Vec<Value> = app
        .get_json("/api/v2/gamify/events/u1")
        .await
        .as_array()
        .unwrap()
        .clone();
    let day2_again = events.iter().find(|e| e["id"] == day2["id"]).unwrap();
    assert_eq!(day2_again["points"], 2.0);
    assert_eq!(day2_again["streak_day"], 1);
}

#[tokio::test]
async fn times_outside_the_window_are_refused() {
    let app = spawn_app().await;
    for (at, why) in [
        ("2025-10-12T10:36:00Z", "future"),
        ("2025-09-11T10:00:00Z", "older than 30 days"),
    ] {
        let mut body = event("u1", "health", 1.0);
        body["occurred_at"] = json!(at);
        let response = app.post_event(body).await;
        let err = crate::helpers::assert_error(response, 422, "validation_failed").await;
        assert_eq!(err["error"]["details"][0]["field"], "occurred_at", "{why}");
    }
    assert_eq!(app.balance("u1").await["total_points"], 0.0);
}
