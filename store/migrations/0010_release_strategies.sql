-- Release strategies: the one an app's releases follow, the one each
-- release ran with (its JSON; '' for the rolling restart), and the durable
-- state of a release's canary or blue-green rollout, which any server
-- holding the app's lease carries on, and when the old dynos of a
-- blue-green switch stop.

-- +goose Up
CREATE TABLE app_strategies (
	app_id     TEXT PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
	strategy   TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);
ALTER TABLE releases ADD COLUMN strategy TEXT NOT NULL DEFAULT '';
CREATE TABLE rollouts (
	release_id    TEXT PRIMARY KEY REFERENCES releases(id) ON DELETE CASCADE,
	app_id        TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	state         TEXT NOT NULL,
	-- when the dynos of the release a blue-green switch replaced stop;
	-- NULL when none wait
	scale_down_at BIGINT,
	updated_at    BIGINT NOT NULL
);
CREATE INDEX rollouts_scale_down ON rollouts (scale_down_at) WHERE scale_down_at IS NOT NULL;
