package wire

// SourceBlob is where a build came from. URL never holds a data: URI's
// archive (it is shown as "data:") nor credentials.
type SourceBlob struct {
	Checksum string `json:"checksum"`
	URL      string `json:"url"`
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Branch   string `json:"branch"`
	Repo     string `json:"repo"`
	Author   string `json:"author"`
	Message  string `json:"message"`
	// CommitTime is when the commit was made, when the build gave it.
	CommitTime *Time `json:"commit_time,omitempty"`
}

// Build is a build. Slug is set once it succeeded; its id is the build's.
type Build struct {
	ID              string     `json:"id"`
	App             AppRef     `json:"app"`
	CreatedAt       Time       `json:"created_at"`
	UpdatedAt       Time       `json:"updated_at"`
	SourceBlob      SourceBlob `json:"source_blob"`
	Slug            *IDRef     `json:"slug"`
	Status          string     `json:"status"`
	User            User       `json:"user"`
	OutputStreamURL string     `json:"output_stream_url"`
	// Buildpacks is always null (slugs run as they are), and Release
	// null: Akkeris shows both.
	Buildpacks *[]string `json:"buildpacks"`
	Release    *IDRef    `json:"release"`
}

// NewBuild is the body of POST /apps/{app}/builds. URL is a docker://
// image, a data: URI holding the archive, or an http(s):// archive URL.
type NewBuild struct {
	URL      string `json:"url"`
	Checksum string `json:"checksum,omitempty"`
	Repo     string `json:"repo,omitempty"`
	SHA      string `json:"sha,omitempty"`
	Branch   string `json:"branch,omitempty"`
	Version  string `json:"version,omitempty"`
	Org      string `json:"org,omitempty"`
	Author   string `json:"author,omitempty"`
	Message  string `json:"message,omitempty"`
	// CommitTime is the RFC 3339 time of the commit built, which lead
	// time for changes starts from.
	CommitTime string `json:"commit_time,omitempty"`
}

// BuildStatus is a build's id and status, as its result shows them.
type BuildStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// BuildResult is a build's status and its output lines so far.
type BuildResult struct {
	Build BuildStatus `json:"build"`
	Lines []string    `json:"lines"`
}

// Slug is what a build made: an archive's process types, or an image.
//
// It also carries the fields of the build that made it (app, status, user,
// …): Builds.md shows a slug answered much as its build is; slug.id is the
// slug's own id.
type Slug struct {
	App             AppRef            `json:"app"`
	Buildpacks      *[]string         `json:"buildpacks"`
	Checksum        string            `json:"checksum"`
	CreatedAt       Time              `json:"created_at"`
	ID              string            `json:"id"`
	Image           string            `json:"image"`
	OutputStreamURL string            `json:"output_stream_url"`
	ProcessTypes    map[string]string `json:"process_types"`
	Release         *IDRef            `json:"release"`
	Size            int64             `json:"size"`
	Slug            *IDRef            `json:"slug"`
	SourceBlob      SourceBlob        `json:"source_blob"`
	Status          string            `json:"status"`
	UpdatedAt       Time              `json:"updated_at"`
	User            User              `json:"user"`
}
