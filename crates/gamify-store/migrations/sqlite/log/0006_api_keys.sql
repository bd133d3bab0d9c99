-- The log, migration 0006: API keys. Forward-only.
--
-- A key is kept as the SHA-256 of its secret; revoking stamps `revoked_at`
-- and keeps the row, so the admin API can still show who had which key.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
