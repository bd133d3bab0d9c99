//! `gamify verify`: silent success on consistent data, and a non-zero exit
//! naming what differs once the data is tampered with.

use gamify::wallet::SpendRequest;
use gamify::{Engine, EventRequest, Rules, Storage};

mod common;
use common::run_gamify;

fn verify(path: &std::path::Path) -> (bool, String) {
    run_gamify(
        &["verify"],
        &[("DATABASE_URL", format!("sqlite://{}", path.display()))],
    )
}

#[tokio::test]
async fn verify_passes_on_consistent_data_and_fails_naming_the_user_whose_balance_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    {
        let engine = Engine::open(&Storage::Sqlite(path.clone()), Rules::default())
            .await
            .unwrap();
        for (user, value) in [("alice", 10.0), ("bob", 3.0)] {
            engine
                .record_event(EventRequest::new(user, "finance", "paid", value), None)
                .await
                .unwrap();
        }
        let spend = SpendRequest {
            user_id: "alice".into(),
            points: 5.0,
            reason: "mug".into(),
            metadata: None,
        };
        engine.spend(spend, None).await.unwrap();
    }
    let (ok, out) = verify(&path);
    assert!(ok, "{out}");
    assert!(out.contains("every invariant holds"), "{out}");

    // A balance changed behind the engine's back: it no longer equals what
    // the user's ledger sums to.
    let derived = gamify_store::sqlite::derived_path(&path);
    let conn = rusqlite::Connection::open(&derived).unwrap();
    conn.execute(
        "UPDATE users SET total_milli = 1 WHERE user_id = 'alice'",
        [],
    )
    .unwrap();
    drop(conn);
    let (ok, out) = verify(&path);
    assert!(!ok, "a breach must fail: {out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("user alice: balance 1/1000")),
        "{out}"
    );
    assert!(!out.contains("user bob"), "{out}");

    // A ledger entry forged in the log: replaying it at open does not give
    // the balance it claims, and the store refuses to open, naming her.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO ledger (user_id, kind, amount_milli, balance_after_milli, lifetime_after_milli, reference, created_at)
         VALUES ('alice', 'adjustment', 7000, 7000, 7000, 'adj_forged', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    std::fs::remove_file(&derived).unwrap();
    let (ok, out) = verify(&path);
    assert!(!ok, "a forged entry must fail: {out}");
    assert!(out.contains("user alice"), "{out}");
}

#[tokio::test]
async fn verify_names_wrong_achievements_orphan_rows_broken_indexes_and_erased_users_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    {
        let engine = Engine::open(&Storage::Sqlite(path.clone()), Rules::default())
            .await
            .unwrap();
        for (user, value) in [("alice", 10.0), ("bob", 3.0), ("carol", 1.0)] {
            engine
                .record_event(EventRequest::new(user, "finance", "paid", value), None)
                .await
                .unwrap();
        }
        let spend = SpendRequest {
            user_id: "alice".into(),
            points: 5.0,
            reason: "mug".into(),
            metadata: None,
        };
        engine.spend(spend, None).await.unwrap();
    }
    let (ok, out) = run_gamify(
        &["erase", "carol"],
        &[("DATABASE_URL", format!("sqlite://{}", path.display()))],
    );
    assert!(ok, "{out}");
    let (ok, out) = verify(&path);
    assert!(ok, "{out}");

    let derived = rusqlite::Connection::open(gamify_store::sqlite::derived_path(&path)).unwrap();
    // Bob never had a 30-day streak.
    derived
        .execute(
            "UPDATE users SET achievements = 'first_step,streak_30' WHERE user_id = 'bob'",
            [],
        )
        .unwrap();
    // An index entry for an event that does not exist.
    derived
        .execute("INSERT INTO user_events VALUES ('bob', 0, 999999)", [])
        .unwrap();
    // Carol, erased, back with a row.
    derived
        .execute(
            "INSERT INTO users SELECT 'carol', 0, 0, best_streak, streak_runs, '', 0, '', NULL, 1,
                    created_at, updated_at FROM users WHERE user_id = 'bob'",
            [],
        )
        .unwrap();
    drop(derived);
    // Alice's spend loses its movement row: her ledger entry names nothing.
    let log = rusqlite::Connection::open(&path).unwrap();
    log.execute("DELETE FROM movements WHERE user_id = 'alice'", [])
        .unwrap();
    // And her leaderboard opt-out is back too.
    log.execute("INSERT INTO hidden_users VALUES ('carol', 0)", [])
        .unwrap();
    drop(log);

    let (ok, out) = verify(&path);
    assert!(!ok, "{out}");
    for expected in [
        "user bob: streak_30 is unlocked, but the history does not reach it",
        "user bob: the event index lists seq 999999",
        "user carol: was erased, but has a row",
        "user carol: was erased, but their leaderboard opt-out remains",
        "user carol: has a row but no ledger entry",
        "of kind spend names spd_",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(!out.contains("user alice: balance"), "{out}");
}

#[test]
fn a_database_directory_that_is_a_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, b"not a directory").unwrap();
    let (ok, out) = verify(&file.join("gamify.db"));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("{} is not a directory", file.display())),
        "{out}"
    );
}
