package slipway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"
	"time"
)

var stages = [...]string{"review", "development", "staging", "production"}

// Stages returns the pipeline stages, in promotion order.
func Stages() []string { return append([]string(nil), stages[:]...) }

// StageIndex returns the stage's place in Stages, or -1.
func StageIndex(stage string) int {
	for i, s := range stages {
		if s == stage {
			return i
		}
	}
	return -1
}

// Pipeline couples apps at stages, from development to production.
type Pipeline struct {
	ID        string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Coupling places an app at a stage of a pipeline.
type Coupling struct {
	ID             string
	PipelineID     string
	PipelineName   string
	AppID          string
	AppName        string
	AppKey         string
	Stage          string
	RequiredChecks []string // contexts that must be success before promoting from this app
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// NewPromotion asks to release a source app's release on later apps.
type NewPromotion struct {
	Pipeline  string   // id or name
	SourceApp string   // id or key
	Release   string   // id or vN; "" for the source's current release
	Targets   []string // app ids or keys; empty means every app of the next stage that has apps
	Safe      bool     // refuse when config var keys differ
	UserID    string
	UserEmail string
}

// Promotion is a promotion and what became of each target.
type Promotion struct {
	ID              string
	PipelineID      string
	PipelineName    string
	SourceAppID     string
	SourceReleaseID string
	Status          string // pending until every target ends, then succeeded or failed
	Targets         []PromotionTarget
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// PromotionTarget is one app a promotion released to.
type PromotionTarget struct {
	ID        string
	AppID     string
	ReleaseID string
	Status    string // the target release's status
	Error     string
}

// Webhook events.
const (
	EventBuild            = "build"
	EventRelease          = "release"
	EventReleased         = "released"
	EventReleaseFailed    = "release_failed"
	EventFormationChange  = "formation_change"
	EventConfigChange     = "config_change"
	EventPipelinePromoted = "pipeline_promotion"
	EventDestroy          = "destroy"
)

var hookEvents = [...]string{EventBuild, EventRelease, EventReleased, EventReleaseFailed, EventFormationChange, EventConfigChange, EventPipelinePromoted, EventDestroy}

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
	StatusCode     int // 0 when no answer came
	Duration       time.Duration
	Error          string
	CreatedAt      time.Time
}

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

// WorkflowStore keeps pipelines, promotions, hooks and audits.
type WorkflowStore interface {
	CreatePipeline(ctx context.Context, p *Pipeline) error
	ListPipelines(ctx context.Context) ([]*Pipeline, error)
	FindPipeline(ctx context.Context, idOrName string) (*Pipeline, error)
	DeletePipeline(ctx context.Context, id string) error
	// CreateCoupling couples an app; EConflict if it is coupled already.
	CreateCoupling(ctx context.Context, c *Coupling) error
	// ListCouplings lists couplings, all or those of one pipeline or app.
	ListCouplings(ctx context.Context, pipelineID, appID string) ([]*Coupling, error)
	FindCoupling(ctx context.Context, id string) (*Coupling, error)
	UpdateCouplingChecks(ctx context.Context, id string, checks []string) (*Coupling, error)
	DeleteCoupling(ctx context.Context, id string) error
	// CreatePromotion checks the rules of a promotion and queues a release
	// on every target, in one transaction.
	CreatePromotion(ctx context.Context, p NewPromotion) (*Promotion, error)
	FindPromotion(ctx context.Context, id string) (*Promotion, error)

	CreateHook(ctx context.Context, h *Hook) error
	ListHooks(ctx context.Context, appID string) ([]*Hook, error)
	FindHook(ctx context.Context, appID, id string) (*Hook, error)
	UpdateHook(ctx context.Context, h *Hook) error
	DeleteHook(ctx context.Context, appID, id string) error
	ListHookResults(ctx context.Context, hookID string, p Page) ([]*HookResult, error)
	// ClaimDeliveries takes up to n deliveries that are due, hiding them
	// from other claimers for lease.
	ClaimDeliveries(ctx context.Context, n int, lease time.Duration) ([]*Delivery, error)
	// RecordAttempt saves an attempt; done ends the delivery, else it is
	// retried at retryAt (a zero retryAt gives it up).
	RecordAttempt(ctx context.Context, d *Delivery, r *HookResult, done bool, retryAt time.Time) error
	// EmitEvent writes an event to the outbox of the app's hooks.
	EmitEvent(ctx context.Context, appID, event string, data map[string]any) error

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
