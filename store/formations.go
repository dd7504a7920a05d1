package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/slipway/slipway"
)

const formationColumns = `app_id, type, quantity, size, port, command, healthcheck, created_at, updated_at`

func scanFormation(sc scanner) (*slipway.Formation, error) {
	var f slipway.Formation
	var c, u int64
	if err := sc.Scan(&f.AppID, &f.Type, &f.Quantity, &f.Size, &f.Port, &f.Command, &f.Healthcheck, &c, &u); err != nil {
		return nil, err
	}
	f.CreatedAt, f.UpdatedAt = fromMicros(c), fromMicros(u)
	return &f, nil
}

// ListFormations lists the app's formations by type.
func (db *DB) ListFormations(ctx context.Context, appID string) ([]*slipway.Formation, error) {
	return listFormations(ctx, db.r, appID)
}

func listFormations(ctx context.Context, q querier, appID string) ([]*slipway.Formation, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+formationColumns+` FROM formations WHERE app_id = $1 ORDER BY type`, appID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.Formation{}
	for rows.Next() {
		f, err := scanFormation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// UpsertFormations creates or changes the app's formations in one
// transaction; EUnprocessable for an invalid change or one past a limit
// (see slipway.DynoLimits; nothing is written).
func (db *DB) UpsertFormations(ctx context.Context, appID string, changes []slipway.FormationChange) ([]*slipway.Formation, error) {
	for _, c := range changes {
		if err := c.Validate(); err != nil {
			return nil, err
		}
	}
	var out []*slipway.Formation
	err := db.tx(ctx, func(tx *sql.Tx) error {
		app, before, err := db.lockFormationUse(ctx, tx, appID)
		if err != nil {
			return err
		}
		now := micros(db.Now())
		change := "update"
		for _, c := range changes {
			f, err := scanFormation(tx.QueryRowContext(ctx, `SELECT `+formationColumns+` FROM formations WHERE app_id = $1 AND type = $2`, appID, c.Type))
			if err == sql.ErrNoRows {
				change = "create"
				f = &slipway.Formation{AppID: appID, Type: c.Type, Size: slipway.DefaultSize}
				if _, err := tx.ExecContext(ctx, `INSERT INTO formations (app_id, type, quantity, created_at, updated_at) VALUES ($1, $2, 0, $3, $3)`, appID, c.Type, now); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
			c.ApplyTo(f)
			_, err = tx.ExecContext(ctx, `UPDATE formations SET quantity = $1, size = $2, port = $3, command = $4, healthcheck = $5, updated_at = $6 WHERE app_id = $7 AND type = $8`,
				f.Quantity, f.Size, f.Port, f.Command, f.Healthcheck, now, appID, c.Type)
			if err != nil {
				return err
			}
		}
		if err := db.checkFormationUse(ctx, tx, app, before); err != nil {
			return err
		}
		if out, err = listFormations(ctx, tx, appID); err != nil {
			return err
		}
		changed := map[string]bool{}
		for _, c := range changes {
			changed[c.Type] = true
		}
		var fs []*slipway.Formation
		for _, f := range out {
			if changed[f.Type] {
				fs = append(fs, f)
			}
		}
		return db.formationChanged(ctx, tx, appID, out, change, fs)
	})
	return out, err
}

// lockFormationUse finds the app, locks its organization's row, so that
// changes to the formations of one organization's apps are checked against
// the limits one at a time (PostgreSQL; SQLite has one writer anyway), and
// returns what the app and the organization use now.
func (db *DB) lockFormationUse(ctx context.Context, tx *sql.Tx, appID string) (*slipway.App, slipway.FormationUse, error) {
	app, err := db.findApp(ctx, tx, "", appID)
	if err != nil {
		return nil, slipway.FormationUse{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE organizations SET updated_at = updated_at WHERE id = $1`, app.OrgID); err != nil {
		return nil, slipway.FormationUse{}, err
	}
	use, err := formationUse(ctx, tx, app)
	return app, use, err
}

func formationUse(ctx context.Context, tx *sql.Tx, app *slipway.App) (slipway.FormationUse, error) {
	var u slipway.FormationUse
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(quantity), 0) FROM formations WHERE app_id = $1`, app.ID).Scan(&u.Types, &u.AppDynos)
	if err != nil {
		return u, err
	}
	err = tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(f.quantity), 0) FROM formations f JOIN apps a ON a.id = f.app_id WHERE a.org_id = $1`, app.OrgID).Scan(&u.OrgDynos)
	return u, err
}

// checkFormationUse refuses (EUnprocessable, and the transaction rolls
// back) a change that took the app or its organization past a limit.
func (db *DB) checkFormationUse(ctx context.Context, tx *sql.Tx, app *slipway.App, before slipway.FormationUse) error {
	after, err := formationUse(ctx, tx, app)
	if err != nil {
		return err
	}
	return db.Limits.CheckGrowth(before, after, app.Key(), app.OrgName)
}

// formationChanged emits formation_change with the app's formations fs
// and, as Webhook-Event-Payloads.md has it, the change (create, update
// or delete) and the formations it changed, and audits it.
func (db *DB) formationChanged(ctx context.Context, tx *sql.Tx, appID string, fs []*slipway.Formation, change string, changed []*slipway.Formation) error {
	app, err := db.findApp(ctx, tx, "", appID)
	if err != nil {
		return err
	}
	var desc []string
	list := make([]map[string]any, 0, len(fs))
	for _, f := range fs {
		desc = append(desc, fmt.Sprintf("%s=%d", f.Type, f.Quantity))
		list = append(list, map[string]any{"type": f.Type, "quantity": f.Quantity, "size": f.Size, "command": f.Command, "healthcheck": f.Healthcheck})
	}
	changes := make([]map[string]any, 0, len(changed))
	for _, f := range changed {
		changes = append(changes, map[string]any{"type": f.Type, "quantity": f.Quantity, "size": f.Size, "port": f.Port, "command": f.Command, "healthcheck": f.Healthcheck})
	}
	if err := db.emit(ctx, tx, app, slipway.EventFormationChange, map[string]any{"formation": list, "change": change, "changes": changes}); err != nil {
		return err
	}
	return db.audit(ctx, tx, app, "formation.change", strings.Join(desc, " "))
}

// DeleteFormation removes a formation; ENotFound if the app has none of that type.
func (db *DB) DeleteFormation(ctx context.Context, appID, typ string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		gone, err := scanFormation(tx.QueryRowContext(ctx, `SELECT `+formationColumns+` FROM formations WHERE app_id = $1 AND type = $2`, appID, typ))
		if err == sql.ErrNoRows {
			return slipway.Errorf(slipway.ENotFound, "The app has no %q formation.", slipway.Clip(typ))
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM formations WHERE app_id = $1 AND type = $2`, appID, typ); err != nil {
			return err
		}
		fs, err := listFormations(ctx, tx, appID)
		if err != nil {
			return err
		}
		return db.formationChanged(ctx, tx, appID, fs, "delete", []*slipway.Formation{gone})
	})
}

// EnsureFormations gives an app with no formation web×1 and every other
// process type ×0; an app with formations gets the missing types at 0.
// EUnprocessable when that takes the app or its organization past a limit.
func (db *DB) EnsureFormations(ctx context.Context, appID string, processTypes []string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		app, before, err := db.lockFormationUse(ctx, tx, appID)
		if err != nil {
			return err
		}
		n := before.Types
		now := micros(db.Now())
		for _, t := range processTypes {
			if t == "release" {
				continue
			}
			q := 0
			if n == 0 && t == "web" {
				q = 1
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO formations (app_id, type, quantity, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (app_id, type) DO NOTHING`,
				appID, t, q, now); err != nil {
				return err
			}
		}
		return db.checkFormationUse(ctx, tx, app, before)
	})
}
