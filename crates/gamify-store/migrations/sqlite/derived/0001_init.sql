-- The derived tables (gamify.db-derived), migration 0001. Forward-only.
--
-- Everything here is derived from the log (gamify.db) and can be rebuilt
-- from it: the store replays the events past `materialized.through_seq` when
-- it opens, all of them if this file is missing. It is written in batches,
-- after the events were acknowledged, and without an fsync per commit: a
-- commit lost in a power cut is replayed from the log.

CREATE TABLE users (
    user_id         TEXT PRIMARY KEY,
    total_milli     INTEGER NOT NULL,            -- spendable balance
    lifetime_milli  INTEGER NOT NULL,            -- every point ever earned
    best_streak     INTEGER NOT NULL,
    streak_runs     TEXT NOT NULL,               -- gamify_core::StreakRuns::encode
    achievements    TEXT NOT NULL,               -- unlocked ids, comma-separated, unlock order
    event_count     INTEGER NOT NULL,
    category_totals TEXT NOT NULL,               -- "category:events:points_milli,…" (event points only)
    last_event_at   INTEGER,                     -- latest occurred_at
    version         INTEGER NOT NULL,            -- +1 on every change; caches never go back
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

-- How far `users` and `user_events` have been brought up to date: every event
-- with seq <= through_seq is reflected in them, no later one is.
CREATE TABLE materialized (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    through_seq INTEGER NOT NULL
) STRICT;
INSERT INTO materialized (id, through_seq) VALUES (1, 0);

-- No index on lifetime_milli: the embedded leaderboard is an in-memory ordered
-- index built from this table at start (every event changes lifetime, and an
-- index here would cost two scattered page writes per event).

-- A user's events newest first, and the cursor that pages them: the events
-- up to materialized.through_seq. Later ones are found by scanning the events
-- past that point (a bounded tail). Kept out of `events` itself because an
-- index there would cost a scattered page write on every acknowledgement.
CREATE TABLE user_events (
    user_id     TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (user_id, occurred_at, seq)
) STRICT, WITHOUT ROWID;
