package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"time"

	"github.com/slipway/slipway"
)

// emit writes event to the outbox of every active hook of the app that
// subscribes to it, in the caller's transaction, so an event and its
// deliveries are written together or not at all.
func (db *DB) emit(ctx context.Context, tx *sql.Tx, app *slipway.App, event string, data map[string]any) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, url, secret, events, scoped FROM hooks WHERE app_id = $1 AND active = 1`, app.ID)
	if err != nil {
		return err
	}
	type target struct {
		id, url, secret string
		scoped          int
	}
	var targets []target
	for rows.Next() {
		var t target
		var events string
		if err := rows.Scan(&t.id, &t.url, &t.secret, &events, &t.scoped); err != nil {
			rows.Close()
			return err
		}
		var evs []string
		json.Unmarshal([]byte(events), &evs)
		for _, e := range evs {
			if e == event {
				targets = append(targets, t)
				break
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(targets) == 0 {
		return err
	}
	now := db.Now().UTC()
	payload := map[string]any{
		"action": event, "app": map[string]string{"id": app.ID, "name": app.Name},
		"space": map[string]string{"name": app.SpaceName}, "key": app.Key(),
		"created_at": now.Format("2006-01-02T15:04:05.000Z"),
	}
	for k, v := range data {
		payload[k] = v
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	for _, t := range targets {
		_, err := tx.ExecContext(ctx, `INSERT INTO hook_deliveries (id, hook_id, app_id, event, url, secret, payload, scoped, status, attempts, next_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $9, $9)`, newID(), t.id, app.ID, event, t.url, t.secret, string(body), t.scoped, micros(now))
		if err != nil {
			return err
		}
	}
	return nil
}

// EmitEvent writes an event to the outbox of the app's hooks.
func (db *DB) EmitEvent(ctx context.Context, appID, event string, data map[string]any) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		app, err := db.findApp(ctx, tx, "", appID)
		if err != nil {
			return err
		}
		return db.emit(ctx, tx, app, event, data)
	})
}

func releaseEventData(r *slipway.Release) map[string]any {
	rel := map[string]any{"id": r.ID, "version": r.Version, "description": r.Description, "status": r.Status,
		"trigger": r.Trigger, "slug": map[string]string{"id": r.SlugID}}
	if r.Error != "" {
		rel["error"] = r.Error
	}
	return map[string]any{"release": rel}
}

// ClaimDeliveries takes up to n due deliveries and pushes their next
// attempt lease into the future, so no other server sends them meanwhile.
func (db *DB) ClaimDeliveries(ctx context.Context, n int, lease time.Duration) ([]*slipway.Delivery, error) {
	// Look before taking the write lock: most polls find nothing.
	var due int
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM hook_deliveries WHERE status = 'pending' AND next_at <= $1 LIMIT 1) d`, micros(db.Now())).Scan(&due)
	if err != nil || due == 0 {
		return nil, err
	}
	var out []*slipway.Delivery
	err = db.tx(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		rows, err := tx.QueryContext(ctx, `SELECT id, hook_id, event, url, secret, payload, scoped, attempts, next_at, created_at FROM hook_deliveries
			WHERE status = 'pending' AND next_at <= $1 ORDER BY next_at LIMIT `+strconv.Itoa(n), micros(now))
		if err != nil {
			return err
		}
		type claim struct {
			d    *slipway.Delivery
			next int64
		}
		var claims []claim
		for rows.Next() {
			var d slipway.Delivery
			var payload string
			var scoped int
			var next, c int64
			if err := rows.Scan(&d.ID, &d.HookID, &d.Event, &d.URL, &d.Secret, &payload, &scoped, &d.Attempts, &next, &c); err != nil {
				rows.Close()
				return err
			}
			d.Payload, d.Scoped = []byte(payload), scoped != 0
			d.CreatedAt = fromMicros(c)
			claims = append(claims, claim{&d, next})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range claims {
			res, err := tx.ExecContext(ctx, `UPDATE hook_deliveries SET next_at = $1 WHERE id = $2 AND next_at = $3 AND status = 'pending'`,
				micros(now.Add(lease)), c.d.ID, c.next)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k == 1 {
				out = append(out, c.d)
			}
		}
		return nil
	})
	return out, err
}

// RecordAttempt saves an attempt and ends or reschedules the delivery.
func (db *DB) RecordAttempt(ctx context.Context, d *slipway.Delivery, r *slipway.HookResult, done bool, retryAt time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		hdr, _ := json.Marshal(r.RequestHeaders)
		respHdr, _ := json.Marshal(r.ResponseHeaders)
		if r.ResponseHeaders == nil {
			respHdr = []byte("{}")
		}
		now := micros(db.Now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO hook_results (id, hook_id, delivery_id, event, attempt, request_headers, status_code, duration_us, error, response_headers, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, newID(), d.HookID, d.ID, d.Event, r.Attempt, string(hdr), r.StatusCode, r.Duration.Microseconds(), r.Error, string(respHdr), now); err != nil {
			return err
		}
		status, next := "pending", micros(retryAt)
		switch {
		case done:
			status = "delivered"
		case retryAt.IsZero():
			status = "failed"
		}
		_, err := tx.ExecContext(ctx, `UPDATE hook_deliveries SET status = $1, attempts = $2, next_at = $3, updated_at = $4 WHERE id = $5`, status, r.Attempt, next, now, d.ID)
		return err
	})
}
