//! What only PostgreSQL promises: several stores (as several nodes would) on
//! one database, serialised by the database alone; and the schema checks.
//! Each test uses a schema of its own; without a reachable test database they
//! skip with a printed reason (or fail under GAMIFY_REQUIRE_POSTGRES=1).

use std::sync::Arc;
use std::time::Duration;

use gamify_core::{Category, Points, Rules, UserId};
use gamify_store::postgres::scratch::{ScratchSchema, test_database};
use gamify_store::postgres::{Migrations, PgStore, SCHEMA_VERSION};
use gamify_store::{Idempotency, Store, StoreError};

mod common;
use common::{DAY, T0, event, exclusive_node};

async fn start_nodes(schema: &ScratchSchema, n: usize) -> Vec<Arc<PgStore>> {
    let mut all = Vec::new();
    for _ in 0..n {
        all.push(Arc::new(
            PgStore::connect(&schema.settings(), Rules::default(), Migrations::Apply)
                .await
                .unwrap(),
        ));
    }
    all
}

#[tokio::test]
async fn three_stores_writing_one_hot_user_give_the_sequential_result() {
    let Some(url) = test_database("three_stores_writing_one_hot_user").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let nodes = start_nodes(&schema, 3).await;
    // 300 events of 1.0 finance (2.0 points each), spread over 10 days so
    // that streak bonuses and achievements depend on the order being right.
    let mut tasks = Vec::new();
    for i in 0..300i64 {
        let node = nodes[(i % 3) as usize].clone();
        tasks.push(tokio::spawn(async move {
            node.record_event(event(
                &format!("evt_{i}"),
                "hot",
                Category::FINANCE,
                1000,
                T0 + (i / 30) * DAY,
            ))
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let user = nodes[0]
        .user(&UserId::parse("hot").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.event_count, 300);
    assert_eq!(user.state.best_streak, 10);

    // Replay the same events in the order they were accepted, one at a
    // time, on a fresh store: the same state and the same records.
    let replay_schema = ScratchSchema::create(&url).await.unwrap();
    let replay = &start_nodes(&replay_schema, 1).await[0];
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = nodes[2]
            .events(&UserId::parse("hot").unwrap(), 100, cursor.as_deref())
            .await
            .unwrap();
        all.extend(page.events);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    // Arrival order: a user's lifetime points grow with every event.
    all.sort_by_key(|e| e.lifetime_after);
    for e in &all {
        replay
            .record_event(event(
                &e.id,
                "hot",
                e.category,
                e.value.milli(),
                e.occurred_at_ms,
            ))
            .await
            .unwrap();
    }
    let again = replay
        .user(&UserId::parse("hot").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.state, user.state, "points, streaks and achievements");
    assert_eq!(again.state.categories, user.state.categories);
    // Every event's own record agrees with the replay's.
    let replayed = replay
        .events(&UserId::parse("hot").unwrap(), 100, None)
        .await
        .unwrap();
    let original = nodes[0]
        .events(&UserId::parse("hot").unwrap(), 100, None)
        .await
        .unwrap();
    assert_eq!(replayed.events, original.events);
}

#[tokio::test]
async fn a_key_retried_on_another_store_is_recorded_once() {
    let Some(url) = test_database("a_key_retried_on_another_store_is_recorded_once").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let nodes = start_nodes(&schema, 3).await;
    let mut tasks = Vec::new();
    for round in 0..20 {
        for (n, node) in nodes.iter().enumerate() {
            let node = node.clone();
            tasks.push(tokio::spawn(async move {
                let mut e = event(
                    &format!("evt_{round}_{n}"),
                    &format!("user_{}", round % 4),
                    Category::HEALTH,
                    1000,
                    T0,
                );
                e.idempotency = Some(Idempotency {
                    key: format!("key-{round}"),
                    fingerprint: format!("body-{round}"),
                });
                node.record_event(e).await.unwrap()
            }));
        }
    }
    let mut fresh = 0;
    for t in tasks {
        fresh += usize::from(!t.await.unwrap().replayed);
    }
    assert_eq!(fresh, 20, "one event per key, whichever node got it first");
    let board = nodes[0].leaderboard(10).await.unwrap();
    let total: i64 = board.iter().map(|r| r.lifetime.milli()).sum();
    assert_eq!(total, 20 * 1200, "20 events of 1.2 points");

    // The same key with another body, for another user, on another node.
    let mut e = event("evt_clash", "someone_else", Category::HEALTH, 1000, T0);
    e.idempotency = Some(Idempotency {
        key: "key-0".into(),
        fingerprint: "another body".into(),
    });
    let clash = nodes[2].record_event(e).await;
    assert!(
        matches!(clash, Err(StoreError::IdempotencyConflict)),
        "{clash:?}"
    );
    assert!(
        nodes[0]
            .user(&UserId::parse("someone_else").unwrap())
            .await
            .unwrap()
            .is_none(),
        "a refused request leaves no user behind"
    );
}

#[tokio::test]
async fn a_database_without_the_schema_is_refused_with_what_to_run() {
    let Some(url) = test_database("a_database_without_the_schema_is_refused").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let refused = PgStore::connect(&schema.settings(), Rules::default(), Migrations::Check).await;
    let message = refused.err().unwrap().to_string();
    assert!(
        message.contains("version 0") && message.contains("gamify migrate"),
        "{message}"
    );
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_binary_is_refused() {
    let Some(url) = test_database("a_database_migrated_by_a_newer_binary_is_refused").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    PgStore::migrate(&schema.settings()).await.unwrap();
    let pool = sqlx::PgPool::connect_with(schema.settings().connect_options_for_tests())
        .await
        .unwrap();
    sqlx::query("INSERT INTO gamify_schema (version) VALUES ($1)")
        .bind(SCHEMA_VERSION as i32 + 1)
        .execute(&pool)
        .await
        .unwrap();
    for migrations in [Migrations::Check, Migrations::Apply] {
        let refused = PgStore::connect(&schema.settings(), Rules::default(), migrations).await;
        let message = refused.err().unwrap().to_string();
        assert!(
            message.contains("newer than this binary") && message.contains("run a newer gamify"),
            "{migrations:?}: {message}"
        );
    }
}

#[tokio::test]
async fn nodes_migrating_at_once_apply_each_migration_once() {
    let Some(url) = test_database("nodes_migrating_at_once_apply_each_migration_once").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let settings = schema.settings();
            tokio::spawn(async move { PgStore::migrate(&settings).await })
        })
        .collect();
    let mut applied = 0;
    for r in runs {
        applied += r.await.unwrap().unwrap();
    }
    assert_eq!(applied, SCHEMA_VERSION as usize);
    // And then a node that only checks starts.
    let store = PgStore::connect(&schema.settings(), Rules::default(), Migrations::Check)
        .await
        .unwrap();
    store
        .record_event(event("e1", "u1", Category::LEARNING, 2000, T0))
        .await
        .unwrap();
    let user = store
        .user(&UserId::parse("u1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.state.total, Points::whole(3));
}

#[tokio::test]
async fn a_write_stuck_behind_a_lock_fails_within_the_statement_timeout() {
    let Some(url) = test_database("a_write_stuck_behind_a_lock_fails").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let mut settings = schema.settings();
    settings.statement_timeout = std::time::Duration::from_millis(300);
    let store = PgStore::connect(&settings, Rules::default(), Migrations::Apply)
        .await
        .unwrap();
    store
        .record_event(event("e1", "locked", Category::SOCIAL, 1000, T0))
        .await
        .unwrap();

    // Another session holds the user's row, as a stuck transaction would.
    let mut other = schema.settings();
    other.statement_timeout = std::time::Duration::from_secs(30);
    let pool = sqlx::PgPool::connect_with(other.connect_options_for_tests())
        .await
        .unwrap();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM users WHERE user_id = 'locked' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();

    let started = std::time::Instant::now();
    let stuck = store
        .record_event(event("e2", "locked", Category::SOCIAL, 1000, T0))
        .await;
    let took = started.elapsed();
    assert!(
        matches!(stuck, Err(StoreError::Unavailable(_))),
        "{stuck:?}"
    );
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    // Other users are not held up, and the stuck one works once released.
    store
        .record_event(event("e3", "free", Category::SOCIAL, 1000, T0))
        .await
        .unwrap();
    holder.rollback().await.unwrap();
    store
        .record_event(event("e4", "locked", Category::SOCIAL, 1000, T0))
        .await
        .unwrap();
    let user = store
        .user(&UserId::parse("locked").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.event_count, 2, "the timed-out write left nothing");
}

#[tokio::test]
async fn sslmode_is_applied_and_verify_full_checks_the_certificate() {
    let Some(url) = test_database("sslmode_require_encrypts").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let mut settings = schema.settings();
    let pool = sqlx::PgPool::connect_with(settings.connect_options_for_tests())
        .await
        .unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&pool)
        .await
        .unwrap();
    if ssl != "on" {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED sslmode_require_encrypts: the test server has ssl = {ssl}"
        );
        return;
    }
    // disable: plain text. (Other tests' connections use the default,
    // prefer, which encrypts on this server: an unencrypted gamify
    // connection can only be this store's.)
    settings.sslmode = Some("disable".into());
    let plain = PgStore::connect(&settings, Rules::default(), Migrations::Apply)
        .await
        .unwrap();
    plain.ping().await.unwrap();
    let unencrypted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
         WHERE application_name = 'gamify' AND NOT ssl",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(unencrypted > 0, "sslmode=disable was not applied");

    // require: encrypted, the certificate not checked (libpq's meaning).
    settings.sslmode = Some("require".into());
    let store = PgStore::connect(&settings, Rules::default(), Migrations::Check)
        .await
        .unwrap();
    store.ping().await.unwrap();

    // The local server's certificate is self-signed: verify-full refuses it.
    settings.sslmode = Some("verify-full".into());
    let refused = PgStore::connect(&settings, Rules::default(), Migrations::Check).await;
    assert!(
        refused.is_err(),
        "verify-full accepted an unverifiable certificate"
    );
}

#[tokio::test]
async fn three_stores_never_oversell_a_reward_nor_overdraw_a_user() {
    let Some(url) = test_database("three_stores_never_oversell_a_reward").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let nodes = start_nodes(&schema, 3).await;
    let ticket = gamify_store::RewardDraft {
        id: "ticket".into(),
        name_fi: "Lippu".into(),
        name_en: "Ticket".into(),
        description: String::new(),
        cost: Points::whole(4),
        stock: Some(9),
        per_user_limit: None,
        available_from_ms: None,
        available_until_ms: None,
        active: true,
        saved_at_ms: T0,
    };
    nodes[0].save_reward(ticket, true).await.unwrap();
    // 30 users with 10 points each (two tickets' worth), each trying three
    // times, through all three nodes: the stock (9) is what binds.
    for u in 0..30 {
        nodes[u % 3]
            .record_event(event(
                &format!("evt_{u}"),
                &format!("u{u}"),
                Category::FINANCE,
                5000,
                T0,
            ))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..90 {
        let node = nodes[i % 3].clone();
        tasks.push(tokio::spawn(async move {
            node.redeem(gamify_store::NewRedemption {
                id: format!("red_{i:03}"),
                reward_id: "ticket".into(),
                user_id: UserId::parse(&format!("u{}", i % 30)).unwrap(),
                created_at_ms: T0,
                idempotency: None,
            })
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Refused(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(ok, 9, "exactly the stock");
    assert_eq!(nodes[1].rewards().await.unwrap()[0].redeemed, 9);
    for u in 0..30 {
        let user = nodes[2]
            .user(&UserId::parse(&format!("u{u}")).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert!(user.state.total >= Points::ZERO);
    }
    assert_eq!(nodes[0].verify().await.unwrap(), vec![]);
}

#[tokio::test]
async fn the_ledger_refuses_deletes_and_updates_outside_an_erasure() {
    let Some(url) = test_database("the_ledger_refuses_deletes_and_updates").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let store = PgStore::connect(&schema.settings(), Rules::default(), Migrations::Apply)
        .await
        .unwrap();
    store
        .record_event(event("evt_1", "bob", Category::FINANCE, 5_000, T0))
        .await
        .unwrap();
    let pool = sqlx::PgPool::connect_with(schema.settings().connect_options_for_tests())
        .await
        .unwrap();
    for sql in [
        "DELETE FROM ledger WHERE user_id = 'bob'",
        "UPDATE ledger SET amount_milli = 0",
        "TRUNCATE ledger",
    ] {
        let refused = sqlx::query(sql).execute(&pool).await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("ledger entries are never"),
            "{sql}: {message}"
        );
    }
    // Another user's erasure does not open Bob's entries either.
    sqlx::query(
        "INSERT INTO erasures (id, user_hash, erasing_user_id, events, ledger_entries, movements,
                               redemptions, erased_at)
         VALUES ('era_x', 'h', 'alice', 0, 0, 0, 0, 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let refused = sqlx::query("DELETE FROM ledger WHERE user_id = 'bob'")
        .execute(&pool)
        .await;
    assert!(refused.is_err());
}

async fn events_of(store: &PgStore, user: &str) -> u64 {
    store
        .user(&UserId::parse(user).unwrap())
        .await
        .unwrap()
        .map_or(0, |u| u.event_count)
}

#[tokio::test]
async fn an_exclusive_store_serves_its_own_writes_and_keeps_every_other_writer_out() {
    let Some(url) = test_database("an_exclusive_store_keeps_others_out").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let exclusive = exclusive_node(&schema, Duration::from_secs(1), Rules::default()).await;
    let other = &start_nodes(&schema, 1).await[0];

    // Its cache follows its commits: a user read as absent, then written,
    // then read and written again.
    assert_eq!(events_of(&exclusive, "u").await, 0);
    for n in 1..=3 {
        exclusive
            .record_event(event(&format!("evt_{n}"), "u", Category::FINANCE, 1000, T0))
            .await
            .unwrap();
        assert_eq!(events_of(&exclusive, "u").await, n);
        assert_eq!(events_of(&exclusive, "u").await, n, "read from its cache");
    }

    // Another node reads, but cannot write, import or erase.
    assert_eq!(events_of(other, "u").await, 3);
    let refused = other
        .record_event(event("evt_other", "u", Category::FINANCE, 1000, T0))
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Unavailable(why)) if why.contains("exclusively")),
        "{refused:?}"
    );
    let refused = other.erase(&UserId::parse("u").unwrap(), "era_1", T0).await;
    assert!(
        matches!(&refused, Err(StoreError::Unavailable(why)) if why.contains("exclusively")),
        "{refused:?}"
    );
    assert_eq!(
        events_of(&exclusive, "u").await,
        3,
        "nothing else was written"
    );

    // A second exclusive node does not start while the first holds it.
    let mut settings = schema.settings();
    settings.exclusive = Some(Duration::from_secs(1));
    let second = PgStore::connect(&settings, Rules::default(), Migrations::Check)
        .await
        .unwrap();
    let refused = second.hold_lease().await;
    assert!(
        matches!(&refused, Err(StoreError::Config(why)) if why.contains("holds this database exclusively")),
        "{refused:?}"
    );

    // Once the exclusive node is gone (its lease released or expired), the
    // others write again.
    drop(exclusive);
    let began = std::time::Instant::now();
    loop {
        match other
            .record_event(event("evt_after", "u", Category::FINANCE, 1000, T0))
            .await
        {
            Ok(_) => break,
            Err(StoreError::Unavailable(_)) if began.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("still refused after the exclusive node stopped: {e:?}"),
        }
    }
    assert_eq!(events_of(other, "u").await, 4);
}

#[tokio::test]
async fn an_exclusive_store_whose_lease_lapsed_reads_what_others_wrote_meanwhile() {
    let Some(url) = test_database("an_exclusive_store_whose_lease_lapsed").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let ttl = Duration::from_secs(1);
    let exclusive = exclusive_node(&schema, ttl, Rules::default()).await;
    let other = &start_nodes(&schema, 1).await[0];
    exclusive
        .record_event(event("evt_1", "u", Category::HEALTH, 1000, T0))
        .await
        .unwrap();
    assert_eq!(events_of(&exclusive, "u").await, 1, "now in its cache");

    // Cut off (it stops renewing), its lease expires; another node writes.
    exclusive.lease().unwrap().pause(true);
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    other
        .record_event(event("evt_2", "u", Category::HEALTH, 1000, T0))
        .await
        .unwrap();
    assert_eq!(
        events_of(&exclusive, "u").await,
        2,
        "a lapsed lease must not serve its cache"
    );

    // Back, it takes the lease again, and its cache has forgotten the copy
    // from before.
    exclusive.lease().unwrap().pause(false);
    let began = std::time::Instant::now();
    while exclusive.lease().unwrap().trusted().is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "lease not taken back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(events_of(&exclusive, "u").await, 2);
    let refused = other
        .record_event(event("evt_3", "u", Category::HEALTH, 1000, T0))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_exclusive_stores_reads_under_concurrent_writes_never_miss_an_acknowledged_event() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let Some(url) = test_database("an_exclusive_stores_reads_under_concurrent_writes").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let store = Arc::new(exclusive_node(&schema, Duration::from_secs(5), Rules::default()).await);
    const USERS: usize = 6;
    // Events acknowledged per user, counted after each acknowledgement.
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..USERS).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for task in 0..16usize {
        let (store, acked) = (store.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..40usize {
                let user = (task + i) % USERS;
                let name = format!("user_{user}");
                if (task + i) % 3 == 0 {
                    store
                        .record_event(event(
                            &format!("evt_{task}_{i}"),
                            &name,
                            Category::LEARNING,
                            1000,
                            T0,
                        ))
                        .await
                        .unwrap();
                    acked[user].fetch_add(1, Ordering::SeqCst);
                }
                // Whatever was acknowledged before this read began must be in it.
                let before = acked[user].load(Ordering::SeqCst);
                let seen = events_of(&store, &name).await;
                assert!(
                    seen >= before,
                    "{name}: read {seen} events after {before} were acknowledged"
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for (user, count) in acked.iter().enumerate() {
        let n = count.load(Ordering::SeqCst);
        assert_eq!(events_of(&store, &format!("user_{user}")).await, n);
    }
}
