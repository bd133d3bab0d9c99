//! The points economy: spends, adjustments, the ledger, rewards and
//! redemptions.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Body of `POST /api/v2/gamify/spend`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendRequest {
    /// Whose points.
    #[schema(example = "user_123")]
    pub user_id: String,
    /// How many points, > 0, to the thousandth.
    #[schema(example = 50.0)]
    pub points: f64,
    /// Why, for the ledger (1–500 characters).
    #[schema(example = "Coffee voucher")]
    pub reason: String,
    /// Any JSON object, kept with the spend.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// Body of `POST /api/v2/gamify/admin/adjustments`: a correction either way.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequest {
    /// Whose points.
    pub user_id: String,
    /// The change, non-zero: positive credits (and counts as earned),
    /// negative debits the balance only.
    #[schema(example = -25.0)]
    pub points: f64,
    /// Why, for the ledger (1–500 characters).
    pub reason: String,
    /// Any JSON object.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
}

/// A spend or an adjustment, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MovementResponse {
    /// `spd_…` or `adj_…`; the ledger entry's `reference`.
    pub id: String,
    /// Whose points.
    pub user_id: String,
    /// `spend` or `adjustment`.
    pub kind: String,
    /// The change to the balance (negative for a spend).
    pub points: f64,
    /// Why.
    pub reason: String,
    /// As sent.
    pub metadata: Option<serde_json::Value>,
    /// The spendable balance right after it.
    pub total_points: f64,
    /// Lifetime points right after it (a spend never lowers them).
    pub lifetime_points: f64,
    /// When it was recorded.
    pub created_at: String,
}

/// One ledger entry (`GET /api/v2/gamify/ledger/{user_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntryResponse {
    /// Its position in the ledger; also the paging cursor.
    pub seq: i64,
    /// `event`, `achievement_bonus`, `spend`, `redemption`, `refund`,
    /// `expiry` or `adjustment`.
    pub kind: String,
    /// The change to the spendable balance.
    pub points: f64,
    /// The balance right after it.
    pub balance_after: f64,
    /// Lifetime points right after it.
    pub lifetime_after: f64,
    /// What caused it: `evt_…`, `evt_…/achievement`, `spd_…`, `adj_…`, `red_…`.
    pub reference: String,
    /// When it was written.
    pub created_at: String,
    /// The rules version its event was scored with (`event` and
    /// `achievement_bonus` entries); null for the others.
    #[serde(default)]
    pub rules_version: Option<u32>,
}

/// Body of `POST /api/v2/gamify/admin/rewards` and `PUT …/rewards/{id}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardRequest {
    /// 1–64 characters: letters, digits, `_` and `-`. Taken from the path
    /// on update (and must match if given).
    #[serde(default)]
    #[schema(example = "special_reward")]
    pub id: Option<String>,
    /// Name in Finnish.
    #[schema(example = "Erikoispalkinto")]
    pub name_fi: String,
    /// Name in English.
    #[schema(example = "Special reward")]
    pub name_en: String,
    /// What the user gets.
    #[serde(default)]
    pub description: String,
    /// Points per redemption, ≥ 0.
    #[schema(example = 500.0)]
    pub cost: f64,
    /// Units in all; omitted or null: unlimited. Never below the units
    /// already redeemed.
    #[serde(default)]
    pub stock: Option<u32>,
    /// Redemptions one user may hold (not cancelled); null: no limit.
    #[serde(default)]
    pub per_user_limit: Option<u32>,
    /// Redeemable from (RFC 3339), inclusive.
    #[serde(default)]
    pub available_from: Option<String>,
    /// Redeemable until (RFC 3339), exclusive.
    #[serde(default)]
    pub available_until: Option<String>,
    /// Offered to users (default true).
    #[serde(default = "yes")]
    pub active: bool,
}

/// A reward in the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RewardResponse {
    /// Its id.
    pub id: String,
    /// Name in Finnish.
    pub name_fi: String,
    /// Name in English.
    pub name_en: String,
    /// What the user gets.
    pub description: String,
    /// Points per redemption.
    pub cost: f64,
    /// Units in all, or null for unlimited.
    pub stock: Option<u32>,
    /// Units still available, or null for unlimited.
    pub remaining: Option<u32>,
    /// Per-user limit, or null.
    pub per_user_limit: Option<u32>,
    /// Redeemable from, or null.
    pub available_from: Option<String>,
    /// Redeemable until, or null.
    pub available_until: Option<String>,
    /// Offered to users.
    pub active: bool,
    /// With `?user_id=`: whether that user's balance covers the cost now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affordable: Option<bool>,
}

/// Body of `POST /api/v2/gamify/rewards/{reward_id}/redeem`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// Who redeems it.
    #[schema(example = "user_123")]
    pub user_id: String,
}

/// A redemption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RedemptionResponse {
    /// `red_…`; the ledger entries' `reference`.
    pub id: String,
    /// The reward.
    pub reward_id: String,
    /// Who redeemed it.
    pub user_id: String,
    /// Points it cost (0 for a grant).
    pub cost: f64,
    /// `pending`, `fulfilled` or `cancelled`.
    pub status: String,
    /// For a free grant: `evt_…/achievement` that granted it.
    pub granted_by: Option<String>,
    /// When it was made.
    pub created_at: String,
    /// When its status last changed.
    pub updated_at: String,
}

fn yes() -> bool {
    true
}
