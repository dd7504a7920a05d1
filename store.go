package slipway

import (
	"context"
	"time"
)

// Page selects part of a list, Heroku Range style:
// `Range: version 10..; order=desc, max=20`.
type Page struct {
	Field          string // "version" or "created_at"; "" means the list's default
	Start          string // first value of the page, "" for the beginning
	StartExclusive bool   // "]start.." skips the start value itself
	// StartID, on lists by created_at, makes Start a cursor that names
	// one row: such lists are ordered by created_at then id, and the page
	// starts at the row with time Start and id StartID (after it, with
	// StartExclusive). Rows created in the same microsecond are then
	// neither skipped nor repeated from page to page.
	StartID string
	Desc    bool
	Max     int // rows in the page; 0 means no limit
}

// Store is everything Slipway keeps, one interface per resource in the
// style of the per-resource services of benbjohnson/wtf. The store package
// implements all of it; each user takes only the part it needs (the
// engine's engine.Store, the API's api.Store, the deliverer's hook.Outbox).
//
// Every method also returns an uncoded error (EInternal) when the database
// fails; the codes listed on each method are the ones a caller can act on.
type Store interface {
	OrganizationStore
	AppStore
	BuildStore
	BuildQueue
	ReleaseStore
	ReleaseQueue
	ReleaseStatusStore
	FormationStore
	TokenStore
	LeaseStore
	PipelineStore
	HookStore
	Outbox
	AuditStore
	RolloutStore
	DeliveryStore

	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close closes the database; no method may be called after it.
	Close() error
}

// RolloutStore keeps the strategy an app's releases follow and the state
// of each gated (canary, blue-green) rollout.
type RolloutStore interface {
	// AppStrategy returns the app's strategy, rolling unless one was
	// set. ENotFound for an unknown app.
	AppStrategy(ctx context.Context, appID string) (*Strategy, error)
	// SetAppStrategy validates s (filling defaults) and stores it for the
	// app's next releases. EUnprocessable naming the field; ENotFound.
	SetAppStrategy(ctx context.Context, appID string, s *Strategy) error
	// Rollout returns a release's rollout state. ENotFound before the
	// rollout began (and for releases that rolled).
	Rollout(ctx context.Context, releaseID string) (*Rollout, error)
	// SaveRollout stores the engine's state, keeping an action a user
	// asked for after st was read (st.Seq tells).
	SaveRollout(ctx context.Context, st *Rollout) error
	// UpdateRollout changes the stored state with fn in one transaction.
	// ENotFound before the rollout began; fn's own error as it is.
	UpdateRollout(ctx context.Context, releaseID string, fn func(*Rollout) error) (*Rollout, error)
	// PendingScaleDown returns the rollout whose blue-green switch left
	// the old release's dynos running; ENotFound when none waits.
	PendingScaleDown(ctx context.Context, appID string) (*Rollout, error)
	// RecordReleaseAction audits a user's action on a rollout and, when
	// event is not "", sends it to the app's hooks.
	RecordReleaseAction(ctx context.Context, app *App, r *Release, action, event string) error
}

// LeaseStore keeps the per-app leases that let one server at a time carry
// out an app's work. Leases are granted and expire by the database's
// clock, so servers whose clocks disagree still agree on who holds one.
type LeaseStore interface {
	// AcquireLease takes or renews the app's lease for holder for ttl; it
	// reports false while another holder's lease is unexpired.
	AcquireLease(ctx context.Context, appID, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder has it.
	ReleaseLease(ctx context.Context, appID, holder string) error
}
