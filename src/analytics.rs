//! The admin dashboard's numbers at the engine's edge: which days, and
//! their JSON. What is counted is `gamify_store::analytics`.

pub use gamify_api::{AnalyticsResponse, DayCount};
use gamify_core::Points;

use crate::engine::{Engine, EngineError};

/// The most days `events_per_day` covers.
pub const MAX_DAYS: u32 = 366;

impl Engine {
    /// Users, events and points, who was active in the last 7 and 30 days,
    /// per category, and events per day for the last `days` days (default
    /// 30, at most [`MAX_DAYS`]).
    pub async fn analytics(&self, days: Option<u32>) -> Result<AnalyticsResponse, EngineError> {
        const DAY: i64 = 86_400_000;
        let days = days.unwrap_or(30);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(EngineError::field(
                "days",
                format!("expected 1 to {MAX_DAYS}, got {days}"),
            ));
        }
        let now = self.now_ms();
        let today = now.div_euclid(DAY);
        let first = today - i64::from(days) + 1;
        let a = self
            .store()
            .analytics(vec![now - 7 * DAY, now - 30 * DAY], first * DAY)
            .await?;
        let average = match a.users {
            0 => Points::ZERO,
            // One user's lifetime fits an i64, so their average does too.
            n => Points::from_milli((a.lifetime.0 / i128::from(n)) as i64),
        };
        let mut per_day = a.days.iter().peekable();
        let events_per_day = (first..=today)
            .map(|day| {
                let mut count = DayCount {
                    day: gamify_store::economy::utc_date(day * DAY),
                    events: 0,
                    points: 0.0,
                };
                // Days are ascending; a day past today (clock skew) is left out.
                while let Some(&&(d, n, p)) = per_day.peek() {
                    if d > day {
                        break;
                    }
                    if d == day {
                        count.events = n;
                        count.points = p.to_f64();
                    }
                    per_day.next();
                }
                count
            })
            .collect();
        Ok(AnalyticsResponse {
            total_events: a.events,
            total_users: a.users,
            active_users_7d: a.active.first().copied().unwrap_or(0),
            active_users_30d: a.active.get(1).copied().unwrap_or(0),
            average_points_per_user: average.to_f64(),
            events_by_category: a
                .categories
                .iter()
                .map(|(c, n, _)| (c.clone(), *n))
                .collect(),
            points_by_category: a
                .categories
                .iter()
                .map(|(c, _, p)| (c.clone(), p.to_f64()))
                .collect(),
            events_per_day,
        })
    }
}
