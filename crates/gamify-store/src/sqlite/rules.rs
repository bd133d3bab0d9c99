//! Rule versions in the log file. The writer thread alone adds them.

use rusqlite::{Connection, params};

use super::backend;
use crate::StoreError;
use crate::rulebook::{RuleVersion, first_version};

/// Every version, oldest first; version 1 (the brief's rules) is added
/// first if the log has none.
pub fn load_or_start(conn: &Connection) -> Result<Vec<RuleVersion>, StoreError> {
    let mut versions = all(conn)?;
    if versions.is_empty() {
        let first = first_version();
        add(conn, &first)?;
        versions.push(first);
    }
    Ok(versions)
}

/// Every version, oldest first.
pub fn all(conn: &Connection) -> Result<Vec<RuleVersion>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT version, rules, created_at FROM rule_versions ORDER BY version")
        .map_err(backend)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (version, text, created_at) = row.map_err(backend)?;
        out.push(RuleVersion::from_stored(version, &text, created_at)?);
    }
    Ok(out)
}

/// Adds a version.
pub fn add(conn: &Connection, version: &RuleVersion) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO rule_versions (version, rules, created_at) VALUES (?1, ?2, ?3)",
        params![
            version.version,
            version.stored_text(),
            version.created_at_ms
        ],
    )
    .map_err(backend)?;
    Ok(())
}
