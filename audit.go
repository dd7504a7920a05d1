package slipway

import (
	"context"
	"time"
)

// Audit is one line of who did what to an app.
type Audit struct {
	ID        string
	AppID     string
	AppKey    string
	Action    string
	Detail    string
	UserID    string
	UserEmail string
	CreatedAt time.Time
}

// AuditStore reads the audit trail, which the store writes in the
// transaction of each change it records.
type AuditStore interface {
	// ListAudits lists up to limit entries (100 when limit is not in
	// 1..1000), newest first: all, or those of the app with the id or key
	// appKey. Entries outlive their app.
	ListAudits(ctx context.Context, appKey string, limit int) ([]*Audit, error)
}

// Actor is who makes a change, for the audit trail.
type Actor struct {
	ID    string
	Email string
}

type actorKey struct{}

// WithActor returns ctx carrying the actor of the request.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor ctx carries, or the zero Actor (the system).
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}
