//! Leaderboards: which boards exist, what each counts, and the records
//! their reads return. Both backends answer them the same way (the
//! embedded one from memory, PostgreSQL from SQL).
//!
//! A board is a period (all time, or the UTC day, ISO week or month) and
//! optionally a category. What counts:
//!
//! - **All time, overall:** lifetime points (events, achievement bonuses,
//!   adjustments in the user's favour), as the brief's leaderboard.
//! - **All time, per category:** the points of the user's events in it.
//! - **A day, week or month, overall:** the points of the events *recorded*
//!   in the window (by `created_at`, when they were earned, so a window's
//!   standings are final once it is over), with the achievement bonuses
//!   those events unlocked.
//! - **A window, per category:** the points of the events in that category
//!   recorded in it.
//!
//! Spending never lowers a board. A user is on a board once they have
//! points on it (all time, overall: once they have a balance row). Users
//! who asked to be hidden are on no board, and others' ranks do not count
//! them. Order: points, highest first; ties by user id, ascending byte
//! order; rank is the 1-based position.

use gamify_core::{Category, Period, Points, Window};

use crate::{EventRecord, StoreError};

/// One board: a period and, optionally, one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BoardKey {
    /// How long it counts.
    pub period: Period,
    /// Only this category's event points; `None`: overall.
    pub category: Option<Category>,
}

impl BoardKey {
    /// The brief's leaderboard: all time, overall.
    pub const ALL_TIME: BoardKey = BoardKey {
        period: Period::AllTime,
        category: None,
    };

    /// Every board of `categories`: each period, overall and per category.
    pub fn all(categories: &[Category]) -> impl Iterator<Item = BoardKey> + '_ {
        Period::ALL.into_iter().flat_map(move |period| {
            std::iter::once(None)
                .chain(categories.iter().copied().map(Some))
                .map(move |category| BoardKey { period, category })
        })
    }
}

/// One row of a board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardRow {
    /// 1-based position.
    pub rank: u64,
    /// The user.
    pub user_id: String,
    /// Their points on the board.
    pub points: Points,
}

/// Where a page of a board ends: the last row's points and user. The next
/// page starts after it, wherever its rank has moved meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The last row's points.
    pub points: Points,
    /// The last row's user.
    pub user_id: String,
}

impl Cursor {
    /// The cursor after a row.
    pub fn after(row: &BoardRow) -> Cursor {
        Cursor {
            points: row.points,
            user_id: row.user_id.clone(),
        }
    }

    /// As text: `<points in thousandths>:<user id>`.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.points.milli(), self.user_id)
    }

    /// Reads [`Cursor::encode`]'s text.
    pub fn decode(text: &str) -> Option<Cursor> {
        let (milli, user) = text.split_once(':')?;
        gamify_core::UserId::parse(user).ok()?;
        Some(Cursor {
            points: Points::from_milli(milli.parse().ok()?),
            user_id: user.to_owned(),
        })
    }
}

/// A user's place on a board and the users around them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Their rank; `None` if they are not on the board (hidden, or no
    /// points on it).
    pub rank: Option<u64>,
    /// Their points on it.
    pub points: Points,
    /// Whether they asked to be hidden from boards.
    pub hidden: bool,
    /// Up to k rows just above them, best first.
    pub above: Vec<BoardRow>,
    /// Up to k rows just below them, best first.
    pub below: Vec<BoardRow>,
    /// How many users the board ranks.
    pub ranked: u64,
}

/// What one event adds to the windowed boards: its points, and its
/// achievement bonuses (overall boards only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPoints {
    /// Whose.
    pub user_id: String,
    /// When it was recorded (Unix ms): the windows it counts in.
    pub created_at_ms: i64,
    /// Its category.
    pub category: Category,
    /// Its own points.
    pub points: Points,
    /// The achievement bonuses it unlocked.
    pub bonuses: Points,
}

impl EventPoints {
    /// What a stored event adds.
    pub fn of(event: &EventRecord) -> Result<EventPoints, StoreError> {
        let bonuses = event
            .unlocked
            .iter()
            .try_fold(Points::ZERO, |sum, (_, b)| sum.checked_add(*b))?;
        Ok(EventPoints {
            user_id: event.user_id.clone(),
            created_at_ms: event.created_at_ms,
            category: event.category,
            points: event.points,
            bonuses,
        })
    }

    /// What it adds to a windowed board of its window: its points with
    /// its bonuses overall, its points on its category's board, nothing on
    /// another category's.
    pub fn points_on(&self, category: Option<Category>) -> Option<Points> {
        match category {
            None => Some(self.points.checked_add(self.bonuses).unwrap_or(self.points)),
            Some(c) if c == self.category => Some(self.points),
            Some(_) => None,
        }
    }

    /// The (board, window, points) it adds to, for the windowed periods.
    pub fn contributions(&self) -> Vec<(BoardKey, Window, Points)> {
        let mut out = Vec::with_capacity(6);
        for period in [Period::Day, Period::Week, Period::Month] {
            let window = Window::containing(period, self.created_at_ms);
            for category in [None, Some(self.category)] {
                if let Some(points) = self.points_on(category) {
                    out.push((BoardKey { period, category }, window, points));
                }
            }
        }
        out
    }
}

/// What a commit changed for one user on the boards: their absolute points
/// on each board it touched (all-time boards with [`Window::ALL_TIME`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserBoards {
    /// Whose.
    pub user_id: String,
    /// Board, window, points there.
    pub points: Vec<(BoardKey, Window, Points)>,
}

/// The windowed periods, in the order [`LiveTotals`] keeps them.
pub const WINDOWED: [Period; 3] = [Period::Day, Period::Week, Period::Month];

/// A user's points in the day, week and month of their latest earning,
/// overall and per category: what the PostgreSQL backend keeps on the
/// user's row so that a commit knows the user's absolute totals on the
/// windowed boards without summing the log (Redis is then written absolute
/// values, which can be repeated and reordered safely).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveTotals {
    /// The first day (days since 1970-01-01) of the day, week and month
    /// counted; `None` before the first earning.
    pub starts: Option<[i64; 3]>,
    /// Overall (`None`), then categories: points (thousandths) in each of
    /// those windows.
    pub rows: Vec<(Option<Category>, [i64; 3])>,
}

impl LiveTotals {
    /// As stored: `v1;<day>,<week>,<month>;*:<d>,<w>,<m>;health:<d>,<w>,<m>…`.
    /// The empty text is kept for "not known yet" (rows written before the
    /// column existed, and imports), which [`LiveTotals::decode`] tells apart.
    pub fn encode(&self) -> String {
        let Some([d, w, m]) = self.starts else {
            return "v1".into();
        };
        let mut out = format!("v1;{d},{w},{m}");
        for (category, [a, b, c]) in &self.rows {
            let name = category.map_or("*", Category::as_str);
            out.push_str(&format!(";{name}:{a},{b},{c}"));
        }
        out
    }

    /// Reads [`LiveTotals::encode`]'s text; `Ok(None)` for the empty text
    /// (not known yet).
    pub fn decode(text: &str) -> Result<Option<LiveTotals>, StoreError> {
        let bad = || StoreError::Backend(format!("unreadable board_windows {text:?}").into());
        if text.is_empty() {
            return Ok(None);
        }
        let mut parts = text.split(';');
        if parts.next() != Some("v1") {
            return Err(bad());
        }
        let triple = |t: &str| -> Option<[i64; 3]> {
            let mut it = t.split(',').map(|n| n.parse::<i64>().ok());
            let out = [it.next()??, it.next()??, it.next()??];
            it.next().is_none().then_some(out)
        };
        let Some(starts) = parts.next() else {
            return Ok(Some(LiveTotals::default()));
        };
        let starts = triple(starts).ok_or_else(bad)?;
        let mut rows = Vec::new();
        for part in parts {
            let (name, values) = part.split_once(':').ok_or_else(bad)?;
            let category = match name {
                "*" => None,
                c => Some(Category::named(c).ok_or_else(bad)?),
            };
            rows.push((category, triple(values).ok_or_else(bad)?));
        }
        Ok(Some(LiveTotals {
            starts: Some(starts),
            rows,
        }))
    }

    /// The points on one board in the window it counts; 0 if none.
    pub fn get(&self, period_index: usize, category: Option<Category>) -> i64 {
        self.rows
            .iter()
            .find(|(c, _)| *c == category)
            .map_or(0, |(_, v)| v[period_index])
    }

    /// Counts an event: a window later than the one kept starts again from
    /// zero. Returns false if one of the event's windows is *earlier* than
    /// the one kept (a node whose clock is behind another's), which these
    /// totals cannot count: the caller has the boards recounted.
    pub fn add(&mut self, event: &EventPoints) -> bool {
        let mut counted = true;
        let mut starts = self.starts.unwrap_or([i64::MIN; 3]);
        for (i, period) in WINDOWED.into_iter().enumerate() {
            let start = Window::containing(period, event.created_at_ms).start_day;
            if start < starts[i] {
                counted = false;
                continue;
            }
            if start > starts[i] {
                starts[i] = start;
                for (_, v) in &mut self.rows {
                    v[i] = 0;
                }
            }
            for category in [None, Some(event.category)] {
                let Some(points) = event.points_on(category) else {
                    continue;
                };
                let at = match self.rows.iter().position(|(c, _)| *c == category) {
                    Some(at) => at,
                    None => {
                        self.rows.push((category, [0; 3]));
                        self.rows.len() - 1
                    }
                };
                let v = &mut self.rows[at].1[i];
                *v = v.saturating_add(points.milli());
            }
        }
        self.rows.retain(|(_, v)| v.iter().any(|p| *p != 0));
        self.rows.sort_by_key(|(c, _)| *c);
        self.starts = Some(starts);
        counted
    }

    /// The windowed boards these totals put the user on, with the user's
    /// points there: for the overall boards and the `categories` given.
    pub fn boards(&self, categories: &[Category]) -> Vec<(BoardKey, Window, Points)> {
        let Some(starts) = self.starts else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, period) in WINDOWED.into_iter().enumerate() {
            let window = Window {
                period,
                start_day: starts[i],
            };
            for category in std::iter::once(None).chain(categories.iter().copied().map(Some)) {
                let points = self.get(i, category);
                if points > 0 {
                    out.push((
                        BoardKey { period, category },
                        window,
                        Points::from_milli(points),
                    ));
                }
            }
        }
        out
    }
}

/// A page of a board given whole, in order (points, user): the slow paths
/// (windows summed from the log) use it.
pub fn page_of(board: &[(String, i64)], after: Option<&Cursor>, limit: usize) -> Vec<BoardRow> {
    // Rows at or before the cursor's place: more points, or as many and a
    // user id not after its.
    let from = after.map_or(0, |c| {
        let (points, user) = (c.points.milli(), c.user_id.as_str());
        board.partition_point(|(u, p)| *p > points || (*p == points && u.as_str() <= user))
    });
    board
        .iter()
        .enumerate()
        .skip(from)
        .take(limit)
        .map(|(i, (user, points))| BoardRow {
            rank: i as u64 + 1,
            user_id: user.clone(),
            points: Points::from_milli(*points),
        })
        .collect()
}

/// A user's standing on a board given whole, in order; `hidden` users are
/// not on it (their points are `own`).
pub fn standing_of(
    board: &[(String, i64)],
    user: &str,
    hidden: bool,
    own: Points,
    k: usize,
) -> Standing {
    let row = |i: usize| BoardRow {
        rank: i as u64 + 1,
        user_id: board[i].0.clone(),
        points: Points::from_milli(board[i].1),
    };
    let position = board.iter().position(|(u, _)| u == user);
    let (above, below) = match position {
        None => (Vec::new(), Vec::new()),
        Some(p) => (
            (p.saturating_sub(k)..p).map(row).collect(),
            (p + 1..(p + 1 + k).min(board.len())).map(row).collect(),
        ),
    };
    Standing {
        rank: position.map(|p| p as u64 + 1),
        points: position.map_or(own, |p| Points::from_milli(board[p].1)),
        hidden,
        above,
        below,
        ranked: board.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_24_boards_and_cursors_round_trip() {
        assert_eq!(BoardKey::all(&Category::BRIEF).count(), 24);
        let c = Cursor {
            points: Points::from_milli(-5),
            user_id: "a:b".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("x:u"), None);
        assert_eq!(Cursor::decode("5:not valid"), None);
    }

    #[test]
    fn live_totals_count_the_latest_windows_and_round_trip() {
        let day = 86_400_000;
        // 2025-10-12 is a Sunday: the next day starts a new week, not a new month.
        let sunday = 1_760_265_000_000;
        let e = |at: i64, category, points| EventPoints {
            user_id: "u".into(),
            created_at_ms: at,
            category,
            points: Points::whole(points),
            bonuses: Points::ZERO,
        };
        let mut t = LiveTotals::default();
        assert!(t.add(&e(sunday, Category::HEALTH, 3)));
        assert!(t.add(&e(sunday, Category::FINANCE, 4)));
        assert_eq!(t.get(0, None), 7_000);
        assert!(t.add(&e(sunday + day, Category::HEALTH, 5)));
        assert_eq!(
            (t.get(0, None), t.get(1, None), t.get(2, None)),
            (5_000, 5_000, 12_000)
        );
        assert_eq!(t.get(0, Some(Category::FINANCE)), 0);
        assert_eq!(t.get(2, Some(Category::HEALTH)), 8_000);
        // A late clock cannot be counted in a window already left behind
        // (its day and week), only in the month both share.
        assert!(!t.add(&e(sunday, Category::HEALTH, 1)));
        assert_eq!(t.get(2, Some(Category::HEALTH)), 9_000);
        assert_eq!(LiveTotals::decode(&t.encode()).unwrap(), Some(t.clone()));
        assert_eq!(LiveTotals::decode("").unwrap(), None);
        assert_eq!(
            LiveTotals::decode("v1").unwrap(),
            Some(LiveTotals::default())
        );
        assert!(LiveTotals::decode("v1;1,2").is_err());
        let boards = t.boards(&[Category::HEALTH]);
        assert_eq!(boards.len(), 6);
        assert_eq!(boards[5].2, Points::whole(9));
    }

    #[test]
    fn an_event_counts_in_its_day_week_and_month_overall_with_bonuses() {
        let e = EventPoints {
            user_id: "u".into(),
            created_at_ms: 1_760_265_000_000,
            category: Category::HEALTH,
            points: Points::whole(3),
            bonuses: Points::whole(10),
        };
        let c = e.contributions();
        assert_eq!(c.len(), 6);
        assert_eq!(c[0].2, Points::whole(13));
        assert_eq!(
            c[1],
            (
                BoardKey {
                    period: Period::Day,
                    category: Some(Category::HEALTH)
                },
                Window::containing(Period::Day, e.created_at_ms),
                Points::whole(3)
            )
        );
    }
}
