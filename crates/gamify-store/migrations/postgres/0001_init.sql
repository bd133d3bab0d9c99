-- PostgreSQL, migration 0001. Forward-only: later changes add new files.
-- Applied by `gamify migrate` (or `gamify serve --migrate`) under an advisory
-- lock, so two nodes migrating at once apply each migration once.
--
-- Ids compare byte by byte (COLLATE "C"), as in SQLite, so that leaderboard
-- ties order the same on both backends whatever the database's locale.
--
-- Amounts are integer thousandths of a point (*_milli). Times are Unix
-- milliseconds (UTC). The same shapes as the SQLite backend's, so that the
-- rows decode the same way (crates/gamify-store/src/rows.rs).
--
-- Every node writes here directly: a commit writes the events, their ledger
-- entries and the users' rows in one transaction, and the user rows' locks
-- are what serialise one user's updates across nodes.

CREATE TABLE events (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- arrival order
    id               text COLLATE "C" NOT NULL,                       -- evt_…
    user_id          text COLLATE "C" NOT NULL,
    category         text NOT NULL,
    action           text NOT NULL,
    value_milli      bigint NOT NULL CHECK (value_milli > 0),
    points_milli     bigint NOT NULL CHECK (points_milli >= 0),
    weight_milli     bigint NOT NULL,
    streak_day       integer NOT NULL,
    bonus_percent    integer NOT NULL,
    unlocked         text NOT NULL,            -- "id:bonus_milli,…" unlocked by this event
    total_after      bigint NOT NULL,
    lifetime_after   bigint NOT NULL,
    metadata         text,                     -- JSON object, as received (jsonb would reorder keys)
    occurred_at      bigint NOT NULL,
    created_at       bigint NOT NULL,
    idempotency_key  text COLLATE "C",
    request_hash     text,
    CONSTRAINT events_id_unique UNIQUE (id)
);

-- A retried request with the same key returns this event. Unique across the
-- database, so across nodes: the constraint, not application code, rejects a
-- second use. Partial: events sent without a key cost no index entry.
CREATE UNIQUE INDEX events_by_idempotency_key ON events (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- A user's events newest first, and the cursor that pages them.
CREATE INDEX events_by_user ON events (user_id, occurred_at DESC, seq DESC);

-- Append-only: every change to a user's points, with the balance it left.
CREATE TABLE ledger (
    seq                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id              text COLLATE "C" NOT NULL,
    kind                 text NOT NULL CHECK (kind IN ('event', 'achievement_bonus')),
    amount_milli         bigint NOT NULL,
    balance_after_milli  bigint NOT NULL,
    lifetime_after_milli bigint NOT NULL,
    reference            text NOT NULL,        -- event id, or "event id/achievement id"
    created_at           bigint NOT NULL
);

CREATE FUNCTION gamify_ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are never updated or deleted';
END $$;
CREATE TRIGGER ledger_is_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION gamify_ledger_is_append_only();

-- Each user's state. A commit locks the rows of the users it writes (in
-- user_id order, so two commits never deadlock) before reading them.
CREATE TABLE users (
    user_id         text COLLATE "C" PRIMARY KEY,
    total_milli     bigint NOT NULL DEFAULT 0,     -- spendable balance
    lifetime_milli  bigint NOT NULL DEFAULT 0,     -- every point ever earned
    best_streak     integer NOT NULL DEFAULT 0,
    streak_runs     text NOT NULL DEFAULT '',      -- gamify_core::StreakRuns::encode
    achievements    text NOT NULL DEFAULT '',      -- unlocked ids, comma-separated, unlock order
    event_count     bigint NOT NULL DEFAULT 0,
    category_totals text NOT NULL DEFAULT '',      -- "category:events:points_milli,…"
    last_event_at   bigint,                        -- latest occurred_at
    version         bigint NOT NULL DEFAULT 0,     -- +1 on every change
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL
);

-- The leaderboard without Redis: top N by lifetime, ties by user id.
CREATE INDEX users_by_lifetime ON users (lifetime_milli DESC, user_id);
