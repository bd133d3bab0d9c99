//! Loads a history into a new database through the store, as fast as it
//! goes: EVENTS events for USERS users over 60 days, and a spend after every
//! 20th event. TARGET is an SQLite file, or a `postgres://` URL (with
//! GAMIFY_PG_SCHEMA for a schema; migrated first). For the export/import and
//! leaderboard benchmarks.
//! `cargo run --release --example bench_fill -- TARGET EVENTS USERS`
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gamify_core::{Action, Category, Points, Rules, UserId, Value};
use gamify_store::postgres::{Migrations, PgSettings, PgStore};
use gamify_store::sqlite::SqliteStore;
use gamify_store::{MovementKind, NewEvent, NewMovement, Store};

const DAY: i64 = 86_400_000;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(1).expect("TARGET EVENTS USERS").clone();
    let events: u64 = args
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let users: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let store: Arc<dyn Store> = if target.starts_with("postgres://") {
        let mut settings = PgSettings::new(target);
        settings.schema = std::env::var("GAMIFY_PG_SCHEMA").ok();
        Arc::new(
            PgStore::connect(&settings, Rules::default(), Migrations::Apply)
                .await
                .unwrap(),
        )
    } else {
        Arc::new(SqliteStore::open(std::path::Path::new(&target), Rules::default()).unwrap())
    };
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let base = 1_760_265_000_000 - 60 * DAY;
    let tasks = 64u64;
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (store, done) = (store.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            let mut i = t;
            while i < events {
                let n = (i * 104_729) % users;
                let created = base + (i as i64 * 60 * DAY) / events as i64;
                let user = UserId::parse(&format!("user_{n}")).unwrap();
                let event = NewEvent {
                    id: format!("evt_{created:012x}{i:016x}"),
                    user_id: user.clone(),
                    category: Category::BRIEF[(i % 5) as usize],
                    action: Action::parse("bench").unwrap(),
                    value: Value::from_milli(1500),
                    metadata: Some(r#"{"source":"bench"}"#.into()),
                    occurred_at_ms: created,
                    created_at_ms: created,
                    idempotency: None,
                    rules_version: 1,
                };
                store.record_event(event).await.unwrap();
                if i % 20 == 0 {
                    let spend = NewMovement {
                        id: format!("spd_{created:012x}{i:016x}"),
                        user_id: user,
                        kind: MovementKind::Spend,
                        amount: Points::whole(-1),
                        reason: "bench".into(),
                        metadata: None,
                        created_at_ms: created,
                        idempotency: None,
                    };
                    // Refused when the user has not earned a point yet: fine.
                    let _ = store.move_points(spend).await;
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += tasks;
            }
        }));
    }
    let reporter = {
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                eprintln!("filled {} of {events} events", done.load(Ordering::Relaxed));
            }
        })
    };
    for h in handles {
        h.await.unwrap();
    }
    reporter.abort();
    println!(
        "events={events} users={users} seconds={:.0}",
        start.elapsed().as_secs_f64()
    );
}
