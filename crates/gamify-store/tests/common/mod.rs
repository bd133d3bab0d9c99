//! What the store's test binaries share.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use gamify_core::{Action, Category, Rules, UserId, Value};
use gamify_store::postgres::lease::DEFAULT_TTL;
use gamify_store::postgres::scratch::{ScratchRedis, ScratchSchema, test_database, test_redis};
use gamify_store::postgres::{Migrations, PgStore};
use gamify_store::sqlite::SqliteStore;
use gamify_store::{NewEvent, Store};

pub const DAY: i64 = 86_400_000;
/// A day's 10:00 UTC.
pub const T0: i64 = 20_000 * DAY + 10 * 3_600_000;

/// An event as the engine would hand it to a store, without an idempotency key.
pub fn event(id: &str, user: &str, category: Category, value_milli: i64, at: i64) -> NewEvent {
    NewEvent {
        id: id.to_owned(),
        user_id: UserId::parse(user).unwrap(),
        category,
        action: Action::parse("did_something").unwrap(),
        value: Value::from_milli(value_milli),
        metadata: Some(r#"{"k":1}"#.to_owned()),
        occurred_at_ms: at,
        created_at_ms: at,
        idempotency: None,
        rules_version: 1,
    }
}

/// Records each user's first event (`evt_{user}`, health, value 1, at
/// `at`), which unlocks first_step: one delivery per subscription that
/// wants it.
pub async fn first_events(store: &dyn Store, users: &[&str], at: i64) {
    for user in users {
        store
            .record_event(event(
                &format!("evt_{user}"),
                user,
                Category::HEALTH,
                1_000,
                at,
            ))
            .await
            .unwrap();
    }
}

/// A store on `schema` holding the exclusive lease (see
/// `postgres::lease`), with leases of `ttl`.
pub async fn exclusive_node(schema: &ScratchSchema, ttl: Duration, rules: Rules) -> PgStore {
    let mut settings = schema.settings();
    settings.exclusive = Some(ttl);
    let store = PgStore::connect(&settings, rules, Migrations::Apply)
        .await
        .unwrap();
    store.hold_lease().await.unwrap();
    store
}

/// What keeps a backend's data alive until the test ends.
#[allow(dead_code)]
pub enum Place {
    Dir(tempfile::TempDir),
    Schema(ScratchSchema),
    Redis(ScratchRedis, ScratchSchema),
}

/// A fresh, empty store of every backend available.
pub async fn backends(test: &str) -> Vec<(&'static str, Arc<dyn Store>, Place)> {
    backends_with(test, Rules::default()).await
}

/// The same, with other rules.
pub async fn backends_with(test: &str, rules: Rules) -> Vec<(&'static str, Arc<dyn Store>, Place)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("gamify.db"), rules.clone()).unwrap();
    let mut all: Vec<(&'static str, Arc<dyn Store>, Place)> =
        vec![("sqlite", Arc::new(sqlite), Place::Dir(dir))];
    if let Some(url) = test_database(test).await {
        let schema = ScratchSchema::create(&url).await.unwrap();
        let store = PgStore::connect(&schema.settings(), rules.clone(), Migrations::Apply)
            .await
            .unwrap();
        all.push(("postgres", Arc::new(store), Place::Schema(schema)));
        // One node holding the exclusive lease: users' state served from
        // its cache, which every behaviour here must keep exact.
        let schema = ScratchSchema::create(&url).await.unwrap();
        let store = exclusive_node(&schema, DEFAULT_TTL, rules.clone()).await;
        all.push(("postgres+exclusive", Arc::new(store), Place::Schema(schema)));
        if let Some(redis) = test_redis(test).await {
            let schema = ScratchSchema::create(&url).await.unwrap();
            let redis = ScratchRedis::new(&redis, &schema);
            let mut settings = schema.settings();
            settings.redis = Some(redis.settings());
            let store = PgStore::connect(&settings, rules, Migrations::Apply)
                .await
                .unwrap();
            store.keep_boards_in_sync().await;
            all.push((
                "postgres+redis",
                Arc::new(store),
                Place::Redis(redis, schema),
            ));
        }
    }
    all
}
