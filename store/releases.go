package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slipway/slipway"
)

// releaseSelect reads a release with its combined check state (as a rank,
// see stateRanks) and whether it is the app's current release. Both are
// derived in SQL, per row, from indexed lookups, so listing stays one query.
const releaseSelect = `SELECT r.id, r.app_id, a.name, (SELECT a.name || '-' || sp.name FROM spaces sp WHERE sp.id = a.space_id),
	r.version, r.slug_id, r.config, ` + releaseTail

const releaseTail = `r.description, r.status,
	r.trigger_kind, r.user_id, r.user_email, r.error, r.failure, r.strategy, r.created_at, r.updated_at,
	COALESCE((SELECT MAX(CASE s.state WHEN 'error' THEN 3 WHEN 'failure' THEN 2 WHEN 'pending' THEN 1 ELSE 0 END)
		FROM release_statuses s WHERE s.release_id = r.id), 0),
	CASE WHEN a.current_release_id = r.id THEN 1 ELSE 0 END
	FROM releases r JOIN apps a ON a.id = r.app_id `

var stateRanks = [...]string{slipway.StateSuccess, slipway.StatePending, slipway.StateFailure, slipway.StateError}

func scanRelease(sc scanner) (*slipway.Release, error) {
	var r slipway.Release
	var cfg []byte
	var strategy, failure string
	var c, u int64
	var rank, current int
	if err := sc.Scan(&r.ID, &r.AppID, &r.AppName, &r.AppKey, &r.Version, &r.SlugID, &cfg, &r.Description, &r.Status,
		&r.Trigger, &r.UserID, &r.UserEmail, &r.Error, &failure, &strategy, &c, &u, &rank, &current); err != nil {
		return nil, err
	}
	if err := readFailure(failure, &r.Failure); err != nil {
		return nil, err
	}
	if err := readStrategy(strategy, &r.Strategy); err != nil {
		return nil, err
	}
	if len(cfg) > 2 {
		if err := json.Unmarshal(cfg, &r.Config); err != nil {
			return nil, err
		}
	}
	r.CreatedAt, r.UpdatedAt = fromMicros(c), fromMicros(u)
	r.State = stateRanks[rank]
	r.Current = current == 1
	return &r, nil
}

// CreateRelease validates the request, assigns the app's next version and
// queues the release, all in one transaction. See slipway.Store.
func (db *DB) CreateRelease(ctx context.Context, nr slipway.NewRelease) (*slipway.Release, error) {
	var id string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.createRelease(ctx, tx, nr)
		return err
	})
	if err != nil || id == "" {
		return nil, err
	}
	return db.findRelease(ctx, db.w, "r.id = $1", id)
}

func (db *DB) createRelease(ctx context.Context, tx *sql.Tx, nr slipway.NewRelease) (string, error) {
	app, err := db.findApp(ctx, tx, "", nr.AppID)
	if err != nil {
		return "", err
	}
	// Lock the app's row first: releases of one app are then created one
	// at a time, so a config change reads the config vars the previous one
	// wrote (PostgreSQL reads committed data per statement; SQLite has one
	// writer anyway).
	if _, err := tx.ExecContext(ctx, `UPDATE apps SET release_seq = release_seq WHERE id = $1`, app.ID); err != nil {
		return "", err
	}
	var slugID, desc, rollbackOf string
	var cfg map[string]string
	switch {
	case nr.ConfigChange != nil:
		before, err := configVars(ctx, tx, app.ID)
		if err != nil {
			return "", err
		}
		if cfg, err = applyConfigChange(ctx, tx, app.ID, nr.ConfigChange); err != nil {
			return "", err
		}
		desc = configDescription(nr.ConfigChange)
		if err := db.emit(ctx, tx, app, slipway.EventConfigChange, map[string]any{"changes": configChanges(before, nr.ConfigChange)}); err != nil {
			return "", err
		}
		if err := db.audit(ctx, tx, app, "config.change", desc); err != nil {
			return "", err
		}
		// The new config goes with the code the app is heading for: the
		// slug of its newest release that has not failed (queued, pending
		// or current), so a waiting deploy is not undone.
		latest, err := db.findRelease(ctx, tx, "r.app_id = $1 AND r.status <> 'failed' ORDER BY r.version DESC LIMIT 1", app.ID)
		if slipway.ErrorCode(err) == slipway.ENotFound {
			return "", nil // nothing released yet: the first release takes the config vars
		}
		if err != nil {
			return "", err
		}
		slugID = latest.SlugID
	case nr.RollbackTo != "":
		target, err := db.findReleaseOf(ctx, tx, app.ID, nr.RollbackTo)
		if err != nil {
			return "", err
		}
		if !slipway.ReleaseTerminal(target.Status) {
			return "", slipway.Errorf(slipway.EConflict, "Release v%d is still %s; roll back to a release that has finished.", target.Version, target.Status)
		}
		slugID, cfg, rollbackOf = target.SlugID, target.Config, target.ID
		if err := replaceConfigVars(ctx, tx, app.ID, cfg); err != nil {
			return "", err
		}
		desc = "Rollback to v" + strconv.Itoa(target.Version)
	case nr.Promotion:
		// The slug is a build of the pipeline's source app.
		if _, err := findSlug(ctx, tx, nr.SlugID); err != nil {
			return "", err
		}
		slugID = nr.SlugID
	default:
		if err := downstreamCheck(ctx, tx, app); err != nil {
			return "", err
		}
		if slugID, err = db.releasableSlug(ctx, tx, app.ID, nr.SlugID); err != nil {
			return "", err
		}
		desc = "Deploy " + slugID
	}
	if nr.Config != nil {
		cfg = nr.Config
	}
	if cfg == nil {
		if cfg, err = configVars(ctx, tx, app.ID); err != nil {
			return "", err
		}
	}
	if nr.Description != "" {
		desc = nr.Description
	}
	var version int
	if err := tx.QueryRowContext(ctx, `UPDATE apps SET release_seq = release_seq + 1 WHERE id = $1 RETURNING release_seq`, app.ID).Scan(&version); err != nil {
		return "", err
	}
	cfgJSON, _ := json.Marshal(cfg)
	strategy, err := releaseStrategy(ctx, tx, app.ID, nr.Trigger)
	if err != nil {
		return "", err
	}
	formation, err := formationRecordOf(ctx, tx, app.ID)
	if err != nil {
		return "", err
	}
	id := newID()
	now := micros(db.Now())
	_, err = tx.ExecContext(ctx, `INSERT INTO releases (id, app_id, version, slug_id, config, description, status, trigger_kind, user_id, user_email, strategy, formation, rollback_of, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)`,
		id, app.ID, version, slugID, string(cfgJSON), desc, slipway.ReleaseQueued, nr.Trigger, nr.UserID, nr.UserEmail, strategy, formation, rollbackOf, now)
	if err != nil {
		return "", err
	}
	// The release event's payload is read only for the hooks that take it.
	targets, err := hookTargets(ctx, tx, app.ID, slipway.EventRelease)
	if err != nil {
		return "", err
	}
	if len(targets) > 0 {
		r := &slipway.Release{ID: id, Version: version, SlugID: slugID, Description: desc, Status: slipway.ReleaseQueued, Trigger: nr.Trigger,
			CreatedAt: fromMicros(now), UpdatedAt: fromMicros(now)}
		data, err := releaseEventData(ctx, tx, r)
		if err != nil {
			return "", err
		}
		// What changed, in one line (config keys, never values).
		if rel, ok := data["release"].(map[string]any); ok {
			if rel["diff_summary"], err = db.diffSummary(ctx, tx, app.ID, id); err != nil {
				return "", err
			}
		}
		if err := db.emitTo(ctx, tx, app, slipway.EventRelease, data, targets); err != nil {
			return "", err
		}
	}
	return id, db.audit(ctx, tx, app, "release."+nr.Trigger, fmt.Sprintf("v%d: %s", version, desc))
}

// configChanges lists what a change does to each key, as config_change
// payloads carry it ({type: create|update|delete, name}), by name; never
// a value. Unsetting a key that is not set changes nothing.
func configChanges(before map[string]string, change map[string]*string) []map[string]string {
	keys := make([]string, 0, len(change))
	for k := range change {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []map[string]string{}
	for _, k := range keys {
		_, had := before[k]
		switch {
		case change[k] == nil && had:
			out = append(out, map[string]string{"type": "delete", "name": k})
		case change[k] != nil && had:
			out = append(out, map[string]string{"type": "update", "name": k})
		case change[k] != nil:
			out = append(out, map[string]string{"type": "create", "name": k})
		}
	}
	return out
}

// releasableSlug resolves a slug request to the id of a succeeded build of
// the app: EUnprocessable for a malformed id, EConflict for anything else.
func (db *DB) releasableSlug(ctx context.Context, tx *sql.Tx, appID, slug string) (string, error) {
	if slug == "latest" {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM builds WHERE app_id = $1 AND status = $2 ORDER BY created_at DESC, id DESC LIMIT 1`, appID, slipway.BuildSucceeded).Scan(&id)
		if err == sql.ErrNoRows {
			return "", slipway.Errorf(slipway.EConflict, "The app has no succeeded build to release; push a build first.")
		}
		if err != nil {
			return "", err
		}
		return id, keepSlug(ctx, tx, id)
	}
	if !isUUID(slug) {
		return "", slipway.Errorf(slipway.EUnprocessable, "slug must be a build id (a UUID) or \"latest\", not %q.", slipway.Clip(slug))
	}
	var status string
	err := tx.QueryRowContext(ctx, `SELECT status FROM builds WHERE id = $1 AND app_id = $2`, slug, appID).Scan(&status)
	if err == sql.ErrNoRows {
		return "", slipway.Errorf(slipway.EConflict, "Build %s does not exist on this app; push a build and release its id.", slug)
	}
	if err != nil {
		return "", err
	}
	if status != slipway.BuildSucceeded {
		return "", slipway.Errorf(slipway.EConflict, "Build %s is %s, not succeeded; release it once it has succeeded.", slug, status)
	}
	return slug, keepSlug(ctx, tx, slug)
}

// keepSlug locks the slug a new release will refer to, so garbage
// collection, which takes the same lock, sees the release or has already
// deleted the slug (then EConflict).
func keepSlug(ctx context.Context, tx *sql.Tx, id string) error {
	err := lockSlug(ctx, tx, id)
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return slipway.Errorf(slipway.EConflict, "The slug of build %s was garbage-collected (an app keeps the slugs its releases use and those of its newest builds); push the build again.", id)
	}
	return err
}

func applyConfigChange(ctx context.Context, tx *sql.Tx, appID string, change map[string]*string) (map[string]string, error) {
	keys := make([]string, 0, len(change))
	for k := range change {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the first bad key named is the same every time
	var set []string
	for _, k := range keys {
		if err := slipway.ValidateConfigKey(k); err != nil {
			return nil, err
		}
		if v := change[k]; v != nil {
			if err := slipway.ValidateConfigValue(k, *v); err != nil {
				return nil, err
			}
			set = append(set, k)
		}
	}
	before, err := configVars(ctx, tx, appID)
	if err != nil {
		return nil, err
	}
	cfg := maps.Clone(before)
	for k, v := range change {
		if v == nil {
			delete(cfg, k)
		} else {
			cfg[k] = *v
		}
	}
	if err := slipway.ValidateConfigTotal(before, cfg, set); err != nil {
		return nil, err
	}
	return cfg, replaceConfigVars(ctx, tx, appID, cfg)
}

func configDescription(change map[string]*string) string {
	var set, unset []string
	for k, v := range change {
		if v == nil {
			unset = append(unset, k)
		} else {
			set = append(set, k)
		}
	}
	sort.Strings(set)
	sort.Strings(unset)
	var parts []string
	if len(set) > 0 {
		parts = append(parts, "Set "+strings.Join(set, ", "))
	}
	if len(unset) > 0 {
		parts = append(parts, "Unset "+strings.Join(unset, ", "))
	}
	return strings.Join(parts, " and ") + " config vars"
}

func (db *DB) findRelease(ctx context.Context, q querier, where string, args ...any) (*slipway.Release, error) {
	r, err := scanRelease(q.QueryRowContext(ctx, releaseSelect+"WHERE "+where, args...))
	return r, notFound(err, "Release was not found.")
}

// findReleaseOf finds a release of the app by id or "vN"; ENotFound if none.
func (db *DB) findReleaseOf(ctx context.Context, q querier, appID, idOrVersion string) (*slipway.Release, error) {
	var r *slipway.Release
	var err error
	switch {
	case isUUID(idOrVersion):
		r, err = db.findRelease(ctx, q, "r.id = $1 AND r.app_id = $2", idOrVersion, appID)
	case len(idOrVersion) > 1 && (idOrVersion[0] == 'v' || idOrVersion[0] == 'V'):
		v, perr := strconv.Atoi(idOrVersion[1:])
		if perr != nil {
			return nil, slipway.Errorf(slipway.ENotFound, "Release %q was not found on this app.", slipway.Clip(idOrVersion))
		}
		r, err = db.findRelease(ctx, q, "r.version = $1 AND r.app_id = $2", v, appID)
	default:
		return nil, slipway.Errorf(slipway.ENotFound, "Release %q was not found on this app.", slipway.Clip(idOrVersion))
	}
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return nil, slipway.Errorf(slipway.ENotFound, "Release %q was not found on this app.", slipway.Clip(idOrVersion))
	}
	return r, err
}

// FindRelease finds a release of the app by id or "vN"; ENotFound if none.
func (db *DB) FindRelease(ctx context.Context, appID, idOrVersion string) (*slipway.Release, error) {
	return db.findReleaseOf(ctx, db.r, appID, idOrVersion)
}

// ListReleases streams the app's releases in version order. It reads the
// releases with one plain index range scan, and their check states and the
// current marker with one query each beforehand, instead of a join and a
// subquery per row: listing is the hot read of the API.
func (db *DB) ListReleases(ctx context.Context, appID string, p slipway.Page, fn func(*slipway.Release) error) error {
	var appName, appKey string
	var current sql.NullString
	var seq int
	err := db.r.QueryRowContext(ctx, `SELECT a.name, a.name || '-' || s.name, a.current_release_id, a.release_seq
		FROM apps a JOIN spaces s ON s.id = a.space_id WHERE a.id = $1`, appID).Scan(&appName, &appKey, &current, &seq)
	if err != nil {
		return notFound(err, "App %q was not found.", appID)
	}
	q := `SELECT id, version, slug_id, description, status, trigger_kind, user_id, user_email, error, failure, strategy, created_at, updated_at FROM releases WHERE app_id = $1`
	args := []any{appID}
	// Versions are contiguous (1..seq), so a page's versions are known
	// before it is read: lo..hi bounds the check states to fetch.
	lo, hi := 1, seq
	if p.Start != "" {
		v, err := strconv.Atoi(p.Start)
		if err != nil {
			return slipway.Errorf(slipway.EInvalid, "Range start %q is not a version number.", slipway.Clip(p.Start))
		}
		q += " AND version " + pageOp(p) + " $2"
		args = append(args, v)
		switch {
		case p.Desc && p.StartExclusive:
			hi = v - 1
		case p.Desc:
			hi = v
		case p.StartExclusive:
			lo = v + 1
		default:
			lo = v
		}
	}
	if p.Max > 0 {
		if p.Desc {
			lo = max(lo, hi-p.Max+1)
		} else {
			hi = min(hi, lo+p.Max-1)
		}
	}
	q += pageOrder("version", p)
	states, err := db.checkStates(ctx, appID, lo, hi)
	if err != nil {
		return err
	}
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r := slipway.Release{AppID: appID, AppName: appName, AppKey: appKey}
		var c, u int64
		var strategy, failure string
		if err := rows.Scan(&r.ID, &r.Version, &r.SlugID, &r.Description, &r.Status, &r.Trigger, &r.UserID, &r.UserEmail, &r.Error, &failure, &strategy, &c, &u); err != nil {
			return err
		}
		if err := readFailure(failure, &r.Failure); err != nil {
			return err
		}
		if err := readStrategy(strategy, &r.Strategy); err != nil {
			return err
		}
		r.CreatedAt, r.UpdatedAt = fromMicros(c), fromMicros(u)
		r.State = stateRanks[states[r.ID]]
		r.Current = current.Valid && current.String == r.ID
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// checkStates returns the combined check state (as a rank into stateRanks)
// of the app's releases lo..hi that have checks.
func (db *DB) checkStates(ctx context.Context, appID string, lo, hi int) (map[string]int, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT s.release_id, MAX(CASE s.state WHEN 'error' THEN 3 WHEN 'failure' THEN 2 WHEN 'pending' THEN 1 ELSE 0 END)
		FROM release_statuses s JOIN releases r ON r.id = s.release_id
		WHERE r.app_id = $1 AND r.version BETWEEN $2 AND $3 GROUP BY s.release_id`, appID, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var rank int
		if err := rows.Scan(&id, &rank); err != nil {
			return nil, err
		}
		out[id] = rank
	}
	return out, rows.Err()
}

// CurrentRelease returns the app's current release; ENotFound if none.
func (db *DB) CurrentRelease(ctx context.Context, appID string) (*slipway.Release, error) {
	r, err := db.findRelease(ctx, db.r, "r.id = a.current_release_id AND a.id = $1", appID)
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return nil, slipway.Errorf(slipway.ENotFound, "The app has no current release.")
	}
	return r, err
}

// NextRelease returns the app's lowest-version unfinished release; ENotFound if none.
func (db *DB) NextRelease(ctx context.Context, appID string) (*slipway.Release, error) {
	r, err := db.findRelease(ctx, db.w, "r.app_id = $1 AND r.status IN ('queued', 'pending') ORDER BY r.version LIMIT 1", appID)
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return nil, slipway.Errorf(slipway.ENotFound, "The app has no release waiting.")
	}
	return r, err
}

// AppsWithWork lists apps with a queued or pending release or a queued
// restart.
func (db *DB) AppsWithWork(ctx context.Context) ([]string, error) {
	return db.appIDs(ctx, `SELECT app_id FROM releases WHERE status IN ('queued', 'pending') UNION SELECT app_id FROM app_restarts
		UNION SELECT app_id FROM rollouts WHERE scale_down_at IS NOT NULL`)
}

// AppsToWork is AppsWithWork less the apps leased to another holder
// until later than now (the database's clock on PostgreSQL, as in
// AcquireLease).
func (db *DB) AppsToWork(ctx context.Context, holder string) ([]string, error) {
	now := pgNowMicros
	args := []any{holder}
	if !db.postgres || db.LeaseNow != nil {
		t := time.Now()
		if db.LeaseNow != nil {
			t = db.LeaseNow()
		}
		now = "$2"
		args = append(args, micros(t))
	}
	return db.appIDs(ctx, `SELECT w.app_id FROM (SELECT app_id FROM releases WHERE status IN ('queued', 'pending')
		UNION SELECT app_id FROM app_restarts UNION SELECT app_id FROM rollouts WHERE scale_down_at IS NOT NULL) w
		LEFT JOIN app_leases l ON l.app_id = w.app_id
		WHERE l.app_id IS NULL OR l.holder = $1 OR l.expires_at < `+now, args...)
}

func (db *DB) appIDs(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := db.w.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// SetReleaseStatus moves a release to status, keeping the app's current
// release in step. EConflict for a transition the state machine refuses.
func (db *DB) SetReleaseStatus(ctx context.Context, id, status, reason string) error {
	return db.FinishRelease(ctx, id, status, reason, nil)
}

// FinishRelease is SetReleaseStatus that also records f, why a failed or
// unknown release ended, with the release; its release_failed event
// carries it. See slipway.ReleaseQueue.
func (db *DB) FinishRelease(ctx context.Context, id, status, reason string, f *slipway.Failure) error {
	failure := ""
	if f != nil && (status == slipway.ReleaseFailed || status == slipway.ReleaseUnknown) {
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		failure = string(b)
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		var from, appID string
		err := tx.QueryRowContext(ctx, `SELECT status, app_id FROM releases WHERE id = $1`, id).Scan(&from, &appID)
		if err != nil {
			return notFound(err, "Release %q was not found.", id)
		}
		if !slipway.ReleaseTransitionAllowed(from, status) {
			return slipway.Errorf(slipway.EConflict, "Release %s cannot move from %s to %s.", id, from, status)
		}
		now := micros(db.Now())
		if _, err := tx.ExecContext(ctx, `UPDATE releases SET status = $1, error = $2, failure = $3, updated_at = $4 WHERE id = $5`, status, reason, failure, now, id); err != nil {
			return err
		}
		if status == slipway.ReleaseSucceeded || status == slipway.ReleaseUnknown {
			_, err = tx.ExecContext(ctx, `UPDATE apps SET current_release_id = (SELECT id FROM releases
				WHERE app_id = $1 AND status IN ('succeeded', 'unknown') ORDER BY version DESC LIMIT 1), released_at = $2, updated_at = $2 WHERE id = $1`, appID, now)
			if err != nil {
				return err
			}
		}
		// released is emitted per formation type by the engine as each is
		// rolled out; a failed release is one event, here.
		if status != slipway.ReleaseFailed {
			return nil
		}
		event := slipway.EventReleaseFailed
		app, err := db.findApp(ctx, tx, "", appID)
		if err != nil {
			return err
		}
		r, err := db.findRelease(ctx, tx, "r.id = $1", id)
		if err != nil {
			return err
		}
		data, err := releaseEventData(ctx, tx, r)
		if err != nil {
			return err
		}
		return db.emit(ctx, tx, app, event, data)
	})
}

// AppendReleaseLog adds a line to the release's log.
func (db *DB) AppendReleaseLog(ctx context.Context, id, line string) error {
	_, err := db.w.ExecContext(ctx, `INSERT INTO release_logs (release_id, at, line) VALUES ($1, $2, $3)`, id, micros(db.Now()), line)
	return err
}

// ReleaseLog returns the release's log lines after seq.
func (db *DB) ReleaseLog(ctx context.Context, id string, after int64) ([]slipway.ReleaseLogLine, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT seq, at, line FROM release_logs WHERE release_id = $1 AND seq > $2 ORDER BY seq`, id, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []slipway.ReleaseLogLine{}
	for rows.Next() {
		var l slipway.ReleaseLogLine
		var at int64
		if err := rows.Scan(&l.Seq, &at, &l.Line); err != nil {
			return nil, err
		}
		l.Time = fromMicros(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// readFailure decodes a release's stored failure; "" is none.
func readFailure(s string, f **slipway.Failure) error {
	if s == "" {
		return nil
	}
	*f = new(slipway.Failure)
	return json.Unmarshal([]byte(s), *f)
}
