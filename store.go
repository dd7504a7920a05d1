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
	Desc           bool
	Max            int // rows in the page; 0 means no limit
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

// AppUpdate changes an app; nil fields stay as they are.
type AppUpdate struct {
	Description *string
	Maintenance *bool
	AutoRelease *bool
}

// BuildResult ends a build: its status and, on success, its slug.
type BuildResult struct {
	Status string
	Slug   *Slug
	Lines  []string
}

// Store keeps Slipway's records. Every method returns ENotFound for an
// unknown id, EConflict for a state that does not allow the change and
// EUnprocessable for a request that breaks a rule; anything else is
// internal.
type Store interface {
	WorkflowStore

	Ping(ctx context.Context) error
	Close() error

	CreateOrganization(ctx context.Context, o *Organization) error
	ListOrganizations(ctx context.Context) ([]*Organization, error)
	FindOrganization(ctx context.Context, idOrName string) (*Organization, error)
	// CreateSpace creates s, owned by the organization s.OrgName (name or
	// id) or shared when it is ""; EConflict if the name is taken,
	// EUnprocessable for an unknown organization.
	CreateSpace(ctx context.Context, s *Space) error
	ListSpaces(ctx context.Context) ([]*Space, error)
	FindSpace(ctx context.Context, idOrName string) (*Space, error)

	// CreateApp creates a in the organization and space named by a.OrgName
	// and a.SpaceName (an empty a.OrgName is the space's organization, or
	// "default" for a shared space); EConflict if the name is taken in the
	// space, EUnprocessable when the space belongs to another organization.
	CreateApp(ctx context.Context, a *App) error
	// FindApp finds an app by id, by its name-space key, or by a bare name
	// that exactly one app has.
	FindApp(ctx context.Context, idOrKey string) (*App, error)
	// FindAppInOrg is FindApp among the apps of one organization only, as
	// its scoped tokens name them: a bare name another organization also
	// holds still resolves, and another organization's app is ENotFound.
	FindAppInOrg(ctx context.Context, orgID, idOrKey string) (*App, error)
	ListApps(ctx context.Context) ([]*App, error)
	UpdateApp(ctx context.Context, id string, u AppUpdate) (*App, error)
	DeleteApp(ctx context.Context, id string) error
	ConfigVars(ctx context.Context, appID string) (map[string]string, error)

	CreateBuild(ctx context.Context, b *Build) error
	FindBuild(ctx context.Context, appID, id string) (*Build, error)
	ListBuilds(ctx context.Context, appID string, p Page) ([]*Build, error)
	// HoldBuild records holder (the server that will run it) on a build
	// still queued, waiting for a free build slot, so another server's
	// recovery leaves it alone; EConflict if it is not queued.
	HoldBuild(ctx context.Context, id, holder string) error
	// StartBuild moves a queued build to pending on holder (the server
	// running it); EConflict if it is not queued.
	StartBuild(ctx context.Context, id, holder string) error
	AppendBuildLines(ctx context.Context, id string, lines ...string) error
	BuildLines(ctx context.Context, id string) ([]string, error)
	// FinishBuild ends a pending or queued build; EConflict if it already ended.
	FinishBuild(ctx context.Context, id string, r BuildResult) error
	// UnfinishedBuilds lists builds left queued or pending by holder or by
	// no server.
	UnfinishedBuilds(ctx context.Context, holder string) ([]*Build, error)
	FindSlug(ctx context.Context, id string) (*Slug, error)

	// CreateRelease assigns the next version of the app and queues the
	// release. EConflict for a slug that is not a succeeded build of the
	// app; ENotFound for an unknown rollback target; EUnprocessable for a
	// slug release to a downstream pipeline app, and for a ConfigChange
	// with an invalid key or a value past the config var limits
	// (ValidateConfigValue, ValidateConfigTotal), when nothing is written.
	CreateRelease(ctx context.Context, r NewRelease) (*Release, error)
	// FindRelease finds a release of the app by id or "vN".
	FindRelease(ctx context.Context, appID, idOrVersion string) (*Release, error)
	// ListReleases calls fn for each release of the page, in order,
	// without holding them all in memory.
	ListReleases(ctx context.Context, appID string, p Page, fn func(*Release) error) error
	// CurrentRelease returns the newest succeeded (or unknown) release, or
	// ENotFound when the app has none.
	CurrentRelease(ctx context.Context, appID string) (*Release, error)
	// NextRelease returns the lowest-version release of the app that is
	// queued or pending, or ENotFound.
	NextRelease(ctx context.Context, appID string) (*Release, error)
	// AppsWithWork lists ids of apps that have a queued or pending release.
	AppsWithWork(ctx context.Context) ([]string, error)
	// SetReleaseStatus moves a release along its state machine (EConflict
	// for a transition ReleaseTransitionAllowed refuses), recording why a
	// release failed.
	SetReleaseStatus(ctx context.Context, id, status, reason string) error
	AppendReleaseLog(ctx context.Context, id string, line string) error
	// ReleaseLog returns log lines with Seq greater than after.
	ReleaseLog(ctx context.Context, id string, after int64) ([]ReleaseLogLine, error)

	CreateReleaseStatus(ctx context.Context, s *ReleaseStatus) error
	ListReleaseStatuses(ctx context.Context, releaseID string) ([]*ReleaseStatus, error)
	FindReleaseStatus(ctx context.Context, releaseID, id string) (*ReleaseStatus, error)
	UpdateReleaseStatus(ctx context.Context, s *ReleaseStatus) error

	ListFormations(ctx context.Context, appID string) ([]*Formation, error)
	// UpsertFormations creates or changes formations; a zero field of an
	// existing formation keeps its value unless set in fields.
	// EUnprocessable (and nothing changes) for an invalid change or one
	// that takes the app past MaxFormationTypes or the app or its
	// organization past the store's DynoLimits.
	UpsertFormations(ctx context.Context, appID string, fs []FormationChange) ([]*Formation, error)
	DeleteFormation(ctx context.Context, appID, typ string) error
	// CreateToken stores a token scoped to t.OrgID; only its hash is kept.
	CreateToken(ctx context.Context, t *Token, secret string) error
	// FindToken finds a scoped token by its secret; ENotFound if none.
	FindToken(ctx context.Context, secret string) (*Token, error)
	// ListTokens lists scoped tokens, without their secrets.
	ListTokens(ctx context.Context) ([]*Token, error)
	// DeleteToken revokes a scoped token; ENotFound if none.
	DeleteToken(ctx context.Context, id string) error

	// AcquireLease takes or renews the app's lease for holder for ttl; it
	// reports false while another holder's lease is unexpired.
	AcquireLease(ctx context.Context, appID, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives the lease up if holder has it.
	ReleaseLease(ctx context.Context, appID, holder string) error

	// EnsureFormations creates, for an app with no formation, web with
	// quantity 1 and every other process type with quantity 0.
	// EUnprocessable (and nothing changes) when that passes a limit, as
	// for UpsertFormations.
	EnsureFormations(ctx context.Context, appID string, processTypes []string) error
}

// FormationChange is one formation to create or change; nil fields keep
// their value (or take the default on create).
type FormationChange struct {
	Type        string
	Quantity    *int
	Size        *string
	Port        *int
	Command     *string
	Healthcheck *string
}

// Clock is the time source; tests inject a fake.
type Clock func() time.Time
