-- The server running a build, so a restarted server fails only its own
-- unfinished builds and not those another server on the database runs.
ALTER TABLE builds ADD COLUMN holder TEXT NOT NULL DEFAULT '';
