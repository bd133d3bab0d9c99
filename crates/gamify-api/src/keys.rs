//! API keys: the admin API's bodies (`/api/v2/gamify/admin/keys`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of `POST /api/v2/gamify/admin/keys`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    /// What the key is for, 1–100 characters (`billing service`).
    #[schema(example = "billing service")]
    pub name: String,
    /// Any of `ingest`, `read`, `admin`; at least one.
    #[schema(example = json!(["ingest"]))]
    pub scopes: Vec<String>,
}

/// A key as the admin API lists it: never its secret.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct KeyResponse {
    /// `key_` and 28 hex digits.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// What it may do, in the order `ingest`, `read`, `admin`.
    pub scopes: Vec<String>,
    /// When it was made.
    pub created_at: String,
    /// When it was revoked; null while it works.
    pub revoked_at: Option<String>,
}

/// A new key with its secret: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct KeyCreated {
    /// The key.
    #[serde(flatten)]
    pub key: KeyResponse,
    /// What clients send as `Authorization: Bearer …`. Keep it; only its
    /// hash is stored, so it cannot be shown again.
    pub secret: String,
}
