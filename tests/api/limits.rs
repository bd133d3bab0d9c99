//! Request size limits, as configured: a body, a metadata object or a page
//! past its limit gets a clear 4xx naming it, and changes nothing; ids past
//! their fixed lengths too.

use gamify::engine::Limits;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, TestApp, assert_error, error_fields, error_message, event, serve, spawn_app,
};

/// A second server over the app's engine with small limits.
async fn small(app: &TestApp) -> String {
    let engine = app.engine.clone().with_limits(Limits {
        max_body_bytes: 2048,
        max_metadata_bytes: 64,
        max_page: 20,
        ..Limits::default()
    });
    serve(engine).await
}

#[tokio::test]
async fn each_limit_exceeded_is_a_clear_4xx_and_changes_nothing() {
    let app = spawn_app().await;
    let base = small(&app).await;
    let post = |body: Value| {
        app.client
            .post(format!("{base}/api/v2/gamify/event"))
            .json(&body)
            .send()
    };

    let mut big = event("u1", "finance", 2.0);
    big["metadata"] = json!({"note": "x".repeat(3000)});
    let err = assert_error(post(big).await.unwrap(), 413, "payload_too_large").await;
    assert!(error_message(&err).contains("2048"), "{err}");

    let mut meta = event("u1", "finance", 2.0);
    meta["metadata"] = json!({"note": "x".repeat(70)});
    let err = assert_error(post(meta).await.unwrap(), 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["metadata"]);
    assert!(error_message(&err).contains("64 bytes"), "{err}");

    let long_id = event(&"u".repeat(129), "finance", 2.0);
    let err = assert_error(post(long_id).await.unwrap(), 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["user_id"]);

    assert_eq!(
        app.balance("u1").await["lifetime_points"],
        0.0,
        "nothing recorded"
    );

    let mut fits = event("u1", "finance", 2.0);
    fits["metadata"] = json!({"note": "short"});
    assert_eq!(post(fits).await.unwrap().status(), 200);

    let page = |limit: u32| {
        app.client
            .get(format!("{base}/api/v2/gamify/events/u1?limit={limit}"))
            .send()
    };
    let err = assert_error(page(21).await.unwrap(), 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["limit"]);
    assert!(error_message(&err).contains("between 1 and 20"));
    assert_eq!(page(20).await.unwrap().status(), 200);
    let board = app
        .client
        .get(format!("{base}/api/v2/gamify/leaderboard?limit=21"))
        .send()
        .await
        .unwrap();
    assert_error(board, 422, "validation_failed").await;
}

#[tokio::test]
async fn the_default_limits_are_the_documented_ones() {
    let app = spawn_app().await;
    let mut meta = event("u1", "finance", 2.0);
    meta["metadata"] = json!({"note": "x".repeat(4100)});
    let err = assert_error(app.post_event(meta).await, 422, "validation_failed").await;
    assert!(error_message(&err).contains("4096 bytes"));
    let page = app.get("/api/v2/gamify/events/u1?limit=101").await;
    assert_error(page, 422, "validation_failed").await;
    let mut body = event("u1", "finance", 2.0);
    body["metadata"] = json!({"note": "x".repeat(70_000)});
    let err = assert_error(app.post_event(body).await, 413, "payload_too_large").await;
    assert!(error_message(&err).contains("65536"));
}

/// Everything the server sends on `stream` until it closes it, which it
/// must do within 10 s.
async fn answer_of(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("answered and closed within 10 s")
    .unwrap();
    String::from_utf8(answer).unwrap()
}

/// A connection that sends part of a request head and stalls is answered
/// 408 and closed once `header_timeout_ms` passes, a body that stalls is
/// answered 408, and an idle connection (kept alive, or never used) is
/// closed without a word, so slow clients cannot hold connections (and
/// file descriptors) forever; others are served.
#[tokio::test]
async fn a_stalled_request_head_or_an_idle_connection_is_closed_past_the_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let engine = app.engine.clone().with_limits(Limits {
        header_timeout_ms: 300,
        ..Limits::default()
    });
    let base = serve(engine).await;
    let addr = base.trim_start_matches("http://");
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let began = std::time::Instant::now();
    let answer = answer_of(&mut stalled).await;
    let elapsed = began.elapsed();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an answer");
    assert!(head.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(head.contains("connection: close"), "{answer}");
    let body: Value = serde_json::from_str(body).expect("the error shape");
    assert_eq!(body["error"]["code"], "request_timeout", "{answer}");
    assert!(
        error_message(&body).contains("limits.header_timeout_ms"),
        "{answer}"
    );
    assert!(
        elapsed >= std::time::Duration::from_millis(250),
        "not before the timeout: {elapsed:?}"
    );
    // So is a part of a head sent right behind a whole request (pipelined),
    // after that request's answer.
    let mut pipelined = tokio::net::TcpStream::connect(addr).await.unwrap();
    pipelined
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let answer = answer_of(&mut pipelined).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let second = answer
        .find("HTTP/1.1 408")
        .expect("the stalled second head is answered");
    assert!(answer[second..].contains("\"request_timeout\""), "{answer}");
    let mut buf = [0u8; 256];
    // Everyone else is served as before.
    let ok = app
        .client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // A body that trickles in is answered 408 in the error shape once the
    // same time has passed since the head, and nothing is recorded.
    let mut trickle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/v2/gamify/event HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"user_id\": \"u9\""
    );
    trickle.write_all(head.as_bytes()).await.unwrap();
    let began = std::time::Instant::now();
    let answer = answer_of(&mut trickle).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(answer.contains("limits.header_timeout_ms"), "{answer}");
    assert!(began.elapsed() >= std::time::Duration::from_millis(250));
    assert_eq!(
        app.get_json("/api/v2/gamify/events/u9").await,
        json!([]),
        "nothing recorded"
    );
    // The same clock closes a kept-alive connection left idle.
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "served first");
    let began = std::time::Instant::now();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), idle.read(&mut buf))
        .await
        .expect("the idle connection is closed within 10 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(began.elapsed() >= std::time::Duration::from_millis(250));
    // So is one that never sent a byte.
    let mut unused = tokio::net::TcpStream::connect(addr).await.unwrap();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), unused.read(&mut buf))
        .await
        .expect("the unused connection is closed within 10 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

/// A request head the HTTP parser cannot read never reaches a route, yet
/// its answer has the same error shape as every other: 400 for a head that
/// is not HTTP, 414 for a target over 64 KiB, 431 for too many headers. A
/// good request before it on the same connection is answered as usual.
#[tokio::test]
async fn a_request_head_that_cannot_be_read_gets_the_error_shape() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let answer = |request: Vec<u8>| {
        let addr = addr.clone();
        async move {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.write_all(&request).await.unwrap();
            answer_of(&mut tcp).await
        }
    };
    let body = |answer: &str, status: &str| -> Value {
        let (head, body) = answer.rsplit_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("HTTP/1.1 {status}")), "{answer}");
        assert!(head.contains("content-type: application/json"), "{head}");
        serde_json::from_str(body).unwrap()
    };
    let many_headers: String = (0..120).map(|i| format!("X-{i}: a\r\n")).collect();
    let cases = [
        (
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
            "431",
            "headers_too_large",
            "headers",
        ),
        (
            format!(
                "GET /api/v2/gamify/balance/{} HTTP/1.1\r\nHost: x\r\n\r\n",
                "a".repeat(70_000)
            )
            .into_bytes(),
            "414",
            "uri_too_long",
            "path",
        ),
        (
            b"this is not http\r\n\r\n".to_vec(),
            "400",
            "malformed_request",
            "request",
        ),
        (
            format!(
                "POST /api/v2/gamify/event HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \
                 {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: ten\r\n\r\n"
            )
            .into_bytes(),
            "400",
            "malformed_request",
            "request",
        ),
    ];
    for (request, status, code, field) in cases {
        let error = body(&answer(request).await, status);
        assert_eq!(error["error"]["code"], code, "{error}");
        assert_eq!(error["error"]["details"][0]["field"], field, "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "names {field}: {message}");
    }
    // Pipelined after a good request: the good one is answered first.
    let both = answer(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n"
            .to_vec(),
    )
    .await;
    assert!(both.starts_with("HTTP/1.1 200 OK"), "{both}");
    assert_eq!(body(&both, "400")["error"]["code"], "malformed_request");
    assert_eq!(
        app.get_json("/api/v2/gamify/events/u1").await,
        json!([]),
        "nothing recorded"
    );
}
