//! The OpenAPI document, derived from the handlers and models. `gamify openapi`
//! prints it; `docs/openapi.json` is the committed copy, and a test fails when
//! the copy is stale.

use utoipa::OpenApi;

use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use super::{auth, boards, data, economy, handlers, rules, tenants, webhooks};
use crate::boards as board_json;
use crate::webhooks as webhook_json;
use crate::{analytics, erasure, model, verify, wallet};

/// Declares the API key every keyed route takes; each route names the scope
/// it needs (`ingest`, `read` or `admin`) in its security requirement.
struct ApiKey;

impl Modify for ApiKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`gmf_…`, or GAMIFY_API_KEY) with the scope the route names; \
                         none needed while no key exists (docs/API.md, \"API keys\"). A key \
                         belongs to one tenant and reaches only its data; a request may name \
                         its tenant in the Gamify-Tenant header (docs/API.md, \"Tenants\")",
                    ))
                    .build(),
            ),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gamify",
        description = "Habit-economy engine: points weighted by category, daily streaks with bonuses, levels, achievements and leaderboards. Every non-2xx response has the ErrorResponse shape.",
        license(name = "MIT")
    ),
    paths(
        handlers::record_event,
        handlers::simulate_event,
        handlers::list_events,
        handlers::get_balance,
        handlers::get_stats,
        boards::get_leaderboard,
        boards::get_standing,
        boards::put_privacy,
        handlers::list_achievements,
        handlers::list_categories,
        economy::spend_points,
        economy::get_ledger,
        economy::list_rewards,
        economy::redeem_reward,
        economy::list_user_redemptions,
        economy::list_all_rewards,
        economy::create_reward,
        economy::update_reward,
        economy::deactivate_reward,
        economy::list_redemptions,
        economy::fulfil_redemption,
        economy::cancel_redemption,
        economy::adjust_points,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::delete_webhook,
        webhooks::list_deliveries,
        webhooks::replay_delivery,
        auth::create_key,
        auth::list_keys,
        auth::revoke_key,
        data::analytics,
        rules::current,
        rules::replace,
        rules::versions,
        rules::version,
        data::verify,
        data::export,
        data::erase_user,
        tenants::create_tenant,
        tenants::list_tenants,
        handlers::healthz,
        handlers::metrics,
        handlers::readyz,
    ),
    components(schemas(
        model::EventRequest,
        model::EventResponse,
        model::SimulationResponse,
        model::KeyRequest,
        model::KeyResponse,
        model::KeyCreated,
        model::TenantRequest,
        model::TenantResponse,
        model::TenantCreated,
        model::RulesResponse,
        model::CategoryRule,
        model::StreakRule,
        model::LevelRule,
        model::RuleVersionSummary,
        model::RuleVersionsResponse,
        model::UnlockedAchievement,
        model::BalanceResponse,
        model::StatsResponse,
        model::LeaderboardEntry,
        model::AchievementResponse,
        model::ErrorResponse,
        model::ErrorBody,
        model::FieldError,
        wallet::SpendRequest,
        wallet::AdjustmentRequest,
        wallet::MovementResponse,
        wallet::LedgerEntryResponse,
        wallet::RewardRequest,
        wallet::RewardResponse,
        wallet::RedeemRequest,
        wallet::RedemptionResponse,
        verify::FindingResponse,
        erasure::ErasureResponse,
        board_json::StandingResponse,
        board_json::BoardRowResponse,
        board_json::PrivacyRequest,
        board_json::PrivacyResponse,
        erasure::RemovedCounts,
        webhook_json::SubscriptionRequest,
        webhook_json::SubscriptionResponse,
        webhook_json::SubscriptionCreated,
        webhook_json::DeliveryResponse,
        analytics::AnalyticsResponse,
        analytics::DayCount,
    )),
    modifiers(&ApiKey)
)]
pub struct ApiDoc;

/// The document as pretty JSON, ending in a newline.
pub fn spec_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    json.push('\n');
    json
}
