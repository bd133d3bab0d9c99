//! Rules as data: `GET /admin/rules` shows the rules scoring uses;
//! `PUT /admin/rules` replaces them with a new version; recorded events keep
//! the version (and the points) they were scored with.

use gamify::Rules;
use gamify::config::RuleSource;
use gamify_core::{Expiry, Points};
use serde_json::{Value, json};

use crate::helpers::{assert_error, error_fields, error_message, event, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_rules_document_is_the_briefs_and_scoring_follows_it() {
    let app = spawn_app().await;
    let rules = app.admin_json("/api/v2/gamify/admin/rules").await;
    assert_eq!(rules["version"], 1);
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
        json!({"curve": "linear", "points_per_level": 100.0, "thresholds": null})
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
        assert_eq!(simulated["rules_version"], 1);
    }
    // The document's own file form is these rules: putting it back changes nothing.
    let again = app.put_rules(rules["toml"].as_str().unwrap()).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["version"], 1);
}

#[tokio::test]
async fn the_configured_limits_show_in_the_rules_document() {
    let app = spawn_app_with(Rules {
        expiry: Some(Expiry { days: 365 }),
        ..Rules::default()
    })
    .await;
    let version = app
        .engine
        .adopt_configured_rules(&RuleSource {
            max_event_value: Some(Points::whole(50)),
            backfill_days: Some(7),
            ..RuleSource::default()
        })
        .await
        .unwrap();
    assert_eq!(
        version, 2,
        "a change of the configured limits is a new version"
    );
    let rules = app.admin_json("/api/v2/gamify/admin/rules").await;
    assert_eq!(rules["version"], 2);
    assert_eq!(rules["source"], "custom");
    assert_eq!(rules["max_event_value"], 50.0);
    assert_eq!(rules["backfill_days"], 7);
    assert_eq!(rules["points_expire_after_days"], 365);
    let refused = app.post_event(event("u1", "finance", 51.0)).await;
    assert_error(refused, 422, "validation_failed").await;
    // The same configuration at the next start adds nothing.
    let same = RuleSource {
        max_event_value: Some(Points::whole(50)),
        backfill_days: Some(7),
        ..RuleSource::default()
    };
    assert_eq!(app.engine.adopt_configured_rules(&same).await.unwrap(), 2);
}

/// The brief's "Custom Category Weights" example, with a level table and
/// an achievement for a custom category.
const CUSTOM: &str = r#"
[categories]
finance = 2.5
learning = 2.0
health = 1.5
productivity = 1.0
social = 1.0
custom_category = 1.2

[levels]
thresholds = [10, 50, 200]

[[achievements]]
id = "first_step"
kind = "first_event"
name = { fi = "Ensimmäinen askel", en = "First step" }

[[achievements]]
id = "custom_fan"
kind = "category_events"
category = "custom_category"
events = 2
bonus = 5
name = { fi = "Oma juttu", en = "Own thing" }
description = { fi = "Kaksi omaa tapahtumaa", en = "Two custom events" }
"#;

#[tokio::test]
async fn a_rules_change_scores_new_events_and_leaves_recorded_ones_as_they_were() {
    let app = spawn_app().await;
    let before = app.record("u1", "finance", 10.0).await;
    assert_eq!(
        (before["points"].clone(), before["rules_version"].clone()),
        (json!(20.0), json!(1))
    );

    let replaced = app.put_rules(CUSTOM).await;
    assert_eq!(replaced.status(), 200);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(replaced["version"], 2);
    assert_eq!(replaced["source"], "custom");
    let categories = app.get_json("/api/v2/gamify/categories").await;
    assert_eq!(categories, replaced["categories"]);
    assert_eq!(
        categories[5],
        json!({"name": "custom_category", "weight": 1.2})
    );
    assert_eq!(
        replaced["levels"],
        json!({"curve": "table", "points_per_level": null, "thresholds": [10.0, 50.0, 200.0]})
    );

    // New events: the new weights, a custom category, the new catalogue.
    let finance = app.record("u1", "finance", 10.0).await;
    assert_eq!(finance["points"], 25.0);
    assert_eq!(finance["category_weight"], 2.5);
    assert_eq!(finance["rules_version"], 2);
    let custom = app.record("u1", "custom_category", 10.0).await;
    assert_eq!(custom["points"], 12.0);
    assert_eq!(custom["achievements_unlocked"], json!([]));
    let second = app.record("u1", "custom_category", 10.0).await;
    assert_eq!(
        second["achievements_unlocked"],
        json!([{"id": "custom_fan", "name_fi": "Oma juttu", "name_en": "Own thing", "bonus_points": 5.0}])
    );
    // 20 (v1) + 25 + 12 + 12 + 5 bonus = 74: level 3 of the table (50..200).
    let balance = app.balance("u1").await;
    assert_eq!(balance["lifetime_points"], 74.0);
    assert_eq!(balance["level"], 3);
    assert_eq!(balance["next_level_points"], 200.0);

    // The first event still reads as it was scored: v1's weight and points.
    let events = app.get_json("/api/v2/gamify/events/u1?limit=10").await;
    let first = events.as_array().unwrap().last().unwrap();
    assert_eq!(first["id"], before["id"]);
    assert_eq!(first["points"], 20.0);
    assert_eq!(first["category_weight"], 2.0);
    assert_eq!(first["rules_version"], 1);
    assert_eq!(
        first["achievements_unlocked"][0]["name_en"], "First step",
        "names come from the version the event was scored with"
    );

    // Old versions stay readable.
    let versions = app.admin_json("/api/v2/gamify/admin/rules/versions").await;
    let listed: Vec<(Value, Value)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].clone(), v["current"].clone()))
        .collect();
    assert_eq!(listed, [(json!(1), json!(false)), (json!(2), json!(true))]);
    let v1 = app
        .admin_json("/api/v2/gamify/admin/rules/versions/1")
        .await;
    assert_eq!(
        v1["categories"][0],
        json!({"name": "finance", "weight": 2.0})
    );
    assert_eq!(v1["achievements"].as_array().unwrap().len(), 7);
    let missing = app
        .admin(
            reqwest::Method::GET,
            "/api/v2/gamify/admin/rules/versions/3",
            None,
        )
        .await;
    assert_error(missing, 404, "not_found").await;

    // The catalogue is the current version's.
    let catalogue = app.get_json("/api/v2/gamify/achievements").await;
    let ids: Vec<&str> = catalogue
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["first_step", "custom_fan"]);
    assert_eq!(catalogue[1]["requirement"], "category_events");
    assert_eq!(catalogue[1]["category"], "custom_category");
    assert_eq!(catalogue[1]["threshold"], 2.0);

    // A custom category has its boards like the brief's.
    let board = app
        .get_json("/api/v2/gamify/leaderboard?category=custom_category")
        .await;
    assert_eq!(board[0]["user_id"], "u1");
    assert_eq!(board[0]["points"], 24.0);

    // Ledger entries keep the version of the event they come from; a spend
    // does not depend on the rules.
    app.spend(json!({"user_id": "u1", "points": 1.0, "reason": "tip"}))
        .await;
    let ledger = app.get_json("/api/v2/gamify/ledger/u1?limit=20").await;
    let versions: Vec<(Value, Value)> = ledger
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].clone(), e["rules_version"].clone()))
        .collect();
    assert_eq!(
        versions,
        [
            (json!("spend"), Value::Null),
            (json!("achievement_bonus"), json!(2)),
            (json!("event"), json!(2)),
            (json!("event"), json!(2)),
            (json!("event"), json!(2)),
            (json!("event"), json!(1)),
        ]
    );

    // Every invariant holds across the change (achievements are checked
    // against the versions the events were scored with).
    let findings = app.admin_json("/api/v2/gamify/admin/verify").await;
    assert_eq!(findings, json!([]));
}

#[tokio::test]
async fn a_category_the_new_rules_drop_is_refused_but_its_board_stays_readable() {
    let app = spawn_app().await;
    app.record("u1", "social", 10.0).await;
    let replaced = app
        .put_rules("[categories]\nfinance = 2\nlearning = 1.5\n")
        .await;
    assert_eq!(replaced.status(), 200);
    let refused = app.post_event(event("u1", "social", 1.0)).await;
    let err = assert_error(refused, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["category"]);
    assert!(
        error_message(&err).contains("known categories: finance, learning"),
        "{err}"
    );
    let board = app
        .get_json("/api/v2/gamify/leaderboard?category=social")
        .await;
    assert_eq!(board[0]["points"], 8.0);
}

#[tokio::test]
async fn a_rules_file_with_mistakes_is_refused_line_by_line_and_changes_nothing() {
    let app = spawn_app().await;
    let broken = "[categories]\nfinance = 0\n\n[[achievements]]\nid = \"x\"\nkind = \"weekly\"\nname = { fi = \"X\", en = \"X\" }\n";
    let response = app.put_rules(broken).await;
    let err = assert_error(response, 422, "validation_failed").await;
    let messages: Vec<&str> = err["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 1, "{err}");
    assert!(messages[0].starts_with("line 6, column 8:"), "{messages:?}");
    assert!(
        messages[0].contains("unknown kind \"weekly\""),
        "{messages:?}"
    );

    let response = app.put_rules("[categories]\nfinance = 0\n").await;
    let err = assert_error(response, 422, "validation_failed").await;
    assert_eq!(
        err["error"]["details"][0]["message"],
        "line 2, column 11: categories.finance: expected a weight from 0.001 to 1000"
    );

    // Not TOML text at all, or sent as JSON.
    let json = app
        .admin(
            reqwest::Method::PUT,
            "/api/v2/gamify/admin/rules",
            Some(json!({"categories": {}})),
        )
        .await;
    assert_error(json, 415, "unsupported_media_type").await;
    // Over the body limit (64 KiB): a 413 in the error shape, like a JSON body's.
    let huge = format!("# {}\n[categories]\nfinance = 2\n", "x".repeat(70_000));
    assert_error(app.put_rules(&huge).await, 413, "payload_too_large").await;
    let bad_version = app
        .admin(
            reqwest::Method::GET,
            "/api/v2/gamify/admin/rules/versions/two",
            None,
        )
        .await;
    assert_error(bad_version, 422, "validation_failed").await;

    let rules = app.admin_json("/api/v2/gamify/admin/rules").await;
    assert_eq!(rules["version"], 1);
    let versions = app.admin_json("/api/v2/gamify/admin/rules/versions").await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
}
