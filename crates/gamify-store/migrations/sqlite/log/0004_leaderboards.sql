-- The log, migration 0004: leaderboards. Forward-only.
--
-- Users who asked to be left off public leaderboards (privacy opt-out).
-- They keep their points; boards and others' ranks leave them out. The
-- boards themselves are in memory, built from `users` and the newest
-- events when the store opens (see src/sqlite/boards.rs).
CREATE TABLE hidden_users (
    user_id   TEXT PRIMARY KEY,
    hidden_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
