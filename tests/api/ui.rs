//! The web UI's files are served from the binary, and CORS lets the
//! origins an operator names read the API (the embeddable wallet). What the
//! pages show is tested in a real browser: tests/ui/.

use crate::helpers::{serve, spawn_app};

#[tokio::test]
async fn the_pages_and_the_widget_are_served_from_the_binary() {
    let app = spawn_app().await;
    for (path, kind, needle) in [
        ("/ui/wallet", "text/html", "/ui/gamify-wallet.js"),
        ("/ui/leaderboards", "text/html", "/leaderboard?"),
        (
            "/ui/gamify-wallet.js",
            "text/javascript",
            "customElements.define(\"gamify-wallet\"",
        ),
        ("/ui/page.js", "text/javascript", "gamify-lang"),
        ("/ui/page.css", "text/css", "tr.me"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert!(response.text().await.unwrap().contains(needle), "{path}");
    }
    let index = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/ui"))
        .send()
        .await
        .unwrap();
    assert_eq!(index.status(), 303);
    assert_eq!(index.headers()["location"], "/ui/wallet");
}

#[tokio::test]
async fn only_the_origins_named_may_read_the_api_from_a_browser() {
    let app = spawn_app().await;
    let engine = app
        .engine
        .clone()
        .with_cors_origins(vec!["https://shop.example".into()]);
    let base = serve(engine).await;
    let get = |origin: &'static str| {
        app.client
            .get(format!("{base}/api/v2/gamify/balance/someone"))
            .header("origin", origin)
            .send()
    };
    let allowed = get("https://shop.example").await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(allowed.headers()["vary"], "origin");
    let other = get("https://evil.example").await.unwrap();
    assert_eq!(other.status(), 200);
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // The widget sends its key, so the browser asks first (a preflight):
    // allowed for the origins named, and for GET with `Authorization` only.
    let preflight = |origin: &'static str| {
        app.anonymous
            .request(
                reqwest::Method::OPTIONS,
                format!("{base}/api/v2/gamify/balance/someone"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let asked = preflight("https://shop.example").await.unwrap();
    assert_eq!(asked.status(), 204);
    assert_eq!(
        asked.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert_eq!(asked.headers()["access-control-allow-methods"], "GET");
    assert_eq!(
        asked.headers()["access-control-allow-headers"],
        "authorization"
    );
    let refused = preflight("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), 405);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // The default server names none.
    let default = app
        .client
        .get(app.url("/api/v2/gamify/balance/someone"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert!(
        default
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}
