//! `GET /api/v2/gamify/analytics`: the brief's engagement numbers, by the
//! engine's clock, for admins only.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{DAY, assert_error, error_fields, event, spawn_app};

#[tokio::test]
async fn analytics_count_events_users_activity_categories_and_days() {
    let app = spawn_app().await;
    // T0 is 2025-10-12T10:30Z. anna: today and 3 days ago; ben: 20 days
    // ago; cai: 40 days ago.
    for (user, category, value, occurred_at) in [
        ("anna", "finance", 10.0, "2025-10-12T09:00:00Z"),
        ("anna", "learning", 2.0, "2025-10-09T09:00:00Z"),
        ("ben", "health", 5.0, "2025-09-22T09:00:00Z"),
    ] {
        let response = app
            .post_event(json!({"user_id": user, "category": category, "action": "a", "value": value, "occurred_at": occurred_at}))
            .await;
        assert_eq!(response.status(), 200);
    }
    // Forty days back is past the backfill window: recorded when it was now.
    app.clock.set(crate::helpers::T0 - 40 * DAY);
    app.record("cai", "social", 10.0).await;
    app.clock.set(crate::helpers::T0);

    let response = app
        .admin(Method::GET, "/api/v2/gamify/analytics?days=7", None)
        .await;
    assert_eq!(response.status(), 200);
    let a: Value = response.json().await.unwrap();
    assert_eq!(a["total_events"], 4);
    assert_eq!(a["total_users"], 3);
    assert_eq!(a["active_users_7d"], 1);
    assert_eq!(a["active_users_30d"], 2);
    // (20 + 3) + 6 + 8 = 37 lifetime points over 3 users.
    assert_eq!(a["average_points_per_user"], 12.333);
    assert_eq!(
        a["events_by_category"],
        json!({"finance": 1, "health": 1, "learning": 1, "social": 1})
    );
    assert_eq!(a["points_by_category"]["finance"], 20.0);
    let days = a["events_per_day"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days[0]["day"], "2025-10-06");
    assert_eq!(
        days[6],
        json!({"day": "2025-10-12", "events": 1, "points": 20.0})
    );
    assert_eq!(
        days[3],
        json!({"day": "2025-10-09", "events": 1, "points": 3.0})
    );
    assert_eq!(
        days.iter()
            .map(|d| d["events"].as_u64().unwrap())
            .sum::<u64>(),
        2
    );

    // Admins only; days in range.
    let anonymous = app
        .anonymous
        .get(app.url("/api/v2/gamify/analytics"))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    let bad = app
        .admin(Method::GET, "/api/v2/gamify/analytics?days=0", None)
        .await;
    let err = assert_error(bad, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["days"]);
    let default = app.admin_json("/api/v2/gamify/analytics").await;
    assert_eq!(default["events_per_day"].as_array().unwrap().len(), 30);
}

#[tokio::test]
async fn amounts_near_the_top_of_the_range_stay_exact_and_refusals_name_the_field() {
    let app = spawn_app().await;
    // Valid rules near the top of their ranges: each event earns
    // 1e9 × 1000 × (1 + 100 %) = 2e12 points, and there is a level per
    // point.
    let response = app
        .put_rules(
            "max_event_value = 1000000000\n[categories]\nfinance = 1000\n\
             [streak]\nfirst_bonus_day = 1\npercent_per_day = 100\nmax_percent = 100\n\
             [levels]\npoints_per_level = 1\n",
        )
        .await;
    assert_eq!(response.status(), 200);
    // ada earns 4611 × 2e12 = 9.222e15 points, just under the most one
    // user's i64 of thousandths holds (about 9.2234e15); bo 29 × 2e12.
    // Together they pass it.
    for (user, events) in [("ada", 4_611), ("bo", 29)] {
        let mut left = events;
        while left > 0 {
            let n = left.min(40);
            let batch = (0..n).map(|_| app.post_event(event(user, "finance", 1e9)));
            for response in futures_util::future::join_all(batch).await {
                assert_eq!(response.status(), 200);
            }
            left -= n;
        }
    }
    let a = app.admin_json("/api/v2/gamify/analytics?days=1").await;
    assert_eq!(a["total_events"], 4_640);
    assert_eq!(a["average_points_per_user"], 4.64e15);
    assert_eq!(a["points_by_category"]["finance"], 9.28e15);
    assert_eq!(a["events_per_day"][0]["points"], 9.28e15);

    // A level past four billion, and the next one ahead (one point ahead,
    // which a JSON number this large can only show rounded).
    let balance = app.balance("ada").await;
    assert_eq!(balance["lifetime_points"], 9.222e15);
    assert_eq!(balance["level"], 9_222_000_000_000_001_u64);
    assert!(balance["next_level_points"].as_f64() >= balance["lifetime_points"].as_f64());

    // Past the top, a refusal that names what was sent, and no change.
    let more = app.post_event(event("ada", "finance", 1e9)).await;
    let err = assert_error(more, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["value"]);
    let credit = json!({"user_id": "ada", "points": 1e12, "reason": "goodwill"});
    let adjust = |body| app.admin(Method::POST, "/api/v2/gamify/admin/adjustments", Some(body));
    assert_eq!(adjust(credit.clone()).await.status(), 200);
    let err = assert_error(adjust(credit).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["points"]);
    assert_eq!(app.balance("ada").await["lifetime_points"], 9.223e15);

    // A thousandth more: 9,223,000,000,000,000,001 thousandths, which a
    // double (Redis's score) cannot hold exactly. The data still verifies,
    // boards included, on every backend.
    let tiny = json!({"user_id": "ada", "points": 0.001, "reason": "rounding"});
    assert_eq!(adjust(tiny).await.status(), 200);
    let findings = app.admin_json("/api/v2/gamify/admin/verify").await;
    assert_eq!(findings, json!([]));
}
