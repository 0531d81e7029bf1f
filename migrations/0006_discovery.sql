-- Discovered meetings are kept in the ledger from the moment the recording
-- list shows them, transcoding or not, and polled until they are ready,
-- whatever the discovery window: once the window moved past a recording
-- that was still transcoding, it used to be forgotten.
ALTER TABLE meetings ADD COLUMN transcoding INTEGER NOT NULL DEFAULT 0;
-- When polling a discovered meeting that never listed a file stopped
-- (`poll.give_up_after`); NULL while it is polled.
ALTER TABLE meetings ADD COLUMN given_up_at INTEGER;

-- Progress marks: `discovery` is the end of the last successful discovery,
-- so that after downtime the next one covers everything since.
CREATE TABLE watermarks (
    name  TEXT PRIMARY KEY,
    at    INTEGER NOT NULL
) STRICT;
