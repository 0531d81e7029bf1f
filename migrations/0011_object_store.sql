-- Archiving to an object store (`archive.target = "s3"`): a file verified
-- in the partial area is "staged" before its upload starts. The columns
-- hold what the partial file was verified to be; a claim of a staged file
-- uploads it again from the kept partial file (or marks it done if the
-- store already holds it) instead of downloading it again. Cleared when
-- the file is done or fails for good.
ALTER TABLE files ADD COLUMN staged_size INTEGER;
ALTER TABLE files ADD COLUMN staged_sha256 TEXT;
ALTER TABLE files ADD COLUMN staged_length_confirmed INTEGER;
