-- Slug garbage collection asks which releases use a slug, and which slugs
-- an app has.
CREATE INDEX releases_slug ON releases (slug_id);
CREATE INDEX slugs_app ON slugs (app_id, created_at);
