-- The log, migration 0007: rules as data. Forward-only.
--
-- Every version of the rules the store has scored with, as the canonical
-- TOML of a rules file. Versions are only added: an event keeps the
-- version it was scored with, and replaying it uses that version again.
-- Version 1, added when a store first opens with this migration, is the
-- brief's rules, which every older event was scored with.
CREATE TABLE rule_versions (
    version     INTEGER PRIMARY KEY CHECK (version >= 1),
    rules       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TRIGGER rule_versions_are_append_only BEFORE UPDATE ON rule_versions
BEGIN SELECT RAISE(ABORT, 'rule versions are never changed'); END;

ALTER TABLE events ADD COLUMN rules_version INTEGER NOT NULL DEFAULT 1;

-- An event's ledger entries (its points, its bonuses) carry its version too;
-- other entries do not depend on the rules (NULL). Entries written before
-- this migration read as version 1 (the ledger is never updated).
ALTER TABLE ledger ADD COLUMN rules_version INTEGER;
