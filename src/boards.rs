//! Leaderboards at the engine's edge: which board and window a request
//! names (the window defaults to the current one by the engine's clock),
//! and the JSON of pages and standings. What each board counts is
//! `gamify_store::board`; docs/API.md, "Leaderboards", says it for users.

pub use gamify_api::{BoardRowResponse, PrivacyRequest, PrivacyResponse, StandingResponse};
use gamify_core::{Period, Points, UserId, Window};
use gamify_store::board::{BoardKey, BoardRow, Cursor, Standing};

use crate::engine::{Engine, EngineError, parse_user};
use crate::model::{LeaderboardEntry, Render};

/// The most neighbours asked for on each side.
pub const MAX_AROUND: u32 = 50;

/// Which board: its period, category and window, as the query gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardSelect {
    /// `all_time` (default), `day`, `week` or `month`.
    pub period: Option<String>,
    /// A category; none: overall.
    pub category: Option<String>,
    /// `2026-11-24`, `2026-W48` or `2026-11`; none: the current window.
    pub window: Option<String>,
}

impl Render<BoardRow> for BoardRowResponse {
    fn render(r: &BoardRow) -> Self {
        BoardRowResponse {
            rank: r.rank,
            user_id: r.user_id.clone(),
            points: r.points.to_f64(),
        }
    }
}

impl Engine {
    /// Rebuilds the leaderboards kept in Redis from the database (`gamify
    /// leaderboard rebuild`); returns how many board entries were written,
    /// or `None` if this storage keeps none apart from its rows.
    pub async fn rebuild_boards(&self) -> Result<Option<u64>, EngineError> {
        Ok(self.store().rebuild_boards().await?)
    }

    /// The board and window a request names; every field error at once.
    fn select(&self, s: &BoardSelect) -> Result<(BoardKey, Window), EngineError> {
        let mut errors = Vec::new();
        let period = match s.period.as_deref() {
            None => Some(Period::AllTime),
            Some(p) => Period::parse(p).or_else(|| {
                errors.push(crate::model::FieldError {
                    field: "period".into(),
                    message: format!("unknown period {p:?}; known: all_time, day, week, month"),
                });
                None
            }),
        };
        let category = match s.category.as_deref() {
            None => Some(None),
            // Any category a version of the rules has had: the boards of
            // one a change removed stay readable.
            Some(c) => match self
                .rule_book()
                .categories()
                .into_iter()
                .find(|known| known.as_str() == c)
                .ok_or_else(|| self.current_rules().rules.unknown_category(c))
            {
                Ok(c) => Some(Some(c)),
                Err(e) => {
                    errors.push(crate::model::FieldError {
                        field: "category".into(),
                        message: e.to_string(),
                    });
                    None
                }
            },
        };
        let window = period.and_then(|period| match s.window.as_deref() {
            None => Some(Window::containing(period, self.now_ms())),
            Some(label) => Window::parse(period, label).or_else(|| {
                let expected = match period {
                    Period::AllTime => "all_time (or no window)",
                    Period::Day => "a date, YYYY-MM-DD",
                    Period::Week => "an ISO week, YYYY-Www",
                    Period::Month => "a month, YYYY-MM",
                };
                errors.push(crate::model::FieldError {
                    field: "window".into(),
                    message: format!("window {label:?} is not {expected}"),
                });
                None
            }),
        });
        match (period, category, window) {
            (Some(period), Some(category), Some(window)) if errors.is_empty() => {
                Ok((BoardKey { period, category }, window))
            }
            _ => Err(EngineError::Invalid(errors)),
        }
    }

    /// A page of a board: up to `limit` rows after the cursor `after`, and
    /// the cursor of the next page if rows remain. Rows carry the board's
    /// `points` and the brief's fields.
    pub async fn board(
        &self,
        select: &BoardSelect,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<(Vec<LeaderboardEntry>, Option<String>), EngineError> {
        let (key, window) = self.select(select)?;
        let limit = self.check_limit(limit)?;
        let after = match after {
            None => None,
            Some(text) => Some(Cursor::decode(text).ok_or_else(|| {
                EngineError::field("after", "after must be a cursor from X-Next-Cursor")
            })?),
        };
        let mut rows = self.store().board(key, window, after, limit + 1).await?;
        let next = (rows.len() > limit as usize).then(|| {
            rows.truncate(limit as usize);
            rows.last().map(|r| Cursor::after(r).encode())
        });
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            users.push(
                UserId::parse(&row.user_id)
                    .map_err(|_| EngineError::field("user_id", "unreadable user id on a board"))?,
            );
        }
        // All at once: a store that batches lookups answers them together.
        let states =
            futures_util::future::try_join_all(users.iter().map(|u| self.store().user(u))).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (row, state) in rows.iter().zip(states) {
            let (lifetime, total) = state.map_or((Points::ZERO, Points::ZERO), |s| {
                (s.state.lifetime, s.state.total)
            });
            out.push(LeaderboardEntry {
                rank: row.rank,
                user_id: row.user_id.clone(),
                points: row.points.to_f64(),
                lifetime_points: lifetime.to_f64(),
                total_points: total.to_f64(),
                level: self.current_rules().rules.level_for(lifetime),
            });
        }
        Ok((out, next.flatten()))
    }

    /// Where a user stands on a board, with `k` (default 5, at most
    /// [`MAX_AROUND`]) users above and below.
    pub async fn standing(
        &self,
        user_id: &str,
        select: &BoardSelect,
        k: Option<u32>,
    ) -> Result<StandingResponse, EngineError> {
        let user = parse_user(user_id)?;
        let (key, window) = self.select(select)?;
        let k = k.unwrap_or(5);
        if k > MAX_AROUND {
            return Err(EngineError::field(
                "k",
                format!("k must be between 0 and {MAX_AROUND}"),
            ));
        }
        let s: Standing = self.store().standing(key, window, &user, k).await?;
        Ok(StandingResponse {
            user_id: user_id.to_owned(),
            period: key.period.as_str().to_owned(),
            category: key.category.map(|c| c.as_str().to_owned()),
            window: window.label(),
            rank: s.rank,
            points: s.points.to_f64(),
            hidden: s.hidden,
            ranked: s.ranked,
            above: s.above.iter().map(BoardRowResponse::render).collect(),
            below: s.below.iter().map(BoardRowResponse::render).collect(),
        })
    }

    /// Hides a user from the leaderboards, or shows them again.
    pub async fn set_privacy(
        &self,
        user_id: &str,
        request: PrivacyRequest,
    ) -> Result<PrivacyResponse, EngineError> {
        let user = parse_user(user_id)?;
        self.store()
            .set_hidden(&user, request.hidden_from_leaderboards, self.now_ms())
            .await?;
        Ok(PrivacyResponse {
            user_id: user_id.to_owned(),
            hidden_from_leaderboards: request.hidden_from_leaderboards,
        })
    }
}
