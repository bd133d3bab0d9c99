//! Webhooks with the real `gamify` binary: deliveries waiting in the outbox
//! survive `kill -9` and are sent after the restart, two nodes on one
//! PostgreSQL database share the outbox without sending a delivery twice,
//! and `gamify serve` prunes the delivery log as configured.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use gamify_store::postgres::scratch::{ScratchSchema, test_database};
use serde_json::{Value, json};

mod common;
use common::{keyed_client, start_gamify, start_gamify_logged};

const ADMIN_TOKEN: &str = "webhook-test-admin-token-01";

/// A receiver counting deliveries by id, answering `status`.
#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<HashMap<String, u32>>>,
    status: Arc<AtomicU16>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap) -> StatusCode {
    let status = r.status.load(Ordering::SeqCst);
    if status == 204 {
        let id = headers
            .get("gamify-delivery")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        *r.got.lock().unwrap().entry(id).or_default() += 1;
    }
    StatusCode::from_u16(status).unwrap()
}

async fn start_receiver(status: u16) -> (Receiver, String) {
    let r = Receiver {
        got: Arc::default(),
        status: Arc::new(AtomicU16::new(status)),
    };
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

fn client() -> reqwest::Client {
    keyed_client(ADMIN_TOKEN, Duration::from_secs(10))
}

async fn subscribe(client: &reqwest::Client, base: &str, url: &str) {
    let response = client
        .post(format!("{base}/api/v2/gamify/admin/webhooks"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"url": url, "events": ["achievement.unlocked"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// Records a first event for each of `users` (each unlocks `first_step`:
/// one delivery per user), spread over `bases`.
async fn record(client: &reqwest::Client, bases: &[String], users: &[String]) {
    for (i, user) in users.iter().enumerate() {
        let response = client
            .post(format!("{}/api/v2/gamify/event", bases[i % bases.len()]))
            .json(&json!({"user_id": user, "category": "learning", "action": "lesson", "value": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

async fn admin_get(client: &reqwest::Client, base: &str, path: &str) -> Value {
    let response = client
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

/// Waits until `n` distinct deliveries arrived; returns them.
async fn wait_for(r: &Receiver, n: usize) -> HashMap<String, u32> {
    for _ in 0..400 {
        let got = r.got.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} deliveries, got {}",
        r.got.lock().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_kill_9_and_are_sent_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, url) = start_receiver(503).await;
    let env = [
        ("GAMIFY_DATA_DIR", dir.path().display().to_string()),
        ("GAMIFY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        ("GAMIFY_WEBHOOK_RETRY_BASE_MS", "200".to_owned()),
        ("GAMIFY_WEBHOOK_RETRY_MAX_MS", "400".to_owned()),
        ("GAMIFY_WEBHOOK_MAX_ATTEMPTS", "100".to_owned()),
    ];
    let (mut server, base, _) = start_gamify(&["serve"], &env, "warn,gamify=info");
    let client = client();
    subscribe(&client, &base, &url).await;
    let users: Vec<String> = (0..40).map(|i| format!("learner_{i}")).collect();
    record(&client, &[base], &users).await;
    // The receiver refuses for a while: every delivery is pending.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(receiver.got.lock().unwrap().is_empty());

    receiver.status.store(204, Ordering::SeqCst);
    let (mut server, base, _) = start_gamify(&["serve"], &env, "warn,gamify=info");
    let got = wait_for(&receiver, users.len()).await;
    assert_eq!(
        got.len(),
        users.len(),
        "one delivery per acknowledged event"
    );
    // The log says so once the last attempts are recorded.
    let webhooks: Value = admin_get(&client, &base, "/api/v2/gamify/admin/webhooks").await;
    let path = format!(
        "/api/v2/gamify/admin/webhooks/{}/deliveries?limit=100",
        webhooks[0]["id"].as_str().unwrap()
    );
    let mut log = Value::Null;
    for _ in 0..100 {
        log = admin_get(&client, &base, &path).await;
        if log
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), users.len());
    assert!(
        log.iter().all(|d| d["status"] == "delivered"),
        "every delivery written before the crash was delivered after it: {log:?}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prunes_deliveries_older_than_keep_days_and_keeps_all_with_zero() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, url) = start_receiver(204).await;
    let env = |keep: &str| {
        [
            ("GAMIFY_DATA_DIR", dir.path().display().to_string()),
            ("GAMIFY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
            ("GAMIFY_WEBHOOK_KEEP_DAYS", keep.to_owned()),
        ]
    };
    let (mut server, base, _) = start_gamify(&["serve"], &env("30"), "warn,gamify=info");
    let client = client();
    subscribe(&client, &base, &url).await;
    let users: Vec<String> = ["old_a", "old_b", "recent"].map(String::from).to_vec();
    record(&client, &[base], &users).await;
    wait_for(&receiver, users.len()).await;
    // Once the attempts are recorded (the log says delivered), stop.
    let count = || -> i64 {
        let log = rusqlite::Connection::open(dir.path().join("gamify.db")).unwrap();
        log.query_row(
            "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    for _ in 0..100 {
        if count() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(count(), 3);
    // Two of them were made and sent 40 days ago.
    let log = rusqlite::Connection::open(dir.path().join("gamify.db")).unwrap();
    log.execute(
        "UPDATE webhook_deliveries SET created_at = created_at - 40 * 86400000,
             last_attempt_at = last_attempt_at - 40 * 86400000
         WHERE user_id IN ('old_a', 'old_b')",
        [],
    )
    .unwrap();
    drop(log);

    // Kept for ever: nothing goes.
    let (mut server, _, _) = start_gamify(&["serve"], &env("0"), "warn,gamify=info");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(count(), 3, "keep_days = 0 keeps everything");
    server.kill().unwrap();
    server.wait().unwrap();

    // Thirty days: the sweep at start deletes the two, and says so.
    let (mut server, base, _, logs) =
        start_gamify_logged(&["serve"], &env("30"), "warn,gamify=info");
    let mut pruned = None;
    for _ in 0..100 {
        pruned = logs
            .lock()
            .unwrap()
            .iter()
            .find(|l| l["message"] == "webhook delivery log pruned")
            .map(|l| l["pruned"].clone());
        if pruned.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pruned, Some(json!(2)), "the sweep's log line");
    let webhooks = admin_get(&client, &base, "/api/v2/gamify/admin/webhooks").await;
    let path = format!(
        "/api/v2/gamify/admin/webhooks/{}/deliveries",
        webhooks[0]["id"].as_str().unwrap()
    );
    let left = admin_get(&client, &base, &path).await;
    let left: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["recent"]);
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("gamify_webhook_deliveries_pruned_total 2"));
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_nodes_share_the_outbox_and_send_each_delivery_once() {
    let Some(url) = test_database("two_postgres_nodes_share_the_outbox").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let env = [
        ("DATABASE_URL", url.clone()),
        ("GAMIFY_PG_SCHEMA", schema.name().to_owned()),
        ("GAMIFY_PG_POOL_SIZE", "8".to_owned()),
        ("GAMIFY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
    ];
    let (mut a, base_a, _) = start_gamify(&["serve", "--migrate"], &env, "warn,gamify=info");
    let (mut b, base_b, _) = start_gamify(&["serve"], &env, "warn,gamify=info");
    let (receiver, hook) = start_receiver(204).await;
    let client = client();
    subscribe(&client, &base_a, &hook).await;
    // Node b picks the subscription up within a second.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let users: Vec<String> = (0..200).map(|i| format!("shared_{i}")).collect();
    record(&client, &[base_a, base_b], &users).await;
    let got = wait_for(&receiver, users.len()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_now = receiver.got.lock().unwrap().clone();
    assert_eq!(got_now.len(), users.len());
    let twice: Vec<_> = got_now.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(got.len(), users.len());
    for node in [&mut a, &mut b] {
        node.kill().unwrap();
        node.wait().unwrap();
    }
}
