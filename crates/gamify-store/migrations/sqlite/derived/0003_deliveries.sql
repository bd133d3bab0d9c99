-- The derived tables, migration 0003: a user's webhook deliveries. Forward-only.
--
-- Erasure must find every delivery about a user (their id is in the data).
-- The log kept an index on `webhook_deliveries (user_id)` for that, which
-- cost a scattered page write per delivery; log migration 0011 drops it for
-- this table, written in batches by the derived-table thread like
-- `user_events`. Deliveries with `seq` <= `through_delivery_seq` are listed
-- here; an erasure adds those past it by scanning the log's tail. The mark
-- starts at 0, so the first start after this migration lists every delivery
-- the log holds (with progress in the log).
ALTER TABLE materialized ADD COLUMN through_delivery_seq INTEGER NOT NULL DEFAULT 0;

CREATE TABLE user_deliveries (
    user_id TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    PRIMARY KEY (user_id, seq)
) STRICT, WITHOUT ROWID;
