use serde_json::{Value, json};

use crate::auth::ROUTES;
use crate::helpers::{assert_error, error_fields, error_message, event, spawn_app};

/// Invalid event bodies: each must be refused with 422, name its field, and
/// record nothing.
#[tokio::test]
async fn invalid_events_are_refused_with_the_field_named_and_nothing_recorded() {
    let app = spawn_app().await;
    let valid = event("u1", "finance", 1.0);
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with("category", json!("gaming")),
            "category",
            "an unknown category names the known ones",
        ),
        (with("value", json!(0)), "value", "zero value"),
        (with("value", json!(-3.5)), "value", "negative value"),
        (
            with("value", json!(1000.5)),
            "value",
            "value above the maximum",
        ),
        (
            with("value", json!(0.0001)),
            "value",
            "value below a thousandth",
        ),
        (with("value", json!("2.0")), "value", "value as a string"),
        (with("value", json!(null)), "value", "value null"),
        (without("value"), "value", "value missing"),
        (without("user_id"), "user_id", "user_id missing"),
        (with("user_id", json!("")), "user_id", "empty user_id"),
        (
            with("user_id", json!("has space")),
            "user_id",
            "user_id with a space",
        ),
        (
            with("user_id", json!("x".repeat(129))),
            "user_id",
            "user_id too long",
        ),
        (with("user_id", json!(42)), "user_id", "user_id as a number"),
        (with("action", json!("")), "action", "empty action"),
        (
            with("action", json!("a".repeat(101))),
            "action",
            "action too long",
        ),
        (
            with("metadata", json!([1, 2])),
            "metadata",
            "metadata not an object",
        ),
        (
            with("metadata", json!({"blob": "x".repeat(5000)})),
            "metadata",
            "metadata too large",
        ),
        (
            with("occurred_at", json!("yesterday")),
            "occurred_at",
            "occurred_at not RFC 3339",
        ),
        (
            with("catgory", json!("finance")),
            "catgory",
            "an unknown field",
        ),
    ];
    for (body, field, why) in cases {
        let response = app.post_event(body).await;
        let err = assert_error(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&err), [field], "{why}: {err}");
        assert!(
            error_message(&err).contains(field),
            "{why}: the message names the field: {err}"
        );
    }
    let category = app.post_event(with("category", json!("gaming"))).await;
    let err = assert_error(category, 422, "validation_failed").await;
    assert!(error_message(&err).contains("finance, learning, health, productivity, social"));

    assert_eq!(
        app.get_json("/api/v2/gamify/leaderboard").await,
        json!([]),
        "nothing was recorded"
    );
}

#[tokio::test]
async fn several_bad_fields_are_reported_together() {
    let app = spawn_app().await;
    let response = app
        .post_event(json!({"user_id": "", "category": "x", "action": "a", "value": -1}))
        .await;
    let err = assert_error(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["user_id", "category", "value"]);
}

#[tokio::test]
async fn a_field_given_twice_is_named() {
    let app = spawn_app().await;
    let body =
        r#"{"user_id": "u1", "user_id": "u2", "category": "finance", "action": "a", "value": 1}"#;
    let response = app.send_text("POST", "/api/v2/gamify/event", body).await;
    let err = assert_error(response, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["user_id"], "{err}");
    assert_eq!(app.get_json("/api/v2/gamify/leaderboard").await, json!([]));
}

#[tokio::test]
async fn a_number_too_large_to_hold_is_named_like_any_other_bad_value() {
    let app = spawn_app().await;
    for (body, field) in [
        (
            r#"{"user_id": "u1", "category": "finance", "action": "a", "value": 1e400}"#,
            "value",
        ),
        (
            r#"{"user_id": "u1", "category": "finance", "action": "a", "value": 1, "metadata": {"n": -1e999}}"#,
            "metadata.n",
        ),
    ] {
        let response = app.send_text("POST", "/api/v2/gamify/event", body).await;
        let err = assert_error(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&err), [field], "{err}");
    }
    assert_eq!(app.get_json("/api/v2/gamify/leaderboard").await, json!([]));
}

#[tokio::test]
async fn a_body_that_is_json_but_no_object_is_named_and_records_nothing() {
    let app = spawn_app().await;
    // An array of the fields in order would fill the request by position.
    for body in [r#"["u1", "finance", "a", 1.0]"#, "[1, 2]", "\"x\"", "7"] {
        let response = app.send_text("POST", "/api/v2/gamify/event", body).await;
        let err = assert_error(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&err), ["body"], "{body}: {err}");
        assert_eq!(error_message(&err), "the body must be a JSON object");
    }
    assert_eq!(app.get_json("/api/v2/gamify/leaderboard").await, json!([]));
    // A wrong type is told in JSON's terms, not Rust's ("expected f64").
    let body = r#"{"user_id": "u1", "category": "finance", "action": "a", "value": "1"}"#;
    let response = app.send_text("POST", "/api/v2/gamify/event", body).await;
    let err = assert_error(response, 422, "validation_failed").await;
    assert!(
        error_message(&err).starts_with("value: invalid type: string \"1\", expected a number"),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_json_gets_400_in_the_same_shape() {
    let app = spawn_app().await;
    for body in ["{\"user_id\": ", "not json", "{} trailing", ""] {
        let response = app.send_text("POST", "/api/v2/gamify/event", body).await;
        assert_error(response, 400, "malformed_json").await;
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_or_too_large_is_refused() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v2/gamify/event"))
        .body("user_id=u1")
        .send()
        .await
        .unwrap();
    assert_error(response, 415, "unsupported_media_type").await;
    let huge = json!({"user_id": "u1", "category": "finance", "action": "x", "value": 1, "metadata": {"x": "y".repeat(70_000)}});
    let response = app.post_event(huge).await;
    assert_error(response, 413, "payload_too_large").await;
    // A compressed body is named as such, not called malformed JSON.
    let response = app
        .client
        .post(app.url("/api/v2/gamify/event"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00])
        .send()
        .await
        .unwrap();
    let err = assert_error(response, 415, "unsupported_media_type").await;
    assert!(error_message(&err).contains("Content-Encoding"), "{err}");
    assert_eq!(app.get_json("/api/v2/gamify/events/u1").await, json!([]));
}

#[tokio::test]
async fn a_bad_idempotency_key_is_refused() {
    let app = spawn_app().await;
    let response = app
        .post_event_with_key(event("u1", "finance", 1.0), &"k".repeat(256))
        .await;
    let err = assert_error(response, 422, "validation_failed").await;
    assert_eq!(err["error"]["details"][0]["field"], "Idempotency-Key");
    assert_eq!(app.balance("u1").await["total_points"], 0.0);
}

#[tokio::test]
async fn bad_query_strings_and_path_ids_name_the_field() {
    let app = spawn_app().await;
    for (path, field) in [
        ("/api/v2/gamify/leaderboard?limit=abc", "limit"),
        ("/api/v2/gamify/leaderboard?limit=0", "limit"),
        ("/api/v2/gamify/leaderboard?limit=101", "limit"),
        ("/api/v2/gamify/leaderboard?limit=-1", "limit"),
        ("/api/v2/gamify/leaderboard?limt=5", "limt"),
        ("/api/v2/gamify/events/u1?limit=1000", "limit"),
        ("/api/v2/gamify/events/u1?before=evt_nope", "before"),
        ("/api/v2/gamify/balance/has%20space", "user_id"),
        ("/api/v2/gamify/stats/has%20space", "user_id"),
        ("/api/v2/gamify/leaderboard/u1?k=1&k=2", "k"),
    ] {
        let err = assert_error(app.get(path).await, 422, "validation_failed").await;
        assert_eq!(err["error"]["details"][0]["field"], field, "{path}: {err}");
    }
    // A number that cannot be read is said so in plain words, not in the
    // parser's ("invalid digit found in string").
    for (query, says) in [
        (
            "limit=abc",
            "limit (query string): expected a whole number, such as 10",
        ),
        (
            "limit=",
            "limit (query string): expected a whole number, got nothing",
        ),
        (
            "limit=99999999999",
            "limit (query string): expected a whole number, and this one is too large",
        ),
    ] {
        let path = format!("/api/v2/gamify/leaderboard?{query}");
        let err = assert_error(app.get(&path).await, 422, "validation_failed").await;
        assert_eq!(error_message(&err), says, "{path}");
    }
}

#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_is_named_in_the_error_shape() {
    let app = spawn_app().await;
    app.post_event(event("u1", "finance", 1.0)).await;
    // Every documented route with a parameter, the parameter as `%FF`: a
    // byte that is not UTF-8 once decoded (axum's own answer to it was a
    // plain-text 400).
    let mut tried = 0;
    for (method, template, _) in ROUTES {
        let Some(field) = template
            .split('/')
            .find_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        else {
            continue;
        };
        let path = template.replace(&format!("{{{field}}}"), "%FF");
        let response = app.send_text(method, &path, "{}").await;
        let err = assert_error(response, 422, "validation_failed").await;
        assert_eq!(
            err["error"]["details"][0]["field"], field,
            "{method} {path}: {err}"
        );
        tried += 1;
    }
    assert!(tried >= 18, "{tried} routes with a parameter");
    // Nothing changed: u1 is still there, with their points.
    assert_eq!(app.balance("u1").await["total_points"], 2.0);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = spawn_app().await;
    assert_error(app.get("/api/v2/gamify/nope").await, 404, "not_found").await;
    assert_error(app.get("/").await, 404, "not_found").await;
    let response = app
        .client
        .get(app.url("/api/v2/gamify/event"))
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "method_not_allowed").await;
    let response = app
        .client
        .delete(app.url("/api/v2/gamify/balance/u1"))
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "method_not_allowed").await;
}

/// PostgreSQL cannot keep a NUL character in text; SQLite can. A control
/// character in any free-text field is refused with 422 naming the field,
/// on every backend alike, instead of failing in storage; JSON metadata
/// keeps it (escaped) everywhere.
#[tokio::test]
async fn control_characters_in_text_fields_are_refused_alike_on_every_backend() {
    let app = spawn_app().await;
    app.record("u1", "finance", 10.0).await;
    let nul = "a\u{0}b";
    let cases = [
        (
            "/api/v2/gamify/event",
            json!({"user_id": "u1", "category": "finance", "action": nul, "value": 1.0}),
            "action",
        ),
        (
            "/api/v2/gamify/spend",
            json!({"user_id": "u1", "points": 1.0, "reason": nul}),
            "reason",
        ),
        (
            "/api/v2/gamify/admin/adjustments",
            json!({"user_id": "u1", "points": 1.0, "reason": nul}),
            "reason",
        ),
        (
            "/api/v2/gamify/admin/rewards",
            json!({"id": "r1", "name_fi": nul, "name_en": "b", "cost": 1.0}),
            "name_fi",
        ),
        (
            "/api/v2/gamify/admin/rewards",
            json!({"id": "r1", "name_fi": "a", "name_en": "b", "description": nul, "cost": 1.0}),
            "description",
        ),
        (
            "/api/v2/gamify/admin/webhooks",
            json!({"url": "http://127.0.0.1:9/a\u{0}b", "events": ["level.up"]}),
            "url",
        ),
        (
            "/api/v2/gamify/admin/webhooks",
            json!({"url": "http://127.0.0.1:9/", "events": ["level.up"], "description": nul}),
            "description",
        ),
        (
            "/api/v2/gamify/admin/keys",
            json!({"name": nul, "scopes": ["read"]}),
            "name",
        ),
    ];
    let keys_before = app.admin_json("/api/v2/gamify/admin/keys").await;
    for (path, body, field) in cases {
        let response = app.admin(reqwest::Method::POST, path, Some(body)).await;
        let err = assert_error(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&err), [field], "{path}");
    }
    app.assert_no_rewards_webhooks_or_new_keys(&keys_before)
        .await;
    let balance = app.balance("u1").await;
    assert_eq!(balance["total_points"], 20.0, "{balance}");

    let mut with_metadata = event("u1", "finance", 1.0);
    with_metadata["metadata"] = json!({"note\u{0}": nul});
    let response = app.post_event(with_metadata).await;
    assert_eq!(response.status(), 200);
    let events = app.get_json("/api/v2/gamify/events/u1?limit=1").await;
    assert_eq!(events[0]["metadata"], json!({"note\u{0}": nul}));
}

/// A control character percent-escaped into a path parameter or a query
/// value (`%00`) names that parameter in a 422 on every route and backend
/// (PostgreSQL cannot compare text holding a NUL, and failed with 500).
#[tokio::test]
async fn a_control_character_in_a_path_or_query_parameter_is_named() {
    let app = spawn_app().await;
    let mut checked = 0;
    for (method, template, _) in ROUTES {
        let params: Vec<&str> = template.split('/').filter(|s| s.starts_with('{')).collect();
        for param in params {
            let path = template
                .split('/')
                .map(|s| match s {
                    s if s == param => "a%00b",
                    s if s.starts_with('{') => "u1",
                    s => s,
                })
                .collect::<Vec<_>>()
                .join("/");
            let response = app
                .client
                .request(method.parse().unwrap(), app.url(&path))
                .json(&event("u1", "finance", 1.0))
                .send()
                .await
                .unwrap();
            let err = assert_error(response, 422, "validation_failed").await;
            let name = param.trim_matches(|c| c == '{' || c == '}');
            assert_eq!(error_fields(&err), [name], "{method} {path}");
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} path parameters");
    for path in [
        "/api/v2/gamify/events/u1?before=evt_%00",
        "/api/v2/gamify/ledger/u1?before=%01",
        "/api/v2/gamify/leaderboard?after=%7F",
        "/api/v2/gamify/rewards?user_id=u%0A1",
        "/api/v2/gamify/admin/redemptions?before=red_%00",
    ] {
        let response = app.get(path).await;
        let err = assert_error(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&err).len(), 1, "{path}: {err}");
        assert!(
            error_message(&err).contains("control characters"),
            "{path}: {err}"
        );
    }
}
