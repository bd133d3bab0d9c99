-- Migration 0009: tenants. Forward-only.
--
-- The tenants a deployment holds besides the default one, kept in the
-- default tenant's schema only (each tenant's own data lives in a schema of
-- its own). Nodes read this table every second to serve a new tenant.
CREATE TABLE tenants (
    name        TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL
);
