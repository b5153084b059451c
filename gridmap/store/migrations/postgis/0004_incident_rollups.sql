-- Schema version 4: monthly counts beside the incidents, as the GeoPackage store keeps them
-- (gridmap/store/incident_rollups.py): the statistics of a period read whole months from here and only its
-- ragged ends from the incidents. Statement-level triggers with transition tables keep them in the
-- transaction of every insert (a history's COPY included), update and delete, whoever writes.
CREATE TABLE IF NOT EXISTS incident_rollup (
    category text NOT NULL, status text NOT NULL, answered integer NOT NULL, on_time integer NOT NULL,
    rating integer NOT NULL, month text NOT NULL, n integer NOT NULL,
    PRIMARY KEY (category, status, answered, on_time, rating, month)
);
CREATE TABLE IF NOT EXISTS incident_place_rollup (
    grid_code text NOT NULL, community_code text NOT NULL, month text NOT NULL, n integer NOT NULL,
    PRIMARY KEY (grid_code, community_code, month)
);

-- Each function sums the deltas of its statement and upserts them in key order (two writers lock rollup
-- rows in the same order). Transition tables are visible only to the trigger function's own statements.
CREATE OR REPLACE FUNCTION gridmap_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_rollup AS r (category, status, answered, on_time, rating, month, n)
    SELECT category, status, (accepted_at IS NOT NULL)::int, coalesce((resolved_at <= due_at)::int, -1),
           coalesce(rating, 0), substr(reported_at, 1, 7), sum(d)
    FROM (SELECT category, status, accepted_at, resolved_at, due_at, rating, reported_at, grid_code, community_code, 1 AS d FROM gridmap_new_rows) AS changed GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (category, status, answered, on_time, rating, month) DO UPDATE SET n = r.n + excluded.n;
    INSERT INTO incident_place_rollup AS r (grid_code, community_code, month, n)
    SELECT coalesce(grid_code, ''), coalesce(community_code, ''), substr(reported_at, 1, 7), sum(d)
    FROM (SELECT category, status, accepted_at, resolved_at, due_at, rating, reported_at, grid_code, community_code, 1 AS d FROM gridmap_new_rows) AS changed GROUP BY 1, 2, 3 HAVING sum(d) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (grid_code, community_code, month) DO UPDATE SET n = r.n + excluded.n;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION gridmap_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_rollup AS r (category, status, answered, on_time, rating, month, n)
    SELECT category, status, (accepted_at IS NOT NULL)::int, coalesce((resolved_at <= due_at)::int, -1),
           coalesce(rating, 0), substr(reported_at, 1, 7), sum(d)
    FROM (SELECT category, status, accepted_at, resolved_at, due_at, rating, reported_at, grid_code, community_code, -1 AS d FROM gridmap_old_rows) AS changed GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (category, status, answered, on_time, rating, month) DO UPDATE SET n = r.n + excluded.n;
    INSERT INTO incident_place_rollup AS r (grid_code, community_code, month, n)
    SELECT coalesce(grid_code, ''), coalesce(community_code, ''), substr(reported_at, 1, 7), sum(d)
    FROM (SELECT category, status, accepted_at, resolved_at, due_at, rating, reported_at, grid_code, community_code, -1 AS d FROM gridmap_old_rows) AS changed GROUP BY 1, 2, 3 HAVING sum(d) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (grid_code, community_code, month) DO UPDATE SET n = r.n + excluded.n;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION gridmap_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO incident_rollup AS r (category, status, answered, on_time, rating, month, n)
    SELECT category, status, (accepted_at IS NOT NULL)::int, coalesce((resolved_at <= due_at)::int, -1),
           coalesce(rating, 0), substr(reported_at, 1, 7), sum(d)
    FROM (SELECT category, status, accepted_at, resolved_at, due_at, rating, reported_at, grid_code, community_code, -1 AS d FROM gridmap_old_rows UNION ALL SELECT category, status, accepted_at, resolved_at, due_at, rating, reported_at, grid_code, community_code, 1 AS d FROM gridmap_new_rows) AS changed GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (category, status, answered, on_time, rating, month) DO UPDATE SET n = r.n + excluded.n;
    INSERT INTO incident_place_rollup AS r (grid_code, community_code, month, n)
    SELECT coalesce(grid_code, ''), coalesce(community_code, ''), substr(reported_at, 1, 7), sum(d)
    FROM (SELECT category, status, accepted_at, resolved_at, due_at, rating, reported_at, grid_code, community_code, -1 AS d FROM gridmap_old_rows UNION ALL SELECT category, status, accepted_at, resolved_at, due_at, rating, reported_at, grid_code, community_code, 1 AS d FROM gridmap_new_rows) AS changed GROUP BY 1, 2, 3 HAVING sum(d) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (grid_code, community_code, month) DO UPDATE SET n = r.n + excluded.n;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS incidents_rollup_insert ON incidents;
CREATE TRIGGER incidents_rollup_insert AFTER INSERT ON incidents REFERENCING NEW TABLE AS gridmap_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_rollup_insert();
DROP TRIGGER IF EXISTS incidents_rollup_delete ON incidents;
CREATE TRIGGER incidents_rollup_delete AFTER DELETE ON incidents REFERENCING OLD TABLE AS gridmap_old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_rollup_delete();
DROP TRIGGER IF EXISTS incidents_rollup_update ON incidents;
CREATE TRIGGER incidents_rollup_update AFTER UPDATE ON incidents
    REFERENCING OLD TABLE AS gridmap_old_rows NEW TABLE AS gridmap_new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION gridmap_rollup_update();

-- A store upgraded from schema 3 counts what it already holds.
TRUNCATE incident_rollup, incident_place_rollup;
    INSERT INTO incident_rollup AS r (category, status, answered, on_time, rating, month, n)
    SELECT category, status, (accepted_at IS NOT NULL)::int, coalesce((resolved_at <= due_at)::int, -1),
           coalesce(rating, 0), substr(reported_at, 1, 7), sum(d)
    FROM (SELECT category, status, accepted_at, resolved_at, due_at, rating, reported_at, grid_code, community_code, 1 AS d FROM incidents) AS changed GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0 ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (category, status, answered, on_time, rating, month) DO UPDATE SET n = r.n + excluded.n;
    INSERT INTO incident_place_rollup AS r (grid_code, community_code, month, n)
    SELECT coalesce(grid_code, ''), coalesce(community_code, ''), substr(reported_at, 1, 7), sum(d)
    FROM (SELECT category, status, accepted_at, resolved_at, due_at, rating, reported_at, grid_code, community_code, 1 AS d FROM incidents) AS changed GROUP BY 1, 2, 3 HAVING sum(d) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (grid_code, community_code, month) DO UPDATE SET n = r.n + excluded.n;
