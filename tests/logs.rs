//! Structured logs with the real binary: at debug level, what the store's
//! writer does for a request is logged in that request's span (its
//! `X-Request-Id` and route), on the writer thread (SQLite) and the writer
//! task (PostgreSQL) alike.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gamify_store::postgres::scratch::{ScratchSchema, test_database};
use serde_json::{Value, json};

mod common;
use common::{json_of, start_gamify_logged};

const LOG: &str = "info,gamify=debug,gamify_store=debug";

/// Posts an event with `request_id` and returns the store's log line for
/// it, whose message starts with `store_message`.
async fn store_line(
    base: &str,
    logs: &Arc<Mutex<Vec<Value>>>,
    request_id: &str,
    store_message: &str,
) -> Value {
    keyed_store_line(base, logs, request_id, store_message, None).await
}

/// The same, for a request made with `key` (a bearer secret).
async fn keyed_store_line(
    base: &str,
    logs: &Arc<Mutex<Vec<Value>>>,
    request_id: &str,
    store_message: &str,
    key: Option<&str>,
) -> Value {
    let mut request = reqwest::Client::new().post(format!("{base}/api/v2/gamify/event"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request
        .header("x-request-id", request_id)
        .json(&json!({"user_id": "traced", "category": "health", "action": "run", "value": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], request_id);
    for _ in 0..100 {
        let found = logs
            .lock()
            .unwrap()
            .iter()
            .find(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(store_message))
                    && l["spans"][0]["request_id"] == request_id
            })
            .cloned();
        if let Some(line) = found {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no {store_message:?} line in the span of {request_id}: {:?}",
        logs.lock().unwrap()
    );
}

#[tokio::test]
async fn the_store_logs_a_write_in_the_span_of_its_request() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("GAMIFY_DATA_DIR", dir.path().display().to_string())];
    let (mut server, base, _, logs) = start_gamify_logged(&["serve"], &env, LOG);
    let line = store_line(&base, &logs, "trace-sqlite-1", "sqlite: write planned").await;
    assert_eq!(line["outcome"], "written");
    assert_eq!(line["spans"][0]["route"], "/api/v2/gamify/event");
    assert_eq!(line["spans"][0]["method"], "POST");
    server.kill().unwrap();
    server.wait().unwrap();

    let Some(url) = test_database("the_store_logs_a_write_in_the_span_of_its_request").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let env = [
        ("DATABASE_URL", url.clone()),
        ("GAMIFY_PG_SCHEMA", schema.name().to_owned()),
        ("GAMIFY_PG_POOL_SIZE", "4".to_owned()),
    ];
    let (mut server, base, _, logs) = start_gamify_logged(&["serve", "--migrate"], &env, LOG);
    let line = store_line(&base, &logs, "trace-pg-1", "postgres: write answered").await;
    assert_eq!(line["outcome"], "written");
    assert_eq!(line["spans"][0]["route"], "/api/v2/gamify/event");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
async fn a_requests_lines_name_the_key_that_made_it() {
    let dir = tempfile::tempdir().unwrap();
    let admin = "logs-test-admin-key-0123456789";
    let env = [
        ("GAMIFY_DATA_DIR", dir.path().display().to_string()),
        ("GAMIFY_API_KEY", admin.to_owned()),
    ];
    let (mut server, base, _, logs) = start_gamify_logged(&["serve"], &env, LOG);
    let made: Value = json_of(
        reqwest::Client::new()
            .post(format!("{base}/api/v2/gamify/admin/keys"))
            .bearer_auth(admin)
            .json(&json!({"name": "billing", "scopes": ["ingest"]})),
    )
    .await;
    let secret = made["secret"].as_str().unwrap();
    let line = keyed_store_line(
        &base,
        &logs,
        "trace-key-1",
        "sqlite: write planned",
        Some(secret),
    )
    .await;
    assert_eq!(line["spans"][0]["key"], made["id"]);
    assert!(
        !logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.to_string().contains(secret)),
        "never the secret"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
