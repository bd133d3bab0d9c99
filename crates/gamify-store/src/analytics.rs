//! The numbers behind the admin dashboard: users, events and points, who
//! was active lately, and events per category and per day. The same SQL
//! runs on both backends (the tables and columns are named alike); it scans
//! `users` and `events`, so its cost grows with the data (docs/API.md,
//! "Analytics").

/// A sum of points across users or events, in thousandths. One user's
/// points fit an `i64` (scoring refuses what would not), but a sum over
/// many users need not, so the SQL sums each amount in two parts, both of
/// which do fit, and they are put back together here, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Total(pub i128);

/// Where the SQL splits each amount: `amount / SPLIT` and `amount % SPLIT`.
/// A billion keeps the high part's sum in range for a billion rows of the
/// largest amount, and the low part's for nine billion rows.
const SPLIT: i64 = 1_000_000_000;

impl Total {
    /// The sum from the two parts the SQL of this module sums.
    pub fn from_parts(high: i64, low: i64) -> Total {
        Total(i128::from(high) * i128::from(SPLIT) + i128::from(low))
    }

    /// The sum as a JSON number of points (approximate past 2^53
    /// thousandths, as every JSON number of points is).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

/// The two sums of `column`, split as [`Total::from_parts`] puts them back.
fn split_sum(column: &str) -> String {
    format!(
        "CAST(coalesce(sum({column} / {SPLIT}), 0) AS BIGINT), \
         CAST(coalesce(sum({column} % {SPLIT}), 0) AS BIGINT)"
    )
}

/// What [`crate::Store::analytics`] counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Analytics {
    /// Users with at least one event.
    pub users: u64,
    /// Events recorded.
    pub events: u64,
    /// Their lifetime points, summed.
    pub lifetime: Total,
    /// Users whose latest event occurred at or after each of the cutoffs
    /// asked for, in that order.
    pub active: Vec<u64>,
    /// Per category, by name: events and their points (bonuses excluded).
    pub categories: Vec<(String, u64, Total)>,
    /// Per UTC day (days since 1970-01-01) from the day asked for: events
    /// that occurred then and their points; days without events left out.
    pub days: Vec<(i64, u64, Total)>,
}

/// Users, events, lifetime points (two columns, see [`Total`]), and the
/// users active since each cutoff.
pub fn users_sql(active_since: &[i64]) -> String {
    let mut sql = format!(
        "SELECT count(*), CAST(coalesce(sum(event_count), 0) AS BIGINT), {}",
        split_sum("lifetime_milli")
    );
    for cutoff in active_since {
        sql.push_str(&format!(
            ", count(CASE WHEN last_event_at >= {cutoff} THEN 1 END)"
        ));
    }
    sql.push_str(" FROM users WHERE event_count > 0");
    sql
}

/// Events and points (two columns, see [`Total`]) per category.
pub fn categories_sql() -> String {
    format!(
        "SELECT category, count(*), {} FROM events GROUP BY category ORDER BY category",
        split_sum("points_milli")
    )
}

/// Events and points (two columns, see [`Total`]) per UTC day of
/// occurrence, from `from_ms`.
pub fn days_sql(from_ms: i64) -> String {
    format!(
        "SELECT occurred_at / 86400000, count(*), {} \
         FROM events WHERE occurred_at >= {from_ms} GROUP BY occurred_at / 86400000 ORDER BY 1",
        split_sum("points_milli")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_parts_give_back_every_amount() {
        for amount in [
            0,
            1,
            999_999_999,
            1_000_000_000,
            -1,
            -1_000_000_001,
            i64::MAX,
            i64::MIN,
        ] {
            // Integer division truncates toward zero in SQLite and
            // PostgreSQL alike, as it does here.
            let (high, low) = (amount / SPLIT, amount % SPLIT);
            assert_eq!(Total::from_parts(high, low), Total(i128::from(amount)));
        }
        let two = Total::from_parts(2 * (i64::MAX / SPLIT), 2 * (i64::MAX % SPLIT));
        assert_eq!(two, Total(2 * i128::from(i64::MAX)));
    }
}
