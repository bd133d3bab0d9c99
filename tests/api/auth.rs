//! API keys on every route: no key, a wrong key, a revoked key and a key
//! without the route's scope are refused (401, 403) and change nothing; a
//! key with the scope gets through. With no key at all the API is open but
//! its admin routes are off. A revocation reaches another node's copy of
//! the key table within a second. A key past its rate limit gets 429.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gamify::auth::RateLimit;
use gamify::{Engine, ManualClock, Rules, http};
use gamify_store::sqlite::SqliteStore;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, Place, T0, assert_error, error_message, event, keyed_client, serve, spawn_app,
    spawn_app_on,
};

/// Every route that needs a key: method, path template, scope.
pub(crate) const ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/api/v2/gamify/event", "ingest"),
    ("PUT", "/api/v2/gamify/users/{user_id}/privacy", "ingest"),
    ("POST", "/api/v2/gamify/spend", "ingest"),
    (
        "POST",
        "/api/v2/gamify/rewards/{reward_id}/redeem",
        "ingest",
    ),
    ("POST", "/api/v2/gamify/simulate", "read"),
    ("GET", "/api/v2/gamify/events/{user_id}", "read"),
    ("GET", "/api/v2/gamify/balance/{user_id}", "read"),
    ("GET", "/api/v2/gamify/stats/{user_id}", "read"),
    ("GET", "/api/v2/gamify/leaderboard", "read"),
    ("GET", "/api/v2/gamify/leaderboard/{user_id}", "read"),
    ("GET", "/api/v2/gamify/achievements", "read"),
    ("GET", "/api/v2/gamify/ledger/{user_id}", "read"),
    ("GET", "/api/v2/gamify/rewards", "read"),
    ("GET", "/api/v2/gamify/redemptions/{user_id}", "read"),
    ("GET", "/api/v2/gamify/admin/rewards", "admin"),
    ("POST", "/api/v2/gamify/admin/rewards", "admin"),
    ("PUT", "/api/v2/gamify/admin/rewards/{reward_id}", "admin"),
    (
        "POST",
        "/api/v2/gamify/admin/rewards/{reward_id}/deactivate",
        "admin",
    ),
    ("GET", "/api/v2/gamify/admin/redemptions", "admin"),
    (
        "POST",
        "/api/v2/gamify/admin/redemptions/{redemption_id}/fulfil",
        "admin",
    ),
    (
        "POST",
        "/api/v2/gamify/admin/redemptions/{redemption_id}/cancel",
        "admin",
    ),
    ("POST", "/api/v2/gamify/admin/adjustments", "admin"),
    ("GET", "/api/v2/gamify/admin/webhooks", "admin"),
    ("POST", "/api/v2/gamify/admin/webhooks", "admin"),
    (
        "DELETE",
        "/api/v2/gamify/admin/webhooks/{webhook_id}",
        "admin",
    ),
    (
        "GET",
        "/api/v2/gamify/admin/webhooks/{webhook_id}/deliveries",
        "admin",
    ),
    (
        "POST",
        "/api/v2/gamify/admin/webhooks/deliveries/{delivery_id}/replay",
        "admin",
    ),
    ("GET", "/api/v2/gamify/admin/keys", "admin"),
    ("POST", "/api/v2/gamify/admin/keys", "admin"),
    ("POST", "/api/v2/gamify/admin/keys/{key_id}/revoke", "admin"),
    ("GET", "/api/v2/gamify/analytics", "admin"),
    ("GET", "/api/v2/gamify/categories", "read"),
    ("GET", "/api/v2/gamify/admin/rules", "admin"),
    ("PUT", "/api/v2/gamify/admin/rules", "admin"),
    ("GET", "/api/v2/gamify/admin/rules/versions", "admin"),
    (
        "GET",
        "/api/v2/gamify/admin/rules/versions/{version}",
        "admin",
    ),
    ("GET", "/api/v2/gamify/admin/verify", "admin"),
    ("GET", "/api/v2/gamify/admin/export", "admin"),
    ("DELETE", "/api/v2/gamify/users/{user_id}", "admin"),
    ("GET", "/api/v2/gamify/admin/tenants", "admin"),
    ("POST", "/api/v2/gamify/admin/tenants", "admin"),
];

/// Routes anyone may call: health, metrics, the contract, the pages.
const OPEN: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// A concrete path: every `{param}` becomes `u1`.
pub(crate) fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with('{') { "u1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) async fn send(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
) -> reqwest::Response {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = client.request(method.clone(), format!("{base}{}", concrete(path)));
    if method == Method::POST || method == Method::PUT {
        request = request.json(&event("u1", "finance", 2.0));
    }
    request.send().await.unwrap()
}

async fn make_key(client: &reqwest::Client, base: &str, scopes: &[&str]) -> Value {
    let response = client
        .post(format!("{base}/api/v2/gamify/admin/keys"))
        .json(&json!({"name": format!("{scopes:?} key"), "scopes": scopes}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_route_table_covers_every_route_in_the_contract_with_its_scope() {
    let spec: Value = serde_json::from_str(&http::openapi::spec_json()).unwrap();
    let mut documented = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let scope = operation["security"][0]["api_key"][0]
                .as_str()
                .map(str::to_owned);
            documented.push((method.to_uppercase(), path.clone(), scope));
        }
    }
    for (method, path, scope) in &documented {
        match ROUTES.iter().find(|(m, p, _)| m == method && p == path) {
            Some((_, _, needed)) => assert_eq!(
                scope.as_deref(),
                Some(*needed),
                "{method} {path}: the contract names another scope than the route needs"
            ),
            None => assert!(
                OPEN.contains(&path.as_str()) && scope.is_none(),
                "{method} {path} is in the contract but not in the auth matrix"
            ),
        }
    }
    assert_eq!(documented.len(), ROUTES.len() + OPEN.len());
}

#[tokio::test]
async fn every_route_refuses_a_missing_wrong_revoked_or_unscoped_key_and_changes_nothing() {
    let app = spawn_app().await;
    app.clock.set(T0);
    let admin = keyed_client(ADMIN_TOKEN);
    let mut with_scope = std::collections::HashMap::new();
    let mut without_scope = std::collections::HashMap::new();
    for (scope, others) in [
        ("ingest", ["read", "admin"]),
        ("read", ["ingest", "admin"]),
        ("admin", ["ingest", "read"]),
    ] {
        let key = make_key(&admin, &app.base, &[scope]).await;
        with_scope.insert(scope, keyed_client(key["secret"].as_str().unwrap()));
        let key = make_key(&admin, &app.base, &others).await;
        without_scope.insert(scope, keyed_client(key["secret"].as_str().unwrap()));
    }
    let revoked = make_key(&admin, &app.base, &["ingest", "read", "admin"]).await;
    let response = admin
        .post(app.url(&format!(
            "/api/v2/gamify/admin/keys/{}/revoke",
            revoked["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let revoked = keyed_client(revoked["secret"].as_str().unwrap());
    let wrong =
        keyed_client("gmf_0000000000000000000000000000000000000000000000000000000000000000");
    let keys_before = app.admin_json("/api/v2/gamify/admin/keys").await;

    for (method, path, scope) in ROUTES {
        for (who, client) in [
            ("no key", &app.anonymous),
            ("a wrong key", &wrong),
            ("a revoked key", &revoked),
        ] {
            let response = send(client, &app.base, method, path).await;
            let err = assert_error(response, 401, "unauthorized").await;
            assert!(
                error_message(&err).contains(scope),
                "{method} {path} with {who}: {err}"
            );
        }
        let response = send(&without_scope[scope], &app.base, method, path).await;
        assert_error(response, 403, "forbidden").await;
    }

    // Nothing the refused requests asked for happened.
    assert_eq!(app.balance("u1").await["lifetime_points"], 0.0);
    assert_eq!(app.get_json("/api/v2/gamify/events/u1").await, json!([]));
    app.assert_no_rewards_webhooks_or_new_keys(&keys_before)
        .await;
    assert_eq!(
        app.admin_json("/api/v2/gamify/admin/rules").await["version"],
        1
    );

    // The right scope gets through (to whatever the request itself earns).
    for (method, path, scope) in ROUTES {
        let response = send(&with_scope[scope], &app.base, method, path).await;
        let status = response.status().as_u16();
        assert!(
            status != 401 && status != 403,
            "{method} {path} with an {scope} key: {status}"
        );
    }
    assert_eq!(
        app.balance("u1").await["lifetime_points"],
        0.0,
        "erased by the admin pass"
    );
}

#[tokio::test]
async fn without_any_key_ingest_and_read_are_open_and_admin_is_off_until_a_key_exists() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("g.db"), Rules::default()).unwrap());
    let engine = Engine::with_store(store, Rules::default(), Arc::new(ManualClock::new(T0)));
    let base = serve(engine.clone()).await;
    let client = reqwest::Client::new();

    let recorded = client
        .post(format!("{base}/api/v2/gamify/event"))
        .json(&event("u1", "finance", 2.0))
        .send()
        .await
        .unwrap();
    assert_eq!(recorded.status(), 200);
    let balance = client
        .get(format!("{base}/api/v2/gamify/balance/u1"))
        .send()
        .await
        .unwrap();
    assert_eq!(balance.status(), 200);
    let admin = client
        .get(format!("{base}/api/v2/gamify/admin/keys"))
        .send()
        .await
        .unwrap();
    assert_error(admin, 403, "admin_disabled").await;

    // The first key (as `gamify keys create` makes it) closes the API.
    let key = engine
        .create_key(gamify::model::KeyRequest {
            name: "first".into(),
            scopes: vec!["read".into()],
        })
        .await
        .unwrap();
    let anonymous = client
        .get(format!("{base}/api/v2/gamify/balance/u1"))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    let keyed = client
        .get(format!("{base}/api/v2/gamify/balance/u1"))
        .bearer_auth(&key.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);
}

#[tokio::test]
async fn a_key_revoked_on_one_node_is_refused_by_another_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("g.db"), Rules::default()).unwrap());
    let one = spawn_app_on(store.clone(), Place::Dir(dir), Rules::default()).await;
    let other = spawn_app_on(
        store,
        Place::Dir(tempfile::tempdir().unwrap()),
        Rules::default(),
    )
    .await;
    let key = make_key(&one.client, &one.base, &["read"]).await;
    let reader = keyed_client(key["secret"].as_str().unwrap());
    let path = "/api/v2/gamify/balance/u1";
    // The other node learns of the new key within a second, too.
    let started = Instant::now();
    while reader.get(other.url(path)).send().await.unwrap().status() != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "new key not seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let revoked = one
        .client
        .post(one.url(&format!(
            "/api/v2/gamify/admin/keys/{}/revoke",
            key["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    let revoked: Value = revoked.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let response = reader.get(one.url(path)).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;
    let started = Instant::now();
    while reader.get(other.url(path)).send().await.unwrap().status() != 401 {
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "the other node still accepts a revoked key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn keys_are_shown_once_listed_without_secrets_and_validated() {
    let app = spawn_app().await;
    let created = make_key(&app.client, &app.base, &["ingest", "read"]).await;
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("gmf_") && secret.len() == 68, "{secret}");
    assert_eq!(created["scopes"], json!(["ingest", "read"]));
    let list = app.admin_json("/api/v2/gamify/admin/keys").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("secret").is_none());
    assert!(!list.to_string().contains(secret));
    assert_eq!(list[0]["revoked_at"], Value::Null);
    // The scheme's case does not matter; another scheme is no key.
    for (header, status) in [
        (format!("bearer {secret}"), 200),
        (format!("BEARER {secret}"), 200),
        (format!("Basic {secret}"), 401),
        (secret.to_owned(), 401),
    ] {
        let response = app
            .anonymous
            .get(app.url("/api/v2/gamify/balance/u1"))
            .header("authorization", &header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{header}");
    }

    let bad = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/keys",
            Some(json!({"name": " ", "scopes": ["read", "root"]})),
        )
        .await;
    let err = assert_error(bad, 422, "validation_failed").await;
    assert_eq!(crate::helpers::error_fields(&err), ["name", "scopes[1]"]);
    let none = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/keys",
            Some(json!({"name": "x", "scopes": []})),
        )
        .await;
    assert_error(none, 422, "validation_failed").await;
    let missing = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/keys/key_nope/revoke",
            None,
        )
        .await;
    assert_error(missing, 404, "not_found").await;
    assert_eq!(
        app.admin_json("/api/v2/gamify/admin/keys").await,
        list,
        "refusals made no key"
    );
}

#[tokio::test]
async fn a_key_past_its_rate_limit_gets_429_with_retry_after_and_changes_nothing() {
    let app = spawn_app().await;
    let engine = app.engine.clone().with_rate_limit(RateLimit {
        per_second: 1,
        burst: 2,
    });
    let base = serve(engine).await;
    let busy = keyed_client(
        make_key(&app.client, &app.base, &["ingest", "read"]).await["secret"]
            .as_str()
            .unwrap(),
    );
    let other = keyed_client(
        make_key(&app.client, &app.base, &["read"]).await["secret"]
            .as_str()
            .unwrap(),
    );
    let balance = format!("{base}/api/v2/gamify/balance/u1");
    for _ in 0..2 {
        assert_eq!(busy.get(&balance).send().await.unwrap().status(), 200);
    }
    let limited = busy
        .post(format!("{base}/api/v2/gamify/event"))
        .json(&event("u1", "finance", 2.0))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_error(limited, 429, "rate_limited").await;
    assert_eq!(
        app.balance("u1").await["lifetime_points"],
        0.0,
        "nothing recorded"
    );
    assert_eq!(
        other.get(&balance).send().await.unwrap().status(),
        200,
        "another key has its own budget"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(busy.get(&balance).send().await.unwrap().status(), 200);
}
