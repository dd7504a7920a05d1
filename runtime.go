package slipway

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// Formation is how many dynos of one process type an app runs, and how.
type Formation struct {
	AppID       string    `json:"-"`
	Type        string    `json:"type"`
	Quantity    int       `json:"quantity"`
	Size        string    `json:"size"`
	Port        int       `json:"port"`        // the port the dyno listens on; 0 picks a free one
	Command     string    `json:"command"`     // "" runs the Procfile's command for Type
	Healthcheck string    `json:"healthcheck"` // HTTP path such as /health; "" checks the port
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Dyno states.
const (
	DynoStarting = "starting" // process started, not yet healthy
	DynoRunning  = "running"  // healthy
	DynoCrashed  = "crashed"  // exited; waiting to be restarted
	DynoStopping = "stopping" // draining, then signalled
	DynoStopped  = "stopped"  // exited on purpose
)

// Dyno is one running process (or pod) of an app.
type Dyno struct {
	ID   string `json:"id"`
	Name string `json:"name"` // unique in the app: web.1 locally, the pod's name on Kubernetes
	// Instance is the dyno's name within its type, what clients print
	// after "type.": "1" for web.1, the pod's "<hash>-<suffix>" on
	// Kubernetes. The API answers it as the dyno's name.
	Instance       string     `json:"instance"`
	Type           string     `json:"type"`
	State          string     `json:"state"`
	Ready          bool       `json:"ready"` // the router sends it traffic
	Release        ReleaseRef `json:"release"`
	Command        string     `json:"command"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	AdditionalInfo string     `json:"additional_info"`
}

// Selected reports whether a restart of target takes in d: every dyno for
// "", every dyno of a type for the process type's name, and d alone for
// "type.instance", its Name or its ID.
func (d *Dyno) Selected(target string) bool {
	return target == "" || target == d.Type || target == d.ID || target == d.Name || target == d.Type+"."+d.Instance
}

// ReleaseRef names a release to a runtime.
type ReleaseRef struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
}

// Desired is the state a runtime converges an app to: this release's slug
// and config on every formation, at the formation's quantity.
type Desired struct {
	App        AppRef
	Release    ReleaseRef
	Slug       Slug
	Config     map[string]string
	Formations []Formation // with Command resolved from the Procfile when empty
	// Reuse lets a runtime keep dynos of another release that run the
	// same slug, commands and config (they keep that release's
	// SLIPWAY_RELEASE_VERSION): a rollback within a blue-green release's
	// scale-down delay then only moves traffic back.
	Reuse bool
}

// Validate returns EUnprocessable for a desired state no runtime can
// place: a formation type that is not a process type name or appears
// twice, a quantity or port out of range, a health check that is not a
// path, or a type with dynos and no command (the formation's, else the
// Procfile's; image slugs run their image's own). Runtimes add their own
// checks after it.
func (d *Desired) Validate() error {
	seen := make(map[string]bool, len(d.Formations))
	for _, f := range d.Formations {
		if f.Type == "release" {
			continue // the release phase, never a dyno
		}
		if !processTypeRE.MatchString(f.Type) {
			return Errorf(EUnprocessable, "Process type %q is invalid: use lowercase letters, digits, - and _, starting with a letter.", Clip(f.Type))
		}
		if seen[f.Type] {
			return Errorf(EUnprocessable, "Process type %q appears twice in the formation.", f.Type)
		}
		seen[f.Type] = true
		if f.Quantity < 0 || f.Quantity > MaxQuantity {
			return Errorf(EUnprocessable, "The quantity of %s must be between 0 and %d.", f.Type, MaxQuantity)
		}
		if f.Port < 0 || f.Port > 65535 {
			return Errorf(EUnprocessable, "The port of %s must be between 1 and 65535, or 0 to choose one.", f.Type)
		}
		if f.Healthcheck != "" && !strings.HasPrefix(f.Healthcheck, "/") {
			return Errorf(EUnprocessable, "The healthcheck of %s must be a path starting with /, not %q.", f.Type, Clip(f.Healthcheck))
		}
		cmd := f.Command
		if cmd == "" {
			cmd = d.Slug.ProcessTypes[f.Type]
		}
		if d.Slug.Image == "" && f.Quantity > 0 && strings.TrimSpace(cmd) == "" {
			return Errorf(EUnprocessable, "Process type %s has no command: add it to the Procfile or set the formation's command.", f.Type)
		}
	}
	return nil
}

// Progress events a runtime reports while it converges an app.
const (
	EventStarted = "started" // a dyno process was started
	EventHealthy = "healthy" // it passed its health check
	EventRouted  = "routed"  // the router sends it traffic
	EventDrained = "drained" // taken out of the router, in-flight requests done
	EventStopped = "stopped" // the process exited
	EventFailed  = "failed"  // a dyno failed (crash, health deadline)
	EventInfo    = "info"    // anything else worth a log line
	EventDone    = "done"    // a formation type is fully rolled out
)

// ProgressEvent is one step of a rollout.
type ProgressEvent struct {
	Type    string // one of the Event constants
	Dyno    string // dyno name, "" when not about one dyno
	Process string // formation type
	Message string
}

// ProgressFunc receives progress events; it must not block for long.
type ProgressFunc func(ProgressEvent)

// Runtime places releases on app servers.
type Runtime interface {
	// Deploy converges the app to d with a rolling restart: dynos of any
	// other release are replaced one by one (new healthy before old
	// stopped), dynos of d.Release are kept and scaled to their quantity,
	// formation types not in d are stopped. If it returns an error, the app
	// runs what it ran before Deploy was called (auto-revert).
	Deploy(ctx context.Context, d Desired, progress ProgressFunc) error
	// Restart replaces the dynos target selects (see Dyno.Selected: "" for
	// all, a process type for every dyno of that type, "type.instance", a
	// dyno's Name or ID for one) with fresh processes of the same release.
	// A restart of several dynos follows Deploy's rolling rules (a new
	// dyno healthy before an old one stops, per type, reverted on failure);
	// one dyno is replaced on its own while the others keep serving.
	// ENotFound for an app never deployed here or a target that selects no
	// dyno.
	Restart(ctx context.Context, appID, target string, progress ProgressFunc) error
	// Dynos lists the app's dynos, ordered by type then number.
	Dynos(ctx context.Context, appID string) ([]Dyno, error)
	// Remove stops every dyno of the app and removes its routes.
	Remove(ctx context.Context, appID string) error
}

// Split is two releases of an app side by side during a canary or a
// blue-green preview. Stable and Canary carry the app's full formations
// (Stable is what a failed Split goes back to); Stables and Canaries say
// how many dynos of each type run each release. Weight percent of the web
// traffic goes to Canary.
type Split struct {
	Stable   Desired
	Canary   Desired
	Stables  map[string]int
	Canaries map[string]int
	Weight   int
	// Preview routes the app's preview host to Canary (blue-green).
	Preview bool
}

// Splitter is a Runtime that can run two releases of an app at once and
// divide web traffic between them. The rollout strategies use it for
// canaries; Deploy ends a split (on the canary to promote, on the stable
// release to abort), keeping the dynos of the release it deploys.
type Splitter interface {
	// Split converges the app to s: dynos of either release are kept up
	// to their count, missing ones start (and must be healthy before any
	// dyno is stopped), dynos of other releases or past the counts stop.
	// Then the router divides traffic by s.Weight. If it returns an error
	// the app runs s.Stable on its full formations.
	Split(ctx context.Context, s Split, progress ProgressFunc) error
	// Traffic returns the router's cumulative counts of the app's
	// requests per release id since the server started; nil when the
	// runtime has no router.
	Traffic(appID string) map[string]Traffic
}

var processTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,29}$`)

// MaxQuantity is the most dynos of one type an app may ask for.
const MaxQuantity = 100

// MaxFormationTypes is the most formations (process types) one app may
// have, and so the most process types a Procfile may define.
const MaxFormationTypes = 50

// Default dyno limits.
const (
	DefaultMaxDynosPerApp = 100
	DefaultMaxDynosPerOrg = 5000 // a fleet of 1,000 apps of 3 dynos fits
)

// DynoLimits cap the dynos tenants may ask for: the sum of the quantities
// of an app's formations, and of all the apps of an organization. They
// hold on every change that adds dynos; a change that removes some is
// always allowed, even above a limit an operator has lowered.
type DynoLimits struct {
	PerApp int // 0 means DefaultMaxDynosPerApp
	PerOrg int // 0 means DefaultMaxDynosPerOrg
}

// WithDefaults returns l with zero fields set to the defaults.
func (l DynoLimits) WithDefaults() DynoLimits {
	if l.PerApp <= 0 {
		l.PerApp = DefaultMaxDynosPerApp
	}
	if l.PerOrg <= 0 {
		l.PerOrg = DefaultMaxDynosPerOrg
	}
	return l
}

// FormationUse is what an app and its organization have of the limits.
type FormationUse struct {
	Types    int // the app's formations
	AppDynos int // sum of the app's quantities
	OrgDynos int // sum of the quantities of every app of the organization
}

// CheckGrowth returns EUnprocessable naming the limit when after, the use
// a change leads to, passes a limit it did not pass before the change.
// app is the app's key and org its organization's name, for the message.
func (l DynoLimits) CheckGrowth(before, after FormationUse, app, org string) error {
	l = l.WithDefaults()
	switch {
	case after.Types > MaxFormationTypes && after.Types > before.Types:
		return Errorf(EUnprocessable, "The app would have %d process types; an app may have at most %d. Delete unused ones with DELETE /apps/%s/formation/{type}.", after.Types, MaxFormationTypes, app)
	case after.AppDynos > l.PerApp && after.AppDynos > before.AppDynos:
		return Errorf(EUnprocessable, "The app would run %d dynos; an app may run at most %d on this server. Scale other process types down first.", after.AppDynos, l.PerApp)
	case after.OrgDynos > l.PerOrg && after.OrgDynos > before.OrgDynos:
		return Errorf(EUnprocessable, "Organization %s would run %d dynos; an organization may run at most %d on this server. Scale other apps down first.", org, after.OrgDynos, l.PerOrg)
	}
	return nil
}

// Validate returns EUnprocessable naming the first field out of range.
func (c *FormationChange) Validate() error {
	if !processTypeRE.MatchString(c.Type) {
		return Errorf(EUnprocessable, "type %q is invalid: use lowercase letters, digits, - and _, starting with a letter, at most 30 characters.", Clip(c.Type))
	}
	if c.Type == "release" {
		return Errorf(EUnprocessable, "type release is the release phase command and cannot be scaled.")
	}
	if c.Quantity != nil && (*c.Quantity < 0 || *c.Quantity > MaxQuantity) {
		return Errorf(EUnprocessable, "quantity must be between 0 and %d.", MaxQuantity)
	}
	if c.Port != nil && (*c.Port < 0 || *c.Port > 65535) {
		return Errorf(EUnprocessable, "port must be between 1 and 65535, or 0 to choose one.")
	}
	if c.Healthcheck != nil && *c.Healthcheck != "" && (!strings.HasPrefix(*c.Healthcheck, "/") || len(*c.Healthcheck) > 255 || strings.ContainsAny(*c.Healthcheck, " \t\r\n")) {
		return Errorf(EUnprocessable, "healthcheck must be a path starting with /, such as /health.")
	}
	if c.Size != nil {
		if _, ok := FindSize(*c.Size); !ok || *c.Size == "" {
			return Errorf(EUnprocessable, "size %q is not offered: GET /sizes lists the sizes.", Clip(*c.Size))
		}
	}
	if c.RemoveHealthcheck && c.Healthcheck != nil && *c.Healthcheck != "" {
		return Errorf(EUnprocessable, "healthcheck and removeHealthcheck cannot both be given: send one.")
	}
	if c.RemoveCommand && c.Command != nil && *c.Command != "" {
		return Errorf(EUnprocessable, "command and remove-command cannot both be given: send one.")
	}
	if c.Command != nil && len(*c.Command) > 4096 {
		return Errorf(EUnprocessable, "command must be under 4096 characters.")
	}
	return nil
}

// ApplyTo copies the set fields of c onto f.
func (c *FormationChange) ApplyTo(f *Formation) {
	if c.Quantity != nil {
		f.Quantity = *c.Quantity
	}
	if c.Size != nil {
		f.Size = *c.Size
	}
	if c.Port != nil {
		f.Port = *c.Port
	}
	if c.Command != nil {
		f.Command = *c.Command
	}
	if c.Healthcheck != nil {
		f.Healthcheck = *c.Healthcheck
	}
	if c.RemoveCommand {
		f.Command = ""
	}
	if c.RemoveHealthcheck {
		f.Healthcheck = ""
	}
}

// DynoCounter is a runtime that can count its dynos by state from what it
// already holds in memory (Kubernetes' informer caches), without a call
// per app. /metrics uses it when the runtime has it, so a scrape costs
// the same with 10 apps or 1,000.
type DynoCounter interface {
	// CountDynos returns the number of dynos in each state that the
	// runtime sees now.
	CountDynos() map[string]int
}
