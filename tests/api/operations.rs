use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get_json("/healthz").await["status"], "ok");
    assert_eq!(app.get_json("/readyz").await["status"], "ready");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("x-request-id").unwrap(), "trace-me");
    let response = app.get("/healthz").await;
    assert!(response.headers().get("x-request-id").is_some());
}

/// The committed `docs/openapi.json` must equal what the code generates.
/// Regenerate with `cargo run -- openapi > docs/openapi.json`.
#[tokio::test]
async fn the_served_openapi_document_matches_the_committed_copy() {
    let app = spawn_app().await;
    let served = app.get("/openapi.json").await.text().await.unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json"))
            .unwrap_or_default();
    assert!(
        served == committed,
        "docs/openapi.json is stale: run `cargo run -- openapi > docs/openapi.json` and commit it"
    );
    let spec: Value = serde_json::from_str(&served).unwrap();
    for path in [
        "/api/v2/gamify/event",
        "/api/v2/gamify/balance/{user_id}",
        "/api/v2/gamify/stats/{user_id}",
        "/api/v2/gamify/events/{user_id}",
        "/api/v2/gamify/leaderboard",
        "/api/v2/gamify/achievements",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn the_docs_page_is_served() {
    let app = spawn_app().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("/openapi.json"));
}

/// Whether the contract lists `status` among `method path`'s responses.
fn documented(spec: &Value, method: &str, path: &str, status: u16) -> bool {
    spec["paths"][path][method.to_lowercase()]["responses"]
        .get(status.to_string())
        .is_some()
}

/// Every status a route answers with when a request goes wrong in the
/// usual ways (no key, a body that is not JSON, malformed or too large, a
/// path parameter that is not an id, a well-formed request) is among the
/// route's documented responses, so a client generated from the contract
/// knows every answer it can get.
#[tokio::test]
async fn every_status_a_route_answers_with_is_in_its_contract() {
    let app = spawn_app().await;
    let spec: Value = serde_json::from_str(&gamify::http::openapi::spec_json()).unwrap();
    let too_large = format!("{{\"pad\": \"{}\"}}", "x".repeat(70 * 1024));
    let mut seen = std::collections::BTreeSet::new();
    for (method, path, _) in crate::auth::ROUTES {
        let mut answers = Vec::new();
        let concrete = crate::auth::concrete(path);
        let response = crate::auth::send(&app.anonymous, &app.base, method, path).await;
        answers.push(("no key", response.status().as_u16()));
        let response = crate::auth::send(&app.client, &app.base, method, path).await;
        answers.push(("a well-formed request", response.status().as_u16()));
        if path.contains('{') {
            let bad = path
                .split('/')
                .map(|s| if s.starts_with('{') { "%FF" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let response = app
                .client
                .request(method.parse().unwrap(), app.url(&bad))
                .send()
                .await
                .unwrap();
            answers.push((
                "a path parameter that is not UTF-8",
                response.status().as_u16(),
            ));
        }
        if *method == "POST" || *method == "PUT" {
            for (what, content_type, body) in [
                ("malformed JSON", "application/json", "{\"user_id\":"),
                ("a body sent as text", "text/plain", "{}"),
                (
                    "a body over the limit",
                    "application/json",
                    too_large.as_str(),
                ),
            ] {
                let response = app
                    .client
                    .request(method.parse().unwrap(), app.url(&concrete))
                    .header("content-type", content_type)
                    .body(body.to_owned())
                    .send()
                    .await
                    .unwrap();
                answers.push((what, response.status().as_u16()));
            }
        }
        for (what, status) in answers {
            assert!(
                documented(&spec, method, path, status),
                "{method} {path} answers {what} with {status}, which its contract does not list"
            );
            seen.insert(status);
        }
    }
    // The pass met the shared refusals, not only successes.
    for status in [400, 401, 413, 415, 422] {
        assert!(
            seen.contains(&status),
            "no route answered {status}: {seen:?}"
        );
    }
}
