package store

import (
	"context"

	"github.com/slipway/slipway"
)

const statusColumns = `id, release_id, state, name, context, description, target_url, image_url, created_at, updated_at`

func scanStatus(sc scanner) (*slipway.ReleaseStatus, error) {
	var s slipway.ReleaseStatus
	var c, u int64
	if err := sc.Scan(&s.ID, &s.ReleaseID, &s.State, &s.Name, &s.Context, &s.Description, &s.TargetURL, &s.ImageURL, &c, &u); err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt = fromMicros(c), fromMicros(u)
	return &s, nil
}

// CreateReleaseStatus records a check on a release. EUnprocessable for an
// invalid field or a context the release already has.
func (db *DB) CreateReleaseStatus(ctx context.Context, s *slipway.ReleaseStatus) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s.ID = newID()
	s.CreatedAt = db.Now().UTC()
	s.UpdatedAt = s.CreatedAt
	_, err := db.w.ExecContext(ctx, `INSERT INTO release_statuses (`+statusColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		s.ID, s.ReleaseID, s.State, s.Name, s.Context, s.Description, s.TargetURL, s.ImageURL, micros(s.CreatedAt))
	if isUnique(err) {
		return slipway.Errorf(slipway.EUnprocessable, "context %q already has a status on this release; update it with PATCH instead.", slipway.Clip(s.Context))
	}
	return err
}

// ListReleaseStatuses lists the release's checks by creation time.
func (db *DB) ListReleaseStatuses(ctx context.Context, releaseID string) ([]*slipway.ReleaseStatus, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+statusColumns+` FROM release_statuses WHERE release_id = $1 ORDER BY created_at, id`, releaseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.ReleaseStatus{}
	for rows.Next() {
		s, err := scanStatus(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// FindReleaseStatus finds a check of the release; ENotFound if none.
func (db *DB) FindReleaseStatus(ctx context.Context, releaseID, id string) (*slipway.ReleaseStatus, error) {
	if !isUUID(id) {
		return nil, slipway.Errorf(slipway.ENotFound, "Release status %q was not found.", slipway.Clip(id))
	}
	s, err := scanStatus(db.r.QueryRowContext(ctx, `SELECT `+statusColumns+` FROM release_statuses WHERE id = $1 AND release_id = $2`, id, releaseID))
	return s, notFound(err, "Release status %q was not found.", slipway.Clip(id))
}

// UpdateReleaseStatus saves s's state, name, description and URLs.
func (db *DB) UpdateReleaseStatus(ctx context.Context, s *slipway.ReleaseStatus) error {
	if err := s.Validate(); err != nil {
		return err
	}
	s.UpdatedAt = db.Now().UTC()
	res, err := db.w.ExecContext(ctx, `UPDATE release_statuses SET state = $1, name = $2, description = $3, target_url = $4, image_url = $5, updated_at = $6 WHERE id = $7 AND release_id = $8`,
		s.State, s.Name, s.Description, s.TargetURL, s.ImageURL, micros(s.UpdatedAt), s.ID, s.ReleaseID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return slipway.Errorf(slipway.ENotFound, "Release status %q was not found.", slipway.Clip(s.ID))
	}
	return nil
}
