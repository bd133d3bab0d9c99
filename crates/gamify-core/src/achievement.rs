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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_round_trips_through_its_wire_form() {
        for a in &CATALOGUE {
            assert_eq!(AchievementId::parse(a.id_str), Some(a.id));
            assert_eq!(a.id.as_str(), a.id_str);
        }
        assert_eq!(AchievementId::parse("nope"), None);
    }
}
