-- What release diffs and delivery metrics read beyond a release's row: the
-- release a rollback restored ('' for other releases and for rollbacks
-- made before this migration), the app's formation when the release was
-- made (JSON; '' when not recorded), and the time of a build's commit
-- (NULL when the build did not give one). Delivery metrics read an
-- organization's or every app's releases by creation time.

-- +goose Up
ALTER TABLE releases ADD COLUMN rollback_of TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN formation TEXT NOT NULL DEFAULT '';
ALTER TABLE builds ADD COLUMN commit_time BIGINT;
CREATE INDEX releases_created ON releases (created_at);
