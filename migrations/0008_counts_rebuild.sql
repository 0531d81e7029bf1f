-- Recomputes every counter of `counts` and each meeting's file counts from
-- the rows themselves: the backfill of migration 0008 and the repair of
-- `verify --ledger --repair`. Meetings first: their update moves the stage
-- counters, which are then rewritten whole.
UPDATE meetings SET
    files_total = (SELECT count(*) FROM files f WHERE f.conf_uuid = meetings.conf_uuid),
    files_done = (SELECT count(*) FROM files f
                  WHERE f.conf_uuid = meetings.conf_uuid AND f.state = 'done'),
    files_failed = (SELECT count(*) FROM files f
                    WHERE f.conf_uuid = meetings.conf_uuid AND f.state = 'failed');

DELETE FROM counts;
INSERT INTO counts (name, n)
SELECT 'files.' || s.state, (SELECT count(*) FROM files WHERE state = s.state)
FROM (SELECT 'pending' AS state UNION ALL SELECT 'downloading' UNION ALL SELECT 'done'
      UNION ALL SELECT 'failed') s;
INSERT INTO counts (name, n)
SELECT 'bytes_archived', coalesce(sum(size), 0) FROM files WHERE state = 'done';
INSERT INTO counts (name, n)
SELECT 'length_unconfirmed', count(*) FROM files WHERE state = 'done' AND length_unconfirmed = 1;
INSERT INTO counts (name, n) SELECT 'meetings', count(*) FROM meetings;
INSERT INTO counts (name, n)
SELECT 'meetings.' || s.stage, (SELECT count(*) FROM meetings WHERE stage = s.stage)
FROM (SELECT 'deleted_from_cloud' AS stage UNION ALL SELECT 'gave_up'
      UNION ALL SELECT 'listing_failed' UNION ALL SELECT 'transcoding'
      UNION ALL SELECT 'not_ready' UNION ALL SELECT 'complete'
      UNION ALL SELECT 'has_failures' UNION ALL SELECT 'in_progress') s;
