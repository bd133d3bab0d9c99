//! `gamify backup` while the server takes writes, and `gamify restore`: the
//! copy is consistent, holds everything acknowledged before it started, and
//! a server started on the restored files serves it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

mod common;
use common::{run_gamify, start_gamify};

fn gamify(args: &[&str], data_dir: &Path) -> (bool, String) {
    run_gamify(args, &[("GAMIFY_DATA_DIR", data_dir.display().to_string())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_load_restores_to_a_consistent_store_with_every_earlier_write() {
    let live = tempfile::tempdir().unwrap();
    let env = [("GAMIFY_DATA_DIR", live.path().display().to_string())];
    let (mut server, base, _) = start_gamify(&["serve"], &env, "info");
    let client = reqwest::Client::new();
    let acked: Arc<Mutex<Vec<(String, Value, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (client, base, acked, stop) =
            (client.clone(), base.clone(), acked.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("b-{w}-{i}");
                let body = json!({"user_id": format!("u{}", i % 10), "category": "learning",
                                  "action": "read", "value": 2.0});
                let r = client
                    .post(format!("{base}/api/v2/gamify/event"))
                    .header("Idempotency-Key", &key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let id = r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                acked.lock().unwrap().push((key, body, id));
                i += 1;
            }
        }));
    }
    while acked.lock().unwrap().len() < 400 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before: Vec<_> = acked.lock().unwrap().clone();
    let copy = tempfile::tempdir().unwrap();
    let file = copy.path().join("gamify-backup.db");
    let (ok, out) = tokio::task::spawn_blocking({
        let (file, live) = (file.clone(), live.path().to_owned());
        move || gamify(&["backup", file.to_str().unwrap()], &live)
    })
    .await
    .unwrap();
    assert!(ok, "{out}");
    assert!(out.contains("backup written"), "{out}");
    let during = acked.lock().unwrap().len();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert!(during > before.len(), "writes went on while the backup ran");
    server.kill().unwrap();
    server.wait().unwrap();

    // Restore into a fresh place, check it, serve it.
    let restored = tempfile::tempdir().unwrap();
    let (ok, out) = gamify(&["restore", file.to_str().unwrap()], restored.path());
    assert!(ok, "{out}");
    let (ok, out) = gamify(&["verify"], restored.path());
    assert!(ok, "the copy is consistent: {out}");
    let env = [("GAMIFY_DATA_DIR", restored.path().display().to_string())];
    let (mut server, base, _) = start_gamify(&["serve"], &env, "info");
    for (key, body, id) in &before {
        let r = client
            .post(format!("{base}/api/v2/gamify/event"))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()
                .get("idempotent-replayed")
                .map(|v| v.to_str().unwrap()),
            Some("true"),
            "{key} missing"
        );
        assert_eq!(r.json::<Value>().await.unwrap()["id"], id.as_str());
    }
    // Restoring over files a running server holds is refused.
    let (ok, out) = gamify(&["restore", file.to_str().unwrap()], restored.path());
    assert!(!ok && out.contains("another gamify process"), "{out}");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_backup_never_overwrites_a_file_and_restore_refuses_what_is_not_a_gamify_log() {
    let live = tempfile::tempdir().unwrap();
    let taken = live.path().join("taken");
    std::fs::write(&taken, b"precious").unwrap();
    let (ok, out) = gamify(&["backup", taken.to_str().unwrap()], live.path());
    assert!(!ok && out.contains("exists already"), "{out}");
    assert_eq!(std::fs::read(&taken).unwrap(), b"precious");
    let nowhere = live.path().join("no-such-folder").join("backup.db");
    let (ok, out) = gamify(&["backup", nowhere.to_str().unwrap()], live.path());
    assert!(!ok && out.contains("is not a directory"), "{out}");
    let (ok, out) = gamify(&["restore", taken.to_str().unwrap()], live.path());
    assert!(!ok, "{out}");
    assert!(
        !live.path().join("gamify.db").exists(),
        "nothing put in place"
    );

    // An SQLite file that is not a log, with a schema version a log could
    // have (as the derived tables' file beside a log has), is refused
    // before the log in place is touched.
    let (ok, out) = gamify(&["migrate"], live.path());
    assert!(ok, "{out}");
    let derived = live.path().join("derived-copy.db");
    let other = rusqlite::Connection::open(&derived).unwrap();
    other
        .execute_batch("CREATE TABLE users (user_id TEXT PRIMARY KEY); PRAGMA user_version = 2;")
        .unwrap();
    drop(other);
    let log_before = std::fs::read(live.path().join("gamify.db")).unwrap();
    let (ok, out) = gamify(&["restore", derived.to_str().unwrap()], live.path());
    assert!(!ok, "{out}");
    assert!(out.contains("is not a gamify log"), "{out}");
    assert_eq!(
        std::fs::read(live.path().join("gamify.db")).unwrap(),
        log_before,
        "the log in place is untouched"
    );
    let (ok, out) = gamify(&["verify"], live.path());
    assert!(ok, "{out}");
}
