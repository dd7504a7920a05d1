package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"github.com/google/uuid"

	"github.com/slipway/slipway"
)

func newID() string { return uuid.NewString() }

// isUUID reports whether s parses as a UUID, so lookups by id or name pick
// the right column and never compare a name against ids.
func isUUID(s string) bool { _, err := uuid.Parse(s); return err == nil && len(s) == 36 }

// CreateOrganization creates o; EConflict if the name is taken.
func (db *DB) CreateOrganization(ctx context.Context, o *slipway.Organization) error {
	if err := slipway.ValidateName("organization", o.Name); err != nil {
		return err
	}
	o.ID = newID()
	o.CreatedAt = db.Now().UTC()
	o.UpdatedAt = o.CreatedAt
	_, err := db.w.ExecContext(ctx, `INSERT INTO organizations (id, name, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`,
		o.ID, o.Name, o.Description, micros(o.CreatedAt))
	if isUnique(err) {
		return slipway.Errorf(slipway.EConflict, "An organization named %q already exists.", o.Name)
	}
	return err
}

// ListOrganizations lists organizations by name.
func (db *DB) ListOrganizations(ctx context.Context) ([]*slipway.Organization, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, name, description, created_at, updated_at FROM organizations ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*slipway.Organization
	for rows.Next() {
		o, err := scanOrganization(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// FindOrganization finds an organization by id or name; ENotFound if none.
func (db *DB) FindOrganization(ctx context.Context, idOrName string) (*slipway.Organization, error) {
	col := "name"
	if isUUID(idOrName) {
		col = "id"
	}
	o, err := scanOrganization(db.r.QueryRowContext(ctx, `SELECT id, name, description, created_at, updated_at FROM organizations WHERE `+col+` = $1`, idOrName))
	return o, notFound(err, "Organization %q was not found.", idOrName)
}

func scanOrganization(s scanner) (*slipway.Organization, error) {
	var o slipway.Organization
	var c, u int64
	if err := s.Scan(&o.ID, &o.Name, &o.Description, &c, &u); err != nil {
		return nil, err
	}
	o.CreatedAt, o.UpdatedAt = fromMicros(c), fromMicros(u)
	return &o, nil
}

// CreateSpace creates s, owned by the organization s.OrgName (name or id)
// or shared when it is ""; EConflict if the name is taken, EUnprocessable
// for a bad name or an unknown organization.
func (db *DB) CreateSpace(ctx context.Context, s *slipway.Space) error {
	if err := slipway.ValidateName("space", s.Name); err != nil {
		return err
	}
	var owner any // NULL: shared
	s.OrgID = ""
	if s.OrgName != "" {
		o, err := db.FindOrganization(ctx, s.OrgName)
		if err != nil {
			return unprocessableIfNotFound(err)
		}
		s.OrgID, s.OrgName, owner = o.ID, o.Name, o.ID
	}
	if s.Compliance == nil {
		s.Compliance = []string{}
	}
	comp, _ := json.Marshal(s.Compliance)
	s.ID = newID()
	s.CreatedAt = db.Now().UTC()
	s.UpdatedAt = s.CreatedAt
	_, err := db.w.ExecContext(ctx, `INSERT INTO spaces (id, name, description, compliance, org_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)`,
		s.ID, s.Name, s.Description, string(comp), owner, micros(s.CreatedAt))
	if isUnique(err) {
		return slipway.Errorf(slipway.EConflict, "A space named %q already exists.", s.Name)
	}
	return err
}

const spaceSelect = `SELECT s.id, s.name, s.description, s.compliance, COALESCE(s.org_id, ''), COALESCE(o.name, ''), s.created_at, s.updated_at
	FROM spaces s LEFT JOIN organizations o ON o.id = s.org_id `

// ListSpaces lists spaces by name.
func (db *DB) ListSpaces(ctx context.Context) ([]*slipway.Space, error) {
	rows, err := db.r.QueryContext(ctx, spaceSelect+`ORDER BY s.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*slipway.Space
	for rows.Next() {
		s, err := scanSpace(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// FindSpace finds a space by id or name; ENotFound if none.
func (db *DB) FindSpace(ctx context.Context, idOrName string) (*slipway.Space, error) {
	col := "s.name"
	if isUUID(idOrName) {
		col = "s.id"
	}
	s, err := scanSpace(db.r.QueryRowContext(ctx, spaceSelect+`WHERE `+col+` = $1`, idOrName))
	return s, notFound(err, "Space %q was not found.", idOrName)
}

func scanSpace(sc scanner) (*slipway.Space, error) {
	var s slipway.Space
	var c, u int64
	var comp string
	if err := sc.Scan(&s.ID, &s.Name, &s.Description, &comp, &s.OrgID, &s.OrgName, &c, &u); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(comp), &s.Compliance); err != nil || s.Compliance == nil {
		s.Compliance = []string{}
	}
	s.CreatedAt, s.UpdatedAt = fromMicros(c), fromMicros(u)
	return &s, nil
}

type scanner interface{ Scan(...any) error }

const appColumns = `a.id, a.name, a.description, a.org_id, o.name, a.space_id, s.name, s.compliance,
	a.maintenance, a.git_url, a.git_branch, a.auto_release, a.created_at, a.updated_at, a.released_at,
	COALESCE(NULLIF(sl.image, ''), sl.id, ''), COALESCE(sl.size, 0)`

const appFrom = ` FROM apps a JOIN organizations o ON o.id = a.org_id JOIN spaces s ON s.id = a.space_id
	LEFT JOIN releases cr ON cr.id = a.current_release_id LEFT JOIN slugs sl ON sl.id = cr.slug_id `

func scanApp(sc scanner) (*slipway.App, error) {
	var a slipway.App
	var comp, image string
	var maint, auto int
	var c, u int64
	var rel sql.NullInt64
	if err := sc.Scan(&a.ID, &a.Name, &a.Description, &a.OrgID, &a.OrgName, &a.SpaceID, &a.SpaceName, &comp,
		&maint, &a.GitURL, &a.GitBranch, &auto, &c, &u, &rel, &image, &a.SlugSize); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(comp), &a.Compliance); err != nil || a.Compliance == nil {
		a.Compliance = []string{}
	}
	a.Maintenance, a.AutoRelease = maint != 0, auto != 0
	a.CreatedAt, a.UpdatedAt = fromMicros(c), fromMicros(u)
	if rel.Valid {
		t := fromMicros(rel.Int64)
		a.ReleasedAt = &t
	}
	a.CurrentImage = image
	return &a, nil
}

// CreateApp creates a in the organization a.OrgName and space a.SpaceName
// (names or ids); an empty a.OrgName is the space's organization, or
// "default" for a shared space. EUnprocessable for a bad name, an unknown
// org or space, or a space of another organization; EConflict if the name
// is taken in the space.
func (db *DB) CreateApp(ctx context.Context, a *slipway.App) error {
	if err := slipway.ValidateAppName(a.Name); err != nil {
		return err
	}
	space, err := db.FindSpace(ctx, a.SpaceName)
	if err != nil {
		return unprocessableIfNotFound(err)
	}
	orgName := a.OrgName
	if orgName == "" {
		orgName = "default"
		if !space.Shared() {
			orgName = space.OrgID
		}
	}
	org, err := db.FindOrganization(ctx, orgName)
	if err != nil {
		return unprocessableIfNotFound(err)
	}
	// A space's owner never changes, so this check cannot race.
	if !space.VisibleTo(org.ID) {
		return slipway.Errorf(slipway.EUnprocessable, "Space %q belongs to organization %q; create the app in that organization or in a shared space.", space.Name, space.OrgName)
	}
	a.ID = newID()
	a.OrgID, a.OrgName = org.ID, org.Name
	a.SpaceID, a.SpaceName, a.Compliance = space.ID, space.Name, space.Compliance
	a.CreatedAt = db.Now().UTC()
	a.UpdatedAt = a.CreatedAt
	_, err = db.w.ExecContext(ctx, `INSERT INTO apps (id, name, org_id, space_id, description, git_url, git_branch, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)`,
		a.ID, a.Name, a.OrgID, a.SpaceID, a.Description, a.GitURL, a.GitBranch, micros(a.CreatedAt))
	if isUnique(err) {
		// Worded for a shared space too: it says the name is taken, never by whom.
		return slipway.Errorf(slipway.EConflict, "The name %q is taken in space %q; choose another name or another space.", a.Name, a.SpaceName)
	}
	return err
}

func unprocessableIfNotFound(err error) error {
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return slipway.Errorf(slipway.EUnprocessable, "%s", slipway.ErrorMessage(err))
	}
	return err
}

// FindApp finds an app by id, name-space key, or a bare name only one app
// has; ENotFound if none.
func (db *DB) FindApp(ctx context.Context, idOrKey string) (*slipway.App, error) {
	return db.findApp(ctx, db.r, "", idOrKey)
}

// FindAppInOrg is FindApp among the apps of the organization orgID only.
// Its answers say nothing of other organizations' apps: a bare name is
// resolved among this organization's apps, and an app of another
// organization is ENotFound, worded as for an app that does not exist.
func (db *DB) FindAppInOrg(ctx context.Context, orgID, idOrKey string) (*slipway.App, error) {
	if orgID == "" {
		return nil, slipway.Errorf(slipway.ENotFound, "App %q was not found.", idOrKey)
	}
	return db.findApp(ctx, db.r, orgID, idOrKey)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// findApp finds an app by id, key or bare name; with orgID set, among that
// organization's apps only.
func (db *DB) findApp(ctx context.Context, q querier, orgID, idOrKey string) (*slipway.App, error) {
	inOrg, args := "", []any{idOrKey}
	if orgID != "" {
		inOrg, args = ` AND a.org_id = $2`, append(args, orgID)
	}
	var row *sql.Row
	switch {
	case isUUID(idOrKey):
		row = q.QueryRowContext(ctx, `SELECT `+appColumns+appFrom+`WHERE a.id = $1`+inOrg, args...)
	case !strings.Contains(idOrKey, "-"):
		// App names hold no dash, so a dashless string is a bare name:
		// accepted when exactly one space has an app of that name.
		rows, err := q.QueryContext(ctx, `SELECT `+appColumns+appFrom+`WHERE a.name = $1`+inOrg+` LIMIT 2`, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var found []*slipway.App
		for rows.Next() {
			a, err := scanApp(rows)
			if err != nil {
				return nil, err
			}
			found = append(found, a)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		switch len(found) {
		case 1:
			return found[0], nil
		case 0:
			return nil, slipway.Errorf(slipway.ENotFound, "App %q was not found.", slipway.Clip(idOrKey))
		}
		return nil, slipway.Errorf(slipway.ENotFound, "Several spaces have an app named %q; name it as <name>-<space>.", idOrKey)
	default:
		// The key is name-space and spaces may hold dashes, so match the
		// concatenation.
		row = q.QueryRowContext(ctx, `SELECT `+appColumns+appFrom+`WHERE a.name || '-' || s.name = $1`+inOrg, args...)
	}
	a, err := scanApp(row)
	return a, notFound(err, "App %q was not found.", idOrKey)
}

// ListApps lists every app by key.
func (db *DB) ListApps(ctx context.Context) ([]*slipway.App, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+appColumns+appFrom+`ORDER BY a.name, s.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*slipway.App
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// UpdateApp changes the fields of u that are set; ENotFound for an unknown app.
func (db *DB) UpdateApp(ctx context.Context, id string, u slipway.AppUpdate) (*slipway.App, error) {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		a, err := db.findApp(ctx, tx, "", id)
		if err != nil {
			return err
		}
		if u.Description != nil {
			a.Description = *u.Description
		}
		if u.Maintenance != nil {
			a.Maintenance = *u.Maintenance
		}
		if u.AutoRelease != nil {
			a.AutoRelease = *u.AutoRelease
		}
		_, err = tx.ExecContext(ctx, `UPDATE apps SET description = $1, maintenance = $2, auto_release = $3, updated_at = $4 WHERE id = $5`,
			a.Description, boolInt(a.Maintenance), boolInt(a.AutoRelease), micros(db.Now()), a.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return db.FindApp(ctx, id)
}

// DeleteApp deletes the app and every record that belongs to it, but for
// its slugs that releases of other apps use (promotions): those become
// slugs of such an app.
func (db *DB) DeleteApp(ctx context.Context, id string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		app, err := db.findApp(ctx, tx, "", id)
		if err != nil {
			return err
		}
		if err := db.emit(ctx, tx, app, slipway.EventDestroy, nil); err != nil {
			return err
		}
		if err := db.audit(ctx, tx, app, "app.destroy", "deleted "+app.Key()); err != nil {
			return err
		}
		// Slugs promoted to other apps stay, as slugs of an app using them.
		if _, err := tx.ExecContext(ctx, `UPDATE slugs SET app_id = (SELECT r.app_id FROM releases r WHERE r.slug_id = slugs.id AND r.app_id <> $1 ORDER BY r.created_at, r.id LIMIT 1)
			WHERE app_id = $1 AND EXISTS (SELECT 1 FROM releases r WHERE r.slug_id = slugs.id AND r.app_id <> $1)`, app.ID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM apps WHERE id = $1`, app.ID)
		return err
	})
}

// ConfigVars returns the app's config vars.
func (db *DB) ConfigVars(ctx context.Context, appID string) (map[string]string, error) {
	return configVars(ctx, db.r, appID)
}

func configVars(ctx context.Context, q querier, appID string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM config_vars WHERE app_id = $1`, appID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// replaceConfigVars makes the app's config vars exactly cfg.
func replaceConfigVars(ctx context.Context, tx *sql.Tx, appID string, cfg map[string]string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM config_vars WHERE app_id = $1`, appID); err != nil {
		return err
	}
	for k, v := range cfg {
		if _, err := tx.ExecContext(ctx, `INSERT INTO config_vars (app_id, key, value) VALUES ($1, $2, $3)`, appID, k, v); err != nil {
			return err
		}
	}
	return nil
}
