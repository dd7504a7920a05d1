package slipway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Token is an API token limited to one organization's apps.
type Token struct {
	ID          string
	OrgID       string
	OrgName     string
	Description string
	CreatedAt   time.Time
}

// NewTokenSecret returns a fresh random API token, "slw_" and 48 hex digits.
func NewTokenSecret() (string, error) {
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	return "slw_" + hex.EncodeToString(raw[:]), nil
}

// TokenStore keeps API tokens scoped to one organization.
type TokenStore interface {
	// CreateToken stores a token scoped to t.OrgID and sets its id and
	// time; only a hash of secret is kept.
	CreateToken(ctx context.Context, t *Token, secret string) error
	// FindToken finds a scoped token by its secret; ENotFound if none.
	FindToken(ctx context.Context, secret string) (*Token, error)
	// ListTokens lists scoped tokens, oldest first, without their secrets.
	ListTokens(ctx context.Context) ([]*Token, error)
	// DeleteToken revokes a scoped token; ENotFound if none.
	DeleteToken(ctx context.Context, id string) error
}
