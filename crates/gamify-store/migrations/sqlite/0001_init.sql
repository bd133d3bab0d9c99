-- 0001: the first schema. Forward-only: later changes add new files.
--
-- Amounts are integer thousandths of a point (*_milli). Times are Unix
-- milliseconds (UTC). `users` holds each user's current state, derived from
-- `events` and `ledger` and updated in the same transaction as they are.

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

-- No index on lifetime_milli: the embedded leaderboard is an in-memory ordered
-- index built from this table at start (every event changes lifetime, and an
-- index here would cost two scattered page writes per event).

CREATE TABLE events (
    seq              INTEGER PRIMARY KEY,        -- arrival order
    id               TEXT NOT NULL UNIQUE,       -- evt_…
    user_id          TEXT NOT NULL REFERENCES users (user_id),
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

-- A user's events newest first, and the cursor that pages them.
CREATE INDEX events_by_user_time ON events (user_id, occurred_at DESC, seq DESC);

-- Each achievement at most once per user, enforced by the primary key.
CREATE TABLE user_achievements (
    user_id         TEXT NOT NULL REFERENCES users (user_id),
    achievement_id  TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    bonus_milli     INTEGER NOT NULL,
    unlocked_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, achievement_id)
) STRICT, WITHOUT ROWID;

-- Append-only: every change to a user's points, with the balance it left.
CREATE TABLE ledger (
    seq                  INTEGER PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users (user_id),
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
