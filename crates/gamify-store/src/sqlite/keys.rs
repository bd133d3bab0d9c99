//! API keys in the log file. The writer thread alone writes them; reads run
//! on the read connections.

use rusqlite::{Connection, params};

use super::{backend, backend_unique};
use crate::StoreError;
use crate::keys::{ApiKey, Scopes};

/// Every key, revoked ones too, oldest first.
pub fn all(conn: &Connection) -> Result<Vec<ApiKey>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, name, scopes, hash, created_at, revoked_at FROM api_keys
             ORDER BY created_at, id",
        )
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, scopes, hash, created_at_ms, revoked_at_ms) = row.map_err(backend)?;
        out.push(ApiKey {
            id,
            name,
            scopes: Scopes::decode(&scopes)?,
            hash,
            created_at_ms,
            revoked_at_ms,
        });
    }
    Ok(out)
}

/// Adds a key.
pub fn create(conn: &Connection, key: &ApiKey) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO api_keys (id, name, scopes, hash, created_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            key.id,
            key.name,
            key.scopes.encode(),
            key.hash,
            key.created_at_ms,
            key.revoked_at_ms
        ],
    )
    .map_err(backend_unique("key"))?;
    Ok(())
}

/// Revokes a key; revoking it again changes nothing.
pub fn revoke(conn: &Connection, id: &str, at_ms: i64) -> Result<(), StoreError> {
    let found = conn
        .execute(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1",
            params![id, at_ms],
        )
        .map_err(backend)?;
    if found == 0 {
        return Err(StoreError::NotFound("key"));
    }
    Ok(())
}
