-- The log, migration 0009: the ledger's kinds checked by comparisons, not
-- an IN list. Forward-only.
--
-- SQLite evaluates `kind IN (…seven kinds…)` by building a temporary
-- B-tree of the list on every row it checks, which made inserting an
-- event's ledger entry cost about twice inserting the event itself
-- (docs/BENCHMARKS.md, "Why distinct-user ingest is below target"). The
-- same set written as `kind = … OR …` is checked by plain comparisons.
-- SQLite cannot change a CHECK in place, so the table is rebuilt as in
-- migration 0002: its rows copied as they are (same seq, same values, the
-- columns in the same order) and the append-only triggers created again;
-- dropping the old table fires no DELETE trigger.
DROP TRIGGER ledger_is_append_only_update;
DROP TRIGGER ledger_is_append_only_delete;
CREATE TABLE ledger_v3 (
    seq                  INTEGER PRIMARY KEY,
    user_id              TEXT NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind = 'event' OR kind = 'achievement_bonus'
                                              OR kind = 'spend' OR kind = 'redemption'
                                              OR kind = 'refund' OR kind = 'expiry'
                                              OR kind = 'adjustment'),
    amount_milli         INTEGER NOT NULL,
    balance_after_milli  INTEGER NOT NULL CHECK (balance_after_milli >= 0),
    lifetime_after_milli INTEGER NOT NULL,
    reference            TEXT NOT NULL,          -- what caused it: evt_…, evt_…/achievement, spd_…, adj_…, red_…
    created_at           INTEGER NOT NULL,
    rules_version        INTEGER                 -- the event's rules version (migration 0007); NULL for other kinds
) STRICT;
INSERT INTO ledger_v3 SELECT * FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_v3 RENAME TO ledger;
CREATE TRIGGER ledger_is_append_only_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger entries are never updated'); END;
CREATE TRIGGER ledger_is_append_only_delete BEFORE DELETE ON ledger
WHEN NOT EXISTS (SELECT 1 FROM erasures WHERE erasing_user_id = OLD.user_id)
BEGIN SELECT RAISE(ABORT, 'ledger entries are never deleted, except by an erasure of their user'); END;
