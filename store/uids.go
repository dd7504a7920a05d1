package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/slipway/slipway"
)

// AppUID returns the uid the app's dynos run as, allocating the lowest
// free one in [lo, hi] the first time. Two servers allocating at once get
// different uids (the column is unique; the loser tries the next).
// EConflict when every uid of the range is taken.
func (db *DB) AppUID(ctx context.Context, appID string, lo, hi int) (int, error) {
	for range 20 {
		var uid int
		err := db.w.QueryRowContext(ctx, `SELECT uid FROM app_uids WHERE app_id = $1`, appID).Scan(&uid)
		if err == nil {
			return uid, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		// The lowest free uid: lo itself, else the first one after a taken
		// uid that is not taken.
		var next sql.NullInt64
		err = db.w.QueryRowContext(ctx, `SELECT CASE
			WHEN NOT EXISTS (SELECT 1 FROM app_uids WHERE uid = $1) THEN $1
			ELSE (SELECT MIN(u.uid) + 1 FROM app_uids u
				WHERE u.uid >= $1 AND u.uid < $2
				AND NOT EXISTS (SELECT 1 FROM app_uids v WHERE v.uid = u.uid + 1)) END`, lo, hi).Scan(&next)
		if err != nil {
			return 0, err
		}
		if !next.Valid || next.Int64 > int64(hi) {
			return 0, slipway.Errorf(slipway.EConflict, "Every dyno uid from %d to %d is taken; widen --dyno-uid-range.", lo, hi)
		}
		if _, err := db.w.ExecContext(ctx, `INSERT INTO app_uids (app_id, uid) VALUES ($1, $2) ON CONFLICT DO NOTHING`, appID, next.Int64); err != nil {
			return 0, err
		}
	}
	return 0, slipway.Errorf(slipway.EConflict, "Could not allocate a dyno uid for app %s; try again.", appID)
}
