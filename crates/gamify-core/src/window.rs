//! Leaderboard periods and their windows: all time, and the UTC day, ISO
//! week (Monday to Sunday) and calendar month an instant falls in. Pure
//! calendar arithmetic on days since the Unix epoch, proleptic Gregorian.

use std::fmt;

const DAY_MS: i64 = 86_400_000;

/// How long a board counts points for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// Every point ever.
    AllTime,
    /// One UTC calendar day.
    Day,
    /// One ISO week, Monday 00:00 UTC to Monday 00:00 UTC.
    Week,
    /// One UTC calendar month.
    Month,
}

impl Period {
    /// Every period, in this order.
    pub const ALL: [Period; 4] = [Period::AllTime, Period::Day, Period::Week, Period::Month];

    /// The wire name: `all_time`, `day`, `week`, `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::AllTime => "all_time",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The period with this wire name.
    pub fn parse(text: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// One window of a period: which day, week or month (all time has one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Its period.
    pub period: Period,
    /// Its first day, in days since 1970-01-01 (0 for all time).
    pub start_day: i64,
}

impl Window {
    /// The one window of all time.
    pub const ALL_TIME: Window = Window {
        period: Period::AllTime,
        start_day: 0,
    };

    /// The window of `period` that the instant `at_ms` (Unix ms) falls in.
    pub fn containing(period: Period, at_ms: i64) -> Window {
        let day = at_ms.div_euclid(DAY_MS);
        let start_day = match period {
            Period::AllTime => 0,
            Period::Day => day,
            // 1970-01-01 was a Thursday: Monday is 3 days before it.
            Period::Week => day - (day + 3).rem_euclid(7),
            Period::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m, 1)
            }
        };
        Window { period, start_day }
    }

    /// Its first instant (Unix ms, inclusive); `i64::MIN` for all time.
    pub fn start_ms(self) -> i64 {
        match self.period {
            Period::AllTime => i64::MIN,
            _ => self.start_day * DAY_MS,
        }
    }

    /// The first instant after it (Unix ms, exclusive); `i64::MAX` for all time.
    pub fn end_ms(self) -> i64 {
        match self.period {
            Period::AllTime => i64::MAX,
            _ => self.next().start_day * DAY_MS,
        }
    }

    /// The window after this one (all time: itself).
    pub fn next(self) -> Window {
        let start_day = match self.period {
            Period::AllTime => 0,
            Period::Day => self.start_day + 1,
            Period::Week => self.start_day + 7,
            Period::Month => {
                let (y, m, _) = civil_from_days(self.start_day);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1)
            }
        };
        Window {
            period: self.period,
            start_day,
        }
    }

    /// The window before this one (all time: itself).
    pub fn previous(self) -> Window {
        match self.period {
            Period::AllTime => self,
            Period::Day | Period::Week | Period::Month => {
                Window::containing(self.period, self.start_ms() - 1)
            }
        }
    }

    /// Its label: `all_time`, `2026-11-24`, `2026-W48`, `2026-11`.
    pub fn label(self) -> String {
        self.to_string()
    }

    /// The window of `period` a label names, if it is one.
    pub fn parse(period: Period, label: &str) -> Option<Window> {
        let number = |s: &str, len: usize| -> Option<i64> {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let window = match period {
            Period::AllTime => (label == "all_time").then_some(Window::ALL_TIME)?,
            Period::Day => {
                let mut parts = label.split('-');
                let (y, m, d) = (
                    number(parts.next()?, 4)?,
                    number(parts.next()?, 2)?,
                    number(parts.next()?, 2)?,
                );
                if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
                    return None;
                }
                let day = days_from_civil(y, m, d);
                // 2026-02-30 is not a day.
                if civil_from_days(day) != (y, m, d) {
                    return None;
                }
                Window {
                    period,
                    start_day: day,
                }
            }
            Period::Week => {
                let (y, w) = label.split_once("-W")?;
                let (y, w) = (number(y, 4)?, number(w, 2)?);
                // Week 1 holds the year's first Thursday, so 4 January.
                let week1 = Window::containing(Period::Week, days_from_civil(y, 1, 4) * DAY_MS);
                let window = Window {
                    period,
                    start_day: week1.start_day + 7 * (w - 1),
                };
                if w < 1 || window.iso_week() != (y, w) {
                    return None;
                }
                window
            }
            Period::Month => {
                let (y, m) = label.split_once('-')?;
                let (y, m) = (number(y, 4)?, number(m, 2)?);
                if !(1..=12).contains(&m) {
                    return None;
                }
                Window {
                    period,
                    start_day: days_from_civil(y, m, 1),
                }
            }
        };
        Some(window)
    }

    /// The ISO (year, week) of a week window's Monday.
    fn iso_week(self) -> (i64, i64) {
        let thursday = self.start_day + 3;
        let (y, _, _) = civil_from_days(thursday);
        let ordinal = thursday - days_from_civil(y, 1, 1);
        (y, ordinal / 7 + 1)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.start_day);
        match self.period {
            Period::AllTime => f.write_str("all_time"),
            Period::Day => write!(f, "{y:04}-{m:02}-{d:02}"),
            Period::Week => {
                let (y, w) = self.iso_week();
                write!(f, "{y:04}-W{w:02}")
            }
            Period::Month => write!(f, "{y:04}-{m:02}"),
        }
    }
}

/// (year, month, day) of a day since 1970-01-01 (civil from days).
pub fn civil_from_days(day: i64) -> (i64, i64, i64) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The day since 1970-01-01 of (year, month, day) (days from civil).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(y: i64, m: i64, d: i64, hour: i64) -> i64 {
        days_from_civil(y, m, d) * DAY_MS + hour * 3_600_000
    }

    #[test]
    fn days_round_trip_through_the_calendar() {
        for day in -800_000..800_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
    }

    #[test]
    fn windows_roll_over_exactly_at_the_utc_boundary() {
        // Sunday 2026-11-29 23:59:59.999 is week 48; Monday 00:00 is week 49.
        let last = ms(2026, 11, 30, 0) - 1;
        assert_eq!(Window::containing(Period::Week, last).label(), "2026-W48");
        assert_eq!(
            Window::containing(Period::Week, last + 1).label(),
            "2026-W49"
        );
        assert_eq!(Window::containing(Period::Day, last).label(), "2026-11-29");
        assert_eq!(
            Window::containing(Period::Day, last + 1).label(),
            "2026-11-30"
        );
        assert_eq!(
            Window::containing(Period::Month, last + 1).label(),
            "2026-11"
        );
        let december = ms(2026, 12, 1, 0);
        assert_eq!(
            Window::containing(Period::Month, december - 1).label(),
            "2026-11"
        );
        assert_eq!(
            Window::containing(Period::Month, december).label(),
            "2026-12"
        );
        let week = Window::containing(Period::Week, last);
        assert_eq!(week.start_ms(), ms(2026, 11, 23, 0));
        assert_eq!(week.end_ms(), last + 1);
        assert_eq!(week.next().previous(), week);
    }

    #[test]
    fn iso_weeks_cross_years_as_iso_says() {
        // 2021-01-03 (Sunday) is in 2020-W53; 2024-12-30 (Monday) in 2025-W01.
        let w = Window::containing(Period::Week, ms(2021, 1, 3, 12));
        assert_eq!(w.label(), "2020-W53");
        assert_eq!(
            Window::containing(Period::Week, ms(2024, 12, 30, 0)).label(),
            "2025-W01"
        );
        assert_eq!(Window::parse(Period::Week, "2020-W53"), Some(w));
        assert_eq!(Window::parse(Period::Week, "2021-W53"), None);
    }

    #[test]
    fn labels_parse_back_and_nonsense_does_not() {
        for period in Period::ALL {
            for day in [-1, 0, 18_000, 20_416, 20_780] {
                let w = Window::containing(period, day * DAY_MS + 5);
                assert_eq!(Window::parse(period, &w.label()), Some(w), "{w}");
            }
        }
        for (period, bad) in [
            (Period::Day, "2026-02-30"),
            (Period::Day, "2026-1-05"),
            (Period::Month, "2026-13"),
            (Period::Week, "2026-W00"),
            (Period::Week, "2026W10"),
            (Period::AllTime, "2026"),
        ] {
            assert_eq!(Window::parse(period, bad), None, "{bad}");
        }
        assert_eq!(Period::parse("week"), Some(Period::Week));
        assert_eq!(Period::parse("year"), None);
    }
}
