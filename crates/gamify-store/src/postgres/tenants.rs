//! The tenant list in the default tenant's schema, which every node reads.

use sqlx::{PgConnection, Row};

use super::{classify, classify_unique};
use crate::StoreError;
use crate::tenants::Tenant;

/// Every tenant but the default one, oldest first.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<Tenant>, StoreError> {
    let rows = sqlx::query("SELECT name, created_at FROM tenants ORDER BY created_at, name")
        .fetch_all(conn)
        .await
        .map_err(classify)?;
    rows.iter()
        .map(|r| {
            Ok(Tenant {
                name: r.try_get("name").map_err(classify)?,
                created_at_ms: r.try_get("created_at").map_err(classify)?,
            })
        })
        .collect()
}

/// Adds a tenant; [`StoreError::AlreadyExists`] if the name is taken (by
/// this node or another).
pub async fn add(conn: &mut PgConnection, tenant: &Tenant) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO tenants (name, created_at) VALUES ($1, $2)")
        .bind(&tenant.name)
        .bind(tenant.created_at_ms)
        .execute(conn)
        .await
        .map_err(classify_unique("tenant"))?;
    Ok(())
}
