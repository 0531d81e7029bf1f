-- A file's identity becomes (meeting, type, file key) instead of (meeting,
-- type, URL path). The key is the file's name (the URL's last path segment,
-- or a query parameter that names the file), with `#2`, `#3`, ... for
-- later files of the same name and type in the listing's order. The URL
-- path may change between listings (a per-listing nonce or a signed path)
-- without the file becoming a new one, and URLs told apart only by their
-- query stay apart. SQLite cannot drop a UNIQUE constraint, so the table is
-- rebuilt under its own name, ids kept: tokens and attempts point at the
-- same rows again once the copy is back (their foreign keys are checked at
-- commit, when every row they name exists again).
PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE files_old AS SELECT * FROM files;
DROP TABLE files;

CREATE TABLE files (
    id               INTEGER PRIMARY KEY,
    conf_uuid        TEXT NOT NULL REFERENCES meetings (conf_uuid),
    file_type        TEXT NOT NULL,
    file_key         TEXT NOT NULL,
    url_path         TEXT NOT NULL,
    url              TEXT NOT NULL,
    rel_path         TEXT NOT NULL UNIQUE,
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'downloading', 'done', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    partial_bytes    INTEGER NOT NULL DEFAULT 0,
    size             INTEGER,
    sha256           TEXT,
    first_seen_at    INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    done_at          INTEGER,
    candidate_size   INTEGER,
    candidate_sha256 TEXT,
    length_unconfirmed INTEGER NOT NULL DEFAULT 0,
    UNIQUE (conf_uuid, file_type, file_key)
) STRICT;

WITH named AS (
    SELECT *,
           -- the last segment of the path: everything after the last '/'
           substr(rtrim(url_path, '/'),
                  length(rtrim(rtrim(url_path, '/'),
                               replace(rtrim(url_path, '/'), '/', ''))) + 1) AS name
    FROM files_old
), numbered AS (
    SELECT *, row_number() OVER (PARTITION BY conf_uuid, file_type, name ORDER BY id) AS n
    FROM named
)
INSERT INTO files (id, conf_uuid, file_type, file_key, url_path, url, rel_path, state,
                       attempts, next_attempt_at, last_error, partial_bytes, size, sha256,
                       first_seen_at, updated_at, done_at, candidate_size, candidate_sha256,
                       length_unconfirmed)
SELECT id, conf_uuid, file_type,
       CASE WHEN n > 1 THEN name || '#' || n ELSE name END,
       url_path, url, rel_path, state, attempts, next_attempt_at, last_error, partial_bytes,
       size, sha256, first_seen_at, updated_at, done_at, candidate_size, candidate_sha256,
       length_unconfirmed
FROM numbered;

DROP TABLE files_old;
CREATE INDEX files_queue ON files (state, next_attempt_at);
