//! Spending, rewards, redemptions and the ledger over HTTP: what a client
//! and an admin see, in the documented shapes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{DAY, assert_error, error_fields, error_message, spawn_app, spawn_app_with};

fn coffee() -> Value {
    json!({"id": "coffee", "name_fi": "Kahvi", "name_en": "Coffee", "description": "A cup",
           "cost": 30.0, "stock": 2, "per_user_limit": null})
}

#[tokio::test]
async fn a_spend_returns_the_entry_and_the_new_balance_and_retries_charge_once() {
    let app = spawn_app().await;
    app.record("u1", "finance", 50.0).await; // 100 points
    let body = json!({"user_id": "u1", "points": 40.5, "reason": "Coffee voucher", "metadata": {"shop": 7}});
    let first = app
        .post("/api/v2/gamify/spend", body.clone(), Some("s-1"))
        .await;
    assert_eq!(first.status(), 200);
    let spent: Value = first.json().await.unwrap();
    assert_eq!(spent["points"], -40.5);
    assert_eq!(spent["total_points"], 59.5);
    assert_eq!(spent["lifetime_points"], 100.0);
    assert_eq!(spent["metadata"], json!({"shop": 7}));
    assert!(spent["id"].as_str().unwrap().starts_with("spd_"));

    let again = app.post("/api/v2/gamify/spend", body, Some("s-1")).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], spent["id"]);
    let balance = app.balance("u1").await;
    assert_eq!(balance["total_points"], 59.5, "charged once");
    assert_eq!(balance["lifetime_points"], 100.0);
    assert_eq!(
        balance["level"], 2,
        "level follows lifetime, not the balance"
    );

    let other = json!({"user_id": "u1", "points": 1.0, "reason": "x"});
    assert_error(
        app.post("/api/v2/gamify/spend", other, Some("s-1")).await,
        409,
        "idempotency_conflict",
    )
    .await;
}

#[tokio::test]
async fn spending_more_than_the_balance_is_409_insufficient_points_and_changes_nothing() {
    let app = spawn_app().await;
    app.record("u1", "finance", 5.0).await; // 10 points
    let body = json!({"user_id": "u1", "points": 10.001, "reason": "too much"});
    let err = assert_error(app.spend(body).await, 409, "insufficient_points").await;
    assert!(error_message(&err).contains("10.0"), "{err}");
    assert_eq!(app.balance("u1").await["total_points"], 10.0);
    let ledger = app.get_json("/api/v2/gamify/ledger/u1").await;
    assert_eq!(
        ledger.as_array().unwrap().len(),
        1,
        "no entry for the refusal"
    );
}

#[tokio::test]
async fn invalid_spends_name_every_bad_field() {
    let app = spawn_app().await;
    let body = json!({"user_id": "bad id", "points": -1.0, "reason": ""});
    let err = assert_error(app.spend(body).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["points", "user_id", "reason"]);
    let body = json!({"user_id": "u1", "points": 1.0, "reason": "x", "colour": "red"});
    assert_error(app.spend(body).await, 422, "validation_failed").await;
    // Below a thousandth, a positive amount would round to nothing.
    let body = json!({"user_id": "u1", "points": 0.0004, "reason": "x"});
    let err = assert_error(app.spend(body).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["points"]);
    assert!(error_message(&err).contains("at least 0.001"), "{err}");
}

#[tokio::test]
async fn the_ledger_lists_every_movement_newest_first_with_a_cursor() {
    let app = spawn_app().await;
    app.record("u1", "finance", 50.0).await;
    for i in 0..3 {
        let body = json!({"user_id": "u1", "points": 1.0, "reason": format!("r{i}")});
        assert_eq!(app.spend(body).await.status(), 200);
    }
    let first = app.get("/api/v2/gamify/ledger/u1?limit=2").await;
    let cursor = first.headers()["x-next-cursor"]
        .to_str()
        .unwrap()
        .to_owned();
    let page: Value = first.json().await.unwrap();
    assert_eq!(page[0]["kind"], "spend");
    assert_eq!(page[0]["balance_after"], 97.0);
    let rest = app
        .get_json(&format!("/api/v2/gamify/ledger/u1?limit=2&before={cursor}"))
        .await;
    let kinds: Vec<_> = rest
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(kinds, [json!("spend"), json!("event")]);
    assert_error(
        app.get("/api/v2/gamify/ledger/u1?before=abc").await,
        422,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn admin_routes_need_the_token() {
    let app = spawn_app().await;
    let response = app
        .anonymous
        .get(app.url("/api/v2/gamify/admin/rewards"))
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "unauthorized").await;
    let response = app
        .client
        .post(app.url("/api/v2/gamify/admin/rewards"))
        .bearer_auth("test-admin-token-012345678X")
        .json(&coffee())
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "unauthorized").await;
    assert!(
        app.get_json("/api/v2/gamify/rewards")
            .await
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing created"
    );
}

#[tokio::test]
async fn a_reward_is_created_listed_redeemed_and_cancelled_with_a_refund() {
    let app = spawn_app().await;
    let created = app
        .admin(Method::POST, "/api/v2/gamify/admin/rewards", Some(coffee()))
        .await;
    assert_eq!(created.status(), 200);
    assert_error(
        app.admin(Method::POST, "/api/v2/gamify/admin/rewards", Some(coffee()))
            .await,
        409,
        "already_exists",
    )
    .await;
    app.record("u1", "finance", 20.0).await; // 40 points

    let listed = app.get_json("/api/v2/gamify/rewards?user_id=u1").await;
    assert_eq!(listed[0]["id"], "coffee");
    assert_eq!(listed[0]["affordable"], true);
    assert_eq!(listed[0]["remaining"], 2);

    let redeemed = app
        .post(
            "/api/v2/gamify/rewards/coffee/redeem",
            json!({"user_id": "u1"}),
            Some("r-1"),
        )
        .await;
    assert_eq!(redeemed.status(), 200);
    let redemption: Value = redeemed.json().await.unwrap();
    assert_eq!(redemption["status"], "pending");
    assert_eq!(redemption["cost"], 30.0);
    assert_eq!(app.balance("u1").await["total_points"], 10.0);
    let replay = app
        .post(
            "/api/v2/gamify/rewards/coffee/redeem",
            json!({"user_id": "u1"}),
            Some("r-1"),
        )
        .await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_error(
        app.post(
            "/api/v2/gamify/rewards/coffee/redeem",
            json!({"user_id": "u1"}),
            None,
        )
        .await,
        409,
        "insufficient_points",
    )
    .await;
    assert_eq!(
        app.get_json("/api/v2/gamify/rewards?user_id=u1").await[0]["affordable"],
        false
    );

    let pending = app
        .admin(
            Method::GET,
            "/api/v2/gamify/admin/redemptions?status=pending",
            None,
        )
        .await;
    let pending: Value = pending.json().await.unwrap();
    assert_eq!(pending[0]["id"], redemption["id"]);
    let id = redemption["id"].as_str().unwrap();
    let cancelled = app
        .admin(
            Method::POST,
            &format!("/api/v2/gamify/admin/redemptions/{id}/cancel"),
            None,
        )
        .await;
    assert_eq!(
        cancelled.json::<Value>().await.unwrap()["status"],
        "cancelled"
    );
    assert_eq!(app.balance("u1").await["total_points"], 40.0, "refunded");
    assert_error(
        app.admin(
            Method::POST,
            &format!("/api/v2/gamify/admin/redemptions/{id}/fulfil"),
            None,
        )
        .await,
        409,
        "redemption_closed",
    )
    .await;
    let ledger = app.get_json("/api/v2/gamify/ledger/u1").await;
    let kinds: Vec<_> = ledger
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        [json!("refund"), json!("redemption"), json!("event")]
    );
    assert_eq!(ledger[0]["reference"], redemption["id"]);

    let mine = app.get_json("/api/v2/gamify/redemptions/u1").await;
    assert_eq!(mine[0]["status"], "cancelled");
    let findings = app
        .admin(Method::GET, "/api/v2/gamify/admin/verify", None)
        .await;
    assert_eq!(findings.json::<Value>().await.unwrap(), json!([]));
}

#[tokio::test]
async fn redemptions_page_back_with_a_cursor_like_the_ledger() {
    let app = spawn_app().await;
    let mut reward = coffee();
    reward["cost"] = json!(1.0);
    reward["stock"] = json!(null);
    let created = app
        .admin(Method::POST, "/api/v2/gamify/admin/rewards", Some(reward))
        .await;
    assert_eq!(created.status(), 200);
    app.record("u1", "finance", 10.0).await;
    let mut ids = Vec::new();
    // All three in one millisecond (the test clock stands still): they
    // still list in the order they were made.
    for _ in 0..3 {
        let redeemed = app
            .post(
                "/api/v2/gamify/rewards/coffee/redeem",
                json!({"user_id": "u1"}),
                None,
            )
            .await;
        assert_eq!(redeemed.status(), 200);
        ids.push(redeemed.json::<Value>().await.unwrap()["id"].clone());
    }
    ids.reverse(); // newest first
    for path in [
        "/api/v2/gamify/redemptions/u1",
        "/api/v2/gamify/admin/redemptions",
    ] {
        let first = app
            .admin(Method::GET, &format!("{path}?limit=2"), None)
            .await;
        let cursor = first.headers()["x-next-cursor"]
            .to_str()
            .unwrap()
            .to_owned();
        let page: Value = first.json().await.unwrap();
        assert_eq!(page.as_array().unwrap().len(), 2, "{path}");
        assert_eq!((&page[0]["id"], &page[1]["id"]), (&ids[0], &ids[1]));
        assert_eq!(cursor, ids[1], "{path}");
        let last = app
            .admin(
                Method::GET,
                &format!("{path}?limit=2&before={cursor}"),
                None,
            )
            .await;
        assert!(last.headers().get("x-next-cursor").is_none(), "{path}");
        let page: Value = last.json().await.unwrap();
        assert_eq!(page.as_array().unwrap().len(), 1, "{path}");
        assert_eq!(page[0]["id"], ids[2]);
        // A cursor that is no redemption id is refused, not read as a
        // place to start from.
        let bad = app
            .admin(Method::GET, &format!("{path}?before=zzz"), None)
            .await;
        let err = assert_error(bad, 422, "validation_failed").await;
        assert_eq!(error_fields(&err), ["before"]);
    }
}

#[tokio::test]
async fn a_deactivated_or_sold_out_reward_is_refused_with_its_own_code() {
    let app = spawn_app().await;
    app.admin(Method::POST, "/api/v2/gamify/admin/rewards", Some(coffee()))
        .await;
    for u in ["a", "b", "c"] {
        app.record(u, "finance", 20.0).await;
    }
    for u in ["a", "b"] {
        let r = app
            .post(
                "/api/v2/gamify/rewards/coffee/redeem",
                json!({"user_id": u}),
                None,
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    assert_error(
        app.post(
            "/api/v2/gamify/rewards/coffee/redeem",
            json!({"user_id": "c"}),
            None,
        )
        .await,
        409,
        "out_of_stock",
    )
    .await;
    let mut lower = coffee();
    lower["stock"] = json!(1);
    let err = assert_error(
        app.admin(
            Method::PUT,
            "/api/v2/gamify/admin/rewards/coffee",
            Some(lower),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(error_fields(&err), ["stock"]);
    let off = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/rewards/coffee/deactivate",
            None,
        )
        .await;
    assert_eq!(off.json::<Value>().await.unwrap()["active"], false);
    assert!(
        app.get_json("/api/v2/gamify/rewards")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_error(
        app.post(
            "/api/v2/gamify/rewards/coffee/redeem",
            json!({"user_id": "c"}),
            None,
        )
        .await,
        409,
        "reward_inactive",
    )
    .await;
    assert_error(
        app.post(
            "/api/v2/gamify/rewards/nope/redeem",
            json!({"user_id": "c"}),
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        app.admin(
            Method::POST,
            "/api/v2/gamify/admin/redemptions/red_nope/cancel",
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn an_admin_adjustment_is_a_ledger_entry_and_never_overdraws() {
    let app = spawn_app().await;
    let credit = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/adjustments",
            Some(json!({"user_id": "u1", "points": 25.0, "reason": "goodwill"})),
        )
        .await;
    assert_eq!(
        credit.json::<Value>().await.unwrap()["lifetime_points"],
        25.0
    );
    let debit = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/adjustments",
            Some(json!({"user_id": "u1", "points": -30.0, "reason": "clawback"})),
        )
        .await;
    assert_error(debit, 409, "insufficient_points").await;
    let balance = app.balance("u1").await;
    assert_eq!(
        (
            balance["total_points"].clone(),
            balance["lifetime_points"].clone()
        ),
        (json!(25.0), json!(25.0))
    );
}

#[tokio::test]
async fn with_expiry_on_the_balance_shows_what_expires_within_30_days_and_the_sweep_expires_it() {
    let rules = gamify::Rules {
        expiry: Some(gamify_core::Expiry { days: 30 }),
        ..gamify::Rules::default()
    };
    let app = spawn_app_with(rules).await;
    app.record("u1", "finance", 5.0).await; // 10 points today (day 0)
    assert_eq!(
        app.balance("u1").await["expiring_points"],
        0.0,
        "30 days left"
    );
    app.clock.advance(DAY);
    assert_eq!(
        app.balance("u1").await["expiring_points"],
        10.0,
        "gone on day 31"
    );
    app.record("u1", "finance", 2.5).await; // 5 points on day 1
    app.clock.advance(30 * DAY); // day 31: the day-0 points are due
    let (users, points) = app.engine.expire_due_points().await.unwrap();
    assert_eq!((users, points), (1, gamify_core::Points::whole(10)));
    let balance = app.balance("u1").await;
    assert_eq!(balance["total_points"], 5.0);
    assert_eq!(balance["lifetime_points"], 15.0, "lifetime never expires");
    assert_eq!(balance["expiring_points"], 5.0);
    let ledger = app.get_json("/api/v2/gamify/ledger/u1?limit=1").await;
    assert_eq!(ledger[0]["kind"], "expiry");
    assert_eq!(ledger[0]["points"], -10.0);
    assert_eq!(
        app.engine.expire_due_points().await.unwrap().0,
        0,
        "a second sweep finds nothing"
    );
}
