use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn an_unknown_user_has_a_zero_balance_and_empty_stats() {
    let app = spawn_app().await;
    let balance = app.balance("nobody").await;
    assert_eq!(
        balance,
        json!({"user_id": "nobody", "total_points": 0.0, "lifetime_points": 0.0, "streak_days": 0, "best_streak": 0,
               "last_event": null, "level": 1, "next_level_points": 100.0, "achievements": [],
               "expiring_points": 0.0})
    );
    let stats = app.get_json("/api/v2/gamify/stats/nobody").await;
    assert_eq!(
        stats,
        json!({"user_id": "nobody", "total_events": 0, "events_by_category": {}, "points_by_category": {},
               "best_streak": 0, "current_streak": 0, "achievements": []})
    );
}

#[tokio::test]
async fn stats_count_events_and_points_by_category() {
    let app = spawn_app().await;
    app.record("u1", "finance", 2.0).await;
    app.record("u1", "finance", 3.0).await;
    app.record("u1", "learning", 1.0).await;
    let stats = app.get_json("/api/v2/gamify/stats/u1").await;
    assert_eq!(stats["total_events"], 3);
    assert_eq!(
        stats["events_by_category"],
        json!({"finance": 2, "learning": 1})
    );
    assert_eq!(
        stats["points_by_category"],
        json!({"finance": 10.0, "learning": 1.5})
    );
    assert_eq!(stats["achievements"], json!(["first_step"]));
    let balance = app.balance("u1").await;
    assert_eq!(balance["last_event"], "2025-10-12T10:30:00.000Z");
}

#[tokio::test]
async fn the_leaderboard_orders_by_lifetime_points_with_ties_by_user_id() {
    let app = spawn_app().await;
    app.record("zoe", "finance", 5.0).await; // 10
    app.record("adam", "finance", 5.0).await; // 10
    app.record("mia", "finance", 60.0).await; // 120
    app.record("leo", "social", 1.0).await; // 0.8
    let board = app.get_json("/api/v2/gamify/leaderboard?limit=10").await;
    assert_eq!(
        board,
        json!([
            {"rank": 1, "user_id": "mia", "points": 120.0, "lifetime_points": 120.0, "total_points": 120.0, "level": 2},
            {"rank": 2, "user_id": "adam", "points": 10.0, "lifetime_points": 10.0, "total_points": 10.0, "level": 1},
            {"rank": 3, "user_id": "zoe", "points": 10.0, "lifetime_points": 10.0, "total_points": 10.0, "level": 1},
            {"rank": 4, "user_id": "leo", "points": 0.8, "lifetime_points": 0.8, "total_points": 0.8, "level": 1},
        ])
    );
    let top2 = app.get_json("/api/v2/gamify/leaderboard?limit=2").await;
    assert_eq!(top2.as_array().unwrap().len(), 2);
    let default = app.get_json("/api/v2/gamify/leaderboard").await;
    assert_eq!(default.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn the_achievement_catalogue_names_each_achievement_in_finnish_and_english() {
    let app = spawn_app().await;
    let catalogue = app.get_json("/api/v2/gamify/achievements").await;
    let rows: Vec<(String, String, f64)> = catalogue
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().into(),
                a["name_fi"].as_str().unwrap().into(),
                a["bonus_points"].as_f64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("first_step", "Ensimmäinen askel", 0.0),
        ("streak_3", "3 päivän putki", 10.0),
        ("streak_7", "Viikon voittaja", 25.0),
        ("streak_30", "Kuukauden mestari", 100.0),
        ("points_100", "Sata pistettä", 0.0),
        ("points_500", "Viisisataa", 0.0),
        ("points_1000", "Tuhat pistettä", 0.0),
    ];
    let expected: Vec<(String, String, f64)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .collect();
    assert_eq!(rows, expected);
    assert!(
        catalogue
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["name_en"].as_str().is_some_and(|n| !n.is_empty()))
    );
}
