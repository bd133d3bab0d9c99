-- Migration 0008: rules as data. Forward-only.
--
-- Every version of the rules any node has scored with, as the canonical
-- TOML of a rules file. Versions are only added (a node adds the next
-- number under a lock on this table): an event keeps the version it was
-- scored with. Version 1, added by the first node to start with this
-- migration, is the brief's rules, which every older event was scored with.
CREATE TABLE rule_versions (
    version     integer PRIMARY KEY CHECK (version >= 1),
    rules       text NOT NULL,
    created_at  bigint NOT NULL
);

ALTER TABLE events ADD COLUMN rules_version integer NOT NULL DEFAULT 1;

-- An event's ledger entries (its points, its bonuses) carry its version too;
-- other entries do not depend on the rules (NULL). Entries written before
-- this migration read as version 1.
ALTER TABLE ledger ADD COLUMN rules_version integer;
