package store

import (
	"context"
	"database/sql"
	"strconv"

	"github.com/slipway/slipway"
)

// audit records who did what to the app, in the caller's transaction.
func (db *DB) audit(ctx context.Context, tx *sql.Tx, app *slipway.App, action, detail string) error {
	a := slipway.ActorFrom(ctx)
	_, err := tx.ExecContext(ctx, `INSERT INTO audits (id, app_id, app_key, action, detail, user_id, user_email, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		newID(), app.ID, app.Key(), action, detail, a.ID, a.Email, micros(db.Now()))
	return err
}

// ListAudits lists the app's audit trail, newest first.
func (db *DB) ListAudits(ctx context.Context, appKey string, limit int) ([]*slipway.Audit, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.r.QueryContext(ctx, `SELECT id, app_id, app_key, action, detail, user_id, user_email, created_at FROM audits
		WHERE ($1 = '' OR app_key = $1 OR app_id = $1) ORDER BY seq DESC LIMIT `+strconv.Itoa(limit), appKey)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.Audit{}
	for rows.Next() {
		var a slipway.Audit
		var c int64
		if err := rows.Scan(&a.ID, &a.AppID, &a.AppKey, &a.Action, &a.Detail, &a.UserID, &a.UserEmail, &c); err != nil {
			return nil, err
		}
		a.CreatedAt = fromMicros(c)
		out = append(out, &a)
	}
	return out, rows.Err()
}
