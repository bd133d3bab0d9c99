//! `DELETE /api/v2/gamify/users/{user_id}`: erasure on request, as an
//! operator and the apps around it see it.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{assert_error, board_users, error_fields, event, spawn_app};

#[tokio::test]
async fn an_admin_erases_a_user_and_later_writes_for_them_are_refused_with_410() {
    let app = spawn_app().await;
    app.post_event_with_key(event("alice", "finance", 10.0), "k-1")
        .await;
    app.record("bob", "health", 5.0).await;
    app.spend(json!({"user_id": "alice", "points": 5.0, "reason": "tip"}))
        .await;

    // Not without the admin token.
    let r = app
        .anonymous
        .delete(app.url("/api/v2/gamify/users/alice"))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "unauthorized").await;

    let r = app
        .admin(Method::DELETE, "/api/v2/gamify/users/alice", None)
        .await;
    assert_eq!(r.status(), 200);
    let erased: serde_json::Value = r.json().await.unwrap();
    assert_eq!(erased["user_id"], "alice");
    assert!(erased["erasure_id"].as_str().unwrap().starts_with("era_"));
    assert_eq!(
        erased["removed"],
        json!({"events": 1, "ledger_entries": 2, "movements": 1, "redemptions": 0})
    );

    // She reads as a user never seen; the board has only Bob.
    let balance = app.balance("alice").await;
    assert_eq!(balance["total_points"], 0.0);
    assert_eq!(balance["lifetime_points"], 0.0);
    let events = app.get_json("/api/v2/gamify/events/alice").await;
    assert_eq!(events, json!([]));
    let board = app.get_json("/api/v2/gamify/leaderboard").await;
    let users = board_users(&board);
    assert_eq!(users, ["bob"]);

    // A retry with the old key, a late event, a spend: 410, field named.
    let r = app
        .post_event_with_key(event("alice", "finance", 10.0), "k-1")
        .await;
    let err = assert_error(r, 410, "user_erased").await;
    assert_eq!(error_fields(&err), ["user_id"]);
    let r = app.post_event(event("alice", "health", 1.0)).await;
    assert_error(r, 410, "user_erased").await;
    let r = app
        .spend(json!({"user_id": "alice", "points": 1.0, "reason": "tip"}))
        .await;
    assert_error(r, 410, "user_erased").await;
    // A simulation answers what recording would: the same refusal.
    let r = app
        .post(
            "/api/v2/gamify/simulate",
            event("alice", "health", 1.0),
            None,
        )
        .await;
    assert_error(r, 410, "user_erased").await;
    assert_eq!(app.balance("alice").await["total_points"], 0.0);

    // Erasing again answers the same; a stranger is 404; the data verifies.
    let again: serde_json::Value = app
        .admin(Method::DELETE, "/api/v2/gamify/users/alice", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, erased);
    let r = app
        .admin(Method::DELETE, "/api/v2/gamify/users/nobody", None)
        .await;
    assert_error(r, 404, "not_found").await;
    let findings = app
        .admin(Method::GET, "/api/v2/gamify/admin/verify", None)
        .await
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(findings, json!([]));
}
