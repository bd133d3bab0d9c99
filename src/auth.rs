//! Who may call what: API keys, their scopes, and the copy of the key table
//! every node checks requests against.
//!
//! A request's `Authorization: Bearer <secret>` is hashed (SHA-256) and
//! looked up in an in-memory copy of the active keys, so checking a key
//! costs no database round trip. The node that makes or revokes a key
//! updates its copy at once; every node reloads it every second
//! ([`Engine::run_key_refresh`]), so a revocation reaches the other nodes
//! within a second. `GAMIFY_API_KEY` (or `GAMIFY_ADMIN_TOKEN`) is a key with
//! every scope that lives in the configuration, not the table.
//!
//! With no key at all (none configured, none ever made) the API is open:
//! ingest and read need no key, and the admin routes are off until an admin
//! key exists. Revoking every key does not open it again. `gamify serve` allows that only on a loopback
//! address unless `--insecure-no-auth` is given.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use gamify_store::keys::{ApiKey, Scope, Scopes, secret_hash};

use crate::engine::{Engine, EngineError};
use crate::model::{FieldError, KeyCreated, KeyRequest, KeyResponse, Render, rfc3339_ms};

/// How often every node reloads the key table.
pub const KEY_REFRESH: Duration = Duration::from_secs(1);
/// The longest key name.
pub const MAX_KEY_NAME_LEN: usize = 100;

/// Why a request may not go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No key, or one that is not (or no longer) valid: 401.
    Unauthenticated(Scope),
    /// A valid key without the scope the route needs: 403.
    Forbidden(Scope),
    /// An admin route while no key at all exists: 403.
    AdminOff,
    /// A valid key of another tenant than the one the request is for (the
    /// `Gamify-Tenant` header, or the default tenant for the tenant
    /// routes): 403.
    OtherTenant,
    /// `Gamify-Tenant` names another tenant than the default one, and the
    /// request carries none of its keys: 401.
    UnknownTenant,
}

/// Who a request is, once let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The configured key (`GAMIFY_API_KEY`).
    Configured,
    /// A key from the table.
    Key(Arc<str>),
    /// Nobody: the API is open (no keys exist).
    Anonymous,
}

/// The active keys of the table: secret hash → (key id, scopes).
type Active = HashMap<String, (Arc<str>, Scopes)>;

/// The keys a node accepts: the configured one and a copy of the table.
#[derive(Debug, Default)]
pub struct KeyRing {
    configured: Option<String>,
    /// The copy, with the ticket of the read it came from.
    stored: RwLock<(u64, Arc<Active>)>,
    /// Whether the table holds any key, revoked ones included: revoking
    /// every key must not open the API again.
    made: AtomicBool,
    /// The last ticket handed out (see [`KeyRing::ticket`]).
    tickets: AtomicU64,
}

impl KeyRing {
    /// A ring with the configured key (every scope), if any, and an empty
    /// copy of the table.
    pub fn new(configured: Option<&str>) -> KeyRing {
        KeyRing {
            configured: configured.map(|k| secret_hash(k.as_bytes())),
            stored: RwLock::default(),
            made: AtomicBool::new(false),
            tickets: AtomicU64::new(0),
        }
    }

    /// A ticket for a read of the key table about to start. Reads overlap
    /// (the periodic reload, and the one after a key is made or revoked),
    /// and one that started earlier can finish later with an older table:
    /// [`KeyRing::replace`] keeps the copy of the latest-started read, so a
    /// key just made is never dropped (nor a revoked one restored) by it.
    pub fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Replaces the copy of the table with its active keys, as read with
    /// `ticket`, unless a read that started later has already replaced it.
    pub fn replace(&self, ticket: u64, keys: &[ApiKey]) {
        let active = keys
            .iter()
            .filter(|k| k.revoked_at_ms.is_none())
            .map(|k| (k.hash.clone(), (Arc::from(k.id.as_str()), k.scopes)))
            .collect();
        let mut stored = self.stored.write().unwrap_or_else(|e| e.into_inner());
        if ticket < stored.0 {
            return;
        }
        *stored = (ticket, Arc::new(active));
        self.made.store(!keys.is_empty(), Ordering::Release);
    }

    fn copy(&self) -> Arc<Active> {
        self.stored
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// Whether the key whose secret hashes to `hash` is this ring's (the
    /// configured one, or an active one of the table): how a request finds
    /// its tenant.
    pub fn holds(&self, hash: &str) -> bool {
        self.configured.as_deref() == Some(hash) || self.copy().contains_key(hash)
    }

    /// Whether no key was ever configured or made, so the API is open.
    pub fn is_open(&self) -> bool {
        self.configured.is_none() && !self.made.load(Ordering::Acquire)
    }

    /// Whether `presented` (the bearer secret, if any) may use a route that
    /// needs `needed`.
    pub fn authorize(&self, presented: Option<&[u8]>, needed: Scope) -> Result<Caller, Denied> {
        let Some(presented) = presented else {
            return match (self.is_open(), needed) {
                (true, Scope::Admin) => Err(Denied::AdminOff),
                (true, _) => Ok(Caller::Anonymous),
                (false, _) => Err(Denied::Unauthenticated(needed)),
            };
        };
        let hash = secret_hash(presented);
        if self.configured.as_deref() == Some(hash.as_str()) {
            return Ok(Caller::Configured);
        }
        match self.copy().get(&hash) {
            None => Err(Denied::Unauthenticated(needed)),
            Some((id, scopes)) if scopes.allows(needed) => Ok(Caller::Key(id.clone())),
            Some(_) => Err(Denied::Forbidden(needed)),
        }
    }
}

/// How many requests one key may make on one node: a token bucket that
/// refills at `per_second` and holds at most `burst` (0: `per_second`).
/// `per_second` 0: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    /// Requests per second, sustained.
    pub per_second: u32,
    /// Requests at once after a quiet spell.
    pub burst: u32,
}

/// Every key's bucket on this node. Only keys that passed the check get
/// one, so there are at most as many as there are keys.
#[derive(Debug, Default)]
pub struct Limiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<Arc<str>, (f64, Instant)>>,
}

impl Limiter {
    /// A limiter enforcing `limit`.
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            buckets: Mutex::default(),
        }
    }

    /// The limit it enforces.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one request from `key`'s bucket at `now`; when it is empty,
    /// the whole seconds to wait before the next request would pass.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        if self.limit.per_second == 0 {
            return Ok(());
        }
        let rate = f64::from(self.limit.per_second);
        let capacity = f64::from(if self.limit.burst == 0 {
            self.limit.per_second
        } else {
            self.limit.burst
        });
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if !buckets.contains_key(key) {
            buckets.insert(Arc::from(key), (capacity, now));
        }
        let (tokens, last) = buckets.get_mut(key).expect("inserted above");
        *tokens =
            (*tokens + now.saturating_duration_since(*last).as_secs_f64() * rate).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            // At least a second: Retry-After counts whole seconds.
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

impl Render<ApiKey> for KeyResponse {
    fn render(k: &ApiKey) -> KeyResponse {
        KeyResponse {
            id: k.id.clone(),
            name: k.name.clone(),
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_at: rfc3339_ms(k.created_at_ms),
            revoked_at: k.revoked_at_ms.map(rfc3339_ms),
        }
    }
}

/// A secret: `gmf_` and 32 random bytes in hex.
fn new_secret() -> String {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).expect("the operating system's random source is available");
    format!("gmf_{}", gamify_store::hex(&random))
}

impl Engine {
    /// Makes a key; the answer carries its secret, which is not kept.
    pub async fn create_key(&self, request: KeyRequest) -> Result<KeyCreated, EngineError> {
        let mut errors = Vec::new();
        let name = request.name.trim().to_owned();
        crate::model::check_text(&mut errors, "name", &name, 1, MAX_KEY_NAME_LEN);
        let mut scopes = Scopes::default();
        for (i, text) in request.scopes.iter().enumerate() {
            match Scope::parse(text) {
                Some(scope) => scopes = scopes.with(scope),
                None => errors.push(FieldError {
                    field: format!("scopes[{i}]"),
                    message: format!("unknown scope {text:?}; expected ingest, read or admin"),
                }),
            }
        }
        if request.scopes.is_empty() {
            errors.push(FieldError {
                field: "scopes".into(),
                message: "expected at least one of ingest, read, admin".into(),
            });
        }
        if !errors.is_empty() {
            return Err(EngineError::Invalid(errors));
        }
        let now = self.now_ms();
        let secret = new_secret();
        let key = ApiKey {
            id: crate::engine::new_id("key", now),
            name,
            scopes,
            hash: secret_hash(secret.as_bytes()),
            created_at_ms: now,
            revoked_at_ms: None,
        };
        self.store().create_key(key.clone()).await?;
        tracing::info!(key = %key.id, scopes = %scopes.encode(), "API key created");
        self.refresh_keys().await?;
        Ok(KeyCreated {
            key: KeyResponse::render(&key),
            secret,
        })
    }

    /// Every key, revoked ones too, oldest first; never their secrets.
    pub async fn keys(&self) -> Result<Vec<KeyResponse>, EngineError> {
        Ok(self
            .store()
            .keys()
            .await?
            .iter()
            .map(KeyResponse::render)
            .collect())
    }

    /// Revokes a key: refused at once on this node, within
    /// [`KEY_REFRESH`] on the others. Revoking it again changes nothing.
    pub async fn revoke_key(&self, id: &str) -> Result<KeyResponse, EngineError> {
        self.store().revoke_key(id, self.now_ms()).await?;
        tracing::info!(key = %id, "API key revoked");
        let keys = self.reload_keys().await?;
        keys.iter()
            .find(|k| k.id == id)
            .map(KeyResponse::render)
            .ok_or(EngineError::NotFound("key"))
    }

    /// Reloads this node's copy of the key table.
    pub async fn refresh_keys(&self) -> Result<(), EngineError> {
        self.reload_keys().await.map(drop)
    }

    /// Reloads this node's copy of the key table, and answers the table.
    async fn reload_keys(&self) -> Result<Vec<ApiKey>, EngineError> {
        let ticket = self.key_ring().ticket();
        let keys = self.store().keys().await?;
        self.key_ring().replace(ticket, &keys);
        Ok(keys)
    }

    /// Reloads the key table every [`KEY_REFRESH`], for as long as the
    /// process runs; while storage is down the last copy stays in force.
    pub async fn run_key_refresh(self) {
        let mut tick = tokio::time::interval(KEY_REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh_keys().await {
                tracing::warn!(error = %e, "could not reload the API keys; keeping the last copy");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str, secret: &str, scopes: &[Scope], revoked: bool) -> ApiKey {
        ApiKey {
            id: id.into(),
            name: id.into(),
            scopes: scopes.iter().copied().collect(),
            hash: secret_hash(secret.as_bytes()),
            created_at_ms: 0,
            revoked_at_ms: revoked.then_some(1),
        }
    }

    #[test]
    fn a_bucket_lets_a_burst_through_then_the_rate() {
        let limiter = Limiter::new(RateLimit {
            per_second: 2,
            burst: 3,
        });
        let (a, b): (Arc<str>, Arc<str>) = ("key_a".into(), "key_b".into());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(&a, t0), Ok(()));
        }
        assert_eq!(limiter.take(&a, t0), Err(1), "the burst is spent");
        assert_eq!(limiter.take(&b, t0), Ok(()), "every key has its own bucket");
        let later = t0 + Duration::from_millis(500);
        assert_eq!(limiter.take(&a, later), Ok(()), "half a second refills one");
        assert_eq!(limiter.take(&a, later), Err(1));
        let unlimited = Limiter::new(RateLimit::default());
        for _ in 0..1000 {
            assert_eq!(unlimited.take(&a, t0), Ok(()));
        }
    }

    #[test]
    fn with_no_key_ingest_and_read_are_open_and_admin_is_off() {
        let ring = KeyRing::new(None);
        assert_eq!(ring.authorize(None, Scope::Read), Ok(Caller::Anonymous));
        assert_eq!(ring.authorize(None, Scope::Ingest), Ok(Caller::Anonymous));
        assert_eq!(ring.authorize(None, Scope::Admin), Err(Denied::AdminOff));
        assert_eq!(
            ring.authorize(Some(b"guess"), Scope::Read),
            Err(Denied::Unauthenticated(Scope::Read))
        );
        // The first key closes the API, and revoking it does not open it
        // again: nobody gets in without a key until a new one is made.
        ring.replace(
            ring.ticket(),
            &[stored("key_a", "s", &[Scope::Read], false)],
        );
        assert!(!ring.is_open());
        ring.replace(ring.ticket(), &[stored("key_a", "s", &[Scope::Read], true)]);
        assert!(!ring.is_open());
        assert_eq!(
            ring.authorize(None, Scope::Read),
            Err(Denied::Unauthenticated(Scope::Read))
        );
        assert_eq!(
            ring.authorize(Some(b"s"), Scope::Read),
            Err(Denied::Unauthenticated(Scope::Read))
        );
    }

    #[test]
    fn a_read_of_the_table_that_finishes_late_does_not_undo_a_newer_one() {
        let ring = KeyRing::new(None);
        let a = stored("key_a", "a-secret", &[Scope::Read], false);
        let b = stored("key_b", "b-secret", &[Scope::Read], false);
        // The periodic reload starts, then key b is made and its own reload
        // runs; the periodic one, with the table from before b, ends last.
        let periodic = ring.ticket();
        let after_b = ring.ticket();
        ring.replace(after_b, &[a.clone(), b.clone()]);
        ring.replace(periodic, std::slice::from_ref(&a));
        assert_eq!(
            ring.authorize(Some(b"b-secret"), Scope::Read),
            Ok(Caller::Key("key_b".into())),
            "a key just made stays usable"
        );
        // Likewise a revocation is not undone by an older read.
        let periodic = ring.ticket();
        let after_revoke = ring.ticket();
        let revoked = stored("key_b", "b-secret", &[Scope::Read], true);
        ring.replace(after_revoke, &[a.clone(), revoked]);
        ring.replace(periodic, &[a, b]);
        assert_eq!(
            ring.authorize(Some(b"b-secret"), Scope::Read),
            Err(Denied::Unauthenticated(Scope::Read))
        );
    }

    #[test]
    fn keys_let_through_what_their_scopes_allow() {
        let ring = KeyRing::new(Some("configured-secret"));
        ring.replace(
            ring.ticket(),
            &[
                stored("key_i", "ingest-secret", &[Scope::Ingest], false),
                stored("key_r", "read-secret", &[Scope::Read], true),
            ],
        );
        assert_eq!(
            ring.authorize(Some(b"configured-secret"), Scope::Admin),
            Ok(Caller::Configured)
        );
        assert_eq!(
            ring.authorize(Some(b"ingest-secret"), Scope::Ingest),
            Ok(Caller::Key("key_i".into()))
        );
        assert_eq!(
            ring.authorize(Some(b"ingest-secret"), Scope::Read),
            Err(Denied::Forbidden(Scope::Read))
        );
        assert_eq!(
            ring.authorize(Some(b"read-secret"), Scope::Read),
            Err(Denied::Unauthenticated(Scope::Read)),
            "revoked"
        );
        assert_eq!(
            ring.authorize(None, Scope::Read),
            Err(Denied::Unauthenticated(Scope::Read))
        );
    }
}
