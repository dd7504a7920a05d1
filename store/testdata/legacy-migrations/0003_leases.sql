-- Per-app leases: the server holding an app's lease carries out its
-- releases; a lease not renewed by its expiry can be taken over.
CREATE TABLE app_leases (
	app_id     TEXT PRIMARY KEY,
	holder     TEXT NOT NULL,
	expires_at BIGINT NOT NULL
);
