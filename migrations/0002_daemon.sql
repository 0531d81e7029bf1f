-- When every known file of a meeting became archived (Unix ms); NULL while
-- some file is not done or no file is known. The daemon re-checks a complete
-- meeting for new files for `poll.recheck_for` after this, then leaves it
-- alone, so a long list of old meetings costs no API calls.
ALTER TABLE meetings ADD COLUMN complete_since INTEGER;

UPDATE meetings SET complete_since = (
    SELECT max(f.done_at) FROM files f WHERE f.conf_uuid = meetings.conf_uuid
)
WHERE EXISTS (SELECT 1 FROM files f WHERE f.conf_uuid = meetings.conf_uuid)
  AND NOT EXISTS (
    SELECT 1 FROM files f WHERE f.conf_uuid = meetings.conf_uuid AND f.state <> 'done'
  );

-- One row the daemon rewrites to prove the ledger is writable (/healthz,
-- the systemd watchdog).
CREATE TABLE heartbeat (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  INTEGER NOT NULL
) STRICT;
