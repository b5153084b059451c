-- Schema version 5: staff-maintained records (standard addresses and aliases, co-governance) as a
-- JSON body per record with the columns scopes filter on lifted out, and their append-only change
-- log (who, when, before, after), written in the same transaction as the record.
CREATE TABLE IF NOT EXISTS entities (
    kind text NOT NULL, n bigint NOT NULL, key text, version integer NOT NULL,
    community_code text, grid_code text, status text,
    created_at text NOT NULL, updated_at text NOT NULL, body jsonb NOT NULL,
    PRIMARY KEY (kind, n)
);
CREATE UNIQUE INDEX IF NOT EXISTS entities_key ON entities (kind, key) WHERE key IS NOT NULL;
CREATE INDEX IF NOT EXISTS entities_community ON entities (kind, community_code, n);
CREATE INDEX IF NOT EXISTS entities_status ON entities (kind, status, n);

CREATE TABLE IF NOT EXISTS entity_changes (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL, n bigint NOT NULL, version integer NOT NULL, action text NOT NULL,
    actor text NOT NULL, at text NOT NULL, before jsonb, after jsonb
);
CREATE INDEX IF NOT EXISTS entity_changes_record ON entity_changes (kind, n, seq);
DROP TRIGGER IF EXISTS entity_changes_no_change ON entity_changes;
CREATE TRIGGER entity_changes_no_change BEFORE UPDATE OR DELETE ON entity_changes
    FOR EACH ROW EXECUTE FUNCTION gridmap_append_only();
DROP TRIGGER IF EXISTS entity_changes_no_truncate ON entity_changes;
CREATE TRIGGER entity_changes_no_truncate BEFORE TRUNCATE ON entity_changes
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_append_only();
