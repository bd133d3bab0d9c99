//! Turning one event into points: the heart of the rules.

use crate::{AchievementId, Category, Day, Points, RuleError, RuleSet, Rules, StreakRuns, Value};

/// Everything the rules need to know about a user. Storage loads it, the rules
/// update it, storage writes it back, all inside one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserState {
    /// Spendable balance.
    pub total: Points,
    /// Every point ever earned (event points and achievement bonuses).
    pub lifetime: Points,
    /// The longest streak ever reached.
    pub best_streak: u32,
    /// Active days within the kept history.
    pub runs: StreakRuns,
    /// Unlocked achievements, in unlock order.
    pub achievements: Vec<AchievementId>,
    /// Events and their points per category, in category name order.
    pub categories: Vec<CategoryTotal>,
}

/// Running totals for one user in one category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryTotal {
    /// The category.
    pub category: Category,
    /// Events recorded in it.
    pub events: u64,
    /// Their points (achievement bonuses are not in any category).
    pub points: Points,
}

/// Adds one event's points to per-category totals.
pub fn add_to_category(
    totals: &mut Vec<CategoryTotal>,
    category: Category,
    points: Points,
) -> Result<(), RuleError> {
    match totals.iter_mut().find(|t| t.category == category) {
        Some(t) => {
            t.events += 1;
            t.points = t.points.checked_add(points)?;
        }
        None => {
            totals.push(CategoryTotal {
                category,
                events: 1,
                points,
            });
            totals.sort_by_key(|t| t.category);
        }
    }
    Ok(())
}

/// The facts of one event that the rules use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventFacts {
    /// Its category.
    pub category: Category,
    /// Its size.
    pub value: Value,
    /// The UTC day it occurred on.
    pub day: Day,
}

/// What one event earned and changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scored {
    /// The streak ending on the event's day, counting that day.
    pub streak_day: u32,
    /// The streak bonus applied to the event's points, in percent.
    pub bonus_percent: u32,
    /// The category weight, in thousandths.
    pub weight_milli: i64,
    /// The event's own points: value × weight × (1 + bonus), to the nearest thousandth.
    pub points: Points,
    /// Achievements unlocked by this event, in unlock order, with their bonuses.
    pub unlocked: Vec<(AchievementId, Points)>,
    /// The level before the event.
    pub level_before: u64,
    /// The level after the event and its bonuses.
    pub level_after: u64,
}

impl Scored {
    /// The achievement bonuses of this event, summed.
    pub fn bonus_points(&self) -> Points {
        Points::from_milli(self.unlocked.iter().map(|(_, p)| p.milli()).sum())
    }
}

/// The points for `value` at category weight `weight_milli` with a streak
/// bonus of `bonus_percent`, rounded half up to the nearest thousandth.
/// Exact integer arithmetic throughout.
pub fn event_points(
    value: Value,
    weight_milli: i64,
    bonus_percent: u32,
) -> Result<Points, RuleError> {
    let num = i128::from(value.milli())
        .checked_mul(i128::from(weight_milli))
        .and_then(|n| n.checked_mul(i128::from(100 + bonus_percent)))
        .ok_or(RuleError::Overflow)?;
    let den: i128 = 1000 * 100;
    let milli = (num + den / 2) / den;
    i64::try_from(milli)
        .map(Points::from_milli)
        .map_err(|_| RuleError::Overflow)
}

/// Applies one event to `state` and says what it earned.
///
/// - The event's day joins the active-day history; its streak day is the length
///   of the run ending on that day (late events included).
/// - Its points are `value × weight × (1 + streak bonus)`.
/// - Achievements whose requirement now holds unlock, each at most once, paying
///   their bonus into both balances. Bonuses can cross a point threshold and so
///   unlock a point achievement in turn; the loop runs until nothing changes.
///
/// On error (a category `rules` does not have, or an overflow) `state` is
/// left as it was.
pub fn apply_event(
    state: &mut UserState,
    event: &EventFacts,
    rules: &RuleSet,
) -> Result<Scored, RuleError> {
    let weight_milli = rules
        .weight_milli(event.category)
        .ok_or_else(|| rules.unknown_category(event.category.as_str()))?;
    let mut next = state.clone();
    let level_before = rules.level_for(next.lifetime);

    let (_, run_end) = next.runs.insert(event.day);
    let streak_day = next.runs.streak_ending_on(event.day);
    next.best_streak = next.best_streak.max(next.runs.streak_ending_on(run_end));
    let bonus_percent = rules.streak.bonus_percent(streak_day);
    let points = event_points(event.value, weight_milli, bonus_percent)?;
    next.total = next.total.checked_add(points)?;
    next.lifetime = next.lifetime.checked_add(points)?;
    add_to_category(&mut next.categories, event.category, points)?;

    let mut unlocked = Vec::new();
    loop {
        let due = rules.achievements.iter().find(|a| {
            !next.achievements.contains(&a.id)
                && a.requirement
                    .holds(next.best_streak, next.lifetime, &next.categories)
        });
        let Some(achievement) = due else { break };
        next.achievements.push(achievement.id);
        next.total = next.total.checked_add(achievement.bonus)?;
        next.lifetime = next.lifetime.checked_add(achievement.bonus)?;
        unlocked.push((achievement.id, achievement.bonus));
    }

    if let Some(last) = next.runs.last_day() {
        next.runs.forget_before(Rules::history_horizon(last));
    }
    let level_after = rules.level_for(next.lifetime);
    *state = next;
    Ok(Scored {
        streak_day,
        bonus_percent,
        weight_milli,
        points,
        unlocked,
        level_before,
        level_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn facts(category: Category, value: f64, day: i64) -> EventFacts {
        EventFacts {
            category,
            value: Value::from_f64(value, Points::whole(1000)).unwrap(),
            day: Day(day),
        }
    }

    #[test]
    fn the_briefs_first_event_earns_four_points() {
        let mut state = UserState::default();
        let scored = apply_event(
            &mut state,
            &facts(Category::FINANCE, 2.0, 100),
            &RuleSet::default(),
        )
        .unwrap();
        assert_eq!(scored.points, Points::whole(4));
        assert_eq!(
            scored.unlocked,
            vec![(AchievementId::FIRST_STEP, Points::ZERO)]
        );
        assert_eq!(state.total, Points::whole(4));
        assert_eq!(state.best_streak, 1);
    }

    #[test]
    fn a_seven_day_streak_pays_thirty_five_percent_and_the_streak_bonuses() {
        let mut state = UserState::default();
        let rules = RuleSet::default();
        let mut last = None;
        for day in 0..7 {
            last = Some(
                apply_event(
                    &mut state,
                    &facts(Category::PRODUCTIVITY, 10.0, day),
                    &rules,
                )
                .unwrap(),
            );
        }
        let day7 = last.unwrap();
        assert_eq!(day7.streak_day, 7);
        assert_eq!(day7.bonus_percent, 35);
        assert_eq!(day7.points, Points::from_milli(13_500));
        // 10 + 10 + 11.5 + 12 + 12.5 + 13 + 13.5 = 82.5 event points, + 10 (streak_3)
        // + 25 (streak_7) = 117.5: the day-7 bonus crosses 100 and unlocks points_100 too.
        assert_eq!(
            day7.unlocked,
            vec![
                (AchievementId::STREAK_7, Points::whole(25)),
                (AchievementId::POINTS_100, Points::ZERO)
            ]
        );
        assert_eq!(state.lifetime, Points::from_milli(117_500));
    }

    #[test]
    fn a_streak_bonus_that_crosses_a_hundred_unlocks_points_100_in_the_same_event() {
        let mut state = UserState::default();
        let rules = RuleSet::default();
        apply_event(&mut state, &facts(Category::FINANCE, 22.0, 0), &rules).unwrap(); // 44
        apply_event(&mut state, &facts(Category::FINANCE, 22.0, 1), &rules).unwrap(); // 88
        // Day 3: 1 × 2.0 × 1.15 = 2.3 → 90.3; the streak_3 bonus (+10) lifts it past 100.
        let scored = apply_event(&mut state, &facts(Category::FINANCE, 1.0, 2), &rules).unwrap();
        assert_eq!(
            scored.unlocked,
            vec![
                (AchievementId::STREAK_3, Points::whole(10)),
                (AchievementId::POINTS_100, Points::ZERO)
            ]
        );
        assert_eq!(scored.level_before, 1);
        assert_eq!(scored.level_after, 2);
    }

    #[test]
    fn points_round_half_up_to_thousandths() {
        // 40 minutes of learning: value 1.333 × 1.5 = 1.9995 → 2.0.
        let p = event_points(Value::from_milli(1333), 1500, 0).unwrap();
        assert_eq!(p, Points::from_milli(2000));
        let p = event_points(Value::from_milli(1), 800, 0).unwrap();
        assert_eq!(p, Points::from_milli(1)); // 0.8 thousandths rounds to 1
    }

    /// The naive model: streak ending on `day` from a plain set of days.
    fn naive_streak(days: &BTreeSet<i64>, day: i64) -> u32 {
        let mut n = 0;
        while days.contains(&(day - n)) {
            n += 1;
        }
        n as u32
    }

    fn naive_best(days: &BTreeSet<i64>) -> u32 {
        days.iter()
            .map(|&d| naive_streak(days, d))
            .max()
            .unwrap_or(0)
    }

    proptest! {
        #[test]
        fn streaks_match_a_naive_model_in_any_arrival_order(
            days in proptest::collection::vec(0i64..60, 1..80)
        ) {
            let rules = RuleSet::default();
            let mut state = UserState::default();
            let mut seen = BTreeSet::new();
            for &day in &days {
                seen.insert(day);
                let scored = apply_event(&mut state, &facts(Category::HEALTH, 1.0, day), &rules).unwrap();
                prop_assert_eq!(scored.streak_day, naive_streak(&seen, day));
                prop_assert_eq!(scored.bonus_percent, rules.streak.bonus_percent(scored.streak_day));
                prop_assert_eq!(state.best_streak, naive_best(&seen));
                let today = *seen.iter().max().unwrap();
                prop_assert_eq!(state.runs.current(Day(today)), naive_streak(&seen, today));
            }
            let best = naive_best(&seen);
            for (id, n) in [(AchievementId::STREAK_3, 3), (AchievementId::STREAK_7, 7), (AchievementId::STREAK_30, 30)] {
                prop_assert_eq!(state.achievements.contains(&id), best >= n);
            }
        }

        #[test]
        fn balances_are_the_sum_of_points_and_bonuses_and_achievements_unlock_once(
            events in proptest::collection::vec((0usize..5, 1i64..200_000, 0i64..40), 1..60)
        ) {
            let rules = RuleSet::default();
            let mut state = UserState::default();
            let mut sum = 0i64;
            let mut unlocked = Vec::new();
            for (c, milli, day) in events {
                let e = EventFacts { category: Category::BRIEF[c], value: Value::from_milli(milli), day: Day(day) };
                let before = state.lifetime;
                let scored = apply_event(&mut state, &e, &rules).unwrap();
                prop_assert!(scored.points > Points::ZERO);
                prop_assert!(state.lifetime > before);
                sum += scored.points.milli() + scored.bonus_points().milli();
                unlocked.extend(scored.unlocked.iter().map(|(id, _)| *id));
                prop_assert_eq!(scored.level_after, rules.level_for(state.lifetime));
            }
            prop_assert_eq!(state.lifetime.milli(), sum);
            prop_assert_eq!(state.total, state.lifetime);
            let mut dedup = unlocked.clone();
            dedup.sort();
            dedup.dedup();
            prop_assert_eq!(dedup.len(), unlocked.len());
            prop_assert_eq!(&unlocked, &state.achievements);
            for a in &rules.achievements {
                if let crate::Requirement::LifetimePoints(p) = a.requirement {
                    prop_assert_eq!(state.achievements.contains(&a.id), state.lifetime >= p);
                }
            }
        }

        #[test]
        fn points_are_value_times_weight_times_bonus(milli in 1i64..1_000_000, c in 0usize..5, pct in 0u32..=50) {
            let weight = RuleSet::default().categories[c].1;
            let p = event_points(Value::from_milli(milli), weight, pct).unwrap();
            let exact = milli as f64 * weight as f64 / 1000.0 * (100 + pct) as f64 / 100.0;
            prop_assert!((p.milli() as f64 - exact).abs() <= 0.5 + 1e-6);
        }

        #[test]
        fn levels_are_monotonic(
            a in prop_oneof![0i64..200_000, 0i64..10_000_000],
            b in prop_oneof![0i64..200_000, 0i64..10_000_000],
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            let rules = RuleSet::default();
            prop_assert!(rules.level_for(Points::from_milli(lo)) <= rules.level_for(Points::from_milli(hi)));
            let level = rules.level_for(Points::from_milli(hi));
            prop_assert!(Points::from_milli(hi) < rules.next_level_points(level));
            // Level 1 starts at zero; every later level where the one before ends.
            let start = if level == 1 { Points::ZERO } else { rules.next_level_points(level - 1) };
            prop_assert!(Points::from_milli(hi) >= start);
        }
    }
}
