package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/slipway/slipway"
)

// CreateHook creates an app's webhook; EUnprocessable for a bad field.
func (db *DB) CreateHook(ctx context.Context, h *slipway.Hook) error {
	if err := h.Validate(); err != nil {
		return err
	}
	h.ID = newID()
	h.CreatedAt = db.Now().UTC()
	h.UpdatedAt = h.CreatedAt
	events, _ := json.Marshal(h.Events)
	_, err := db.w.ExecContext(ctx, `INSERT INTO hooks (id, app_id, url, events, secret, active, created_by, scoped, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		h.ID, h.AppID, h.URL, string(events), h.Secret, boolInt(h.Active), h.CreatedBy, boolInt(h.Scoped), micros(h.CreatedAt))
	return err
}

const hookColumns = `id, app_id, url, events, secret, active, created_by, scoped, created_at, updated_at`

func scanHook(sc scanner) (*slipway.Hook, error) {
	var h slipway.Hook
	var events string
	var active, scoped int
	var c, u int64
	if err := sc.Scan(&h.ID, &h.AppID, &h.URL, &events, &h.Secret, &active, &h.CreatedBy, &scoped, &c, &u); err != nil {
		return nil, err
	}
	json.Unmarshal([]byte(events), &h.Events)
	h.Active, h.Scoped = active != 0, scoped != 0
	h.CreatedAt, h.UpdatedAt = fromMicros(c), fromMicros(u)
	return &h, nil
}

// ListHooks lists an app's hooks.
func (db *DB) ListHooks(ctx context.Context, appID string) ([]*slipway.Hook, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+hookColumns+` FROM hooks WHERE app_id = $1 ORDER BY created_at`, appID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.Hook{}
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// FindHook finds a hook of the app; ENotFound if none.
func (db *DB) FindHook(ctx context.Context, appID, id string) (*slipway.Hook, error) {
	if !isUUID(id) {
		return nil, slipway.Errorf(slipway.ENotFound, "Hook %q was not found.", slipway.Clip(id))
	}
	h, err := scanHook(db.w.QueryRowContext(ctx, `SELECT `+hookColumns+` FROM hooks WHERE id = $1 AND app_id = $2`, id, appID))
	return h, notFound(err, "Hook %q was not found.", id)
}

// UpdateHook saves a hook's url, events, secret, active and scoped flags.
func (db *DB) UpdateHook(ctx context.Context, h *slipway.Hook) error {
	if err := h.Validate(); err != nil {
		return err
	}
	h.UpdatedAt = db.Now().UTC()
	events, _ := json.Marshal(h.Events)
	_, err := db.w.ExecContext(ctx, `UPDATE hooks SET url = $1, events = $2, secret = $3, active = $4, scoped = $5, updated_at = $6 WHERE id = $7 AND app_id = $8`,
		h.URL, string(events), h.Secret, boolInt(h.Active), boolInt(h.Scoped), micros(h.UpdatedAt), h.ID, h.AppID)
	return err
}

// DeleteHook deletes a hook; its pending deliveries are dropped.
func (db *DB) DeleteHook(ctx context.Context, appID, id string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM hooks WHERE id = $1 AND app_id = $2`, id, appID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return slipway.Errorf(slipway.ENotFound, "Hook %q was not found.", slipway.Clip(id))
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM hook_deliveries WHERE hook_id = $1 AND status = 'pending'`, id)
		return err
	})
}

const hookResultSelect = `SELECT hr.id, hr.hook_id, hr.delivery_id, hr.event, hr.attempt, hr.request_headers, hr.status_code, hr.duration_us, hr.error,
	hr.response_headers, COALESCE(d.d_url, ''), COALESCE(d.d_payload, '{}'), hr.created_at
	FROM hook_results hr LEFT JOIN (SELECT id AS d_id, url AS d_url, payload AS d_payload FROM hook_deliveries) d ON d.d_id = hr.delivery_id `

// scanHookResult reads a row of hookResultSelect. The delivery's URL and
// payload are what was sent; its secret is never read.
func scanHookResult(sc scanner) (*slipway.HookResult, error) {
	var r slipway.HookResult
	var hdr, respHdr, body string
	var dur, c int64
	if err := sc.Scan(&r.ID, &r.HookID, &r.DeliveryID, &r.Event, &r.Attempt, &hdr, &r.StatusCode, &dur, &r.Error, &respHdr, &r.URL, &body, &c); err != nil {
		return nil, err
	}
	json.Unmarshal([]byte(hdr), &r.RequestHeaders)
	json.Unmarshal([]byte(respHdr), &r.ResponseHeaders)
	r.RequestBody = []byte(body)
	r.Duration = time.Duration(dur) * time.Microsecond
	r.CreatedAt = fromMicros(c)
	return &r, nil
}

// ListHookResults lists a hook's delivery attempts by creation time, a
// page at a time.
func (db *DB) ListHookResults(ctx context.Context, hookID string, p slipway.Page) ([]*slipway.HookResult, error) {
	q := hookResultSelect + `WHERE hr.hook_id = $1`
	cond, args, err := createdAtStart(p, 2)
	if err != nil {
		return nil, err
	}
	q += cond + pageOrder("created_at, id", p)
	args = append([]any{hookID}, args...)
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.HookResult{}
	for rows.Next() {
		r, err := scanHookResult(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FindHookResult finds one delivery attempt of a hook; ENotFound if none.
func (db *DB) FindHookResult(ctx context.Context, hookID, id string) (*slipway.HookResult, error) {
	if !isUUID(id) {
		return nil, slipway.Errorf(slipway.ENotFound, "Hook result %q was not found.", slipway.Clip(id))
	}
	r, err := scanHookResult(db.w.QueryRowContext(ctx, hookResultSelect+`WHERE hr.id = $1 AND hr.hook_id = $2`, id, hookID))
	return r, notFound(err, "Hook result %q was not found.", id)
}
