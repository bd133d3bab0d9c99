//! Rules files with the real binary: `gamify rules check` names each
//! mistake's line; `gamify serve` with `GAMIFY_RULES_FILE` scores with the
//! file's rules (a new version, kept across restarts, none added when the
//! file is unchanged); `gamify rules show` prints any version; a change
//! made on one PostgreSQL node reaches another within a second.

use std::time::{Duration, Instant};

use gamify_store::postgres::scratch::{ScratchSchema, test_database};
use serde_json::{Value, json};

mod common;
use common::{json_of, run_gamify, start_gamify};

const LOG: &str = "warn,gamify=info";
const KEY: &str = "rules-test-key-0123456789";

const GOOD: &str = "[categories]\nfinance = 2.5\ncustom_category = 1.2\n";

#[test]
fn rules_check_accepts_a_good_file_and_names_each_mistakes_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, GOOD).unwrap();
    let (ok, out) = run_gamify(&["rules", "check", good.to_str().unwrap()], &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("valid rules file (2 categories, 7 achievements)"),
        "{out}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[categories]\nfinance = -1\n\n[streak]\nfirst_bonus_dya = 3\n",
    )
    .unwrap();
    let (ok, out) = run_gamify(&["rules", "check", bad.to_str().unwrap()], &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("bad.toml: line 5, column 1:"), "{out}");
    assert!(out.contains("first_bonus_dya"), "{out}");
    assert!(out.contains("has 1 mistake(s)"), "{out}");

    let (ok, out) = run_gamify(&["rules", "check", "/nonexistent/rules.toml"], &[]);
    assert!(
        !ok && out.contains("cannot read /nonexistent/rules.toml"),
        "{out}"
    );
}

#[tokio::test]
async fn serve_scores_with_the_rules_file_and_keeps_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.toml");
    std::fs::write(&file, GOOD).unwrap();
    let env = [
        ("GAMIFY_DATA_DIR", dir.path().display().to_string()),
        ("GAMIFY_API_KEY", KEY.to_owned()),
        ("GAMIFY_RULES_FILE", file.display().to_string()),
    ];
    let client = common::keyed_client(KEY, std::time::Duration::from_secs(10));
    for start in 0..2 {
        let (mut server, base, _) = start_gamify(&["serve"], &env, LOG);
        let rules: Value =
            common::get_json(&client, format!("{base}/api/v2/gamify/admin/rules")).await;
        assert_eq!(
            rules["version"], 2,
            "start {start}: the file is version 2, once"
        );
        let recorded: Value = json_of(client.post(format!("{base}/api/v2/gamify/event")).json(
            &json!({"user_id": "u1", "category": "custom_category", "action": "x", "value": 10.0}),
        ))
        .await;
        assert_eq!(recorded["points"], 12.0, "{recorded}");
        assert_eq!(recorded["rules_version"], 2);
        server.kill().unwrap();
        server.wait().unwrap();
    }

    // A file with a mistake stops the start, with its line.
    std::fs::write(&file, "[categories]\nfinance = \"high\"\n").unwrap();
    let (ok, out) = run_gamify(&["serve"], &env);
    assert!(!ok, "{out}");
    assert!(
        out.contains("not a valid rules file") && out.contains("line 2"),
        "{out}"
    );

    let data = &env[..1];
    let (ok, out) = run_gamify(&["rules", "show", "--version", "1"], data);
    assert!(ok, "{out}");
    assert!(
        out.starts_with("# Rules version 1") && out.contains("social = 0.8"),
        "{out}"
    );
    let (ok, out) = run_gamify(&["rules", "show"], data);
    assert!(ok && out.contains("custom_category = 1.2"), "{out}");
}

#[tokio::test]
async fn a_change_on_one_postgres_node_reaches_the_other_within_a_second() {
    let Some(url) = test_database("rules across PostgreSQL nodes").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let env = common::postgres_node_env(&url, &schema, KEY);
    let (mut one, one_base, _) = start_gamify(&["serve", "--migrate"], &env, LOG);
    let (mut other, other_base, _) = start_gamify(&["serve", "--migrate"], &env, LOG);
    let client = common::keyed_client(KEY, Duration::from_secs(10));

    let changed = client
        .put(format!("{one_base}/api/v2/gamify/admin/rules"))
        .header("content-type", "application/toml")
        .body(GOOD)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let changed_at = Instant::now();
    let event =
        json!({"user_id": "u1", "category": "custom_category", "action": "x", "value": 10.0});
    let recorded = loop {
        let response = client
            .post(format!("{other_base}/api/v2/gamify/event"))
            .json(&event)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break response.json::<Value>().await.unwrap();
        }
        assert_eq!(
            response.status(),
            422,
            "refused only while the other node has v1"
        );
        assert!(
            changed_at.elapsed() < Duration::from_millis(2500),
            "the other node still scores with version 1 after {:?}",
            changed_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (
            recorded["points"].clone(),
            recorded["rules_version"].clone()
        ),
        (json!(12.0), json!(2))
    );
    let rules: Value =
        common::get_json(&client, format!("{other_base}/api/v2/gamify/admin/rules")).await;
    assert_eq!(rules["version"], 2);
    for node in [&mut one, &mut other] {
        node.kill().unwrap();
        node.wait().unwrap();
    }
}
