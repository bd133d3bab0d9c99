//! Erasing a person, on every backend: every row that names them goes,
//! what others share stays consistent, and nothing brings them back.

use std::sync::Arc;

use gamify_core::{Category, Points, Rules, UserId};
use gamify_store::export::{After, ExportFilter, Page, Table};
use gamify_store::sqlite::{SqliteStore, derived_path};
use gamify_store::{
    Idempotency, MovementKind, NewMovement, NewRedemption, RedemptionStatus, RewardDraft, Settle,
    Store, StoreError,
};

mod common;
use common::{T0, backends, event};

fn uid(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

fn key(k: &str) -> Option<Idempotency> {
    Some(Idempotency {
        key: k.into(),
        fingerprint: format!("fp-{k}"),
    })
}

fn reward(id: &str) -> RewardDraft {
    RewardDraft {
        id: id.into(),
        name_fi: "Muki".into(),
        name_en: "Mug".into(),
        description: "A mug".into(),
        cost: Points::whole(10),
        stock: Some(5),
        per_user_limit: None,
        available_from_ms: None,
        available_until_ms: None,
        active: true,
        saved_at_ms: T0,
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

fn spend(id: &str, user: &str) -> NewMovement {
    NewMovement {
        id: id.into(),
        user_id: uid(user),
        kind: MovementKind::Spend,
        amount: Points::whole(-5),
        reason: "coffee".into(),
        metadata: None,
        created_at_ms: T0,
        idempotency: key(&format!("spend-{id}")),
    }
}

/// `user` earns `points` (finance weighs 2.0) with the idempotency key
/// `k-{id}`.
async fn earn(store: &Arc<dyn Store>, id: &str, user: &str, points: i64) {
    let mut e = event(id, user, Category::FINANCE, points * 500, T0);
    e.idempotency = key(&format!("k-{id}"));
    store.record_event(e).await.unwrap();
}

async fn stock(store: &Arc<dyn Store>, id: &str) -> (u32, u32) {
    let r = store.rewards().await.unwrap();
    let r = r.iter().find(|r| r.draft.id == id).unwrap();
    (r.redeemed, r.erased_units)
}

#[tokio::test]
async fn an_erased_user_leaves_no_row_and_others_stay_consistent() {
    for (name, store, _place) in backends("erasure_rows").await {
        store.save_reward(reward("mug"), true).await.unwrap();
        store.save_reward(reward("cap"), true).await.unwrap();
        earn(&store, "evt_a1", "alice", 100).await;
        earn(&store, "evt_a2", "alice", 20).await;
        earn(&store, "evt_b1", "bob", 50).await;
        earn(&store, "evt_c1", "carol", 30).await;
        store.move_points(spend("spd_a", "alice")).await.unwrap();
        // Alice: one mug pending, one cap fulfilled; Bob: one mug pending.
        store
            .redeem(redeem("red_a1", "mug", "alice"))
            .await
            .unwrap();
        store
            .redeem(redeem("red_a2", "cap", "alice"))
            .await
            .unwrap();
        store
            .settle(Settle {
                redemption_id: "red_a2".into(),
                to: RedemptionStatus::Fulfilled,
                at_ms: T0,
            })
            .await
            .unwrap();
        store.redeem(redeem("red_b1", "mug", "bob")).await.unwrap();
        assert_eq!(stock(&store, "mug").await, (2, 0), "{name}");

        let erased = store.erase(&uid("alice"), "era_1", T0 + 1).await.unwrap();
        assert_eq!(
            (erased.events, erased.movements, erased.redemptions),
            (2, 1, 2),
            "{name}"
        );
        // Two events, their achievement bonuses, a spend, two redemptions.
        assert!(erased.ledger_entries >= 5, "{name}: {erased:?}");

        // Nothing of Alice is left to read.
        assert!(store.user(&uid("alice")).await.unwrap().is_none(), "{name}");
        let events = store.events(&uid("alice"), 10, None).await.unwrap();
        assert!(events.events.is_empty(), "{name}");
        let ledger = store.ledger(&uid("alice"), 10, None).await.unwrap();
        assert!(ledger.entries.is_empty(), "{name}");
        let mine = store
            .redemptions(Some(&uid("alice")), None, 10, None)
            .await
            .unwrap();
        assert!(mine.is_empty(), "{name}");
        let board: Vec<String> = store
            .leaderboard(10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| format!("{}:{}", r.rank, r.user_id))
            .collect();
        assert_eq!(board, ["1:bob", "2:carol"], "{name}");
        let only_alice = ExportFilter {
            user: Some(uid("alice")),
            ..ExportFilter::default()
        };
        for table in Table::ALL {
            let page = store
                .export_page(table, After::Start, &only_alice, 10)
                .await
                .unwrap();
            match (table, &page) {
                (Table::Rewards, _) => {}
                (Table::Erasures, Page::Erasures(rows)) => {
                    assert_eq!(rows.len(), 1, "{name}");
                    assert_eq!(rows[0].erasure, erased, "{name}");
                    assert_ne!(rows[0].user_hash, "alice", "{name}");
                }
                _ => assert!(page.is_empty(), "{name}: {table:?} {page:?}"),
            }
        }

        // Her pending mug went back to stock; her fulfilled cap stays taken.
        assert_eq!(stock(&store, "mug").await, (1, 0), "{name}");
        assert_eq!(stock(&store, "cap").await, (1, 1), "{name}");
        let findings = store.verify().await.unwrap();
        assert!(findings.is_empty(), "{name}: {findings:?}");

        // Bob and Carol are untouched.
        let bob = store.user(&uid("bob")).await.unwrap().unwrap();
        assert_eq!(bob.state.lifetime, Points::whole(50), "{name}");
        assert_eq!(bob.state.total, Points::whole(40), "{name}");
    }
}

#[tokio::test]
async fn nothing_brings_an_erased_user_back() {
    for (name, store, _place) in backends("erasure_refuses").await {
        store.save_reward(reward("mug"), true).await.unwrap();
        earn(&store, "evt_a1", "alice", 100).await;
        let first = store.erase(&uid("alice"), "era_1", T0).await.unwrap();

        // A retry of an acknowledged event, with its key: refused, not replayed.
        let mut retry = event("evt_a1_again", "alice", Category::FINANCE, 50_000, T0);
        retry.idempotency = key("k-evt_a1");
        assert!(
            matches!(store.record_event(retry).await, Err(StoreError::Erased)),
            "{name}"
        );
        // A late event, a spend, a redemption, an adjustment.
        let late = event("evt_late", "alice", Category::HEALTH, 1_000, T0 + 5);
        assert!(
            matches!(store.record_event(late).await, Err(StoreError::Erased)),
            "{name}"
        );
        assert!(
            matches!(
                store.move_points(spend("spd_x", "alice")).await,
                Err(StoreError::Erased)
            ),
            "{name}"
        );
        assert!(
            matches!(
                store.redeem(redeem("red_x", "mug", "alice")).await,
                Err(StoreError::Erased)
            ),
            "{name}"
        );
        let mut gift = spend("adj_x", "alice");
        gift.kind = MovementKind::Adjustment;
        gift.amount = Points::whole(10);
        assert!(
            matches!(store.move_points(gift).await, Err(StoreError::Erased)),
            "{name}"
        );
        assert!(store.user(&uid("alice")).await.unwrap().is_none(), "{name}");

        // Erasing again answers with the first record; a stranger is not found.
        let again = store.erase(&uid("alice"), "era_2", T0 + 9).await.unwrap();
        assert_eq!(again, first, "{name}");
        // A read says so too (what a simulation asks before scoring).
        let erasure = store.erasure(&uid("alice")).await.unwrap();
        assert_eq!(erasure, Some(first), "{name}");
        assert_eq!(store.erasure(&uid("bob")).await.unwrap(), None, "{name}");
        assert!(
            matches!(
                store.erase(&uid("nobody"), "era_3", T0).await,
                Err(StoreError::NotFound("user"))
            ),
            "{name}"
        );
        // Other users in the same batch are unaffected.
        earn(&store, "evt_b1", "bob", 10).await;
        let findings = store.verify().await.unwrap();
        assert!(findings.is_empty(), "{name}: {findings:?}");
    }
}

#[tokio::test]
async fn an_event_after_the_newest_rows_were_erased_is_listed_and_counted() {
    // SQLite hands out a deleted newest row's number again: the next event
    // must still be found before and after its derived rows are written.
    for (name, store, _place) in backends("erasure_newest").await {
        earn(&store, "evt_b1", "bob", 10).await;
        earn(&store, "evt_a1", "alice", 10).await;
        earn(&store, "evt_a2", "alice", 10).await;
        store.erase(&uid("alice"), "era_1", T0).await.unwrap();
        earn(&store, "evt_c1", "carol", 10).await;
        let listed = store.events(&uid("carol"), 10, None).await.unwrap();
        assert_eq!(listed.events.len(), 1, "{name}");
        let ledger = store.ledger(&uid("carol"), 10, None).await.unwrap();
        assert_eq!(ledger.entries.len(), 1, "{name}");
        let findings = store.verify().await.unwrap();
        assert!(findings.is_empty(), "{name}: {findings:?}");
        let listed = store.events(&uid("carol"), 10, None).await.unwrap();
        assert_eq!(listed.events.len(), 1, "{name}");
    }
}

#[tokio::test]
async fn writes_racing_an_erasure_either_land_before_it_and_go_or_are_refused() {
    for (name, store, _place) in backends("erasure_race").await {
        earn(&store, "evt_a0", "alice", 10).await;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let e = event(&format!("evt_r{i}"), "alice", Category::LEARNING, 1_000, T0);
                store.record_event(e).await
            }));
        }
        let eraser = {
            let store = store.clone();
            tokio::spawn(async move { store.erase(&uid("alice"), "era_1", T0).await })
        };
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => {}
                Err(StoreError::Erased) => refused += 1,
                Err(e) => panic!("{name}: {e}"),
            }
        }
        let erased = eraser.await.unwrap().unwrap();
        // Every event is either erased with her or was refused.
        assert_eq!(erased.events + refused, 41, "{name}");
        assert!(store.user(&uid("alice")).await.unwrap().is_none(), "{name}");
        let findings = store.verify().await.unwrap();
        assert!(findings.is_empty(), "{name}: {findings:?}");
    }
}

#[tokio::test]
async fn an_erasure_survives_a_restart_and_one_cut_short_is_finished_at_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, Rules::default()).unwrap());
        earn(&store, "evt_a1", "alice", 10).await;
        earn(&store, "evt_b1", "bob", 10).await;
        store.erase(&uid("alice"), "era_1", T0).await.unwrap();
    }
    // As if the process died after the log's transaction and before the
    // derived tables': Bob's derived row is put back under Alice's name,
    // and the record still holds her id.
    {
        let derived = rusqlite::Connection::open(derived_path(&path)).unwrap();
        derived
            .execute(
                "INSERT INTO users SELECT 'alice', total_milli, lifetime_milli, best_streak, streak_runs,
                        achievements, event_count, category_totals, last_event_at, version, created_at,
                        updated_at
                 FROM users WHERE user_id = 'bob'",
                [],
            )
            .unwrap();
        let log = rusqlite::Connection::open(&path).unwrap();
        log.execute("UPDATE erasures SET erasing_user_id = 'alice'", [])
            .unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, Rules::default()).unwrap());
    assert!(store.user(&uid("alice")).await.unwrap().is_none());
    let late = event("evt_late", "alice", Category::HEALTH, 1_000, T0);
    assert!(matches!(
        store.record_event(late).await,
        Err(StoreError::Erased)
    ));
    let findings = store.verify().await.unwrap();
    assert!(findings.is_empty(), "{findings:?}");
    let log = rusqlite::Connection::open(&path).unwrap();
    let kept: Option<String> = log
        .query_row("SELECT erasing_user_id FROM erasures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        kept, None,
        "the plain id is cleared once the erasure is done"
    );
}

#[tokio::test]
async fn the_sqlite_ledger_refuses_deletes_outside_an_erasure_of_that_user() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, Rules::default()).unwrap());
        earn(&store, "evt_b1", "bob", 10).await;
    }
    let log = rusqlite::Connection::open(&path).unwrap();
    let refused = log.execute("DELETE FROM ledger WHERE user_id = 'bob'", []);
    assert!(
        refused
            .unwrap_err()
            .to_string()
            .contains("never deleted, except by an erasure"),
    );
    log.execute(
        "INSERT INTO erasures (id, user_hash, erasing_user_id, events, ledger_entries, movements,
                               redemptions, erased_at)
         VALUES ('era_x', 'h', 'alice', 0, 0, 0, 0, 0)",
        [],
    )
    .unwrap();
    assert!(
        log.execute("DELETE FROM ledger WHERE user_id = 'bob'", [])
            .is_err()
    );
}
