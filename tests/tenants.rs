//! Tenants with the real binary: `gamify tenants create` makes one (its
//! first key printed once); `gamify serve` serves it after a restart, by
//! its key; maintenance commands work on it with `--tenant` and refuse a
//! name that is not a tenant; a tenant made on one PostgreSQL node is
//! served by another within a second, in a schema of its own.

use std::time::{Duration, Instant};

use gamify_store::postgres::scratch::{ScratchSchema, test_database};
use serde_json::{Value, json};

mod common;
use common::{
    keyed_client, run_gamify, run_gamify_apart, start_gamify, start_gamify_with_open_files,
};

const LOG: &str = "warn,gamify=info";
const KEY: &str = "tenants-test-key-0123456789";

fn event(user: &str) -> Value {
    json!({"user_id": user, "category": "finance", "action": "paid_invoice", "value": 2.0})
}

/// Makes tenant `name` with `gamify tenants create`; returns its first
/// admin key's secret. The answer is read from stdout alone, so that a
/// warning on stderr cannot spoil it.
fn create_tenant(name: &str, env: &[(&str, String)]) -> String {
    let (ok, out, err) = run_gamify_apart(&["tenants", "create", name], env);
    assert!(ok, "{out}{err}");
    let made: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    made["admin_key"]["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_tenant_made_with_the_cli_is_served_and_maintained_apart() {
    let dir = tempfile::tempdir().unwrap();
    let data = [
        ("GAMIFY_DATA_DIR", dir.path().display().to_string()),
        ("GAMIFY_API_KEY", KEY.to_owned()),
    ];
    let secret = create_tenant("acme", &data);
    assert!(dir.path().join("tenants/acme/gamify.db").exists());
    let (ok, out) = run_gamify(&["tenants", "create", "acme"], &data);
    assert!(!ok && out.contains("exists already"), "{out}");
    let (ok, out) = run_gamify(&["--tenant", "acmee", "keys", "list"], &data);
    assert!(!ok && out.contains("no tenant named \"acmee\""), "{out}");
    assert!(
        !dir.path().join("tenants/acmee").exists(),
        "a typo made nothing"
    );
    let (ok, out) = run_gamify(&["migrate"], &data);
    assert!(ok, "migrate goes through the tenants too: {out}");
    let (ok, out) = run_gamify(&["--tenant", "acme", "serve"], &data);
    assert!(!ok && out.contains("serve serves every tenant"), "{out}");

    let (mut node, base, _) = start_gamify(&["serve"], &data, LOG);
    let acme = keyed_client(&secret, Duration::from_secs(10));
    let operator = keyed_client(KEY, Duration::from_secs(10));
    for (client, user) in [(&acme, "maija"), (&operator, "pekka")] {
        let response = client
            .post(format!("{base}/api/v2/gamify/event"))
            .json(&event(user))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let seen = common::get_json(&acme, format!("{base}/api/v2/gamify/balance/pekka")).await;
    assert_eq!(seen["lifetime_points"], 0.0, "acme does not see pekka");
    let listed = common::get_json(&operator, format!("{base}/api/v2/gamify/admin/tenants")).await;
    assert_eq!(listed[1]["name"], "acme");
    node.kill().unwrap();
    node.wait().unwrap();

    let (ok, out) = run_gamify(&["--tenant", "acme", "export"], &data);
    assert!(ok, "{out}");
    assert!(
        out.contains("\"maija\"") && !out.contains("\"pekka\""),
        "{out}"
    );
    let (ok, out) = run_gamify(&["export"], &data);
    assert!(
        ok && out.contains("\"pekka\"") && !out.contains("\"maija\""),
        "{out}"
    );
    let (ok, out) = run_gamify(&["--tenant", "acme", "verify"], &data);
    assert!(ok && out.contains("every invariant holds"), "{out}");
    let (ok, out) = run_gamify(&["--tenant", "acme", "keys", "list"], &data);
    assert!(ok && out.contains("first admin key"), "{out}");
    let (ok, out) = run_gamify(&["keys", "list"], &data);
    assert!(ok && !out.contains("first admin key"), "{out}");
}

/// A shell's soft limit on open files (often 1024; 200 here, so that the
/// test stays small) does not stop a start with many tenants, each holding
/// about 32 files on SQLite: `gamify serve` raises it to the hard limit.
#[tokio::test]
async fn a_low_soft_limit_on_open_files_does_not_stop_a_start_with_many_tenants() {
    let hard = std::process::Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .unwrap();
    let hard = String::from_utf8_lossy(&hard.stdout).trim().to_owned();
    if hard.parse::<u64>().is_ok_and(|h| h < 2000) {
        eprintln!("SKIPPED: the hard limit on open files is {hard}; the test needs at least 2000");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = [
        ("GAMIFY_DATA_DIR", dir.path().display().to_string()),
        ("GAMIFY_API_KEY", KEY.to_owned()),
    ];
    let secrets: Vec<String> = (0..10)
        .map(|i| create_tenant(&format!("team{i}"), &data))
        .collect();
    let (mut node, base, log) = start_gamify_with_open_files(&["serve"], &data, LOG, 200);
    let allowed = log
        .iter()
        .find_map(|l| l["open_files"].as_u64())
        .expect("the limit is logged");
    assert!(allowed > 200, "raised: {allowed}");
    let last = keyed_client(&secrets[9], Duration::from_secs(10));
    let response = last
        .post(format!("{base}/api/v2/gamify/event"))
        .json(&event("maija"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the last tenant is served");
    node.kill().unwrap();
    node.wait().unwrap();
}

#[tokio::test]
async fn a_tenant_made_on_one_postgres_node_is_served_by_another_within_a_second() {
    let Some(url) = test_database("tenants across PostgreSQL nodes").await else {
        return;
    };
    let schema = ScratchSchema::create(&url).await.unwrap();
    let env = common::postgres_node_env(&url, &schema, KEY);
    let (mut one, one_base, _) = start_gamify(&["serve", "--migrate"], &env, LOG);
    let (mut other, other_base, _) = start_gamify(&["serve", "--migrate"], &env, LOG);
    let operator = keyed_client(KEY, Duration::from_secs(10));

    let made = operator
        .post(format!("{one_base}/api/v2/gamify/admin/tenants"))
        .json(&json!({"name": "acme"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let made_at = Instant::now();
    let acme = keyed_client(
        made["admin_key"]["secret"].as_str().unwrap(),
        Duration::from_secs(10),
    );
    // The other node learns of the tenant (and its key) within a second.
    loop {
        let response = acme
            .post(format!("{other_base}/api/v2/gamify/event"))
            .json(&event("maija"))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 401, "refused only until it knows acme");
        assert!(
            made_at.elapsed() < Duration::from_millis(2500),
            "the other node does not serve acme after {:?}",
            made_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let balance = common::get_json(&acme, format!("{one_base}/api/v2/gamify/balance/maija")).await;
    assert_eq!(
        balance["lifetime_points"], 4.0,
        "both nodes share acme's data"
    );
    let default =
        common::get_json(&operator, format!("{one_base}/api/v2/gamify/balance/maija")).await;
    assert_eq!(
        default["lifetime_points"], 0.0,
        "the default tenant has no maija"
    );

    // Acme's rows live in its own schema.
    let (ok, out) = run_gamify(&["--tenant", "acme", "export"], &env);
    assert!(ok && out.contains("\"maija\""), "{out}");
    let (ok, out) = run_gamify(&["migrate"], &env);
    assert!(
        ok,
        "migrate with the nodes running, tenants included: {out}"
    );
    let tenant_schema = format!("{}__acme", schema.name());
    assert_eq!(
        events_in(&url, &tenant_schema, "maija").await,
        1,
        "maija's event is in {tenant_schema}"
    );
    for node in [&mut one, &mut other] {
        node.kill().unwrap();
        node.wait().unwrap();
    }
}

/// How many events `user` has in the store in `schema`: the tenant's rows
/// are where its name says.
async fn events_in(url: &str, schema: &str, user: &str) -> u64 {
    let mut settings = gamify_store::postgres::PgSettings::new(url);
    settings.schema = Some(schema.to_owned());
    let store = gamify_store::postgres::PgStore::connect(
        &settings,
        gamify::Rules::default(),
        gamify_store::postgres::Migrations::Check,
    )
    .await
    .unwrap();
    use gamify_store::Store;
    store
        .user(&gamify_core::UserId::parse(user).unwrap())
        .await
        .unwrap()
        .map_or(0, |u| u.event_count)
}
