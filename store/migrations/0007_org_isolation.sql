-- Spaces an organization owns; NULL is a space the admin shares with every
-- organization ("default", and every space made before this column).
ALTER TABLE spaces ADD COLUMN org_id TEXT REFERENCES organizations(id);
