package wire

import "github.com/slipway/slipway"

// Release is a release of an app: a slug and config vars rolled out on
// its dynos. Error says why a failed or unknown release ended so, and is
// left out otherwise.
type Release struct {
	ID          string `json:"id"`
	App         AppRef `json:"app"`
	CreatedAt   Time   `json:"created_at"`
	UpdatedAt   Time   `json:"updated_at"`
	Description string `json:"description"`
	Slug        IDRef  `json:"slug"`
	Status      string `json:"status"`
	// State is the combined state of the release's status checks.
	State   string `json:"state"`
	User    User   `json:"user"`
	Version int    `json:"version"`
	Current bool   `json:"current"`
	Trigger string `json:"trigger"`
	Error   string `json:"error,omitempty"`
	// Failure is why a failed or unknown release ended, as data; null
	// for other releases.
	Failure *slipway.Failure `json:"failure"`
	// OutputStreamURL is the path of the release's rollout log.
	OutputStreamURL string `json:"output_stream_url"`
	// Strategy is the strategy the release rolls out with ("rolling",
	// "canary", "blue-green").
	Strategy string `json:"strategy,omitempty"`
	// Rollout is the state of a canary or blue-green rollout; absent for
	// a rolling release.
	Rollout *Rollout `json:"rollout,omitempty"`
}

// Rollout is a canary or blue-green release's progress: step counts from
// 0, weight is the share (0–100) of traffic on the new release, phase one
// of progressing, paused, analyzing, promoting, aborted, done.
type Rollout struct {
	Strategy   string          `json:"strategy"`
	Step       int             `json:"step"`
	Steps      int             `json:"steps"`
	Weight     int             `json:"weight"`
	Phase      string          `json:"phase"`
	PauseUntil *Time           `json:"pause_until"`
	WaitingFor []string        `json:"waiting_for"`
	Analysis   slipway.Figures `json:"analysis"`
	Reason     string          `json:"reason"`
	PreviewURL string          `json:"preview_url,omitempty"`
}

// ReleaseAction is the body of POST /apps/{app}/releases/{id}/actions/promote:
// Full skips the remaining steps to 100%. The other actions (abort, pause,
// resume) take no body.
type ReleaseAction struct {
	Full bool `json:"full,omitempty"`
}

// NewRelease is the body of POST /apps/{app}/releases: Slug (a build id)
// to deploy, or Release (an id or vN) to roll back to.
type NewRelease struct {
	Slug        string `json:"slug,omitempty"`
	Release     string `json:"release,omitempty"`
	Description string `json:"description,omitempty"`
}

// ReleaseStatusRef is a release's id and status, as its log shows them.
type ReleaseStatusRef struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// ReleaseLog is a release's rollout log, one line per step.
type ReleaseLog struct {
	Lines   []string         `json:"lines"`
	Release ReleaseStatusRef `json:"release"`
}

// ReleaseStatus is a check reported on a release, such as a CI run, with
// the release it is reported on.
type ReleaseStatus struct {
	ID          string  `json:"id"`
	State       string  `json:"state"`
	Name        string  `json:"name"`
	Context     string  `json:"context"`
	Description string  `json:"description"`
	TargetURL   string  `json:"target_url"`
	ImageURL    string  `json:"image_url"`
	CreatedAt   Time    `json:"created_at"`
	UpdatedAt   Time    `json:"updated_at"`
	Release     Release `json:"release"`
}

// ReleaseStatusChange is the body of POST and PATCH
// /apps/{app}/releases/{release}/statuses[/{status}]; nil fields stay as
// they are. Context cannot be changed once set.
type ReleaseStatusChange struct {
	State       *string `json:"state,omitempty"`
	Name        *string `json:"name,omitempty"`
	Context     *string `json:"context,omitempty"`
	Description *string `json:"description,omitempty"`
	TargetURL   *string `json:"target_url,omitempty"`
	ImageURL    *string `json:"image_url,omitempty"`
}

// ReleaseStatuses is a release's checks and their combined state.
type ReleaseStatuses struct {
	Release  Release         `json:"release"`
	State    string          `json:"state"`
	Statuses []ReleaseStatus `json:"statuses"`
}

// Formation is one process type of an app and its scale. ID is stable
// for the app and type (Akkeris shows one; Slipway derives it).
type Formation struct {
	ID          string `json:"id"`
	App         AppRef `json:"app"`
	Type        string `json:"type"`
	Quantity    int    `json:"quantity"`
	Size        string `json:"size"`
	Port        int    `json:"port"`
	Command     string `json:"command"`
	Healthcheck string `json:"healthcheck"`
	CreatedAt   Time   `json:"created_at"`
	UpdatedAt   Time   `json:"updated_at"`
}

// FormationChange is the body of POST /apps/{app}/formation and PATCH
// /apps/{app}/formation/{type}, and one item of a batch PATCH; nil fields
// stay as they are.
type FormationChange struct {
	Type        string  `json:"type,omitempty"`
	Quantity    *int    `json:"quantity,omitempty"`
	Size        *string `json:"size,omitempty"`
	Port        *int    `json:"port,omitempty"`
	Command     *string `json:"command,omitempty"`
	Healthcheck *string `json:"healthcheck,omitempty"`
	// RemoveHealthcheck true clears the health check, RemoveCommand true
	// the command (the Procfile's runs again), as Akkeris clients send.
	RemoveHealthcheck *bool `json:"removeHealthcheck,omitempty"`
	RemoveCommand     *bool `json:"remove-command,omitempty"`
}

// Size is a dyno size a formation may ask for (GET /sizes), in
// Kubernetes quantities: memory "512Mi", cpu "500m". The default size
// sets none (the server's own limits apply).
type Size struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Resources   SizeResources `json:"resources"`
}

// SizeResources are what a dyno of a size is promised and held to.
type SizeResources struct {
	Requests SizeQuantities `json:"requests"`
	Limits   SizeQuantities `json:"limits"`
}

// SizeQuantities are memory ("512Mi") and CPU ("500m"); "" for no limit.
type SizeQuantities struct {
	Memory string `json:"memory"`
	CPU    string `json:"cpu"`
}

// FormationUpdates is Heroku's form of the batch PATCH
// /apps/{app}/formation; a bare array of FormationChange works too.
type FormationUpdates struct {
	Updates []FormationChange `json:"updates"`
}

// ReleaseRef is a release's id and version.
type ReleaseRef struct {
	ID      string `json:"id"`
	Version int    `json:"version"`
}

// Dyno is one running process of an app. Name is its instance within its
// type ("1", or a pod's "<hash>-<suffix>"): clients print Type.Name.
type Dyno struct {
	App            AppRef     `json:"app"`
	ID             string     `json:"id"`
	Name           string     `json:"name"`
	Type           string     `json:"type"`
	State          string     `json:"state"`
	Ready          bool       `json:"ready"`
	Release        ReleaseRef `json:"release"`
	Command        string     `json:"command"`
	CreatedAt      Time       `json:"created_at"`
	UpdatedAt      Time       `json:"updated_at"`
	AdditionalInfo string     `json:"additional_info"`
	// AttachURL is always "" (Slipway has no attach), as Akkeris shows it.
	AttachURL string `json:"attach_url"`
	// Size is the size of the dyno's formation.
	Size string `json:"size"`
}

// Restart is the answer (202) to a restart of dynos: Status is "pending",
// as Dynos.md shows it, and Message says how to follow the restart.
type Restart struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}
