-- Schema version 7: boundary versions (issue #14 §3). Every import of grids is kept with the date it
-- takes effect; incidents keep the version they were routed under. Rows are never changed or deleted.
CREATE TABLE IF NOT EXISTS boundary_versions (
    id bigserial PRIMARY KEY,
    effective_from text NOT NULL,
    label text NOT NULL,
    revision text NOT NULL,
    created_at text NOT NULL,
    actor text NOT NULL,
    counts text NOT NULL,
    layers bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS boundary_versions_from ON boundary_versions (effective_from, id);
DROP TRIGGER IF EXISTS boundary_versions_kept ON boundary_versions;
CREATE TRIGGER boundary_versions_kept BEFORE UPDATE OR DELETE ON boundary_versions
    FOR EACH ROW EXECUTE FUNCTION gridmap_append_only();
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS boundary_version bigint;
