//! Tenants: each has its own users, rules, rewards, boards, webhooks and
//! keys. A key of one tenant reaches only its own data on every route; a
//! request that names another tenant in `Gamify-Tenant` is refused (403)
//! and changes nothing. Only the default tenant's admin keys make tenants.

use reqwest::Method;
use serde_json::{Value, json};

use crate::auth::{ROUTES, send};
use crate::common::{get_json, json_of};
use crate::helpers::{
    ADMIN_TOKEN, TestApp, assert_error, board_users, error_message, event, keyed_client, spawn_app,
};

/// Makes tenant `name` through the API; its first key's secret.
async fn make_tenant(app: &TestApp, name: &str) -> String {
    let response = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/tenants",
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(response.status(), 201, "making tenant {name}");
    let made: Value = response.json().await.unwrap();
    assert_eq!(made["name"], name);
    assert_eq!(
        made["admin_key"]["scopes"],
        json!(["ingest", "read", "admin"])
    );
    made["admin_key"]["secret"].as_str().unwrap().to_owned()
}

/// A client that names `tenant` in `Gamify-Tenant` and sends `key`.
fn naming(tenant: &str, key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("gamify-tenant", tenant.parse().unwrap());
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// What the default tenant holds, as the admin API shows it.
async fn default_state(app: &TestApp) -> Vec<Value> {
    let mut state = Vec::new();
    for path in [
        "/api/v2/gamify/balance/u1",
        "/api/v2/gamify/events/u1?limit=100",
        "/api/v2/gamify/ledger/u1",
        "/api/v2/gamify/admin/rewards",
        "/api/v2/gamify/admin/redemptions",
        "/api/v2/gamify/admin/webhooks",
        "/api/v2/gamify/admin/keys",
        "/api/v2/gamify/admin/rules",
        "/api/v2/gamify/leaderboard",
    ] {
        state.push(app.admin_json(path).await);
    }
    state
}

#[tokio::test]
async fn every_route_with_another_tenants_key_reaches_only_that_tenants_data() {
    let app = spawn_app().await;
    // The default tenant's data, with marks that must never show elsewhere.
    let recorded = app.record("u1", "finance", 50.0).await;
    let event_id = recorded["id"].as_str().unwrap().to_owned();
    let reward = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/rewards",
            Some(
                json!({"id": "u1", "name_fi": "Vain oletukselle", "name_en": "Default-only reward",
                        "description": "x", "cost": 10.0, "stock": 5, "per_user_limit": null}),
            ),
        )
        .await;
    assert_eq!(reward.status(), 200);
    let redeemed = app
        .post(
            "/api/v2/gamify/rewards/u1/redeem",
            json!({"user_id": "u1"}),
            Some("r-1"),
        )
        .await;
    assert_eq!(redeemed.status(), 200);
    let hook: Value = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/webhooks",
            Some(json!({"url": "http://127.0.0.1:9/default-only", "events": ["event.recorded"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let key: Value = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/keys",
            Some(json!({"name": "default-only key", "scopes": ["read"]})),
        )
        .await
        .json()
        .await
        .unwrap();
    let marks = [
        event_id.clone(),
        "Default-only reward".to_owned(),
        hook["id"].as_str().unwrap().to_owned(),
        "default-only".to_owned(),
        key["id"].as_str().unwrap().to_owned(),
    ];
    let before = default_state(&app).await;

    let acme = make_tenant(&app, "acme").await;
    let acme_client = keyed_client(&acme);
    // Every route, with the other tenant's key (every scope): whatever it
    // answers, it is about that tenant, never the default one.
    for (method, path, _) in ROUTES {
        let response = send(&acme_client, &app.base, method, path).await;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status != 401 && status != 500,
            "{method} {path} with acme's key: {status} {body}"
        );
        for mark in &marks {
            assert!(
                !body.contains(mark.as_str()),
                "{method} {path} with acme's key showed the default tenant's {mark}: {body}"
            );
        }
    }
    // Naming the default tenant with acme's key, or acme with the default
    // tenant's key: refused on every route.
    for (who, client) in [
        ("acme's key naming default", naming("default", &acme)),
        ("the default key naming acme", naming("acme", ADMIN_TOKEN)),
    ] {
        for (method, path, _) in ROUTES {
            let response = send(&client, &app.base, method, path).await;
            let err = assert_error(response, 403, "forbidden").await;
            assert!(
                error_message(&err).contains("another tenant"),
                "{method} {path} with {who}: {err}"
            );
        }
    }
    // Nothing of the default tenant changed.
    assert_eq!(default_state(&app).await, before);
    assert_eq!(
        app.get_json("/api/v2/gamify/events/u1").await[0]["id"],
        event_id.as_str()
    );

    // Acme's key naming acme reaches acme: its own u1, made by the pass.
    let own = naming("acme", &acme)
        .get(app.url("/api/v2/gamify/admin/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let own: Value = own.json().await.unwrap();
    assert!(own.as_array().unwrap().iter().all(|k| k["id"] != key["id"]));
}

#[tokio::test]
async fn a_tenant_keeps_its_own_rules_boards_and_keys() {
    let app = spawn_app().await;
    let acme = make_tenant(&app, "acme").await;
    let acme_client = keyed_client(&acme);
    let url = |p: &str| app.url(p);

    // Its own rules: a custom category exists in acme only.
    let rules = app.admin_json("/api/v2/gamify/admin/rules").await["toml"]
        .as_str()
        .unwrap()
        .replace("[categories]", "[categories]\ncoding = 3.0");
    let put = acme_client
        .put(url("/api/v2/gamify/admin/rules"))
        .header("content-type", "application/toml")
        .body(rules)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200, "{:?}", put.text().await);
    let in_acme = acme_client
        .post(url("/api/v2/gamify/event"))
        .json(&event("maija", "coding", 2.0))
        .send()
        .await
        .unwrap();
    assert_eq!(in_acme.status(), 200);
    assert_eq!(
        in_acme.headers()["gamify-tenant"],
        "acme",
        "the answer says whose"
    );
    let in_acme: Value = in_acme.json().await.unwrap();
    assert_eq!(in_acme["points"], 6.0);
    assert_eq!(in_acme["rules_version"], 2);
    let in_default = app.post_event(event("maija", "coding", 2.0)).await;
    assert_eq!(in_default.headers()["gamify-tenant"], "default");
    assert_error(in_default, 422, "validation_failed").await;
    assert_eq!(
        app.admin_json("/api/v2/gamify/admin/rules").await["version"],
        1
    );

    // Its own boards.
    app.record("pekka", "finance", 10.0).await;
    let board = get_json(&acme_client, url("/api/v2/gamify/leaderboard")).await;
    let users = board_users(&board);
    assert_eq!(users, ["maija"]);
    let board = app.get_json("/api/v2/gamify/leaderboard").await;
    assert_eq!(board.as_array().unwrap().len(), 1);
    assert_eq!(board[0]["user_id"], "pekka");

    // Its own keys: made and revoked by its admin, refused at once.
    let reader: Value = json_of(
        acme_client
            .post(url("/api/v2/gamify/admin/keys"))
            .json(&json!({"name": "acme reader", "scopes": ["read"]})),
    )
    .await;
    let reader_client = keyed_client(reader["secret"].as_str().unwrap());
    let read = get_json(&reader_client, url("/api/v2/gamify/balance/maija")).await;
    assert_eq!(read["lifetime_points"], 6.0);
    let revoked = acme_client
        .post(url(&format!(
            "/api/v2/gamify/admin/keys/{}/revoke",
            reader["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let read = reader_client
        .get(url("/api/v2/gamify/balance/maija"))
        .send()
        .await
        .unwrap();
    assert_error(read, 401, "unauthorized").await;
    // The default tenant's key list never saw them.
    let keys = app.admin_json("/api/v2/gamify/admin/keys").await;
    assert!(keys.as_array().unwrap().is_empty(), "{keys}");
}

#[tokio::test]
async fn only_the_default_tenants_admin_keys_make_tenants_and_names_are_checked() {
    let app = spawn_app().await;
    let acme = make_tenant(&app, "acme").await;

    for (body, status, code, field) in [
        (json!({"name": "acme"}), 409, "already_exists", None),
        (
            json!({"name": "default"}),
            422,
            "validation_failed",
            Some("name"),
        ),
        (
            json!({"name": "Acme"}),
            422,
            "validation_failed",
            Some("name"),
        ),
        (
            json!({"name": "a-b"}),
            422,
            "validation_failed",
            Some("name"),
        ),
        (
            json!({"name": "x".repeat(25)}),
            422,
            "validation_failed",
            Some("name"),
        ),
        (
            json!({"name": "ok", "extra": 1}),
            422,
            "validation_failed",
            None,
        ),
    ] {
        let response = app
            .admin(
                Method::POST,
                "/api/v2/gamify/admin/tenants",
                Some(body.clone()),
            )
            .await;
        let err = assert_error(response, status, code).await;
        if let Some(field) = field {
            assert_eq!(err["error"]["details"][0]["field"], field, "{body}: {err}");
        }
    }
    // A tenant's admin key may not make or list tenants.
    let acme_client = keyed_client(&acme);
    let response = acme_client
        .post(app.url("/api/v2/gamify/admin/tenants"))
        .json(&json!({"name": "beta"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "forbidden").await;
    let response = acme_client
        .get(app.url("/api/v2/gamify/admin/tenants"))
        .send()
        .await
        .unwrap();
    assert_error(response, 403, "forbidden").await;
    // Naming a tenant, known or not, without one of its keys: 401.
    for named in ["nobody", "acme"] {
        let response = app
            .anonymous
            .get(app.url("/api/v2/gamify/balance/u1"))
            .header("gamify-tenant", named)
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "unauthorized").await;
    }
    // Routes that need no key answer whatever tenant the header names, as
    // a proxy that adds it to every request would have it.
    for path in ["/healthz", "/readyz", "/openapi.json", "/ui/wallet"] {
        for named in ["nobody", "acme", "Acme"] {
            let response = app
                .anonymous
                .get(app.url(path))
                .header("gamify-tenant", named)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path} naming {named}");
        }
    }
    // A name no tenant can have, with a key or without: 422 naming the header.
    for (client, named) in [(&app.anonymous, "Acme"), (&acme_client, "acme corp")] {
        let response = client
            .get(app.url("/api/v2/gamify/balance/u1"))
            .header("gamify-tenant", named)
            .send()
            .await
            .unwrap();
        let err = assert_error(response, 422, "validation_failed").await;
        assert_eq!(
            err["error"]["details"][0]["field"], "Gamify-Tenant",
            "{err}"
        );
    }

    let listed = app.admin_json("/api/v2/gamify/admin/tenants").await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "acme"]);
    assert!(listed[1]["created_at"].as_str().is_some());
}
