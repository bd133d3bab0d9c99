-- PostgreSQL, migration 0002: the points economy. Forward-only.

-- The ledger gains the kinds of spending, and a balance can never be
-- negative, whatever code writes it.
ALTER TABLE ledger DROP CONSTRAINT ledger_kind_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_check
    CHECK (kind IN ('event', 'achievement_bonus', 'spend', 'redemption', 'refund', 'expiry', 'adjustment'));
ALTER TABLE ledger ADD CONSTRAINT ledger_balance_never_negative CHECK (balance_after_milli >= 0);
-- The ledger API: a user's entries newest first.
CREATE INDEX ledger_by_user ON ledger (user_id, seq DESC);

ALTER TABLE users ADD CONSTRAINT users_total_never_negative CHECK (total_milli >= 0);

-- Spends and admin adjustments: points moved outside events. `amount_milli`
-- is the change to the balance (negative for a spend).
CREATE TABLE movements (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text COLLATE "C" NOT NULL UNIQUE,   -- spd_… or adj_…
    user_id         text COLLATE "C" NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('spend', 'adjustment')),
    amount_milli    bigint NOT NULL CHECK (amount_milli <> 0),
    reason          text NOT NULL,
    metadata        text,
    balance_after   bigint NOT NULL CHECK (balance_after >= 0),
    lifetime_after  bigint NOT NULL,
    created_at      bigint NOT NULL,
    idempotency_key text COLLATE "C",
    request_hash    text
);
CREATE UNIQUE INDEX movements_by_idempotency_key ON movements (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The rewards catalogue. `redeemed` counts the redemptions not cancelled;
-- a redemption locks the reward's row to change it, so the stock is never
-- oversold across nodes, and the CHECK backs that up (an admin cannot set
-- the stock below what is already redeemed).
CREATE TABLE rewards (
    id              text COLLATE "C" PRIMARY KEY,
    name_fi         text NOT NULL,
    name_en         text NOT NULL,
    description     text NOT NULL,
    cost_milli      bigint NOT NULL CHECK (cost_milli >= 0),
    stock           bigint CHECK (stock >= 0),          -- NULL: unlimited
    redeemed        bigint NOT NULL DEFAULT 0 CHECK (redeemed >= 0),
    per_user_limit  bigint CHECK (per_user_limit >= 1),
    available_from  bigint,
    available_until bigint,
    active          boolean NOT NULL,
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL,
    CONSTRAINT rewards_within_stock CHECK (stock IS NULL OR redeemed <= stock)
);

CREATE TABLE redemptions (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text COLLATE "C" NOT NULL UNIQUE,   -- red_…
    reward_id       text COLLATE "C" NOT NULL REFERENCES rewards (id),
    user_id         text COLLATE "C" NOT NULL,
    cost_milli      bigint NOT NULL CHECK (cost_milli >= 0),
    status          text NOT NULL CHECK (status IN ('pending', 'fulfilled', 'cancelled')),
    granted_by      text COLLATE "C" UNIQUE,            -- evt_…/achievement for a free grant
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL,
    idempotency_key text COLLATE "C",
    request_hash    text
);
CREATE UNIQUE INDEX redemptions_by_idempotency_key ON redemptions (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- A user's redemptions (listing, and the per-user limit).
CREATE INDEX redemptions_by_user ON redemptions (user_id, id);
-- The admin's queue.
CREATE INDEX redemptions_by_status ON redemptions (status, id);
