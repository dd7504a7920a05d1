-- Restarts of an app's dynos asked for and not yet carried out. They are
-- work of the app like its releases: the server holding the app's lease
-- carries them out in turn with the releases, so a restart never runs
-- beside a rollout of the same app on another server.

-- +goose Up
CREATE TABLE app_restarts (
	id         TEXT PRIMARY KEY,
	app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	dyno       TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX app_restarts_app ON app_restarts (app_id, created_at);
