//! The webhook outbox on every backend: which writes give which deliveries
//! (written with the change, none for a refusal or a replay), the
//! delivery lifecycle (due, retried, failed, replayed, cancelled), and
//! erasure.

use std::sync::Arc;

use gamify_core::{Category, Points, UserId};
use gamify_store::webhook::Topic;
use gamify_store::{
    Attempt, Delivery, DeliveryStatus, Idempotency, MovementKind, NewMovement, NewRedemption,
    RewardDraft, Store, StoreError, Subscription,
};

mod common;
use common::{DAY, T0, backends, event};

/// Every topic a write tells about but `event.recorded` (one per event).
const TOLD: [Topic; 7] = [
    Topic::AchievementUnlocked,
    Topic::LevelUp,
    Topic::StreakExtended,
    Topic::StreakBroken,
    Topic::StreakAtRisk,
    Topic::PointsSpent,
    Topic::RewardRedeemed,
];

fn sub(id: &str, topics: &[Topic]) -> Subscription {
    Subscription {
        id: id.into(),
        url: format!("http://127.0.0.1:9/{id}"),
        topics: topics.to_vec(),
        secret: format!("whsec_{id}"),
        description: String::new(),
        created_at_ms: T0 - DAY * 10,
    }
}

fn spend(id: &str, user: &str, points: i64) -> NewMovement {
    NewMovement {
        id: id.into(),
        user_id: UserId::parse(user).unwrap(),
        kind: MovementKind::Spend,
        amount: Points::whole(-points),
        reason: "coffee".into(),
        metadata: None,
        created_at_ms: T0 + 2 * DAY,
        idempotency: Some(Idempotency {
            key: format!("k-{id}"),
            fingerprint: "fp".into(),
        }),
    }
}

async fn all(store: &Arc<dyn Store>, sub: &str) -> Vec<Delivery> {
    let mut list = store.deliveries(sub, None, None, 1000).await.unwrap();
    list.reverse();
    list
}

/// Each user's first event at T0 (see `common::first_events`).
async fn first_steps(store: &Arc<dyn Store>, users: &[&str]) {
    common::first_events(store.as_ref(), users, T0).await;
}

fn topics(list: &[Delivery]) -> Vec<&'static str> {
    list.iter().map(|d| d.topic.as_str()).collect()
}

#[tokio::test]
async fn writes_give_deliveries_to_the_subscriptions_that_want_them() {
    for (name, store, _place) in
        backends("writes_give_deliveries_to_the_subscriptions_that_want_them").await
    {
        // Nothing is written before anyone subscribes.
        store
            .record_event(event("evt_000", "early", Category::HEALTH, 1_000, T0))
            .await
            .unwrap();
        store.subscribe(sub("whk_all", &TOLD)).await.unwrap();
        store
            .subscribe(sub("whk_levels", &[Topic::LevelUp]))
            .await
            .unwrap();
        store
            .subscribe(sub("whk_events", &[Topic::EventRecorded]))
            .await
            .unwrap();
        assert_eq!(store.subscriptions().await.unwrap().len(), 3, "{name}");

        // Day 1: 10 points, first_step. Day 2: 10 more, the streak grows to
        // 2. Day 3: 80 × 1.15 = 92 and streak_3's 10: 122 lifetime points,
        // points_100, level 2.
        for (i, (day, value)) in [(0, 10_000), (1, 10_000), (2, 80_000)].iter().enumerate() {
            let e = event(
                &format!("evt_{i}"),
                "ada",
                Category::PRODUCTIVITY,
                *value,
                T0 + day * DAY,
            );
            store.record_event(e).await.unwrap();
        }
        // A second event on day 3 extends nothing.
        store
            .record_event(event("evt_3", "ada", Category::SOCIAL, 1_000, T0 + 2 * DAY))
            .await
            .unwrap();
        let got = all(&store, "whk_all").await;
        assert_eq!(
            topics(&got),
            [
                "achievement.unlocked",
                "streak.extended",
                "achievement.unlocked",
                "achievement.unlocked",
                "streak.extended",
                "level.up",
            ],
            "{name}"
        );
        let level: serde_json::Value = serde_json::from_str(&got[5].data).unwrap();
        assert_eq!(level["level"], 2, "{name}");
        assert_eq!(level["previous_level"], 1, "{name}");
        assert_eq!(level["lifetime_points"], 122.0, "{name}");
        let unlocked: serde_json::Value = serde_json::from_str(&got[2].data).unwrap();
        assert_eq!(unlocked["achievement"]["id"], "streak_3", "{name}");
        assert_eq!(unlocked["bonus_points"], 10.0, "{name}");
        let extended: serde_json::Value = serde_json::from_str(&got[4].data).unwrap();
        assert_eq!(extended["streak_days"], 3, "{name}");
        assert!(
            got.iter()
                .all(|d| d.status == DeliveryStatus::Pending && d.user_id == "ada"),
            "{name}"
        );
        assert_eq!(topics(&all(&store, "whk_levels").await), ["level.up"]);
        let recorded = all(&store, "whk_events").await;
        assert_eq!(recorded.len(), 4, "one per event since it subscribed");
        let last: serde_json::Value = serde_json::from_str(&recorded[3].data).unwrap();
        assert_eq!(
            last,
            serde_json::json!({
                "event_id": "evt_3", "user_id": "ada", "category": "social",
                "action": "did_something", "value": 1.0, "metadata": {"k": 1},
                "occurred_at": "2024-10-06T10:00:00.000Z", "points": 0.92,
            }),
            "{name}"
        );

        // A spend; its retry (same key) and a refused one add nothing.
        store.move_points(spend("spd_1", "ada", 5)).await.unwrap();
        assert!(
            store
                .move_points(spend("spd_1", "ada", 5))
                .await
                .unwrap()
                .replayed
        );
        let refused = store.move_points(spend("spd_2", "ada", 100_000)).await;
        assert!(matches!(refused, Err(StoreError::Refused(_))), "{name}");
        // A redemption.
        store
            .save_reward(
                RewardDraft {
                    id: "mug".into(),
                    name_fi: "Muki".into(),
                    name_en: "Mug".into(),
                    description: String::new(),
                    cost: Points::whole(3),
                    stock: None,
                    per_user_limit: None,
                    available_from_ms: None,
                    available_until_ms: None,
                    active: true,
                    saved_at_ms: T0,
                },
                true,
            )
            .await
            .unwrap();
        store
            .redeem(NewRedemption {
                id: "red_1".into(),
                reward_id: "mug".into(),
                user_id: UserId::parse("ada").unwrap(),
                created_at_ms: T0 + 2 * DAY,
                idempotency: None,
            })
            .await
            .unwrap();
        let got = all(&store, "whk_all").await;
        assert_eq!(
            topics(&got[6..]),
            ["points.spent", "reward.redeemed"],
            "{name}"
        );
        let spent: serde_json::Value = serde_json::from_str(&got[6].data).unwrap();
        assert_eq!(spent["points"], 5.0, "{name}");
        assert_eq!(spent["total_points"], 117.92, "{name}");
        assert_eq!(store.pending_deliveries().await.unwrap(), 13, "{name}");

        // Paging: newest first, by seq.
        let first = store.deliveries("whk_all", None, None, 3).await.unwrap();
        let next = store
            .deliveries("whk_all", None, Some(first[2].seq), 100)
            .await
            .unwrap();
        assert_eq!(first.len() + next.len(), 8, "{name}");
        assert_eq!(first[0].topic, Topic::RewardRedeemed, "{name}");
    }
}

#[tokio::test]
async fn deliveries_are_retried_fail_and_replay() {
    for (name, store, _place) in backends("deliveries_are_retried_fail_and_replay").await {
        store
            .subscribe(sub("whk_1", &[Topic::AchievementUnlocked]))
            .await
            .unwrap();
        store
            .record_event(event("evt_1", "bo", Category::LEARNING, 1_000, T0))
            .await
            .unwrap();
        let due = store.due_deliveries(T0, 30_000, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{name}");
        assert_eq!(due[0].url.as_deref(), Some("http://127.0.0.1:9/whk_1"));
        assert_eq!(due[0].secret, "whsec_whk_1");
        let id = due[0].delivery.id.clone();
        if name != "sqlite" {
            // Leased: no node gets it again before the lease ends.
            assert!(
                store
                    .due_deliveries(T0 + 1, 30_000, 10)
                    .await
                    .unwrap()
                    .is_empty(),
                "{name}"
            );
        }

        // A failure: pending again, due later.
        store
            .delivery_attempted(vec![Attempt {
                id: id.clone(),
                at_ms: T0,
                status_code: Some(500),
                error: Some("receiver answered 500".into()),
                status: DeliveryStatus::Pending,
                next_attempt_at_ms: T0 + 60_000,
            }])
            .await
            .unwrap();
        assert!(
            store
                .due_deliveries(T0 + 59_999, 30_000, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        let again = store.due_deliveries(T0 + 60_000, 30_000, 10).await.unwrap();
        assert_eq!(again.len(), 1, "{name}");
        assert_eq!(again[0].delivery.attempts, 1, "{name}");
        assert_eq!(again[0].delivery.last_status, Some(500), "{name}");

        // The last attempt fails: failed, never due again; the log shows it.
        store
            .delivery_attempted(vec![Attempt {
                id: id.clone(),
                at_ms: T0 + 60_000,
                status_code: None,
                error: Some("connection refused".into()),
                status: DeliveryStatus::Failed,
                next_attempt_at_ms: T0 + 60_000,
            }])
            .await
            .unwrap();
        assert!(
            store
                .due_deliveries(T0 + DAY, 30_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let failed = store
            .deliveries("whk_1", Some(DeliveryStatus::Failed), None, 10)
            .await
            .unwrap();
        assert_eq!(failed.len(), 1, "{name}");
        assert_eq!(failed[0].attempts, 2, "{name}");
        assert_eq!(
            failed[0].last_error.as_deref(),
            Some("connection refused"),
            "{name}"
        );
        assert_eq!(store.pending_deliveries().await.unwrap(), 0, "{name}");

        // An admin replays it: due at once, attempts kept.
        let replayed = store.replay_delivery(&id, T0 + DAY).await.unwrap();
        assert_eq!(replayed.status, DeliveryStatus::Pending, "{name}");
        assert_eq!(replayed.attempts, 2, "{name}");
        assert_eq!(
            store
                .due_deliveries(T0 + DAY, 30_000, 10)
                .await
                .unwrap()
                .len(),
            1,
            "{name}"
        );
        store
            .delivery_attempted(vec![Attempt {
                id: id.clone(),
                at_ms: T0 + DAY,
                status_code: Some(204),
                error: None,
                status: DeliveryStatus::Delivered,
                next_attempt_at_ms: T0 + DAY,
            }])
            .await
            .unwrap();
        let delivered = store.deliveries("whk_1", None, None, 10).await.unwrap();
        assert_eq!(delivered[0].status, DeliveryStatus::Delivered, "{name}");
        assert!(matches!(
            store.replay_delivery("dlv_nope", T0).await,
            Err(StoreError::NotFound("delivery"))
        ));
    }
}

#[tokio::test]
async fn deleting_a_subscription_cancels_what_it_had_pending() {
    for (name, store, _place) in
        backends("deleting_a_subscription_cancels_what_it_had_pending").await
    {
        store.subscribe(sub("whk_1", &TOLD)).await.unwrap();
        assert!(matches!(
            store.subscribe(sub("whk_1", &TOLD)).await,
            Err(StoreError::AlreadyExists("webhook"))
        ));
        store
            .record_event(event("evt_1", "cy", Category::FINANCE, 1_000, T0))
            .await
            .unwrap();
        store.unsubscribe("whk_1", T0 + 1).await.unwrap();
        assert!(matches!(
            store.unsubscribe("whk_1", T0 + 2).await,
            Err(StoreError::NotFound("webhook"))
        ));
        assert!(store.subscriptions().await.unwrap().is_empty(), "{name}");
        let list = store.deliveries("whk_1", None, None, 10).await.unwrap();
        assert_eq!(list.len(), 1, "{name}");
        assert_eq!(list[0].status, DeliveryStatus::Cancelled, "{name}");
        // No new deliveries, nothing due.
        store
            .record_event(event("evt_2", "cy", Category::FINANCE, 1_000, T0 + DAY))
            .await
            .unwrap();
        assert_eq!(
            store
                .deliveries("whk_1", None, None, 10)
                .await
                .unwrap()
                .len(),
            1,
            "{name}"
        );
        // A replay of a deleted subscription's delivery comes without a
        // receiver, for the worker to cancel.
        store.replay_delivery(&list[0].id, T0 + DAY).await.unwrap();
        let due = store.due_deliveries(T0 + DAY, 1_000, 10).await.unwrap();
        assert_eq!(due.len(), 1, "{name}");
        assert_eq!(due[0].url, None, "{name}");
    }
}

#[tokio::test]
async fn erasing_a_user_removes_their_deliveries() {
    for (name, store, _place) in backends("erasing_a_user_removes_their_deliveries").await {
        store.subscribe(sub("whk_1", &TOLD)).await.unwrap();
        first_steps(&store, &["gone", "stays"]).await;
        store
            .erase(&UserId::parse("gone").unwrap(), "era_1", T0 + 1)
            .await
            .unwrap();
        let left = store.deliveries("whk_1", None, None, 10).await.unwrap();
        assert_eq!(left.len(), 1, "{name}");
        assert_eq!(left[0].user_id, "stays", "{name}");
        assert!(!left[0].data.contains("gone"), "{name}");
    }
}

#[tokio::test]
async fn a_sweep_notice_made_before_its_user_was_erased_is_not_written_after() {
    for (name, store, _place) in backends("a_sweep_notice_made_before_erasure").await {
        store.subscribe(sub("whk_1", &TOLD)).await.unwrap();
        first_steps(&store, &["gone", "stays"]).await;
        // The hourly sweep reads the users, then writes its notices: an
        // erasure can come between.
        let today = gamify_core::Day::from_unix_millis(T0 + DAY);
        let notices: Vec<_> = ["gone", "stays"]
            .iter()
            .map(|u| gamify_store::webhook::streak_at_risk(u, 1, today, 3, T0 + DAY))
            .collect();
        store
            .erase(&UserId::parse("gone").unwrap(), "era_1", T0 + DAY)
            .await
            .unwrap();
        store.notify(notices).await.unwrap();
        let left = all(&store, "whk_1").await;
        assert_eq!(
            left.iter()
                .map(|d| (d.user_id.as_str(), d.topic.as_str()))
                .collect::<Vec<_>>(),
            [
                ("stays", "achievement.unlocked"),
                ("stays", "streak.at_risk")
            ],
            "{name}"
        );
    }
}

#[tokio::test]
async fn pruning_deletes_finished_deliveries_older_than_the_cutoff_a_batch_at_a_time() {
    for (name, store, _place) in
        backends("pruning_deletes_finished_deliveries_older_than_the_cutoff").await
    {
        store.subscribe(sub("whk_1", &TOLD)).await.unwrap();
        store.subscribe(sub("whk_2", &TOLD)).await.unwrap();
        // Each user's first event unlocks first_step: one delivery per
        // subscription, made at T0.
        first_steps(
            &store,
            &["sent", "failed", "retrying", "sent_late", "waiting"],
        )
        .await;
        // whk_2's are cancelled without an attempt.
        store.unsubscribe("whk_2", T0 + 1).await.unwrap();
        let id_of = |list: &[Delivery], user: &str| {
            list.iter().find(|d| d.user_id == user).unwrap().id.clone()
        };
        let list = all(&store, "whk_1").await;
        let attempt = |user: &str, at_ms: i64, status: DeliveryStatus| Attempt {
            id: id_of(&list, user),
            at_ms,
            status_code: Some(if status == DeliveryStatus::Delivered {
                204
            } else {
                500
            }),
            error: None,
            status,
            next_attempt_at_ms: at_ms + 60_000,
        };
        store
            .delivery_attempted(vec![
                attempt("sent", T0 + 1, DeliveryStatus::Delivered),
                attempt("failed", T0 + 1, DeliveryStatus::Failed),
                attempt("retrying", T0 + 1, DeliveryStatus::Pending),
                attempt("sent_late", T0 + 5 * DAY, DeliveryStatus::Delivered),
            ])
            .await
            .unwrap();

        // Nothing was made before T0.
        assert_eq!(store.prune_deliveries(T0, 100).await.unwrap(), 0, "{name}");
        // Before a day later: sent, failed and whk_2's five cancelled ones
        // (never tried: they count from when they were made), at most
        // `limit` per call.
        let mut counts = Vec::new();
        loop {
            let n = store.prune_deliveries(T0 + DAY, 3).await.unwrap();
            counts.push(n);
            if n < 3 {
                break;
            }
        }
        assert_eq!(counts, [3, 3, 1], "{name}");
        let users = |list: Vec<Delivery>| {
            let mut users: Vec<String> = list.into_iter().map(|d| d.user_id).collect();
            users.sort();
            users
        };
        assert_eq!(
            users(all(&store, "whk_1").await),
            ["retrying", "sent_late", "waiting"],
            "{name}"
        );
        assert!(all(&store, "whk_2").await.is_empty(), "{name}");
        // Made at T0, but tried on day 5: kept until its attempt is old.
        assert_eq!(
            store.prune_deliveries(T0 + 5 * DAY, 100).await.unwrap(),
            0,
            "{name}"
        );
        assert_eq!(
            store.prune_deliveries(T0 + 6 * DAY, 100).await.unwrap(),
            1,
            "{name}"
        );
        // Pending ones stay, however old.
        assert_eq!(
            store.prune_deliveries(T0 + 400 * DAY, 100).await.unwrap(),
            0,
            "{name}"
        );
        assert_eq!(
            users(all(&store, "whk_1").await),
            ["retrying", "waiting"],
            "{name}"
        );
        assert_eq!(store.pending_deliveries().await.unwrap(), 2, "{name}");
    }
}

#[tokio::test]
async fn a_deleted_subscription_comes_back_when_added_again_with_its_id() {
    for (name, store, _place) in
        backends("a_deleted_subscription_comes_back_when_added_again").await
    {
        store.subscribe(sub("whk_fwd", &TOLD)).await.unwrap();
        store
            .record_event(event("evt_1", "aino", Category::HEALTH, 1_000, T0))
            .await
            .unwrap();
        store.unsubscribe("whk_fwd", T0 + 1).await.unwrap();
        // Deleted, but made: its log is still asked for by its id.
        assert!(store.subscription_made("whk_fwd").await.unwrap(), "{name}");
        assert!(
            !store.subscription_made("whk_never").await.unwrap(),
            "{name}"
        );
        let mut again = sub("whk_fwd", &[Topic::LevelUp]);
        again.created_at_ms = T0 + 2;
        store.subscribe(again.clone()).await.unwrap();
        assert_eq!(
            store.subscriptions().await.unwrap(),
            [again.clone()],
            "{name}"
        );
        // Live now: adding it once more is refused, and changes nothing.
        assert!(
            matches!(
                store.subscribe(sub("whk_fwd", &TOLD)).await,
                Err(StoreError::AlreadyExists("webhook"))
            ),
            "{name}"
        );
        assert_eq!(store.subscriptions().await.unwrap(), [again], "{name}");
        // Its log is kept, and it hears about what it now wants.
        store
            .record_event(event("evt_2", "aino", Category::FINANCE, 100_000, T0 + 3))
            .await
            .unwrap();
        let log = all(&store, "whk_fwd").await;
        assert_eq!(topics(&log), ["achievement.unlocked", "level.up"], "{name}");
        assert_eq!(log[0].status, DeliveryStatus::Cancelled, "{name}");
        assert_eq!(log[1].status, DeliveryStatus::Pending, "{name}");
    }
}

#[tokio::test]
async fn nodes_pruning_at_once_delete_each_delivery_once_between_them() {
    for (name, store, _place) in backends("nodes_pruning_at_once").await {
        store.subscribe(sub("whk_1", &TOLD)).await.unwrap();
        // 600 users' first steps, recorded concurrently (batched): 600
        // deliveries, all delivered.
        let writes = (0..600).map(|i| {
            let store = store.clone();
            async move {
                store
                    .record_event(event(
                        &format!("evt_{i}"),
                        &format!("u{i}"),
                        Category::HEALTH,
                        1_000,
                        T0,
                    ))
                    .await
                    .unwrap();
            }
        });
        futures_util::future::join_all(writes).await;
        let ids: Vec<String> = all(&store, "whk_1")
            .await
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(ids.len(), 600, "{name}");
        let attempts = ids
            .iter()
            .map(|id| Attempt {
                id: id.clone(),
                at_ms: T0 + 1,
                status_code: Some(204),
                error: None,
                status: DeliveryStatus::Delivered,
                next_attempt_at_ms: T0 + 1,
            })
            .collect();
        store.delivery_attempted(attempts).await.unwrap();
        // Three sweeps at once, as three nodes' would be.
        let sweeps = (0..3).map(|_| {
            let store = store.clone();
            async move {
                let mut pruned = 0;
                loop {
                    let n = store.prune_deliveries(T0 + DAY, 50).await.unwrap();
                    pruned += n;
                    if n < 50 {
                        return pruned;
                    }
                }
            }
        });
        let pruned: u64 = futures_util::future::join_all(sweeps).await.iter().sum();
        assert_eq!(pruned, 600, "{name}");
        assert!(all(&store, "whk_1").await.is_empty(), "{name}");
    }
}
