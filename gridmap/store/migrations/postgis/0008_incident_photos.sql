-- Schema version 8: incident photos (issue #15 §4): stripped JPEGs and their thumbnails in the database,
-- so every API host serves the same photos without a shared folder. Written once, never changed; the
-- upload's history row goes to incident_events in the same transaction. No file name, no EXIF: what
-- the upload said of itself is not kept (gridmap/incidents/images.py).
CREATE TABLE IF NOT EXISTS incident_photos (
    n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    incident_id bigint NOT NULL REFERENCES incidents (fid),
    stage text NOT NULL, created_at text NOT NULL, actor text NOT NULL, role text NOT NULL,
    width integer NOT NULL, height integer NOT NULL, size integer NOT NULL,
    thumb_width integer NOT NULL, thumb_height integer NOT NULL, thumb_size integer NOT NULL,
    sha256 text NOT NULL,
    image bytea NOT NULL, thumbnail bytea NOT NULL
);
CREATE INDEX IF NOT EXISTS incident_photos_incident ON incident_photos (incident_id, stage, n);
-- JPEG does not compress further: kept out of line (TOAST) without trying to compress it.
ALTER TABLE incident_photos ALTER COLUMN image SET STORAGE EXTERNAL;
ALTER TABLE incident_photos ALTER COLUMN thumbnail SET STORAGE EXTERNAL;
