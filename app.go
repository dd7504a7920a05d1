package slipway

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// Organization owns apps. A fresh server has one named "default".
type Organization struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Space groups apps; an app's key is "<name>-<space>". A fresh server has
// one named "default".
//
// A space with an organization belongs to it alone: only that
// organization's apps go in it, and tokens of other organizations do not
// see it. A space without one is shared by the admin on purpose ("default"
// and every space made before spaces had organizations): every
// organization may create apps in it.
type Space struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Compliance  []string  `json:"compliance"`
	OrgID       string    `json:"-"` // "" for a shared space
	OrgName     string    `json:"-"` // on create: the owner's name or id, "" for shared
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Shared reports whether every organization may create apps in the space.
func (s *Space) Shared() bool { return s.OrgID == "" }

// VisibleTo reports whether a token of the organization orgID sees the
// space ("" is the admin, who sees every space).
func (s *Space) VisibleTo(orgID string) bool {
	return orgID == "" || s.OrgID == "" || s.OrgID == orgID
}

// App is a deployable application.
type App struct {
	ID           string
	Name         string
	Description  string
	OrgID        string
	OrgName      string
	SpaceID      string
	SpaceName    string
	Compliance   []string
	Maintenance  bool
	GitURL       string
	GitBranch    string
	AutoRelease  bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
	ReleasedAt   *time.Time // when the current release succeeded, nil if none
	CurrentImage string     // image or slug id running now, "" if none
	SlugSize     int64      // size of the slug running now, 0 for an image or none
}

// Key is the app's name-space key, accepted wherever an app id is.
func (a *App) Key() string { return a.Name + "-" + a.SpaceName }

// Ref is the app's reference as carried in desired states and hooks.
func (a *App) Ref() AppRef { return AppRef{ID: a.ID, Name: a.Name, Key: a.Key(), Space: a.SpaceName} }

// AppRef identifies an app to a runtime.
type AppRef struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Key   string `json:"key"`
	Space string `json:"space"`
}

var (
	appNameRE   = regexp.MustCompile(`^[a-z][a-z0-9]{0,23}$`)
	plainNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
)

// ValidateAppName returns EUnprocessable unless name is lowercase letters and
// digits, starts with a letter and has at most 24 characters.
func ValidateAppName(name string) error {
	if !appNameRE.MatchString(name) {
		return Errorf(EUnprocessable, "App name %q is invalid: use lowercase letters and digits, starting with a letter, at most 24 characters.", Clip(name))
	}
	return nil
}

// ValidateName checks the name of an organization, space or pipeline:
// lowercase letters, digits and dashes, starting with a letter.
func ValidateName(kind, name string) error {
	if !plainNameRE.MatchString(name) {
		return Errorf(EUnprocessable, "The %s name %q is invalid: use lowercase letters, digits and dashes, starting with a letter, at most 63 characters.", kind, Clip(name))
	}
	if kind == "space" && strings.Contains(name, "--") {
		// <app>-<space>--preview is a blue-green release's preview host.
		return Errorf(EUnprocessable, "The space name %q is invalid: it may not contain \"--\", which preview hosts of blue-green releases use.", Clip(name))
	}
	return nil
}

// Feature names an app can switch on.
const (
	// FeatureAutoRelease releases every build that succeeds.
	FeatureAutoRelease = "auto-release"
)

// AppUpdate changes an app; nil fields stay as they are.
type AppUpdate struct {
	Description *string
	Maintenance *bool
	AutoRelease *bool
}

// OrganizationStore keeps organizations and the spaces they own or share.
type OrganizationStore interface {
	// CreateOrganization creates o and sets its id and times.
	// EUnprocessable for an invalid name, EConflict if it is taken.
	CreateOrganization(ctx context.Context, o *Organization) error
	// ListOrganizations lists every organization by name.
	ListOrganizations(ctx context.Context) ([]*Organization, error)
	// FindOrganization finds an organization by id or name; ENotFound if none.
	FindOrganization(ctx context.Context, idOrName string) (*Organization, error)
	// CreateSpace creates s, owned by the organization s.OrgName (name or
	// id) or shared when it is "". EUnprocessable for an invalid name or
	// an unknown organization, EConflict if the name is taken.
	CreateSpace(ctx context.Context, s *Space) error
	// ListSpaces lists every space by name.
	ListSpaces(ctx context.Context) ([]*Space, error)
	// FindSpace finds a space by id or name; ENotFound if none.
	FindSpace(ctx context.Context, idOrName string) (*Space, error)
}

// AppStore keeps apps and their config vars.
type AppStore interface {
	// CreateApp creates a in the organization and space named by a.OrgName
	// and a.SpaceName (an empty a.OrgName is the space's organization, or
	// "default" for a shared space). EUnprocessable for an invalid name,
	// an unknown organization or space, or a space that belongs to another
	// organization; EConflict if the name is taken in the space.
	CreateApp(ctx context.Context, a *App) error
	// FindApp finds an app by id, by its name-space key, or by a bare name
	// that exactly one app has. ENotFound if none (or, for a bare name,
	// several) match.
	FindApp(ctx context.Context, idOrKey string) (*App, error)
	// FindAppInOrg is FindApp among the apps of one organization only, as
	// its scoped tokens name them: a bare name another organization also
	// holds still resolves, and another organization's app is ENotFound.
	FindAppInOrg(ctx context.Context, orgID, idOrKey string) (*App, error)
	// ListApps lists every app by name, then space.
	ListApps(ctx context.Context) ([]*App, error)
	// UpdateApp changes the fields of u that are set and returns the app;
	// ENotFound for an unknown app.
	UpdateApp(ctx context.Context, id string, u AppUpdate) (*App, error)
	// DeleteApp deletes the app and everything that belongs to it, and
	// emits its destroy event; ENotFound for an unknown app.
	DeleteApp(ctx context.Context, id string) error
	// ConfigVars returns the app's config vars (empty, not an error, for an
	// unknown app).
	ConfigVars(ctx context.Context, appID string) (map[string]string, error)
}
