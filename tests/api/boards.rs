//! Leaderboards over HTTP: periods and categories, the window rolling over
//! at the week boundary by the server's clock, around-me, paging by cursor,
//! the privacy opt-out, and clear errors.

use serde_json::{Value, json};

use crate::helpers::{DAY, assert_error, error_fields, error_message, spawn_app};

fn users(board: &Value) -> Vec<(u64, String, f64)> {
    board
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rank"].as_u64().unwrap(),
                r["user_id"].as_str().unwrap().to_owned(),
                r["points"].as_f64().unwrap(),
            )
        })
        .collect()
}

fn row(rank: u64, user: &str, points: f64) -> (u64, String, f64) {
    (rank, user.to_owned(), points)
}

#[tokio::test]
async fn the_week_board_rolls_over_at_monday_midnight_utc_and_last_week_stays_readable() {
    let app = spawn_app().await;
    // Sunday 2026-11-29 23:59:59.999 UTC (ISO week 48), then Monday 00:00.
    let monday = 1_795_996_800_000;
    app.clock.set(monday - 1);
    app.record("ann", "finance", 5.0).await; // 10
    app.record("bob", "learning", 2.0).await; // 3
    let week = app.get_json("/api/v2/gamify/leaderboard?period=week").await;
    assert_eq!(users(&week), [row(1, "ann", 10.0), row(2, "bob", 3.0)]);

    app.clock.set(monday);
    let fresh = app.get_json("/api/v2/gamify/leaderboard?period=week").await;
    assert_eq!(fresh, json!([]), "a new week starts empty");
    app.record("bob", "learning", 4.0).await; // 6, and no streak bonus on day 2
    let fresh = app.get_json("/api/v2/gamify/leaderboard?period=week").await;
    assert_eq!(users(&fresh), [row(1, "bob", 6.0)]);
    let last = app
        .get_json("/api/v2/gamify/leaderboard?period=week&window=2026-W48")
        .await;
    assert_eq!(users(&last), [row(1, "ann", 10.0), row(2, "bob", 3.0)]);
    // The day board rolled over too; the month not yet (December starts
    // on Tuesday).
    let today = app.get_json("/api/v2/gamify/leaderboard?period=day").await;
    assert_eq!(users(&today), [row(1, "bob", 6.0)]);
    let month = app
        .get_json("/api/v2/gamify/leaderboard?period=month")
        .await;
    assert_eq!(users(&month), [row(1, "ann", 10.0), row(2, "bob", 9.0)]);
    // Per category, and all time (the brief's board, unchanged).
    let learning = app
        .get_json("/api/v2/gamify/leaderboard?period=all_time&category=learning")
        .await;
    assert_eq!(users(&learning), [row(1, "bob", 9.0)]);
    let all = app.get_json("/api/v2/gamify/leaderboard").await;
    assert_eq!(users(&all), [row(1, "ann", 10.0), row(2, "bob", 9.0)]);
    app.clock.advance(DAY);
    let tomorrow = app.get_json("/api/v2/gamify/leaderboard?period=day").await;
    assert_eq!(tomorrow, json!([]));
    let december = app
        .get_json("/api/v2/gamify/leaderboard?period=month")
        .await;
    assert_eq!(december, json!([]));
    let november = app
        .get_json("/api/v2/gamify/leaderboard?period=month&window=2026-11")
        .await;
    assert_eq!(users(&november), [row(1, "ann", 10.0), row(2, "bob", 9.0)]);
}

#[tokio::test]
async fn around_me_paging_and_the_privacy_opt_out() {
    let app = spawn_app().await;
    for (i, user) in ["a", "b", "c", "d", "e", "f", "g"].iter().enumerate() {
        app.record(user, "productivity", (i + 1) as f64).await;
    }
    // g 7, f 6, e 5, d 4, c 3, b 2, a 1.
    let me = app.get_json("/api/v2/gamify/leaderboard/d?k=2").await;
    assert_eq!(me["rank"], 4);
    assert_eq!(me["points"], 4.0);
    assert_eq!(me["ranked"], 7);
    assert_eq!(me["window"], "all_time");
    assert_eq!(
        (users(&me["above"]), users(&me["below"])),
        (
            vec![row(2, "f", 6.0), row(3, "e", 5.0)],
            vec![row(5, "c", 3.0), row(6, "b", 2.0)]
        )
    );

    // Pages of 3 by cursor.
    let r = app.get("/api/v2/gamify/leaderboard?limit=3").await;
    let cursor = r.headers()["x-next-cursor"].to_str().unwrap().to_owned();
    let first: Value = r.json().await.unwrap();
    assert_eq!(users(&first).last().unwrap().1, "e");
    let r = app
        .get(&format!(
            "/api/v2/gamify/leaderboard?limit=3&after={cursor}"
        ))
        .await;
    let cursor = r.headers()["x-next-cursor"].to_str().unwrap().to_owned();
    let second: Value = r.json().await.unwrap();
    assert_eq!(
        users(&second),
        [row(4, "d", 4.0), row(5, "c", 3.0), row(6, "b", 2.0)]
    );
    let r = app
        .get(&format!(
            "/api/v2/gamify/leaderboard?limit=3&after={cursor}"
        ))
        .await;
    assert!(r.headers().get("x-next-cursor").is_none(), "the last page");
    let third: Value = r.json().await.unwrap();
    assert_eq!(users(&third), [row(7, "a", 1.0)]);

    // f opts out: gone from the board, not counted in d's rank, points kept.
    let r = app
        .put_privacy("f", json!({"hidden_from_leaderboards": true}))
        .await;
    assert_eq!(r.status(), 200);
    let me = app.get_json("/api/v2/gamify/leaderboard/d?k=1").await;
    assert_eq!(me["rank"], 3);
    let f = app.get_json("/api/v2/gamify/leaderboard/f").await;
    assert_eq!(
        (f["rank"].clone(), f["hidden"].clone(), f["points"].clone()),
        (json!(null), json!(true), json!(6.0))
    );
    let board = app.get_json("/api/v2/gamify/leaderboard").await;
    assert!(!users(&board).iter().any(|r| r.1 == "f"));
    assert_eq!(app.balance("f").await["total_points"], 6.0);
}

#[tokio::test]
async fn a_wrong_period_category_window_or_cursor_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let r = app
        .get("/api/v2/gamify/leaderboard?period=year&category=cooking")
        .await;
    let err = assert_error(r, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["period", "category"]);
    let r = app
        .get("/api/v2/gamify/leaderboard?period=week&window=2026-11-24")
        .await;
    let err = assert_error(r, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["window"]);
    assert!(error_message(&err).contains("YYYY-Www"));
    let r = app.get("/api/v2/gamify/leaderboard?after=nonsense").await;
    let err = assert_error(r, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["after"]);
    let r = app.get("/api/v2/gamify/leaderboard/u1?k=51").await;
    let err = assert_error(r, 422, "validation_failed").await;
    assert_eq!(error_fields(&err), ["k"]);
    let r = app.put_privacy("u1", json!({"hidden": true})).await;
    assert_error(r, 422, "validation_failed").await;
}

/// With Redis unreachable, events are still recorded and the boards answer
/// 503 in the standard error shape, saying why (PostgreSQL needed; the
/// Redis "server" is a port nobody listens on).
#[tokio::test]
async fn with_redis_unreachable_events_are_recorded_and_boards_answer_503() {
    use gamify_store::postgres::scratch::{ScratchSchema, test_database};
    use gamify_store::postgres::{Migrations, PgStore, RedisSettings};
    let Some(url) = test_database("with_redis_unreachable_boards_answer_503").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let mut settings = schema.settings();
    let mut redis = RedisSettings::new("redis://127.0.0.1:1");
    redis.timeout = std::time::Duration::from_millis(200);
    settings.redis = Some(redis);
    let store = PgStore::connect(&settings, Default::default(), Migrations::Apply)
        .await
        .unwrap();
    store.keep_boards_in_sync().await;
    let app = crate::helpers::spawn_app_on(
        std::sync::Arc::new(store),
        crate::helpers::Place::Schema(schema),
        Default::default(),
    )
    .await;
    app.record("ann", "finance", 5.0).await;
    for path in [
        "/api/v2/gamify/leaderboard?limit=3",
        "/api/v2/gamify/leaderboard/ann",
    ] {
        let body = assert_error(app.get(path).await, 503, "leaderboard_unavailable").await;
        assert!(
            body["error"]["message"].as_str().unwrap().contains("Redis"),
            "{body}"
        );
    }
    // The balance is read from the database, as always.
    assert_eq!(app.balance("ann").await["total_points"], json!(10.0));
}

/// The top ten is the page every client polls, and the embedded store hands
/// out the same rendered bytes while nothing on it changed: so each thing
/// that changes what it shows must show at once, the balance from a spend
/// (no board points move) and the level from new rules included.
#[tokio::test]
async fn a_polled_page_shows_every_change_at_once() {
    let app = spawn_app().await;
    app.record("a", "finance", 50.0).await; // 100
    app.record("b", "finance", 25.0).await; // 50
    let top = "/api/v2/gamify/leaderboard?limit=10";
    let fields = |board: &Value, i: usize| {
        let r = &board[i];
        (
            r["user_id"].as_str().unwrap().to_owned(),
            r["total_points"].as_f64().unwrap(),
            r["level"].as_u64().unwrap(),
        )
    };
    let first = app.get_json(top).await;
    assert_eq!(app.get_json(top).await, first, "read twice, unchanged");
    assert_eq!(fields(&first, 0), ("a".to_owned(), 100.0, 2));

    // A spend: no board moves, the balance does.
    let spent = app
        .spend(json!({"user_id": "a", "points": 30, "reason": "Coffee"}))
        .await;
    assert_eq!(spent.status(), 200);
    assert_eq!(
        fields(&app.get_json(top).await, 0),
        ("a".to_owned(), 70.0, 2)
    );

    // An event that reorders the board.
    app.record("b", "finance", 30.0).await; // 50 + 60 = 110
    let after = app.get_json(top).await;
    assert_eq!(users(&after)[0], row(1, "b", 110.0));

    // New rules: same points, other levels.
    let replaced = app
        .put_rules("[levels]\nthresholds = [10, 50, 200]\n")
        .await;
    assert_eq!(replaced.status(), 200);
    let relevelled = app.get_json(top).await;
    assert_eq!(fields(&relevelled, 0), ("b".to_owned(), 110.0, 3));

    // Hidden: off the page.
    let r = app
        .put_privacy("b", json!({"hidden_from_leaderboards": true}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(users(&app.get_json(top).await), [row(1, "a", 100.0)]);
}
