//! The OpenAPI document, derived from the handlers and models. `gamify openapi`
//! prints it; `docs/openapi.json` is the committed copy, and a test fails when
//! the copy is stale.

use utoipa::OpenApi;

use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Content, HeaderBuilder, Object, Ref, RefOr, Required, ResponseBuilder, Type,
};

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

/// The refusals every route of a kind can give, declared once under
/// `components.responses` and referred to from each operation that can give
/// them (an operation's own, more specific description of a status wins):
/// a keyed route can refuse the key (401, 403) or its rate (429) and names
/// its tenant with `Gamify-Tenant`; a route that reads a body can refuse it
/// (408, 413, 415, and 400 if it is JSON); a body, path, query or header
/// can break a rule (422); a route that reads or writes storage can find it
/// unavailable (503). The errors table in docs/API.md says when each one
/// happens.
struct CommonErrors;

/// `(status, component name, description)` of the shared refusals.
const COMMON: [(&str, &str, &str); 9] = [
    (
        "400",
        "MalformedJson",
        "The body is not well-formed JSON (`malformed_json`)",
    ),
    (
        "401",
        "Unauthorized",
        "No key, or an unknown or revoked one (`unauthorized`)",
    ),
    (
        "403",
        "Forbidden",
        "The key lacks the route's scope or belongs to another tenant (`forbidden`); \
         an admin route while no key exists (`admin_disabled`)",
    ),
    (
        "408",
        "RequestTimeout",
        "The body did not arrive within `limits.header_timeout_ms` of the head (`request_timeout`)",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body is over `limits.max_body_bytes` (`payload_too_large`)",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not sent as `application/json`, or is compressed (`unsupported_media_type`)",
    ),
    (
        "422",
        "ValidationFailed",
        "A field, parameter or header breaks a rule (`validation_failed`); `details` names each",
    ),
    (
        "429",
        "RateLimited",
        "The key spent its request budget on this node (`rate_limited`); retry after `Retry-After` seconds",
    ),
    (
        "503",
        "Unavailable",
        "Storage is unavailable (`unavailable`); retry (with the same `Idempotency-Key`, if any)",
    ),
];

/// Keyed routes that answer from memory and never reach storage.
const WITHOUT_STORAGE: [&str; 2] = ["/api/v2/gamify/achievements", "/api/v2/gamify/categories"];

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (status, name, description) in COMMON {
            let mut response = ResponseBuilder::new().description(description).content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorResponse"))),
            );
            if status == "429" {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(Object::with_type(Type::Integer))
                        .description(Some("Seconds until the key may send again"))
                        .build(),
                );
            }
            components
                .responses
                .insert(name.to_owned(), RefOr::T(response.build()));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let statuses = refusals(path, operation);
                if operation.security.is_some() {
                    operation
                        .parameters
                        .get_or_insert_with(Vec::new)
                        .push(tenant_header());
                }
                for (status, name, _) in COMMON.iter().filter(|c| statuses.contains(&c.0)) {
                    operation
                        .responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| {
                            RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                        });
                }
            }
        }
    }
}

/// Which of [`COMMON`]'s statuses an operation can answer with.
fn refusals(path: &str, operation: &Operation) -> Vec<&'static str> {
    let keyed = operation.security.is_some();
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| body.content.contains_key("application/json"));
    let has_input = operation.request_body.is_some()
        || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let mut statuses = Vec::new();
    if json_body {
        statuses.push("400");
    }
    if keyed {
        statuses.extend(["401", "403"]);
    }
    if operation.request_body.is_some() {
        statuses.extend(["408", "413", "415"]);
    }
    // A keyed route reads the Gamify-Tenant header.
    if has_input || keyed {
        statuses.push("422");
    }
    if keyed {
        statuses.push("429");
        if !WITHOUT_STORAGE.contains(&path) {
            statuses.push("503");
        }
    }
    statuses
}

/// The optional `Gamify-Tenant` header every keyed route takes.
fn tenant_header() -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name("Gamify-Tenant")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The tenant the request is for; a key of another tenant is refused with 403, a \
             name no tenant can have with 422 (docs/API.md, \"Tenants\")",
        ))
        .schema(Some(Object::with_type(Type::String)))
        .build()
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
    modifiers(&ApiKey, &CommonErrors)
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
