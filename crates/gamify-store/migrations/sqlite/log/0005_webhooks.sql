-- The log, migration 0005: outbound webhooks. Forward-only.
--
-- Like `rewards`, these small tables are updated in place; the writer
-- thread alone writes them. The outbox (`webhook_deliveries`) is written in
-- the transaction of the change it tells about; `id` is derived from the
-- subscription and the change.
CREATE TABLE webhook_subscriptions (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    topics      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    deleted_at  INTEGER
) STRICT;

CREATE TABLE webhook_deliveries (
    seq             INTEGER PRIMARY KEY,
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
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_subscription ON webhook_deliveries (subscription_id, seq DESC);
CREATE INDEX webhook_deliveries_by_user ON webhook_deliveries (user_id);
