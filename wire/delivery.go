package wire

// KeyChanges are names added, removed and changed between two releases:
// config var keys (never their values) or process types.
type KeyChanges struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
}

// DiffSlug is one release's slug in a diff; commit, branch and repo are
// the build's, when it gave them.
type DiffSlug struct {
	ID       string `json:"id"`
	Checksum string `json:"checksum"`
	Image    string `json:"image,omitempty"`
	Commit   string `json:"commit,omitempty"`
	Branch   string `json:"branch,omitempty"`
	Repo     string `json:"repo,omitempty"`
}

// DiffSlugChange is the slug of each release; from is null when the
// release is compared with none.
type DiffSlugChange struct {
	Changed bool      `json:"changed"`
	From    *DiffSlug `json:"from"`
	To      DiffSlug  `json:"to"`
}

// FieldChange is a formation field before and after; a command is shown
// as changed only, without either value.
type FieldChange struct {
	Field string `json:"field"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
}

// FormationDiff is a process type's formation added, removed or changed.
type FormationDiff struct {
	Type   string        `json:"type"`
	Change string        `json:"change"`
	Fields []FieldChange `json:"fields,omitempty"`
}

// StrategyChange is the strategy type of each release.
type StrategyChange struct {
	Changed bool   `json:"changed"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// ReleaseDiff is the answer of GET /apps/{app}/releases/{id}/diff: what
// changed from against (by default the release that was current when
// this one was created; null when there was none) to release. Formation
// is null when either release was made before formations were recorded
// with releases. Config var values never appear.
type ReleaseDiff struct {
	Release      ReleaseRef      `json:"release"`
	Against      *ReleaseRef     `json:"against"`
	Config       KeyChanges      `json:"config"`
	Slug         DiffSlugChange  `json:"slug"`
	ProcessTypes KeyChanges      `json:"process_types"`
	Formation    []FormationDiff `json:"formation"`
	Strategy     StrategyChange  `json:"strategy"`
	RollbackOf   *ReleaseRef     `json:"rollback_of"`
	Summary      string          `json:"summary"`
}

// DeploymentCounts are the deployments created in a window, by outcome
// (failed counts failed and unknown; running those not ended).
type DeploymentCounts struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Running   int `json:"running"`
}

// DeploymentFrequency is succeeded deployments per day of the window.
type DeploymentFrequency struct {
	PerDay float64 `json:"per_day"`
}

// LeadTime is from a build's commit (or, without a commit time, its
// creation: from_build_created counts those) to its deployment
// succeeding, over the succeeded deployments (measured).
type LeadTime struct {
	MedianSeconds    *float64 `json:"median_seconds"`
	P90Seconds       *float64 `json:"p90_seconds"`
	Measured         int      `json:"measured"`
	FromBuildCreated int      `json:"from_build_created"`
}

// ChangeFailureRate is the share of the ended deployments that failed or
// were rolled back past within 24 h; null when none ended.
type ChangeFailureRate struct {
	Rate     *float64 `json:"rate"`
	Failures int      `json:"failures"`
	Ended    int      `json:"ended"`
}

// TimeToRestore is the median from a change failure to the app's next
// succeeded release, over the failures restored.
type TimeToRestore struct {
	MedianSeconds *float64 `json:"median_seconds"`
	Restored      int      `json:"restored"`
	Unrestored    int      `json:"unrestored"`
}

// DeliveryMetrics is the answer of GET /apps/{app}/delivery-metrics and
// GET /pipelines/{pipeline}/delivery-metrics (docs/delivery-metrics.md).
type DeliveryMetrics struct {
	App                 *Ref                `json:"app,omitempty"`
	Pipeline            *Ref                `json:"pipeline,omitempty"`
	Window              string              `json:"window"`
	From                Time                `json:"from"`
	To                  Time                `json:"to"`
	Deployments         DeploymentCounts    `json:"deployments"`
	DeploymentFrequency DeploymentFrequency `json:"deployment_frequency"`
	LeadTime            LeadTime            `json:"lead_time"`
	ChangeFailureRate   ChangeFailureRate   `json:"change_failure_rate"`
	TimeToRestore       TimeToRestore       `json:"time_to_restore"`
}
