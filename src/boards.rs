//! Leaderboards at the engine's edge: which board and window a request
//! names (the window defaults to the current one by the engine's clock),
//! and the JSON of pages and standings. What each board counts is
//! `gamify_store::board`; docs/API.md, "Leaderboards", says it for users.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
pub use gamify_api::{BoardRowResponse, PrivacyRequest, PrivacyResponse, StandingResponse};
use gamify_core::{Period, Points, UserId, Window};
use gamify_store::RuleVersion;
use gamify_store::board::{BoardKey, BoardRow, Cursor, Standing};

use crate::engine::{Engine, EngineError, parse_user};
use crate::model::{LeaderboardEntry, Render};

/// The most neighbours asked for on each side.
pub const MAX_AROUND: u32 = 50;

/// Board pages kept as rendered: at most this many (then all are dropped
/// and the pages asked for again are kept anew).
const KEPT_PAGES: usize = 256;

/// Rendered board pages by what was asked, each with the store's
/// [`gamify_store::Store::board_stamp`] when it was read.
#[derive(Default)]
pub(crate) struct PageCache {
    pages: Mutex<HashMap<PageKey, KeptPage>>,
}

/// What a page depends on besides the boards' contents.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PageKey {
    key: BoardKey,
    window: Window,
    limit: u32,
    after: Option<String>,
    /// The rules' version: levels are computed with it.
    rules: u32,
}

struct KeptPage {
    stamp: u64,
    body: Bytes,
    next: Option<String>,
}

impl PageCache {
    /// The page kept for `key`, if it was read at `stamp`.
    fn get(&self, key: &PageKey, stamp: u64) -> Option<(Bytes, Option<String>)> {
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages
            .get(key)
            .filter(|kept| kept.stamp == stamp)
            .map(|kept| (kept.body.clone(), kept.next.clone()))
    }

    /// Keeps a page read at `stamp`.
    fn put(&self, key: PageKey, stamp: u64, body: Bytes, next: Option<String>) {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        if pages.len() >= KEPT_PAGES && !pages.contains_key(&key) {
            pages.clear();
        }
        pages.insert(key, KeptPage { stamp, body, next });
    }
}

/// A page's rows as the JSON array the API answers with.
fn to_json(rows: &[LeaderboardEntry]) -> Result<Bytes, EngineError> {
    let mut body = Vec::with_capacity(128 * rows.len() + 2);
    serde_json::to_writer(&mut body, rows)
        .map_err(|e| EngineError::Store(gamify_store::StoreError::Corrupt(e.to_string())))?;
    Ok(Bytes::from(body))
}

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
        self.rows_of(key, window, limit, after, &self.current_rules())
            .await
    }

    /// [`Engine::board`] as the JSON array the API answers with, and the
    /// next page's cursor.
    ///
    /// Many clients poll the same few pages (the top ten), and each read is
    /// a walk of the board, a user lookup per row and their JSON. Where the
    /// store can say that nothing a page shows has changed since it was
    /// last rendered ([`gamify_store::Store::board_stamp`]: the embedded
    /// store), the same request gets those bytes again. The stamp is taken
    /// after the boards hold every write acknowledged before the request,
    /// and before the page is read, so a kept page is never older than its
    /// stamp says; the rules' version is part of the key (levels).
    pub async fn board_page(
        &self,
        select: &BoardSelect,
        limit: Option<u32>,
        after: Option<&str>,
    ) -> Result<(Bytes, Option<String>), EngineError> {
        let (key, window) = self.select(select)?;
        let limit = self.check_limit(limit)?;
        let rules = self.current_rules();
        let Some(stamp) = self.store().board_stamp().await? else {
            let (rows, next) = self.rows_of(key, window, limit, after, &rules).await?;
            return Ok((to_json(&rows)?, next));
        };
        let page = PageKey {
            key,
            window,
            limit,
            after: after.map(str::to_owned),
            rules: rules.version,
        };
        if let Some(kept) = self.board_pages().get(&page, stamp) {
            return Ok(kept);
        }
        let (rows, next) = self.rows_of(key, window, limit, after, &rules).await?;
        let body = to_json(&rows)?;
        self.board_pages()
            .put(page, stamp, body.clone(), next.clone());
        Ok((body, next))
    }

    /// The rows of a page of `key`'s `window`, levels by `rules`.
    async fn rows_of(
        &self,
        key: BoardKey,
        window: Window,
        limit: u32,
        after: Option<&str>,
        rules: &RuleVersion,
    ) -> Result<(Vec<LeaderboardEntry>, Option<String>), EngineError> {
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
                level: rules.rules.level_for(lifetime),
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
