-- Events pushed by the cloud (`[webhook]`, the enterprise event push). An
-- authentic event is written here before the endpoint answers 200, so a
-- crash between the answer and the poll it asks for loses nothing: rows
-- with no `handled_at` are processed at the next start. The nonces of the
-- last minutes are read from here to refuse a replayed request, so a
-- restart opens no replay window. Handled rows are pruned after 30 days.
CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    -- `record.finish`, `meeting.started`, ... as sent
    event        TEXT NOT NULL,
    -- payload.meetingInfo.meetingUUID; NULL when the event names none
    conf_uuid    TEXT,
    nonce        TEXT NOT NULL,
    -- the envelope's timestamp (Unix ms, the sender's clock)
    sent_at      INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    -- when the poll it asked for ran (or it was found to need none)
    handled_at   INTEGER,
    -- NULL while queued; then listed, not_ready, failed, unlisted or ignored
    outcome      TEXT
) STRICT;

CREATE INDEX events_nonce ON events (nonce, received_at);
CREATE INDEX events_queue ON events (handled_at) WHERE handled_at IS NULL;

-- The last `record.finish` received for a meeting: such a meeting stays on
-- the schedule (until settled, or `poll.give_up_after` without a file)
-- even when it is neither configured nor discovered (`webhook.accept_unlisted`).
ALTER TABLE meetings ADD COLUMN event_at INTEGER;
