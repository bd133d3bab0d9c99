//! The tenant list in the default tenant's log file. The writer thread alone
//! writes it; reads run on the read connections.

use rusqlite::{Connection, params};

use super::{backend, backend_unique};
use crate::StoreError;
use crate::tenants::Tenant;

/// Every tenant but the default one, oldest first.
pub fn all(conn: &Connection) -> Result<Vec<Tenant>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT name, created_at FROM tenants ORDER BY created_at, name")
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Tenant {
                name: r.get(0)?,
                created_at_ms: r.get(1)?,
            })
        })
        .map_err(backend)?;
    rows.collect::<Result<_, _>>().map_err(backend)
}

/// Adds a tenant; [`StoreError::AlreadyExists`] if the name is taken.
pub fn add(conn: &Connection, tenant: &Tenant) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tenants (name, created_at) VALUES (?1, ?2)",
        params![tenant.name, tenant.created_at_ms],
    )
    .map_err(backend_unique("tenant"))?;
    Ok(())
}
