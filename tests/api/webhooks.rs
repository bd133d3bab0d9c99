//! Webhooks end to end: an admin subscribes a receiver (a real HTTP server
//! in the test), the worker posts signed deliveries, a failing receiver is
//! retried with backoff (by the test's clock), a delivery out of attempts is
//! failed until replayed, and the admin API validates and pages.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use gamify::webhooks::{Forward, WebhookSettings, signature};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{DAY, TestApp, assert_error, error_fields, spawn_app};

/// What a receiver got: the headers that matter and the body.
#[derive(Debug, Clone)]
struct Received {
    authorization: String,
    delivery: String,
    event: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A receiver answering each request with the next status of `script`
/// (then 204), recording what it got.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start(script: &[u16]) -> (Receiver, String) {
        let receiver = Receiver {
            got: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().rev().copied().collect())),
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} deliveries, got {:?}", self.got());
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    r.got.lock().unwrap().push(Received {
        authorization: header("authorization"),
        delivery: header("gamify-delivery"),
        event: header("gamify-event"),
        timestamp: header("gamify-timestamp"),
        signature: header("gamify-signature"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    let status = r.script.lock().unwrap().pop().unwrap_or(204);
    StatusCode::from_u16(status).unwrap()
}

fn settings(max_attempts: u32) -> WebhookSettings {
    WebhookSettings {
        forward: None,
        max_attempts,
        retry_base: Duration::from_secs(60),
        retry_max: Duration::from_secs(600),
        timeout: Duration::from_secs(5),
        at_risk_hour: 18,
        keep_deliveries: None,
    }
}

async fn subscribe(app: &TestApp, url: &str, events: &[&str]) -> Value {
    let response = app
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/webhooks",
            Some(json!({"url": url, "events": events, "description": "test"})),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// Deletes a subscription (admin).
async fn unsubscribe(app: &TestApp, webhook: &str) -> reqwest::Response {
    let path = format!("/api/v2/gamify/admin/webhooks/{webhook}");
    app.admin(Method::DELETE, &path, None).await
}

async fn log(app: &TestApp, webhook: &str) -> Vec<Value> {
    let path = format!("/api/v2/gamify/admin/webhooks/{webhook}/deliveries?limit=100");
    serde_json::from_value(app.admin_json(&path).await).unwrap()
}

/// Waits until the delivery log's newest entry has `status`.
async fn wait_status(app: &TestApp, webhook: &str, status: &str) -> Vec<Value> {
    wait_attempted(app, webhook, status, 0).await
}

/// The log once its newest delivery has `status` after at least `attempts`
/// recorded attempts (a delivery is pending before its first attempt too).
async fn wait_attempted(app: &TestApp, webhook: &str, status: &str, attempts: u64) -> Vec<Value> {
    for _ in 0..200 {
        let log = log(app, webhook).await;
        if log.first().is_some_and(|d| {
            d["status"] == status && d["attempts"].as_u64().is_some_and(|n| n >= attempts)
        }) {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "no {status} delivery after {attempts} attempts: {:?}",
        log(app, webhook).await
    );
}

#[tokio::test]
async fn deliveries_are_signed_and_say_what_happened() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start(&[]).await;
    let created = subscribe(&app, &url, &["achievement.unlocked", "level.up"]).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64);
    assert_eq!(
        created["events"],
        json!(["achievement.unlocked", "level.up"])
    );
    let id = created["id"].as_str().unwrap().to_owned();
    // The list never shows the secret again.
    let list = app.admin_json("/api/v2/gamify/admin/webhooks").await;
    assert_eq!(list[0]["id"], id.as_str());
    assert!(list[0].get("secret").is_none());

    tokio::spawn(app.engine.clone().run_webhook_deliveries(settings(10)));
    // 2 × 60 = 120 points: first_step, points_100, level 2.
    app.record("maija", "finance", 60.0).await;
    // Sent up to 16 at a time: in any order.
    let mut got = receiver.wait_for(3).await;
    got.sort_by_key(|r| (r.event.clone(), r.body.contains("points_100")));
    let types: Vec<&str> = got.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        types,
        ["achievement.unlocked", "achievement.unlocked", "level.up"]
    );
    for r in &got {
        let ts: i64 = r.timestamp.parse().unwrap();
        assert_eq!(
            r.signature,
            format!("v1={}", signature(&secret, ts, &r.body)),
            "signed with the subscription's secret over timestamp.body"
        );
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["id"], r.delivery.as_str());
        assert_eq!(body["type"], r.event.as_str());
        assert_eq!(body["data"]["user_id"], "maija");
        assert_eq!(body["created_at"], "2025-10-12T10:30:00.000Z");
    }
    let first: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(first["data"]["achievement"]["id"], "first_step");
    assert_eq!(first["data"]["achievement"]["name_fi"], "Ensimmäinen askel");
    let level: Value = serde_json::from_str(&got[2].body).unwrap();
    assert_eq!(level["data"]["level"], 2);
    assert_eq!(level["data"]["lifetime_points"], 120.0);

    // The log shows them delivered, with the receiver's status.
    let log = wait_status(&app, &id, "delivered").await;
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1 && d["last_status"] == 204)
    );

    // A topic not subscribed to (points.spent) is not sent.
    let spent = app
        .spend(json!({"user_id": "maija", "points": 5, "reason": "coffee"}))
        .await;
    assert_eq!(spent.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 3);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("gamify_webhook_attempts_total{outcome=\"delivered\"} 3"));
    assert!(metrics.contains("gamify_webhook_outbox_pending 0"));
}

#[tokio::test]
async fn a_failing_receiver_is_retried_then_failed_then_replayed() {
    let app = spawn_app().await;
    // Two failures, then the receiver recovers.
    let (receiver, url) = Receiver::start(&[500, 503]).await;
    let id = subscribe(&app, &url, &["achievement.unlocked"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::spawn(app.engine.clone().run_webhook_deliveries(settings(2)));
    app.record("pekka", "health", 1.0).await;

    // First attempt: 500; due again 60 s later (by the engine's clock).
    receiver.wait_for(1).await;
    // The receiver has answered; the attempt is recorded just after.
    let log = wait_attempted(&app, &id, "pending", 1).await;
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["last_status"], 500);
    assert_eq!(log[0]["next_attempt_at"], "2025-10-12T10:31:00.000Z");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.got().len(), 1, "not retried before it is due");

    // Second and last attempt: 503, and the delivery is failed.
    app.clock.advance(60_000);
    receiver.wait_for(2).await;
    let log = wait_status(&app, &id, "failed").await;
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(
        log[0]["last_error"],
        "the receiver answered 503 Service Unavailable"
    );
    app.clock.advance(DAY);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.got().len(),
        2,
        "a failed delivery waits for an admin"
    );

    // Filtering the log by status.
    let failed: Vec<Value> = app
        .admin(
            Method::GET,
            &format!("/api/v2/gamify/admin/webhooks/{id}/deliveries?status=failed"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);

    // The admin replays it: sent at once, with the same delivery id.
    let delivery = log[0]["id"].as_str().unwrap();
    let replayed = app
        .admin(
            Method::POST,
            &format!("/api/v2/gamify/admin/webhooks/deliveries/{delivery}/replay"),
            None,
        )
        .await;
    assert_eq!(replayed.status(), 202);
    let got = receiver.wait_for(3).await;
    assert!(got.iter().all(|r| r.delivery == delivery));
    let log = wait_status(&app, &id, "delivered").await;
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(log[0]["last_status"], 204);
}

#[tokio::test]
async fn deleting_a_subscription_stops_its_deliveries() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start(&[]).await;
    let id = subscribe(&app, &url, &["achievement.unlocked"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Recorded before the worker runs: pending until it does.
    app.record("liisa", "social", 1.0).await;
    assert_eq!(unsubscribe(&app, &id).await.status(), 204);
    tokio::spawn(app.engine.clone().run_webhook_deliveries(settings(3)));
    app.record("liisa", "social", 1.0).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(receiver.got().is_empty());
    let log = log(&app, &id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "cancelled");
    assert_error(unsubscribe(&app, &id).await, 404, "not_found").await;
    let unknown = app
        .admin(
            Method::GET,
            "/api/v2/gamify/admin/webhooks/whk_nope/deliveries",
            None,
        )
        .await;
    assert_error(unknown, 404, "not_found").await;
}

#[tokio::test]
async fn finished_deliveries_leave_the_log_once_older_than_the_days_kept() {
    let app = spawn_app().await;
    let (_up, up_url) = Receiver::start(&[]).await;
    let (_down, down_url) = Receiver::start(&[500; 8]).await;
    let up = subscribe(&app, &up_url, &["achievement.unlocked"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let down = subscribe(&app, &down_url, &["achievement.unlocked"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let week = Duration::from_secs(7 * 86_400);

    // Aino's first step is delivered to one receiver and failed at the
    // other (one attempt allowed).
    let worker = tokio::spawn(app.engine.clone().run_webhook_deliveries(settings(1)));
    app.record("aino", "health", 1.0).await;
    wait_status(&app, &up, "delivered").await;
    wait_status(&app, &down, "failed").await;
    worker.abort();
    // Eero's waits: no worker runs.
    app.record("eero", "health", 1.0).await;
    assert_eq!(app.engine.prune_deliveries(week).await.unwrap(), 0);
    app.clock.advance(7 * DAY);
    assert_eq!(
        app.engine.prune_deliveries(week).await.unwrap(),
        0,
        "exactly a week old is kept"
    );
    app.clock.advance(1);

    // Eero's are sent now: made a week ago, but tried just now.
    let worker = tokio::spawn(app.engine.clone().run_webhook_deliveries(settings(1)));
    wait_attempted(&app, &up, "delivered", 1).await;
    wait_attempted(&app, &down, "failed", 1).await;
    worker.abort();
    assert_eq!(app.engine.prune_deliveries(week).await.unwrap(), 2);
    for (webhook, status) in [(&up, "delivered"), (&down, "failed")] {
        let log = log(&app, webhook).await;
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0]["user_id"], "eero");
        assert_eq!(log[0]["status"], status);
    }

    // A week after their attempt, they go too; a pending one stays
    // however old.
    app.record("ilona", "health", 1.0).await;
    app.clock.advance(30 * DAY);
    assert_eq!(app.engine.prune_deliveries(week).await.unwrap(), 2);
    for webhook in [&up, &down] {
        let log = log(&app, webhook).await;
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(log[0]["user_id"], "ilona");
        assert_eq!(log[0]["status"], "pending");
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gamify_webhook_deliveries_pruned_total 4"),
        "{metrics}"
    );
    // A deleted subscription's log stays readable, empty once pruned.
    assert_eq!(unsubscribe(&app, &down).await.status(), 204);
    app.clock.advance(8 * DAY);
    assert_eq!(app.engine.prune_deliveries(week).await.unwrap(), 1);
    assert_eq!(log(&app, &down).await, Vec::<Value>::new());
    // Points are not deliveries: nothing of the users' changed.
    let balance = app.balance("aino").await;
    assert_eq!(balance["achievements"], json!(["first_step"]));
}

#[tokio::test]
async fn a_password_in_the_url_is_sent_but_never_shown_back() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start(&[]).await;
    let url = url.replace("http://", "http://crm:s3cret@");
    let made = subscribe(&app, &url, &["achievement.unlocked"]).await;
    let shown = url.replace("s3cret", "***");
    assert_eq!(made["url"], shown.as_str());
    let list = app.admin_json("/api/v2/gamify/admin/webhooks").await;
    assert_eq!(list[0]["url"], shown.as_str());
    tokio::spawn(app.engine.clone().run_webhook_deliveries(settings(3)));
    app.record("aino", "health", 1.0).await;
    let got = receiver.wait_for(1).await;
    // HTTP basic authentication: base64 of "crm:s3cret".
    assert_eq!(got[0].authorization, "Basic Y3JtOnMzY3JldA==");
}

#[tokio::test]
async fn bad_subscriptions_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let path = "/api/v2/gamify/admin/webhooks";
    let bad = app
        .admin(
            Method::POST,
            path,
            Some(json!({"url": "ftp://x", "events": ["level.up", "points.earned"]})),
        )
        .await;
    let err = assert_error(bad, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["url", "events[1]"]);
    let none = app
        .admin(
            Method::POST,
            path,
            Some(json!({"url": "https://example.com/h", "events": []})),
        )
        .await;
    let err = assert_error(none, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["events"]);
    // URLs the sender could never post to are refused when given, not at
    // every attempt.
    for url in [
        "http://127.0.0.1:99999/hook",
        "http://",
        "https://a b.example/",
        "http:/example.com",
        "mailto:ops@example.com",
    ] {
        let bad = app
            .admin(
                Method::POST,
                path,
                Some(json!({"url": url, "events": ["level.up"]})),
            )
            .await;
        let err = assert_error(bad, 422, "validation_failed").await;
        assert_eq!(error_fields(&err), ["url"], "{url}");
    }
    // Without the admin token: 401, and nothing was made.
    let anonymous = app
        .anonymous
        .post(app.url(path))
        .json(&json!({"url": "https://example.com/h", "events": ["level.up"]}))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "unauthorized").await;
    let list = app.admin_json(path).await;
    assert_eq!(list, json!([]));
    let bad_status = app
        .admin(
            Method::GET,
            "/api/v2/gamify/admin/webhooks/whk_x/deliveries?status=lost",
            None,
        )
        .await;
    let err = assert_error(bad_status, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["status"]);
}

#[tokio::test]
async fn streak_sweeps_send_broken_and_at_risk_once_a_day() {
    let app = spawn_app().await;
    let (receiver, url) = Receiver::start(&[]).await;
    let id = subscribe(&app, &url, &["streak.broken", "streak.at_risk"]).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Today is 2025-10-12 (10:30 UTC).
    let days = [
        ("runner", vec!["10", "11"]),  // alive, nothing today: at risk
        ("quitter", vec!["09", "10"]), // ended on the 10th: broken
        ("solo", vec!["10"]),          // one day: nothing to break
        ("keen", vec!["11", "12"]),    // acted today: neither
    ];
    for (user, active) in &days {
        for day in active {
            let response = app
                .post_event(json!({
                    "user_id": user, "category": "health", "action": "run", "value": 1,
                    "occurred_at": format!("2025-10-{day}T08:00:00Z"),
                }))
                .await;
            assert_eq!(response.status(), 200);
        }
    }
    tokio::spawn(app.engine.clone().run_webhook_deliveries(settings(3)));

    // Before the at-risk hour: only the broken streak.
    assert_eq!(app.engine.send_streak_notices(18).await.unwrap(), (1, 0));
    // From 18:00: the streak at risk too; the broken one is not sent again.
    app.clock.advance(8 * 3_600_000);
    assert_eq!(app.engine.send_streak_notices(18).await.unwrap(), (1, 1));
    assert_eq!(app.engine.send_streak_notices(18).await.unwrap(), (1, 1));
    let mut got = receiver.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(receiver.got().len(), 2, "each sent once");
    got.sort_by_key(|r| r.event.clone());
    let broken: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(broken["type"], "streak.broken");
    assert_eq!(
        broken["data"],
        json!({"user_id": "quitter", "streak_days": 2, "last_active_day": "2025-10-10"})
    );
    let at_risk: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(at_risk["type"], "streak.at_risk");
    assert_eq!(
        at_risk["data"],
        json!({"user_id": "runner", "streak_days": 2, "day": "2025-10-12", "hours_left": 5})
    );
    assert_eq!(log(&app, &id).await.len(), 2);

    // The next day: the runner's streak broke, and keen's (active
    // yesterday, not yet today) is at risk.
    app.clock.advance(DAY);
    assert_eq!(app.engine.send_streak_notices(18).await.unwrap(), (1, 1));
    let got = receiver.wait_for(4).await;
    let users: Vec<String> = got[2..]
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).unwrap();
            format!(
                "{} {}",
                body["type"].as_str().unwrap(),
                body["data"]["user_id"].as_str().unwrap()
            )
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(users, ["streak.at_risk keen", "streak.broken runner"]);
}

#[tokio::test]
async fn recorded_events_are_forwarded_to_the_external_api_once() {
    // Two Gamify servers: `here` forwards to `there` (the brief's
    // GAMIFY_EXTERNAL_API), through its outbox.
    let here = spawn_app().await;
    let there = spawn_app().await;
    // `there` gives `here` a key that may only record events.
    let key = there
        .admin(
            Method::POST,
            "/api/v2/gamify/admin/keys",
            Some(json!({"name": "forwarded from here", "scopes": ["ingest"]})),
        )
        .await;
    assert_eq!(key.status(), 201);
    let key: Value = key.json().await.unwrap();
    let forward = Forward {
        url: format!("{}/", there.base),
        api_key: key["secret"].as_str().unwrap().to_owned(),
    };
    here.engine.keep_forwarding(Some(&forward)).await.unwrap();
    // Idempotent: a second start keeps the one subscription.
    here.engine.keep_forwarding(Some(&forward)).await.unwrap();
    let list = here.admin_json("/api/v2/gamify/admin/webhooks").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["events"], json!(["event.recorded"]));
    assert_eq!(
        list[0]["url"],
        format!("{}/api/v2/gamify/event", there.base).as_str()
    );
    tokio::spawn(here.engine.clone().run_webhook_deliveries(settings(3)));

    let body = json!({
        "user_id": "ville", "category": "learning", "action": "lesson", "value": 4,
        "metadata": {"course": "rust"}, "occurred_at": "2025-10-11T09:00:00Z",
    });
    for _ in 0..2 {
        // The client's retry replays here and forwards nothing more.
        let response = here.post_event_with_key(body.clone(), "lesson-1").await;
        assert_eq!(response.status(), 200);
    }
    here.record("ville", "health", 2.0).await;
    let mut events = Value::Null;
    for _ in 0..200 {
        events = there.get_json("/api/v2/gamify/events/ville").await;
        if events.as_array().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 2, "each event forwarded once: {events:?}");
    let lesson = events.iter().find(|e| e["category"] == "learning").unwrap();
    assert_eq!(lesson["metadata"], json!({"course": "rust"}));
    assert_eq!(lesson["occurred_at"], "2025-10-11T09:00:00.000Z");
    assert_eq!(
        there.balance("ville").await["lifetime_points"],
        here.balance("ville").await["lifetime_points"]
    );

    // Sent again (an admin's replay): the event's id is the idempotency
    // key, so the other side still has it once.
    let webhook = list[0]["id"].as_str().unwrap();
    let log = wait_status(&here, webhook, "delivered").await;
    let replay = here
        .admin(
            Method::POST,
            &format!(
                "/api/v2/gamify/admin/webhooks/deliveries/{}/replay",
                log[0]["id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(replay.status(), 202);
    tokio::time::sleep(Duration::from_millis(200)).await;
    wait_status(&here, webhook, "delivered").await;
    let events = there.get_json("/api/v2/gamify/events/ville").await;
    assert_eq!(events.as_array().unwrap().len(), 2);

    // Forwarding turned off: its subscription goes.
    here.engine.keep_forwarding(None).await.unwrap();
    let list = here.admin_json("/api/v2/gamify/admin/webhooks").await;
    assert_eq!(list, json!([]));

    // And on again with the same settings (a start with the earlier
    // configuration): forwarding resumes, from now on.
    here.engine.keep_forwarding(Some(&forward)).await.unwrap();
    let list = here.admin_json("/api/v2/gamify/admin/webhooks").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], webhook);
    here.record("ville", "social", 1.0).await;
    for _ in 0..200 {
        if there
            .get_json("/api/v2/gamify/events/ville")
            .await
            .as_array()
            .unwrap()
            .len()
            >= 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let events = there.get_json("/api/v2/gamify/events/ville").await;
    assert_eq!(events.as_array().unwrap().len(), 3, "{events}");
}
