//! The tenant list on every backend: added, listed oldest first, unique by
//! name.

use gamify_store::StoreError;
use gamify_store::tenants::Tenant;

mod common;
use common::{T0, backends};

#[tokio::test]
async fn tenants_are_added_listed_and_unique() {
    for (name, store, _place) in backends("gamify-store tenants").await {
        assert_eq!(store.tenants().await.unwrap(), [], "{name}: none at first");
        let acme = Tenant {
            name: "acme".into(),
            created_at_ms: T0,
        };
        let beta = Tenant {
            name: "beta".into(),
            created_at_ms: T0 + 1,
        };
        store.add_tenant(beta.clone()).await.unwrap();
        store.add_tenant(acme.clone()).await.unwrap();
        let err = store
            .add_tenant(Tenant {
                created_at_ms: T0 + 2,
                ..acme.clone()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::AlreadyExists("tenant")),
            "{name}: {err:?}"
        );
        assert_eq!(store.tenants().await.unwrap(), [acme, beta], "{name}");
    }
}
