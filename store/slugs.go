package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/slipway/slipway"
)

// Slug garbage collection. A slug is kept while a release (of any app: a
// promotion shares a slug between apps) refers to it, and while it is one
// of its app's newest builds. The engine deletes a slug's record first,
// here, under a lock and a fresh check for releases; creating a release
// of a slug takes the same lock (lockSlug), so the two never cross. Only
// then are its files removed.

// CollectableSlugs lists, oldest first, the ids of the app's slugs that no
// release refers to and that are not of its newest keep succeeded builds.
func (db *DB) CollectableSlugs(ctx context.Context, appID string, keep int) ([]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT s.id FROM slugs s WHERE s.app_id = $1
		AND NOT EXISTS (SELECT 1 FROM releases r WHERE r.slug_id = s.id)
		AND s.id NOT IN (SELECT b.id FROM builds b WHERE b.app_id = $1 AND b.status = $2 ORDER BY b.created_at DESC, b.id DESC LIMIT $3)
		ORDER BY s.created_at, s.id`, appID, slipway.BuildSucceeded, keep)
	if err != nil {
		return nil, err
	}
	return scanIDs(rows)
}

// DeleteSlug deletes a slug's record: EConflict when a release refers to
// it (it is kept), ENotFound when there is none.
func (db *DB) DeleteSlug(ctx context.Context, id string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if err := lockSlug(ctx, tx, id); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM releases WHERE slug_id = $1`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return slipway.Errorf(slipway.EConflict, "Slug %s is used by %d releases; it is kept.", id, n)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM slugs WHERE id = $1`, id)
		return err
	})
}

// lockSlug locks a slug's row until the transaction ends (on PostgreSQL;
// SQLite has one writer anyway); ENotFound when there is none. What the
// transaction reads after it is what committed before the lock was had.
func lockSlug(ctx context.Context, tx *sql.Tx, id string) error {
	res, err := tx.ExecContext(ctx, `UPDATE slugs SET created_at = created_at WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return slipway.Errorf(slipway.ENotFound, "Slug %q was not found.", id)
	}
	return nil
}

// UnusedSlugs returns those of ids (names of folders of the slug dir) that
// no slug record, no unfinished build and no release refers to. Nothing
// can refer to them later (build ids are new UUIDs, recorded before their
// folder is made), so their folders can go.
func (db *DB) UnusedSlugs(ctx context.Context, ids []string) ([]string, error) {
	var out []string
	for len(ids) > 0 {
		n := min(len(ids), 500)
		batch := ids[:n]
		ids = ids[n:]
		var args []any
		var marks []string
		for _, id := range batch {
			if isUUID(id) {
				args = append(args, id)
				marks = append(marks, "$"+strconv.Itoa(len(args)+2))
			}
		}
		if len(args) == 0 {
			continue
		}
		in := strings.Join(marks, ", ")
		rows, err := db.r.QueryContext(ctx, `SELECT id FROM slugs WHERE id IN (`+in+`)
			UNION SELECT id FROM builds WHERE id IN (`+in+`) AND status IN ($1, $2)
			UNION SELECT slug_id FROM releases WHERE slug_id IN (`+in+`)`,
			append([]any{slipway.BuildQueued, slipway.BuildPending}, args...)...)
		if err != nil {
			return nil, err
		}
		used, err := scanIDs(rows)
		if err != nil {
			return nil, err
		}
		inUse := map[string]bool{}
		for _, id := range used {
			inUse[id] = true
		}
		for _, a := range args {
			if id := a.(string); !inUse[id] {
				out = append(out, id)
			}
		}
	}
	return out, nil
}

func scanIDs(rows *sql.Rows) ([]string, error) {
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
