package slipway

import (
	"context"
	"net/url"
	"strings"
	"time"
)

// Webhook events.
const (
	EventBuild            = "build"
	EventRelease          = "release"
	EventReleased         = "released"
	EventReleaseFailed    = "release_failed"
	EventReleasePaused    = "release_paused"   // a user paused a gated rollout
	EventReleasePromoted  = "release_promoted" // a user promoted one
	EventReleaseAborted   = "release_aborted"  // a user aborted one
	EventFormationChange  = "formation_change"
	EventConfigChange     = "config_change"
	EventPipelinePromoted = "pipeline_promotion"
	EventDestroy          = "destroy"
)

var hookEvents = [...]string{EventBuild, EventRelease, EventReleased, EventReleaseFailed, EventReleasePaused, EventReleasePromoted, EventReleaseAborted, EventFormationChange, EventConfigChange, EventPipelinePromoted, EventDestroy}

// HookEvents returns every event a hook can subscribe to.
func HookEvents() []string { return append([]string(nil), hookEvents[:]...) }

// Hook is a webhook of an app.
type Hook struct {
	ID        string
	AppID     string
	URL       string
	Events    []string
	Secret    string // signs deliveries; never shown
	Active    bool
	CreatedAt time.Time
	UpdatedAt time.Time

	// CreatedBy is the id of the token (or the admin user) that made it.
	CreatedBy string
	// Scoped is set when the URL was set by an organization-scoped token:
	// deliveries then connect to public addresses only.
	Scoped bool
}

// Validate returns EUnprocessable naming the first bad field.
func (h *Hook) Validate() error {
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(h.URL) > 2048 {
		return Errorf(EUnprocessable, "url must be an http:// or https:// URL.")
	}
	if len(h.Events) == 0 {
		return Errorf(EUnprocessable, "events must list at least one of: %s.", strings.Join(hookEvents[:], ", "))
	}
	for _, e := range h.Events {
		known := false
		for _, k := range hookEvents {
			known = known || e == k
		}
		if !known {
			return Errorf(EUnprocessable, "events: %q is not an event; use %s.", Clip(e), strings.Join(hookEvents[:], ", "))
		}
	}
	if len(h.Secret) > 1024 {
		return Errorf(EUnprocessable, "secret must be at most 1024 characters.")
	}
	return nil
}

// Delivery is an event on its way to a hook (the outbox row).
type Delivery struct {
	ID        string
	HookID    string
	Event     string
	URL       string
	Secret    string
	Payload   []byte
	Attempts  int
	CreatedAt time.Time

	// Scoped is the hook's Scoped when the event was written.
	Scoped bool
}

// HookResult is one attempt to deliver an event.
type HookResult struct {
	ID             string
	HookID         string
	DeliveryID     string
	Event          string
	Attempt        int
	RequestHeaders map[string]string
	// URL and RequestBody are the delivery's, as sent; filled in when
	// results are read.
	URL         string
	RequestBody []byte
	StatusCode  int // 0 when no answer came
	// ResponseHeaders are the answer's headers (the first value of each,
	// clipped); empty when no answer came.
	ResponseHeaders map[string]string
	Duration        time.Duration
	Error           string
	CreatedAt       time.Time
}

// HookStore keeps an app's webhooks and the results of their deliveries.
type HookStore interface {
	// CreateHook creates h and sets its id and times; EUnprocessable for
	// a field Hook.Validate refuses.
	CreateHook(ctx context.Context, h *Hook) error
	// ListHooks lists the app's hooks, oldest first.
	ListHooks(ctx context.Context, appID string) ([]*Hook, error)
	// FindHook finds a hook of the app; ENotFound if none.
	FindHook(ctx context.Context, appID, id string) (*Hook, error)
	// UpdateHook saves h's URL, events, secret, active and scoped flags;
	// EUnprocessable for a field Hook.Validate refuses.
	UpdateHook(ctx context.Context, h *Hook) error
	// DeleteHook deletes a hook of the app and drops its pending
	// deliveries; ENotFound if none.
	DeleteHook(ctx context.Context, appID, id string) error
	// ListHookResults lists a hook's delivery attempts by creation time, a
	// page at a time (see Page: its cursor is a time and an id). EInvalid
	// for a Page.Start that is not a created_at cursor.
	ListHookResults(ctx context.Context, hookID string, p Page) ([]*HookResult, error)
	// FindHookResult finds one delivery attempt of a hook; ENotFound if
	// none.
	FindHookResult(ctx context.Context, hookID, id string) (*HookResult, error)
}

// Outbox holds events on their way to hooks. Events are written in the
// transaction of what they report; EmitEvent is for events that are not
// (a formation type rolled out).
type Outbox interface {
	// EmitEvent writes an event to the outbox of every active hook of the
	// app that subscribes to it; ENotFound for an unknown app.
	EmitEvent(ctx context.Context, appID, event string, data map[string]any) error
	// EmitReleased writes released for a process type of a release that
	// is fully rolled out, with the release and its slug; ENotFound for an
	// unknown release.
	EmitReleased(ctx context.Context, releaseID, process string) error
	// ClaimDeliveries takes up to n deliveries that are due, hiding them
	// from other claimers (other servers included) for lease: no delivery
	// is handed to two claimers at once.
	ClaimDeliveries(ctx context.Context, n int, lease time.Duration) ([]*Delivery, error)
	// RecordAttempt saves an attempt; done ends the delivery, else it is
	// retried at retryAt (a zero retryAt gives it up).
	RecordAttempt(ctx context.Context, d *Delivery, r *HookResult, done bool, retryAt time.Time) error
	// ReleaseDelivery gives back a claimed delivery that was not attempted
	// (its server is shutting down), due at once for any claimer.
	ReleaseDelivery(ctx context.Context, id string) error
}
