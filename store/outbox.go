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
	targets, err := hookTargets(ctx, tx, app.ID, event)
	if err != nil || len(targets) == 0 {
		return err
	}
	return db.emitTo(ctx, tx, app, event, data, targets)
}

// hookTarget is an active hook of an app that takes an event.
type hookTarget struct {
	id, url, secret string
	scoped          int
}

// hookTargets lists the app's active hooks that take event.
func hookTargets(ctx context.Context, tx *sql.Tx, appID, event string) ([]hookTarget, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, url, secret, events, scoped FROM hooks WHERE app_id = $1 AND active = 1`, appID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var targets []hookTarget
	for rows.Next() {
		var t hookTarget
		var events string
		if err := rows.Scan(&t.id, &t.url, &t.secret, &events, &t.scoped); err != nil {
			return nil, err
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
	return targets, rows.Err()
}

// emitTo writes the event's payload to the outbox of each target.
func (db *DB) emitTo(ctx context.Context, tx *sql.Tx, app *slipway.App, event string, data map[string]any, targets []hookTarget) error {
	now := db.Now().UTC()
	// Webhook-Event-Payloads.md: every payload names the app by its bare
	// name and its space, and its action is the event; data cannot
	// override those.
	payload := map[string]any{}
	for k, v := range data {
		payload[k] = v
	}
	payload["action"] = event
	payload["app"] = map[string]string{"id": app.ID, "name": app.Name}
	payload["space"] = map[string]string{"name": app.SpaceName}
	payload["key"] = app.Key()
	payload["created_at"] = payloadTime(now)
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

// payloadTime is a time as payloads carry it, as the API writes times.
func payloadTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// buildEventData is a build as the build, release and released payloads
// carry it (Webhook-Event-Payloads.md): result is its status.
func buildEventData(b *slipway.Build) map[string]any {
	return map[string]any{"id": b.ID, "result": b.Status, "status": b.Status, "created_at": payloadTime(b.CreatedAt),
		"repo": b.Repo, "branch": b.Branch, "commit": b.SHA}
}

// findBuildTx reads a build by id in tx; ENotFound if none.
func findBuildTx(ctx context.Context, q querier, id string) (*slipway.Build, error) {
	b, err := scanBuild(q.QueryRowContext(ctx, `SELECT `+buildColumns+` FROM builds WHERE id = $1`, id))
	return b, notFound(err, "Build %q was not found.", id)
}

// releaseEventData is the release and the build of its slug, as the
// release, release_failed and release_* payloads carry them: result is
// the release's status at the time of the event.
func releaseEventData(ctx context.Context, q querier, r *slipway.Release) (map[string]any, error) {
	rel := map[string]any{"id": r.ID, "result": r.Status, "created_at": payloadTime(r.CreatedAt), "version": r.Version,
		"description": r.Description, "status": r.Status, "trigger": r.Trigger, "slug": map[string]string{"id": r.SlugID}}
	if r.Error != "" {
		rel["error"] = r.Error
	}
	if r.Status == slipway.ReleaseFailed || r.Status == slipway.ReleaseUnknown {
		rel["failure"] = r.Failure // null when the release failed before failures were recorded
	}
	build := map[string]any{"id": r.SlugID} // a slug's id is its build's
	b, err := findBuildTx(ctx, q, r.SlugID)
	switch {
	case err == nil:
		build = buildEventData(b)
	case slipway.ErrorCode(err) != slipway.ENotFound:
		return nil, err
	}
	return map[string]any{"release": rel, "build": build}, nil
}

// EmitReleased sends released for a process type of a release that is
// fully rolled out, with the release and its slug (the build's source)
// as Webhook-Event-Payloads.md shows them. ENotFound for an unknown
// release.
func (db *DB) EmitReleased(ctx context.Context, releaseID, process string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		r, err := db.findRelease(ctx, tx, "r.id = $1", releaseID)
		if err != nil {
			return err
		}
		app, err := db.findApp(ctx, tx, "", r.AppID)
		if err != nil {
			return err
		}
		slug := map[string]any{"id": r.SlugID, "image": "", "source_blob": map[string]any{}}
		if b, err := findBuildTx(ctx, tx, r.SlugID); err == nil {
			slug["source_blob"] = map[string]any{"checksum": b.Checksum, "url": b.SourceURL, "version": b.Version, "commit": b.SHA,
				"author": b.Author, "repo": b.Repo, "branch": b.Branch, "message": b.Message}
		} else if slipway.ErrorCode(err) != slipway.ENotFound {
			return err
		}
		if sl, err := findSlug(ctx, tx, r.SlugID); err == nil {
			slug["image"] = sl.Image
		} else if slipway.ErrorCode(err) != slipway.ENotFound {
			return err
		}
		return db.emit(ctx, tx, app, slipway.EventReleased, map[string]any{
			"dyno":    map[string]string{"type": process},
			"process": process,
			"release": map[string]any{"id": r.ID, "created_at": payloadTime(r.CreatedAt), "updated_at": payloadTime(r.UpdatedAt),
				"version": r.Version, "description": r.Description, "trigger": r.Trigger, "slug": map[string]string{"id": r.SlugID}},
			"slug":        slug,
			"released_at": payloadTime(db.Now()),
		})
	})
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

// ReleaseDelivery makes a claimed, pending delivery due now. See
// slipway.Store.
func (db *DB) ReleaseDelivery(ctx context.Context, id string) error {
	_, err := db.w.ExecContext(ctx, `UPDATE hook_deliveries SET next_at = $1 WHERE id = $2 AND status = 'pending'`, micros(db.Now()), id)
	return err
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
