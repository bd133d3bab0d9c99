//! The OpenAPI document, derived from the handlers and models. `gamify openapi`
//! prints it; `docs/openapi.json` is the committed copy, and a test fails when
//! the copy is stale.

use utoipa::OpenApi;

use super::handlers;
use crate::model;

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
        handlers::list_events,
        handlers::get_balance,
        handlers::get_stats,
        handlers::get_leaderboard,
        handlers::list_achievements,
        handlers::healthz,
        handlers::readyz,
    ),
    components(schemas(
        model::EventRequest,
        model::EventResponse,
        model::UnlockedAchievement,
        model::BalanceResponse,
        model::StatsResponse,
        model::LeaderboardEntry,
        model::AchievementResponse,
        model::ErrorResponse,
        model::ErrorBody,
        model::FieldError,
    ))
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
