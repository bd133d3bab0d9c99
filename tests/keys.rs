//! API keys with the real binary: `gamify serve` refuses a non-loopback
//! address while no key exists (unless `--insecure-no-auth`) and warns on
//! loopback; `gamify keys create | list | revoke` make and revoke keys that
//! a server then honours; two PostgreSQL nodes agree on a revocation within
//! a second.

use std::time::{Duration, Instant};

use gamify_store::postgres::scratch::{ScratchSchema, test_database};
use serde_json::Value;

mod common;
use common::{json_of, run_gamify, run_gamify_apart, start_gamify};

/// Warnings, and the "listening" line the tests wait for.
const LOG: &str = "warn,gamify=info";

#[test]
fn serve_refuses_an_open_api_beyond_loopback_unless_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let data = ("GAMIFY_DATA_DIR", dir.path().display().to_string());
    let everywhere = ("GAMIFY_ADDR", "0.0.0.0:0".to_owned());
    let (ok, out) = run_gamify(&["serve"], &[data.clone(), everywhere.clone()]);
    assert!(!ok, "served an open API on every address: {out}");
    assert!(
        out.contains("refusing to serve on 0.0.0.0:0 without an API key"),
        "{out}"
    );
    assert!(out.contains("--insecure-no-auth"), "{out}");

    let (mut open, _, log) = start_gamify(
        &["serve", "--insecure-no-auth"],
        &[data.clone(), everywhere.clone()],
        LOG,
    );
    assert!(
        log.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("no API key exists")),
        "{log:?}"
    );
    open.kill().unwrap();
    open.wait().unwrap();

    let key = ("GAMIFY_API_KEY", "serve-test-key-0123456789".to_owned());
    let (mut keyed, _, log) = start_gamify(&["serve"], &[data, everywhere, key], LOG);
    assert!(
        !log.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("no API key")),
        "{log:?}"
    );
    keyed.kill().unwrap();
    keyed.wait().unwrap();
}

#[tokio::test]
async fn keys_made_on_the_command_line_are_honoured_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data = ("GAMIFY_DATA_DIR", dir.path().display().to_string());
    // Answers are read from stdout alone: a warning on stderr cannot spoil them.
    let (ok, out, err) = run_gamify_apart(
        &[
            "keys",
            "create",
            "--name",
            "lessons app",
            "--scope",
            "ingest",
            "--scope",
            "read",
        ],
        std::slice::from_ref(&data),
    );
    assert!(ok, "{out}{err}");
    let made: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(made["scopes"], serde_json::json!(["ingest", "read"]));
    let (secret, id) = (
        made["secret"].as_str().unwrap(),
        made["id"].as_str().unwrap(),
    );
    let (ok, out) = run_gamify(
        &["keys", "create", "--name", "x", "--scope", "root"],
        std::slice::from_ref(&data),
    );
    assert!(!ok && out.contains("unknown scope \"root\""), "{out}");

    // The key closed the API: a server started now wants it.
    let (mut server, base, _) = start_gamify(&["serve"], std::slice::from_ref(&data), LOG);
    let client = reqwest::Client::new();
    let balance = format!("{base}/api/v2/gamify/balance/someone");
    let anonymous = client.get(&balance).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let keyed = client
        .get(&balance)
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);
    let admin = client
        .get(format!("{base}/api/v2/gamify/admin/keys"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 403, "an ingest+read key is no admin key");
    server.kill().unwrap();
    server.wait().unwrap();

    let (ok, out) = run_gamify(&["keys", "revoke", id], std::slice::from_ref(&data));
    assert!(ok, "{out}");
    let (ok, out, err) = run_gamify_apart(&["keys", "list"], std::slice::from_ref(&data));
    assert!(ok, "{out}{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert!(list[0]["revoked_at"].is_string(), "{list}");
    assert!(
        !out.contains(secret) && !err.contains(secret),
        "the list never shows a secret"
    );

    let (mut server, base, _) = start_gamify(&["serve"], &[data], LOG);
    let refused = client
        .get(format!("{base}/api/v2/gamify/balance/someone"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Two `gamify serve` processes on one PostgreSQL database: a key made on
/// one is honoured by the other within a second, and once revoked on one,
/// refused by the other within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_postgres_node_is_refused_by_the_other_within_a_second() {
    let Some(url) = test_database("keys across PostgreSQL nodes").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let admin_key = "two-node-admin-key-0123456789";
    let env = common::postgres_node_env(&url, &schema, admin_key);
    let (mut one, one_base, _) = start_gamify(&["serve", "--migrate"], &env, LOG);
    let (mut other, other_base, _) = start_gamify(&["serve", "--migrate"], &env, LOG);
    let client = reqwest::Client::new();
    let made: Value = json_of(
        client
            .post(format!("{one_base}/api/v2/gamify/admin/keys"))
            .bearer_auth(admin_key)
            .json(&serde_json::json!({"name": "reader", "scopes": ["read"]})),
    )
    .await;
    let secret = made["secret"].as_str().unwrap().to_owned();
    let status_on = |base: &str| {
        client
            .get(format!("{base}/api/v2/gamify/balance/someone"))
            .bearer_auth(&secret)
            .send()
    };
    let waited = |started: Instant| started.elapsed() < Duration::from_millis(2500);
    let started = Instant::now();
    while status_on(&other_base).await.unwrap().status() != 200 {
        assert!(waited(started), "the other node never honoured the new key");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let revoked = client
        .post(format!(
            "{one_base}/api/v2/gamify/admin/keys/{}/revoke",
            made["id"].as_str().unwrap()
        ))
        .bearer_auth(admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        status_on(&one_base).await.unwrap().status(),
        401,
        "at once here"
    );
    let started = Instant::now();
    while status_on(&other_base).await.unwrap().status() != 401 {
        assert!(
            waited(started),
            "the other node still honours a revoked key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in [&mut one, &mut other] {
        node.kill().unwrap();
        node.wait().unwrap();
    }
}
