-- PostgreSQL, migration 0003: erasing a person. Forward-only.
--
-- What an erasure keeps: one row here, with a one-way hash of the user id
-- (so that a late event or a retried request for that id is refused
-- instead of bringing the person back) and how many rows it removed. No
-- name, no id, no event, no amount. See docs/API.md, "Erasure".
--
-- `erasing_user_id` holds the plain id only inside the erasure's
-- transaction (it is what lets the ledger's trigger allow the deletes) and
-- is cleared before it commits.
CREATE TABLE erasures (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text COLLATE "C" NOT NULL UNIQUE,   -- era_…
    user_hash       text COLLATE "C" NOT NULL UNIQUE,   -- hex SHA-256 of the user id
    erasing_user_id text COLLATE "C" UNIQUE,            -- inside the transaction only
    events          bigint NOT NULL,                    -- rows removed, per table
    ledger_entries  bigint NOT NULL,
    movements       bigint NOT NULL,
    redemptions     bigint NOT NULL,
    erased_at       bigint NOT NULL
);

-- Units of a reward that erased users had received (fulfilled): they stay
-- taken, so `redeemed` counts them, but their redemptions are gone.
ALTER TABLE rewards ADD COLUMN erased_units bigint NOT NULL DEFAULT 0 CHECK (erased_units >= 0);

-- The ledger stays append-only, except that an erasure removes the erased
-- user's entries (and no one else's).
DROP TRIGGER ledger_is_append_only ON ledger;
CREATE TRIGGER ledger_is_append_only BEFORE UPDATE OR TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION gamify_ledger_is_append_only();
CREATE FUNCTION gamify_ledger_deleted_only_by_erasure() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM erasures WHERE erasing_user_id = OLD.user_id) THEN
        RAISE EXCEPTION 'ledger entries are never deleted, except by an erasure of their user';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER ledger_deleted_only_by_erasure BEFORE DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION gamify_ledger_deleted_only_by_erasure();
