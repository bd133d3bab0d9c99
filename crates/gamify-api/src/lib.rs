//! The JSON the Gamify HTTP API speaks: every request and response body,
//! shared by the server (`gamify`, which renders its records into them) and
//! the typed client (`gamify-client`). Field names and shapes follow the
//! brief; amounts are JSON numbers (exact to the thousandth), times RFC 3339
//! strings in UTC with milliseconds.

mod boards;
mod data;
mod error;
mod event;
mod keys;
mod rules;
mod tenants;
mod wallet;
mod webhooks;

pub use boards::{BoardRowResponse, PrivacyRequest, PrivacyResponse, StandingResponse};
pub use data::{AnalyticsResponse, DayCount, ErasureResponse, FindingResponse, RemovedCounts};
pub use error::{ErrorBody, ErrorResponse, FieldError};
pub use event::{
    AchievementResponse, BalanceResponse, EventRequest, EventResponse, LeaderboardEntry,
    SimulationResponse, StatsResponse, UnlockedAchievement,
};
pub use keys::{KeyCreated, KeyRequest, KeyResponse};
pub use rules::{
    CategoryRule, LevelRule, RuleVersionSummary, RuleVersionsResponse, RulesResponse, StreakRule,
};
pub use tenants::{TenantCreated, TenantRequest, TenantResponse};
pub use wallet::{
    AdjustmentRequest, LedgerEntryResponse, MovementResponse, RedeemRequest, RedemptionResponse,
    RewardRequest, RewardResponse, SpendRequest,
};
pub use webhooks::{
    DeliveryResponse, SubscriptionCreated, SubscriptionRequest, SubscriptionResponse,
};
