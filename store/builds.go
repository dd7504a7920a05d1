package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/slipway/slipway"
)

const buildColumns = `id, app_id, status, source_url, checksum, repo, sha, branch, version, author, message, user_id, user_email, created_at, updated_at, commit_time`

func scanBuild(sc scanner) (*slipway.Build, error) {
	var b slipway.Build
	var c, u int64
	var commit sql.NullInt64
	if err := sc.Scan(&b.ID, &b.AppID, &b.Status, &b.SourceURL, &b.Checksum, &b.Repo, &b.SHA, &b.Branch, &b.Version,
		&b.Author, &b.Message, &b.UserID, &b.UserEmail, &c, &u, &commit); err != nil {
		return nil, err
	}
	b.CreatedAt, b.UpdatedAt = fromMicros(c), fromMicros(u)
	if commit.Valid {
		b.CommitTime = fromMicros(commit.Int64)
	}
	return &b, nil
}

// CreateBuild records a queued build.
func (db *DB) CreateBuild(ctx context.Context, b *slipway.Build) error {
	b.ID = newID()
	b.Status = slipway.BuildQueued
	b.CreatedAt = db.Now().UTC()
	b.UpdatedAt = b.CreatedAt
	var commit sql.NullInt64
	if !b.CommitTime.IsZero() {
		commit = sql.NullInt64{Int64: micros(b.CommitTime), Valid: true}
	}
	_, err := db.w.ExecContext(ctx, `INSERT INTO builds (`+buildColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15)`,
		b.ID, b.AppID, b.Status, b.SourceURL, b.Checksum, b.Repo, b.SHA, b.Branch, b.Version, b.Author, b.Message,
		b.UserID, b.UserEmail, micros(b.CreatedAt), commit)
	return err
}

// FindBuild finds a build of the app; ENotFound if none.
func (db *DB) FindBuild(ctx context.Context, appID, id string) (*slipway.Build, error) {
	if !isUUID(id) {
		return nil, slipway.Errorf(slipway.ENotFound, "Build %q was not found.", slipway.Clip(id))
	}
	b, err := scanBuild(db.r.QueryRowContext(ctx, `SELECT `+buildColumns+` FROM builds WHERE id = $1 AND app_id = $2`, id, appID))
	return b, notFound(err, "Build %q was not found.", id)
}

// ListBuilds lists the app's builds by creation time.
func (db *DB) ListBuilds(ctx context.Context, appID string, p slipway.Page) ([]*slipway.Build, error) {
	q := `SELECT ` + buildColumns + ` FROM builds WHERE app_id = $1`
	cond, args, err := createdAtStart(p, 2)
	if err != nil {
		return nil, err
	}
	q += cond + pageOrder("created_at, id", p)
	args = append([]any{appID}, args...)
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*slipway.Build
	for rows.Next() {
		b, err := scanBuild(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// createdAtStart is the condition that starts a page of a list ordered by
// (created_at, id), its first placeholder numbered n, and its arguments:
// rows from (or after) the time Page.Start, or, with Page.StartID, from
// (or after) that one row. EInvalid for a start that is not a cursor.
func createdAtStart(p slipway.Page, n int) (string, []any, error) {
	if p.Start == "" {
		return "", nil, nil
	}
	start, err := strconv.ParseInt(p.Start, 10, 64)
	if err != nil || (p.StartID != "" && !isUUID(p.StartID)) {
		return "", nil, slipway.Errorf(slipway.EInvalid, "Range start %q is not a created_at cursor from Next-Range.", slipway.Clip(p.Start+"."+p.StartID))
	}
	if p.StartID == "" {
		return fmt.Sprintf(` AND created_at %s $%d`, pageOp(p), n), []any{start}, nil
	}
	return fmt.Sprintf(` AND (created_at, id) %s ($%d, $%d)`, pageOp(p), n, n+1), []any{start, p.StartID}, nil
}

// pageOp is the comparison for a page's start value.
func pageOp(p slipway.Page) string {
	switch {
	case p.Desc && p.StartExclusive:
		return "<"
	case p.Desc:
		return "<="
	case p.StartExclusive:
		return ">"
	}
	return ">="
}

// pageOrder is the ORDER BY and LIMIT of a page over the given columns.
func pageOrder(cols string, p slipway.Page) string {
	dir := " ASC"
	if p.Desc {
		dir = " DESC"
	}
	s := " ORDER BY "
	for i, c := range strings.Split(cols, ",") {
		if i > 0 {
			s += ", "
		}
		s += strings.TrimSpace(c) + dir
	}
	if p.Max > 0 {
		s += " LIMIT " + strconv.Itoa(p.Max)
	}
	return s
}

// HoldBuild records the server that will run a queued build; EConflict if
// it is not queued.
func (db *DB) HoldBuild(ctx context.Context, id, holder string) error {
	res, err := db.w.ExecContext(ctx, `UPDATE builds SET holder = $1 WHERE id = $2 AND status = $3`, holder, id, slipway.BuildQueued)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return slipway.Errorf(slipway.EConflict, "Build %s is not queued.", id)
	}
	return nil
}

// StartBuild moves a queued build to pending on holder (the server running
// it); EConflict if it is not queued.
func (db *DB) StartBuild(ctx context.Context, id, holder string) error {
	res, err := db.w.ExecContext(ctx, `UPDATE builds SET status = $1, updated_at = $2, holder = $5 WHERE id = $3 AND status = $4`,
		slipway.BuildPending, micros(db.Now()), id, slipway.BuildQueued, holder)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return slipway.Errorf(slipway.EConflict, "Build %s is not queued.", id)
	}
	return nil
}

// AppendBuildLines adds lines to the build's result.
func (db *DB) AppendBuildLines(ctx context.Context, id string, lines ...string) error {
	if len(lines) == 0 {
		return nil
	}
	return db.tx(ctx, func(tx *sql.Tx) error { return appendBuildLines(ctx, tx, id, lines) })
}

func appendBuildLines(ctx context.Context, tx *sql.Tx, id string, lines []string) error {
	for _, l := range lines {
		if _, err := tx.ExecContext(ctx, `INSERT INTO build_lines (build_id, line) VALUES ($1, $2)`, id, l); err != nil {
			return err
		}
	}
	return nil
}

// BuildLines returns the build's result lines in order.
func (db *DB) BuildLines(ctx context.Context, id string) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT line FROM build_lines WHERE build_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// FinishBuild ends a queued or pending build with r, saving its slug on
// success; EConflict if the build already ended.
func (db *DB) FinishBuild(ctx context.Context, id string, r slipway.BuildResult) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		var appID string
		err := tx.QueryRowContext(ctx, `SELECT app_id FROM builds WHERE id = $1 AND status IN ($2, $3)`, id, slipway.BuildQueued, slipway.BuildPending).Scan(&appID)
		if err == sql.ErrNoRows {
			return slipway.Errorf(slipway.EConflict, "Build %s is not running.", id)
		}
		if err != nil {
			return err
		}
		now := micros(db.Now())
		if _, err := tx.ExecContext(ctx, `UPDATE builds SET status = $1, updated_at = $2 WHERE id = $3`, r.Status, now, id); err != nil {
			return err
		}
		if err := appendBuildLines(ctx, tx, id, r.Lines); err != nil {
			return err
		}
		app, err := db.findApp(ctx, tx, "", appID)
		if err != nil {
			return err
		}
		b, err := findBuildTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := db.emit(ctx, tx, app, slipway.EventBuild, map[string]any{"build": buildEventData(b)}); err != nil {
			return err
		}
		if r.Status != slipway.BuildSucceeded || r.Slug == nil {
			return nil
		}
		pt, _ := json.Marshal(r.Slug.ProcessTypes)
		_, err = tx.ExecContext(ctx, `INSERT INTO slugs (id, app_id, process_types, size, checksum, image, dir, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			id, appID, string(pt), r.Slug.Size, r.Slug.Checksum, r.Slug.Image, r.Slug.Dir, now)
		return err
	})
}

// UnfinishedBuilds lists builds left queued or pending by holder (or by no
// server), oldest first.
func (db *DB) UnfinishedBuilds(ctx context.Context, holder string) ([]*slipway.Build, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+buildColumns+` FROM builds WHERE status IN ($1, $2) AND holder IN ('', $3) ORDER BY created_at`, slipway.BuildQueued, slipway.BuildPending, holder)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*slipway.Build
	for rows.Next() {
		b, err := scanBuild(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// FindSlug finds a slug by id; ENotFound if none.
func (db *DB) FindSlug(ctx context.Context, id string) (*slipway.Slug, error) {
	return findSlug(ctx, db.r, id)
}

func findSlug(ctx context.Context, q querier, id string) (*slipway.Slug, error) {
	if !isUUID(id) {
		return nil, slipway.Errorf(slipway.ENotFound, "Slug %q was not found.", slipway.Clip(id))
	}
	var s slipway.Slug
	var pt string
	var c int64
	err := q.QueryRowContext(ctx, `SELECT id, app_id, process_types, size, checksum, image, dir, created_at FROM slugs WHERE id = $1`, id).
		Scan(&s.ID, &s.AppID, &pt, &s.Size, &s.Checksum, &s.Image, &s.Dir, &c)
	if err != nil {
		return nil, notFound(err, "Slug %q was not found.", id)
	}
	if err := json.Unmarshal([]byte(pt), &s.ProcessTypes); err != nil {
		return nil, err
	}
	s.CreatedAt = fromMicros(c)
	return &s, nil
}
