//! API keys: who may call which routes. A key carries scopes and is stored
//! only as the SHA-256 of its secret; the secret itself is shown once, when
//! the key is made (by the `gamify` crate), and never kept.

use sha2::{Digest, Sha256};

use crate::StoreError;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Record what users do: events, spends, redemptions, privacy choices.
    Ingest,
    /// Read balances, events, stats, leaderboards, rewards, the catalogue.
    Read,
    /// Rewards, webhooks, keys, analytics, export, verify, erasure.
    Admin,
}

impl Scope {
    /// Every scope, in wire order.
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Admin];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope: what `GAMIFY_API_KEY` grants.
    pub const EVERY: Scopes = Scopes(0b111);

    /// Whether `scope` is in the set.
    pub const fn allows(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The set with `scope` added.
    pub const fn with(self, scope: Scope) -> Scopes {
        Scopes(self.0 | scope.bit())
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes in wire order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.allows(*s))
    }

    /// Stored form: names joined by commas (`ingest,read`).
    pub fn encode(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
    }

    /// Reads the stored form back.
    pub fn decode(text: &str) -> Result<Scopes, StoreError> {
        text.split(',')
            .try_fold(Scopes::default(), |set, name| {
                Scope::parse(name).map(|s| set.with(s))
            })
            .ok_or_else(|| crate::corrupt("key scopes", text))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Scopes {
        iter.into_iter().fold(Scopes::default(), Scopes::with)
    }
}

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `key_` and 16 hex digits; public (logs, the admin API).
    pub id: String,
    /// What it is for, as its maker described it.
    pub name: String,
    /// What it may do.
    pub scopes: Scopes,
    /// SHA-256 of the secret, hex ([`secret_hash`]).
    pub hash: String,
    /// When it was made (Unix ms).
    pub created_at_ms: i64,
    /// When it was revoked (Unix ms); `None` while it works.
    pub revoked_at_ms: Option<i64>,
}

/// The stored form of a secret. A plain SHA-256 suffices: secrets are 128
/// random bits, not passwords, so there is nothing to guess.
pub fn secret_hash(secret: &[u8]) -> String {
    crate::hex(&Sha256::digest(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_in_wire_order() {
        let set: Scopes = [Scope::Admin, Scope::Ingest].into_iter().collect();
        assert_eq!(set.encode(), "ingest,admin");
        assert_eq!(Scopes::decode("ingest,admin").unwrap(), set);
        assert!(set.allows(Scope::Admin) && !set.allows(Scope::Read));
        assert_eq!(Scopes::EVERY.encode(), "ingest,read,admin");
        assert!(Scopes::decode("ingest,root").is_err());
    }
}
