-- Retention: deleting a meeting's recordings from the cloud once they are
-- archived and verified (`[retention]`, off by default). The intent is
-- recorded before the DELETE and the outcome after it; an intent without
-- an outcome (a crash in between) is resolved at the next start by
-- listing the meeting again. A deleted meeting is never polled again.
ALTER TABLE meetings ADD COLUMN deletion_intent_at INTEGER;
ALTER TABLE meetings ADD COLUMN deleted_from_cloud_at INTEGER;
-- Why the last retention pass did not delete it (shown by `status`).
ALTER TABLE meetings ADD COLUMN retention_hold TEXT;
