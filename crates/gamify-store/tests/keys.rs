//! API keys on every backend: made, listed with their scopes, unique by id
//! and by secret, revoked (the first revocation stands; the row is kept).

use gamify_store::StoreError;
use gamify_store::keys::{ApiKey, Scope, Scopes, secret_hash};

mod common;
use common::{T0, backends};

fn key(id: &str, secret: &str, scopes: &[Scope]) -> ApiKey {
    ApiKey {
        id: id.into(),
        name: format!("{id} for tests"),
        scopes: scopes.iter().copied().collect(),
        hash: secret_hash(secret.as_bytes()),
        created_at_ms: T0,
        revoked_at_ms: None,
    }
}

#[tokio::test]
async fn keys_are_made_listed_unique_and_revoked() {
    for (name, store, _place) in backends("gamify-store keys").await {
        let ingest = key("key_1", "secret-one", &[Scope::Ingest]);
        let admin = ApiKey {
            created_at_ms: T0 + 1,
            ..key("key_2", "secret-two", &[Scope::Read, Scope::Admin])
        };
        store.create_key(ingest.clone()).await.unwrap();
        store.create_key(admin.clone()).await.unwrap();
        assert_eq!(
            store.keys().await.unwrap(),
            [ingest.clone(), admin.clone()],
            "{name}"
        );

        let same_id = key("key_1", "other", &[Scope::Read]);
        let same_secret = key("key_3", "secret-one", &[Scope::Read]);
        for taken in [same_id, same_secret] {
            let err = store.create_key(taken).await.unwrap_err();
            assert!(
                matches!(err, StoreError::AlreadyExists("key")),
                "{name}: {err:?}"
            );
        }

        store.revoke_key("key_1", T0 + 5).await.unwrap();
        store.revoke_key("key_1", T0 + 9).await.unwrap();
        let err = store.revoke_key("key_9", T0).await.unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound("key")),
            "{name}: {err:?}"
        );
        let listed = store.keys().await.unwrap();
        assert_eq!(
            listed[0].revoked_at_ms,
            Some(T0 + 5),
            "{name}: the first revocation stands"
        );
        assert_eq!(listed[1], admin, "{name}");
        assert_eq!(
            listed[1].scopes,
            Scopes::default().with(Scope::Read).with(Scope::Admin)
        );
    }
}
