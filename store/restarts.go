package store

import (
	"context"
	"database/sql"

	"github.com/slipway/slipway"
)

// QueueRestart queues a restart of the app's dynos (dyno "" for all of
// them); ENotFound for an unknown app.
func (db *DB) QueueRestart(ctx context.Context, appID, dyno string) (*slipway.Restart, error) {
	r := &slipway.Restart{ID: newID(), AppID: appID, Dyno: dyno, CreatedAt: db.Now().UTC()}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM apps WHERE id = $1`, appID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return slipway.Errorf(slipway.ENotFound, "App %q was not found.", slipway.Clip(appID))
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO app_restarts (id, app_id, dyno, created_at) VALUES ($1, $2, $3, $4)`,
			r.ID, appID, dyno, micros(r.CreatedAt))
		return err
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// NextRestart returns the app's oldest queued restart; ENotFound if none.
func (db *DB) NextRestart(ctx context.Context, appID string) (*slipway.Restart, error) {
	r := slipway.Restart{AppID: appID}
	var c int64
	err := db.w.QueryRowContext(ctx, `SELECT id, dyno, created_at FROM app_restarts WHERE app_id = $1 ORDER BY created_at, id LIMIT 1`, appID).
		Scan(&r.ID, &r.Dyno, &c)
	if err == sql.ErrNoRows {
		return nil, slipway.Errorf(slipway.ENotFound, "The app has no restart waiting.")
	}
	if err != nil {
		return nil, err
	}
	r.CreatedAt = fromMicros(c)
	return &r, nil
}

// FinishRestart takes a restart off the queue, carried out or given up.
func (db *DB) FinishRestart(ctx context.Context, id string) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM app_restarts WHERE id = $1`, id)
	return err
}
