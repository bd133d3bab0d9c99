-- 0001: the first schema. Forward-only: later changes add new files.
--
-- Amounts are integer thousandths of a point (*_milli). Times are Unix
-- milliseconds (UTC).
--
-- `events` and `ledger` are written when an event is acknowledged; they are
-- the log. `users` (each user's current state) and `user_events` (the index
-- that lists a user's events) are derived from the log and brought up to date
-- in larger batches afterwards: `materialized.through_seq` says how far. After
-- a crash the store replays the events past that point when it opens. See
-- docs/ARCHITECTURE.md, "The SQLite backend".

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

CREATE TABLE events (
    seq              INTEGER PRIMARY KEY,        -- arrival order
    id               TEXT NOT NULL UNIQUE,       -- evt_…
    user_id          TEXT NOT NULL,
    category         TEXT NOT NULL,
    action           TEXT NOT NULL,
    value_milli      INTEGER NOT NULL CHECK (value_milli > 0),
    points_milli     INTEGER NOT NULL CHECK (points_milli >= 0),
    weight_milli     INTEGER NOT NULL,
    streak_day       INTEGER NOT NULL,
    bonus_percent    INTEGER NOT NULL,
    unlocked         TEXT NOT NULL,              -- "id:bonus_milli,…" unlocked by this event
    total_after      INTEGER NOT NULL,
    lifetime_after   INTEGER NOT NULL,
    metadata         TEXT,                       -- JSON object
    occurred_at      INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    idempotency_key  TEXT,
    request_hash     TEXT
) STRICT;

-- A retried request with the same key returns this event. Unique across the
-- database: the constraint, not application code, rejects a second use.
-- Partial, so that events sent without a key cost no index write.
CREATE UNIQUE INDEX events_by_idempotency_key ON events (idempotency_key) WHERE idempotency_key IS NOT NULL;

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

-- Achievements unlocked: each event's own `unlocked` column (with the bonus
-- paid), and the set in `users.achievements`, which the rules keep free of
-- duplicates.

-- Append-only: every change to a user's points, with the balance it left.
CREATE TABLE ledger (
    seq                  INTEGER PRIMARY KEY,
    user_id              TEXT NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('event', 'achievement_bonus')),
    amount_milli         INTEGER NOT NULL,
    balance_after_milli  INTEGER NOT NULL,
    lifetime_after_milli INTEGER NOT NULL,
    reference            TEXT NOT NULL,          -- event id, or "event id/achievement id"
    created_at           INTEGER NOT NULL
) STRICT;

-- No per-user index yet: nothing reads the ledger by user in this version, and
-- each such index costs a scattered page write per event. The ledger API adds
-- the access path it needs.

CREATE TRIGGER ledger_is_append_only_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger entries are never updated'); END;
CREATE TRIGGER ledger_is_append_only_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger entries are never deleted'); END;
