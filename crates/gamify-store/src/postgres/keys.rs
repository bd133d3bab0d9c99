//! API keys in PostgreSQL: one small table that every node reads.

use sqlx::{PgConnection, Row};

use super::{classify, classify_unique};
use crate::StoreError;
use crate::keys::{ApiKey, Scopes};

/// Every key, revoked ones too, oldest first.
pub async fn all(conn: &mut PgConnection) -> Result<Vec<ApiKey>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, name, scopes, hash, created_at, revoked_at FROM api_keys
         ORDER BY created_at, id",
    )
    .fetch_all(conn)
    .await
    .map_err(classify)?;
    rows.iter()
        .map(|r| {
            Ok(ApiKey {
                id: r.try_get("id").map_err(classify)?,
                name: r.try_get("name").map_err(classify)?,
                scopes: Scopes::decode(r.try_get("scopes").map_err(classify)?)?,
                hash: r.try_get("hash").map_err(classify)?,
                created_at_ms: r.try_get("created_at").map_err(classify)?,
                revoked_at_ms: r.try_get("revoked_at").map_err(classify)?,
            })
        })
        .collect()
}

/// Adds a key.
pub async fn create(conn: &mut PgConnection, key: &ApiKey) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, name, scopes, hash, created_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.id)
    .bind(&key.name)
    .bind(key.scopes.encode())
    .bind(&key.hash)
    .bind(key.created_at_ms)
    .bind(key.revoked_at_ms)
    .execute(conn)
    .await
    .map_err(classify_unique("key"))?;
    Ok(())
}

/// Revokes a key; revoking it again changes nothing.
pub async fn revoke(conn: &mut PgConnection, id: &str, at_ms: i64) -> Result<(), StoreError> {
    let found =
        sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
            .bind(id)
            .bind(at_ms)
            .execute(conn)
            .await
            .map_err(classify)?;
    if found.rows_affected() == 0 {
        return Err(StoreError::NotFound("key"));
    }
    Ok(())
}
