-- PostgreSQL, migration 0004: leaderboards. Forward-only.

-- Users who asked to be left off public leaderboards (privacy opt-out).
-- They keep their points; boards and others' ranks leave them out.
CREATE TABLE hidden_users (
    user_id   text COLLATE "C" PRIMARY KEY,
    hidden_at bigint NOT NULL
);

-- The windowed boards (a day, week or month) are summed from the rows
-- recorded in the window: events per category, and the ledger's event and
-- bonus entries overall. Both grow at the right edge (rows are stamped on
-- receipt), so keeping them costs little per event.
CREATE INDEX events_by_created ON events (created_at);
CREATE INDEX ledger_earned_by_created ON ledger (created_at)
    WHERE kind IN ('event', 'achievement_bonus');
