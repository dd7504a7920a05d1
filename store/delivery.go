package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/slipway/slipway"
)

// formationRecord is a process type's formation as a release records it.
type formationRecord struct {
	Type        string `json:"type"`
	Quantity    int    `json:"quantity"`
	Size        string `json:"size"`
	Port        int    `json:"port"`
	Command     string `json:"command"`
	Healthcheck string `json:"healthcheck"`
}

// formationRecordOf is the app's formation as it is now, as JSON: a new
// release keeps it (with, for a rollback, the release restored) for what
// a diff compares later and the release row does not otherwise hold.
func formationRecordOf(ctx context.Context, tx *sql.Tx, appID string) (string, error) {
	fs, err := listFormations(ctx, tx, appID)
	if err != nil {
		return "", err
	}
	recs := make([]formationRecord, 0, len(fs))
	for _, f := range fs {
		recs = append(recs, formationRecord{Type: f.Type, Quantity: f.Quantity, Size: f.Size, Port: f.Port, Command: f.Command, Healthcheck: f.Healthcheck})
	}
	b, err := json.Marshal(recs)
	return string(b), err
}

// ReleaseContents returns r's slug, build, recorded formation and the
// release a rollback restored, each nil when it is not known (any more).
func (db *DB) ReleaseContents(ctx context.Context, r *slipway.Release) (*slipway.ReleaseContents, error) {
	return db.releaseContents(ctx, db.r, r)
}

func (db *DB) releaseContents(ctx context.Context, q querier, r *slipway.Release) (*slipway.ReleaseContents, error) {
	c := &slipway.ReleaseContents{Release: r}
	var formation, rollbackOf string
	err := q.QueryRowContext(ctx, `SELECT formation, rollback_of FROM releases WHERE id = $1`, r.ID).Scan(&formation, &rollbackOf)
	if err != nil {
		return nil, notFound(err, "Release %q was not found.", r.ID)
	}
	if formation != "" {
		var recs []formationRecord
		if err := json.Unmarshal([]byte(formation), &recs); err != nil {
			return nil, err
		}
		c.Formation = make([]slipway.Formation, 0, len(recs))
		for _, f := range recs {
			c.Formation = append(c.Formation, slipway.Formation{AppID: r.AppID, Type: f.Type, Quantity: f.Quantity, Size: f.Size, Port: f.Port, Command: f.Command, Healthcheck: f.Healthcheck})
		}
	}
	if rollbackOf != "" {
		if c.RollbackOf, err = db.findRelease(ctx, q, "r.id = $1", rollbackOf); err != nil && slipway.ErrorCode(err) != slipway.ENotFound {
			return nil, err
		}
	}
	if c.Slug, err = findSlug(ctx, q, r.SlugID); err != nil && slipway.ErrorCode(err) != slipway.ENotFound {
		return nil, err
	}
	// A promoted release's slug is a build of another app: look the
	// build up by id alone.
	c.Build, err = scanBuild(q.QueryRowContext(ctx, `SELECT `+buildColumns+` FROM builds WHERE id = $1`, r.SlugID))
	if err != nil && err != sql.ErrNoRows {
		return nil, err
	}
	return c, nil
}

// ReleaseCurrentAt returns the release that was the app's current one when
// r was created: the newest succeeded or unknown release of a lower
// version that had reached that status by then (a terminal release is
// never updated again, so its updated_at is when it got there).
func (db *DB) ReleaseCurrentAt(ctx context.Context, r *slipway.Release) (*slipway.Release, error) {
	prev, err := db.findRelease(ctx, db.r, `r.app_id = $1 AND r.version < $2 AND r.status IN ('succeeded', 'unknown') AND r.updated_at <= $3
		ORDER BY r.version DESC LIMIT 1`, r.AppID, r.Version, micros(r.CreatedAt))
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return nil, slipway.Errorf(slipway.ENotFound, "No release of the app was current when v%d was created.", r.Version)
	}
	return prev, err
}

// DeliveryHistory returns the releases of the apps (every app's for nil)
// created at or after since, by app and version.
func (db *DB) DeliveryHistory(ctx context.Context, appIDs []string, since time.Time) ([]slipway.DeliveryRecord, error) {
	q := `SELECT r.app_id, r.version, r.trigger_kind, r.status, r.created_at, r.updated_at, COALESCE(t.version, 0), b.commit_time, b.created_at
		FROM releases r LEFT JOIN releases t ON t.id = r.rollback_of AND r.rollback_of <> '' LEFT JOIN builds b ON b.id = r.slug_id
		WHERE r.created_at >= $1`
	args := []any{micros(since)}
	if appIDs != nil {
		if len(appIDs) == 0 {
			return nil, nil
		}
		marks := make([]string, len(appIDs))
		for i, id := range appIDs {
			args = append(args, id)
			marks[i] = "$" + strconv.Itoa(i+2)
		}
		q += ` AND r.app_id IN (` + strings.Join(marks, ", ") + `)`
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY r.app_id, r.version`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []slipway.DeliveryRecord
	for rows.Next() {
		var d slipway.DeliveryRecord
		var c, u int64
		var commit, built sql.NullInt64
		if err := rows.Scan(&d.AppID, &d.Version, &d.Trigger, &d.Status, &c, &u, &d.RollbackOf, &commit, &built); err != nil {
			return nil, err
		}
		d.CreatedAt = fromMicros(c)
		if slipway.ReleaseTerminal(d.Status) {
			d.EndedAt = fromMicros(u)
		}
		if commit.Valid {
			d.CommitTime = fromMicros(commit.Int64)
		}
		if built.Valid {
			d.BuildCreatedAt = fromMicros(built.Int64)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// diffSummary is the one-line diff of a new release (created in tx)
// against the app's current release, for the release event's payload
// (read only when a hook takes the event, which saves the reads).
func (db *DB) diffSummary(ctx context.Context, tx *sql.Tx, appID, id string) (string, error) {
	to, err := db.findRelease(ctx, tx, "r.id = $1", id)
	if err != nil {
		return "", err
	}
	toC, err := db.releaseContents(ctx, tx, to)
	if err != nil {
		return "", err
	}
	var fromC *slipway.ReleaseContents
	cur, err := db.findRelease(ctx, tx, "r.id = a.current_release_id AND a.id = $1", appID)
	switch {
	case err == nil:
		if fromC, err = db.releaseContents(ctx, tx, cur); err != nil {
			return "", err
		}
	case slipway.ErrorCode(err) != slipway.ENotFound:
		return "", err
	}
	return slipway.DiffReleases(fromC, toC).Summary(), nil
}
