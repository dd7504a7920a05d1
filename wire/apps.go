package wire

// Organization owns apps.
type Organization struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CreatedAt   Time   `json:"created_at"`
	UpdatedAt   Time   `json:"updated_at"`
}

// NewOrganization is the body of POST /organizations.
type NewOrganization struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// Space groups apps.
type Space struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	CreatedAt   Time     `json:"created_at"`
	UpdatedAt   Time     `json:"updated_at"`
	Compliance  []string `json:"compliance"`
	// Organization owns the space; null for a space shared by every
	// organization.
	Organization *Ref `json:"organization"`
}

// NewSpace is the body of POST /spaces.
type NewSpace struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Compliance  []string `json:"compliance,omitempty"`
	// Org owns the space; without it the space is shared by every
	// organization.
	Org string `json:"org,omitempty"`
}

// SpaceRef is the space of an app.
type SpaceRef struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Compliance []string `json:"compliance"`
}

// App is an app. Its Key, "<name>-<space>", names it in paths.
type App struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Key          string   `json:"key"`
	Description  string   `json:"description"`
	Organization Ref      `json:"organization"`
	Space        SpaceRef `json:"space"`
	CreatedAt    Time     `json:"created_at"`
	UpdatedAt    Time     `json:"updated_at"`
	ReleasedAt   *Time    `json:"released_at"`
	WebURL       string   `json:"web_url"`
	// Image is the current release's docker image; null for slugs.
	Image       *string `json:"image"`
	Maintenance bool    `json:"maintenance"`
	GitURL      string  `json:"git_url"`
	GitBranch   string  `json:"git_branch"`
}

// NewApp is the body of POST /apps. An empty Space means "default"; an
// empty Org means the space's organization ("default" in a shared space),
// or the token's organization for a token limited to one.
type NewApp struct {
	Name        string `json:"name"`
	Space       string `json:"space,omitempty"`
	Org         string `json:"org,omitempty"`
	Description string `json:"description,omitempty"`
	GitURL      string `json:"git_url,omitempty"`
	GitBranch   string `json:"git_branch,omitempty"`
}

// AppUpdate is the body of PATCH /apps/{app}; nil fields stay as they are.
type AppUpdate struct {
	Description *string `json:"description,omitempty"`
	Maintenance *bool   `json:"maintenance,omitempty"`
}

// Feature is an app's switchable behaviour, such as auto-release.
type Feature struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

// FeatureUpdate is the body of PATCH /apps/{app}/features/{feature};
// Enabled is required.
type FeatureUpdate struct {
	Enabled *bool `json:"enabled"`
}
