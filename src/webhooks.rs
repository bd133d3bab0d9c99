//! Outbound webhooks: the admin's subscriptions, and the worker that sends
//! what the outbox holds.
//!
//! The writers put a delivery in the outbox in the transaction of the change
//! it tells about (`gamify_store::webhook`); this worker takes what is due,
//! posts it signed, and records each attempt. A failure is tried again after
//! `retry_base`, doubling each time up to `retry_max`, until
//! `max_attempts`; then the delivery is `failed` until an admin replays it.
//! Delivery is at least once: a process that dies between sending and
//! recording sends again (on PostgreSQL, once the lease ends), so receivers
//! deduplicate by the `Gamify-Delivery` id, which every attempt repeats.
//!
//! **Signature.** `Gamify-Signature: v1=<hex>`, where `<hex>` is
//! HMAC-SHA256, keyed with the subscription's secret, over the
//! `Gamify-Timestamp` header's value, a `.`, and the raw body. Receivers
//! recompute it, compare in constant time, and refuse old timestamps.

use std::time::Duration;

use futures_util::StreamExt;
use gamify_core::Day;
use gamify_store::webhook::{self, Topic, backoff_ms};
use gamify_store::{Attempt, Delivery, DeliveryStatus, Due, StoreError, Subscription, UserFilter};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use gamify_api::{
    DeliveryResponse, SubscriptionCreated, SubscriptionRequest, SubscriptionResponse,
};

use crate::engine::{Engine, EngineError, new_id};
use crate::model::{FieldError, Render, rfc3339_ms};

/// How many deliveries one round takes, and sends at once.
const ROUND: u32 = 256;
const IN_FLIGHT: usize = 32;
/// How long the worker waits when nothing is due.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// How many finished deliveries one statement of the log's pruning deletes,
/// and how many times as long as that statement took it waits before the
/// next.
const PRUNE_BATCH: u32 = 1_000;
const PRUNE_PAUSE: u32 = 3;
/// The longest receiver URL accepted.
const MAX_URL_LEN: usize = 2_000;

/// Where recorded events are forwarded (the brief's `GAMIFY_EXTERNAL_API`
/// and `GAMIFY_API_KEY`).
#[derive(Clone, PartialEq, Eq)]
pub struct Forward {
    /// The service's base URL; events go to `{url}/api/v2/gamify/event`.
    pub url: String,
    /// The bearer token they carry.
    pub api_key: String,
}

impl std::fmt::Debug for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forward")
            .field("url", &crate::config::redact_url(&self.url))
            .field("api_key", &"***")
            .finish()
    }
}

/// The id prefix of the subscription forwarding is kept as.
const FORWARD_PREFIX: &str = "whk_forward_";

/// Whether the sender can post to `url`: written out as `http://…` or
/// `https://…` without control characters (which the parser would drop or
/// escape, so the stored URL would not be the one posted to), and parsed
/// as the sender parses it, with a host (so a port past 65535 or a host
/// with a space is refused when it is given, not at every attempt). A host
/// outside ASCII is allowed; it is sent in its punycode form.
pub(crate) fn deliverable(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && !url.chars().any(char::is_control)
        && reqwest::Url::parse(url).is_ok_and(|u| u.host().is_some())
}

impl Forward {
    /// Where events are posted.
    fn endpoint(&self) -> String {
        format!("{}/api/v2/gamify/event", self.url.trim_end_matches('/'))
    }

    /// The subscription's id: a new URL or key is a new subscription.
    fn subscription_id(&self) -> String {
        use sha2::Digest;
        let digest = Sha256::new()
            .chain_update(self.endpoint())
            .chain_update([0u8])
            .chain_update(&self.api_key)
            .finalize();
        format!("{FORWARD_PREFIX}{}", gamify_store::hex(&digest[..8]))
    }
}

/// How deliveries are retried (`[webhooks]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Forward every recorded event, if set.
    pub forward: Option<Forward>,
    /// Attempts in all before a delivery is `failed`.
    pub max_attempts: u32,
    /// Wait after the first failure.
    pub retry_base: Duration,
    /// The longest wait between attempts.
    pub retry_max: Duration,
    /// How long a receiver may take to answer.
    pub timeout: Duration,
    /// The UTC hour (0–23) from which a live streak with no event yet
    /// today is `streak.at_risk`.
    pub at_risk_hour: u32,
    /// How long finished deliveries stay in the log (from their last
    /// attempt); `None`: for ever.
    pub keep_deliveries: Option<Duration>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            forward: None,
            max_attempts: 10,
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(3_600),
            timeout: Duration::from_secs(10),
            at_risk_hour: 18,
            keep_deliveries: Some(Duration::from_secs(30 * 86_400)),
        }
    }
}

impl Render<Subscription> for SubscriptionResponse {
    fn render(s: &Subscription) -> Self {
        SubscriptionResponse {
            id: s.id.clone(),
            // A password in the URL is sent with every delivery but, like
            // the signing secret, never shown back.
            url: crate::config::redact_url(&s.url),
            events: s.topics.iter().map(|t| t.as_str().to_owned()).collect(),
            description: s.description.clone(),
            created_at: rfc3339_ms(s.created_at_ms),
        }
    }
}

impl Render<Delivery> for DeliveryResponse {
    fn render(d: &Delivery) -> Self {
        DeliveryResponse {
            id: d.id.clone(),
            topic: d.topic.as_str().to_owned(),
            user_id: d.user_id.clone(),
            status: d.status.as_str().to_owned(),
            attempts: d.attempts,
            created_at: rfc3339_ms(d.created_at_ms),
            next_attempt_at: (d.status == DeliveryStatus::Pending)
                .then(|| rfc3339_ms(d.next_attempt_at_ms)),
            last_attempt_at: d.last_attempt_at_ms.map(rfc3339_ms),
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            data: serde_json::from_str(&d.data).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// HMAC-SHA256 of `timestamp.body` with `secret`, in hex: the value after
/// `v1=` in `Gamify-Signature`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    gamify_store::hex(&mac.finalize().into_bytes())
}

/// A signing secret: `whsec_` and 32 random bytes in hex.
fn new_secret() -> String {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).expect("the operating system's random source is available");
    format!("whsec_{}", gamify_store::hex(&random))
}

/// What a forwarded event is posted as: the body of `POST /event` (the
/// event as its sender made it), from an `event.recorded` notice's data.
fn forward_body(data: &str) -> String {
    let data: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    let mut body = serde_json::Map::new();
    for key in [
        "user_id",
        "category",
        "action",
        "value",
        "metadata",
        "occurred_at",
    ] {
        if let Some(v) = data.get(key).filter(|v| !v.is_null()) {
            body.insert(key.to_owned(), v.clone());
        }
    }
    serde_json::Value::Object(body).to_string()
}

/// The body posted for a delivery: the same bytes on every attempt.
pub fn body(delivery: &Delivery) -> String {
    format!(
        r#"{{"id":"{}","type":"{}","created_at":{},"data":{}}}"#,
        delivery.id,
        delivery.topic.as_str(),
        serde_json::Value::String(rfc3339_ms(delivery.created_at_ms)),
        delivery.data
    )
}

impl Engine {
    /// Adds a subscription; the answer carries its secret, shown only here.
    pub async fn subscribe(
        &self,
        request: SubscriptionRequest,
    ) -> Result<SubscriptionCreated, EngineError> {
        let mut errors = Vec::new();
        let url = request.url.trim().to_owned();
        if url.len() > MAX_URL_LEN || !deliverable(&url) {
            errors.push(FieldError {
                field: "url".into(),
                message: format!(
                    "expected an http:// or https:// URL with a host, of at most {MAX_URL_LEN} characters"
                ),
            });
        }
        let mut topics = Vec::new();
        for (i, name) in request.events.iter().enumerate() {
            match Topic::parse(name) {
                Some(t) if !topics.contains(&t) => topics.push(t),
                Some(_) => {}
                None => errors.push(FieldError {
                    field: format!("events[{i}]"),
                    message: format!(
                        "unknown event type {name:?}; expected one of: {}",
                        Topic::ALL.map(Topic::as_str).join(", ")
                    ),
                }),
            }
        }
        if request.events.is_empty() {
            errors.push(FieldError {
                field: "events".into(),
                message: "name at least one event type".into(),
            });
        }
        let description = request.description.unwrap_or_default();
        crate::model::check_text(&mut errors, "description", &description, 0, 500);
        if !errors.is_empty() {
            return Err(EngineError::Invalid(errors));
        }
        let now = self.now_ms();
        let subscription = Subscription {
            id: new_id("whk", now),
            url,
            topics,
            secret: new_secret(),
            description,
            created_at_ms: now,
        };
        self.store().subscribe(subscription.clone()).await?;
        tracing::info!(webhook = %subscription.id, topics = %gamify_store::webhook::encode_topics(&subscription.topics), "webhook subscription added");
        Ok(SubscriptionCreated {
            secret: subscription.secret.clone(),
            subscription: SubscriptionResponse::render(&subscription),
        })
    }

    /// The subscriptions not deleted.
    pub async fn subscriptions(&self) -> Result<Vec<SubscriptionResponse>, EngineError> {
        Ok(self
            .store()
            .subscriptions()
            .await?
            .iter()
            .map(SubscriptionResponse::render)
            .collect())
    }

    /// Deletes a subscription; what it had pending is cancelled.
    pub async fn unsubscribe(&self, id: &str) -> Result<(), EngineError> {
        self.store().unsubscribe(id, self.now_ms()).await?;
        tracing::info!(webhook = %id, "webhook subscription deleted");
        Ok(())
    }

    /// A subscription's delivery log, newest first, and the cursor of the
    /// next page.
    pub async fn deliveries(
        &self,
        subscription_id: &str,
        status: Option<&str>,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<(Vec<DeliveryResponse>, Option<String>), EngineError> {
        let limit = self.check_limit(limit)?;
        let status = match status {
            None => None,
            Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
                EngineError::field(
                    "status",
                    format!("expected pending, delivered, failed or cancelled, got {text:?}"),
                )
            })?),
        };
        let before = match before {
            None => None,
            Some(text) => Some(text.parse::<i64>().map_err(|_| {
                EngineError::field("before", "expected a cursor from an earlier page")
            })?),
        };
        if !self.store().subscription_made(subscription_id).await? {
            return Err(EngineError::NotFound("webhook"));
        }
        let rows = self
            .store()
            .deliveries(subscription_id, status, before, limit + 1)
            .await?;
        let (page, next) = Engine::page_of(rows, limit, |d| d.seq.to_string());
        Ok((page.iter().map(DeliveryResponse::render).collect(), next))
    }

    /// Sends a delivery again as soon as the worker gets to it.
    pub async fn replay_delivery(&self, id: &str) -> Result<DeliveryResponse, EngineError> {
        let delivery = self.store().replay_delivery(id, self.now_ms()).await?;
        tracing::info!(delivery = %id, "webhook delivery replayed");
        Ok(DeliveryResponse::render(&delivery))
    }

    /// Makes the forwarding subscription match `forward`: adds it (an
    /// `event.recorded` subscription to the service's event endpoint,
    /// signed and authorised with the API key) if missing, and deletes one
    /// left by other settings. Nodes starting at once may both try; the
    /// loser's attempt changes nothing.
    pub async fn keep_forwarding(&self, forward: Option<&Forward>) -> Result<(), EngineError> {
        let wanted = forward.map(Forward::subscription_id);
        let existing = self.store().subscriptions().await?;
        for old in existing
            .iter()
            .filter(|s| s.id.starts_with(FORWARD_PREFIX) && Some(&s.id) != wanted.as_ref())
        {
            match self.store().unsubscribe(&old.id, self.now_ms()).await {
                Ok(()) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(webhook = %old.id, "event forwarding to a previous GAMIFY_EXTERNAL_API stopped");
        }
        let (Some(forward), Some(id)) = (forward, wanted) else {
            return Ok(());
        };
        if existing.iter().any(|s| s.id == id) {
            return Ok(());
        }
        let subscription = Subscription {
            id: id.clone(),
            url: forward.endpoint(),
            topics: vec![Topic::EventRecorded],
            secret: forward.api_key.clone(),
            description: "GAMIFY_EXTERNAL_API: every recorded event, forwarded".to_owned(),
            created_at_ms: self.now_ms(),
        };
        match self.store().subscribe(subscription).await {
            Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(webhook = %id, url = %crate::config::redact_url(&forward.endpoint()), "forwarding recorded events");
        Ok(())
    }

    /// The streak notices no write causes, for the engine clock's today:
    /// `streak.broken` for streaks of 2 days or more that ended the day
    /// before yesterday (yesterday passed without an event), and, from
    /// `at_risk_hour` (UTC), `streak.at_risk` for live streaks with no event
    /// yet today. Walks only if a subscription wants them; a notice already
    /// written (by an earlier sweep, or another node's) is not written
    /// again. Returns how many of each were found.
    pub async fn send_streak_notices(&self, at_risk_hour: u32) -> Result<(u64, u64), EngineError> {
        const DAY_MS: i64 = 86_400_000;
        let subscriptions = self.store().subscriptions().await?;
        let wants = |t: Topic| subscriptions.iter().any(|s| s.wants(t));
        let now = self.now_ms();
        let today = Day::from_unix_millis(now);
        let start = |d: Day| d.0 * DAY_MS;
        let mut found = (0, 0);
        if wants(Topic::StreakBroken) {
            let last = today.prev().prev();
            let filter = UserFilter::LastActive {
                from_ms: start(last),
                to_ms: start(today.prev()),
            };
            found.0 = self
                .notify_users(filter, |user, state| {
                    let streak = state.runs.streak_ending_on(last);
                    (streak >= 2).then(|| webhook::streak_broken(user, streak, last, now))
                })
                .await?;
        }
        let risky_from = start(today) + i64::from(at_risk_hour) * 3_600_000;
        if wants(Topic::StreakAtRisk) && now >= risky_from {
            let filter = UserFilter::LastActive {
                from_ms: start(today.prev()),
                to_ms: start(today),
            };
            let hours_left = ((start(today) + DAY_MS - now) / 3_600_000) as u32;
            found.1 = self
                .notify_users(filter, |user, state| {
                    let streak = state.runs.current(today);
                    (streak >= 1)
                        .then(|| webhook::streak_at_risk(user, streak, today, hours_left, now))
                })
                .await?;
        }
        Ok(found)
    }

    /// Walks the users `filter` selects, 500 at a time, and writes the
    /// notice `notice` makes of each (if any); returns how many.
    async fn notify_users(
        &self,
        filter: UserFilter,
        notice: impl Fn(&str, &gamify_core::UserState) -> Option<webhook::Notice>,
    ) -> Result<u64, EngineError> {
        let mut after: Option<String> = None;
        let mut count = 0;
        loop {
            let page = self
                .store()
                .users_where(filter, after.as_deref(), 500)
                .await?;
            let Some(last) = page.last().cloned() else {
                return Ok(count);
            };
            // Looked up together: PostgreSQL answers them in batches.
            let lookups = page.iter().map(|id| async move {
                let user = gamify_core::UserId::parse(id)
                    .map_err(|_| StoreError::Corrupt(format!("stored user id {id:?}")))?;
                self.store().user(&user).await
            });
            let snapshots = futures_util::future::join_all(lookups).await;
            let mut notices = Vec::new();
            for (id, snapshot) in page.iter().zip(snapshots) {
                if let Some(snapshot) = snapshot?
                    && let Some(n) = notice(id, &snapshot.state)
                {
                    notices.push(n);
                }
            }
            count += notices.len() as u64;
            self.store().notify(notices).await?;
            after = Some(last);
        }
    }

    /// Deletes the finished deliveries (delivered, failed, cancelled) last
    /// tried more than `keep` ago; pending ones stay whatever their age.
    /// A thousand per statement, and after each it waits three times as
    /// long as the statement took, so that pruning a long log (the first
    /// sweep after an upgrade, or after `keep_days` is lowered) takes at
    /// most about a quarter of the writer's time. Returns how many it
    /// deleted.
    pub async fn prune_deliveries(&self, keep: Duration) -> Result<u64, EngineError> {
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let before = self.now_ms().saturating_sub(keep_ms);
        let mut pruned = 0;
        loop {
            let started = std::time::Instant::now();
            let n = self.store().prune_deliveries(before, PRUNE_BATCH).await?;
            self.metrics().deliveries_pruned(n);
            pruned += n;
            if n < u64::from(PRUNE_BATCH) {
                return Ok(pruned);
            }
            if pruned % 100_000 < u64::from(PRUNE_BATCH) {
                tracing::info!(pruned, "pruning the webhook delivery log");
            }
            tokio::time::sleep(started.elapsed() * PRUNE_PAUSE).await;
        }
    }

    /// Runs [`Engine::send_streak_notices`] shortly after every UTC
    /// midnight and at `at_risk_hour`, and hourly in between (a sweep that
    /// failed is tried again; one repeated sends nothing twice), and
    /// [`Engine::prune_deliveries`] with it if `keep_deliveries` is set.
    pub async fn run_webhook_sweeps(self, settings: WebhookSettings) {
        loop {
            match self.send_streak_notices(settings.at_risk_hour).await {
                Ok((broken, at_risk)) if broken + at_risk > 0 => {
                    tracing::info!(broken, at_risk, "streak notices written")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "streak sweep failed; trying again within the hour")
                }
            }
            if let Some(keep) = settings.keep_deliveries {
                match self.prune_deliveries(keep).await {
                    Ok(0) => {}
                    Ok(pruned) => {
                        tracing::info!(
                            pruned,
                            keep_days = keep.as_secs() / 86_400,
                            "webhook delivery log pruned"
                        )
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning the webhook delivery log failed; trying again within the hour")
                    }
                }
            }
            let hour = 3_600_000;
            let now = self.now_ms();
            let next_hour = (now.div_euclid(hour) + 1) * hour + 30_000;
            tokio::time::sleep(Duration::from_millis(
                (next_hour - now).clamp(1_000, hour) as u64
            ))
            .await;
        }
    }

    /// Sends what the outbox has due, for as long as the engine lives (on
    /// every node: each takes its own rows).
    pub async fn run_webhook_deliveries(self, settings: WebhookSettings) {
        let client = match reqwest::Client::builder()
            .timeout(settings.timeout)
            .user_agent(concat!("gamify/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot start the webhook sender");
                return;
            }
        };
        // Longer than any attempt can take, so a lease ends only for a node
        // that stopped.
        let lease_ms = settings.timeout.as_millis() as i64 * 2 + 5_000;
        loop {
            if let Ok(n) = self.store().pending_deliveries().await {
                self.metrics().outbox_pending(n);
            }
            let due = match self
                .store()
                .due_deliveries(self.now_ms(), lease_ms, ROUND)
                .await
            {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the webhook outbox; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if due.is_empty() {
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
            // Attempts are recorded as they finish, together: one
            // transaction for all that finished meanwhile.
            let mut finished = futures_util::stream::iter(due)
                .map(|due| self.send(&client, &settings, due))
                .buffer_unordered(IN_FLIGHT)
                .ready_chunks(ROUND as usize);
            while let Some(attempts) = finished.next().await {
                let n = attempts.len();
                if let Err(e) = self.store().delivery_attempted(attempts).await {
                    // They stay pending and are sent again: at least once.
                    tracing::warn!(error = %e, attempts = n, "cannot record webhook attempts");
                }
            }
        }
    }

    /// Sends one delivery; returns the attempt to record.
    async fn send(
        &self,
        client: &reqwest::Client,
        settings: &WebhookSettings,
        due: Due,
    ) -> Attempt {
        let d = &due.delivery;
        let now = self.now_ms();
        let (status_code, error) = match &due.url {
            None => (None, Some("its subscription was deleted".to_owned())),
            Some(url) => {
                let forwarded = d.subscription_id.starts_with(FORWARD_PREFIX);
                let body = if forwarded {
                    forward_body(&d.data)
                } else {
                    body(d)
                };
                let timestamp = now.div_euclid(1_000);
                let mut request = client.post(url);
                if forwarded {
                    // The receiving service records it once, however often
                    // it is sent.
                    let event_id = serde_json::from_str::<serde_json::Value>(&d.data)
                        .ok()
                        .and_then(|v| v["event_id"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| d.id.clone());
                    request = request
                        .bearer_auth(&due.secret)
                        .header("idempotency-key", event_id);
                }
                let sent = request
                    .header("content-type", "application/json")
                    .header("gamify-delivery", &d.id)
                    .header("gamify-event", d.topic.as_str())
                    .header("gamify-timestamp", timestamp.to_string())
                    .header(
                        "gamify-signature",
                        format!("v1={}", signature(&due.secret, timestamp, &body)),
                    )
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
                    Ok(r) => (
                        Some(r.status().as_u16()),
                        Some(format!("the receiver answered {}", r.status())),
                    ),
                    Err(e) => (None, Some(e.without_url().to_string())),
                }
            }
        };
        let attempts = d.attempts + 1;
        let (status, next) = match (&due.url, &error) {
            (None, _) => (DeliveryStatus::Cancelled, now),
            (_, None) => (DeliveryStatus::Delivered, now),
            (_, Some(_)) if attempts >= settings.max_attempts => (DeliveryStatus::Failed, now),
            (_, Some(_)) => (
                DeliveryStatus::Pending,
                now + backoff_ms(
                    attempts,
                    settings.retry_base.as_millis() as i64,
                    settings.retry_max.as_millis() as i64,
                ),
            ),
        };
        match &error {
            None => {
                tracing::debug!(delivery = %d.id, topic = d.topic.as_str(), "webhook delivered")
            }
            Some(e) => {
                tracing::warn!(delivery = %d.id, topic = d.topic.as_str(), attempts, status = status.as_str(), error = %e, "webhook delivery failed")
            }
        }
        self.metrics().webhook_attempt(status);
        Attempt {
            id: d.id.clone(),
            at_ms: now,
            status_code,
            error,
            status,
            next_attempt_at_ms: next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed with Python's hmac module, as the docs show receivers.
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_ne!(signature("k", 1, "x"), signature("k", 2, "x"));
        assert_ne!(signature("a", 1, "x"), signature("b", 1, "x"));
    }
}
