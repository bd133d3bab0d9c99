//! Tenants: several teams or customers on one deployment, each with its own
//! users, rules, rewards, leaderboards and keys.
//!
//! Each tenant's data lives in a store of its own (an SQLite file beside the
//! default one, or a PostgreSQL schema beside the default one), so no query
//! of one tenant can reach another's rows. The default tenant's store keeps
//! the list of the others ([`crate::Store::tenants`]).

/// The name of the tenant the configured storage belongs to.
pub const DEFAULT_TENANT: &str = "default";
/// The longest tenant name: it becomes part of a PostgreSQL schema name
/// (at most 63 bytes, with the default schema's name and `__` before it).
pub const MAX_TENANT_NAME_LEN: usize = 24;

/// A tenant besides the default one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its name: a lowercase letter, then lowercase letters, digits and
    /// underscores ([`check_tenant_name`]).
    pub name: String,
    /// When it was made (ms since the epoch).
    pub created_at_ms: i64,
}

/// Whether `name` may name a new tenant; the error says what is expected.
/// The name becomes a directory and a schema name, hence the narrow form.
pub fn check_tenant_name(name: &str) -> Result<(), String> {
    if name == DEFAULT_TENANT {
        return Err(format!(
            "{DEFAULT_TENANT:?} is the tenant that always exists"
        ));
    }
    let plain = name.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !plain || name.len() > MAX_TENANT_NAME_LEN {
        return Err(format!(
            "expected a lowercase letter, then lowercase letters, digits or underscores, \
             at most {MAX_TENANT_NAME_LEN} in all; got {name:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_narrow_enough_for_a_directory_and_a_schema() {
        for good in [
            "acme",
            "a",
            "team_2",
            "x234567890123456789012345"[..24].as_ref(),
        ] {
            assert_eq!(check_tenant_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "default",
            "Acme",
            "2acme",
            "_acme",
            "ac-me",
            "ac me",
            "../etc",
            "äiti",
            "x2345678901234567890123456",
        ] {
            assert!(check_tenant_name(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
