//! The web UI: the wallet and leaderboard pages and the embeddable
//! `<gamify-wallet>` element, served from files compiled into the binary
//! (`ui/` in the repository; no build step, no CDN, no Node.js to run).

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};

/// Serves one embedded file with its type. `no-cache`: browsers check
/// again after an upgrade rather than keep an old page.
fn file(content_type: &'static str, body: &'static str) -> Response {
    (
        [(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")],
        body,
    )
        .into_response()
}

/// `/ui`: the wallet.
pub async fn index() -> Redirect {
    Redirect::to("/ui/wallet")
}

/// `/ui/wallet?user=…`: one user's wallet (the brief's GamifyWallet).
pub async fn wallet() -> Response {
    file(
        "text/html; charset=utf-8",
        include_str!("../../ui/wallet.html"),
    )
}

/// `/ui/leaderboards?period=&category=&user=`: a board, the viewer's row
/// highlighted.
pub async fn leaderboards() -> Response {
    file(
        "text/html; charset=utf-8",
        include_str!("../../ui/leaderboards.html"),
    )
}

/// `/ui/admin`: the dashboard (analytics, a user's wallet and ledger, the
/// rewards, keys, webhooks, rules, tenants), for whoever has an admin key;
/// the page itself holds no data.
pub async fn admin() -> Response {
    file(
        "text/html; charset=utf-8",
        include_str!("../../ui/admin.html"),
    )
}

/// `/ui/gamify-wallet.js`: the `<gamify-wallet user-id="…">` element, for
/// these pages and any other site (see docs/API.md, "Web UI").
pub async fn widget() -> Response {
    file(
        "text/javascript; charset=utf-8",
        include_str!("../../ui/gamify-wallet.js"),
    )
}

/// `/ui/page.js`: what the pages share.
pub async fn page_js() -> Response {
    file(
        "text/javascript; charset=utf-8",
        include_str!("../../ui/page.js"),
    )
}

/// `/ui/page.css`
pub async fn page_css() -> Response {
    file("text/css; charset=utf-8", include_str!("../../ui/page.css"))
}

#[cfg(test)]
mod tests {
    use gamify_store::webhook::Topic;

    #[test]
    fn the_dashboard_offers_every_webhook_event_type() {
        let page = include_str!("../../ui/admin.html");
        let start = page
            .find("const TOPICS = [")
            .expect("the dashboard lists the types");
        let list = &page[start..start + page[start..].find("];").unwrap()];
        let offered: Vec<&str> = list.split('"').skip(1).step_by(2).collect();
        assert_eq!(offered, Topic::ALL.map(Topic::as_str));
    }
}
