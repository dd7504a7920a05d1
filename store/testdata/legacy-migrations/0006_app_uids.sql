-- The unprivileged uid (and gid) each app's dynos run as on the local
-- runtime with isolation, kept so that it is stable across restarts.
CREATE TABLE app_uids (
	app_id TEXT PRIMARY KEY,
	uid    INTEGER NOT NULL UNIQUE
);
