//! The level curve: level N covers (N−1)×100 ≤ lifetime points < N×100.

use crate::Points;

/// Lifetime points per level (the brief's linear curve).
pub const POINTS_PER_LEVEL: i64 = 100;

/// The level reached with `lifetime` points (1 for zero or less).
pub fn level_for(lifetime: Points) -> u32 {
    let whole_levels = lifetime.milli().max(0) / Points::whole(POINTS_PER_LEVEL).milli();
    u32::try_from(whole_levels + 1).unwrap_or(u32::MAX)
}

/// The lifetime points at which `level` ends and the next one begins.
pub fn next_level_points(level: u32) -> Points {
    Points::whole(i64::from(level) * POINTS_PER_LEVEL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_briefs_table() {
        assert_eq!(level_for(Points::ZERO), 1);
        assert_eq!(level_for(Points::from_milli(99_999)), 1);
        assert_eq!(level_for(Points::whole(100)), 2);
        assert_eq!(level_for(Points::whole(250)), 3);
        assert_eq!(next_level_points(3), Points::whole(300));
        // The brief's sample (1250 lifetime) contradicts its table; the table wins.
        assert_eq!(level_for(Points::whole(1250)), 13);
    }
}
