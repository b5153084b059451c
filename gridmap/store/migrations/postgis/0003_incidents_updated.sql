-- Schema version 3: what changed since a time, from an index (the maps' prepared incidents take in only
-- the incidents written since they last looked: issue #10).
CREATE INDEX IF NOT EXISTS incidents_updated ON incidents (updated_at);
