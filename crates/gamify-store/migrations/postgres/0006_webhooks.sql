-- PostgreSQL, migration 0006: outbound webhooks. Forward-only.

-- Who hears about what. A deleted subscription keeps its row (its
-- deliveries are the log admins read) with `deleted_at` set.
CREATE TABLE webhook_subscriptions (
    id          text COLLATE "C" PRIMARY KEY,      -- whk_…
    url         text NOT NULL,
    topics      text NOT NULL,                     -- wire names, comma-separated
    secret      text NOT NULL,                     -- signs deliveries (HMAC-SHA256)
    description text NOT NULL,
    created_at  bigint NOT NULL,
    deleted_at  bigint
);

-- The outbox: written in the transaction of the change it tells about.
-- `id` is derived from the subscription and the change, so a retried batch
-- cannot add a second row. A node sending a delivery moves
-- `next_attempt_at` past its lease first (SKIP LOCKED), so two nodes do
-- not send the same row at once.
CREATE TABLE webhook_deliveries (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              text COLLATE "C" NOT NULL UNIQUE,   -- dlv_…
    subscription_id text COLLATE "C" NOT NULL REFERENCES webhook_subscriptions (id),
    topic           text NOT NULL,
    user_id         text COLLATE "C" NOT NULL,
    data            text NOT NULL,
    created_at      bigint NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at bigint NOT NULL,
    last_attempt_at bigint,
    last_status     integer,
    last_error      text
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, seq DESC);
-- Erasure finds a user's deliveries by it.
CREATE INDEX webhook_deliveries_by_user ON webhook_deliveries (user_id);
