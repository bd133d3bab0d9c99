-- PostgreSQL, migration 0005: leaderboards kept in Redis. Forward-only.

-- Each user's points in the day, week and month of their latest earning,
-- overall and per category (crate::board::LiveTotals::encode), kept by the
-- same commit as the points: what a node writes to Redis after the commit
-- is then the user's absolute place on every board it touched, which is
-- safe to repeat and to arrive out of order. '' means "not counted yet"
-- (rows from before this migration, imports): the next commit for the user
-- counts it from the log once.
ALTER TABLE users ADD COLUMN board_windows text NOT NULL DEFAULT '';

-- One row. dirty_since is set (to the earliest change that may be missing)
-- when a node could not write Redis; any node that can reach Redis then
-- rebuilds the boards from these tables and clears it, unless generation
-- moved meanwhile (another failure: rebuild again). Durable, so that a node
-- that fails and dies before the rebuild loses nothing.
CREATE TABLE board_sync (
    id          smallint PRIMARY KEY CHECK (id = 1),
    dirty_since bigint,
    generation  bigint NOT NULL DEFAULT 0
);
INSERT INTO board_sync (id) VALUES (1);
