package store

import (
	"context"
	"database/sql"
	"time"
)

// pgNowMicros is PostgreSQL's clock in the store's unit, microseconds
// since the Unix epoch.
const pgNowMicros = `(EXTRACT(EPOCH FROM now()) * 1000000)::BIGINT`

// AcquireLease takes or renews the app's lease for holder until ttl from
// now. It reports false when another holder's lease has not expired.
//
// Now is the database's clock, never the calling server's: on PostgreSQL
// its now(), so servers whose clocks disagree still agree on who holds an
// app; SQLite serves one server, whose clock is the database's. LeaseNow,
// when set, replaces both.
func (db *DB) AcquireLease(ctx context.Context, appID, holder string, ttl time.Duration) (bool, error) {
	var res sql.Result
	var err error
	if db.postgres && db.LeaseNow == nil {
		res, err = db.w.ExecContext(ctx, `INSERT INTO app_leases (app_id, holder, expires_at) VALUES ($1, $2, `+pgNowMicros+` + $3)
			ON CONFLICT (app_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE app_leases.holder = excluded.holder OR app_leases.expires_at < `+pgNowMicros,
			appID, holder, ttl.Microseconds())
	} else {
		now := time.Now()
		if db.LeaseNow != nil {
			now = db.LeaseNow()
		}
		res, err = db.w.ExecContext(ctx, `INSERT INTO app_leases (app_id, holder, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (app_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE app_leases.holder = excluded.holder OR app_leases.expires_at < $4`,
			appID, holder, micros(now.Add(ttl)), micros(now))
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseLease gives the app's lease up if holder has it.
func (db *DB) ReleaseLease(ctx context.Context, appID, holder string) error {
	_, err := db.w.ExecContext(ctx, `DELETE FROM app_leases WHERE app_id = $1 AND holder = $2`, appID, holder)
	return err
}
