//! `gamify import`: an export loads into an empty database of either backend
//! and is proven equal to its source; the two-command move from the embedded
//! default to PostgreSQL, and back.

use std::path::Path;

use gamify::wallet::{RedeemRequest, RewardRequest, SpendRequest};
use gamify::{Engine, EventRequest, Rules, Storage};
use gamify_core::SPECIAL_REWARD;
use gamify_store::RedemptionStatus;
use gamify_store::postgres::scratch::{ScratchSchema, test_database};

mod common;
use common::run_gamify;

fn gamify(args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    run_gamify(args, env)
}

fn sqlite(path: &Path) -> Vec<(&'static str, String)> {
    vec![("DATABASE_URL", format!("sqlite://{}", path.display()))]
}

/// A history with every kind of row: events with keys and metadata, bonuses,
/// a granted reward, spends, an adjustment, redemptions pending, fulfilled
/// and cancelled.
async fn history(path: &Path) {
    let engine = Engine::open(&Storage::Sqlite(path.to_owned()), Rules::default())
        .await
        .unwrap();
    let reward = |id: &str, cost: f64| RewardRequest {
        id: Some(id.into()),
        name_fi: "Palkinto".into(),
        name_en: "Reward".into(),
        description: "d".into(),
        cost,
        stock: Some(10),
        per_user_limit: None,
        available_from: None,
        available_until: None,
        active: true,
    };
    engine
        .create_reward(reward(SPECIAL_REWARD, 500.0))
        .await
        .unwrap();
    engine.create_reward(reward("mug", 5.0)).await.unwrap();
    for i in 0..300 {
        // Half-way the rules change: the versions move with the events.
        if i == 150 {
            let (doc, new) = engine
                .replace_rules("[categories]\nfinance = 2.5\nhealth = 1.2\ncustom = 1.1\n")
                .await
                .unwrap();
            assert!(new && doc.version == 2);
        }
        let categories = if i < 150 {
            ["finance", "health"]
        } else {
            ["finance", "custom"]
        };
        let mut e = EventRequest::new(format!("u{}", i % 7), categories[i % 2], "did", 1.5);
        if i % 3 == 0 {
            e = e.metadata(serde_json::json!({"b": i, "a": "x\u{0}y"}));
        }
        engine
            .record_event(e, Some(&format!("key-{i}")))
            .await
            .unwrap();
    }
    // Over 1000 lifetime points: points_1000 grants the special reward.
    engine
        .record_event(EventRequest::new("rich", "finance", "big", 500.0), None)
        .await
        .unwrap();
    for u in 0..3 {
        let spend = SpendRequest {
            user_id: format!("u{u}"),
            points: 2.0,
            reason: "coffee".into(),
            metadata: None,
        };
        engine
            .spend(spend, Some(&format!("spend-{u}")))
            .await
            .unwrap();
    }
    let mut ids = Vec::new();
    for u in [0, 1, 2, 3] {
        let (r, _) = engine
            .redeem(
                "mug",
                RedeemRequest {
                    user_id: format!("u{u}"),
                },
                None,
            )
            .await
            .unwrap();
        ids.push(r.id);
    }
    engine
        .settle(&ids[0], RedemptionStatus::Fulfilled)
        .await
        .unwrap();
    engine
        .settle(&ids[1], RedemptionStatus::Cancelled)
        .await
        .unwrap();
    // u4 opted out of the leaderboards: the choice moves with the data.
    engine
        .set_privacy(
            "u4",
            gamify::boards::PrivacyRequest {
                hidden_from_leaderboards: true,
            },
        )
        .await
        .unwrap();
    // u3 is erased after receiving a mug: an erasure record and a unit that
    // stays taken travel with the data.
    engine
        .settle(&ids[3], RedemptionStatus::Fulfilled)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_export_moves_from_sqlite_to_postgres_and_back_unchanged() {
    let Some(url) = test_database("an_export_moves_from_sqlite_to_postgres_and_back").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.db");
    history(&source).await;
    let (ok, out) = gamify(&["erase", "u3"], &sqlite(&source));
    assert!(ok && out.contains("\"erasure_id\": \"era_"), "{out}");

    // 1. Out of SQLite.
    let first = dir.path().join("first.ndjson");
    let (ok, out) = gamify(
        &["export", "--out", first.to_str().unwrap()],
        &sqlite(&source),
    );
    assert!(ok, "{out}");

    // 2. Into PostgreSQL (an empty schema; import migrates it).
    let schema = ScratchSchema::create(&url).await.unwrap();
    let pg = vec![
        ("DATABASE_URL", url.clone()),
        ("GAMIFY_PG_SCHEMA", schema.name().to_owned()),
    ];
    let (ok, out) = gamify(&["import", first.to_str().unwrap()], &pg);
    assert!(ok, "{out}");
    assert!(out.contains("equals the file"), "{out}");

    // Importing again into a database that holds data is refused.
    let (ok, out) = gamify(&["import", first.to_str().unwrap()], &pg);
    assert!(!ok && out.contains("not empty"), "{out}");

    // 3. Back out of PostgreSQL, and into a fresh SQLite file.
    let second = dir.path().join("second.ndjson");
    let (ok, out) = gamify(&["export", "--out", second.to_str().unwrap()], &pg);
    assert!(ok, "{out}");
    let back = dir.path().join("back.db");
    let (ok, out) = gamify(&["import", second.to_str().unwrap()], &sqlite(&back));
    assert!(ok, "{out}");

    // The two exports hold the same data, line for line.
    let data = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let (a, b) = (data(&first), data(&second));
    assert!(a.len() > 500, "{} lines", a.len());
    assert_eq!(a, b);
    assert!(
        a.iter()
            .any(|l| l["type"] == "redemption" && l["granted_by"].is_string()),
        "the history has a granted reward"
    );

    // And the moved store keeps answering as the source did: a retried key
    // replays, a spend continues from the same balance.
    let engine = Engine::open(&Storage::Sqlite(back.clone()), Rules::default())
        .await
        .unwrap();
    let (event, replayed) = engine
        .record_event(
            EventRequest::new("u0", "finance", "did", 1.5)
                .metadata(serde_json::json!({"b": 0, "a": "x\u{0}y"})),
            Some("key-0"),
        )
        .await
        .unwrap();
    assert!(replayed);
    assert_eq!(event.user_id, "u0");
    // The erasure moved too: u3 stays erased, and the mug's stock balances.
    assert!(a.iter().any(|l| l["type"] == "erasure"));
    assert!(
        a.iter()
            .any(|l| l["type"] == "hidden_user" && l["user_id"] == "u4")
    );
    assert!(
        a.iter()
            .any(|l| l["type"] == "reward" && l["id"] == "mug" && l["erased_units"] == 1)
    );
    let refused = engine
        .record_event(EventRequest::new("u3", "finance", "did", 1.5), None)
        .await;
    assert!(
        matches!(refused, Err(gamify::EngineError::Erased)),
        "{refused:?}"
    );
    assert!(engine.verify().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_cut_short_or_foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.db");
    history(&source).await;
    let file = dir.path().join("all.ndjson");
    let (ok, out) = gamify(
        &["export", "--out", file.to_str().unwrap()],
        &sqlite(&source),
    );
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(&file).unwrap();
    let cut: Vec<&str> = text.lines().collect();
    let short = dir.path().join("short.ndjson");
    std::fs::write(&short, cut[..cut.len() - 1].join("\n")).unwrap();
    let (ok, out) = gamify(
        &["import", short.to_str().unwrap()],
        &sqlite(&dir.path().join("a.db")),
    );
    assert!(!ok && out.contains("cut short"), "{out}");
    // An empty file, and one that is not there: refused, and a missing
    // file leaves no database behind.
    let empty = dir.path().join("empty.ndjson");
    std::fs::write(&empty, "").unwrap();
    let (ok, out) = gamify(
        &["import", empty.to_str().unwrap()],
        &sqlite(&dir.path().join("a.db")),
    );
    assert!(!ok && out.contains("the file is empty"), "{out}");
    let missing = dir.path().join("missing.ndjson");
    let elsewhere = dir.path().join("elsewhere.db");
    let (ok, out) = gamify(&["import", missing.to_str().unwrap()], &sqlite(&elsewhere));
    assert!(!ok && out.contains("cannot read"), "{out}");
    assert!(
        !elsewhere.exists(),
        "no database made for a file that is not there"
    );
    // A line damaged half-way through: refused just the same.
    let mut damaged = cut.clone();
    let middle = damaged.len() / 2;
    damaged[middle] = &damaged[middle][..damaged[middle].len() / 2];
    let broken = dir.path().join("broken.ndjson");
    std::fs::write(&broken, damaged.join("\n")).unwrap();
    let (ok, out) = gamify(
        &["import", broken.to_str().unwrap()],
        &sqlite(&dir.path().join("a.db")),
    );
    assert!(
        !ok && out.contains(&format!("line {}", middle + 1)),
        "{out}"
    );
    // A NUL character in a text field (PostgreSQL cannot store one; the
    // API never makes one) is refused at its line in the check pass.
    let mut with_nul: Vec<String> = cut.iter().map(|l| l.to_string()).collect();
    let at = with_nul
        .iter()
        .position(|l| l.contains("\"type\":\"event\""))
        .unwrap();
    with_nul[at] = with_nul[at].replacen("\"action\":\"", "\"action\":\"\\u0000", 1);
    let nul = dir.path().join("nul.ndjson");
    std::fs::write(&nul, with_nul.join("\n")).unwrap();
    let (ok, out) = gamify(
        &["import", nul.to_str().unwrap()],
        &sqlite(&dir.path().join("a.db")),
    );
    assert!(
        !ok && out.contains(&format!("line {}", at + 1)) && out.contains("NUL"),
        "{out}"
    );
    // All were refused before anything was written: the same target
    // takes the whole file now, without being emptied first.
    let (ok, out) = gamify(
        &["import", file.to_str().unwrap()],
        &sqlite(&dir.path().join("a.db")),
    );
    assert!(ok, "{out}");

    let foreign = dir.path().join("foreign.ndjson");
    std::fs::write(&foreign, "{\"hello\": 1}\n").unwrap();
    let (ok, out) = gamify(
        &["import", foreign.to_str().unwrap()],
        &sqlite(&dir.path().join("b.db")),
    );
    assert!(!ok && out.contains("line 1"), "{out}");
}
