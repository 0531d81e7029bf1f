-- A browsable archive (issue 13): meeting facts for every meeting, a
-- per-meeting folder fixed once, and the layout template in use.
--
-- Facts from the recording list (record/files): the conference ID people
-- dial, when the recording started (Unix ms, UTC), how long it ran
-- (seconds) and who scheduled it. `facts_checked_at` is when a configured
-- meeting was last looked up there (NULL: never), so a lookup is not
-- repeated on every poll.
ALTER TABLE meetings ADD COLUMN conf_id TEXT;
ALTER TABLE meetings ADD COLUMN start_time INTEGER;
ALTER TABLE meetings ADD COLUMN duration_s INTEGER;
ALTER TABLE meetings ADD COLUMN scheduler TEXT;
ALTER TABLE meetings ADD COLUMN facts_checked_at INTEGER;
-- The meeting's folder under download.dir and the layout template its
-- files follow, fixed when its first file is listed and never changed
-- after: a subject learnt later, or a new download.layout, moves nothing.
-- `folder_key` is the folder as a case-insensitive file system (APFS,
-- SMB, exFAT) compares it: NFC, Unicode lowercase (set by the ledger's
-- code; here `lower`, which folds ASCII, for the legacy folders: their
-- conference UUIDs). No two meetings share a key, nor does one lie inside
-- another's: the ledger checks both when it fixes a folder.
ALTER TABLE meetings ADD COLUMN folder TEXT;
ALTER TABLE meetings ADD COLUMN folder_key TEXT;
ALTER TABLE meetings ADD COLUMN layout TEXT;
CREATE UNIQUE INDEX meetings_folder ON meetings (folder) WHERE folder IS NOT NULL;
CREATE INDEX meetings_folder_key ON meetings (folder_key) WHERE folder_key IS NOT NULL;

-- The layout templates this archive has used, newest last: the last row
-- applies to meetings whose folder is not fixed yet. A ledger that already
-- knew meetings was written with the layout before templates existed.
CREATE TABLE layouts (
    id        INTEGER PRIMARY KEY,
    template  TEXT NOT NULL,
    since     INTEGER NOT NULL
) STRICT;

INSERT INTO layouts (template, since)
SELECT '{conf_uuid}/{type}/{name}', min(first_seen_at) FROM meetings
HAVING count(*) > 0;

-- Meetings with files keep the folder their files already lie in.
UPDATE meetings SET
    layout = '{conf_uuid}/{type}/{name}',
    folder = (SELECT substr(f.rel_path, 1, instr(f.rel_path, '/') - 1)
              FROM files f WHERE f.conf_uuid = meetings.conf_uuid
              ORDER BY f.id LIMIT 1)
WHERE EXISTS (SELECT 1 FROM files f WHERE f.conf_uuid = meetings.conf_uuid);
UPDATE meetings SET folder_key = lower(folder) WHERE folder IS NOT NULL;

-- Manifests written before this get rewritten at the next start (schema
-- version 2, with SHA256SUMS beside them).
UPDATE meetings SET manifest_stale = 1
WHERE EXISTS (SELECT 1 FROM files f WHERE f.conf_uuid = meetings.conf_uuid AND f.state = 'done');
