//! Days and streaks.
//!
//! A streak is the number of consecutive UTC calendar days with at least one
//! event. Events can arrive out of order (backfill), so a user's history is
//! kept as sorted runs of consecutive active days rather than as "last day and
//! count": inserting a late day can extend a run or join two runs, and the
//! streak ending on any day is read straight off the run containing it.

use std::fmt;

const MILLIS_PER_DAY: i64 = 86_400_000;

/// A UTC calendar day, counted from 1970-01-01 (day 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    /// The UTC day containing the instant `unix_millis`.
    pub fn from_unix_millis(unix_millis: i64) -> Day {
        Day(unix_millis.div_euclid(MILLIS_PER_DAY))
    }

    /// The day before.
    pub fn prev(self) -> Day {
        Day(self.0 - 1)
    }
}

/// How a streak raises an event's points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreakPolicy {
    /// The first streak day that earns a bonus.
    pub first_bonus_day: u32,
    /// The bonus per streak day, in percent (day N earns N × this).
    pub percent_per_day: u32,
    /// The largest bonus, in percent.
    pub max_percent: u32,
}

/// The brief's policy: none on days 1–2, then 5 % per streak day, capped
/// at 50 % (day 3 → +15 %, day 7 → +35 %, day 10 and later → +50 %).
pub const STREAK_POLICY: StreakPolicy = StreakPolicy {
    first_bonus_day: 3,
    percent_per_day: 5,
    max_percent: 50,
};

impl Default for StreakPolicy {
    fn default() -> StreakPolicy {
        STREAK_POLICY
    }
}

impl StreakPolicy {
    /// The bonus, in percent, for an event on day `streak_day` of a streak.
    pub fn bonus_percent(self, streak_day: u32) -> u32 {
        if streak_day < self.first_bonus_day {
            0
        } else {
            streak_day
                .saturating_mul(self.percent_per_day)
                .min(self.max_percent)
        }
    }
}

/// A user's active days as sorted, disjoint, non-adjacent runs `[start, end]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreakRuns {
    runs: Vec<(Day, Day)>,
}

impl StreakRuns {
    /// No active days.
    pub fn new() -> StreakRuns {
        StreakRuns::default()
    }

    /// The runs, oldest first.
    pub fn runs(&self) -> &[(Day, Day)] {
        &self.runs
    }

    /// The most recent active day.
    pub fn last_day(&self) -> Option<Day> {
        self.runs.last().map(|&(_, end)| end)
    }

    /// Marks `day` active, merging runs it touches. Returns the run that now
    /// contains it.
    pub fn insert(&mut self, day: Day) -> (Day, Day) {
        // Index of the first run that ends at or after the day before `day`:
        // the only runs `day` can touch are this one and the next.
        let i = self.runs.partition_point(|&(_, end)| end.0 < day.0 - 1);
        let touches = |run: &(Day, Day)| run.0.0 - 1 <= day.0 && day.0 <= run.1.0 + 1;
        match self.runs.get(i) {
            Some(run) if touches(run) => {
                let start = run.0.min(day);
                let mut end = run.1.max(day);
                // Joining the gap between run i and run i+1?
                if let Some(next) = self.runs.get(i + 1)
                    && next.0.0 == end.0 + 1
                {
                    end = next.1;
                    self.runs.remove(i + 1);
                }
                self.runs[i] = (start, end);
                (start, end)
            }
            _ => {
                self.runs.insert(i, (day, day));
                (day, day)
            }
        }
    }

    /// The streak ending on `day`: how many consecutive active days end there
    /// (0 when `day` is not active).
    pub fn streak_ending_on(&self, day: Day) -> u32 {
        let i = self.runs.partition_point(|&(_, end)| end < day);
        match self.runs.get(i) {
            Some(&(start, _)) if start <= day => days_between(start, day),
            _ => 0,
        }
    }

    /// The live streak as seen on `today`: the run ending on the last active
    /// day if that day is today or yesterday (or later, within clock skew),
    /// else 0.
    pub fn current(&self, today: Day) -> u32 {
        match self.runs.last() {
            Some(&(start, end)) if end >= today.prev() => days_between(start, end),
            _ => 0,
        }
    }

    /// The longest run held. Runs older than the kept history are gone, so the
    /// all-time best is tracked separately ([`crate::UserState::best_streak`]).
    pub fn longest(&self) -> u32 {
        self.runs
            .iter()
            .map(|&(s, e)| days_between(s, e))
            .max()
            .unwrap_or(0)
    }

    /// Forgets runs that ended before `horizon`: no accepted event can touch
    /// them any more, because events older than the backfill window are rejected.
    pub fn forget_before(&mut self, horizon: Day) {
        self.runs.retain(|&(_, end)| end >= horizon);
    }

    /// A compact text form for storage: `start-end` pairs of day numbers,
    /// comma-separated (`20373-20380,20390-20390`).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.runs.len() * 12);
        let mut digits = itoa::Buffer::new();
        for (i, (s, e)) in self.runs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(digits.format(s.0));
            out.push('-');
            out.push_str(digits.format(e.0));
        }
        out
    }

    /// Parses [`StreakRuns::encode`]'s form; `None` if it is malformed.
    pub fn decode(text: &str) -> Option<StreakRuns> {
        let mut runs = Vec::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (s, e) = part.split_once('-')?;
            let (s, e) = (Day(s.parse().ok()?), Day(e.parse().ok()?));
            if s > e
                || runs
                    .last()
                    .is_some_and(|&(_, prev): &(Day, Day)| prev.0 + 1 >= s.0)
            {
                return None;
            }
            runs.push((s, e));
        }
        Some(StreakRuns { runs })
    }
}

impl fmt::Display for StreakRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

fn days_between(start: Day, end: Day) -> u32 {
    u32::try_from(end.0 - start.0 + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bonus_matches_the_issue_examples() {
        assert_eq!(STREAK_POLICY.bonus_percent(1), 0);
        assert_eq!(STREAK_POLICY.bonus_percent(2), 0);
        assert_eq!(STREAK_POLICY.bonus_percent(3), 15);
        assert_eq!(STREAK_POLICY.bonus_percent(7), 35);
        assert_eq!(STREAK_POLICY.bonus_percent(10), 50);
        assert_eq!(STREAK_POLICY.bonus_percent(400), 50);
    }

    #[test]
    fn a_late_day_joins_two_runs() {
        let mut runs = StreakRuns::new();
        for d in [10, 11, 13, 14] {
            runs.insert(Day(d));
        }
        assert_eq!(runs.runs().len(), 2);
        assert_eq!(runs.insert(Day(12)), (Day(10), Day(14)));
        assert_eq!(runs.runs(), &[(Day(10), Day(14))]);
        assert_eq!(runs.streak_ending_on(Day(12)), 3);
        assert_eq!(runs.current(Day(15)), 5);
        assert_eq!(runs.current(Day(16)), 0);
    }

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut runs = StreakRuns::new();
        for d in [1, 2, 3, 7, 9] {
            runs.insert(Day(d));
        }
        assert_eq!(runs.encode(), "1-3,7-7,9-9");
        assert_eq!(StreakRuns::decode(&runs.encode()), Some(runs));
        assert_eq!(StreakRuns::decode(""), Some(StreakRuns::new()));
        assert_eq!(StreakRuns::decode("3-1"), None);
        assert_eq!(StreakRuns::decode("1-3,4-5"), None);
        assert_eq!(StreakRuns::decode("x"), None);
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(Day::from_unix_millis(0), Day(0));
        assert_eq!(Day::from_unix_millis(86_399_999), Day(0));
        assert_eq!(Day::from_unix_millis(86_400_000), Day(1));
        assert_eq!(Day::from_unix_millis(-1), Day(-1));
    }
}
