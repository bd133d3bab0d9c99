//! The JSON the API speaks, from the server's side. The types themselves
//! (requests, responses, the error body) live in the `gamify-api` crate,
//! which the typed client shares, and are re-exported here; this module
//! renders stored records into them ([`Render`]) and formats times.
//! Amounts are exact integers inside and become JSON numbers only here.

pub use gamify_api::{
    AchievementResponse, BalanceResponse, CategoryRule, ErrorBody, ErrorResponse, EventRequest,
    EventResponse, FieldError, KeyCreated, KeyRequest, KeyResponse, LeaderboardEntry, LevelRule,
    RuleVersionSummary, RuleVersionsResponse, RulesResponse, SimulationResponse, StatsResponse,
    StreakRule, TenantCreated, TenantRequest, TenantResponse, UnlockedAchievement,
};
use gamify_core::{AchievementId, LevelCurve, Points, Requirement, RuleSet, write_rules};
use gamify_store::{EventRecord, LeaderRow, RuleBook, RuleVersion};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Renders a stored record as its JSON: the server's side of the types in
/// `gamify_api`, which know nothing of storage.
pub trait Render<T> {
    /// `record` as the API shows it.
    fn render(record: &T) -> Self;
}

/// Renders a stored event: its level and the names of what it unlocked
/// come from the rules version it was scored with.
pub fn render_event(e: &EventRecord, book: &RuleBook) -> EventResponse {
    let version = book.get(e.rules_version).unwrap_or_else(|| book.current());
    let rules = &version.rules;
    let bonus = Points::from_milli(e.unlocked.iter().map(|(_, p)| p.milli()).sum());
    let lifetime_before =
        Points::from_milli(e.lifetime_after.milli() - e.points.milli() - bonus.milli());
    let level = rules.level_for(e.lifetime_after);
    EventResponse {
        id: e.id.clone(),
        user_id: e.user_id.clone(),
        category: e.category.as_str().to_owned(),
        action: e.action.clone(),
        value: e.value.as_points().to_f64(),
        points: e.points.to_f64(),
        created_at: rfc3339_ms(e.created_at_ms),
        occurred_at: rfc3339_ms(e.occurred_at_ms),
        // Stored metadata was serialised by us; a parse failure means a
        // damaged row, which is shown as absent rather than failing reads.
        metadata: e
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok()),
        category_weight: Points::from_milli(e.weight_milli).to_f64(),
        streak_day: e.streak_day,
        streak_bonus: f64::from(e.bonus_percent) / 100.0,
        achievements_unlocked: e
            .unlocked
            .iter()
            .map(|&(id, bonus)| unlocked(rules, id, bonus))
            .collect(),
        bonus_points: bonus.to_f64(),
        total_points: e.total_after.to_f64(),
        lifetime_points: e.lifetime_after.to_f64(),
        level,
        level_up: level > rules.level_for(lifetime_before),
        rules_version: e.rules_version,
    }
}

/// An unlocked achievement with its names in `rules` (the id again, if
/// `rules` lack it).
fn unlocked(rules: &RuleSet, id: AchievementId, bonus: Points) -> UnlockedAchievement {
    let def = rules.achievement(id);
    let name = |pick: fn(&gamify_core::Text) -> &String| {
        def.map_or_else(|| id.as_str().to_owned(), |d| pick(&d.name).clone())
    };
    UnlockedAchievement {
        id: id.as_str().to_owned(),
        name_fi: name(|t| &t.fi),
        name_en: name(|t| &t.en),
        bonus_points: bonus.to_f64(),
    }
}

/// A leaderboard row, its level by `rules`.
pub fn render_leader(row: &LeaderRow, rules: &RuleSet) -> LeaderboardEntry {
    LeaderboardEntry {
        rank: row.rank,
        user_id: row.user_id.clone(),
        points: row.lifetime.to_f64(),
        lifetime_points: row.lifetime.to_f64(),
        total_points: row.total.to_f64(),
        level: rules.level_for(row.lifetime),
    }
}

/// The catalogue of `rules`, in its order.
pub fn achievement_catalogue(rules: &RuleSet) -> Vec<AchievementResponse> {
    rules
        .achievements
        .iter()
        .map(|a| {
            let (requirement, threshold) = match a.requirement {
                Requirement::FirstEvent => ("first_event", None),
                Requirement::StreakDays(n) => ("streak_days", Some(f64::from(n))),
                Requirement::LifetimePoints(p) => ("lifetime_points", Some(p.to_f64())),
                Requirement::CategoryEvents(_, n) => ("category_events", Some(n as f64)),
                Requirement::CategoryPoints(_, p) => ("category_points", Some(p.to_f64())),
            };
            AchievementResponse {
                id: a.id.as_str().to_owned(),
                name_fi: a.name.fi.clone(),
                name_en: a.name.en.clone(),
                description_fi: a.description.fi.clone(),
                description_en: a.description.en.clone(),
                requirement: requirement.to_owned(),
                threshold,
                category: a.requirement.category().map(|c| c.as_str().to_owned()),
                bonus_points: a.bonus.to_f64(),
            }
        })
        .collect()
}

/// The categories of `rules` and their weights, in their order.
pub fn category_rules(rules: &RuleSet) -> Vec<CategoryRule> {
    rules
        .categories
        .iter()
        .map(|(c, w)| CategoryRule {
            name: c.as_str().to_owned(),
            weight: Points::from_milli(*w).to_f64(),
        })
        .collect()
}

/// One version of the rules as data, with the deployment's settings around
/// them.
pub fn rules_document(version: &RuleVersion, settings: &gamify_core::Rules) -> RulesResponse {
    let rules = &version.rules;
    let policy = rules.streak;
    RulesResponse {
        version: version.version,
        created_at: rfc3339_ms(version.created_at_ms),
        source: if **rules == RuleSet::default() {
            "built-in"
        } else {
            "custom"
        }
        .into(),
        toml: write_rules(rules),
        categories: category_rules(rules),
        streak: StreakRule {
            first_bonus_day: policy.first_bonus_day,
            percent_per_day: policy.percent_per_day,
            max_percent: policy.max_percent,
        },
        levels: match &rules.levels {
            LevelCurve::Linear { step } => LevelRule {
                curve: "linear".into(),
                points_per_level: Some(step.to_f64()),
                thresholds: None,
            },
            LevelCurve::Table { starts } => LevelRule {
                curve: "table".into(),
                points_per_level: None,
                thresholds: Some(starts.iter().map(|p| p.to_f64()).collect()),
            },
        },
        achievements: achievement_catalogue(rules),
        max_event_value: rules.max_event_value.to_f64(),
        backfill_days: rules.backfill_days,
        max_future_skew_seconds: settings.max_future_skew_ms / 1000,
        points_expire_after_days: settings.expiry.map(|e| e.days),
        achievement_rewards: settings
            .grants
            .iter()
            .map(|(a, r)| (a.as_str().to_owned(), r.clone()))
            .collect(),
    }
}

/// Level fields for a lifetime total under `rules`.
pub(crate) fn level_fields(rules: &RuleSet, lifetime: Points) -> (u64, f64) {
    let level = rules.level_for(lifetime);
    (level, rules.next_level_points(level).to_f64())
}

/// The last millisecond of year 9999: past it a year has five digits.
const LAST_MS_OF_9999: i64 = 253_402_300_799_999;

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds: `2025-10-12T10:30:00.000Z`.
///
/// Every event answer carries two of these, so times from 1970 to 9999 are
/// written digit by digit (the general formatter took a tenth of an HTTP
/// worker's instructions per event, under callgrind); others go the long
/// way.
pub fn rfc3339_ms(ms: i64) -> String {
    if !(0..=LAST_MS_OF_9999).contains(&ms) {
        return rfc3339_ms_general(ms);
    }
    let (days, ms_of_day) = (ms / 86_400_000, ms % 86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60);
    let (sec, milli) = (ms_of_day / 1000 % 60, ms_of_day % 1000);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: i64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, mo);
    put(8, 2, d);
    put(11, 2, h);
    put(14, 2, mi);
    put(17, 2, sec);
    put(20, 3, milli);
    out.iter().map(|&b| char::from(b)).collect()
}

/// Year, month and day of the `days`-th day after 1970-01-01 (days ≥ 0),
/// in the proleptic Gregorian calendar: counted in 400-year eras from
/// 0000-03-01, so that the leap day ends each year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// [`rfc3339_ms`] by the `time` crate, for any time.
fn rfc3339_ms_general(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
    let (h, mi, s, milli) = (t.hour(), t.minute(), t.second(), t.millisecond());
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses RFC 3339 into Unix milliseconds (sub-millisecond digits are dropped).
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// Free text stored as text (a reason, a name, a description): `least` to
/// `most` characters and no control character (PostgreSQL cannot store a
/// NUL, and none belongs in such a field); otherwise an error on `field`
/// that names its bounds.
pub(crate) fn check_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    least: usize,
    most: usize,
) {
    let n = value.chars().count();
    if n < least || n > most || value.chars().any(char::is_control) {
        errors.push(FieldError {
            field: field.to_owned(),
            message: format!(
                "{field} must be {least} to {most} characters without control characters"
            ),
        });
    }
}

/// A field error as one message shows it (an answer's `message`, a dead
/// letter's reason): as it is when it names its field, else after the
/// field (`days: expected 1 to 366, got 0`), so that the message alone
/// always says which field is wrong.
pub(crate) fn shown(detail: &FieldError) -> String {
    if names(&detail.message, &detail.field) {
        detail.message.clone()
    } else {
        format!("{}: {}", detail.field, detail.message)
    }
}

/// Whether `message` holds `field` as a word of its own (not `value` inside
/// `max_event_value`).
fn names(message: &str, field: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    !field.is_empty()
        && message.match_indices(field).any(|(at, _)| {
            !message[..at].chars().next_back().is_some_and(word)
                && !message[at + field.len()..].chars().next().is_some_and(word)
        })
}

/// Whether JSON text starts as an object (its first token is `{`). Every
/// request body and bus message is one; serde would also fill a struct
/// from an array of its fields in order, which is not the documented shape.
pub(crate) fn starts_as_object(json: &[u8]) -> bool {
    json.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(field: &str, message: &str) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    #[test]
    fn a_message_names_its_field_as_a_word_or_is_shown_after_it() {
        let named = detail("limit", "limit must be between 1 and 100");
        assert_eq!(shown(&named), "limit must be between 1 and 100");
        let quoted = detail("window", "window \"2026-W00\" is not an ISO week");
        assert_eq!(shown(&quoted), quoted.message);
        let unnamed = detail("days", "expected 1 to 366, got 0");
        assert_eq!(shown(&unnamed), "days: expected 1 to 366, got 0");
        let inside = detail("value", "must be at most max_event_value");
        assert_eq!(shown(&inside), "value: must be at most max_event_value");
        let indexed = detail("events[0]", "unknown event type \"nope\"");
        assert_eq!(shown(&indexed), "events[0]: unknown event type \"nope\"");
    }

    #[test]
    fn times_render_as_utc_with_milliseconds_and_parse_back() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        let ms = parse_rfc3339_ms("2025-10-12T12:30:00.250+02:00").unwrap();
        assert_eq!(rfc3339_ms(ms), "2025-10-12T10:30:00.250Z");
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn the_digit_by_digit_format_matches_the_general_one_at_the_edges() {
        for ms in [
            0,
            999,
            86_399_999,
            86_400_000,
            951_782_400_000,   // 2000-02-29, a leap day of a 400-year
            4_107_456_000_000, // 2100-02-28, not a leap year
            4_107_542_399_999, // 2100-03-01 23:59:59.999
            1_795_000_000_123, // 2026-11-17
            LAST_MS_OF_9999,
        ] {
            assert_eq!(rfc3339_ms(ms), rfc3339_ms_general(ms), "{ms}");
        }
        assert_eq!(rfc3339_ms(LAST_MS_OF_9999), "9999-12-31T23:59:59.999Z");
    }

    proptest::proptest! {
        #[test]
        fn any_time_formats_as_the_general_formatter_does(ms in -100_000_000_000_000i64..300_000_000_000_000) {
            proptest::prop_assert_eq!(rfc3339_ms(ms), rfc3339_ms_general(ms));
        }
    }
}
