//! `gamify export`: the NDJSON file and the brief's two JSON files, from the
//! command line.

use gamify::{Engine, EventRequest, Rules, Storage};
use serde_json::Value;

mod common;
use common::{run_gamify, run_gamify_apart};

fn gamify(args: &[&str], db: &std::path::Path) -> (bool, String) {
    run_gamify(
        args,
        &[("DATABASE_URL", format!("sqlite://{}", db.display()))],
    )
}

/// A SQLite database at `db` with `events` events of `value` in `category`,
/// spread over `users` users (`user_0`, `user_1`, …).
async fn fill(db: &std::path::Path, events: usize, users: usize, category: &str, value: f64) {
    let engine = Engine::open(&Storage::Sqlite(db.to_owned()), Rules::default())
        .await
        .unwrap();
    for i in 0..events {
        let request = EventRequest::new(format!("user_{}", i % users), category, "did", value);
        engine.record_event(request, None).await.unwrap();
    }
}

#[tokio::test]
async fn export_writes_ndjson_and_the_briefs_events_and_balances_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gamify.db");
    fill(&db, 2500, 30, "learning", 1.0).await;
    let ndjson = dir.path().join("all.ndjson");
    let (ok, out) = gamify(&["export", "--out", ndjson.to_str().unwrap()], &db);
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(&ndjson).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.last().unwrap()["counts"]["event"],
        2500,
        "pages of 1000 join up"
    );
    assert_eq!(lines.last().unwrap()["counts"]["user"], 30);
    // An export never overwrites.
    let (ok, out) = gamify(&["export", "--out", ndjson.to_str().unwrap()], &db);
    assert!(!ok && out.contains("must not exist"), "{out}");

    let brief = dir.path().join("brief");
    let (ok, out) = gamify(
        &[
            "export",
            "--brief",
            brief.to_str().unwrap(),
            "--user",
            "user_7",
        ],
        &db,
    );
    assert!(ok, "{out}");
    let events: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(brief.join("gamify_events.json")).unwrap())
            .unwrap();
    let balances: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(brief.join("gamify_balances.json")).unwrap())
            .unwrap();
    assert_eq!(events.len(), 2500 / 30 + 1, "user_7's events");
    assert!(
        events
            .iter()
            .all(|e| e["user_id"] == "user_7" && e["points"] == 1.5)
    );
    assert_eq!(balances.len(), 1);
    assert_eq!(balances[0]["user_id"], "user_7");
    let earned = events.len() as f64 * 1.5 + bonuses(&events);
    assert_eq!(balances[0]["lifetime_points"].as_f64().unwrap(), earned);
    // Nor do the brief's files: with one of them in the way, neither is
    // written.
    std::fs::remove_file(brief.join("gamify_events.json")).unwrap();
    let (ok, out) = gamify(&["export", "--brief", brief.to_str().unwrap()], &db);
    assert!(!ok && out.contains("exists already"), "{out}");
    assert!(!brief.join("gamify_events.json").exists());
    let kept: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(brief.join("gamify_balances.json")).unwrap())
            .unwrap();
    assert_eq!(kept, balances, "the file in the way is untouched");
}

#[tokio::test]
async fn an_export_to_standard_output_holds_only_the_export_and_imports_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gamify.db");
    fill(&db, 40, 7, "health", 2.0).await;
    // At the default log level, which logs the export's summary: the log
    // goes to stderr, so `gamify export > file` is a file to import.
    let url = |db: &std::path::Path| vec![("DATABASE_URL", format!("sqlite://{}", db.display()))];
    let (ok, stdout, stderr) = run_gamify_apart(&["export"], &url(&db));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("exported"),
        "the summary is logged: {stderr}"
    );
    let types: Vec<String> = stdout
        .lines()
        .map(|l| {
            let line: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            line["type"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("export"));
    assert_eq!(types.last().map(String::as_str), Some("end"));
    let file = dir.path().join("all.ndjson");
    std::fs::write(&file, &stdout).unwrap();
    let copy = dir.path().join("copy.db");
    let (ok, stdout, stderr) = run_gamify_apart(&["import", file.to_str().unwrap()], &url(&copy));
    assert!(ok, "{stdout}{stderr}");
}

/// The achievement bonuses paid on these events.
fn bonuses(events: &[Value]) -> f64 {
    events
        .iter()
        .map(|e| e["bonus_points"].as_f64().unwrap())
        .sum()
}
