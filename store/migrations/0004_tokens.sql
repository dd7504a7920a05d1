-- API tokens limited to one organization. Only a SHA-256 of each token is
-- kept; the token itself is shown once, when it is created.

-- +goose Up
CREATE TABLE tokens (
	id          TEXT PRIMARY KEY,
	org_id      TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
	hash        TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL
);
