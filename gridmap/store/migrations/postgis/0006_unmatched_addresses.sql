-- Schema version 6: addresses the library could not place, counted per day, text and community, so
-- staff see which places to add to the address library first (GET /v1/addresses/unmatched).
CREATE TABLE IF NOT EXISTS unmatched_addresses (
    day text NOT NULL, text text NOT NULL, community_code text NOT NULL DEFAULT '',
    count bigint NOT NULL, last_seen text NOT NULL,
    PRIMARY KEY (day, text, community_code)
);
