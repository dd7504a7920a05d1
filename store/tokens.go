package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/slipway/slipway"
)

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateToken stores a scoped token (its hash only).
func (db *DB) CreateToken(ctx context.Context, t *slipway.Token, secret string) error {
	t.ID = newID()
	t.CreatedAt = db.Now().UTC()
	_, err := db.w.ExecContext(ctx, `INSERT INTO tokens (id, org_id, hash, description, created_at) VALUES ($1, $2, $3, $4, $5)`,
		t.ID, t.OrgID, tokenHash(secret), t.Description, micros(t.CreatedAt))
	return err
}

// FindToken finds the scoped token whose secret is given; ENotFound if none.
// The lookup is by hash, so the secret is never compared byte by byte.
func (db *DB) FindToken(ctx context.Context, secret string) (*slipway.Token, error) {
	var t slipway.Token
	var c int64
	err := db.r.QueryRowContext(ctx, `SELECT t.id, t.org_id, o.name, t.description, t.created_at FROM tokens t JOIN organizations o ON o.id = t.org_id WHERE t.hash = $1`, tokenHash(secret)).
		Scan(&t.ID, &t.OrgID, &t.OrgName, &t.Description, &c)
	if err != nil {
		return nil, notFound(err, "The token is not valid.")
	}
	t.CreatedAt = fromMicros(c)
	return &t, nil
}

// ListTokens lists the scoped tokens (never their secrets), oldest first.
func (db *DB) ListTokens(ctx context.Context) ([]*slipway.Token, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT t.id, t.org_id, o.name, t.description, t.created_at FROM tokens t JOIN organizations o ON o.id = t.org_id ORDER BY t.created_at`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.Token{}
	for rows.Next() {
		var t slipway.Token
		var c int64
		if err := rows.Scan(&t.ID, &t.OrgID, &t.OrgName, &t.Description, &c); err != nil {
			return nil, err
		}
		t.CreatedAt = fromMicros(c)
		out = append(out, &t)
	}
	return out, rows.Err()
}

// DeleteToken revokes a scoped token; ENotFound if there is none.
func (db *DB) DeleteToken(ctx context.Context, id string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM tokens WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return slipway.Errorf(slipway.ENotFound, "Token %q was not found.", slipway.Clip(id))
	}
	return nil
}
