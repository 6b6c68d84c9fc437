-- airlock team mode, schema version 4: which database URL each device uses
-- (docs/team.md, "A new database credential after a removal").
--
-- One row per device, written by the device itself: when it adopts a URL an
-- admin sent (a `db-url` row of airlock.changes), when an admin device sends
-- one, and at its first sync after this migration. It is current state, not
-- history: the device replaces its row when it moves. `airlock team status`
-- verifies every row against the device's key and names the approved devices
-- not on the newest URL yet, so the old credential is taken away only once
-- none is left. A database writer can delete a row or put back an older one
-- (the device then looks behind, and the admin waits), but cannot make a
-- device look moved: that takes the device's signature over the new version.
CREATE TABLE airlock.device_db_urls (
    device text PRIMARY KEY REFERENCES airlock.devices (id),
    url_at bigint NOT NULL,                   -- signed instant (unix ms) of the db-url row adopted; 0: the URL it enrolled with
    at bigint NOT NULL,                       -- unix milliseconds, signed: when the device wrote this row
    sig bytea NOT NULL                        -- the device's, over (team, device, url_at, at)
);
