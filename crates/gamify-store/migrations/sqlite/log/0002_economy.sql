-- The log, migration 0002: the points economy. Forward-only.
--
-- The ledger gains the kinds of spending. SQLite cannot change a CHECK in
-- place, so the table is rebuilt: its rows are copied as they are (same seq,
-- same values) and the append-only triggers are created again. Dropping the
-- old table fires no DELETE trigger.
DROP TRIGGER ledger_is_append_only_update;
DROP TRIGGER ledger_is_append_only_delete;
CREATE TABLE ledger_v2 (
    seq                  INTEGER PRIMARY KEY,
    user_id              TEXT NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('event', 'achievement_bonus', 'spend', 'redemption',
                                                       'refund', 'expiry', 'adjustment')),
    amount_milli         INTEGER NOT NULL,
    balance_after_milli  INTEGER NOT NULL CHECK (balance_after_milli >= 0),
    lifetime_after_milli INTEGER NOT NULL,
    reference            TEXT NOT NULL,          -- what caused it: evt_…, evt_…/achievement, spd_…, adj_…, red_…
    created_at           INTEGER NOT NULL
) STRICT;
INSERT INTO ledger_v2 SELECT * FROM ledger;
DROP TABLE ledger;
ALTER TABLE ledger_v2 RENAME TO ledger;
CREATE TRIGGER ledger_is_append_only_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger entries are never updated'); END;
CREATE TRIGGER ledger_is_append_only_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger entries are never deleted'); END;
-- Still no per-user index here: the ledger API reads through the derived
-- table `user_ledger` (see migrations/sqlite/derived/0002_economy.sql).

-- Spends and admin adjustments: points moved outside events. `amount_milli`
-- is the change to the balance (negative for a spend).
CREATE TABLE movements (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,        -- spd_… or adj_…
    user_id         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('spend', 'adjustment')),
    amount_milli    INTEGER NOT NULL CHECK (amount_milli <> 0),
    reason          TEXT NOT NULL,
    metadata        TEXT,
    balance_after   INTEGER NOT NULL CHECK (balance_after >= 0),
    lifetime_after  INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    idempotency_key TEXT,
    request_hash    TEXT
) STRICT;
CREATE UNIQUE INDEX movements_by_idempotency_key ON movements (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- The rewards catalogue. `redeemed` counts the redemptions not cancelled;
-- the writer keeps it, and the CHECK keeps it within the stock (an admin
-- cannot set the stock below what is already redeemed).
CREATE TABLE rewards (
    id              TEXT PRIMARY KEY,
    name_fi         TEXT NOT NULL,
    name_en         TEXT NOT NULL,
    description     TEXT NOT NULL,
    cost_milli      INTEGER NOT NULL CHECK (cost_milli >= 0),
    stock           INTEGER CHECK (stock >= 0),  -- NULL: unlimited
    redeemed        INTEGER NOT NULL DEFAULT 0 CHECK (redeemed >= 0),
    per_user_limit  INTEGER CHECK (per_user_limit >= 1),
    available_from  INTEGER,
    available_until INTEGER,
    active          INTEGER NOT NULL CHECK (active IN (0, 1)),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CHECK (stock IS NULL OR redeemed <= stock)
) STRICT;

CREATE TABLE redemptions (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,        -- red_…
    reward_id       TEXT NOT NULL REFERENCES rewards (id),
    user_id         TEXT NOT NULL,
    cost_milli      INTEGER NOT NULL CHECK (cost_milli >= 0),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'fulfilled', 'cancelled')),
    granted_by      TEXT UNIQUE,                 -- evt_…/achievement for a free grant
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    idempotency_key TEXT,
    request_hash    TEXT
) STRICT;
CREATE UNIQUE INDEX redemptions_by_idempotency_key ON redemptions (idempotency_key) WHERE idempotency_key IS NOT NULL;
-- A user's redemptions (listing, and the per-user limit).
CREATE INDEX redemptions_by_user ON redemptions (user_id, id);
