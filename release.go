package slipway

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// Release statuses: was the release deployed?
const (
	ReleaseQueued    = "queued"    // created, waiting for the engine
	ReleasePending   = "pending"   // being rolled out
	ReleaseSucceeded = "succeeded" // every dyno of the app runs it
	ReleaseFailed    = "failed"    // the rollout failed; the app kept its previous release
	ReleaseUnknown   = "unknown"   // the runtime never answered within the release deadline
)

// ReleaseTransitionAllowed reports whether a release may move from one
// status to another. Terminal statuses never change.
func ReleaseTransitionAllowed(from, to string) bool {
	switch from {
	case ReleaseQueued:
		return to == ReleasePending || to == ReleaseFailed
	case ReleasePending:
		return to == ReleaseSucceeded || to == ReleaseFailed || to == ReleaseUnknown
	}
	return false
}

// ReleaseTerminal reports whether status is an end state.
func ReleaseTerminal(status string) bool {
	return status == ReleaseSucceeded || status == ReleaseFailed || status == ReleaseUnknown
}

// Release triggers: why a release was made.
const (
	TriggerDeploy      = "deploy"
	TriggerRollback    = "rollback"
	TriggerPromotion   = "promotion"
	TriggerAutoRelease = "auto-release"
	TriggerConfig      = "config"
)

// Release is a slug plus config placed on an app.
type Release struct {
	ID          string
	AppID       string
	AppName     string
	AppKey      string // the app's "<name>-<space>", which answers name it by
	Version     int
	SlugID      string
	Config      map[string]string
	Description string
	Status      string
	State       string // combined state of the release's status checks
	Current     bool
	Trigger     string
	UserID      string
	UserEmail   string
	Error       string // why it failed, "" otherwise
	// Failure is why a failed or unknown release ended, as data; nil for
	// other releases (and those that failed before it was recorded).
	Failure *Failure
	// Strategy is the strategy the release rolls out with, as it was when
	// the release was made (the zero value is the rolling restart).
	Strategy  Strategy
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ReleaseLogLine is one step of a rollout.
type ReleaseLogLine struct {
	Seq  int64     `json:"-"`
	Time time.Time `json:"time"`
	Line string    `json:"line"`
}

// Release status check states.
const (
	StateSuccess = "success"
	StateFailure = "failure"
	StateError   = "error"
	StatePending = "pending"
)

// CombineStates folds check states into a release's state: error if any is
// error, else failure if any is failure, else pending if any is pending,
// else success (also for none).
func CombineStates(states []string) string {
	rank := map[string]int{StateError: 3, StateFailure: 2, StatePending: 1}
	best := StateSuccess
	for _, s := range states {
		if rank[s] > rank[best] {
			best = s
		}
	}
	return best
}

// ReleaseStatus is an external check (CI, tests) reported on a release.
type ReleaseStatus struct {
	ID          string    `json:"id"`
	ReleaseID   string    `json:"-"`
	State       string    `json:"state"`
	Name        string    `json:"name"`
	Context     string    `json:"context"`
	Description string    `json:"description"`
	TargetURL   string    `json:"target_url"`
	ImageURL    string    `json:"image_url"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

var contextRE = regexp.MustCompile(`^[./\\+\-A-Za-z0-9]+$`)

// Validate returns EUnprocessable naming the first field that breaks the
// API's rules for release statuses.
func (s *ReleaseStatus) Validate() error {
	switch s.State {
	case StateError, StateFailure, StatePending, StateSuccess:
	default:
		return Errorf(EUnprocessable, "state must be one of error, failure, pending or success, not %q.", Clip(s.State))
	}
	if n := len(s.Context); n < 6 || n > 31 || !contextRE.MatchString(s.Context) {
		return Errorf(EUnprocessable, "context must be 6 to 31 characters of letters, digits and . / \\ + -.")
	}
	if n := len(s.Name); n < 4 || n > 255 {
		return Errorf(EUnprocessable, "name must be 4 to 255 characters.")
	}
	if len(s.Description) >= 1024 {
		return Errorf(EUnprocessable, "description must be under 1024 characters.")
	}
	for field, u := range map[string]string{"target_url": s.TargetURL, "image_url": s.ImageURL} {
		if u == "" {
			continue
		}
		if !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) || len(u) >= 256 {
			return Errorf(EUnprocessable, "%s must start with http:// or https:// and be under 256 characters.", field)
		}
	}
	return nil
}

var configKeyRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)

// ValidateConfigKey returns EUnprocessable for malformed or reserved keys.
func ValidateConfigKey(k string) error {
	if !configKeyRE.MatchString(k) {
		return Errorf(EUnprocessable, "Config var key %q is invalid: use A-Z, 0-9 and _, not starting with a digit.", Clip(k))
	}
	if ReservedConfigKey(k) {
		return Errorf(EUnprocessable, "Config var key %q is reserved by Slipway; choose another name.", Clip(k))
	}
	return nil
}

// Config var limits. The runtime hands config vars to every dyno in its
// environment, where a NUL byte cannot be written and the kernel refuses an
// exec whose environment is too large ("argument list too long"): values
// past them would be stored and then fail every release.
const (
	MaxConfigValue = 32 << 10  // bytes of one value
	MaxConfigTotal = 256 << 10 // bytes of an app's keys and values together
)

// ValidateConfigValue returns EUnprocessable naming k when v holds a NUL
// byte or is longer than MaxConfigValue.
func ValidateConfigValue(k, v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return Errorf(EUnprocessable, "Config var %s contains a NUL byte, which no process environment can hold; remove it (encode binary values, e.g. with base64).", k)
	}
	if len(v) > MaxConfigValue {
		return Errorf(EUnprocessable, "Config var %s is %d bytes; a value may be at most %d bytes (32 KiB). Keep large values in a file of the slug or an external store.", k, len(v), MaxConfigValue)
	}
	return nil
}

// ConfigSize is the size config vars count against MaxConfigTotal: every
// key and value.
func ConfigSize(cfg map[string]string) int {
	n := 0
	for k, v := range cfg {
		n += len(k) + len(v)
	}
	return n
}

// ValidateConfigTotal returns EUnprocessable when after, an app's config
// vars after a change, is over MaxConfigTotal and larger than before; the
// message names the largest of the keys the change sets. A change that
// shrinks config vars already over the limit is allowed.
func ValidateConfigTotal(before, after map[string]string, set []string) error {
	n := ConfigSize(after)
	if n <= MaxConfigTotal || n <= ConfigSize(before) {
		return nil
	}
	largest := ""
	for _, k := range set {
		if v, ok := after[k]; ok && (largest == "" || len(v) > len(after[largest]) || len(v) == len(after[largest]) && k < largest) {
			largest = k
		}
	}
	return Errorf(EUnprocessable, "Setting %s would bring the app's config vars to %d bytes; an app may have at most %d bytes (256 KiB) of keys and values. Unset or shorten some config vars first.", largest, n, MaxConfigTotal)
}

// ReservedConfigKey reports whether k is set by the runtime itself (PORT,
// DYNO, SLIPWAY_*), so config vars may not use it.
func ReservedConfigKey(k string) bool {
	return k == "PORT" || k == "DYNO" || strings.HasPrefix(k, "SLIPWAY_")
}

// NewRelease asks for a release. Exactly one of SlugID and RollbackTo is set
// (or neither when Config is set: a config change releases the current slug).
type NewRelease struct {
	AppID       string
	SlugID      string // a succeeded build of the app, or "latest"
	RollbackTo  string // id or vN of an earlier release of the app
	Description string
	Trigger     string
	UserID      string
	UserEmail   string
	// ConfigChange, when not nil, sets (non-nil value) and unsets (nil)
	// config vars and releases the current slug with the new config.
	ConfigChange map[string]*string
	// Config, when not nil, is the exact config of the release (promotions
	// pass the target's own config; nil reads the app's config vars).
	Config map[string]string
	// Downstream checks are skipped for promotions and rollbacks.
	Promotion bool
}

// ReleaseStore keeps releases as the API creates and shows them.
type ReleaseStore interface {
	// CreateRelease assigns the next version of the app and queues the
	// release. ENotFound for an unknown app or rollback target; EConflict
	// for a slug that is not a succeeded build of the app or a rollback
	// target that has not finished; EUnprocessable for a malformed slug
	// id, a slug release to a downstream pipeline app, or a ConfigChange
	// with an invalid key or a value past the config var limits
	// (ValidateConfigValue, ValidateConfigTotal). Nothing is written when
	// it fails.
	CreateRelease(ctx context.Context, r NewRelease) (*Release, error)
	// FindRelease finds a release of the app by id or "vN"; ENotFound if
	// none.
	FindRelease(ctx context.Context, appID, idOrVersion string) (*Release, error)
	// ListReleases calls fn for each release of the page, in order,
	// without holding them all in memory, and returns fn's first error.
	// ENotFound for an unknown app; EInvalid for a Page.Start that is not
	// a version number.
	ListReleases(ctx context.Context, appID string, p Page, fn func(*Release) error) error
	// CurrentRelease returns the newest succeeded (or unknown) release;
	// ENotFound when the app has none.
	CurrentRelease(ctx context.Context, appID string) (*Release, error)
	// ReleaseLog returns the release's log lines with Seq greater than
	// after (none, not an error, for an unknown release).
	ReleaseLog(ctx context.Context, id string, after int64) ([]ReleaseLogLine, error)
}

// ReleaseQueue is the engine's side of releases: the durable queue of
// work it carries out, app by app (releases, and restarts of dynos).
type ReleaseQueue interface {
	// NextRelease returns the lowest-version release of the app that is
	// queued or pending; ENotFound if none.
	NextRelease(ctx context.Context, appID string) (*Release, error)
	// AppsWithWork lists the ids of apps that have a queued or pending
	// release or a queued restart.
	AppsWithWork(ctx context.Context) ([]string, error)
	// AppsToWork is AppsWithWork less the apps whose lease another holder
	// has and has not let expire: the apps holder could carry work out
	// for now. The engine's sweep asks for these, so that each server does
	// not try every busy app's lease every second.
	AppsToWork(ctx context.Context, holder string) ([]string, error)
	// SetReleaseStatus moves a release along its state machine, recording
	// reason as its error, keeping the app's current release in step and
	// emitting release_failed for a failed one. ENotFound for an unknown
	// release; EConflict for a transition ReleaseTransitionAllowed
	// refuses.
	SetReleaseStatus(ctx context.Context, id, status, reason string) error
	// FinishRelease is SetReleaseStatus that also records f (redacted by
	// the caller: see Redactor) with a failed or unknown release, so that
	// the release and its release_failed event carry it. f is ignored for
	// other statuses.
	FinishRelease(ctx context.Context, id, status, reason string, f *Failure) error
	// AppendReleaseLog adds a line, stamped with the time, to the
	// release's log.
	AppendReleaseLog(ctx context.Context, id string, line string) error

	// QueueRestart queues a restart of the app's dynos (dyno "" for all
	// of them), carried out in turn with the app's releases; ENotFound for
	// an unknown app.
	QueueRestart(ctx context.Context, appID, dyno string) (*Restart, error)
	// NextRestart returns the app's oldest queued restart; ENotFound if
	// none.
	NextRestart(ctx context.Context, appID string) (*Restart, error)
	// FinishRestart takes a restart off the queue, carried out or given
	// up.
	FinishRestart(ctx context.Context, id string) error
}

// Restart is a rolling restart of an app's dynos, waiting in the app's
// queue: like a release, it is carried out by the server that holds the
// app's lease, never beside a rollout of the app.
type Restart struct {
	ID        string
	AppID     string
	Dyno      string // a dyno's name or id, "" for all of the app's dynos
	CreatedAt time.Time
}

// ReleaseStatusStore keeps the checks (CI, tests) reported on releases.
type ReleaseStatusStore interface {
	// CreateReleaseStatus records s on its release and sets its id and
	// times. EUnprocessable for a field ReleaseStatus.Validate refuses or
	// a context the release already has a status for.
	CreateReleaseStatus(ctx context.Context, s *ReleaseStatus) error
	// ListReleaseStatuses lists the release's statuses, oldest first.
	ListReleaseStatuses(ctx context.Context, releaseID string) ([]*ReleaseStatus, error)
	// FindReleaseStatus finds a status of the release; ENotFound if none.
	FindReleaseStatus(ctx context.Context, releaseID, id string) (*ReleaseStatus, error)
	// UpdateReleaseStatus saves s's fields. EUnprocessable for a field
	// Validate refuses; ENotFound for an unknown status.
	UpdateReleaseStatus(ctx context.Context, s *ReleaseStatus) error
}
