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
