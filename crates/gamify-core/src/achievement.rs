//! The achievement catalogue: what can be unlocked, what it takes and what it pays.

use crate::Points;

/// Identifies an achievement; the wire ids are the brief's (`first_step`, `streak_3`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AchievementId {
    /// First event.
    FirstStep,
    /// 3-day streak.
    Streak3,
    /// 7-day streak.
    Streak7,
    /// 30-day streak.
    Streak30,
    /// 100 lifetime points.
    Points100,
    /// 500 lifetime points.
    Points500,
    /// 1000 lifetime points.
    Points1000,
}

impl AchievementId {
    /// The wire id.
    pub fn as_str(self) -> &'static str {
        self.definition().id_str
    }

    /// Parses a wire id.
    pub fn parse(id: &str) -> Option<AchievementId> {
        CATALOGUE.iter().find(|a| a.id_str == id).map(|a| a.id)
    }

    /// The catalogue entry.
    pub fn definition(self) -> &'static Achievement {
        CATALOGUE
            .iter()
            .find(|a| a.id == self)
            .expect("every AchievementId has a catalogue entry")
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
}

/// One entry of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Achievement {
    /// Typed id.
    pub id: AchievementId,
    /// Wire id.
    pub id_str: &'static str,
    /// Name in Finnish (the brief's names).
    pub name_fi: &'static str,
    /// Name in English.
    pub name_en: &'static str,
    /// What it takes, in English.
    pub description_en: &'static str,
    /// What it takes, in Finnish.
    pub description_fi: &'static str,
    /// What it takes, as a rule.
    pub requirement: Requirement,
    /// Points paid once on unlock; never multiplied by the streak bonus.
    pub bonus: Points,
}

/// The brief's achievements. Order matters only for presentation and for the
/// order unlocks are reported in within one event: streak achievements come
/// before point achievements, so a streak bonus that crosses a point threshold
/// is followed by that point achievement.
pub const CATALOGUE: [Achievement; 7] = [
    Achievement {
        id: AchievementId::FirstStep,
        id_str: "first_step",
        name_fi: "Ensimmäinen askel",
        name_en: "First step",
        description_en: "Record your first event",
        description_fi: "Kirjaa ensimmäinen tapahtumasi",
        requirement: Requirement::FirstEvent,
        bonus: Points::ZERO,
    },
    Achievement {
        id: AchievementId::Streak3,
        id_str: "streak_3",
        name_fi: "3 päivän putki",
        name_en: "3-day streak",
        description_en: "Be active 3 days in a row",
        description_fi: "Ole aktiivinen 3 päivää peräkkäin",
        requirement: Requirement::StreakDays(3),
        bonus: Points::whole(10),
    },
    Achievement {
        id: AchievementId::Streak7,
        id_str: "streak_7",
        name_fi: "Viikon voittaja",
        name_en: "Week winner",
        description_en: "Be active 7 days in a row",
        description_fi: "Ole aktiivinen 7 päivää peräkkäin",
        requirement: Requirement::StreakDays(7),
        bonus: Points::whole(25),
    },
    Achievement {
        id: AchievementId::Streak30,
        id_str: "streak_30",
        name_fi: "Kuukauden mestari",
        name_en: "Month master",
        description_en: "Be active 30 days in a row",
        description_fi: "Ole aktiivinen 30 päivää peräkkäin",
        requirement: Requirement::StreakDays(30),
        bonus: Points::whole(100),
    },
    Achievement {
        id: AchievementId::Points100,
        id_str: "points_100",
        name_fi: "Sata pistettä",
        name_en: "A hundred points",
        description_en: "Earn 100 lifetime points",
        description_fi: "Ansaitse 100 pistettä",
        requirement: Requirement::LifetimePoints(Points::whole(100)),
        bonus: Points::ZERO,
    },
    Achievement {
        id: AchievementId::Points500,
        id_str: "points_500",
        name_fi: "Viisisataa",
        name_en: "Five hundred",
        description_en: "Earn 500 lifetime points",
        description_fi: "Ansaitse 500 pistettä",
        requirement: Requirement::LifetimePoints(Points::whole(500)),
        bonus: Points::ZERO,
    },
    Achievement {
        id: AchievementId::Points1000,
        id_str: "points_1000",
        name_fi: "Tuhat pistettä",
        name_en: "A thousand points",
        description_en: "Earn 1000 lifetime points",
        description_fi: "Ansaitse 1000 pistettä",
        requirement: Requirement::LifetimePoints(Points::whole(1000)),
        bonus: Points::ZERO,
    },
];

/// A user's history as far as achievements depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// Events recorded.
    pub events: u64,
    /// The longest streak reached (changes only with events).
    pub best_streak: u32,
    /// Lifetime points now (events, bonuses and adjustments in the user's
    /// favour).
    pub lifetime: Points,
    /// The points of the user's events alone, without any bonus.
    pub event_points: Points,
}

/// What is wrong with `unlocked` for a user with this history, one message
/// per breach; empty when it is exactly what the rules imply.
///
/// Achievements unlock only when an event is scored, and then every one due
/// unlocks (see [`crate::apply_event`]). So an unlocked achievement's
/// requirement must hold now (streaks and lifetime never go down), and one
/// is certainly due if its requirement held at the user's last event: any
/// first event, any streak reached (streaks only change with events), and
/// any point threshold below the event points plus the unlocked bonuses,
/// which the lifetime held then already. (A threshold crossed later by an
/// adjustment unlocks at the next event, so it is not required.)
pub fn achievement_breaches(unlocked: &[AchievementId], history: History) -> Vec<String> {
    let mut breaches = Vec::new();
    let mut seen = Vec::with_capacity(unlocked.len());
    let mut bonuses = Points::ZERO;
    for id in unlocked {
        if seen.contains(id) {
            breaches.push(format!("{} is unlocked twice", id.as_str()));
            continue;
        }
        seen.push(*id);
        let a = id.definition();
        bonuses = bonuses.checked_add(a.bonus).unwrap_or(bonuses);
        let holds = match a.requirement {
            Requirement::FirstEvent => history.events >= 1,
            Requirement::StreakDays(n) => history.best_streak >= n,
            Requirement::LifetimePoints(p) => history.lifetime >= p,
        };
        if !holds {
            breaches.push(format!(
                "{} is unlocked, but the history does not reach it ({})",
                a.id_str,
                describe(history)
            ));
        }
    }
    if history.events == 0 {
        return breaches;
    }
    let earned_by_events = history
        .event_points
        .checked_add(bonuses)
        .unwrap_or(history.event_points);
    for a in &CATALOGUE {
        let due = match a.requirement {
            Requirement::FirstEvent => true,
            Requirement::StreakDays(n) => history.best_streak >= n,
            Requirement::LifetimePoints(p) => earned_by_events >= p,
        };
        if due && !seen.contains(&a.id) {
            breaches.push(format!(
                "{} is due but not unlocked ({})",
                a.id_str,
                describe(history)
            ));
        }
    }
    breaches
}

fn describe(h: History) -> String {
    format!(
        "{} events, best streak {}, lifetime {}, event points {}",
        h.events, h.best_streak, h.lifetime, h.event_points
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(events: u64, best_streak: u32, lifetime: i64, event_points: i64) -> History {
        History {
            events,
            best_streak,
            lifetime: Points::whole(lifetime),
            event_points: Points::whole(event_points),
        }
    }

    #[test]
    fn what_scoring_unlocks_is_exactly_what_the_history_implies() {
        use AchievementId::*;
        assert!(achievement_breaches(&[], history(0, 0, 0, 0)).is_empty());
        assert!(achievement_breaches(&[FirstStep], history(1, 1, 5, 5)).is_empty());
        // streak_3 pays 10: 95 event points + 10 = 105 unlocks points_100.
        let unlocked = [FirstStep, Streak3, Points100];
        assert!(achievement_breaches(&unlocked, history(3, 3, 105, 95)).is_empty());
        // An adjustment lifted lifetime past 100 after the last event: not due yet.
        assert!(achievement_breaches(&[FirstStep], history(1, 1, 150, 50)).is_empty());
    }

    #[test]
    fn a_missing_an_unearned_or_a_doubled_achievement_is_named() {
        use AchievementId::*;
        let missing = achievement_breaches(&[FirstStep], history(3, 3, 40, 40));
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].starts_with("streak_3 is due"), "{missing:?}");
        let unearned = achievement_breaches(&[FirstStep, Points500], history(2, 1, 120, 120));
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
        let twice = achievement_breaches(&[FirstStep, FirstStep], history(1, 1, 1, 1));
        assert_eq!(twice, ["first_step is unlocked twice"]);
    }

    #[test]
    fn every_id_round_trips_through_its_wire_form() {
        for a in &CATALOGUE {
            assert_eq!(AchievementId::parse(a.id_str), Some(a.id));
            assert_eq!(a.id.as_str(), a.id_str);
        }
        assert_eq!(AchievementId::parse("nope"), None);
    }
}
