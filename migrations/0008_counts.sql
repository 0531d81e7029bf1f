-- The ledger at scale: counters that cost nothing to read, indexes for every
-- query run per poll or per claim, and a bounded attempts table.
--
-- `counts` holds files per state, bytes archived, files archived with an
-- unconfirmed length, meetings, and meetings per lifecycle stage. Triggers
-- keep it (and each meeting's own file counts) in step with every change of
-- `files` and `meetings`, in the transaction that makes the change, so
-- `status` and `/metrics` read a few rows instead of scanning a million.
-- `verify --ledger` recomputes everything from the rows and compares;
-- the statements that rebuild it from scratch follow this file (they are
-- shared with `verify --ledger --repair`: 0008_counts_rebuild.sql).

-- Each meeting's files, kept by the triggers below.
ALTER TABLE meetings ADD COLUMN files_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meetings ADD COLUMN files_done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE meetings ADD COLUMN files_failed INTEGER NOT NULL DEFAULT 0;

-- The meeting's lifecycle stage, derived from its row alone (`status`
-- splits `complete` into complete and settled by `poll.recheck_for`).
ALTER TABLE meetings ADD COLUMN stage TEXT GENERATED ALWAYS AS (CASE
    WHEN deleted_from_cloud_at IS NOT NULL THEN 'deleted_from_cloud'
    WHEN given_up_at IS NOT NULL THEN 'gave_up'
    WHEN last_poll_error IS NOT NULL THEN 'listing_failed'
    WHEN files_total = 0 AND transcoding <> 0 THEN 'transcoding'
    WHEN files_total = 0 THEN 'not_ready'
    WHEN complete_since IS NOT NULL THEN 'complete'
    WHEN files_failed > 0 THEN 'has_failures'
    ELSE 'in_progress' END) VIRTUAL;

-- Attempts beyond the last few of a file are folded into these totals.
ALTER TABLE files ADD COLUMN attempts_pruned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE files ADD COLUMN attempt_bytes_pruned INTEGER NOT NULL DEFAULT 0;

CREATE TABLE counts (
    name  TEXT PRIMARY KEY,
    n     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- `status`'s last errors: newest first within a state.
CREATE INDEX files_errors ON files (state, updated_at) WHERE last_error IS NOT NULL;
-- Listings of meetings: all in order, by stage, the recently complete.
CREATE INDEX meetings_order ON meetings (first_seen_at, conf_uuid);
CREATE INDEX meetings_stage ON meetings (stage, first_seen_at, conf_uuid);
CREATE INDEX meetings_complete ON meetings (complete_since) WHERE complete_since IS NOT NULL;
-- Attempts left open by a crash, found at start-up without a scan.
CREATE INDEX attempts_open ON attempts (file_id) WHERE outcome IS NULL;

-- Fold old attempts: keep the last 20 of each file (the same number as
-- `ledger::KEEP_ATTEMPTS`).
WITH ranked AS (
    SELECT id, file_id, bytes,
           row_number() OVER (PARTITION BY file_id ORDER BY id DESC) AS newest
    FROM attempts
), old AS (
    SELECT file_id, count(*) AS n, sum(bytes) AS b FROM ranked WHERE newest > 20 GROUP BY file_id
)
UPDATE files SET attempts_pruned = old.n, attempt_bytes_pruned = old.b
FROM old WHERE files.id = old.file_id;
DELETE FROM attempts WHERE id IN (
    SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY file_id ORDER BY id DESC) AS newest
                    FROM attempts)
    WHERE newest > 20);

CREATE TRIGGER files_counted_insert AFTER INSERT ON files BEGIN
    UPDATE counts SET n = n + CASE name
            WHEN 'files.' || NEW.state THEN 1
            WHEN 'bytes_archived' THEN iif(NEW.state = 'done', coalesce(NEW.size, 0), 0)
            WHEN 'length_unconfirmed' THEN iif(NEW.state = 'done', NEW.length_unconfirmed, 0)
            ELSE 0 END
        WHERE name IN ('files.' || NEW.state, 'bytes_archived', 'length_unconfirmed');
    UPDATE meetings SET files_total = files_total + 1,
            files_done = files_done + (NEW.state = 'done'),
            files_failed = files_failed + (NEW.state = 'failed')
        WHERE conf_uuid = NEW.conf_uuid;
END;

CREATE TRIGGER files_counted_delete AFTER DELETE ON files BEGIN
    UPDATE counts SET n = n - CASE name
            WHEN 'files.' || OLD.state THEN 1
            WHEN 'bytes_archived' THEN iif(OLD.state = 'done', coalesce(OLD.size, 0), 0)
            WHEN 'length_unconfirmed' THEN iif(OLD.state = 'done', OLD.length_unconfirmed, 0)
            ELSE 0 END
        WHERE name IN ('files.' || OLD.state, 'bytes_archived', 'length_unconfirmed');
    UPDATE meetings SET files_total = files_total - 1,
            files_done = files_done - (OLD.state = 'done'),
            files_failed = files_failed - (OLD.state = 'failed')
        WHERE conf_uuid = OLD.conf_uuid;
END;

-- Fires only when a counted column changes: checkpoints (`partial_bytes`)
-- and token bookkeeping cost nothing extra.
CREATE TRIGGER files_counted_update
AFTER UPDATE OF state, size, length_unconfirmed, conf_uuid ON files
WHEN OLD.state IS NOT NEW.state OR OLD.size IS NOT NEW.size
  OR OLD.length_unconfirmed IS NOT NEW.length_unconfirmed OR OLD.conf_uuid IS NOT NEW.conf_uuid
BEGIN
    UPDATE counts SET n = n
            + CASE name
                WHEN 'files.' || NEW.state THEN 1
                WHEN 'bytes_archived' THEN iif(NEW.state = 'done', coalesce(NEW.size, 0), 0)
                WHEN 'length_unconfirmed' THEN iif(NEW.state = 'done', NEW.length_unconfirmed, 0)
                ELSE 0 END
            - CASE name
                WHEN 'files.' || OLD.state THEN 1
                WHEN 'bytes_archived' THEN iif(OLD.state = 'done', coalesce(OLD.size, 0), 0)
                WHEN 'length_unconfirmed' THEN iif(OLD.state = 'done', OLD.length_unconfirmed, 0)
                ELSE 0 END
        WHERE name IN ('files.' || OLD.state, 'files.' || NEW.state,
                       'bytes_archived', 'length_unconfirmed');
    UPDATE meetings SET files_total = files_total - 1,
            files_done = files_done - (OLD.state = 'done'),
            files_failed = files_failed - (OLD.state = 'failed')
        WHERE conf_uuid = OLD.conf_uuid;
    UPDATE meetings SET files_total = files_total + 1,
            files_done = files_done + (NEW.state = 'done'),
            files_failed = files_failed + (NEW.state = 'failed')
        WHERE conf_uuid = NEW.conf_uuid;
END;

CREATE TRIGGER meetings_counted_insert AFTER INSERT ON meetings BEGIN
    UPDATE counts SET n = n + 1 WHERE name IN ('meetings', 'meetings.' || NEW.stage);
END;

CREATE TRIGGER meetings_counted_delete AFTER DELETE ON meetings BEGIN
    UPDATE counts SET n = n - 1 WHERE name IN ('meetings', 'meetings.' || OLD.stage);
END;

CREATE TRIGGER meetings_counted_update AFTER UPDATE ON meetings
WHEN OLD.stage IS NOT NEW.stage
BEGIN
    UPDATE counts SET n = n - 1 WHERE name = 'meetings.' || OLD.stage;
    UPDATE counts SET n = n + 1 WHERE name = 'meetings.' || NEW.stage;
END;
