-- The log, migration 0008: tenants. Forward-only.
--
-- The tenants a deployment holds besides the default one, kept in the
-- default tenant's database only (each tenant's own data lives in a
-- database of its own, next to this one). Never updated or removed here.
CREATE TABLE tenants (
    name        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL
) STRICT;
