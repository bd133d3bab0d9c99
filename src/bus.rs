//! Events from a message bus: a NATS JetStream consumer as an alternative to
//! `POST /api/v2/gamify/event`, with the same validation and rules.
//!
//! Each message's body is the JSON of `POST /event`. A message is
//! acknowledged only after its event is committed; one that cannot be
//! recorded for a reason a retry will not change (malformed JSON, a field
//! the rules refuse, an erased user, its id reused with another body) goes
//! to the dead-letter subject, with the reason in a header, and is then
//! acknowledged; one that fails because storage is unavailable is not
//! acknowledged, and JetStream delivers it again.
//!
//! Duplicates: the message's `Nats-Msg-Id` header (or, without one, the
//! stream and its sequence number) is the event's idempotency key, so a
//! message delivered twice (a consumer killed between commit and ack, a
//! publisher retrying) is recorded once.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer, stream};
use futures_util::StreamExt;

use crate::engine::{Engine, EngineError, check_idempotency_key};
use crate::model::{EventRequest, shown};

/// Where to consume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// `nats://host:port`.
    pub url: String,
    /// The JetStream stream that captures [`NatsSettings::subject`]; created
    /// if missing.
    pub stream: String,
    /// The subject publishers send events to.
    pub subject: String,
    /// The durable consumer's name: nodes that share it share the work.
    pub consumer: String,
    /// Where refused messages go (captured by the stream
    /// `<stream>_DEAD`, created if missing).
    pub dead_letter_subject: String,
    /// How long a delivered message may stay unacknowledged (a consumer
    /// killed mid-batch) before JetStream delivers it again. Set when the
    /// consumer is created.
    pub ack_wait: Duration,
}

/// The header naming why a message was dead-lettered.
pub const REASON_HEADER: &str = "Gamify-Reason";
/// How many messages one fetch takes at most.
const BATCH: usize = 256;

/// Why the consumer stopped.
#[derive(Debug, thiserror::Error)]
#[error("NATS consumer: {0}")]
pub struct BusError(String);

fn bus_error(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError(format!("{what}: {e}"))
}

/// Connects (retrying until NATS answers), makes sure the streams and the
/// durable consumer exist, and records events from it until the process
/// ends. Returns only on an error it cannot retry.
pub async fn consume(engine: Engine, settings: NatsSettings) -> Result<(), BusError> {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(&settings.url)
        .await
        .map_err(|e| bus_error("connecting", e))?;
    let js = jetstream::new(client);
    js.get_or_create_stream(stream::Config {
        name: settings.stream.clone(),
        subjects: vec![settings.subject.clone()],
        ..Default::default()
    })
    .await
    .map_err(|e| bus_error("creating the stream", e))?;
    let dead_stream = format!("{}_DEAD", settings.stream);
    js.get_or_create_stream(stream::Config {
        name: dead_stream,
        subjects: vec![settings.dead_letter_subject.clone()],
        ..Default::default()
    })
    .await
    .map_err(|e| bus_error("creating the dead-letter stream", e))?;
    let consumer: consumer::PullConsumer = js
        .get_stream(&settings.stream)
        .await
        .map_err(|e| bus_error("opening the stream", e))?
        .get_or_create_consumer(
            &settings.consumer,
            consumer::pull::Config {
                durable_name: Some(settings.consumer.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: settings.ack_wait,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| bus_error("creating the consumer", e))?;
    tracing::info!(
        url = %settings.url,
        stream = %settings.stream,
        subject = %settings.subject,
        consumer = %settings.consumer,
        "consuming events from NATS"
    );
    loop {
        let batch = consumer
            .fetch()
            .max_messages(BATCH)
            .expires(Duration::from_secs(1))
            .messages()
            .await;
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "NATS fetch failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Each message as it arrives, many at once: the store commits
        // concurrent events together, and none waits for the batch to fill.
        batch
            .for_each_concurrent(BATCH, |message| async {
                match message {
                    Ok(m) => handle(&engine, &js, &settings, &m).await,
                    Err(e) => tracing::warn!(error = %e, "NATS message not received"),
                }
            })
            .await;
    }
}

/// A `Nats-Msg-Id` as an event's idempotency key: itself when it follows
/// `Idempotency-Key`'s rules, else `nats-id:` and its SHA-256, so that any
/// id JetStream takes (spaces, any length) still records its event once.
fn key_of(id: &str) -> String {
    use sha2::{Digest, Sha256};
    if check_idempotency_key(id).is_ok() {
        id.to_owned()
    } else {
        format!(
            "nats-id:{}",
            gamify_store::hex(&Sha256::digest(id.as_bytes()))
        )
    }
}

/// Records one message's event and acknowledges it, dead-letters it, or
/// leaves it for redelivery.
async fn handle(
    engine: &Engine,
    js: &jetstream::Context,
    settings: &NatsSettings,
    message: &jetstream::Message,
) {
    let sequence = message.info().map(|i| i.stream_sequence).unwrap_or(0);
    let key = message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| key_of(v.as_str()))
        .unwrap_or_else(|| format!("nats:{}:{sequence}", settings.stream));
    let parsed = if crate::model::starts_as_object(&message.payload) {
        serde_json::from_slice::<EventRequest>(&message.payload)
            .map_err(|e| format!("malformed event JSON: {e}"))
    } else {
        Err("malformed event JSON: the body must be a JSON object".to_owned())
    };
    let outcome = match parsed {
        Err(e) => Err(e),
        Ok(request) => match engine.record_event(request, Some(&key)).await {
            Ok(_) => Ok(()),
            Err(EngineError::Unavailable(e)) => {
                tracing::warn!(error = %e, sequence, "storage unavailable; the message will be delivered again");
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                    .await;
                return;
            }
            Err(EngineError::Store(e)) => {
                tracing::error!(error = %e, sequence, "storage failed; the message will be delivered again");
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                    .await;
                return;
            }
            Err(e) => Err(refusal(e)),
        },
    };
    if let Err(reason) = outcome {
        let reason = header_value(&reason);
        let mut headers = HeaderMap::new();
        headers.insert(REASON_HEADER, reason.as_str());
        headers.insert("Gamify-Source-Sequence", sequence.to_string().as_str());
        let published = match js
            .publish_with_headers(
                settings.dead_letter_subject.clone(),
                headers,
                message.payload.clone(),
            )
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = published {
            tracing::warn!(error = %e, sequence, "could not dead-letter a message; it will be delivered again");
            return;
        }
        tracing::info!(sequence, reason = %reason, "message dead-lettered");
    }
    if let Err(e) = message.ack().await {
        // Delivered again later, and then answered by its idempotency key.
        tracing::warn!(error = %e, sequence, "NATS ack failed");
    }
}

/// `text` as a NATS header value: line breaks (which a header cannot hold,
/// and which a refusal can quote from the message, as in an unknown field's
/// name) and other control characters become spaces.
fn header_value(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Why the engine refused an event, as a dead letter's reason.
fn refusal(e: EngineError) -> String {
    match e {
        // As an HTTP answer's message says it: each naming its field once.
        EngineError::Invalid(fields) => fields.iter().map(shown).collect::<Vec<_>>().join("; "),
        EngineError::IdempotencyConflict => {
            "its Nats-Msg-Id was used before for a different event".into()
        }
        other => other.to_string(),
    }
}
