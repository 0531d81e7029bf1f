-- Archiving to an object store (`archive.target = "s3"`): a file verified
-- in the partial area is "staged" before its upload starts. The columns
-- hold what the partial file was verified to be; a claim of a staged file
-- uploads it again from the kept partial file (or marks it done if the
-- store already holds it) instead of downloading it again. Cleared when
-- the file is done or fails for good.
ALTER TABLE files ADD COLUMN staged_size INTEGER;
ALTER TABLE files ADD COLUMN staged_sha256 TEXT;
ALTER TABLE files ADD COLUMN staged_length_confirmed INTEGER;
-- The multipart upload open for the file, recorded before its first part
-- is sent: the next attempt aborts it if a crash left it open, so no
-- orphaned parts stay billed in the bucket. Cleared once the file is done.
ALTER TABLE files ADD COLUMN open_upload_id TEXT;
