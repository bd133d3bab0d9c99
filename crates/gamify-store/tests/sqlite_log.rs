//! The SQLite store acknowledges an event once it is in the log (`events`,
//! `ledger` in `gamify.db`) and brings the derived tables (`users`,
//! `user_events` in `gamify.db-derived`) up to date later. These tests check
//! that nothing a user sees depends on when that happens: event listings
//! across the boundary, a full replay of the log when the derived file is
//! lost, and refusal to open on a log that does not replay to what was
//! acknowledged; and that erasure finds every webhook delivery of a user
//! through the derived `user_deliveries` across an upgrade, a rebuild and
//! pruning.

use std::path::Path;

use gamify_core::{Category, Points, Rules, UserId};
use gamify_store::sqlite::{SqliteStore, derived_path};
use gamify_store::webhook::Topic;
use gamify_store::{Attempt, DeliveryStatus, Store, StoreError, Subscription, UserSnapshot};

mod common;
use common::{DAY, T0, event, first_events};

/// Deletes the derived tables' file, as a user rebuilding them would.
fn remove_derived(path: &Path) {
    let derived = derived_path(path);
    assert!(derived.exists(), "{}", derived.display());
    for suffix in ["", "-wal", "-shm"] {
        let mut name = derived.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

fn uid(user: &str) -> UserId {
    UserId::parse(user).unwrap()
}

async fn all_ids(store: &SqliteStore, user: &str, page: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let got = store
            .events(&uid(user), page, cursor.as_deref())
            .await
            .unwrap();
        ids.extend(got.events.iter().map(|e| e.id.clone()));
        match got.next_cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

/// Users u0..u4, each with events on several days (streaks, achievements,
/// bonuses), recorded through a store that is closed at the end.
async fn record_history(path: &Path) -> Vec<(String, UserSnapshot)> {
    let store = SqliteStore::open(path, Rules::default()).unwrap();
    let mut n = 0;
    for day in 0..8 {
        for u in 0..5 {
            for _ in 0..=(u % 3) {
                n += 1;
                store
                    .record_event(event(
                        &format!("e{n:04}"),
                        &format!("u{u}"),
                        Category::BRIEF[n % 5],
                        7_000 + (n as i64 % 11) * 1_000,
                        T0 + day * DAY + n as i64,
                    ))
                    .await
                    .unwrap();
            }
        }
    }
    let mut states = Vec::new();
    for u in 0..5 {
        let user = format!("u{u}");
        let state = store.user(&uid(&user)).await.unwrap().unwrap();
        states.push((user, (*state).clone()));
    }
    states
}

#[tokio::test]
async fn listings_merge_events_already_indexed_with_those_not_yet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    {
        // Closing the store brings the index up to date with these three.
        let store = SqliteStore::open(&path, Rules::default()).unwrap();
        for (i, day) in [0, 2, 4].into_iter().enumerate() {
            store
                .record_event(event(
                    &format!("old{i}"),
                    "u",
                    Category::HEALTH,
                    1000,
                    T0 + day * DAY,
                ))
                .await
                .unwrap();
        }
    }
    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    // These are read straight after their commit, before the writer's next
    // materialization is due: a late event (day 1), a newest (day 5), and one
    // between the old ones (day 3).
    for (id, day) in [("new_late", 1), ("new_top", 5), ("new_mid", 3)] {
        store
            .record_event(event(id, "u", Category::HEALTH, 1000, T0 + day * DAY))
            .await
            .unwrap();
    }
    let expected = ["new_top", "old2", "new_mid", "old1", "new_late", "old0"];
    for page in [1, 2, 4, 10] {
        assert_eq!(
            all_ids(&store, "u", page).await,
            expected,
            "page size {page}"
        );
    }
}

/// Every ledger entry of the user, newest first, in pages of `page`.
async fn all_ledger(store: &SqliteStore, user: &str, page: u32) -> Vec<(i64, i64)> {
    let mut entries = Vec::new();
    let mut cursor = None;
    loop {
        let got = store.ledger(&uid(user), page, cursor).await.unwrap();
        entries.extend(got.entries.iter().map(|e| (e.seq, e.amount.milli())));
        match got.next_cursor {
            Some(next) => cursor = Some(next),
            None => return entries,
        }
    }
}

/// The events and ledger of u, v and w, in pages of 1, 7 and 100.
async fn every_listing(store: &SqliteStore) -> Vec<(Vec<String>, Vec<(i64, i64)>)> {
    let mut listings = Vec::new();
    for page in [1, 7, 100] {
        for user in ["u", "v", "w"] {
            listings.push((
                all_ids(store, user, page).await,
                all_ledger(store, user, page).await,
            ));
        }
    }
    listings
}

#[tokio::test]
async fn listings_with_many_rows_not_yet_indexed_equal_those_after() {
    // More unindexed rows of one user than a listing looks up one by one
    // (it then scans from the first), another user's between them, some
    // backdated: the listings straight after the writes equal those once
    // the derived tables hold everything.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    for i in 0..150i64 {
        let day = (i * 7) % 20;
        for user in ["u", "v"] {
            store
                .record_event(event(
                    &format!("{user}{i:03}"),
                    user,
                    Category::HEALTH,
                    1000 + i,
                    T0 + day * DAY + i,
                ))
                .await
                .unwrap();
        }
    }
    store
        .record_event(event("w0", "w", Category::HEALTH, 1000, T0))
        .await
        .unwrap();
    let before = every_listing(&store).await;
    drop(store);
    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    let after = every_listing(&store).await;
    assert_eq!(before, after);
    assert_eq!(after[0].0.len(), 150);
    assert_eq!(after[2].0, ["w0"]);
}

#[tokio::test]
async fn a_lost_users_table_is_rebuilt_from_the_log_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    let before = record_history(&path).await;
    let listings_before = {
        let store = SqliteStore::open(&path, Rules::default()).unwrap();
        let mut all = Vec::new();
        for (user, _) in &before {
            all.push(all_ids(&store, user, 3).await);
        }
        all
    };

    // The worst a crash could leave: the log, and no derived tables at all.
    remove_derived(&path);

    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    for ((user, state), listing) in before.iter().zip(&listings_before) {
        let rebuilt = store.user(&uid(user)).await.unwrap().unwrap();
        assert_eq!(rebuilt.state, state.state, "{user}");
        assert_eq!(rebuilt.state.categories, state.state.categories, "{user}");
        assert_eq!(rebuilt.event_count, state.event_count, "{user}");
        assert_eq!(rebuilt.version, state.version, "{user}");
        assert_eq!(&all_ids(&store, user, 3).await, listing, "{user}");
    }
    let board = store.leaderboard(10).await.unwrap();
    assert_eq!(board.len(), 5);
    let top = before.iter().map(|(_, s)| s.state.lifetime).max().unwrap();
    assert_eq!(board[0].lifetime, top);
    assert!(top > Points::whole(100), "the history unlocks achievements");
}

#[tokio::test]
async fn a_log_that_does_not_replay_to_what_was_acknowledged_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    record_history(&path).await;
    remove_derived(&path);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE events SET points_milli = points_milli + 1 WHERE id = 'e0007'",
        [],
    )
    .unwrap();
    drop(conn);
    let opened = SqliteStore::open(&path, Rules::default());
    match opened {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("e0007"), "{message}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn derived_tables_from_another_copy_of_the_log_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    record_history(&path).await;
    // A log restored from a backup taken before the last events, beside the
    // newer derived file.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TRIGGER ledger_is_append_only_delete;
         DELETE FROM events WHERE seq > 10;
         DELETE FROM ledger WHERE CASE WHEN instr(reference, '/') > 0
                                       THEN substr(reference, 1, instr(reference, '/') - 1)
                                       ELSE reference END NOT IN (SELECT id FROM events);",
    )
    .unwrap();
    drop(conn);
    match SqliteStore::open(&path, Rules::default()) {
        Err(StoreError::Schema(message)) => {
            assert!(message.contains("delete the derived file"), "{message}")
        }
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    remove_derived(&path);
    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    let total: u64 = {
        let mut n = 0;
        for u in 0..5 {
            n += store
                .user(&uid(&format!("u{u}")))
                .await
                .unwrap()
                .map_or(0, |s| s.event_count);
        }
        n
    };
    assert_eq!(total, 10, "rebuilt from the ten events this log has");
}

#[tokio::test]
async fn a_log_of_schema_8_is_upgraded_with_its_ledger_intact_and_still_guarded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    let before = record_history(&path).await;
    // Put the ledger back as schema 8 had it (the kinds as an IN list) and
    // the file at version 8, as a database written by the previous release.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows = |conn: &rusqlite::Connection| -> Vec<(i64, String, String, i64, i64, String)> {
        let mut statement = conn
            .prepare(
                "SELECT seq, user_id, kind, amount_milli, balance_after_milli, reference \
                 FROM ledger ORDER BY seq",
            )
            .unwrap();
        statement
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let ledger = rows(&conn);
    assert!(ledger.len() > 40, "{} entries", ledger.len());
    conn.execute_batch(
        "BEGIN;
         DROP TRIGGER ledger_is_append_only_update;
         DROP TRIGGER ledger_is_append_only_delete;
         CREATE TABLE ledger_v2 (
             seq INTEGER PRIMARY KEY, user_id TEXT NOT NULL,
             kind TEXT NOT NULL CHECK (kind IN ('event', 'achievement_bonus', 'spend', 'redemption',
                                                'refund', 'expiry', 'adjustment')),
             amount_milli INTEGER NOT NULL,
             balance_after_milli INTEGER NOT NULL CHECK (balance_after_milli >= 0),
             lifetime_after_milli INTEGER NOT NULL, reference TEXT NOT NULL,
             created_at INTEGER NOT NULL, rules_version INTEGER) STRICT;
         INSERT INTO ledger_v2 SELECT * FROM ledger;
         DROP TABLE ledger;
         ALTER TABLE ledger_v2 RENAME TO ledger;
         CREATE TRIGGER ledger_is_append_only_update BEFORE UPDATE ON ledger
         BEGIN SELECT RAISE(ABORT, 'ledger entries are never updated'); END;
         CREATE TRIGGER ledger_is_append_only_delete BEFORE DELETE ON ledger
         WHEN NOT EXISTS (SELECT 1 FROM erasures WHERE erasing_user_id = OLD.user_id)
         BEGIN SELECT RAISE(ABORT, 'ledger entries are never deleted, except by an erasure of their user'); END;
         DROP INDEX webhook_deliveries_by_age;
         PRAGMA user_version = 8;
         COMMIT;",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    for (user, state) in &before {
        let after = store.user(&uid(user)).await.unwrap().unwrap();
        assert_eq!(after.state, state.state, "{user}");
    }
    assert_eq!(
        store.verify().await.unwrap(),
        vec![],
        "verify after the upgrade"
    );
    drop(store);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, gamify_store::sqlite::SCHEMA_VERSION);
    assert_eq!(rows(&conn), ledger, "every entry kept as it was");
    let schema: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'ledger'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!schema.contains(" IN ("), "{schema}");
    // Still append-only, and still only the seven kinds.
    let update = conn.execute("UPDATE ledger SET amount_milli = 0 WHERE seq = 1", []);
    assert!(
        format!("{update:?}").contains("never updated"),
        "{update:?}"
    );
    let odd = conn.execute(
        "INSERT INTO ledger (user_id, kind, amount_milli, balance_after_milli, \
         lifetime_after_milli, reference, created_at) VALUES ('u0', 'gift', 1, 1, 1, 'x', 0)",
        [],
    );
    assert!(format!("{odd:?}").contains("CHECK"), "{odd:?}");
    let fine = conn.execute(
        "INSERT INTO ledger (user_id, kind, amount_milli, balance_after_milli, \
         lifetime_after_milli, reference, created_at) VALUES ('u0', 'adjustment', 1, 1, 1, 'x', 0)",
        [],
    );
    assert_eq!(fine.unwrap(), 1, "a known kind is accepted");
}

/// A subscription to first_step and the like: each user's first event
/// makes one delivery.
fn subscription() -> Subscription {
    Subscription {
        id: "whk_1".into(),
        url: "http://127.0.0.1:9/hook".into(),
        topics: vec![Topic::AchievementUnlocked],
        secret: "whsec_1".into(),
        description: String::new(),
        created_at_ms: T0 - DAY,
    }
}

/// (user, seq) of whk_1's deliveries, oldest first.
async fn deliveries(store: &SqliteStore) -> Vec<(String, i64)> {
    let mut list: Vec<(String, i64)> = store
        .deliveries("whk_1", None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.user_id, d.seq))
        .collect();
    list.sort_by_key(|d| d.1);
    list
}

/// The derived file's delivery index, sorted.
fn delivery_index(path: &Path) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(derived_path(path)).unwrap();
    let mut stmt = conn
        .prepare("SELECT user_id, seq FROM user_deliveries ORDER BY user_id, seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn an_outbox_of_schema_10_is_upgraded_and_erasure_finds_every_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    store.subscribe(subscription()).await.unwrap();
    first_events(&store, &["ann", "bob", "cid"], T0).await;
    let made = deliveries(&store).await;
    assert_eq!(made.len(), 3);
    drop(store);
    // Put both files back as the previous release wrote them: the outbox
    // without AUTOINCREMENT and with its per-user index, the derived file
    // without the delivery index.
    let log = rusqlite::Connection::open(&path).unwrap();
    log.execute_batch(
        "BEGIN;
         CREATE TABLE old (
             seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
             subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id),
             topic TEXT NOT NULL, user_id TEXT NOT NULL, data TEXT NOT NULL,
             created_at INTEGER NOT NULL,
             status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
             attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
             next_attempt_at INTEGER NOT NULL, last_attempt_at INTEGER, last_status INTEGER,
             last_error TEXT) STRICT;
         INSERT INTO old SELECT * FROM webhook_deliveries;
         DROP TABLE webhook_deliveries;
         ALTER TABLE old RENAME TO webhook_deliveries;
         CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
         CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, seq DESC);
         CREATE INDEX webhook_deliveries_by_user ON webhook_deliveries (user_id);
         CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (created_at);
         PRAGMA user_version = 10;
         COMMIT;",
    )
    .unwrap();
    drop(log);
    let derived = rusqlite::Connection::open(derived_path(&path)).unwrap();
    derived
        .execute_batch(
            "DROP TABLE user_deliveries;
             ALTER TABLE materialized DROP COLUMN through_delivery_seq;
             PRAGMA user_version = 2;",
        )
        .unwrap();
    drop(derived);

    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    assert_eq!(
        deliveries(&store).await,
        made,
        "every delivery kept as it was"
    );
    assert_eq!(
        delivery_index(&path),
        made,
        "the upgrade lists every delivery"
    );
    assert_eq!(store.verify().await.unwrap(), vec![]);
    store.erase(&uid("ann"), "era_1", T0 + 1).await.unwrap();
    let left = deliveries(&store).await;
    assert_eq!(left, made[1..].to_vec(), "ann's delivery is gone, no other");
    drop(store);
    assert_eq!(delivery_index(&path), left);
    let log = rusqlite::Connection::open(&path).unwrap();
    let indexes: Vec<String> = log
        .prepare("SELECT name FROM sqlite_schema WHERE tbl_name = 'webhook_deliveries' AND type = 'index'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        !indexes.iter().any(|i| i.contains("by_user")),
        "{indexes:?}"
    );
    drop(log);

    // Lost derived tables list the deliveries again.
    remove_derived(&path);
    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    assert_eq!(store.verify().await.unwrap(), vec![]);
    store.erase(&uid("bob"), "era_2", T0 + 2).await.unwrap();
    assert_eq!(deliveries(&store).await, made[2..].to_vec());
    drop(store);
    assert_eq!(delivery_index(&path), made[2..].to_vec());
}

#[tokio::test]
async fn a_delivery_seq_is_never_handed_out_again_so_erasure_finds_deliveries_made_after_a_prune() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    let store = SqliteStore::open(&path, Rules::default()).unwrap();
    store.subscribe(subscription()).await.unwrap();
    first_events(&store, &["old1", "old2"], T0).await;
    let old = deliveries(&store).await;
    assert_eq!(old.len(), 2);
    let list = store.deliveries("whk_1", None, None, 10).await.unwrap();
    store
        .delivery_attempted(
            list.iter()
                .map(|d| Attempt {
                    id: d.id.clone(),
                    at_ms: T0 + 1,
                    status_code: Some(204),
                    error: None,
                    status: DeliveryStatus::Delivered,
                    next_attempt_at_ms: T0 + 1,
                })
                .collect(),
        )
        .await
        .unwrap();
    // The newest deliveries pruned: without AUTOINCREMENT their seqs would
    // be handed out again, at or below the derived index's mark.
    assert_eq!(store.prune_deliveries(T0 + DAY, 100).await.unwrap(), 2);
    first_events(&store, &["new"], T0 + 2 * DAY).await;
    let now = deliveries(&store).await;
    assert_eq!(now.len(), 1);
    assert!(now[0].1 > old[1].1, "{now:?} after {old:?}");
    assert_eq!(store.verify().await.unwrap(), vec![]);
    store
        .erase(&uid("new"), "era_1", T0 + 2 * DAY + 1)
        .await
        .unwrap();
    assert_eq!(deliveries(&store).await, vec![]);
    drop(store);
    assert_eq!(
        delivery_index(&path),
        vec![],
        "pruned and erased entries gone"
    );
}
