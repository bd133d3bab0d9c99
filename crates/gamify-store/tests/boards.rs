//! Leaderboards on every backend: what each board counts, windows and their
//! rollover, around-me, paging by cursor, and hidden users.

use std::sync::Arc;

use gamify_core::{Category, Period, Points, Rules, UserId, Window};
use gamify_store::board::{BoardKey, Cursor};
use gamify_store::sqlite::SqliteStore;
use gamify_store::{Store, StoreError};

mod common;
use common::{DAY, T0, backends, event};

fn uid(u: &str) -> UserId {
    UserId::parse(u).unwrap()
}

fn key(period: Period, category: Option<Category>) -> BoardKey {
    BoardKey { period, category }
}

/// `user` earns `points` in `category` at `at` (value = points / weight).
async fn earn(
    store: &Arc<dyn Store>,
    id: &str,
    user: &str,
    category: Category,
    points: i64,
    at: i64,
) {
    let weight = gamify_core::RuleSet::default()
        .weight_milli(category)
        .unwrap();
    let value_milli = points * 1_000_000 / weight;
    store
        .record_event(event(id, user, category, value_milli, at))
        .await
        .unwrap();
}

async fn board(store: &Arc<dyn Store>, key: BoardKey, window: Window) -> Vec<(u64, String, i64)> {
    store
        .board(key, window, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.rank, r.user_id, r.points.milli() / 1000))
        .collect()
}

fn row(rank: u64, user: &str, points: i64) -> (u64, String, i64) {
    (rank, user.to_owned(), points)
}

/// 2026-11-23 10:00 UTC, a Monday (ISO week 48).
const MONDAY: i64 = 20_780 * DAY + 10 * 3_600_000;

#[tokio::test]
async fn windows_count_what_was_earned_in_them_and_roll_over_at_the_boundary() {
    for (name, store, _place) in backends("boards_windows").await {
        // The week before (W47, Sunday evening), this week (W48), next (W49).
        let sunday = MONDAY - 12 * 3_600_000;
        earn(&store, "e1", "ann", Category::FINANCE, 40, sunday).await;
        earn(&store, "e2", "ann", Category::HEALTH, 6, MONDAY).await;
        earn(&store, "e3", "bob", Category::FINANCE, 10, MONDAY).await;
        earn(&store, "e4", "bob", Category::FINANCE, 12, MONDAY + DAY).await;
        // The last millisecond of W48, and the first of W49.
        let next_monday = MONDAY - 10 * 3_600_000 + 7 * DAY;
        earn(&store, "e5", "cid", Category::HEALTH, 30, next_monday - 1).await;
        earn(&store, "e6", "ann", Category::LEARNING, 3, next_monday).await;

        let week = |at| Window::containing(Period::Week, at);
        let w47 = week(sunday);
        let w48 = week(MONDAY);
        let w49 = week(next_monday);
        assert_eq!(w48.label(), "2026-W48");
        assert_eq!(gamify_core::window::days_from_civil(2026, 11, 23), 20_780);
        let overall = key(Period::Week, None);
        assert_eq!(
            board(&store, overall, w48).await,
            [row(1, "cid", 30), row(2, "bob", 22), row(3, "ann", 6)],
            "{name}"
        );
        assert_eq!(
            board(&store, overall, w49).await,
            [row(1, "ann", 3)],
            "{name}"
        );
        // The week before is summed from the log on the embedded backend.
        assert_eq!(
            board(&store, overall, w47).await,
            [row(1, "ann", 40)],
            "{name}"
        );
        // A window nothing was earned in yet is empty.
        assert!(
            board(&store, overall, w49.next()).await.is_empty(),
            "{name}"
        );

        let health = key(Period::Week, Some(Category::HEALTH));
        assert_eq!(
            board(&store, health, w48).await,
            [row(1, "cid", 30), row(2, "ann", 6)],
            "{name}"
        );
        let day = key(Period::Day, None);
        let monday = Window::containing(Period::Day, MONDAY);
        assert_eq!(
            board(&store, day, monday).await,
            [row(1, "bob", 10), row(2, "ann", 6)],
            "{name}"
        );
        let month = key(Period::Month, Some(Category::FINANCE));
        let november = Window::containing(Period::Month, MONDAY);
        assert_eq!(
            board(&store, month, november).await,
            [row(1, "ann", 40), row(2, "bob", 22)],
            "{name}"
        );
        // All time: lifetime overall, event points per category.
        assert_eq!(
            board(&store, BoardKey::ALL_TIME, Window::ALL_TIME).await,
            [row(1, "ann", 49), row(2, "cid", 30), row(3, "bob", 22)],
            "{name}"
        );
        assert_eq!(
            board(
                &store,
                key(Period::AllTime, Some(Category::LEARNING)),
                Window::ALL_TIME
            )
            .await,
            [row(1, "ann", 3)],
            "{name}"
        );
    }
}

#[tokio::test]
async fn overall_windows_include_the_bonuses_their_events_unlocked() {
    for (name, store, _place) in backends("boards_bonus").await {
        // Three days in a row: streak_3 pays 10 on the third; streak bonus
        // +15 % on day 3 (10 → 11.5 points).
        for d in 0..3 {
            earn(
                &store,
                &format!("e{d}"),
                "ann",
                Category::PRODUCTIVITY,
                10,
                MONDAY + d * DAY,
            )
            .await;
        }
        let day3 = Window::containing(Period::Day, MONDAY + 2 * DAY);
        let rows = store
            .board(key(Period::Day, None), day3, None, 10)
            .await
            .unwrap();
        assert_eq!(rows[0].points, Points::from_milli(21_500), "{name}");
        let rows = store
            .board(
                key(Period::Day, Some(Category::PRODUCTIVITY)),
                day3,
                None,
                10,
            )
            .await
            .unwrap();
        assert_eq!(rows[0].points, Points::from_milli(11_500), "{name}");
    }
}

#[tokio::test]
async fn around_me_paging_ties_and_hidden_users() {
    for (name, store, _place) in backends("boards_around").await {
        // u00 … u09 with 10 … 100 points; "tie" has 50, like u04.
        for i in 0..10 {
            earn(
                &store,
                &format!("e{i}"),
                &format!("u{i:02}"),
                Category::PRODUCTIVITY,
                (i + 1) * 10,
                T0,
            )
            .await;
        }
        earn(&store, "et", "tie", Category::PRODUCTIVITY, 50, T0).await;
        let all = BoardKey::ALL_TIME;
        let at = Window::ALL_TIME;
        let order: Vec<String> = board(&store, all, at)
            .await
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(
            order,
            [
                "u09", "u08", "u07", "u06", "u05", "tie", "u04", "u03", "u02", "u01", "u00"
            ],
            "{name}: ties by user id"
        );

        let me = store.standing(all, at, &uid("u04"), 2).await.unwrap();
        assert_eq!(me.rank, Some(7), "{name}");
        assert_eq!(me.points, Points::whole(50), "{name}");
        let above: Vec<&str> = me.above.iter().map(|r| r.user_id.as_str()).collect();
        let below: Vec<&str> = me.below.iter().map(|r| r.user_id.as_str()).collect();
        assert_eq!(
            (above, below),
            (vec!["u05", "tie"], vec!["u03", "u02"]),
            "{name}"
        );
        assert_eq!(me.ranked, 11, "{name}");
        let top = store.standing(all, at, &uid("u09"), 3).await.unwrap();
        assert_eq!(
            (top.rank, top.above.len(), top.below.len()),
            (Some(1), 0, 3),
            "{name}"
        );

        // Pages of 4 by cursor cover the board once, in order.
        let mut paged = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let page = store.board(all, at, after.clone(), 4).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(Cursor::after(last));
            paged.extend(page.into_iter().map(|r| (r.rank, r.user_id)));
        }
        let expected: Vec<(u64, String)> = order
            .iter()
            .enumerate()
            .map(|(i, u)| (i as u64 + 1, u.clone()))
            .collect();
        assert_eq!(paged, expected, "{name}");

        // Hidden: off every board, not counted in others' ranks, points kept.
        store.set_hidden(&uid("u08"), true, T0).await.unwrap();
        let me = store.standing(all, at, &uid("u04"), 1).await.unwrap();
        assert_eq!(me.rank, Some(6), "{name}");
        let hidden = store.standing(all, at, &uid("u08"), 1).await.unwrap();
        assert_eq!((hidden.rank, hidden.hidden), (None, true), "{name}");
        assert_eq!(hidden.points, Points::whole(90), "{name}");
        let order: Vec<String> = board(&store, all, at)
            .await
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert!(!order.contains(&"u08".to_owned()), "{name}");
        let leaders = store.leaderboard(2).await.unwrap();
        assert_eq!(leaders[1].user_id, "u07", "{name}");
        let week = Window::containing(Period::Week, T0);
        let weekly: Vec<String> = board(&store, key(Period::Week, None), week)
            .await
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert!(!weekly.contains(&"u08".to_owned()), "{name}");
        // Points earned while hidden count once shown again.
        earn(&store, "e_more", "u08", Category::PRODUCTIVITY, 100, T0).await;
        store.set_hidden(&uid("u08"), false, T0).await.unwrap();
        let back = store.standing(all, at, &uid("u08"), 0).await.unwrap();
        assert_eq!(
            (back.rank, back.points),
            (Some(1), Points::whole(190)),
            "{name}"
        );

        // An erased user can be neither hidden nor found.
        store.erase(&uid("u00"), "era_1", T0).await.unwrap();
        assert!(
            matches!(
                store.set_hidden(&uid("u00"), true, T0).await,
                Err(StoreError::Erased)
            ),
            "{name}"
        );
        let gone = store.standing(all, at, &uid("u00"), 1).await.unwrap();
        assert_eq!(gone.rank, None, "{name}");
        assert!(store.verify().await.unwrap().is_empty(), "{name}");
    }
}

#[tokio::test]
async fn the_embedded_boards_are_rebuilt_from_the_database_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    let week = Window::containing(Period::Week, MONDAY);
    let before;
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, Rules::default()).unwrap());
        earn(&store, "e1", "ann", Category::FINANCE, 40, MONDAY - 7 * DAY).await;
        earn(&store, "e2", "bob", Category::HEALTH, 6, MONDAY).await;
        earn(&store, "e3", "ann", Category::HEALTH, 12, MONDAY + DAY).await;
        store.set_hidden(&uid("cid"), true, MONDAY).await.unwrap();
        earn(&store, "e4", "cid", Category::HEALTH, 99, MONDAY).await;
        before = (
            board(&store, key(Period::Week, None), week).await,
            board(&store, key(Period::Week, None), week.previous()).await,
            board(
                &store,
                key(Period::AllTime, Some(Category::HEALTH)),
                Window::ALL_TIME,
            )
            .await,
        );
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, Rules::default()).unwrap());
    let after = (
        board(&store, key(Period::Week, None), week).await,
        board(&store, key(Period::Week, None), week.previous()).await,
        board(
            &store,
            key(Period::AllTime, Some(Category::HEALTH)),
            Window::ALL_TIME,
        )
        .await,
    );
    assert_eq!(before, after);
    assert_eq!(after.0, [row(1, "ann", 12), row(2, "bob", 6)]);
    assert_eq!(after.1, [row(1, "ann", 40)]);
    assert!(store.verify().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_store_opened_without_leaderboards_refuses_board_reads_and_keeps_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gamify.db");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open_with(&path, Rules::default(), false).unwrap());
    earn(&store, "e1", "ann", Category::FINANCE, 10, MONDAY).await;
    assert!(matches!(
        store
            .board(BoardKey::ALL_TIME, Window::ALL_TIME, None, 10)
            .await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(store.verify().await.unwrap().is_empty());
    drop(store);
    // Opened again with them, the boards hold what was written meanwhile.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, Rules::default()).unwrap());
    assert_eq!(
        board(&store, BoardKey::ALL_TIME, Window::ALL_TIME).await,
        [row(1, "ann", 10)]
    );
}
