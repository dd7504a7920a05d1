package wire

// Organization owns apps.
type Organization struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CreatedAt   Time   `json:"created_at"`
	UpdatedAt   Time   `json:"updated_at"`
	// Role is what the asking token may do in the organization: "admin"
	// for the admin token, "member" for a token limited to it.
	Role string `json:"role"`
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
	// Region and Stack are the server's one region and stack.
	Region Ref `json:"region"`
	Stack  Ref `json:"stack"`
	// State is always "allocated": a space is ready once created.
	State string `json:"state"`
}

// NewSpace is the body of POST /spaces.
type NewSpace struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Compliance  []string `json:"compliance,omitempty"`
	// Org owns the space; without it the space is shared by every
	// organization.
	Org string `json:"org,omitempty"`
	// Stack, when given, must name the server's one stack (name or id).
	Stack string `json:"stack,omitempty"`
}

// SpaceRef is the space of an app.
type SpaceRef struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Compliance []string `json:"compliance"`
}

// App is an app. Name and Key are both its key, "<name>-<space>", which
// names it in paths (Akkeris answers the key as the name); SimpleName is
// the bare name it was created with.
type App struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	SimpleName   string   `json:"simple_name"`
	Key          string   `json:"key"`
	Description  string   `json:"description"`
	Organization Ref      `json:"organization"`
	Space        SpaceRef `json:"space"`
	CreatedAt    Time     `json:"created_at"`
	UpdatedAt    Time     `json:"updated_at"`
	ReleasedAt   *Time    `json:"released_at"`
	WebURL       string   `json:"web_url"`
	// Image is the current release's docker image, or its slug id; null
	// before the first release.
	Image       *string `json:"image"`
	Maintenance bool    `json:"maintenance"`
	GitURL      string  `json:"git_url"`
	GitBranch   string  `json:"git_branch"`
	// Region and Stack are the server's one region and stack; BuildStack
	// is the same stack (Akkeris names the stack builds run on so).
	Region     Ref `json:"region"`
	Stack      Ref `json:"stack"`
	BuildStack Ref `json:"build_stack"`
	// Owner is the app's organization, as an owner: {id, email ""}.
	Owner User `json:"owner"`
	// Preview is always null: Slipway makes no preview apps.
	Preview *IDRef `json:"preview"`
	// SlugSize is the size in bytes of the current release's slug; 0
	// for an image or before the first release.
	SlugSize int64 `json:"slug_size"`
}

// DeletedApp is the answer to DELETE /apps/{app}: the app as it was, and
// Result "successful", as Akkeris answers.
type DeletedApp struct {
	App
	Result string `json:"result"`
}

// Region is where apps run. A Slipway server has exactly one, named after
// its runtime ("local" or "kubernetes"). Fields Slipway does not know
// (country, locale, the provider's region and zones) are empty.
type Region struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	Description    string         `json:"description"`
	Country        string         `json:"country"`
	Locale         string         `json:"locale"`
	PrivateCapable bool           `json:"private_capable"`
	Provider       RegionProvider `json:"provider"`
	// HighAvailability is spelt "high_availiability", as Akkeris spells it.
	HighAvailability bool `json:"high_availiability"`
	CreatedAt        Time `json:"created_at"`
	UpdatedAt        Time `json:"updated_at"`
}

// RegionProvider is what a region runs on: Name is the runtime.
type RegionProvider struct {
	Name              string   `json:"name"`
	Region            string   `json:"region"`
	AvailabilityZones []string `json:"availability_zones"`
}

// Stack is a runtime within a region. A Slipway server has exactly one,
// named after its runtime, as its region is.
type Stack struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Region    Ref    `json:"region"`
	CreatedAt Time   `json:"created_at"`
	UpdatedAt Time   `json:"updated_at"`
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
// Name, which Akkeris clients send, may only repeat the app's name or
// key: apps are not renamed.
type AppUpdate struct {
	Description *string `json:"description,omitempty"`
	Maintenance *bool   `json:"maintenance,omitempty"`
	Name        *string `json:"name,omitempty"`
}

// Feature is an app's switchable behaviour, such as auto-release. ID is
// the same for the feature on every app and every server.
type Feature struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Description string `json:"description"`
	// DocURL is the feature's documentation path, "/features/<name>".
	DocURL string `json:"doc_url"`
	// State is how settled the feature is: "public" or "beta".
	State         string `json:"state"`
	FeedbackEmail string `json:"feedback_email"`
	Enabled       bool   `json:"enabled"`
}

// FeatureUpdate is the body of PATCH /apps/{app}/features/{feature};
// Enabled is required.
type FeatureUpdate struct {
	Enabled *bool `json:"enabled"`
}

// ConfigVarNote describes one config var in GET
// /apps/{app}/config-vars/notes: Type is "system" for the variables the
// runtime sets itself (read-only) and "user" for the app's config vars.
// Addon is always null: Slipway has no addons.
type ConfigVarNote struct {
	Type        string `json:"type"`
	Addon       *IDRef `json:"addon"`
	ReadOnly    bool   `json:"read_only"`
	Required    bool   `json:"required"`
	Description string `json:"description"`
}
