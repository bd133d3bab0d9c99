//! A typed client for the Gamify HTTP API, over the JSON types the server
//! itself uses (`gamify-api`, re-exported here).
//!
//! ```no_run
//! # async fn demo() -> Result<(), gamify_client::Error> {
//! use gamify_client::{Client, EventRequest};
//!
//! let gamify = Client::new("http://127.0.0.1:8000")?;
//! let event = EventRequest::new("user_123", "finance", "paid_invoice", 2.0);
//! // The key makes a retry safe: the server records the event once.
//! let recorded = gamify.record_event(&event, Some("invoice-42")).await?;
//! assert_eq!(recorded.body.points, 4.0);
//! let wallet = gamify.balance("user_123").await?;
//! println!("level {}, {} points", wallet.level, wallet.total_points);
//! # Ok(()) }
//! ```
//!
//! Every non-2xx answer becomes [`Error::Api`] with the server's error body
//! (`code`, `message`, the offending fields), so callers can match on the
//! documented codes (`insufficient_points`, `validation_failed`, …).

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;

pub use gamify_api::*;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error (the API's error body).
    #[error("{status}: {} ({})", .error.message, .error.code)]
    Api {
        /// The HTTP status.
        status: u16,
        /// What the server said.
        error: ErrorBody,
    },
    /// The base URL is not a URL.
    #[error("invalid base URL: {0}")]
    Url(String),
    /// The server could not be reached, or its answer was not the JSON
    /// expected.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

impl Error {
    /// The API's error code (`not_found`, `insufficient_points`, …), if the
    /// server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { error, .. } => Some(&error.code),
            _ => None,
        }
    }
}

/// An answer to a request that may have been a retry: with an
/// `Idempotency-Key` used before, the server returns the original and
/// `replayed` is true.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayable<T> {
    /// The body.
    pub body: T,
    /// Whether it is the original answer to an earlier request with the key.
    pub replayed: bool,
}

/// A page of a list, and the cursor of the next if more remain.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `before` (or `after` for leaderboards) for the next page.
    pub next_cursor: Option<String>,
}

/// Which leaderboard: the default is the brief's (all time, overall).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Board {
    /// `all_time`, `day`, `week` or `month`.
    pub period: Option<String>,
    /// One category's points only.
    pub category: Option<String>,
    /// A past window (`2026-11-24`, `2026-W48`, `2026-11`).
    pub window: Option<String>,
}

impl Board {
    /// The board of `period` (`day`, `week`, `month`, `all_time`).
    pub fn period(period: &str) -> Board {
        Board {
            period: Some(period.to_owned()),
            ..Board::default()
        }
    }

    /// Only `category`'s points.
    pub fn category(mut self, category: &str) -> Board {
        self.category = Some(category.to_owned());
        self
    }

    /// A past window instead of the current one.
    pub fn window(mut self, window: &str) -> Board {
        self.window = Some(window.to_owned());
        self
    }

    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        for (name, value) in [
            ("period", &self.period),
            ("category", &self.category),
            ("window", &self.window),
        ] {
            if let Some(v) = value {
                q.push((name, v.clone()));
            }
        }
        q
    }
}

const NEXT_CURSOR: &str = "x-next-cursor";
const REPLAYED: &str = "idempotent-replayed";

/// A Gamify server. Cheap to clone; keeps its connections.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    api_key: Option<String>,
    tenant: Option<String>,
}

impl Client {
    /// A client of the server at `base_url` (`http://127.0.0.1:8000`).
    pub fn new(base_url: &str) -> Result<Client, Error> {
        let mut base = Url::parse(base_url).map_err(|e| Error::Url(e.to_string()))?;
        if base.cannot_be_a_base() {
            return Err(Error::Url(format!("{base_url} cannot be a base")));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Client {
            http: reqwest::Client::new(),
            base,
            api_key: None,
            tenant: None,
        })
    }

    /// A client of the server `GAMIFY_URL` names, `http://127.0.0.1:8000`
    /// (the server's default address) when it is unset, with the key
    /// `GAMIFY_API_KEY` holds, if set.
    pub fn from_env() -> Result<Client, Error> {
        let url = std::env::var("GAMIFY_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
        let client = Client::new(&url)?;
        Ok(match std::env::var("GAMIFY_API_KEY") {
            Ok(key) if !key.is_empty() => client.with_api_key(key),
            _ => client,
        })
    }

    /// Sends this API key (`Authorization: Bearer …`) with every request.
    /// Its scopes decide what it may do: `ingest` to record, `read` to
    /// read, `admin` for rewards, adjustments, webhooks, keys, erasure.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Client {
        self.api_key = Some(key.into());
        self
    }

    /// Names `tenant` in the `Gamify-Tenant` header of every request: the
    /// server then refuses (403) instead of serving, should the key belong
    /// to another tenant. Requests reach the key's tenant without it too.
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Client {
        self.tenant = Some(tenant.into());
        self
    }

    /// Uses `http` (timeouts, proxies, TLS settings of your choosing).
    pub fn with_http(mut self, http: reqwest::Client) -> Client {
        self.http = http;
        self
    }

    // Events and wallets.

    /// Records an event (`POST /api/v2/gamify/event`).
    pub async fn record_event(
        &self,
        event: &EventRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Replayable<EventResponse>, Error> {
        let request = self.request(Method::POST, &["event"]).json(event);
        self.replayable(request, idempotency_key).await
    }

    /// What an event would earn if it were recorded now, with its breakdown
    /// (`POST /api/v2/gamify/simulate`); records nothing.
    pub async fn simulate(&self, event: &EventRequest) -> Result<SimulationResponse, Error> {
        let request = self.request(Method::POST, &["simulate"]).json(event);
        self.send(request).await.map(|(body, _)| body)
    }

    /// A user's wallet.
    pub async fn balance(&self, user_id: &str) -> Result<BalanceResponse, Error> {
        self.get(&["balance", user_id], &[]).await
    }

    /// A user's statistics.
    pub async fn stats(&self, user_id: &str) -> Result<StatsResponse, Error> {
        self.get(&["stats", user_id], &[]).await
    }

    /// A page of a user's events, newest first.
    pub async fn events(
        &self,
        user_id: &str,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<Page<EventResponse>, Error> {
        self.page(&["events", user_id], &paging(limit, "before", before))
            .await
    }

    /// The achievement catalogue.
    pub async fn achievements(&self) -> Result<Vec<AchievementResponse>, Error> {
        self.get(&["achievements"], &[]).await
    }

    // Leaderboards.

    /// A page of a leaderboard, best first.
    pub async fn leaderboard(
        &self,
        board: &Board,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<Page<LeaderboardEntry>, Error> {
        let mut query = board.query();
        query.extend(paging(limit, "after", after));
        self.page(&["leaderboard"], &query).await
    }

    /// Where a user stands on a board, with `k` users above and below.
    pub async fn standing(
        &self,
        user_id: &str,
        board: &Board,
        k: Option<u32>,
    ) -> Result<StandingResponse, Error> {
        let mut query = board.query();
        if let Some(k) = k {
            query.push(("k", k.to_string()));
        }
        self.get(&["leaderboard", user_id], &query).await
    }

    /// Hides a user from the leaderboards, or shows them again.
    pub async fn set_privacy(&self, user_id: &str, hidden: bool) -> Result<PrivacyResponse, Error> {
        let request = self
            .request(Method::PUT, &["users", user_id, "privacy"])
            .json(&PrivacyRequest {
                hidden_from_leaderboards: hidden,
            });
        self.send(request).await.map(|(body, _)| body)
    }

    // The points economy.

    /// Spends a user's points.
    pub async fn spend(
        &self,
        spend: &SpendRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Replayable<MovementResponse>, Error> {
        let request = self.request(Method::POST, &["spend"]).json(spend);
        self.replayable(request, idempotency_key).await
    }

    /// A page of a user's ledger, newest first.
    pub async fn ledger(
        &self,
        user_id: &str,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<Page<LedgerEntryResponse>, Error> {
        self.page(&["ledger", user_id], &paging(limit, "before", before))
            .await
    }

    /// The rewards on offer; with a user, whether each is affordable.
    pub async fn rewards(&self, user_id: Option<&str>) -> Result<Vec<RewardResponse>, Error> {
        let query: Vec<_> = user_id
            .map(|u| ("user_id", u.to_owned()))
            .into_iter()
            .collect();
        self.get(&["rewards"], &query).await
    }

    /// Redeems a reward for a user.
    pub async fn redeem(
        &self,
        reward_id: &str,
        user_id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<Replayable<RedemptionResponse>, Error> {
        let request = self
            .request(Method::POST, &["rewards", reward_id, "redeem"])
            .json(&RedeemRequest {
                user_id: user_id.to_owned(),
            });
        self.replayable(request, idempotency_key).await
    }

    /// A user's redemptions, newest first.
    pub async fn redemptions(&self, user_id: &str) -> Result<Vec<RedemptionResponse>, Error> {
        self.get(&["redemptions", user_id], &[]).await
    }

    // Admin.

    /// Adds a reward to the catalogue (admin).
    pub async fn create_reward(&self, reward: &RewardRequest) -> Result<RewardResponse, Error> {
        let request = self
            .request(Method::POST, &["admin", "rewards"])
            .json(reward);
        self.send(request).await.map(|(body, _)| body)
    }

    /// Corrects a user's balance either way (admin).
    pub async fn adjust(
        &self,
        adjustment: &AdjustmentRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Replayable<MovementResponse>, Error> {
        let request = self
            .request(Method::POST, &["admin", "adjustments"])
            .json(adjustment);
        self.replayable(request, idempotency_key).await
    }

    /// Subscribes a URL to webhook event types (admin); the answer holds
    /// the signing secret, shown only here.
    pub async fn subscribe(
        &self,
        subscription: &SubscriptionRequest,
    ) -> Result<SubscriptionCreated, Error> {
        let request = self
            .request(Method::POST, &["admin", "webhooks"])
            .json(subscription);
        self.send(request).await.map(|(body, _)| body)
    }

    /// The webhook subscriptions (admin).
    pub async fn webhooks(&self) -> Result<Vec<SubscriptionResponse>, Error> {
        self.get(&["admin", "webhooks"], &[]).await
    }

    /// Deletes a webhook subscription (admin).
    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<(), Error> {
        let request = self.request(Method::DELETE, &["admin", "webhooks", webhook_id]);
        let response = request.send().await?;
        check(response).await.map(drop)
    }

    /// Makes an API key (admin); the answer holds its secret, shown only
    /// here.
    pub async fn create_key(&self, key: &KeyRequest) -> Result<KeyCreated, Error> {
        let request = self.request(Method::POST, &["admin", "keys"]).json(key);
        self.send(request).await.map(|(body, _)| body)
    }

    /// Every API key, revoked ones too, never a secret (admin).
    pub async fn keys(&self) -> Result<Vec<KeyResponse>, Error> {
        self.get(&["admin", "keys"], &[]).await
    }

    /// Revokes an API key (admin).
    pub async fn revoke_key(&self, key_id: &str) -> Result<KeyResponse, Error> {
        let request = self.request(Method::POST, &["admin", "keys", key_id, "revoke"]);
        self.send(request).await.map(|(body, _)| body)
    }

    /// A page of a subscription's delivery log, newest first (admin).
    pub async fn deliveries(
        &self,
        webhook_id: &str,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<Page<DeliveryResponse>, Error> {
        self.page(
            &["admin", "webhooks", webhook_id, "deliveries"],
            &paging(limit, "before", before),
        )
        .await
    }

    /// Makes a tenant (an admin key of the default tenant): the answer
    /// carries its first key's secret, shown only now.
    pub async fn create_tenant(&self, name: &str) -> Result<TenantCreated, Error> {
        let request = self
            .request(Method::POST, &["admin", "tenants"])
            .json(&TenantRequest { name: name.into() });
        self.send(request).await.map(|(body, _)| body)
    }

    /// Every tenant, `default` first (an admin key of the default tenant).
    pub async fn tenants(&self) -> Result<Vec<TenantResponse>, Error> {
        self.get(&["admin", "tenants"], &[]).await
    }

    /// The categories an event may name now, with their weights.
    pub async fn categories(&self) -> Result<Vec<CategoryRule>, Error> {
        self.get(&["categories"], &[]).await
    }

    /// The rules new events are scored with (admin), as data and as a
    /// rules file (`toml`).
    pub async fn rules(&self) -> Result<RulesResponse, Error> {
        self.get(&["admin", "rules"], &[]).await
    }

    /// Replaces the rules with a rules file (admin): a new version, unless
    /// they are the current version's. Each mistake comes back as a field
    /// error naming its line.
    pub async fn replace_rules(&self, toml: &str) -> Result<RulesResponse, Error> {
        let request = self
            .request(Method::PUT, &["admin", "rules"])
            .header("content-type", "application/toml")
            .body(toml.to_owned());
        self.send(request).await.map(|(body, _)| body)
    }

    /// Every version of the rules, oldest first (admin).
    pub async fn rule_versions(&self) -> Result<RuleVersionsResponse, Error> {
        self.get(&["admin", "rules", "versions"], &[]).await
    }

    /// One version of the rules (admin).
    pub async fn rule_version(&self, version: u32) -> Result<RulesResponse, Error> {
        self.get(&["admin", "rules", "versions", &version.to_string()], &[])
            .await
    }

    /// Erases a person's data (admin).
    pub async fn erase_user(&self, user_id: &str) -> Result<ErasureResponse, Error> {
        let request = self.request(Method::DELETE, &["users", user_id]);
        self.send(request).await.map(|(body, _)| body)
    }

    // The plumbing.

    /// A request to `/api/v2/gamify/` and `segments` (each escaped).
    fn request(&self, method: Method, segments: &[&str]) -> RequestBuilder {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v2", "gamify"])
                .extend(segments);
        }
        let mut request = self.http.request(method, url);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        if let Some(tenant) = &self.tenant {
            request = request.header("gamify-tenant", tenant);
        }
        request
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let request = self.request(Method::GET, segments).query(query);
        self.send(request).await.map(|(body, _)| body)
    }

    async fn page<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Page<T>, Error> {
        let request = self.request(Method::GET, segments).query(query);
        let (items, headers) = self.send(request).await?;
        Ok(Page {
            items,
            next_cursor: header(&headers, NEXT_CURSOR),
        })
    }

    async fn replayable<T: DeserializeOwned>(
        &self,
        mut request: RequestBuilder,
        idempotency_key: Option<&str>,
    ) -> Result<Replayable<T>, Error> {
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let (body, headers) = self.send(request).await?;
        Ok(Replayable {
            body,
            replayed: header(&headers, REPLAYED).as_deref() == Some("true"),
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<(T, HeaderMap), Error> {
        let response = check(request.send().await?).await?;
        let headers = response.headers().clone();
        Ok((response.json().await?, headers))
    }
}

/// The response if it is a success; its error body as [`Error::Api`] if not.
async fn check(response: reqwest::Response) -> Result<reqwest::Response, Error> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await?;
    let error = serde_json::from_str::<ErrorResponse>(&text)
        .map(|e| e.error)
        .unwrap_or_else(|_| ErrorBody {
            code: if status == StatusCode::SERVICE_UNAVAILABLE {
                "unavailable".to_owned()
            } else {
                "unexpected".to_owned()
            },
            message: text,
            details: Vec::new(),
        });
    Err(Error::Api {
        status: status.as_u16(),
        error,
    })
}

fn paging(
    limit: Option<u32>,
    cursor: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(limit) = limit {
        q.push(("limit", limit.to_string()));
    }
    if let Some(v) = value {
        q.push((cursor, v.to_owned()));
    }
    q
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
