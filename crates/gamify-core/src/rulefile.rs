//! The rules file: a [`RuleSet`] as TOML, read with line numbers for every
//! mistake and written back in one canonical form.
//!
//! ```toml
//! max_event_value = 1000      # the largest `value` one event may carry
//! backfill_days = 30          # how old `occurred_at` may be
//!
//! [categories]                # name = weight; custom names allowed
//! finance = 2.0
//! custom_category = 1.2
//!
//! [streak]
//! first_bonus_day = 3         # no bonus before this streak day
//! percent_per_day = 5         # day N earns N × this percent…
//! max_percent = 50            # …up to this
//!
//! [levels]
//! points_per_level = 100      # or: thresholds = [100, 250, 500]
//!
//! [[achievements]]
//! id = "runner"
//! kind = "category_events"    # first_event | streak_days | lifetime_points
//!                             # | category_events | category_points
//! category = "health"         # for the category kinds
//! events = 10                 # days = N, points = N, events = N by kind
//! bonus = 15
//! name = { fi = "Juoksija", en = "Runner" }
//! description = { fi = "Kymmenen liikuntaa", en = "Ten workouts" }
//! ```

use std::collections::BTreeMap;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use toml::Spanned;

use crate::{
    Achievement, AchievementId, Category, LevelCurve, Points, Requirement, RuleSet, StreakPolicy,
    Text,
};

/// One mistake in a rules file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    /// 1-based line of the mistake.
    pub line: usize,
    /// 1-based column (in characters) of the mistake.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    max_event_value: Option<Spanned<f64>>,
    backfill_days: Option<Spanned<i64>>,
    categories: Option<Spanned<Weights>>,
    streak: Option<Spanned<RawStreak>>,
    levels: Option<Spanned<RawLevels>>,
    achievements: Option<Vec<Spanned<RawAchievement>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStreak {
    first_bonus_day: Option<Spanned<i64>>,
    percent_per_day: Option<Spanned<i64>>,
    max_percent: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevels {
    points_per_level: Option<Spanned<f64>>,
    thresholds: Option<Spanned<Vec<f64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAchievement {
    id: Spanned<String>,
    kind: Spanned<String>,
    category: Option<Spanned<String>>,
    days: Option<Spanned<i64>>,
    events: Option<Spanned<i64>>,
    points: Option<Spanned<f64>>,
    #[serde(default)]
    bonus: Option<Spanned<f64>>,
    name: Spanned<RawText>,
    description: Option<Spanned<RawText>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    fi: String,
    en: String,
}

/// `[categories]` in the file's order (a map would sort it).
struct Weights(Vec<(String, Spanned<f64>)>);

impl<'de> Deserialize<'de> for Weights {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Weights, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Weights;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table of category = weight")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Weights, A::Error> {
                let mut out = Vec::new();
                while let Some((name, weight)) = map.next_entry::<String, Spanned<f64>>()? {
                    out.push((name, weight));
                }
                Ok(Weights(out))
            }
        }
        d.deserialize_map(InOrder)
    }
}

/// Reads a rules file. Parts it leaves out keep the brief's defaults
/// (a file with only `[categories]` changes only the weights); every
/// mistake is reported, each with its line.
pub fn parse_rules(text: &str) -> Result<RuleSet, Vec<RuleFileError>> {
    let at = |span: Range<usize>, message: String| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        RuleFileError {
            line,
            column,
            message,
        }
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        vec![at(
            e.span().unwrap_or(0..0),
            e.message().trim_end().to_owned(),
        )]
    })?;
    let mut errors = Vec::new();
    let mut spans: BTreeMap<String, Range<usize>> = BTreeMap::new();
    let mut rules = RuleSet::default();

    if let Some(v) = &raw.max_event_value {
        spans.insert("max_event_value".into(), v.span());
        match milli(*v.get_ref()) {
            Some(p) => rules.max_event_value = p,
            None => errors.push(at(v.span(), not_exact("max_event_value"))),
        }
    }
    if let Some(v) = &raw.backfill_days {
        spans.insert("backfill_days".into(), v.span());
        rules.backfill_days = u32::try_from(*v.get_ref()).unwrap_or(0);
    }
    if let Some(table) = &raw.categories {
        spans.insert("categories".into(), table.span());
        rules.categories.clear();
        for (name, weight) in &table.get_ref().0 {
            let path = format!("categories.{name}");
            spans.insert(path.clone(), weight.span());
            let Some(category) = Category::named(name) else {
                errors.push(at(
                    weight.span(),
                    format!(
                        "{path}: expected a category name of 1 to 32 characters a-z, 0-9 and _, \
                         starting with a letter"
                    ),
                ));
                continue;
            };
            match milli(*weight.get_ref()) {
                Some(w) => rules.categories.push((category, w.milli())),
                None => errors.push(at(weight.span(), not_exact(&path))),
            }
        }
    }
    if let Some(s) = &raw.streak {
        spans.insert("streak".into(), s.span());
        let s = s.get_ref();
        let mut policy = StreakPolicy::default();
        for (name, field, slot) in [
            (
                "first_bonus_day",
                &s.first_bonus_day,
                &mut policy.first_bonus_day,
            ),
            (
                "percent_per_day",
                &s.percent_per_day,
                &mut policy.percent_per_day,
            ),
            ("max_percent", &s.max_percent, &mut policy.max_percent),
        ] {
            if let Some(v) = field {
                spans.insert(format!("streak.{name}"), v.span());
                *slot = u32::try_from(*v.get_ref()).unwrap_or(u32::MAX);
            }
        }
        rules.streak = policy;
    }
    if let Some(levels) = &raw.levels {
        spans.insert("levels".into(), levels.span());
        match (
            &levels.get_ref().points_per_level,
            &levels.get_ref().thresholds,
        ) {
            (Some(_), Some(_)) | (None, None) => errors.push(at(
                levels.span(),
                "levels: expected exactly one of points_per_level or thresholds".into(),
            )),
            (Some(step), None) => {
                spans.insert("levels.points_per_level".into(), step.span());
                match milli(*step.get_ref()) {
                    Some(step) => rules.levels = LevelCurve::Linear { step },
                    None => errors.push(at(step.span(), not_exact("levels.points_per_level"))),
                }
            }
            (None, Some(list)) => {
                spans.insert("levels.thresholds".into(), list.span());
                match list.get_ref().iter().map(|v| milli(*v)).collect() {
                    Some(starts) => rules.levels = LevelCurve::Table { starts },
                    None => errors.push(at(list.span(), not_exact("levels.thresholds"))),
                }
            }
        }
    }
    if let Some(list) = &raw.achievements {
        rules.achievements.clear();
        for (i, a) in list.iter().enumerate() {
            let path = format!("achievements[{i}]");
            spans.insert(path.clone(), a.span());
            match achievement(&path, a.get_ref(), &mut spans) {
                Ok(entry) => rules.achievements.push(entry),
                Err((span, message)) => errors.push(at(span, message)),
            }
        }
    }

    if errors.is_empty() {
        for (path, problem) in rules.problems() {
            // The most specific part of the file the problem is about.
            let span = spans
                .iter()
                .filter(|(p, _)| path.starts_with(p.as_str()))
                .max_by_key(|(p, _)| p.len())
                .map_or(0..0, |(_, s)| s.clone());
            errors.push(at(span, format!("{path}: {problem}")));
        }
    }
    errors.sort_by_key(|e| (e.line, e.column));
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

/// One `[[achievements]]` entry, or the first thing wrong with it.
fn achievement(
    path: &str,
    a: &RawAchievement,
    spans: &mut BTreeMap<String, Range<usize>>,
) -> Result<Achievement, (Range<usize>, String)> {
    let id = AchievementId::parse(a.id.get_ref()).ok_or_else(|| {
        (
            a.id.span(),
            format!(
                "{path}.id: expected 1 to 64 characters a-z, 0-9 and _, starting with a letter"
            ),
        )
    })?;
    let mut category = || {
        let c = a.category.as_ref().ok_or_else(|| {
            (
                a.kind.span(),
                format!("{path}: kind {} needs category = \"…\"", a.kind.get_ref()),
            )
        })?;
        spans.insert(format!("{path}.category"), c.span());
        Category::named(c.get_ref()).ok_or_else(|| {
            (
                c.span(),
                format!("{path}.category: {:?} is not a category name", c.get_ref()),
            )
        })
    };
    let count = |field: &Option<Spanned<i64>>, name: &str| {
        let v = field.as_ref().ok_or_else(|| {
            (
                a.kind.span(),
                format!("{path}: kind {} needs {name} = N", a.kind.get_ref()),
            )
        })?;
        u64::try_from(*v.get_ref()).map_err(|_| {
            (
                v.span(),
                format!("{path}.{name}: expected a whole number of at least 1"),
            )
        })
    };
    let points = || {
        let v = a.points.as_ref().ok_or_else(|| {
            (
                a.kind.span(),
                format!("{path}: kind {} needs points = N", a.kind.get_ref()),
            )
        })?;
        milli(*v.get_ref()).ok_or_else(|| (v.span(), not_exact(&format!("{path}.points"))))
    };
    let requirement = match a.kind.get_ref().as_str() {
        "first_event" => Requirement::FirstEvent,
        "streak_days" => {
            Requirement::StreakDays(u32::try_from(count(&a.days, "days")?).unwrap_or(u32::MAX))
        }
        "lifetime_points" => Requirement::LifetimePoints(points()?),
        "category_events" => Requirement::CategoryEvents(category()?, count(&a.events, "events")?),
        "category_points" => {
            let c = category()?;
            Requirement::CategoryPoints(c, points()?)
        }
        other => {
            return Err((
                a.kind.span(),
                format!(
                    "{path}.kind: unknown kind {other:?}; expected first_event, streak_days, \
                     lifetime_points, category_events or category_points"
                ),
            ));
        }
    };
    // A threshold out of range is about the value that sets it.
    for (name, span) in [
        ("days", a.days.as_ref().map(Spanned::span)),
        ("events", a.events.as_ref().map(Spanned::span)),
        ("points", a.points.as_ref().map(Spanned::span)),
    ] {
        if let Some(span) = span {
            spans.insert(format!("{path}.{name}"), span);
        }
    }
    let bonus = match &a.bonus {
        None => Points::ZERO,
        Some(b) => {
            spans.insert(format!("{path}.bonus"), b.span());
            milli(*b.get_ref()).ok_or_else(|| (b.span(), not_exact(&format!("{path}.bonus"))))?
        }
    };
    spans.insert(format!("{path}.id"), a.id.span());
    spans.insert(format!("{path}.name"), a.name.span());
    if let Some(d) = &a.description {
        spans.insert(format!("{path}.description"), d.span());
    }
    let text = |t: &RawText| Text {
        fi: t.fi.clone(),
        en: t.en.clone(),
    };
    Ok(Achievement {
        id,
        name: text(a.name.get_ref()),
        description: a.description.as_ref().map_or(
            Text {
                fi: String::new(),
                en: String::new(),
            },
            |d| text(d.get_ref()),
        ),
        requirement,
        bonus,
    })
}

/// `x` in thousandths, if it has at most three decimals and fits.
fn milli(x: f64) -> Option<Points> {
    let scaled = x * 1000.0;
    let rounded = scaled.round();
    (x.is_finite() && (scaled - rounded).abs() < 1e-6 && rounded.abs() < 9.0e15)
        .then(|| Points::from_milli(rounded as i64))
}

fn not_exact(path: &str) -> String {
    format!("{path}: expected a number with at most three decimals")
}

/// The canonical TOML of `rules`: every part written out, in a fixed order.
/// [`parse_rules`] reads it back to the same rule set.
pub fn write_rules(rules: &RuleSet) -> String {
    use std::fmt::Write;
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut out = String::new();
    let _ = writeln!(out, "max_event_value = {}", rules.max_event_value);
    let _ = writeln!(out, "backfill_days = {}", rules.backfill_days);
    out.push_str("\n[categories]\n");
    for (c, w) in &rules.categories {
        let _ = writeln!(out, "{c} = {}", Points::from_milli(*w));
    }
    let s = rules.streak;
    let _ = writeln!(
        out,
        "\n[streak]\nfirst_bonus_day = {}\npercent_per_day = {}\nmax_percent = {}",
        s.first_bonus_day, s.percent_per_day, s.max_percent
    );
    out.push_str("\n[levels]\n");
    match &rules.levels {
        LevelCurve::Linear { step } => {
            let _ = writeln!(out, "points_per_level = {step}");
        }
        LevelCurve::Table { starts } => {
            let list: Vec<String> = starts.iter().map(Points::to_string).collect();
            let _ = writeln!(out, "thresholds = [{}]", list.join(", "));
        }
    }
    for a in &rules.achievements {
        let _ = writeln!(out, "\n[[achievements]]\nid = {}", quote(a.id.as_str()));
        let (kind, detail) = match a.requirement {
            Requirement::FirstEvent => ("first_event", String::new()),
            Requirement::StreakDays(n) => ("streak_days", format!("days = {n}\n")),
            Requirement::LifetimePoints(p) => ("lifetime_points", format!("points = {p}\n")),
            Requirement::CategoryEvents(c, n) => (
                "category_events",
                format!("category = {}\nevents = {n}\n", quote(c.as_str())),
            ),
            Requirement::CategoryPoints(c, p) => (
                "category_points",
                format!("category = {}\npoints = {p}\n", quote(c.as_str())),
            ),
        };
        let _ = write!(out, "kind = {}\n{detail}", quote(kind));
        let _ = writeln!(out, "bonus = {}", a.bonus);
        let _ = writeln!(
            out,
            "name = {{ fi = {}, en = {} }}",
            quote(&a.name.fi),
            quote(&a.name.en)
        );
        let _ = writeln!(
            out,
            "description = {{ fi = {}, en = {} }}",
            quote(&a.description.fi),
            quote(&a.description.en)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_round_trips_and_an_empty_file_is_the_brief() {
        let brief = RuleSet::default();
        assert_eq!(parse_rules(&write_rules(&brief)), Ok(brief.clone()));
        assert_eq!(parse_rules(""), Ok(brief));
    }

    #[test]
    fn custom_categories_keep_the_files_order_and_exact_weights() {
        let rules =
            parse_rules("[categories]\nfinance = 2.5\nlearning = 2\ncustom_category = 1.2\n")
                .unwrap();
        let names: Vec<(&str, i64)> = rules
            .categories
            .iter()
            .map(|(c, w)| (c.as_str(), *w))
            .collect();
        assert_eq!(
            names,
            [
                ("finance", 2500),
                ("learning", 2000),
                ("custom_category", 1200)
            ]
        );
        // The brief's achievements name no category, so they all stay valid.
        assert_eq!(rules.achievements.len(), 7);
    }

    #[test]
    fn every_kind_of_achievement_and_a_level_table_read_back() {
        let text = r#"
[categories]
health = 1.2
chess = 1

[levels]
thresholds = [100, 250, 500]

[[achievements]]
id = "runner"
kind = "category_events"
category = "health"
events = 10
bonus = 15
name = { fi = "Juoksija", en = "Runner" }

[[achievements]]
id = "grandmaster"
kind = "category_points"
category = "chess"
points = 500.5
name = { fi = "Suurmestari", en = "Grandmaster" }
description = { fi = "500 pistettä shakista", en = "500 points of chess" }
"#;
        let rules = parse_rules(text).unwrap();
        assert_eq!(
            rules.achievements[0].requirement,
            Requirement::CategoryEvents(Category::HEALTH, 10)
        );
        assert_eq!(rules.achievements[0].bonus, Points::whole(15));
        assert_eq!(
            rules.achievements[1].requirement,
            Requirement::CategoryPoints(
                Category::named("chess").unwrap(),
                Points::from_milli(500_500)
            )
        );
        assert_eq!(rules.level_for(Points::whole(300)), 3);
        assert_eq!(parse_rules(&write_rules(&rules)), Ok(rules));
    }

    fn errors(text: &str) -> Vec<String> {
        parse_rules(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn each_kind_of_mistake_names_its_line_and_what_was_expected() {
        // Not TOML at all.
        let e = errors("backfill_days = \n");
        assert!(e[0].starts_with("line 1, column 17:"), "{e:?}");
        // A misspelt key.
        let e = errors("\n[streak]\nfirst_bonus_dya = 3\n");
        assert!(
            e[0].starts_with("line 3,") && e[0].contains("first_bonus_dya"),
            "{e:?}"
        );
        // The wrong type.
        let e = errors("[categories]\nfinance = \"high\"\n");
        assert!(e[0].starts_with("line 2,"), "{e:?}");
        // A weight out of range and one with four decimals, both reported.
        let e = errors("[categories]\nfinance = 0\nhealth = 1.2345\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("line 3,") && e[0].contains("three decimals"),
            "{e:?}"
        );
        let e = errors("[categories]\nfinance = 0\nhealth = 1\n");
        assert_eq!(
            e,
            ["line 2, column 11: categories.finance: expected a weight from 0.001 to 1000"]
        );
        // An achievement about a category the file does not have.
        let e = errors(
            "[categories]\nhealth = 1\n\n[[achievements]]\nid = \"a\"\nkind = \"category_events\"\n\
             category = \"chess\"\nevents = 3\nname = { fi = \"A\", en = \"A\" }\n",
        );
        assert_eq!(
            e,
            ["line 7, column 12: achievements[0].category: chess is not one of the categories"]
        );
        // An unknown kind, and a kind without its threshold.
        let e = errors(
            "[[achievements]]\nid = \"a\"\nkind = \"weekly\"\nname = { fi = \"A\", en = \"A\" }\n\n\
             [[achievements]]\nid = \"b\"\nkind = \"streak_days\"\nname = { fi = \"B\", en = \"B\" }\n",
        );
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("line 3,") && e[0].contains("unknown kind \"weekly\""),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("line 8,") && e[1].contains("needs days = N"),
            "{e:?}"
        );
        // Both level curves at once; a table that goes down.
        let e = errors("[levels]\npoints_per_level = 100\nthresholds = [1]\n");
        assert!(e[0].contains("exactly one of"), "{e:?}");
        let e = errors("[levels]\nthresholds = [100, 50]\n");
        assert_eq!(
            e,
            [
                "line 2, column 14: levels.thresholds: expected positive thresholds, each greater than the one before"
            ]
        );
        // A duplicate id.
        let e = errors(
            "[[achievements]]\nid = \"a\"\nkind = \"first_event\"\nname = { fi = \"A\", en = \"A\" }\n\
             [[achievements]]\nid = \"a\"\nkind = \"first_event\"\nname = { fi = \"A\", en = \"A\" }\n",
        );
        assert_eq!(
            e,
            ["line 6, column 6: achievements[1].id: a is defined twice"]
        );
    }

    #[test]
    fn names_texts_and_ranges_out_of_bounds_are_named_too() {
        // A category name that is not one (upper case), and an achievement id.
        let e = errors("[categories]\nFinance = 2\n");
        assert!(
            e[0].starts_with("line 2, column 11: categories.Finance: expected a category name"),
            "{e:?}"
        );
        let e = errors(
            "[[achievements]]\nid = \"Big One\"\nkind = \"first_event\"\nname = { fi = \"A\", en = \"A\" }\n",
        );
        assert!(
            e[0].starts_with("line 2, column 6: achievements[0].id: expected 1 to 64 characters"),
            "{e:?}"
        );
        // An empty name, a bonus too large, a threshold of zero.
        let e = errors(
            "[[achievements]]\nid = \"a\"\nkind = \"streak_days\"\ndays = 0\nbonus = 2000000\nname = { fi = \"\", en = \"A\" }\n",
        );
        assert_eq!(
            e,
            [
                "line 4, column 8: achievements[0].days: expected a number of at least 1",
                "line 5, column 9: achievements[0].bonus: expected 0 to 1000000",
                "line 6, column 8: achievements[0].name.fi: expected 1 to 100 characters",
            ]
        );
        let e = errors(
            "[[achievements]]\nid = \"a\"\nkind = \"lifetime_points\"\npoints = -5\nname = { fi = \"A\", en = \"A\" }\n",
        );
        assert_eq!(
            e,
            ["line 4, column 10: achievements[0].points: expected a number greater than 0"]
        );
        // Control characters in a name or a description (TOML escapes).
        let e = errors(
            "[[achievements]]\nid = \"a\"\nkind = \"first_event\"\nname = { fi = \"A\\u0000\", en = \"A\" }\n\
             description = { fi = \"\", en = \"two\\nlines\" }\n",
        );
        assert_eq!(
            e,
            [
                "line 4, column 8: achievements[0].name.fi: must not contain control characters",
                "line 5, column 15: achievements[0].description.en: must not contain control characters",
            ]
        );
        // The streak policy and the limits.
        let e =
            errors("max_event_value = 0\nbackfill_days = 400\n[streak]\npercent_per_day = 101\n");
        assert_eq!(
            e,
            [
                "line 1, column 19: max_event_value: expected a number from 0.001 to 1000000000",
                "line 2, column 17: backfill_days: expected 1 to 365",
                "line 4, column 19: streak.percent_per_day: expected 0 to 100",
            ]
        );
        // No categories at all.
        let e = errors("[categories]\n");
        assert_eq!(
            e,
            ["line 1, column 1: categories: expected at least one category"]
        );
    }
}
