//! Rule versions on every backend: version 1 is the brief's rules; a change
//! adds the next version (the same rules add nothing); an event is scored
//! with, and keeps, the version it names, also when replayed; several
//! PostgreSQL nodes number their changes without a clash and see each
//! other's.

use std::path::Path;
use std::sync::Arc;

use gamify_core::{Category, Points, RuleSet, Rules, UserId};
use gamify_store::postgres::scratch::{ScratchSchema, test_database};
use gamify_store::postgres::{Migrations, PgStore};
use gamify_store::sqlite::{SqliteStore, derived_path};
use gamify_store::{NewEvent, Store};

mod common;
use common::{DAY, T0, backends, event};

/// The brief's rules with finance at 3.0 and a `chess` category at 0.5.
fn changed() -> RuleSet {
    let mut rules = RuleSet::default();
    rules.categories[0].1 = 3000;
    rules
        .categories
        .push((Category::named("chess").unwrap(), 500));
    rules
}

fn scored_with(mut e: NewEvent, version: u32) -> NewEvent {
    e.rules_version = version;
    e
}

#[tokio::test]
async fn a_change_is_a_new_version_and_events_keep_the_one_they_were_scored_with() {
    for (name, store, _place) in backends("gamify-store rules").await {
        let book = store.rule_book();
        let first = book.current();
        assert_eq!(
            (first.version, first.created_at_ms),
            (1, 0),
            "{name}: version 1 is built in"
        );
        assert_eq!(*first.rules, RuleSet::default(), "{name}");
        let same = store.add_rules(RuleSet::default(), T0).await.unwrap();
        assert_eq!(same.version, 1, "{name}: the same rules add nothing");

        let v1 = store
            .record_event(event("evt_a", "u1", Category::FINANCE, 10_000, T0))
            .await
            .unwrap();
        let second = store.add_rules(changed(), T0 + 1).await.unwrap();
        assert_eq!(
            (second.version, second.created_at_ms),
            (2, T0 + 1),
            "{name}"
        );
        assert_eq!(book.current().version, 2, "{name}: the shared book follows");
        assert_eq!(
            store.add_rules(changed(), T0 + 2).await.unwrap().version,
            2,
            "{name}"
        );
        let chess = Category::named("chess").unwrap();
        let v2 = store
            .record_event(scored_with(
                event("evt_b", "u1", Category::FINANCE, 10_000, T0 + DAY),
                2,
            ))
            .await
            .unwrap();
        store
            .record_event(scored_with(
                event("evt_c", "u1", chess, 10_000, T0 + DAY),
                2,
            ))
            .await
            .unwrap();
        assert_eq!(v1.event.points, Points::whole(20), "{name}");
        assert_eq!(v2.event.points, Points::whole(30), "{name}");
        assert_eq!(v2.event.weight_milli, 3000, "{name}");
        assert_eq!(v2.event.rules_version, 2, "{name}");

        let page = store
            .events(&UserId::parse("u1").unwrap(), 10, None)
            .await
            .unwrap();
        let versions: Vec<(&str, u32)> = page
            .events
            .iter()
            .map(|e| (e.id.as_str(), e.rules_version))
            .collect();
        assert_eq!(
            versions,
            [("evt_c", 2), ("evt_b", 2), ("evt_a", 1)],
            "{name}: read back with their versions (newest first; at one time, last recorded first)"
        );
        let user = store
            .user(&UserId::parse("u1").unwrap())
            .await
            .unwrap()
            .unwrap();
        // 20 (v1) + 30 + 5 (v2); two days make no streak bonus.
        assert_eq!(user.state.lifetime, Points::whole(55), "{name}");
        assert!(
            user.state.categories.iter().any(|c| c.category == chess),
            "{name}: {:?}",
            user.state.categories
        );
        // Reverting to the brief's rules is a change too: version 3.
        let back = store.add_rules(RuleSet::default(), T0 + 3).await.unwrap();
        assert_eq!(back.version, 3, "{name}");
        assert_eq!(book.all().len(), 3, "{name}");
    }
}

fn remove_derived(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = derived_path(path).as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

#[tokio::test]
async fn the_embedded_store_replays_each_event_with_its_own_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    let chess = Category::named("chess").unwrap();
    let before = {
        let store = SqliteStore::open(&path, Rules::default()).unwrap();
        store
            .record_event(event("evt_a", "u1", Category::FINANCE, 10_000, T0))
            .await
            .unwrap();
        store.add_rules(changed(), T0).await.unwrap();
        for (i, category) in [Category::FINANCE, chess].into_iter().enumerate() {
            store
                .record_event(scored_with(
                    event(&format!("evt_{i}"), "u1", category, 10_000, T0 + DAY),
                    2,
                ))
                .await
                .unwrap();
        }
        store
            .user(&UserId::parse("u1").unwrap())
            .await
            .unwrap()
            .unwrap()
    };
    // Rebuilt from the log alone: the replay must give each event the
    // points it was acknowledged with (the store refuses to open if not).
    remove_derived(&path);
    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    assert_eq!(store.rule_book().current().version, 2);
    let after = store
        .user(&UserId::parse("u1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.state, before.state);
    assert_eq!(after.state.lifetime, Points::whole(55));
}

#[tokio::test]
async fn postgres_nodes_number_their_changes_apart_and_see_each_others() {
    let Some(url) = test_database("postgres_nodes_number_their_changes_apart").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let settings = schema.settings();
    let connect = || PgStore::connect(&settings, Rules::default(), Migrations::Apply);
    let (a, b) = (
        Arc::new(connect().await.unwrap()),
        Arc::new(connect().await.unwrap()),
    );
    assert_eq!(b.rule_book().all().len(), 1, "one version 1 for both");

    a.add_rules(changed(), T0).await.unwrap();
    assert_eq!(b.rule_book().current().version, 1, "not yet refreshed");
    b.refresh_rules().await.unwrap();
    assert_eq!(b.rule_book().current().version, 2);
    assert_eq!(*b.rule_book().current().rules, changed());

    // Two nodes changing the rules at once: two versions, never one number twice.
    let one = RuleSet {
        backfill_days: 7,
        ..RuleSet::default()
    };
    let two = RuleSet {
        backfill_days: 8,
        ..RuleSet::default()
    };
    let (x, y) = tokio::join!(a.add_rules(one, T0 + 1), b.add_rules(two, T0 + 1));
    let mut numbers = [x.unwrap().version, y.unwrap().version];
    numbers.sort_unstable();
    assert_eq!(numbers, [3, 4]);
    a.refresh_rules().await.unwrap();
    b.refresh_rules().await.unwrap();
    assert_eq!(a.rule_book().all(), b.rule_book().all());
}
