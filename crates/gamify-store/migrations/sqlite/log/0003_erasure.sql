-- The log, migration 0003: erasing a person. Forward-only.
--
-- What an erasure keeps: one row here, with a one-way hash of the user id
-- (so that a late event or a retried request for that id is refused
-- instead of bringing the person back) and how many rows it removed. No
-- name, no id, no event, no amount. See docs/API.md, "Erasure".
--
-- `erasing_user_id` holds the plain id only while the erasure is under way:
-- the log's rows go in one transaction, the derived tables' in a second
-- (another file), and the store finishes an erasure a crash interrupted
-- when it next opens. The id is cleared as soon as both are done.
CREATE TABLE erasures (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,        -- era_…
    user_hash       TEXT NOT NULL UNIQUE,        -- hex SHA-256 of the user id
    erasing_user_id TEXT UNIQUE,                 -- while under way only
    events          INTEGER NOT NULL,            -- rows removed, per table
    ledger_entries  INTEGER NOT NULL,
    movements       INTEGER NOT NULL,
    redemptions     INTEGER NOT NULL,
    erased_at       INTEGER NOT NULL
) STRICT;

-- Units of a reward that erased users had received (fulfilled): they stay
-- taken, so `redeemed` counts them, but their redemptions are gone.
ALTER TABLE rewards ADD COLUMN erased_units INTEGER NOT NULL DEFAULT 0 CHECK (erased_units >= 0);

-- The ledger stays append-only, except that an erasure removes the erased
-- user's entries (and no one else's).
DROP TRIGGER ledger_is_append_only_delete;
CREATE TRIGGER ledger_is_append_only_delete BEFORE DELETE ON ledger
WHEN NOT EXISTS (SELECT 1 FROM erasures WHERE erasing_user_id = OLD.user_id)
BEGIN SELECT RAISE(ABORT, 'ledger entries are never deleted, except by an erasure of their user'); END;
