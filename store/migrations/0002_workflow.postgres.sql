-- Pipelines, promotions, webhooks and the audit trail. The file for each
-- dialect differs only in the auto-increment primary key (audits.seq).

-- +goose Up
CREATE TABLE pipelines (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE pipeline_couplings (
	id              TEXT PRIMARY KEY,
	pipeline_id     TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
	app_id          TEXT NOT NULL UNIQUE REFERENCES apps(id) ON DELETE CASCADE,
	stage           TEXT NOT NULL,
	required_checks TEXT NOT NULL DEFAULT '[]',
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL
);
CREATE INDEX pipeline_couplings_pipeline ON pipeline_couplings (pipeline_id, stage);

CREATE TABLE promotions (
	id                TEXT PRIMARY KEY,
	pipeline_id       TEXT NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
	source_app_id     TEXT NOT NULL,
	source_release_id TEXT NOT NULL,
	safe              INTEGER NOT NULL DEFAULT 0,
	created_at        BIGINT NOT NULL,
	updated_at        BIGINT NOT NULL
);

CREATE TABLE promotion_targets (
	id           TEXT PRIMARY KEY,
	promotion_id TEXT NOT NULL REFERENCES promotions(id) ON DELETE CASCADE,
	app_id       TEXT NOT NULL,
	release_id   TEXT NOT NULL
);
CREATE INDEX promotion_targets_promotion ON promotion_targets (promotion_id);

CREATE TABLE hooks (
	id         TEXT PRIMARY KEY,
	app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	url        TEXT NOT NULL,
	events     TEXT NOT NULL,
	secret     TEXT NOT NULL DEFAULT '',
	active     INTEGER NOT NULL DEFAULT 1,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX hooks_app ON hooks (app_id);

-- The outbox: one row per delivery of an event to a hook, written in the
-- transaction of the event. URL and secret are copied so a delivery
-- outlives its hook (the destroy event deletes the app's hooks).
CREATE TABLE hook_deliveries (
	id         TEXT PRIMARY KEY,
	hook_id    TEXT NOT NULL,
	app_id     TEXT NOT NULL,
	event      TEXT NOT NULL,
	url        TEXT NOT NULL,
	secret     TEXT NOT NULL,
	payload    TEXT NOT NULL,
	status     TEXT NOT NULL,
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_at    BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX hook_deliveries_due ON hook_deliveries (status, next_at);

CREATE TABLE hook_results (
	id              TEXT PRIMARY KEY,
	hook_id         TEXT NOT NULL,
	delivery_id     TEXT NOT NULL,
	event           TEXT NOT NULL,
	attempt         INTEGER NOT NULL,
	request_headers TEXT NOT NULL,
	status_code     INTEGER NOT NULL,
	duration_us     BIGINT NOT NULL,
	error           TEXT NOT NULL DEFAULT '',
	created_at      BIGINT NOT NULL
);
CREATE INDEX hook_results_hook ON hook_results (hook_id, created_at);

-- Who did what; kept after the app is deleted.
CREATE TABLE audits (
	seq        BIGSERIAL PRIMARY KEY,
	id         TEXT NOT NULL UNIQUE,
	app_id     TEXT NOT NULL,
	app_key    TEXT NOT NULL,
	action     TEXT NOT NULL,
	detail     TEXT NOT NULL DEFAULT '',
	user_id    TEXT NOT NULL DEFAULT '',
	user_email TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL
);
CREATE INDEX audits_app ON audits (app_key, seq);
