//! The points economy every backend must keep: spending, rewards,
//! redemptions and the ledger, under races and retries. Each test runs on a
//! fresh store of every backend (see `common::backends`).

use std::sync::Arc;

use gamify_core::{Category, Expiry, Points, Refusal, Rules, UserId};
use gamify_store::{
    Idempotency, LedgerKind, MovementKind, NewMovement, NewRedemption, RedemptionStatus,
    RewardDraft, Settle, Store, StoreError, UserFilter,
};

mod common;
use common::{DAY, T0, backends, backends_with, event};

fn uid(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

fn key(k: &str, fingerprint: &str) -> Option<Idempotency> {
    Some(Idempotency {
        key: k.into(),
        fingerprint: fingerprint.into(),
    })
}

fn spend(id: &str, user: &str, points: i64) -> NewMovement {
    NewMovement {
        id: id.into(),
        user_id: uid(user),
        kind: MovementKind::Spend,
        amount: Points::whole(-points),
        reason: "coffee".into(),
        metadata: None,
        created_at_ms: T0,
        idempotency: None,
    }
}

fn redeem(id: &str, reward: &str, user: &str) -> NewRedemption {
    NewRedemption {
        id: id.into(),
        reward_id: reward.into(),
        user_id: uid(user),
        created_at_ms: T0,
        idempotency: None,
    }
}

fn reward(id: &str, cost: i64, stock: Option<u32>) -> RewardDraft {
    RewardDraft {
        id: id.into(),
        name_fi: "Kahvi".into(),
        name_en: "Coffee".into(),
        description: "A cup".into(),
        cost: Points::whole(cost),
        stock,
        per_user_limit: None,
        available_from_ms: None,
        available_until_ms: None,
        active: true,
        saved_at_ms: T0,
    }
}

/// Gives `user` exactly `points` (finance weighs 2.0: value = points / 2;
/// the first event unlocks first_step with no bonus).
async fn earn(store: &Arc<dyn Store>, user: &str, points: i64) {
    store
        .record_event(event(
            &format!("evt_{user}_{points}"),
            user,
            Category::FINANCE,
            points * 500,
            T0,
        ))
        .await
        .unwrap();
}

async fn balance(store: &Arc<dyn Store>, user: &str) -> (Points, Points) {
    let s = store.user(&uid(user)).await.unwrap().unwrap_or_default();
    (s.state.total, s.state.lifetime)
}

async fn assert_verified(name: &str, store: &Arc<dyn Store>) {
    let findings = store.verify().await.unwrap();
    assert!(findings.is_empty(), "{name}: {findings:?}");
}

#[tokio::test]
async fn a_spend_lowers_the_balance_but_never_lifetime_and_never_below_zero() {
    for (name, store, _place) in
        backends("a_spend_lowers_the_balance_but_never_lifetime_and_never_below_zero").await
    {
        earn(&store, "u1", 10).await;
        let moved = store.move_points(spend("spd_1", "u1", 7)).await.unwrap();
        assert_eq!(moved.movement.balance_after, Points::whole(3), "{name}");
        assert_eq!(
            balance(&store, "u1").await,
            (Points::whole(3), Points::whole(10)),
            "{name}"
        );

        match store.move_points(spend("spd_2", "u1", 4)).await {
            Err(StoreError::Refused(Refusal::InsufficientPoints { balance, needed })) => {
                assert_eq!(
                    (balance, needed),
                    (Points::whole(3), Points::whole(4)),
                    "{name}"
                );
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(
            balance(&store, "u1").await.0,
            Points::whole(3),
            "{name}: unchanged"
        );
        match store.move_points(spend("spd_3", "nobody", 1)).await {
            Err(StoreError::Refused(Refusal::InsufficientPoints { .. })) => {}
            other => panic!("{name}: {other:?}"),
        }
        assert!(
            store.user(&uid("nobody")).await.unwrap().is_none(),
            "{name}"
        );

        let page = store.ledger(&uid("u1"), 10, None).await.unwrap();
        let kinds: Vec<_> = page
            .entries
            .iter()
            .map(|e| (e.kind, e.amount, e.balance_after))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (LedgerKind::Spend, Points::whole(-7), Points::whole(3)),
                (LedgerKind::Event, Points::whole(10), Points::whole(10)),
            ],
            "{name}"
        );
        assert_eq!(page.entries[0].reference, "spd_1", "{name}");
        assert_verified(name, &store).await;
    }
}

#[tokio::test]
async fn an_adjustment_in_the_users_favour_counts_as_earned_and_against_only_lowers_the_balance() {
    for (name, store, _place) in
        backends("an_adjustment_in_the_users_favour_counts_as_earned").await
    {
        let mut credit = spend("adj_1", "u1", 0);
        credit.kind = MovementKind::Adjustment;
        credit.amount = Points::whole(20);
        store.move_points(credit.clone()).await.unwrap();
        assert_eq!(
            balance(&store, "u1").await,
            (Points::whole(20), Points::whole(20)),
            "{name}"
        );
        credit.id = "adj_2".into();
        credit.amount = Points::whole(-5);
        store.move_points(credit).await.unwrap();
        assert_eq!(
            balance(&store, "u1").await,
            (Points::whole(15), Points::whole(20)),
            "{name}"
        );
        assert_verified(name, &store).await;
    }
}

#[tokio::test]
async fn retried_spends_with_one_key_charge_once_even_when_sent_at_once() {
    for (name, store, _place) in
        backends("retried_spends_with_one_key_charge_once_even_when_sent_at_once").await
    {
        earn(&store, "u1", 100).await;
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut s = spend(&format!("spd_{i}"), "u1", 10);
                    s.idempotency = key("pay-1", "same");
                    store.move_points(s).await
                })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap().unwrap().movement.id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{name}: every answer is the one spend");
        assert_eq!(balance(&store, "u1").await.0, Points::whole(90), "{name}");

        let mut other = spend("spd_x", "u1", 11);
        other.idempotency = key("pay-1", "different");
        assert!(
            matches!(
                store.move_points(other).await,
                Err(StoreError::IdempotencyConflict)
            ),
            "{name}"
        );
        assert_verified(name, &store).await;
    }
}

#[tokio::test]
async fn one_redemption_key_sent_many_times_at_once_charges_once() {
    for (name, store, _place) in backends("one_redemption_key_sent_many_times_at_once").await {
        store
            .save_reward(reward("mug", 10, Some(5)), true)
            .await
            .unwrap();
        earn(&store, "u1", 100).await;
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut r = redeem(&format!("red_{i:03}"), "mug", "u1");
                    r.idempotency = key("order-7", "same");
                    store.redeem(r).await
                })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap().unwrap().redemption.id);
        }
        ids.dedup();
        assert_eq!(ids.len(), 1, "{name}: every answer is the one redemption");
        assert_eq!(balance(&store, "u1").await.0, Points::whole(90), "{name}");
        assert_eq!(store.rewards().await.unwrap()[0].redeemed, 1, "{name}");
        assert_verified(name, &store).await;
    }
}

#[tokio::test]
async fn fifty_concurrent_redemptions_succeed_exactly_as_often_as_the_balance_allows() {
    for (name, store, _place) in
        backends("fifty_concurrent_redemptions_succeed_exactly_as_often").await
    {
        store
            .save_reward(reward("mug", 30, None), true)
            .await
            .unwrap();
        earn(&store, "u1", 30 * 7).await; // exactly k = 7 redemptions
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .redeem(redeem(&format!("red_{i:03}"), "mug", "u1"))
                        .await
                })
            })
            .collect();
        let (mut ok, mut short) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Refused(Refusal::InsufficientPoints { .. })) => short += 1,
                Err(e) => panic!("{name}: {e:?}"),
            }
        }
        assert_eq!((ok, short), (7, 43), "{name}");
        assert_eq!(balance(&store, "u1").await.0, Points::ZERO, "{name}");
        let rewards = store.rewards().await.unwrap();
        assert_eq!(rewards[0].redeemed, 7, "{name}");
        assert_verified(name, &store).await;
    }
}

#[tokio::test]
async fn a_reward_with_stock_n_is_redeemed_exactly_n_times_by_a_hundred_users_at_once() {
    for (name, store, _place) in backends("a_reward_with_stock_n_is_redeemed_exactly_n_times").await
    {
        store
            .save_reward(reward("ticket", 5, Some(13)), true)
            .await
            .unwrap();
        for u in 0..100 {
            earn(&store, &format!("u{u}"), 5).await;
        }
        let tasks: Vec<_> = (0..100)
            .map(|u| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .redeem(redeem(&format!("red_{u:03}"), "ticket", &format!("u{u}")))
                        .await
                })
            })
            .collect();
        let (mut ok, mut out) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::Refused(Refusal::OutOfStock)) => out += 1,
                Err(e) => panic!("{name}: {e:?}"),
            }
        }
        assert_eq!((ok, out), (13, 87), "{name}");
        assert_verified(name, &store).await;
    }
}

#[tokio::test]
async fn cancelling_refunds_the_points_and_returns_the_unit_once() {
    for (name, store, _place) in
        backends("cancelling_refunds_the_points_and_returns_the_unit").await
    {
        store
            .save_reward(reward("ticket", 5, Some(1)), true)
            .await
            .unwrap();
        earn(&store, "u1", 8).await;
        let mut r = redeem("red_1", "ticket", "u1");
        r.idempotency = key("r-1", "f");
        let first = store.redeem(r.clone()).await.unwrap();
        assert_eq!(first.redemption.status, RedemptionStatus::Pending, "{name}");
        let again = store.redeem(r).await.unwrap();
        assert!(again.replayed, "{name}");
        assert_eq!(
            balance(&store, "u1").await.0,
            Points::whole(3),
            "{name}: charged once"
        );

        let cancel = Settle {
            redemption_id: "red_1".into(),
            to: RedemptionStatus::Cancelled,
            at_ms: T0 + 1,
        };
        for _ in 0..2 {
            let r = store.settle(cancel.clone()).await.unwrap();
            assert_eq!(r.status, RedemptionStatus::Cancelled, "{name}");
        }
        assert_eq!(
            balance(&store, "u1").await,
            (Points::whole(8), Points::whole(8)),
            "{name}"
        );
        assert_eq!(
            store.rewards().await.unwrap()[0].redeemed,
            0,
            "{name}: unit returned"
        );
        let fulfil = Settle {
            to: RedemptionStatus::Fulfilled,
            ..cancel
        };
        assert!(
            matches!(
                store.settle(fulfil).await,
                Err(StoreError::RedemptionClosed(RedemptionStatus::Cancelled))
            ),
            "{name}"
        );
        assert!(
            matches!(
                store
                    .settle(Settle {
                        redemption_id: "red_nope".into(),
                        to: RedemptionStatus::Fulfilled,
                        at_ms: T0
                    })
                    .await,
                Err(StoreError::NotFound("redemption"))
            ),
            "{name}"
        );
        let kinds: Vec<_> = store
            .ledger(&uid("u1"), 10, None)
            .await
            .unwrap()
            .entries
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                LedgerKind::Refund,
                LedgerKind::Redemption,
                LedgerKind::Event
            ],
            "{name}"
        );
        assert_verified(name, &store).await;
    }
}

#[tokio::test]
async fn a_reward_is_refused_when_inactive_outside_its_window_or_past_the_users_limit() {
    for (name, store, _place) in backends("a_reward_is_refused_when_inactive_or_limited").await {
        earn(&store, "u1", 100).await;
        let mut limited = reward("limited", 1, None);
        limited.per_user_limit = Some(1);
        store.save_reward(limited.clone(), true).await.unwrap();
        store
            .redeem(redeem("red_1", "limited", "u1"))
            .await
            .unwrap();
        assert!(
            matches!(
                store.redeem(redeem("red_2", "limited", "u1")).await,
                Err(StoreError::Refused(Refusal::LimitReached { limit: 1 }))
            ),
            "{name}"
        );
        let mut later = reward("later", 1, None);
        later.available_from_ms = Some(T0 + 1);
        store.save_reward(later, true).await.unwrap();
        assert!(
            matches!(
                store.redeem(redeem("red_3", "later", "u1")).await,
                Err(StoreError::Refused(Refusal::OutsideWindow))
            ),
            "{name}"
        );
        limited.active = false;
        limited.per_user_limit = None;
        store.save_reward(limited.clone(), false).await.unwrap();
        assert!(
            matches!(
                store.redeem(redeem("red_4", "limited", "u1")).await,
                Err(StoreError::Refused(Refusal::RewardInactive))
            ),
            "{name}"
        );
        assert!(
            matches!(
                store.redeem(redeem("red_5", "missing", "u1")).await,
                Err(StoreError::NotFound("reward"))
            ),
            "{name}"
        );
        assert!(
            matches!(
                store.save_reward(limited.clone(), true).await,
                Err(StoreError::AlreadyExists("reward"))
            ),
            "{name}"
        );
        limited.stock = Some(0);
        assert!(
            matches!(
                store.save_reward(limited, false).await,
                Err(StoreError::StockBelowRedeemed(1))
            ),
            "{name}"
        );
        assert_eq!(balance(&store, "u1").await.0, Points::whole(99), "{name}");
        assert_verified(name, &store).await;
    }
}

#[tokio::test]
async fn reaching_a_thousand_points_grants_the_configured_reward_free() {
    for (name, store, _place) in backends("reaching_a_thousand_points_grants_the_reward").await {
        store
            .save_reward(reward(gamify_core::SPECIAL_REWARD, 500, Some(10)), true)
            .await
            .unwrap();
        earn(&store, "u1", 1000).await;
        let held = store
            .redemptions(Some(&uid("u1")), None, 10, None)
            .await
            .unwrap();
        assert_eq!(held.len(), 1, "{name}");
        assert_eq!(held[0].cost, Points::ZERO, "{name}");
        assert_eq!(held[0].reward_id, gamify_core::SPECIAL_REWARD, "{name}");
        assert!(
            held[0]
                .granted_by
                .as_deref()
                .unwrap()
                .ends_with("/points_1000"),
            "{name}"
        );
        // Every bonus on the way was paid; nothing was charged for the grant.
        let (total, lifetime) = balance(&store, "u1").await;
        assert_eq!(total, lifetime, "{name}");
        assert_verified(name, &store).await;
    }
}

#[tokio::test]
async fn the_ledger_pages_newest_first_with_a_cursor() {
    for (name, store, _place) in backends("the_ledger_pages_newest_first_with_a_cursor").await {
        earn(&store, "u1", 50).await;
        for i in 0..5 {
            store
                .move_points(spend(&format!("spd_{i}"), "u1", 1))
                .await
                .unwrap();
        }
        let first = store.ledger(&uid("u1"), 4, None).await.unwrap();
        assert_eq!(first.entries.len(), 4, "{name}");
        let rest = store
            .ledger(&uid("u1"), 4, first.next_cursor)
            .await
            .unwrap();
        assert_eq!(rest.next_cursor, None, "{name}");
        let all: Vec<_> = first
            .entries
            .iter()
            .chain(&rest.entries)
            .map(|e| e.seq)
            .collect();
        let mut sorted = all.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(all, sorted, "{name}: newest first");
        assert_eq!(all.len(), 6, "{name}: event, then five spends");
        assert_eq!(
            rest.entries.last().unwrap().kind,
            LedgerKind::Event,
            "{name}"
        );
    }
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    Earn(usize, i64),
    Spend(usize, i64),
    Redeem(usize, usize),
    Cancel(usize),
    Fulfil(usize),
    Expire(usize),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (0..3usize, 1..60i64).prop_map(|(u, p)| Step::Earn(u, p)),
        (0..3usize, 1..80i64).prop_map(|(u, p)| Step::Spend(u, p)),
        (0..3usize, 0..2usize).prop_map(|(u, r)| Step::Redeem(u, r)),
        (0..40usize).prop_map(Step::Cancel),
        (0..40usize).prop_map(Step::Fulfil),
        (0..3usize).prop_map(Step::Expire),
    ]
}

/// Runs `steps` in rounds of `width` requests sent at once; returns the ids
/// of the redemptions made.
async fn run_history(store: &Arc<dyn Store>, steps: &[Step], width: usize) {
    let mut made: Vec<String> = Vec::new();
    for (round, chunk) in steps.chunks(width).enumerate() {
        let mut tasks = Vec::new();
        for (i, step) in chunk.iter().enumerate() {
            let store = store.clone();
            let n = round * width + i;
            let target = |k: usize| made.get(k % made.len().max(1)).cloned();
            let step = step.clone();
            let cancel_target = match &step {
                Step::Cancel(k) | Step::Fulfil(k) => target(*k),
                _ => None,
            };
            tasks.push(tokio::spawn(async move {
                let user = |u: usize| format!("u{u}");
                match step {
                    Step::Earn(u, p) => {
                        let mut e = event(
                            &format!("evt_{n:04}"),
                            &user(u),
                            Category::FINANCE,
                            p * 500,
                            T0,
                        );
                        e.created_at_ms = T0 + n as i64;
                        store.record_event(e).await.map(|_| None)
                    }
                    Step::Spend(u, p) => store
                        .move_points(spend(&format!("spd_{n:04}"), &user(u), p))
                        .await
                        .map(|_| None),
                    Step::Redeem(u, r) => store
                        .redeem(redeem(
                            &format!("red_{n:04}"),
                            ["cheap", "dear"][r],
                            &user(u),
                        ))
                        .await
                        .map(|d| Some(d.redemption.id)),
                    // Everything credited before this moment is due.
                    Step::Expire(u) => store
                        .expire(&uid(&user(u)), T0 + n as i64, T0 + n as i64)
                        .await
                        .map(|_| None),
                    Step::Cancel(_) | Step::Fulfil(_) => {
                        let Some(id) = cancel_target else {
                            return Ok(None);
                        };
                        let to = if matches!(step, Step::Cancel(_)) {
                            RedemptionStatus::Cancelled
                        } else {
                            RedemptionStatus::Fulfilled
                        };
                        store
                            .settle(Settle {
                                redemption_id: id,
                                to,
                                at_ms: T0 + n as i64,
                            })
                            .await
                            .map(|_| None)
                    }
                }
            }));
        }
        for t in tasks {
            match t.await.unwrap() {
                Ok(Some(id)) => made.push(id),
                Ok(None) => {}
                Err(StoreError::Refused(_) | StoreError::RedemptionClosed(_)) => {}
                Err(e) => panic!("unexpected failure: {e:?}"),
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    /// Whatever mix of earning, spending, redeeming, settling and expiring arrives, in
    /// whatever grouping, every balance stays at or above zero and equals
    /// what the user's ledger sums to, on every backend.
    #[test]
    fn any_interleaving_keeps_the_ledger_and_the_balances_in_step(
        steps in proptest::collection::vec(step(), 1..40),
        width in 1..8usize,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            for (name, store, _place) in backends("any_interleaving_keeps_the_ledger_and_the_balances_in_step").await {
                store.save_reward(reward("cheap", 10, Some(4)), true).await.unwrap();
                store.save_reward(reward("dear", 45, None), true).await.unwrap();
                run_history(&store, &steps, width).await;
                for u in 0..3 {
                    let user = format!("u{u}");
                    let (total, _) = balance(&store, &user).await;
                    assert!(total >= Points::ZERO, "{name}");
                    let page = store.ledger(&uid(&user), 100, None).await.unwrap();
                    let sum: i64 = page.entries.iter().map(|e| e.amount.milli()).sum();
                    assert_eq!(Points::from_milli(sum), total, "{name}: {user}");
                    if let Some(newest) = page.entries.first() {
                        assert_eq!(newest.balance_after, total, "{name}: {user}");
                    }
                }
                assert_verified(name, &store).await;
            }
        });
    }
}

#[tokio::test]
async fn points_expire_oldest_first_once_and_never_touch_lifetime() {
    let expiry = Expiry { days: 30 };
    let rules = Rules {
        expiry: Some(expiry),
        ..Rules::default()
    };
    for (name, store, _place) in backends_with(
        "points_expire_oldest_first_once_and_never_touch_lifetime",
        rules,
    )
    .await
    {
        let u1 = uid("u1");
        store
            .record_event(event("evt_a", "u1", Category::FINANCE, 5000, T0))
            .await
            .unwrap(); // 10 points on day 0
        store
            .record_event(event("evt_b", "u1", Category::FINANCE, 2500, T0 + 20 * DAY))
            .await
            .unwrap(); // 5 points on day 20
        let mut s = spend("spd_1", "u1", 3);
        s.created_at_ms = T0 + 25 * DAY;
        store.move_points(s).await.unwrap(); // takes 3 of the day-0 points

        // Day 31: the day-0 points still held (7) expire; the day-20 ones stay.
        let now = T0 + 31 * DAY;
        let cutoff = expiry.cutoff_ms(now);
        assert_eq!(
            store.credited_since(&u1, cutoff).await.unwrap(),
            Points::whole(5),
            "{name}"
        );
        assert_eq!(
            store
                .users_where(UserFilter::Holding, None, 10)
                .await
                .unwrap(),
            vec!["u1".to_owned()],
            "{name}"
        );
        assert_eq!(
            store.expire(&u1, cutoff, now).await.unwrap(),
            Points::whole(7),
            "{name}"
        );
        assert_eq!(
            store.expire(&u1, cutoff, now).await.unwrap(),
            Points::ZERO,
            "{name}: once"
        );
        assert_eq!(
            balance(&store, "u1").await,
            (Points::whole(5), Points::whole(15)),
            "{name}"
        );
        let newest = &store.ledger(&u1, 1, None).await.unwrap().entries[0];
        assert_eq!(newest.kind, LedgerKind::Expiry, "{name}");
        assert_eq!(newest.amount, Points::whole(-7), "{name}");
        assert!(
            newest.reference.starts_with("expiry/"),
            "{name}: {}",
            newest.reference
        );

        // Day 51: the day-20 points go too.
        let later = T0 + 51 * DAY;
        assert_eq!(
            store
                .expire(&u1, expiry.cutoff_ms(later), later)
                .await
                .unwrap(),
            Points::whole(5),
            "{name}"
        );
        assert_eq!(
            balance(&store, "u1").await,
            (Points::ZERO, Points::whole(15)),
            "{name}"
        );
        assert!(
            store
                .users_where(UserFilter::Holding, None, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert_verified(name, &store).await;
    }
}

#[tokio::test]
async fn points_past_their_day_cannot_be_spent_even_before_the_sweep() {
    let expiry = Expiry { days: 30 };
    let rules = Rules {
        expiry: Some(expiry),
        ..Rules::default()
    };
    for (name, store, _place) in backends_with(
        "points_past_their_day_cannot_be_spent_even_before_the_sweep",
        rules,
    )
    .await
    {
        store
            .save_reward(reward("mug", 4, None), true)
            .await
            .unwrap();
        earn(&store, "u1", 10).await; // day 0
        let mut s = spend("spd_1", "u1", 5);
        s.created_at_ms = T0 + 31 * DAY;
        match store.move_points(s).await {
            Err(StoreError::Refused(Refusal::InsufficientPoints { balance, .. })) => {
                assert_eq!(balance, Points::ZERO, "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
        let mut r = redeem("red_1", "mug", "u1");
        r.created_at_ms = T0 + 31 * DAY;
        assert!(
            matches!(
                store.redeem(r).await,
                Err(StoreError::Refused(Refusal::InsufficientPoints { .. }))
            ),
            "{name}"
        );
        assert_eq!(
            balance(&store, "u1").await,
            (Points::ZERO, Points::whole(10)),
            "{name}"
        );
        let kinds: Vec<_> = store
            .ledger(&uid("u1"), 10, None)
            .await
            .unwrap()
            .entries
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![LedgerKind::Expiry, LedgerKind::Event],
            "{name}: expired once"
        );
        assert_verified(name, &store).await;
    }
}
