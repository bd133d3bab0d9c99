//! The typed client (`gamify-client`) against the real binary: every call
//! it offers answers with the server's JSON types, errors come back as the
//! API's error body, and the brief's four integrations run as examples
//! against the live server.

use std::path::PathBuf;
use std::process::Command;

use gamify_client::{
    AdjustmentRequest, Board, Client, EventRequest, KeyRequest, RewardRequest, SpendRequest,
    SubscriptionRequest,
};

mod common;
use common::start_gamify;

const ADMIN_TOKEN: &str = "client-test-admin-token-01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_speaks_the_whole_api_and_the_examples_run_live() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GAMIFY_DATA_DIR", dir.path().display().to_string()),
        ("GAMIFY_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
    ];
    let (mut server, base, _) = start_gamify(&["serve"], &env, "warn,gamify=info");
    let admin = Client::new(&base).unwrap().with_api_key(ADMIN_TOKEN);
    // The app's own key records and reads; only the admin key administers.
    let app_key = admin
        .create_key(&KeyRequest {
            name: "the app".into(),
            scopes: vec!["ingest".into(), "read".into()],
        })
        .await
        .unwrap();
    assert_eq!(admin.keys().await.unwrap()[0].id, app_key.key.id);
    let gamify = Client::new(&base).unwrap().with_api_key(&app_key.secret);
    let anonymous = Client::new(&base).unwrap();
    let refused = anonymous.balance("anna").await.unwrap_err();
    assert_eq!(refused.code(), Some("unauthorized"));

    // Events, with a retry by key.
    let event = EventRequest::new("anna", "finance", "paid_invoice", 60.0);
    let first = gamify.record_event(&event, Some("inv-1")).await.unwrap();
    assert!(!first.replayed);
    assert_eq!(first.body.points, 120.0);
    assert_eq!(first.body.level, 2);
    let again = gamify.record_event(&event, Some("inv-1")).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.body.id, first.body.id);
    gamify
        .record_event(&EventRequest::new("anna", "health", "run", 2.0), None)
        .await
        .unwrap();
    let wallet = gamify.balance("anna").await.unwrap();
    assert_eq!(wallet.lifetime_points, 122.4);
    assert_eq!(wallet.achievements, ["first_step", "points_100"]);
    let stats = gamify.stats("anna").await.unwrap();
    assert_eq!(stats.total_events, 2);
    let page = gamify.events("anna", Some(1), None).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let older = gamify
        .events("anna", Some(1), page.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(older.items[0].id, first.body.id);
    assert_eq!(gamify.achievements().await.unwrap().len(), 7);

    // A refusal is the API's error body.
    let bad = gamify
        .record_event(&EventRequest::new("anna", "astrology", "x", 1.0), None)
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("validation_failed"));

    // Leaderboards.
    gamify
        .record_event(
            &EventRequest::new("bertta", "learning", "lesson", 1.0),
            None,
        )
        .await
        .unwrap();
    let top = gamify
        .leaderboard(&Board::default(), Some(1), None)
        .await
        .unwrap();
    assert_eq!(top.items[0].user_id, "anna");
    assert!(top.next_cursor.is_some());
    let standing = gamify
        .standing(
            "bertta",
            &Board::period("day").category("learning"),
            Some(2),
        )
        .await
        .unwrap();
    assert_eq!(standing.rank, Some(1));
    gamify.set_privacy("bertta", true).await.unwrap();

    // The economy: spend, a refusal, rewards, a redemption, the ledger.
    let spend = SpendRequest {
        user_id: "anna".into(),
        points: 20.0,
        reason: "coffee".into(),
        metadata: None,
    };
    let spent = gamify.spend(&spend, Some("spend-1")).await.unwrap();
    assert_eq!(spent.body.total_points, 102.4);
    let too_much = SpendRequest {
        points: 1_000.0,
        ..spend.clone()
    };
    let refused = gamify.spend(&too_much, None).await.unwrap_err();
    assert_eq!(refused.code(), Some("insufficient_points"));
    let reward: RewardRequest = serde_json::from_value(serde_json::json!({
        "id": "mug", "name_fi": "Muki", "name_en": "Mug", "cost": 50.0, "stock": 3
    }))
    .unwrap();
    let no_scope = gamify.create_reward(&reward).await.unwrap_err();
    assert_eq!(no_scope.code(), Some("forbidden"));
    admin.create_reward(&reward).await.unwrap();
    let offer = gamify.rewards(Some("anna")).await.unwrap();
    assert_eq!(offer[0].affordable, Some(true));
    let redeemed = gamify.redeem("mug", "anna", Some("r-1")).await.unwrap();
    assert_eq!(redeemed.body.status, "pending");
    assert_eq!(gamify.redemptions("anna").await.unwrap().len(), 1);
    let adjustment: AdjustmentRequest = serde_json::from_value(serde_json::json!({
        "user_id": "anna", "points": 5.0, "reason": "goodwill"
    }))
    .unwrap();
    admin.adjust(&adjustment, Some("adj-1")).await.unwrap();
    let ledger = gamify.ledger("anna", Some(100), None).await.unwrap();
    assert_eq!(ledger.items[0].kind, "adjustment");
    assert_eq!(gamify.balance("anna").await.unwrap().total_points, 57.4);

    // Webhooks and erasure (admin).
    let created = admin
        .subscribe(&SubscriptionRequest {
            url: "http://127.0.0.1:9/hook".into(),
            events: vec!["level.up".into()],
            description: None,
        })
        .await
        .unwrap();
    assert!(created.secret.starts_with("whsec_"));
    assert_eq!(admin.webhooks().await.unwrap().len(), 1);
    assert!(
        admin
            .deliveries(&created.subscription.id, None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    admin
        .delete_webhook(&created.subscription.id)
        .await
        .unwrap();
    // The rules: replaced, refused with the line of a mistake, read back by
    // version, and put back (a third version) before the examples run.
    let brief = admin.rules().await.unwrap();
    assert_eq!(brief.version, 1);
    let custom = admin
        .replace_rules("[categories]\nfinance = 2.5\ncustom_category = 1.2\n")
        .await
        .unwrap();
    assert_eq!(custom.version, 2);
    let scored = gamify
        .record_event(
            &EventRequest::new("anna", "custom_category", "x", 10.0),
            None,
        )
        .await
        .unwrap();
    assert_eq!((scored.body.points, scored.body.rules_version), (12.0, 2));
    let categories = gamify.categories().await.unwrap();
    assert_eq!(categories[1].name, "custom_category");
    let refused = admin
        .replace_rules("[categories]\nfinance = 0\n")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("validation_failed"));
    assert!(
        refused.to_string().contains("line 2, column 11"),
        "{refused}"
    );
    assert_eq!(admin.rule_versions().await.unwrap().versions.len(), 2);
    assert_eq!(admin.rule_version(1).await.unwrap().toml, brief.toml);
    let back = admin.replace_rules(&brief.toml).await.unwrap();
    assert_eq!((back.version, back.source.as_str()), (3, "built-in"));

    // A tenant: made by the operator, its key reaches only its data, and a
    // client naming the tenant is refused with a key of another.
    let acme = admin.create_tenant("acme").await.unwrap();
    assert_eq!(acme.admin_key.key.scopes, ["ingest", "read", "admin"]);
    let names: Vec<String> = admin
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["default", "acme"]);
    let acme_client = Client::new(&base)
        .unwrap()
        .with_api_key(&acme.admin_key.secret)
        .with_tenant("acme");
    assert_eq!(
        acme_client.balance("anna").await.unwrap().lifetime_points,
        0.0
    );
    let mixed_up = Client::new(&base)
        .unwrap()
        .with_api_key(&app_key.secret)
        .with_tenant("acme");
    assert_eq!(
        mixed_up.balance("anna").await.unwrap_err().code(),
        Some("forbidden")
    );

    let erased = admin.erase_user("bertta").await.unwrap();
    assert_eq!(erased.removed.events, 1);

    // The brief's four integrations, against this server.
    let examples = examples_dir();
    for name in [
        "live_receipt_scan",
        "live_invoice_payment",
        "live_task_completion",
        "live_lesson",
    ] {
        let path = examples.join(name);
        if !path.exists() {
            println!(
                "SKIPPED example {name}: {} is not built (cargo test --workspace builds it)",
                path.display()
            );
            continue;
        }
        let out = Command::new(&path)
            .env("GAMIFY_URL", &base)
            .env("GAMIFY_API_KEY", &app_key.secret)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("points"),
            "{name} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Where cargo puts this profile's examples: beside this test's `deps`.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("examples")
}
