//! Tenants on a node: the default tenant's engine and one engine per other
//! tenant, each over a store of its own.
//!
//! A tenant's store is derived from the configured one ([`tenant_storage`]):
//! with SQLite, `tenants/<name>/` beside the default file; with PostgreSQL,
//! the schema `<schema>__<name>` beside the default schema (and a Redis
//! prefix of its own). Every tenant thus has its own users, rules, rewards,
//! leaderboards, webhooks and keys, and no query of one can reach another's
//! rows. The list of tenants lives in the default tenant's store; every node
//! reads it every second ([`Tenancy::run_refresh`]) and opens what is new.
//!
//! A request finds its tenant by its key: each key belongs to exactly one
//! tenant (see `crate::http`, which dispatches).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gamify_store::keys::{Scope, secret_hash};
use gamify_store::postgres::{Migrations, check_schema};
use gamify_store::tenants::{DEFAULT_TENANT, Tenant, check_tenant_name};
use tracing::Instrument;

use crate::engine::{Engine, EngineError, Storage, open_store};
use crate::model::{KeyRequest, TenantCreated, TenantResponse, rfc3339_ms};
use crate::webhooks::WebhookSettings;

/// How often every node looks for tenants made on other nodes.
pub const TENANT_REFRESH: Duration = Duration::from_secs(1);
/// The PostgreSQL pool of each tenant other than the default one: many
/// tenants must not take all of the server's connections.
pub const TENANT_POOL_SIZE: u32 = 4;

/// What runs in the background for every tenant besides the key and rules
/// refreshes: `gamify serve` runs sweeps and webhook deliveries; tests and
/// embedders may run none.
#[derive(Debug, Clone, Default)]
pub struct Workers {
    /// Run expiry sweeps, and the webhook sweeps (streak notices, pruning
    /// the delivery log) with these settings.
    pub sweeps: Option<WebhookSettings>,
    /// Send webhook deliveries with these settings (none: another node
    /// sends them).
    pub webhooks: Option<WebhookSettings>,
}

/// The tenants this node serves. Cheap to clone.
#[derive(Clone)]
pub struct Tenancy {
    inner: Arc<Inner>,
}

struct Inner {
    default: Engine,
    /// The configured storage, from which tenants' stores are derived;
    /// `None` (an engine over a store of an embedder's own): no tenants.
    base: Option<Storage>,
    workers: Workers,
    open: RwLock<Arc<BTreeMap<String, Arc<Served>>>>,
    /// The tenant of each key seen lately (secret hash → tenant), so that a
    /// request finds its tenant with one lookup instead of asking every
    /// tenant's key ring. Only keys some tenant held go in, so it holds at
    /// most as many entries as there are keys; an entry is checked against
    /// its tenant's ring on every use, so a revocation counts at once.
    seen: RwLock<HashMap<String, Arc<Served>>>,
    /// One opening (at start, by the refresh, by a create) at a time on
    /// this node, so that no store is opened twice.
    opening: tokio::sync::Mutex<()>,
}

/// A tenant this node serves.
pub struct Served {
    /// Its name.
    pub name: String,
    /// Its engine.
    pub engine: Engine,
}

/// Whose key a request presents.
pub enum Owner {
    /// The default tenant's.
    Default,
    /// Another tenant's.
    Tenant(Arc<Served>),
    /// No tenant's: none, or unknown, or revoked.
    Nobody,
}

impl From<Engine> for Tenancy {
    /// One engine alone: no tenants can be made.
    fn from(engine: Engine) -> Tenancy {
        Tenancy::new(engine, None, Workers::default())
    }
}

impl Tenancy {
    /// A tenancy of `default` alone, deriving tenants' stores from `base`;
    /// [`Tenancy::open_all`] opens the tenants the list names.
    pub fn new(default: Engine, base: Option<Storage>, workers: Workers) -> Tenancy {
        Tenancy {
            inner: Arc::new(Inner {
                default,
                base,
                workers,
                open: RwLock::default(),
                seen: RwLock::default(),
                opening: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The default tenant's engine.
    pub fn default_engine(&self) -> &Engine {
        &self.inner.default
    }

    /// The node stops serving: every tenant's store gives up what others
    /// wait for (see [`Engine::close`]).
    pub async fn close(&self) {
        self.inner.default.close().await;
        for served in self.snapshot().values() {
            served.engine.close().await;
        }
    }

    fn snapshot(&self) -> Arc<BTreeMap<String, Arc<Served>>> {
        self.inner
            .open
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether this node serves any tenant besides the default one.
    pub fn has_tenants(&self) -> bool {
        !self.snapshot().is_empty()
    }

    /// Whose key `presented` (a bearer secret) is.
    pub fn owner(&self, presented: &[u8]) -> Owner {
        let hash = secret_hash(presented);
        if self.inner.default.key_ring().holds(&hash) {
            return Owner::Default;
        }
        let seen = self
            .inner
            .seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .cloned();
        let was_seen = seen.is_some();
        if let Some(served) = seen
            && served.engine.key_ring().holds(&hash)
        {
            return Owner::Tenant(served);
        }
        let found = self
            .snapshot()
            .values()
            .find(|s| s.engine.key_ring().holds(&hash))
            .cloned();
        // A wrong key (no tenant's) takes no write lock: it is not kept.
        if found.is_none() && !was_seen {
            return Owner::Nobody;
        }
        let mut seen = self.inner.seen.write().unwrap_or_else(|e| e.into_inner());
        match found {
            Some(served) => {
                seen.insert(hash, served.clone());
                Owner::Tenant(served)
            }
            None => {
                seen.remove(&hash);
                Owner::Nobody
            }
        }
    }

    /// Opens every tenant of the list this node does not serve yet, with
    /// its background work. Returns how many it opened.
    pub async fn open_all(&self) -> Result<usize, EngineError> {
        let listed = self.inner.default.store().tenants().await?;
        let _one_at_a_time = self.inner.opening.lock().await;
        let mut opened = 0;
        for tenant in listed {
            if self.snapshot().contains_key(&tenant.name) {
                continue;
            }
            let engine = self.open_tenant(&tenant.name).await?;
            self.serve(&tenant.name, engine).await?;
            opened += 1;
        }
        Ok(opened)
    }

    /// Opens (creating and migrating as needed) tenant `name`'s store.
    async fn open_tenant(&self, name: &str) -> Result<Engine, EngineError> {
        let Some(base) = &self.inner.base else {
            return Err(EngineError::Conflict {
                code: "tenants_unavailable",
                message: "this engine was built over a store of its own; tenants need the \
                          storage gamify serve opens"
                    .into(),
            });
        };
        // Opening an SQLite store makes its directory.
        let storage = tenant_storage(base, name).map_err(|e| EngineError::field("name", e))?;
        tracing::info!(tenant = name, %storage, "opening tenant");
        let store = open_store(
            &storage,
            self.inner.default.rules(),
            Migrations::Apply,
            true,
        )
        .await?;
        Ok(self.inner.default.for_tenant(store))
    }

    /// Starts serving `engine` as tenant `name`: reads its keys, starts its
    /// background work, and adds it to the tenants requests reach.
    async fn serve(&self, name: &str, engine: Engine) -> Result<(), EngineError> {
        engine.refresh_keys().await?;
        let span = tracing::info_span!("tenant", tenant = name);
        tokio::spawn(engine.clone().run_key_refresh().instrument(span.clone()));
        tokio::spawn(engine.clone().run_rules_refresh().instrument(span.clone()));
        if let Some(settings) = &self.inner.workers.sweeps {
            tokio::spawn(engine.clone().run_expiry_sweeps().instrument(span.clone()));
            tokio::spawn(
                engine
                    .clone()
                    .run_webhook_sweeps(settings.clone())
                    .instrument(span.clone()),
            );
        }
        if let Some(settings) = &self.inner.workers.webhooks {
            tokio::spawn(
                engine
                    .clone()
                    .run_webhook_deliveries(settings.clone())
                    .instrument(span),
            );
        }
        let mut open = self.inner.open.write().unwrap_or_else(|e| e.into_inner());
        let mut next = BTreeMap::clone(&open);
        next.insert(
            name.to_owned(),
            Arc::new(Served {
                name: name.to_owned(),
                engine,
            }),
        );
        *open = Arc::new(next);
        Ok(())
    }

    /// Makes tenant `name`: its store, its place in the list, and its first
    /// key (every scope), whose secret the answer carries.
    pub async fn create(&self, name: &str) -> Result<TenantCreated, EngineError> {
        check_tenant_name(name).map_err(|e| EngineError::field("name", e))?;
        let taken = || EngineError::Conflict {
            code: "already_exists",
            message: format!("a tenant named {name:?} exists already"),
        };
        let _one_at_a_time = self.inner.opening.lock().await;
        let default = &self.inner.default;
        if default
            .store()
            .tenants()
            .await?
            .iter()
            .any(|t| t.name == name)
        {
            return Err(taken());
        }
        let engine = self.open_tenant(name).await?;
        let tenant = Tenant {
            name: name.to_owned(),
            created_at_ms: default.now_ms(),
        };
        match default.store().add_tenant(tenant.clone()).await {
            // Another node made it meanwhile: that one stands.
            Err(gamify_store::StoreError::AlreadyExists(_)) => return Err(taken()),
            other => other?,
        }
        let admin_key = engine
            .create_key(KeyRequest {
                name: "first admin key".into(),
                scopes: [Scope::Ingest, Scope::Read, Scope::Admin]
                    .iter()
                    .map(|s| s.as_str().to_owned())
                    .collect(),
            })
            .await?;
        self.serve(name, engine).await?;
        tracing::info!(tenant = name, "tenant made");
        Ok(TenantCreated {
            tenant: render(&tenant),
            admin_key,
        })
    }

    /// The default tenant, then every other, oldest first.
    pub async fn list(&self) -> Result<Vec<TenantResponse>, EngineError> {
        let mut out = vec![TenantResponse {
            name: DEFAULT_TENANT.into(),
            created_at: None,
        }];
        out.extend(
            self.inner
                .default
                .store()
                .tenants()
                .await?
                .iter()
                .map(render),
        );
        Ok(out)
    }

    /// Opens tenants made on other nodes, every [`TENANT_REFRESH`], for as
    /// long as the process runs.
    pub async fn run_refresh(self) {
        if self.inner.base.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(TENANT_REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.open_all().await {
                Ok(0) => {}
                Ok(opened) => tracing::info!(opened, "serving tenants made on another node"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not open new tenants; trying again")
                }
            }
        }
    }
}

fn render(tenant: &Tenant) -> TenantResponse {
    TenantResponse {
        name: tenant.name.clone(),
        created_at: Some(rfc3339_ms(tenant.created_at_ms)),
    }
}

/// Where tenant `name` keeps its data when the default tenant's is at
/// `base`: `<dir>/tenants/<name>/<file>` beside an SQLite file; the schema
/// `<schema>__<name>` (`public__<name>` without a configured schema), a
/// pool of [`TENANT_POOL_SIZE`] and the Redis prefix `<prefix>tenant:<name>:`
/// on PostgreSQL.
pub fn tenant_storage(base: &Storage, name: &str) -> Result<Storage, String> {
    if name == DEFAULT_TENANT {
        return Ok(base.clone());
    }
    check_tenant_name(name)?;
    Ok(match base {
        Storage::Sqlite(path) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), PathBuf::from);
            let file = path
                .file_name()
                .map_or_else(|| "gamify.db".into(), |f| f.to_owned());
            Storage::Sqlite(dir.join("tenants").join(name).join(file))
        }
        Storage::Postgres(settings) => {
            let mut settings = settings.clone();
            let schema = format!("{}__{name}", settings.schema.as_deref().unwrap_or("public"));
            check_schema(&schema).map_err(|e| format!("the tenant's schema: {e}"))?;
            settings.schema = Some(schema);
            settings.pool_size = settings.pool_size.min(TENANT_POOL_SIZE);
            if let Some(redis) = &mut settings.redis {
                redis.prefix = format!("{}tenant:{name}:", redis.prefix);
            }
            Storage::Postgres(settings)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gamify_store::postgres::{PgSettings, RedisSettings};

    #[test]
    fn a_tenant_keeps_its_data_beside_the_default_tenants() {
        assert_eq!(
            tenant_storage(&Storage::Sqlite("data/gamify.db".into()), "acme"),
            Ok(Storage::Sqlite("data/tenants/acme/gamify.db".into()))
        );
        assert_eq!(
            tenant_storage(&Storage::Sqlite("g.db".into()), "acme"),
            Ok(Storage::Sqlite("./tenants/acme/g.db".into()))
        );
        let mut pg = PgSettings::new("postgres://localhost/gamify");
        pg.redis = Some(RedisSettings::new("redis://127.0.0.1"));
        let Ok(Storage::Postgres(acme)) = tenant_storage(&Storage::Postgres(pg.clone()), "acme")
        else {
            panic!("a PostgreSQL tenant")
        };
        assert_eq!(acme.schema.as_deref(), Some("public__acme"));
        assert_eq!(acme.pool_size, TENANT_POOL_SIZE);
        assert_eq!(acme.redis.unwrap().prefix, "gamify:tenant:acme:");
        pg.schema = Some("x".repeat(50));
        assert!(tenant_storage(&Storage::Postgres(pg), "a_long_tenant_name").is_err());
        assert!(tenant_storage(&Storage::Sqlite("g.db".into()), "../up").is_err());
    }
}
