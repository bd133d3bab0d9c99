//! Events from NATS JetStream, against the real server (127.0.0.1:4222, or
//! GAMIFY_TEST_NATS_URL): the same rules as HTTP, refused messages in the
//! dead-letter stream with their reason, and a consumer killed mid-stream
//! recording every message exactly once after its restart. Skipped with a
//! printed reason when NATS does not answer; `.ci/run` requires it.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use gamify::bus::{NatsSettings, REASON_HEADER};
use gamify::{Engine, Rules, Storage};
use serde_json::json;

mod common;
use common::{get_json, start_gamify};

/// The test server's URL if it answers; otherwise `None` with the reason
/// printed, or a panic when GAMIFY_REQUIRE_NATS=1.
async fn nats(test: &str) -> Option<String> {
    let url =
        std::env::var("GAMIFY_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let reached = tokio::time::timeout(Duration::from_secs(3), async_nats::connect(&url)).await;
    match reached {
        Ok(Ok(_)) => Some(url),
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "no answer in 3 s".into(),
            };
            if std::env::var("GAMIFY_REQUIRE_NATS").as_deref() == Ok("1") {
                panic!(
                    "{test}: NATS is required (GAMIFY_REQUIRE_NATS=1) but {url} does not answer: {why}"
                );
            }
            eprintln!("SKIPPED {test}: NATS at {url} does not answer ({why})");
            None
        }
    }
}

/// Names of the test's own: a stream, subjects and a consumer.
fn settings(url: &str, test: &str) -> NatsSettings {
    let unique = format!(
        "{test}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    NatsSettings {
        url: url.to_owned(),
        stream: format!("T_{unique}"),
        subject: format!("test.{unique}.events"),
        consumer: "gamify".into(),
        dead_letter_subject: format!("test.{unique}.dead"),
        ack_wait: Duration::from_secs(2),
    }
}

/// Waits until the consumer has created its stream.
async fn stream_ready(js: &jetstream::Context, name: &str) {
    let began = Instant::now();
    while js.get_stream(name).await.is_err() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "no stream {name}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn publish(js: &jetstream::Context, subject: &str, id: Option<&str>, body: Vec<u8>) {
    let mut headers = async_nats::HeaderMap::new();
    if let Some(id) = id {
        headers.insert("Nats-Msg-Id", id);
    }
    js.publish_with_headers(subject.to_owned(), headers, body.into())
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn delete_streams(js: &jetstream::Context, s: &NatsSettings) {
    let _ = js.delete_stream(&s.stream).await;
    let _ = js.delete_stream(format!("{}_DEAD", s.stream)).await;
}

#[tokio::test]
async fn events_from_nats_follow_the_rules_and_refusals_go_to_the_dead_letter_stream() {
    let test = "events_from_nats";
    let Some(url) = nats(test).await else { return };
    let s = settings(&url, test);
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(&Storage::Sqlite(dir.path().join("g.db")), Rules::default())
        .await
        .unwrap();
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    // JetStream drops a repeated Nats-Msg-Id only within its duplicate
    // window: made short here, so that a repeat after it reaches Gamify.
    js.create_stream(jetstream::stream::Config {
        name: s.stream.clone(),
        subjects: vec![s.subject.clone()],
        duplicate_window: Duration::from_millis(100),
        ..Default::default()
    })
    .await
    .unwrap();
    let consumer = tokio::spawn(gamify::bus::consume(engine.clone(), s.clone()));

    let event = |user: &str, category: &str, value: f64| {
        serde_json::to_vec(
            &json!({"user_id": user, "category": category, "action": "bus", "value": value}),
        )
        .unwrap()
    };
    publish(&js, &s.subject, Some("m1"), event("ann", "finance", 2.0)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The same message again, past JetStream's window: recorded once.
    publish(&js, &s.subject, Some("m1"), event("ann", "finance", 2.0)).await;
    // Refused with a reason that quotes a field name holding a line break
    // (which a NATS header cannot carry): dead-lettered all the same, and
    // the messages after it are still recorded.
    let newline =
        br#"{"user_id": "eve", "category": "finance", "action": "bus", "value": 1, "x\r\ny": 1}"#;
    publish(&js, &s.subject, Some("bad4"), newline.to_vec()).await;
    publish(&js, &s.subject, Some("m2"), event("ann", "learning", 10.0)).await;
    // An id that breaks Idempotency-Key's rules (spaces, 300 characters)
    // still de-duplicates: twice, past the window, recorded once.
    let odd = format!("order 17 {}", "x".repeat(290));
    publish(&js, &s.subject, Some(&odd), event("fay", "social", 5.0)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish(&js, &s.subject, Some(&odd), event("fay", "social", 5.0)).await;
    publish(&js, &s.subject, None, event("bob", "health", 5.0)).await;
    publish(&js, &s.subject, Some("bad1"), b"{not json".to_vec()).await;
    // The fields in order, as an array: JSON, but not the event's shape.
    let array = br#"["dan", "finance", "paid", 1.0]"#.to_vec();
    publish(&js, &s.subject, Some("bad3"), array).await;
    publish(
        &js,
        &s.subject,
        Some("bad2"),
        event("cid", "gardening", 1.0),
    )
    .await;

    // ann: 2 × 2.0 + 10 × 1.5; bob 5 × 1.2.
    let began = Instant::now();
    loop {
        let ann = engine.balance("ann").await.unwrap();
        let bob = engine.balance("bob").await.unwrap();
        if ann.lifetime_points >= 19.0 && bob.lifetime_points == 6.0 {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(15),
            "not recorded: ann {ann:?}, bob {bob:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(engine.balance("cid").await.unwrap().lifetime_points, 0.0);

    // The four refused messages, with why.
    let dead: consumer::PullConsumer = js
        .get_stream(format!("{}_DEAD", s.stream))
        .await
        .unwrap()
        .create_consumer(consumer::pull::Config::default())
        .await
        .unwrap();
    let mut reasons = Vec::new();
    let began = Instant::now();
    while reasons.len() < 4 && began.elapsed() < Duration::from_secs(10) {
        let mut batch = dead
            .fetch()
            .max_messages(10)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        while let Some(Ok(m)) = batch.next().await {
            let reason = m.headers.as_ref().unwrap().get(REASON_HEADER).unwrap();
            reasons.push(reason.as_str().to_owned());
        }
    }
    reasons.sort();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    // Sorted: the three malformed bodies, then the unknown category.
    assert!(
        reasons[0].starts_with("malformed event JSON: key must be a string"),
        "{reasons:?}"
    );
    assert_eq!(
        reasons[1], "malformed event JSON: the body must be a JSON object",
        "{reasons:?}"
    );
    assert!(
        reasons[2].starts_with("malformed event JSON: unknown field `x  y`"),
        "line breaks become spaces: {reasons:?}"
    );
    assert_eq!(engine.balance("eve").await.unwrap().lifetime_points, 0.0);
    assert_eq!(engine.balance("dan").await.unwrap().lifetime_points, 0.0);
    assert!(
        reasons[3].starts_with("unknown category \"gardening\""),
        "names its field once: {reasons:?}"
    );
    assert!(
        reasons[3].contains("finance"),
        "names the known ones: {reasons:?}"
    );
    // Published before the refused ones, so handled by now.
    let stats = engine.stats("ann").await.unwrap();
    assert_eq!(stats.total_events, 2, "the repeated m1 was recorded twice");
    // Every message handled (none pending or unacknowledged): fay's second
    // message has been through the engine too.
    let mut gamify_consumer: consumer::PullConsumer = js
        .get_stream(&s.stream)
        .await
        .unwrap()
        .get_consumer(&s.consumer)
        .await
        .unwrap();
    let began = Instant::now();
    loop {
        let info = gamify_consumer.info().await.unwrap();
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(15), "{info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fay = engine.stats("fay").await.unwrap();
    assert_eq!(
        fay.total_events, 1,
        "the repeated odd id was recorded twice"
    );
    consumer.abort();
    delete_streams(&js, &s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_stream_records_every_message_exactly_once() {
    let test = "consumer_killed";
    let Some(url) = nats(test).await else { return };
    let s = settings(&url, test);
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GAMIFY_DATA_DIR", dir.path().display().to_string()),
        ("GAMIFY_NATS_URL", url.clone()),
        ("GAMIFY_NATS_STREAM", s.stream.clone()),
        ("GAMIFY_NATS_SUBJECT", s.subject.clone()),
        (
            "GAMIFY_NATS_DEAD_LETTER_SUBJECT",
            s.dead_letter_subject.clone(),
        ),
        ("GAMIFY_NATS_ACK_WAIT_SECONDS", "2".to_owned()),
    ];
    let (mut server, base, _) = start_gamify(&["serve"], &env, "info");
    let js = jetstream::new(async_nats::connect(&url).await.unwrap());
    stream_ready(&js, &s.stream).await;

    const USERS: usize = 30;
    const EACH: usize = 80;
    // Published while the node consumes, so that the kill lands mid-stream.
    let publisher = {
        let (js, subject) = (js.clone(), s.subject.clone());
        tokio::spawn(async move {
            for i in 0..EACH {
                for u in 0..USERS {
                    let body = json!({"user_id": format!("u{u}"), "category": "productivity",
                                      "action": "bus", "value": 1.0});
                    publish(
                        &js,
                        &subject,
                        Some(&format!("msg-{u}-{i}")),
                        serde_json::to_vec(&body).unwrap(),
                    )
                    .await;
                }
            }
        })
    };
    let client = reqwest::Client::new();
    let recorded = |base: String| {
        let client = client.clone();
        async move {
            let mut total = 0;
            for u in 0..USERS {
                let stats = get_json(&client, format!("{base}/api/v2/gamify/stats/u{u}")).await;
                total += stats["total_events"].as_u64().unwrap();
            }
            total as usize
        }
    };
    // Kill it while it is part way through.
    let began = Instant::now();
    let before_kill = loop {
        let n = recorded(base.clone()).await;
        if n >= USERS * EACH / 4 {
            break n;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "nothing consumed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    server.kill().unwrap();
    server.wait().unwrap();
    eprintln!(
        "killed with {before_kill} of {} recorded (as seen just before)",
        USERS * EACH
    );
    assert!(
        before_kill < USERS * EACH,
        "the kill came after the last message"
    );
    publisher.await.unwrap();

    let (mut server, base, _) = start_gamify(&["serve"], &env, "info");
    let began = Instant::now();
    loop {
        let n = recorded(base.clone()).await;
        assert!(n <= USERS * EACH, "{n} events: some were recorded twice");
        if n == USERS * EACH {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "only {n} of {} after the restart",
            USERS * EACH
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A moment more: nothing late doubles anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for u in 0..USERS {
        let b = get_json(&client, format!("{base}/api/v2/gamify/balance/u{u}")).await;
        assert_eq!(b["lifetime_points"], json!(EACH as f64), "u{u}: {b}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
    delete_streams(&js, &s).await;
}
