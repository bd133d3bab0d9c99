-- The log, migration 0011: the outbox without a per-user index. Forward-only.
--
-- `webhook_deliveries_by_user` took a write on a random page for every
-- delivery (user ids land anywhere in it): 4-6% of ingest when most events
-- make a delivery (docs/BENCHMARKS.md, "Webhooks"). Erasure
-- now finds a user's deliveries through `user_deliveries` in the derived file
-- (derived migration 0003), written in batches like `user_events`, plus the
-- rows past its mark.
--
-- That mark only works if `seq` never goes back: without AUTOINCREMENT,
-- SQLite hands the highest `seq` out again once its row is deleted (pruned
-- or erased), and a new delivery would land at or below the mark, where an
-- erasure would not look for it. So the table is rebuilt with AUTOINCREMENT,
-- as migration 0009 rebuilt the ledger: the rows copied as they are (same
-- seq, same values, the columns in the same order), the indexes made again
-- but the per-user one. Inserting the copied rows sets `sqlite_sequence` to
-- the highest seq.
CREATE TABLE webhook_deliveries_v2 (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id),
    topic           TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    data            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_attempt_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT
) STRICT;
INSERT INTO webhook_deliveries_v2 SELECT * FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_v2 RENAME TO webhook_deliveries;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, seq DESC);
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (created_at);
