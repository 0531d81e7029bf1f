-- The ledger: every meeting, file, download token and attempt the archiver knows.
-- Times are Unix milliseconds. Append-only: later changes go in new files.

CREATE TABLE meetings (
    conf_uuid        TEXT PRIMARY KEY,
    subject          TEXT,
    origin           TEXT NOT NULL CHECK (origin IN ('config', 'discovered')),
    first_seen_at    INTEGER NOT NULL,
    last_polled_at   INTEGER,
    last_poll_error  TEXT,
    -- bumped each time fresh download tokens are stored for this meeting,
    -- so that concurrent workers re-query a meeting's URLs only once
    url_generation   INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE files (
    id               INTEGER PRIMARY KEY,
    conf_uuid        TEXT NOT NULL REFERENCES meetings (conf_uuid),
    file_type        TEXT NOT NULL,
    -- identity: the URL's path without host or query (hosts are bare IPs that may change)
    url_path         TEXT NOT NULL,
    url              TEXT NOT NULL,
    -- where the file lies (or will lie) under download.dir, already sanitised
    rel_path         TEXT NOT NULL UNIQUE,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'downloading', 'done', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    -- durable bytes of the partial file (fsynced before this is written)
    partial_bytes    INTEGER NOT NULL DEFAULT 0,
    size             INTEGER,
    sha256           TEXT,
    first_seen_at    INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    done_at          INTEGER,
    UNIQUE (conf_uuid, file_type, url_path)
) STRICT;

CREATE INDEX files_queue ON files (state, next_attempt_at);

CREATE TABLE tokens (
    id             INTEGER PRIMARY KEY,
    file_id        INTEGER NOT NULL REFERENCES files (id),
    -- the token itself is secret and single-use: it is erased (NULL) once spent
    -- or superseded; the hash stays so a re-issued spent token is recognised
    token_sha256   TEXT NOT NULL UNIQUE,
    token          TEXT,
    issued_at      INTEGER NOT NULL,
    spent_at       INTEGER,
    superseded_at  INTEGER
) STRICT;

CREATE INDEX tokens_file ON tokens (file_id, issued_at);

CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    file_id      INTEGER NOT NULL REFERENCES files (id),
    token_id     INTEGER REFERENCES tokens (id),
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    resume_from  INTEGER NOT NULL DEFAULT 0,
    bytes        INTEGER NOT NULL DEFAULT 0,
    -- NULL while running; then done, token_rejected, failed, interrupted or crashed
    outcome      TEXT,
    http_status  INTEGER,
    error        TEXT
) STRICT;

CREATE INDEX attempts_file ON attempts (file_id, started_at);
