//! `GET /api/v2/gamify/admin/export`: every table as exact NDJSON, filtered
//! by user and time.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{DAY, spawn_app};

/// `GET /admin/export` with `query` (`?from=…`, or empty).
async fn export_response(app: &crate::helpers::TestApp, query: &str) -> reqwest::Response {
    app.admin(
        Method::GET,
        &format!("/api/v2/gamify/admin/export{query}"),
        None,
    )
    .await
}

async fn export(app: &crate::helpers::TestApp, query: &str) -> Vec<Value> {
    let r = export_response(app, query).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == t).collect()
}

#[tokio::test]
async fn the_export_holds_every_table_exactly_and_ends_with_its_counts() {
    let app = spawn_app().await;
    app.admin(
        Method::POST,
        "/api/v2/gamify/admin/rewards",
        Some(json!({"id": "mug", "name_fi": "Muki", "name_en": "Mug", "cost": 3.0})),
    )
    .await;
    app.post_event_with_key(
        json!({"user_id": "u1", "category": "finance", "action": "paid", "value": 1.25,
                                  "metadata": {"invoice": 7}}),
        "k-1",
    )
    .await;
    app.record("u2", "health", 1.0).await;
    app.clock.advance(DAY);
    app.record("u1", "learning", 2.0).await;
    app.spend(json!({"user_id": "u1", "points": 0.5, "reason": "tip"}))
        .await;
    app.post(
        "/api/v2/gamify/rewards/mug/redeem",
        json!({"user_id": "u1"}),
        Some("r-1"),
    )
    .await;

    let lines = export(&app, "").await;
    assert_eq!(lines[0]["type"], "export");
    assert_eq!(lines[0]["format"], "gamify-ndjson");
    // Version 1 of the rules is built into every store: it does not travel.
    assert!(of_type(&lines, "rules").is_empty());
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(
        end["counts"],
        json!({"event": 3, "ledger": 5, "movement": 1, "redemption": 1, "reward": 1, "user": 2})
    );
    let first = of_type(&lines, "event")[0];
    assert_eq!(first["value_milli"], 1250);
    assert_eq!(first["points_milli"], 2500);
    assert_eq!(first["metadata"], json!({"invoice": 7}));
    assert_eq!(first["idempotency_key"], "k-1");
    assert!(first["request_hash"].is_string());
    assert_eq!(first["rules_version"], Value::Null, "version 1 is left out");
    let u1 = of_type(&lines, "user")
        .into_iter()
        .find(|u| u["user_id"] == "u1")
        .unwrap();
    assert_eq!(u1["total_milli"], 2500 + 3000 - 500 - 3000);
    let ledger_sum: i64 = of_type(&lines, "ledger")
        .iter()
        .filter(|l| l["user_id"] == "u1")
        .map(|l| l["amount_milli"].as_i64().unwrap())
        .sum();
    assert_eq!(
        ledger_sum,
        u1["total_milli"].as_i64().unwrap(),
        "the ledger in the export sums to the balance"
    );
    assert_eq!(of_type(&lines, "redemption")[0]["idempotency_key"], "r-1");

    // One user, and a time range.
    let only_u2 = export(&app, "?user_id=u2").await;
    assert!(
        only_u2
            .iter()
            .all(|l| l["user_id"].is_null() || l["user_id"] == "u2"),
        "{only_u2:?}"
    );
    assert_eq!(of_type(&only_u2, "event").len(), 1);
    assert_eq!(
        of_type(&only_u2, "reward").len(),
        1,
        "the catalogue comes whole"
    );
    let day_two = crate::helpers::T0 + DAY;
    let from = gamify::model::rfc3339_ms(day_two);
    let later = export(&app, &format!("?from={from}")).await;
    assert_eq!(of_type(&later, "event").len(), 1);
    assert_eq!(of_type(&later, "event")[0]["category"], "learning");

    let r = export_response(&app, "?from=yesterday").await;
    crate::helpers::assert_error(r, 422, "validation_failed").await;
    // Swapped bounds select nothing: refused, naming `to`.
    let r = export_response(&app, &format!("?from={from}&to={from}")).await;
    let err = crate::helpers::assert_error(r, 422, "validation_failed").await;
    assert_eq!(err["error"]["details"][0]["field"], "to", "{err}");
}
