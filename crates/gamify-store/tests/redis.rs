//! The leaderboards in Redis (PostgreSQL with `REDIS_URL`): they equal what
//! SQL computes from the rows, events are accepted while Redis is down and
//! board reads answer 503, and the boards catch up by themselves when it
//! returns or after it lost its data. Run against the real servers; skipped
//! with a printed reason where they are not running (CI requires them).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gamify_core::{Category, Period, UserId, Window};
use gamify_store::board::{BoardKey, BoardRow, Cursor};
use gamify_store::postgres::scratch::{ScratchRedis, ScratchSchema, test_database, test_redis};
use gamify_store::postgres::{Migrations, PgSettings, PgStore};
use gamify_store::{Store, StoreError};
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

mod common;
use common::event;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn uid(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

/// A PostgreSQL schema and a Redis prefix of the test's own, or `None` (with
/// the reason printed) where either server is missing.
async fn place(test: &str) -> Option<(ScratchSchema, ScratchRedis, String)> {
    let pg = test_database(test).await?;
    let redis = test_redis(test).await?;
    let schema = ScratchSchema::create(&pg).await.unwrap();
    let scratch = ScratchRedis::new(&redis, &schema);
    Some((schema, scratch, redis))
}

/// A node: a store on the schema, with Redis at `redis_url` (the prefix
/// of `scratch`), keeping its boards in sync as a serving node does.
async fn node(schema: &ScratchSchema, scratch: &ScratchRedis, redis_url: &str) -> Arc<PgStore> {
    let mut settings = schema.settings();
    let mut redis = scratch.settings();
    redis.url = redis_url.to_owned();
    redis.timeout = Duration::from_millis(300);
    settings.redis = Some(redis);
    let store = PgStore::connect(&settings, Default::default(), Migrations::Apply)
        .await
        .unwrap();
    store.keep_boards_in_sync().await;
    Arc::new(store)
}

/// The same schema read from SQL alone: the truth to compare with.
async fn sql(schema: &ScratchSchema) -> PgStore {
    let settings: PgSettings = schema.settings();
    PgStore::connect(&settings, Default::default(), Migrations::Check)
        .await
        .unwrap()
}

/// Every board Redis keeps, whole.
fn kept() -> Vec<(BoardKey, Window)> {
    let now = now_ms();
    BoardKey::all(&Category::BRIEF)
        .flat_map(|key| match key.period {
            Period::AllTime => vec![(key, Window::ALL_TIME)],
            p => vec![
                (key, Window::containing(p, now)),
                (key, Window::containing(p, now).previous()),
            ],
        })
        .collect()
}

async fn whole(
    store: &dyn Store,
    key: BoardKey,
    window: Window,
) -> Result<Vec<BoardRow>, StoreError> {
    store.board(key, window, None, 10_000).await
}

/// Asserts that every board the node reads equals SQL's.
async fn assert_same_boards(node: &dyn Store, truth: &dyn Store) {
    for (key, window) in kept() {
        let got = whole(node, key, window).await.unwrap();
        let want = whole(truth, key, window).await.unwrap();
        assert_eq!(got, want, "{key:?} {}", window.label());
    }
    let findings = node.verify().await.unwrap();
    assert!(findings.is_empty(), "{findings:?}");
}

/// Waits until board reads answer again (the catch-up), at most 20 s.
async fn until_boards_answer(store: &dyn Store) -> Duration {
    let began = Instant::now();
    loop {
        match whole(store, BoardKey::ALL_TIME, Window::ALL_TIME).await {
            Ok(_) => return began.elapsed(),
            Err(StoreError::BoardsUnavailable(_)) if began.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("boards did not come back: {e}"),
        }
    }
}

async fn earn(store: &dyn Store, id: &str, user: &str, category: Category, value: i64) {
    store
        .record_event(event(id, user, category, value * 1000, now_ms()))
        .await
        .unwrap();
}

#[tokio::test]
async fn two_nodes_keep_redis_equal_to_the_database_and_pages_follow_the_cursor() {
    let test = "two_nodes_keep_redis_equal_to_the_database";
    let Some((schema, scratch, url)) = place(test).await else {
        return;
    };
    let a = node(&schema, &scratch, &url).await;
    let b = node(&schema, &scratch, &url).await;
    let truth = sql(&schema).await;
    // Many users on both nodes at once, the same users on both.
    let mut tasks = Vec::new();
    for n in 0..200 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let category = Category::BRIEF[n % 5];
            let user = format!("u{:03}", n % 60);
            earn(
                &*store,
                &format!("e{n}"),
                &user,
                category,
                (n % 7 + 1) as i64,
            )
            .await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    a.set_hidden(&uid("u007"), true, now_ms()).await.unwrap();
    b.set_hidden(&uid("u008"), true, now_ms()).await.unwrap();
    b.set_hidden(&uid("u008"), false, now_ms()).await.unwrap();
    a.erase(&uid("u009"), "era_1", now_ms()).await.unwrap();
    assert_same_boards(&*a, &truth).await;
    assert_same_boards(&*b, &truth).await;

    // Paging by cursor gives the whole board, in order, once.
    let mut paged = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = a
            .board(BoardKey::ALL_TIME, Window::ALL_TIME, after.clone(), 7)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(Cursor::after(last));
        paged.extend(page);
    }
    assert_eq!(
        paged,
        whole(&truth, BoardKey::ALL_TIME, Window::ALL_TIME)
            .await
            .unwrap()
    );
    // Around me, and a hidden user's own points (which Redis does not keep).
    let week = BoardKey {
        period: Period::Week,
        category: None,
    };
    let this_week = Window::containing(Period::Week, now_ms());
    for user in ["u010", "u007"] {
        let got = a.standing(week, this_week, &uid(user), 3).await.unwrap();
        let want = truth
            .standing(week, this_week, &uid(user), 3)
            .await
            .unwrap();
        assert_eq!(got, want, "{user}");
    }
    assert!(
        a.standing(week, this_week, &uid("u007"), 3)
            .await
            .unwrap()
            .hidden
    );
}

#[tokio::test]
async fn events_are_accepted_while_redis_is_down_and_the_boards_catch_up_by_themselves() {
    let test = "events_are_accepted_while_redis_is_down";
    let Some((schema, scratch, url)) = place(test).await else {
        return;
    };
    let proxy = Proxy::start(&url).await;
    let store = node(&schema, &scratch, &proxy.url()).await;
    let truth = sql(&schema).await;
    earn(&*store, "e1", "ann", Category::FINANCE, 5).await;
    earn(&*store, "e2", "bob", Category::HEALTH, 9).await;
    assert_same_boards(&*store, &truth).await;

    proxy.stop();
    // Events still go in; board reads say why they cannot answer.
    earn(&*store, "e3", "cid", Category::LEARNING, 30).await;
    earn(&*store, "e4", "ann", Category::LEARNING, 2).await;
    match whole(&*store, BoardKey::ALL_TIME, Window::ALL_TIME).await {
        Err(StoreError::BoardsUnavailable(why)) => assert!(why.contains("Redis"), "{why}"),
        other => panic!("expected 503 from the boards, got {other:?}"),
    }
    proxy.start_again().await;
    let waited = until_boards_answer(&*store).await;
    eprintln!("boards answered again {waited:?} after Redis returned");
    assert_same_boards(&*store, &truth).await;
    assert_eq!(
        whole(&*store, BoardKey::ALL_TIME, Window::ALL_TIME)
            .await
            .unwrap()[0]
            .user_id,
        "cid"
    );
}

#[tokio::test]
async fn redis_emptied_or_tampered_with_is_found_and_rebuilt() {
    let test = "redis_emptied_or_tampered_with_is_found_and_rebuilt";
    let Some((schema, scratch, url)) = place(test).await else {
        return;
    };
    let store = node(&schema, &scratch, &url).await;
    let truth = sql(&schema).await;
    earn(&*store, "e1", "ann", Category::FINANCE, 5).await;
    earn(&*store, "e2", "bob", Category::SOCIAL, 9).await;
    let prefix = scratch.settings().prefix;
    let mut redis = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();

    // A score changed behind gamify's back: verify names the board.
    let all = format!("{prefix}board:all:overall");
    redis::cmd("ZADD")
        .arg(&all)
        .arg(-999_000)
        .arg("bob")
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    let findings = store.verify().await.unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].subject.contains("board:all:overall"),
        "{findings:?}"
    );
    assert!(store.rebuild_boards().await.unwrap().unwrap() >= 2);
    assert_same_boards(&*store, &truth).await;

    // Redis restarted empty (it keeps nothing on disk here): rebuilt
    // without anyone asking.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    redis::cmd("DEL")
        .arg(keys)
        .query_async::<()>(&mut redis)
        .await
        .unwrap();
    let waited = until_boards_answer(&*store).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !store.verify().await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "not rebuilt after Redis was emptied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("rebuilt {waited:?} after Redis was emptied");
    assert_same_boards(&*store, &truth).await;

    // Rows from before users.board_windows existed (or imported) are
    // counted from the log at their user's next commit.
    let mut conn =
        sqlx::postgres::PgConnection::connect_with(&schema.settings().connect_options_for_tests())
            .await
            .unwrap();
    sqlx::query("UPDATE users SET board_windows = ''")
        .execute(&mut conn)
        .await
        .unwrap();
    earn(&*store, "e3", "ann", Category::FINANCE, 1).await;
    earn(&*store, "e4", "bob", Category::FINANCE, 1).await;
    assert_same_boards(&*store, &truth).await;
}

/// A TCP forwarder to Redis that can be cut off and reopened on the same
/// port: Redis going away and coming back, without touching the server
/// other tests share.
struct Proxy {
    port: u16,
    target: String,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(redis_url: &str) -> Proxy {
        let target = redis_url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            port: listener.local_addr().unwrap().port(),
            target,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn serve(&self, listener: TcpListener) {
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(pipe.abort_handle());
            }
        });
        self.tasks.lock().unwrap().push(accept.abort_handle());
    }

    /// Closes the port and every connection through it.
    fn stop(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    async fn start_again(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}
