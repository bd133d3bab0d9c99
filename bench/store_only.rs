//! Store throughput without HTTP: 64 concurrent tasks recording events.
//! `cargo run --release --example bench_store -- USERS SECONDS`
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gamify_core::{Action, Category, Rules, UserId, Value};
use gamify_store::sqlite::SqliteStore;
use gamify_store::{NewEvent, Store};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let users: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SqliteStore::open(&dir.path().join("gamify.db"), Rules::default()).unwrap());
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..64u64 {
        let (store, done) = (store.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while start.elapsed() < Duration::from_secs(secs) {
                i += 1;
                let n = (t * 7919 + i * 104_729) % users;
                let now = 1_760_265_000_000 + i as i64;
                let event = NewEvent {
                    id: format!("evt_{now:012x}{t:04x}{i:012x}"),
                    user_id: UserId::parse(&format!("user_{n}")).unwrap(),
                    category: Category::BRIEF[(i % 5) as usize],
                    action: Action::parse("bench").unwrap(),
                    value: Value::from_milli(1500),
                    metadata: Some(r#"{"source":"bench"}"#.into()),
                    occurred_at_ms: now,
                    created_at_ms: now,
                    idempotency: None,
                    rules_version: 1,
                };
                store.record_event(event).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "users={users} events={n} per_sec={:.0}",
        n as f64 / start.elapsed().as_secs_f64()
    );
}
