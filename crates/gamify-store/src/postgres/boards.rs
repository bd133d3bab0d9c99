//! The leaderboards on PostgreSQL without Redis: every read computed by SQL
//! from the rows themselves (see [`crate::board`] for what each board
//! counts). Correct on any number of nodes, since the database is the only
//! state; slower than the embedded index: a rank is a window function over
//! the board (the users table for all time, the rows recorded in the window
//! otherwise), so its cost grows with the board's size.

use gamify_core::{Period, Points, Window};
use sqlx::{PgConnection, Row};

use super::{backend, classify};
use crate::StoreError;
use crate::board::{BoardKey, BoardRow, Cursor, Standing};

/// The board as `(user_id, pts)` rows, hidden users included. Only enum
/// names and integers are formatted into the text; ids are bound.
pub(super) fn source(key: BoardKey, window: Window) -> String {
    let (start, end) = (window.start_ms(), window.end_ms());
    match (key.period, key.category) {
        (Period::AllTime, None) => {
            "SELECT user_id, lifetime_milli AS pts FROM users WHERE version > 0".into()
        }
        (Period::AllTime, Some(c)) => format!(
            "SELECT user_id, pts FROM (
                 SELECT user_id, coalesce(substring(category_totals
                            FROM '(?:^|,){c}:[0-9]+:(-?[0-9]+)')::bigint, 0) AS pts
                 FROM users WHERE version > 0) t
             WHERE pts > 0",
            c = c.as_str()
        ),
        (_, None) => format!(
            "SELECT user_id, sum(amount_milli)::bigint AS pts FROM ledger
             WHERE kind IN ('event', 'achievement_bonus') AND created_at >= {start} AND created_at < {end}
             GROUP BY user_id HAVING sum(amount_milli) > 0"
        ),
        (_, Some(c)) => format!(
            "SELECT user_id, sum(points_milli)::bigint AS pts FROM events
             WHERE category = '{c}' AND created_at >= {start} AND created_at < {end}
             GROUP BY user_id HAVING sum(points_milli) > 0",
            c = c.as_str()
        ),
    }
}

/// The board as `(user_id, pts)` rows, hidden users left out.
pub(super) fn visible(key: BoardKey, window: Window) -> String {
    format!(
        "SELECT user_id, pts FROM ({}) b
         WHERE NOT EXISTS (SELECT 1 FROM hidden_users h WHERE h.user_id = b.user_id)",
        source(key, window)
    )
}

/// The board ranked, hidden users left out.
fn ranked(key: BoardKey, window: Window) -> String {
    format!(
        "WITH ranked AS (
             SELECT user_id, pts, row_number() OVER (ORDER BY pts DESC, user_id) AS rank
             FROM ({}) v)",
        visible(key, window)
    )
}

fn row(r: &sqlx::postgres::PgRow) -> Result<BoardRow, sqlx::Error> {
    Ok(BoardRow {
        user_id: r.try_get(0)?,
        points: Points::from_milli(r.try_get(1)?),
        rank: r.try_get::<i64, _>(2)? as u64,
    })
}

/// A page of a board after `after`'s place.
pub async fn page(
    conn: &mut PgConnection,
    key: BoardKey,
    window: Window,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<Vec<BoardRow>, StoreError> {
    if key == BoardKey::ALL_TIME {
        return all_time_page(conn, after, limit).await;
    }
    let sql = format!(
        "{} SELECT user_id, pts, rank FROM ranked
            WHERE $1::bigint IS NULL OR pts < $1 OR (pts = $1 AND user_id > $2)
            ORDER BY rank LIMIT $3",
        ranked(key, window)
    );
    let rows = sqlx::query(&sql)
        .bind(after.map(|c| c.points.milli()))
        .bind(after.map_or("", |c| c.user_id.as_str()))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await
        .map_err(classify)?;
    rows.iter().map(|r| row(r).map_err(backend)).collect()
}

/// A page of the brief's board (all time, overall) by the index on
/// lifetime points: the page itself is an index range, and its first rank
/// counts the rows before the cursor (none for the first page), so the top
/// of the board costs what its rows do.
async fn all_time_page(
    conn: &mut PgConnection,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<Vec<BoardRow>, StoreError> {
    const VISIBLE: &str =
        "version > 0 AND NOT EXISTS (SELECT 1 FROM hidden_users h WHERE h.user_id = u.user_id)";
    let rows = sqlx::query(&format!(
        "SELECT user_id, lifetime_milli,
                (SELECT count(*) FROM users u WHERE {VISIBLE}
                   AND (lifetime_milli > $1 OR (lifetime_milli = $1 AND user_id <= $2)))
                + row_number() OVER (ORDER BY lifetime_milli DESC, user_id) AS rank
         FROM (SELECT user_id, lifetime_milli FROM users u
               WHERE {VISIBLE}
                 AND ($1::bigint IS NULL OR lifetime_milli < $1 OR (lifetime_milli = $1 AND user_id > $2))
               ORDER BY lifetime_milli DESC, user_id LIMIT $3) page
         ORDER BY lifetime_milli DESC, user_id"
    ))
    .bind(after.map(|c| c.points.milli()))
    .bind(after.map_or("", |c| c.user_id.as_str()))
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(classify)?;
    rows.iter().map(|r| row(r).map_err(backend)).collect()
}

/// A user's standing on a board.
pub async fn standing(
    conn: &mut PgConnection,
    key: BoardKey,
    window: Window,
    user: &str,
    k: u32,
) -> Result<Standing, StoreError> {
    let hidden: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM hidden_users WHERE user_id = $1)")
            .bind(user)
            .fetch_one(&mut *conn)
            .await
            .map_err(classify)?;
    let own = own_points(conn, key, window, user).await?;
    let sql = format!(
        // The user's rank as a scalar subquery (computed once): joined as a
        // table, the planner may rescan it for every row of the board.
        "{} SELECT r.user_id, r.pts, r.rank, (SELECT count(*) FROM ranked) AS ranked
         FROM ranked r
         WHERE r.rank BETWEEN (SELECT rank FROM ranked WHERE user_id = $1) - $2
                          AND (SELECT rank FROM ranked WHERE user_id = $1) + $2
         ORDER BY r.rank",
        ranked(key, window)
    );
    let rows = sqlx::query(&sql)
        .bind(user)
        .bind(i64::from(k))
        .fetch_all(&mut *conn)
        .await
        .map_err(classify)?;
    let rows: Vec<(BoardRow, i64)> = rows
        .iter()
        .map(|r| Ok((row(r)?, r.try_get::<i64, _>(3)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(backend)?;
    let ranked_count = match rows.first() {
        Some((_, n)) => *n as u64,
        None => sqlx::query_scalar::<_, i64>(&format!(
            "{} SELECT count(*) FROM ranked",
            ranked(key, window)
        ))
        .fetch_one(&mut *conn)
        .await
        .map_err(classify)? as u64,
    };
    let mine = rows.iter().position(|(r, _)| r.user_id == user);
    let (above, below) = match mine {
        None => (Vec::new(), Vec::new()),
        Some(p) => (
            rows[..p].iter().map(|(r, _)| r.clone()).collect(),
            rows[p + 1..].iter().map(|(r, _)| r.clone()).collect(),
        ),
    };
    Ok(Standing {
        rank: mine.map(|p| rows[p].0.rank),
        points: own,
        hidden,
        above,
        below,
        ranked: ranked_count,
    })
}

/// A user's points on a board, hidden or not.
pub async fn own_points(
    conn: &mut PgConnection,
    key: BoardKey,
    window: Window,
    user: &str,
) -> Result<Points, StoreError> {
    let own: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT pts FROM ({}) b WHERE user_id = $1",
        source(key, window)
    ))
    .bind(user)
    .fetch_optional(&mut *conn)
    .await
    .map_err(classify)?;
    Ok(Points::from_milli(own.unwrap_or(0)))
}

/// Hides a user from every board, or shows them again; refused for an
/// erased user. Takes the user's row lock first (if they have a row), as an
/// erasure does, so the two never interleave: one waits for the other and
/// then sees what it did.
pub async fn set_hidden(
    conn: &mut PgConnection,
    user: &str,
    hidden: bool,
    at_ms: i64,
) -> Result<(), StoreError> {
    let mut tx = sqlx::Connection::begin(&mut *conn)
        .await
        .map_err(classify)?;
    sqlx::query("SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE")
        .bind(user)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
    let erased: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM erasures WHERE user_hash = $1)")
            .bind(crate::erasure::user_hash(user))
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
    if erased {
        return Err(StoreError::Erased);
    }
    let sql = if hidden {
        "INSERT INTO hidden_users (user_id, hidden_at) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM hidden_users WHERE user_id = $1 AND $2::bigint IS NOT NULL"
    };
    sqlx::query(sql)
        .bind(user)
        .bind(at_ms)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    tx.commit().await.map_err(classify)
}
