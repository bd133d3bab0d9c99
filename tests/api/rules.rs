//! `GET /admin/rules`: the rules in force as data, the ones scoring uses.

use gamify::Rules;
use gamify_core::{Expiry, Points};
use serde_json::{Value, json};

use crate::helpers::{event, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_rules_document_is_the_briefs_and_scoring_follows_it() {
    let app = spawn_app().await;
    let rules = app.admin_json("/api/v2/gamify/admin/rules").await;
    assert_eq!(rules["source"], "built-in");
    assert_eq!(
        rules["categories"],
        json!([
            {"name": "finance", "weight": 2.0}, {"name": "learning", "weight": 1.5},
            {"name": "health", "weight": 1.2}, {"name": "productivity", "weight": 1.0},
            {"name": "social", "weight": 0.8},
        ])
    );
    assert_eq!(
        rules["streak"],
        json!({"first_bonus_day": 3, "percent_per_day": 5, "max_percent": 50})
    );
    assert_eq!(
        rules["levels"],
        json!({"curve": "linear", "points_per_level": 100.0})
    );
    assert_eq!(
        rules["achievements"],
        app.get_json("/api/v2/gamify/achievements").await
    );
    assert_eq!(rules["max_event_value"], 1000.0);
    assert_eq!(rules["backfill_days"], 30);
    assert_eq!(rules["points_expire_after_days"], Value::Null);
    assert_eq!(
        rules["achievement_rewards"],
        json!({"points_1000": "special_reward"})
    );
    // Each category's weight is what one unit of value earns.
    for category in rules["categories"].as_array().unwrap() {
        let name = category["name"].as_str().unwrap();
        let simulated = app
            .post("/api/v2/gamify/simulate", event("u1", name, 1.0), None)
            .await;
        let simulated: Value = simulated.json().await.unwrap();
        assert_eq!(simulated["points"], category["weight"], "{name}");
    }
}

#[tokio::test]
async fn the_configured_limits_show_in_the_rules_document() {
    let app = spawn_app_with(Rules {
        max_event_value: Points::whole(50),
        backfill_days: 7,
        expiry: Some(Expiry { days: 365 }),
        ..Rules::default()
    })
    .await;
    let rules = app.admin_json("/api/v2/gamify/admin/rules").await;
    assert_eq!(rules["max_event_value"], 50.0);
    assert_eq!(rules["backfill_days"], 7);
    assert_eq!(rules["points_expire_after_days"], 365);
}
