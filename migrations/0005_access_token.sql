-- The App ID's access token, kept across runs: a user holds at most 64 live
-- tokens, and a `sync` from cron that authenticated on every run would
-- abandon one each time (the 65th evicts the oldest, logging out other users
-- of the App ID). One row per credential set (a hash of the API base, App
-- ID, user and enterprise), erased when the API refuses the token. The
-- ledger file is created 0600 because of rows like this one.
CREATE TABLE access_tokens (
    credentials  TEXT PRIMARY KEY,
    token        TEXT NOT NULL,
    use_until    INTEGER NOT NULL
) STRICT;
