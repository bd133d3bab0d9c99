//! `spawn_app()`: a server on port 0 with its own database and a manual clock.
//!
//! The database is an SQLite file in a temp dir, or, with
//! `GAMIFY_TEST_BACKEND=postgres` (as `.ci/run` sets for a second pass of
//! this suite), a scratch schema on the test PostgreSQL database, or with
//! `GAMIFY_TEST_BACKEND=postgres+redis` (a third pass) the same with the
//! leaderboards in Redis under a prefix of the test's own, or with
//! `GAMIFY_TEST_BACKEND=postgres+exclusive` (a fourth) one node holding the
//! exclusive lease, users' state served from its memory: the same HTTP
//! behaviour on every backend.

use std::sync::Arc;

use gamify::http;
use gamify::tenants::{Tenancy, Workers};
use gamify::{Engine, ManualClock, Rules, Storage};
use gamify_store::Store;
use gamify_store::postgres::scratch::{ScratchRedis, ScratchSchema, test_database, test_redis};
use gamify_store::postgres::{Migrations, PgStore};
use gamify_store::sqlite::SqliteStore;
use serde_json::{Value, json};

/// The API key (every scope) every test server is started with; `client`
/// sends it on every request, `anonymous` sends none.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// 2025-10-12T10:30:00Z, the brief's example time.
pub const T0: i64 = 1_760_265_000_000;
pub const DAY: i64 = 86_400_000;

pub struct TestApp {
    pub base: String,
    /// The default tenant's engine.
    pub engine: Engine,
    pub client: reqwest::Client,
    pub anonymous: reqwest::Client,
    pub clock: Arc<ManualClock>,
    _place: Place,
}

/// What keeps the test's database alive until it ends.
#[allow(dead_code)]
pub enum Place {
    Dir(tempfile::TempDir),
    Schema(ScratchSchema),
    Redis(ScratchRedis, ScratchSchema),
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Rules::default()).await
}

/// The same, with other rules.
pub async fn spawn_app_with(rules: Rules) -> TestApp {
    let (store, place, storage): (Arc<dyn Store>, Place, Storage) =
        match std::env::var("GAMIFY_TEST_BACKEND").as_deref() {
            Ok("postgres") => {
                let url = test_database("tests/api (GAMIFY_TEST_BACKEND=postgres)")
                    .await
                    .expect("GAMIFY_TEST_BACKEND=postgres needs a reachable test database");
                let schema = ScratchSchema::create(&url).await.unwrap();
                let store = PgStore::connect(&schema.settings(), rules.clone(), Migrations::Apply)
                    .await
                    .unwrap();
                let storage = Storage::Postgres(schema.settings());
                (Arc::new(store), Place::Schema(schema), storage)
            }
            Ok("postgres+exclusive") => {
                let url = test_database("tests/api (GAMIFY_TEST_BACKEND=postgres+exclusive)")
                    .await
                    .expect(
                        "GAMIFY_TEST_BACKEND=postgres+exclusive needs a reachable test database",
                    );
                let schema = ScratchSchema::create(&url).await.unwrap();
                let mut settings = schema.settings();
                settings.exclusive = Some(gamify_store::postgres::lease::DEFAULT_TTL);
                let store = PgStore::connect(&settings, rules.clone(), Migrations::Apply)
                    .await
                    .unwrap();
                store.hold_lease().await.unwrap();
                (
                    Arc::new(store),
                    Place::Schema(schema),
                    Storage::Postgres(settings),
                )
            }
            Ok("postgres+redis") => {
                let test = "tests/api (GAMIFY_TEST_BACKEND=postgres+redis)";
                let url = test_database(test)
                    .await
                    .expect("GAMIFY_TEST_BACKEND=postgres+redis needs a reachable test database");
                let redis = test_redis(test)
                    .await
                    .expect("GAMIFY_TEST_BACKEND=postgres+redis needs a reachable Redis");
                let schema = ScratchSchema::create(&url).await.unwrap();
                let redis = ScratchRedis::new(&redis, &schema);
                let mut settings = schema.settings();
                settings.redis = Some(redis.settings());
                let store = PgStore::connect(&settings, rules.clone(), Migrations::Apply)
                    .await
                    .unwrap();
                store.keep_boards_in_sync().await;
                (
                    Arc::new(store),
                    Place::Redis(redis, schema),
                    Storage::Postgres(settings),
                )
            }
            _ => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("gamify.db");
                let store = SqliteStore::open(&path, rules.clone()).unwrap();
                (Arc::new(store), Place::Dir(dir), Storage::Sqlite(path))
            }
        };
    spawn_tenancy(store, place, rules, Some(storage)).await
}

/// Serves `engine` (or a tenancy) on a free port until the test ends; its
/// base URL. Bound before it is spawned, so the port is ready before the
/// test sends.
pub async fn serve(engine: impl Into<Tenancy>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(http::serve(listener, engine.into(), std::future::pending()));
    base
}

/// A server over a store of the test's choosing (no tenants).
pub async fn spawn_app_on(store: Arc<dyn Store>, place: Place, rules: Rules) -> TestApp {
    spawn_tenancy(store, place, rules, None).await
}

/// A server whose default tenant is `store`; with `base` (where `store`
/// is), tenants can be made beside it.
async fn spawn_tenancy(
    store: Arc<dyn Store>,
    place: Place,
    rules: Rules,
    base: Option<Storage>,
) -> TestApp {
    let clock = Arc::new(ManualClock::new(T0));
    let engine =
        Engine::with_store(store, rules, clock.clone()).with_api_key(Some(ADMIN_TOKEN.to_owned()));
    let tenancy = Tenancy::new(engine.clone(), base, Workers::default());
    let base = serve(tenancy).await;
    TestApp {
        base,
        engine,
        client: keyed_client(ADMIN_TOKEN),
        anonymous: reqwest::Client::new(),
        clock,
        _place: place,
    }
}

/// The user ids of a leaderboard page (the brief's bare array), in order.
pub fn board_users(board: &Value) -> Vec<&str> {
    board
        .as_array()
        .expect("a leaderboard is an array")
        .iter()
        .map(|r| r["user_id"].as_str().unwrap())
        .collect()
}

/// A client that sends `key` as its bearer token on every request (unless
/// a request sets its own).
pub fn keyed_client(key: &str) -> reqwest::Client {
    crate::common::keyed_client(key, std::time::Duration::from_secs(30))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_event(&self, body: Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v2/gamify/event"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_event_with_key(&self, body: Value, key: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/v2/gamify/event"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Posts an event that must succeed and returns its JSON.
    pub async fn record(&self, user: &str, category: &str, value: f64) -> Value {
        let response = self.post_event(event(user, category, value)).await;
        assert_eq!(
            response.status(),
            200,
            "recording failed: {:?}",
            response.text().await
        );
        response.json().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// POSTs JSON, with an idempotency key if given.
    pub async fn post(&self, path: &str, body: Value, key: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(&body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send().await.unwrap()
    }

    /// Sends `text` as it is, as a JSON body: for bodies a `Value` cannot
    /// hold (malformed, or with a field twice).
    pub async fn send_text(&self, method: &str, path: &str, text: &str) -> reqwest::Response {
        self.client
            .request(method.parse().unwrap(), self.url(path))
            .header("content-type", "application/json")
            .body(text.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// `POST /spend` with `body`, without an idempotency key.
    pub async fn spend(&self, body: Value) -> reqwest::Response {
        self.post("/api/v2/gamify/spend", body, None).await
    }

    /// Sends an admin request (with the token) and returns the response.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// PUTs a rules file to the admin API.
    pub async fn put_rules(&self, toml: &str) -> reqwest::Response {
        self.client
            .put(self.url("/api/v2/gamify/admin/rules"))
            .header("content-type", "application/toml")
            .body(toml.to_owned())
            .send()
            .await
            .unwrap()
    }

    /// GETs an admin route (with the token), which must answer 200, and
    /// reads its JSON.
    pub async fn admin_json(&self, path: &str) -> Value {
        let response = self.admin(reqwest::Method::GET, path, None).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Asserts that no reward or webhook exists and that the keys are
    /// still `keys_before`: what refused admin requests must leave.
    pub async fn assert_no_rewards_webhooks_or_new_keys(&self, keys_before: &Value) {
        assert_eq!(
            self.admin_json("/api/v2/gamify/admin/rewards").await,
            json!([])
        );
        assert_eq!(
            self.admin_json("/api/v2/gamify/admin/webhooks").await,
            json!([])
        );
        assert_eq!(
            &self.admin_json("/api/v2/gamify/admin/keys").await,
            keys_before
        );
    }

    pub async fn balance(&self, user: &str) -> Value {
        self.get_json(&format!("/api/v2/gamify/balance/{user}"))
            .await
    }

    /// `PUT /users/{user}/privacy` with `body`.
    pub async fn put_privacy(&self, user: &str, body: Value) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/api/v2/gamify/users/{user}/privacy")))
            .json(&body)
            .send()
            .await
            .unwrap()
    }
}

pub fn event(user: &str, category: &str, value: f64) -> Value {
    json!({"user_id": user, "category": category, "action": "did_it", "value": value})
}

/// Asserts the error shape and returns it.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "errors are JSON"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["details"].is_array(), "{body}");
    // The message alone says which field is wrong.
    if code == "validation_failed" {
        let message = error_message(&body);
        for field in error_fields(&body) {
            assert!(
                message.contains(&field),
                "the message names {field}: {body}"
            );
        }
    }
    body
}

/// An error's message.
pub fn error_message(err: &Value) -> &str {
    err["error"]["message"].as_str().unwrap()
}

/// The fields an error's details name, in order.
pub fn error_fields(err: &Value) -> Vec<String> {
    err["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap().to_owned())
        .collect()
}
