-- The log (gamify.db), migration 0001. Forward-only: later changes add new
-- files.
--
-- Amounts are integer thousandths of a point (*_milli). Times are Unix
-- milliseconds (UTC).
--
-- What an acknowledgement writes, and all it writes: the event, with
-- everything the rules decided for it, and its ledger entries. Both only
-- append. Each user's state and the per-user event index are derived from
-- this log into a second file (see migrations/sqlite/derived/); see
-- docs/ARCHITECTURE.md, "The SQLite backend".

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
