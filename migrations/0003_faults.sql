-- Faults the archiver must survive without losing or faking anything.

-- A body whose length no header announced is only a candidate until a
-- probe (`Range: bytes=<size>-` answered 416) or a second transfer that
-- agrees confirms its end. Its size and SHA-256 wait here meanwhile.
ALTER TABLE files ADD COLUMN candidate_size INTEGER;
ALTER TABLE files ADD COLUMN candidate_sha256 TEXT;
-- 1 when a file was archived although nothing could confirm its length
-- (shown by `status` and in the manifest, so that a person can decide).
ALTER TABLE files ADD COLUMN length_unconfirmed INTEGER NOT NULL DEFAULT 0;

-- 1 when the meeting's manifest could not be written; retried later.
ALTER TABLE meetings ADD COLUMN manifest_stale INTEGER NOT NULL DEFAULT 0;

-- Local conditions that stop work without being any file's fault (a full
-- disk), so that `status` and `/healthz` can say why nothing moves.
CREATE TABLE conditions (
    name    TEXT PRIMARY KEY,
    detail  TEXT NOT NULL,
    since   INTEGER NOT NULL
) STRICT;
