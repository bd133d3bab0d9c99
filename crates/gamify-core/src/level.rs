//! Level curves: which level a user's lifetime points reach.

use crate::Points;

/// How lifetime points map to levels. Level 1 starts at zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LevelCurve {
    /// Level N covers (N−1)×step ≤ lifetime < N×step (the brief's curve,
    /// step 100).
    Linear {
        /// Lifetime points per level.
        step: Points,
    },
    /// Level N+1 starts at `starts[N-1]`: `[100, 250, 500]` makes level 2
    /// start at 100, level 3 at 250 and level 4 at 500. Past the table,
    /// levels keep coming at the table's last step (500 − 250 here; with a
    /// one-entry table, its value), so there is always a next level.
    Table {
        /// Where levels 2, 3, … start; strictly increasing, all positive.
        starts: Vec<Points>,
    },
}

/// The brief's lifetime points per level.
pub const BRIEF_LEVEL_STEP: i64 = 100;

impl Default for LevelCurve {
    fn default() -> LevelCurve {
        LevelCurve::Linear {
            step: Points::whole(BRIEF_LEVEL_STEP),
        }
    }
}

impl LevelCurve {
    /// The level reached with `lifetime` points (1 for zero or less).
    pub fn level_for(&self, lifetime: Points) -> u64 {
        let lifetime = lifetime.milli().max(0);
        let levels = match self {
            LevelCurve::Linear { step } => lifetime / step.milli().max(1),
            LevelCurve::Table { starts } => {
                let within = starts.partition_point(|s| s.milli() <= lifetime) as i64;
                match (within as usize == starts.len(), self.tail_step()) {
                    (true, Some(step)) => {
                        let last = starts.last().map_or(0, |p| p.milli());
                        within + (lifetime - last) / step.milli().max(1)
                    }
                    _ => within,
                }
            }
        };
        // Non-negative: lifetime is clamped at zero and steps are positive.
        levels.unsigned_abs() + 1
    }

    /// The lifetime points at which `level` ends and the next one begins.
    pub fn next_level_points(&self, level: u64) -> Points {
        let level = i64::try_from(level.max(1)).unwrap_or(i64::MAX);
        match self {
            LevelCurve::Linear { step } => Points::from_milli(level.saturating_mul(step.milli())),
            LevelCurve::Table { starts } => match starts.get((level - 1) as usize) {
                Some(p) => *p,
                None => {
                    let last = starts.last().map_or(0, |p| p.milli());
                    let step = self.tail_step().map_or(0, |s| s.milli());
                    let beyond = level - starts.len() as i64;
                    Points::from_milli(last.saturating_add(beyond.saturating_mul(step)))
                }
            },
        }
    }

    /// The step levels keep coming at past a table's end.
    fn tail_step(&self) -> Option<Points> {
        match self {
            LevelCurve::Linear { step } => Some(*step),
            LevelCurve::Table { starts } => match starts.as_slice() {
                [] => None,
                [only] => Some(*only),
                [.., a, b] => Some(Points::from_milli(b.milli() - a.milli())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_briefs_table() {
        let curve = LevelCurve::default();
        assert_eq!(curve.level_for(Points::ZERO), 1);
        assert_eq!(curve.level_for(Points::from_milli(99_999)), 1);
        assert_eq!(curve.level_for(Points::whole(100)), 2);
        assert_eq!(curve.level_for(Points::whole(250)), 3);
        assert_eq!(curve.next_level_points(3), Points::whole(300));
        // The brief's sample (1250 lifetime) contradicts its table; the table wins.
        assert_eq!(curve.level_for(Points::whole(1250)), 13);
    }

    #[test]
    fn levels_do_not_stop_at_four_billion() {
        // One level per thousandth of a point, and a lifetime a rules file
        // with large values and weights can reach: the level keeps counting
        // and the next level still lies ahead.
        let curve = LevelCurve::Linear {
            step: Points::from_milli(1),
        };
        let lifetime = Points::from_milli(9_222_000_000_000_000_000);
        let level = curve.level_for(lifetime);
        assert_eq!(level, 9_222_000_000_000_000_001);
        assert!(lifetime < curve.next_level_points(level));
    }

    #[test]
    fn a_table_of_thresholds_continues_at_its_last_step() {
        let curve = LevelCurve::Table {
            starts: [100, 250, 500].map(Points::whole).to_vec(),
        };
        let at = |p| curve.level_for(Points::whole(p));
        assert_eq!(
            (at(0), at(99), at(100), at(249), at(250), at(500)),
            (1, 1, 2, 2, 3, 4)
        );
        assert_eq!((at(749), at(750), at(1000)), (4, 5, 6));
        assert_eq!(curve.next_level_points(1), Points::whole(100));
        assert_eq!(curve.next_level_points(3), Points::whole(500));
        assert_eq!(curve.next_level_points(4), Points::whole(750));
        assert_eq!(curve.next_level_points(5), Points::whole(1000));
        for p in 0..2000 {
            let level = at(p);
            assert!(Points::whole(p) < curve.next_level_points(level), "{p}");
            if level > 1 {
                assert!(
                    Points::whole(p) >= curve.next_level_points(level - 1),
                    "{p}"
                );
            }
        }
    }
}
