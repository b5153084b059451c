-- Schema version 2: every change of the package revision is announced on the channel
-- gridmap_revision, whoever makes it (an import by any gridmap process, a restore by hand), so the
-- other processes LISTENing there rebuild their lookup index at once instead of at their next check.
CREATE OR REPLACE FUNCTION gridmap_announce_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.key = 'revision' THEN
        PERFORM pg_notify('gridmap_revision', NEW.value);
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS gridmap_meta_announce ON gridmap_meta;
CREATE TRIGGER gridmap_meta_announce AFTER INSERT OR UPDATE ON gridmap_meta
    FOR EACH ROW EXECUTE FUNCTION gridmap_announce_revision();
