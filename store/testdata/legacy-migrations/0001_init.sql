-- Slipway's schema. Times are microseconds since the Unix epoch (BIGINT) and
-- booleans are INTEGER 0/1, so one file serves SQLite and PostgreSQL;
-- {{serial}} is the dialect's auto-increment primary key.
CREATE TABLE organizations (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);

CREATE TABLE spaces (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	compliance  TEXT NOT NULL DEFAULT '[]',
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL
);

CREATE TABLE apps (
	id                 TEXT PRIMARY KEY,
	name               TEXT NOT NULL,
	org_id             TEXT NOT NULL REFERENCES organizations(id),
	space_id           TEXT NOT NULL REFERENCES spaces(id),
	description        TEXT NOT NULL DEFAULT '',
	maintenance        INTEGER NOT NULL DEFAULT 0,
	auto_release       INTEGER NOT NULL DEFAULT 0,
	git_url            TEXT NOT NULL DEFAULT '',
	git_branch         TEXT NOT NULL DEFAULT '',
	release_seq        INTEGER NOT NULL DEFAULT 0,
	current_release_id TEXT,
	released_at        BIGINT,
	created_at         BIGINT NOT NULL,
	updated_at         BIGINT NOT NULL,
	UNIQUE (name, space_id)
);

CREATE TABLE config_vars (
	app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	key    TEXT NOT NULL,
	value  TEXT NOT NULL,
	PRIMARY KEY (app_id, key)
);

CREATE TABLE builds (
	id         TEXT PRIMARY KEY,
	app_id     TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	status     TEXT NOT NULL,
	source_url TEXT NOT NULL DEFAULT '',
	checksum   TEXT NOT NULL DEFAULT '',
	repo       TEXT NOT NULL DEFAULT '',
	sha        TEXT NOT NULL DEFAULT '',
	branch     TEXT NOT NULL DEFAULT '',
	version    TEXT NOT NULL DEFAULT '',
	author     TEXT NOT NULL DEFAULT '',
	message    TEXT NOT NULL DEFAULT '',
	user_id    TEXT NOT NULL DEFAULT '',
	user_email TEXT NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE INDEX builds_app ON builds (app_id, created_at);

CREATE TABLE build_lines (
	seq      {{serial}},
	build_id TEXT NOT NULL REFERENCES builds(id) ON DELETE CASCADE,
	line     TEXT NOT NULL
);
CREATE INDEX build_lines_build ON build_lines (build_id, seq);

CREATE TABLE slugs (
	id            TEXT PRIMARY KEY,
	app_id        TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	process_types TEXT NOT NULL DEFAULT '{}',
	size          BIGINT NOT NULL DEFAULT 0,
	checksum      TEXT NOT NULL DEFAULT '',
	image         TEXT NOT NULL DEFAULT '',
	dir           TEXT NOT NULL DEFAULT '',
	created_at    BIGINT NOT NULL
);

CREATE TABLE releases (
	id          TEXT PRIMARY KEY,
	app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	version     INTEGER NOT NULL,
	slug_id     TEXT NOT NULL,
	config      TEXT NOT NULL DEFAULT '{}',
	description TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL,
	trigger_kind TEXT NOT NULL,
	user_id     TEXT NOT NULL DEFAULT '',
	user_email  TEXT NOT NULL DEFAULT '',
	error       TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	UNIQUE (app_id, version)
);
CREATE INDEX releases_work ON releases (status, app_id);

CREATE TABLE release_logs (
	seq        {{serial}},
	release_id TEXT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
	at         BIGINT NOT NULL,
	line       TEXT NOT NULL
);
CREATE INDEX release_logs_release ON release_logs (release_id, seq);

CREATE TABLE release_statuses (
	id          TEXT PRIMARY KEY,
	release_id  TEXT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
	state       TEXT NOT NULL,
	name        TEXT NOT NULL,
	context     TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	target_url  TEXT NOT NULL DEFAULT '',
	image_url   TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	UNIQUE (release_id, context)
);

CREATE TABLE formations (
	app_id      TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
	type        TEXT NOT NULL,
	quantity    INTEGER NOT NULL,
	size        TEXT NOT NULL DEFAULT 'standard',
	port        INTEGER NOT NULL DEFAULT 0,
	command     TEXT NOT NULL DEFAULT '',
	healthcheck TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	updated_at  BIGINT NOT NULL,
	PRIMARY KEY (app_id, type)
);
