//! The numbers behind the admin dashboard: users, events and points, who
//! was active lately, and events per category and per day. The same SQL
//! runs on both backends (the tables and columns are named alike); it scans
//! `users` and `events`, so its cost grows with the data (docs/API.md,
//! "Analytics").

use gamify_core::Points;

/// What [`crate::Store::analytics`] counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Analytics {
    /// Users with at least one event.
    pub users: u64,
    /// Events recorded.
    pub events: u64,
    /// Their lifetime points, summed.
    pub lifetime: Points,
    /// Users whose latest event occurred at or after each of the cutoffs
    /// asked for, in that order.
    pub active: Vec<u64>,
    /// Per category, by name: events and their points (bonuses excluded).
    pub categories: Vec<(String, u64, Points)>,
    /// Per UTC day (days since 1970-01-01) from the day asked for: events
    /// that occurred then and their points; days without events left out.
    pub days: Vec<(i64, u64, Points)>,
}

/// Users, events, lifetime points, and the users active since each cutoff.
pub fn users_sql(active_since: &[i64]) -> String {
    let mut sql = "SELECT count(*), CAST(coalesce(sum(event_count), 0) AS BIGINT), \
                   CAST(coalesce(sum(lifetime_milli), 0) AS BIGINT)"
        .to_owned();
    for cutoff in active_since {
        sql.push_str(&format!(
            ", count(CASE WHEN last_event_at >= {cutoff} THEN 1 END)"
        ));
    }
    sql.push_str(" FROM users WHERE event_count > 0");
    sql
}

/// Events and points per category.
pub const CATEGORIES_SQL: &str = "SELECT category, count(*), \
     CAST(coalesce(sum(points_milli), 0) AS BIGINT) FROM events GROUP BY category ORDER BY category";

/// Events and points per UTC day of occurrence, from `from_ms`.
pub fn days_sql(from_ms: i64) -> String {
    format!(
        "SELECT occurred_at / 86400000, count(*), CAST(coalesce(sum(points_milli), 0) AS BIGINT) \
         FROM events WHERE occurred_at >= {from_ms} GROUP BY occurred_at / 86400000 ORDER BY 1"
    )
}
