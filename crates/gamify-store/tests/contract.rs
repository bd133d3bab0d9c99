//! The behaviour every storage backend must show. Each test receives a fresh,
//! empty store of every backend from [`backends`]: SQLite in a temp dir, and
//! PostgreSQL in a schema of its own on the test database (skipped with a
//! printed reason when that does not answer, unless GAMIFY_REQUIRE_POSTGRES=1).

use gamify_core::{AchievementId, Category, Points, Rules, UserId};
use gamify_store::analytics::Total;
use gamify_store::sqlite::SqliteStore;
use gamify_store::{Idempotency, NewEvent, Store, StoreError};

mod common;
use common::{DAY, T0, backends, event};

fn keyed(mut e: NewEvent, key: &str, fingerprint: &str) -> NewEvent {
    e.idempotency = Some(Idempotency {
        key: key.into(),
        fingerprint: fingerprint.into(),
    });
    e
}

#[tokio::test]
async fn a_recorded_event_is_scored_and_read_back_with_the_users_state() {
    for (name, store, _place) in
        backends("a_recorded_event_is_scored_and_read_back_with_the_users_state").await
    {
        let rec = store
            .record_event(event("evt_1", "u1", Category::FINANCE, 2000, T0))
            .await
            .unwrap();
        assert!(!rec.replayed, "{name}");
        assert_eq!(rec.event.points, Points::whole(4), "{name}");
        assert_eq!(
            rec.event.unlocked,
            vec![(AchievementId::FIRST_STEP, Points::ZERO)],
            "{name}"
        );

        let user = store
            .user(&UserId::parse("u1").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.state.total, Points::whole(4), "{name}");
        assert_eq!(user.event_count, 1, "{name}");
        assert_eq!(user.last_event_at_ms, Some(T0), "{name}");

        let page = store
            .events(&UserId::parse("u1").unwrap(), 10, None)
            .await
            .unwrap();
        assert_eq!(page.events, vec![rec.event], "{name}");
        assert_eq!(page.next_cursor, None, "{name}");
        assert!(
            store
                .user(&UserId::parse("nobody").unwrap())
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_reused_idempotency_key_returns_the_original_or_conflicts() {
    for (name, store, _place) in
        backends("a_reused_idempotency_key_returns_the_original_or_conflicts").await
    {
        let first = store
            .record_event(keyed(
                event("evt_a", "u1", Category::HEALTH, 1000, T0),
                "k1",
                "h1",
            ))
            .await
            .unwrap();
        let again = store
            .record_event(keyed(
                event("evt_b", "u1", Category::HEALTH, 1000, T0),
                "k1",
                "h1",
            ))
            .await
            .unwrap();
        assert!(again.replayed, "{name}");
        assert_eq!(again.event, first.event, "{name}");
        let clash = store
            .record_event(keyed(
                event("evt_c", "u1", Category::HEALTH, 5000, T0),
                "k1",
                "h2",
            ))
            .await;
        assert!(
            matches!(clash, Err(StoreError::IdempotencyConflict)),
            "{name}: {clash:?}"
        );
        let user = store
            .user(&UserId::parse("u1").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.event_count, 1, "{name}: retries recorded nothing");
    }
}

#[tokio::test]
async fn concurrent_requests_in_one_batch_fail_alone() {
    for (name, store, _place) in backends("concurrent_requests_in_one_batch_fail_alone").await {
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            // evt_dup appears twice: the second must fail without taking others down.
            let id = if i == 0 || i == 100 {
                "evt_dup".to_owned()
            } else {
                format!("evt_{i}")
            };
            let user = format!("user_{}", i % 7);
            tasks.push(tokio::spawn(async move {
                store
                    .record_event(event(&id, &user, Category::PRODUCTIVITY, 1000, T0))
                    .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if t.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 199, "{name}");
        let board = store.leaderboard(100).await.unwrap();
        let total: i64 = board.iter().map(|r| r.lifetime.milli()).sum();
        // 199 events of 1.0 point each; streak day 1 and no bonuses.
        assert_eq!(total, 199_000, "{name}");
    }
}

#[tokio::test]
async fn events_page_newest_first_with_a_cursor() {
    for (name, store, _place) in backends("events_page_newest_first_with_a_cursor").await {
        for i in 0..5 {
            store
                .record_event(event(
                    &format!("evt_{i}"),
                    "u1",
                    Category::SOCIAL,
                    1000,
                    T0 + i,
                ))
                .await
                .unwrap();
        }
        let user = UserId::parse("u1").unwrap();
        let first = store.events(&user, 2, None).await.unwrap();
        let ids: Vec<_> = first.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["evt_4", "evt_3"], "{name}");
        let second = store
            .events(&user, 2, first.next_cursor.as_deref())
            .await
            .unwrap();
        let ids: Vec<_> = second.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["evt_2", "evt_1"], "{name}");
        let last = store
            .events(&user, 2, second.next_cursor.as_deref())
            .await
            .unwrap();
        assert_eq!(last.events.len(), 1, "{name}");
        assert_eq!(last.next_cursor, None, "{name}");
        let bad = store.events(&user, 2, Some("evt_nope")).await;
        assert!(matches!(bad, Err(StoreError::UnknownCursor)), "{name}");
    }
}

#[tokio::test]
async fn the_leaderboard_orders_by_lifetime_then_user_id() {
    for (name, store, _place) in backends("the_leaderboard_orders_by_lifetime_then_user_id").await {
        store
            .record_event(event("e1", "bob", Category::FINANCE, 1000, T0))
            .await
            .unwrap();
        store
            .record_event(event("e2", "alice", Category::FINANCE, 1000, T0))
            .await
            .unwrap();
        store
            .record_event(event("e3", "carol", Category::FINANCE, 3000, T0))
            .await
            .unwrap();
        let board = store.leaderboard(10).await.unwrap();
        let order: Vec<_> = board.iter().map(|r| (r.rank, r.user_id.as_str())).collect();
        assert_eq!(order, [(1, "carol"), (2, "alice"), (3, "bob")], "{name}");
        assert_eq!(store.leaderboard(1).await.unwrap().len(), 1, "{name}");
    }
}

#[tokio::test]
async fn category_totals_and_streaks_accumulate_across_days() {
    for (name, store, _place) in
        backends("category_totals_and_streaks_accumulate_across_days").await
    {
        for day in 0..3 {
            store
                .record_event(event(
                    &format!("f{day}"),
                    "u1",
                    Category::FINANCE,
                    1000,
                    T0 + day * DAY,
                ))
                .await
                .unwrap();
        }
        let rec = store
            .record_event(event("l1", "u1", Category::LEARNING, 2000, T0 + 2 * DAY))
            .await
            .unwrap();
        assert_eq!(rec.event.streak_day, 3, "{name}");
        assert_eq!(
            rec.event.points,
            Points::from_milli(3450),
            "{name}: 2 × 1.5 × 1.15"
        );
        let user = store
            .user(&UserId::parse("u1").unwrap())
            .await
            .unwrap()
            .unwrap();
        let totals = &user.state.categories;
        assert_eq!(user.state.best_streak, 3, "{name}");
        assert!(
            user.state.achievements.contains(&AchievementId::STREAK_3),
            "{name}"
        );
        let by_cat: Vec<_> = totals
            .iter()
            .map(|t| (t.category, t.events, t.points.milli()))
            .collect();
        // finance: 2 + 2 + 2.3; learning: 3.45
        assert_eq!(
            by_cat,
            [(Category::FINANCE, 3, 6300), (Category::LEARNING, 1, 3450)],
            "{name}"
        );
        // lifetime = event points + the streak_3 bonus of 10
        assert_eq!(
            user.state.lifetime,
            Points::from_milli(6300 + 3450 + 10_000),
            "{name}"
        );
    }
}

#[tokio::test]
async fn sqlite_data_and_the_leaderboard_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    {
        let store = SqliteStore::open(&path, Rules::default()).unwrap();
        store
            .record_event(event("e1", "u1", Category::FINANCE, 1000, T0))
            .await
            .unwrap();
        store
            .record_event(event("e2", "u2", Category::HEALTH, 5000, T0))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    let user = store
        .user(&UserId::parse("u1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.state.total, Points::whole(2));
    assert_eq!(user.state.categories.len(), 1);
    let board: Vec<_> = store
        .leaderboard(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.user_id, r.lifetime))
        .collect();
    assert_eq!(
        board,
        [
            ("u2".to_owned(), Points::whole(6)),
            ("u1".to_owned(), Points::whole(2))
        ]
    );
    store.ping().await.unwrap();
}

#[tokio::test]
async fn a_second_sqlite_store_on_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    let _first = SqliteStore::open(&path, Rules::default()).unwrap();
    let second = SqliteStore::open(&path, Rules::default());
    assert!(
        matches!(second, Err(StoreError::InUse(_))),
        "{:?}",
        second.err()
    );
}

#[tokio::test]
async fn one_key_sent_many_times_at_once_records_one_event() {
    for (name, store, _place) in backends("one_key_sent_many_times_at_once_records_one_event").await
    {
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .record_event(keyed(
                            event(&format!("evt_{i}"), "u1", Category::FINANCE, 1000, T0),
                            "retry-me",
                            "same-body",
                        ))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut ids = std::collections::HashSet::new();
        let mut fresh = 0;
        for t in tasks {
            let rec = t.await.unwrap();
            ids.insert(rec.event.id);
            fresh += usize::from(!rec.replayed);
        }
        assert_eq!(fresh, 1, "{name}: one request recorded, the rest replayed");
        assert_eq!(ids.len(), 1, "{name}: every answer names the same event");
        let user = store
            .user(&UserId::parse("u1").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.event_count, 1, "{name}");
        assert_eq!(user.state.total, Points::whole(2), "{name}");
    }
}

#[tokio::test]
async fn analytics_count_users_events_categories_and_days() {
    for (name, store, _place) in backends("analytics_count_users_events_categories_and_days").await
    {
        let empty = store.analytics(vec![T0], T0).await.unwrap();
        assert_eq!(
            (empty.users, empty.events, empty.active.clone()),
            (0, 0, vec![0]),
            "{name}"
        );
        for (i, (user, category, value, at)) in [
            ("a", Category::FINANCE, 10_000, T0 - 10 * DAY),
            ("a", Category::FINANCE, 5_000, T0),
            ("b", Category::LEARNING, 2_000, T0 - DAY),
            ("c", Category::HEALTH, 1_000, T0 - 40 * DAY),
        ]
        .into_iter()
        .enumerate()
        {
            store
                .record_event(event(&format!("evt_{i}"), user, category, value, at))
                .await
                .unwrap();
        }
        let a = store
            .analytics(vec![T0 - 7 * DAY, T0 - 30 * DAY], T0 - 2 * DAY)
            .await
            .unwrap();
        assert_eq!(a.users, 3, "{name}");
        assert_eq!(a.events, 4, "{name}");
        // 20 + 10 (no streak) + 3 + 1.2 points, no bonuses.
        assert_eq!(a.lifetime, Total(34_200), "{name}");
        assert_eq!(
            a.active,
            [2, 2],
            "{name}: a and b within 7 days; c 40 days ago"
        );
        assert_eq!(
            a.categories,
            [
                ("finance".to_owned(), 2, Total(30_000)),
                ("health".to_owned(), 1, Total(1_200)),
                ("learning".to_owned(), 1, Total(3_000)),
            ],
            "{name}"
        );
        let day = |ms: i64| ms.div_euclid(DAY);
        assert_eq!(
            a.days,
            [
                (day(T0 - DAY), 1, Total(3_000)),
                (day(T0), 1, Total(10_000)),
            ],
            "{name}"
        );
    }
}
