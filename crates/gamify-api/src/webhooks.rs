//! Webhook subscriptions and their delivery log.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /api/v2/gamify/admin/webhooks`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionRequest {
    /// Where deliveries are posted: `http://` or `https://`.
    #[schema(example = "https://app.example.com/hooks/gamify")]
    pub url: String,
    /// The event types to hear about: `achievement.unlocked`, `level.up`,
    /// `streak.extended`, `streak.broken`, `streak.at_risk`,
    /// `points.spent`, `reward.redeemed`, `event.recorded`.
    #[schema(example = json!(["achievement.unlocked", "level.up"]))]
    pub events: Vec<String>,
    /// A note for admins, up to 500 characters.
    #[serde(default)]
    pub description: Option<String>,
}

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct SubscriptionResponse {
    /// `whk_…`
    pub id: String,
    /// Where deliveries are posted; a password in it shows as `***`.
    pub url: String,
    /// The event types it hears about.
    pub events: Vec<String>,
    /// The admin's note.
    pub description: String,
    /// When it was made (RFC 3339).
    pub created_at: String,
}

/// A new subscription, with its signing secret: the only time it is shown.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct SubscriptionCreated {
    /// The subscription.
    #[serde(flatten)]
    pub subscription: SubscriptionResponse,
    /// The HMAC-SHA256 key of its `Gamify-Signature` headers. Keep it; it
    /// is not shown again.
    pub secret: String,
}

/// One delivery in a subscription's log.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct DeliveryResponse {
    /// `dlv_…`: the `Gamify-Delivery` header, the same on every attempt;
    /// ids sort by the time of the change they tell about.
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub topic: String,
    /// Whom it is about.
    pub user_id: String,
    /// `pending`, `delivered`, `failed` or `cancelled`.
    pub status: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When the change happened (RFC 3339).
    pub created_at: String,
    /// For a pending delivery: when it is due.
    pub next_attempt_at: Option<String>,
    /// When it was last tried.
    pub last_attempt_at: Option<String>,
    /// The receiver's HTTP status at the last attempt, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The body's `data` object.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}
