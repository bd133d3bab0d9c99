//! Achievements: what can be unlocked, what it takes and what it pays. The
//! catalogue itself is rule data ([`crate::RuleSet::achievements`]);
//! [`brief_catalogue`] is the brief's.

use crate::category::{intern, is_name};
use crate::{Category, CategoryTotal, Points};

/// The longest achievement id.
pub const MAX_ACHIEVEMENT_ID_LEN: usize = 64;

/// Identifies an achievement: a name of 1 to 64 characters, `a`–`z`, `0`–`9`
/// and `_`, starting with a letter (the brief's `first_step`, `streak_3`, …).
/// Interned like [`Category`], so it is `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AchievementId(&'static str);

impl AchievementId {
    /// First event.
    pub const FIRST_STEP: AchievementId = AchievementId("first_step");
    /// 3-day streak.
    pub const STREAK_3: AchievementId = AchievementId("streak_3");
    /// 7-day streak.
    pub const STREAK_7: AchievementId = AchievementId("streak_7");
    /// 30-day streak.
    pub const STREAK_30: AchievementId = AchievementId("streak_30");
    /// 100 lifetime points.
    pub const POINTS_100: AchievementId = AchievementId("points_100");
    /// 500 lifetime points.
    pub const POINTS_500: AchievementId = AchievementId("points_500");
    /// 1000 lifetime points.
    pub const POINTS_1000: AchievementId = AchievementId("points_1000");

    /// The wire id.
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// The id `id`, if it is well formed. Whether a catalogue has it is the
    /// rule set's question.
    pub fn parse(id: &str) -> Option<AchievementId> {
        is_name(id, MAX_ACHIEVEMENT_ID_LEN).then(|| AchievementId(intern(id)))
    }
}

impl std::fmt::Display for AchievementId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// What unlocks an achievement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Any recorded event.
    FirstEvent,
    /// A streak of at least this many days, at any time.
    StreakDays(u32),
    /// At least this many lifetime points (achievement bonuses included).
    LifetimePoints(Points),
    /// At least this many events in one category.
    CategoryEvents(Category, u64),
    /// At least this many event points in one category (bonuses are in no
    /// category).
    CategoryPoints(Category, Points),
}

impl Requirement {
    /// Whether it holds for a user with this best streak, lifetime and
    /// per-category totals (who has at least one event).
    pub fn holds(self, best_streak: u32, lifetime: Points, categories: &[CategoryTotal]) -> bool {
        let total = |c: Category| categories.iter().find(|t| t.category == c);
        match self {
            Requirement::FirstEvent => true,
            Requirement::StreakDays(n) => best_streak >= n,
            Requirement::LifetimePoints(p) => lifetime >= p,
            Requirement::CategoryEvents(c, n) => total(c).is_some_and(|t| t.events >= n),
            Requirement::CategoryPoints(c, p) => total(c).is_some_and(|t| t.points >= p),
        }
    }

    /// The category it counts in, if any.
    pub fn category(self) -> Option<Category> {
        match self {
            Requirement::CategoryEvents(c, _) | Requirement::CategoryPoints(c, _) => Some(c),
            _ => None,
        }
    }
}

/// A name or description in the two languages the product speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// Finnish (the brief's language).
    pub fi: String,
    /// English.
    pub en: String,
}

impl Text {
    fn new(fi: &str, en: &str) -> Text {
        Text {
            fi: fi.to_owned(),
            en: en.to_owned(),
        }
    }
}

/// One entry of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Achievement {
    /// Its id.
    pub id: AchievementId,
    /// Its name.
    pub name: Text,
    /// What it takes, in words.
    pub description: Text,
    /// What it takes, as a rule.
    pub requirement: Requirement,
    /// Points paid once on unlock; never multiplied by the streak bonus.
    pub bonus: Points,
}

/// The brief's achievements. Order matters only for presentation and for the
/// order unlocks are reported in within one event: streak achievements come
/// before point achievements, so a streak bonus that crosses a point threshold
/// is followed by that point achievement.
pub fn brief_catalogue() -> Vec<Achievement> {
    let entry = |id, fi, en, dfi, den, requirement, bonus| Achievement {
        id,
        name: Text::new(fi, en),
        description: Text::new(dfi, den),
        requirement,
        bonus: Points::whole(bonus),
    };
    vec![
        entry(
            AchievementId::FIRST_STEP,
            "Ensimmäinen askel",
            "First step",
            "Kirjaa ensimmäinen tapahtumasi",
            "Record your first event",
            Requirement::FirstEvent,
            0,
        ),
        entry(
            AchievementId::STREAK_3,
            "3 päivän putki",
            "3-day streak",
            "Ole aktiivinen 3 päivää peräkkäin",
            "Be active 3 days in a row",
            Requirement::StreakDays(3),
            10,
        ),
        entry(
            AchievementId::STREAK_7,
            "Viikon voittaja",
            "Week winner",
            "Ole aktiivinen 7 päivää peräkkäin",
            "Be active 7 days in a row",
            Requirement::StreakDays(7),
            25,
        ),
        entry(
            AchievementId::STREAK_30,
            "Kuukauden mestari",
            "Month master",
            "Ole aktiivinen 30 päivää peräkkäin",
            "Be active 30 days in a row",
            Requirement::StreakDays(30),
            100,
        ),
        entry(
            AchievementId::POINTS_100,
            "Sata pistettä",
            "A hundred points",
            "Ansaitse 100 pistettä",
            "Earn 100 lifetime points",
            Requirement::LifetimePoints(Points::whole(100)),
            0,
        ),
        entry(
            AchievementId::POINTS_500,
            "Viisisataa",
            "Five hundred",
            "Ansaitse 500 pistettä",
            "Earn 500 lifetime points",
            Requirement::LifetimePoints(Points::whole(500)),
            0,
        ),
        entry(
            AchievementId::POINTS_1000,
            "Tuhat pistettä",
            "A thousand points",
            "Ansaitse 1000 pistettä",
            "Earn 1000 lifetime points",
            Requirement::LifetimePoints(Points::whole(1000)),
            0,
        ),
    ]
}

/// A user's history as far as achievements depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History<'a> {
    /// Events recorded.
    pub events: u64,
    /// The longest streak reached (changes only with events).
    pub best_streak: u32,
    /// Lifetime points now (events, bonuses and adjustments in the user's
    /// favour).
    pub lifetime: Points,
    /// The user's events and their points, per category (bonuses are in
    /// no category).
    pub categories: &'a [CategoryTotal],
}

/// What is wrong with `unlocked` for a user with this history, one message
/// per breach; empty when it is exactly what the rules imply.
///
/// `catalogues` are the achievement catalogues of every rule version the
/// user's events can have been scored with (oldest first). Achievements
/// unlock only when an event is scored, and then every one due unlocks (see
/// [`crate::apply_event`]). So:
///
/// - an unlocked achievement's requirement, as some version defines it,
///   must hold now (streaks, lifetime and category totals never go down);
/// - an achievement is certainly due if every version defines it the same
///   way and its requirement held at the user's last event: any first
///   event, any streak reached and any category total (those only change
///   with events), and any lifetime threshold below the event points plus
///   the unlocked bonuses, which the lifetime held then already. (A
///   threshold crossed later by an adjustment unlocks at the next event, so
///   it is not required; nor is an achievement a rules change added or
///   redefined, which unlocks at the user's next event.)
pub fn achievement_breaches(
    unlocked: &[AchievementId],
    history: History<'_>,
    catalogues: &[&[Achievement]],
) -> Vec<String> {
    let mut breaches = Vec::new();
    let mut seen = Vec::with_capacity(unlocked.len());
    let mut bonuses = Points::ZERO;
    let definitions = |id: AchievementId| {
        catalogues
            .iter()
            .filter_map(move |c| c.iter().find(|a| a.id == id))
    };
    let holds_now =
        |r: Requirement| r.holds(history.best_streak, history.lifetime, history.categories);
    for id in unlocked {
        if seen.contains(id) {
            breaches.push(format!("{id} is unlocked twice"));
            continue;
        }
        seen.push(*id);
        let Some(first) = definitions(*id).next() else {
            breaches.push(format!("{id} is unlocked, but no rule version defines it"));
            continue;
        };
        // The bonus it paid is the one of the version it unlocked under;
        // when versions disagree, the largest bounds what was paid.
        let bonus = definitions(*id)
            .map(|a| a.bonus)
            .max()
            .unwrap_or(first.bonus);
        bonuses = bonuses.checked_add(bonus).unwrap_or(bonuses);
        if history.events == 0 || !definitions(*id).any(|a| holds_now(a.requirement)) {
            breaches.push(format!(
                "{id} is unlocked, but the history does not reach it ({})",
                describe(history)
            ));
        }
    }
    if history.events == 0 {
        return breaches;
    }
    let event_points = history.categories.iter().fold(Points::ZERO, |sum, c| {
        sum.checked_add(c.points).unwrap_or(sum)
    });
    let earned_by_events = event_points.checked_add(bonuses).unwrap_or(event_points);
    let Some((newest, older)) = catalogues.split_last() else {
        return breaches;
    };
    for a in newest.iter() {
        let same_everywhere = older.iter().all(|c| c.iter().any(|b| b == a));
        let due = same_everywhere
            && match a.requirement {
                Requirement::LifetimePoints(p) => earned_by_events >= p,
                other => holds_now(other),
            };
        if due && !seen.contains(&a.id) {
            breaches.push(format!(
                "{} is due but not unlocked ({})",
                a.id,
                describe(history)
            ));
        }
    }
    breaches
}

fn describe(h: History<'_>) -> String {
    let categories: Vec<String> = h
        .categories
        .iter()
        .map(|c| format!("{} {}/{}", c.category, c.events, c.points))
        .collect();
    format!(
        "{} events, best streak {}, lifetime {}, per category [{}]",
        h.events,
        h.best_streak,
        h.lifetime,
        categories.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(events: u64, points: i64) -> Vec<CategoryTotal> {
        vec![CategoryTotal {
            category: Category::HEALTH,
            events,
            points: Points::whole(points),
        }]
    }

    fn history(
        events: u64,
        best_streak: u32,
        lifetime: i64,
        totals: &[CategoryTotal],
    ) -> History<'_> {
        History {
            events,
            best_streak,
            lifetime: Points::whole(lifetime),
            categories: totals,
        }
    }

    const FIRST_STEP: AchievementId = AchievementId::FIRST_STEP;

    #[test]
    fn what_scoring_unlocks_is_exactly_what_the_history_implies() {
        let brief = brief_catalogue();
        let one = [brief.as_slice()];
        assert!(achievement_breaches(&[], history(0, 0, 0, &[]), &one).is_empty());
        assert!(
            achievement_breaches(&[FIRST_STEP], history(1, 1, 5, &totals(1, 5)), &one).is_empty()
        );
        // streak_3 pays 10: 95 event points + 10 = 105 unlocks points_100.
        let unlocked = [
            FIRST_STEP,
            AchievementId::STREAK_3,
            AchievementId::POINTS_100,
        ];
        assert!(
            achievement_breaches(&unlocked, history(3, 3, 105, &totals(3, 95)), &one).is_empty()
        );
        // An adjustment lifted lifetime past 100 after the last event: not due yet.
        assert!(
            achievement_breaches(&[FIRST_STEP], history(1, 1, 150, &totals(1, 50)), &one)
                .is_empty()
        );
    }

    #[test]
    fn a_missing_an_unearned_or_a_doubled_achievement_is_named() {
        let brief = brief_catalogue();
        let one = [brief.as_slice()];
        let missing = achievement_breaches(&[FIRST_STEP], history(3, 3, 40, &totals(3, 40)), &one);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].starts_with("streak_3 is due"), "{missing:?}");
        let unearned = achievement_breaches(
            &[FIRST_STEP, AchievementId::POINTS_500],
            history(2, 1, 120, &totals(2, 120)),
            &one,
        );
        assert!(
            unearned
                .iter()
                .any(|b| b.starts_with("points_500 is unlocked, but")),
            "{unearned:?}"
        );
        assert!(
            unearned.iter().any(|b| b.starts_with("points_100 is due")),
            "{unearned:?}"
        );
        let twice = achievement_breaches(
            &[FIRST_STEP, FIRST_STEP],
            history(1, 1, 1, &totals(1, 1)),
            &one,
        );
        assert_eq!(twice, ["first_step is unlocked twice"]);
    }

    #[test]
    fn an_achievement_a_rules_change_added_is_not_due_until_the_next_event() {
        let brief = brief_catalogue();
        let mut newer = brief.clone();
        newer.push(Achievement {
            id: AchievementId::parse("runner").unwrap(),
            name: Text::new("Juoksija", "Runner"),
            description: Text::new("", ""),
            requirement: Requirement::CategoryEvents(Category::HEALTH, 2),
            bonus: Points::ZERO,
        });
        let two = totals(2, 10);
        let h = history(2, 1, 10, &two);
        assert!(
            achievement_breaches(&[FIRST_STEP], h, &[&newer])
                .iter()
                .any(|b| b.starts_with("runner is due"))
        );
        assert!(achievement_breaches(&[FIRST_STEP], h, &[&brief, &newer]).is_empty());
        let unknown = AchievementId::parse("gone").unwrap();
        assert_eq!(
            achievement_breaches(&[FIRST_STEP, unknown], h, &[&brief]),
            ["gone is unlocked, but no rule version defines it"]
        );
    }

    #[test]
    fn ids_are_checked() {
        for a in brief_catalogue() {
            assert_eq!(AchievementId::parse(a.id.as_str()), Some(a.id));
        }
        assert_eq!(AchievementId::parse("Nope"), None);
        assert_eq!(AchievementId::parse(""), None);
    }
}
