package slipway

import (
	"context"
	"time"
)

// Build statuses.
const (
	BuildQueued    = "queued"    // created, not started
	BuildPending   = "pending"   // fetching and unpacking the source
	BuildSucceeded = "succeeded" // the slug is ready to release
	BuildFailed    = "failed"    // see the build's result lines for why
)

// Build turns a source (archive or image reference) into a slug.
type Build struct {
	ID        string
	AppID     string
	Status    string
	SourceURL string // the URL as given; data: URIs are stored as "data:" only
	Checksum  string
	Repo      string
	SHA       string
	Branch    string
	Version   string
	Author    string
	Message   string
	// CommitTime is when the build's commit was made, as the pusher said
	// (the zero time when not given); lead time for changes runs from it.
	CommitTime time.Time
	UserID     string
	UserEmail  string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Slug is the output of a succeeded build; its id equals the build's id.
type Slug struct {
	ID           string            `json:"id"`
	AppID        string            `json:"-"`
	ProcessTypes map[string]string `json:"process_types"`
	Size         int64             `json:"size"`
	Checksum     string            `json:"checksum"`
	Image        string            `json:"image"` // docker reference for image builds, "" for archives
	Dir          string            `json:"-"`     // where the archive is unpacked, "" for images
	CreatedAt    time.Time         `json:"created_at"`
}

// BuildSource is what a builder needs to make a slug.
type BuildSource struct {
	URL      string // docker://, data:, http:// or https://
	Checksum string // "sha256:<hex>" or ""
	// Scoped is set for a build asked for by an organization-scoped token:
	// its http(s) URL may reach only public addresses (and those the
	// operator opened), never loopback, link-local or private ones.
	Scoped bool
	// File, when set, is a local file that holds the archive of an inline
	// (data:) build, decoded while the request was read; URL is then just
	// "data:". Whoever runs the build removes the file when it ends.
	File string
}

// Builder makes slugs from sources.
type Builder interface {
	// Build fetches src, verifies it and unpacks it into dir, reporting what
	// it does line by line. It returns the slug's process types, size,
	// checksum and image. A bad source is an *Error with EUnprocessable or
	// ETooLarge; ctx cancellation stops it.
	Build(ctx context.Context, src BuildSource, dir string, logf func(format string, args ...any)) (*Slug, error)
}

// BuildResult ends a build: its status and, on success, its slug.
type BuildResult struct {
	Status string
	Slug   *Slug
	Lines  []string
}

// FinishedLine is the last line of an ended build's result, the one
// Akkeris clients wait for: "Finished: SUCCESS" for a succeeded build,
// "Finished: FAILURE" for any other.
func FinishedLine(status string) string {
	if status == BuildSucceeded {
		return "Finished: SUCCESS"
	}
	return "Finished: FAILURE"
}

// BuildStore keeps builds and their slugs, as the API shows them.
type BuildStore interface {
	// CreateBuild records b as a queued build and sets its id and times.
	CreateBuild(ctx context.Context, b *Build) error
	// FindBuild finds a build of the app; ENotFound if none.
	FindBuild(ctx context.Context, appID, id string) (*Build, error)
	// ListBuilds lists the app's builds by creation time, a page at a
	// time (see Page: its cursor is a time and an id). EInvalid for a
	// Page.Start that is not a created_at cursor.
	ListBuilds(ctx context.Context, appID string, p Page) ([]*Build, error)
	// BuildLines returns the build's result lines in order.
	BuildLines(ctx context.Context, id string) ([]string, error)
	// FindSlug finds a slug (its id is its build's); ENotFound if none.
	FindSlug(ctx context.Context, id string) (*Slug, error)
}

// BuildQueue is what runs builds: the engine's side of builds.
type BuildQueue interface {
	// HoldBuild records holder (the server that will run it) on a build
	// still queued, waiting for a free build slot, so another server's
	// recovery leaves it alone; EConflict if it is not queued.
	HoldBuild(ctx context.Context, id, holder string) error
	// StartBuild moves a queued build to pending on holder (the server
	// running it); EConflict if it is not queued.
	StartBuild(ctx context.Context, id, holder string) error
	// AppendBuildLines adds lines to the build's result.
	AppendBuildLines(ctx context.Context, id string, lines ...string) error
	// FinishBuild ends a queued or pending build with r, saving its slug
	// on success and emitting the build event; EConflict if it already
	// ended.
	FinishBuild(ctx context.Context, id string, r BuildResult) error
	// UnfinishedBuilds lists builds left queued or pending by holder or by
	// no server, oldest first.
	UnfinishedBuilds(ctx context.Context, holder string) ([]*Build, error)
}
