-- The derived tables, migration 0002: the points economy. Forward-only.
--
-- Users' balances now move with spending too, so the derived tables are
-- brought up to date from the ledger (every change to a user's points is a
-- ledger entry) rather than from the events alone. The tables are emptied
-- here and rebuilt from the log when the store opens (a replay with
-- progress in the log, once): simpler and surer than converting them.
DELETE FROM users;
DELETE FROM user_events;
UPDATE materialized SET through_seq = 0;
-- How far the ledger has been applied: every entry with seq <= it is
-- reflected in `users` and `user_ledger`, no later one is.
ALTER TABLE materialized ADD COLUMN through_ledger_seq INTEGER NOT NULL DEFAULT 0;

-- A user's ledger entries newest first, and the cursor that pages them: the
-- entries up to materialized.through_ledger_seq; later ones are found by
-- scanning the ledger past that point, as for user_events.
CREATE TABLE user_ledger (
    user_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, seq)
) STRICT, WITHOUT ROWID;
