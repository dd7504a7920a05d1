-- Spaces an organization owns; NULL is a space the admin shares with every
-- organization ("default", and every space made before this column).

-- +goose Up
ALTER TABLE spaces ADD COLUMN org_id TEXT REFERENCES organizations(id);

-- Who created each hook (a token id, or the admin's user id), and whether
-- its URL was set by an organization-scoped token: such a hook's
-- deliveries connect to public addresses only. A delivery copies the flag,
-- as it copies the URL, because it outlives its hook.
ALTER TABLE hooks ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE hooks ADD COLUMN scoped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hook_deliveries ADD COLUMN scoped INTEGER NOT NULL DEFAULT 0;

-- Hooks made before this migration do not say who made them. Any hook of
-- an app whose organization has a scoped token may be a tenant's, so it
-- takes the tenant's rule; the admin sets its URL again to lift it.
UPDATE hooks SET scoped = 1 WHERE app_id IN (SELECT a.id FROM apps a JOIN tokens t ON t.org_id = a.org_id);
UPDATE hook_deliveries SET scoped = 1 WHERE status = 'pending' AND hook_id IN (SELECT id FROM hooks WHERE scoped = 1);
