package wire

import "encoding/json"

// Pipeline is a named line of stages that apps are coupled to and
// releases are promoted along.
type Pipeline struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt Time   `json:"created_at"`
	UpdatedAt Time   `json:"updated_at"`
}

// NewPipeline is the body of POST /pipelines. This server keeps no
// description; it is sent for servers that do.
type NewPipeline struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// StatusChecks are the release status contexts that must be "success" on
// a release before it may be promoted from a coupling.
type StatusChecks struct {
	Contexts []string `json:"contexts"`
}

// PipelineCoupling places an app at a stage of a pipeline.
type PipelineCoupling struct {
	ID                   string       `json:"id"`
	App                  AppRef       `json:"app"`
	Pipeline             Ref          `json:"pipeline"`
	Stage                string       `json:"stage"`
	RequiredStatusChecks StatusChecks `json:"required_status_checks"`
	CreatedAt            Time         `json:"created_at"`
	UpdatedAt            Time         `json:"updated_at"`
}

// NewPipelineCoupling is the body of POST /pipeline-couplings (App and
// Pipeline are ids or names, an app's key) and of PATCH
// /pipeline-couplings/{id}, which changes RequiredStatusChecks only.
type NewPipelineCoupling struct {
	App                  string        `json:"app,omitempty"`
	Pipeline             string        `json:"pipeline,omitempty"`
	Stage                string        `json:"stage,omitempty"`
	RequiredStatusChecks *StatusChecks `json:"required_status_checks,omitempty"`
}

// SourceApp is the source app of a promotion request: its id or key,
// and, as Pipelines.md's table places it, optionally the release to
// promote (source.app.release).
type SourceApp struct {
	ID      string `json:"id"`
	Release *IDRef `json:"release,omitempty"`
}

// AppRelease is the source of a promotion request: the app and optionally
// one of its releases (source.release, as Pipelines.md's examples and
// earlier Slipway clients send it; source.app.release is read too).
type AppRelease struct {
	App     SourceApp `json:"app"`
	Release *IDRef    `json:"release,omitempty"`
}

// Target is one target app of a promotion request.
type Target struct {
	App IDRef `json:"app"`
}

// NewPipelinePromotion is the body of POST /pipeline-promotions: the
// source app's current release (or Source.Release) is released on each
// target; no targets means every app of the next stage that has apps.
type NewPipelinePromotion struct {
	Pipeline IDRef      `json:"pipeline"`
	Source   AppRelease `json:"source"`
	Targets  []Target   `json:"targets"`
	// Safe also refuses when source and target config var keys differ.
	Safe bool `json:"safe,omitempty"`
}

// PromotionSource is the app (named by its key) and release a promotion
// promoted.
type PromotionSource struct {
	App     Ref   `json:"app"`
	Release IDRef `json:"release"`
}

// PipelinePromotion is a promotion. Its Source names the release that was
// promoted; Status is pending until every target's release ends. Targets
// are what GET …/promotion-targets lists.
type PipelinePromotion struct {
	ID        string            `json:"id"`
	Pipeline  Ref               `json:"pipeline"`
	Source    PromotionSource   `json:"source"`
	Status    string            `json:"status"`
	CreatedAt Time              `json:"created_at"`
	UpdatedAt Time              `json:"updated_at"`
	Targets   []PromotionTarget `json:"targets"`
}

// PromotionTarget is one target app (named by its key) of a promotion and
// the release it got; Status is that release's status.
type PromotionTarget struct {
	ID                string `json:"id"`
	App               AppRef `json:"app"`
	Release           IDRef  `json:"release"`
	Status            string `json:"status"`
	ErrorMessage      string `json:"error_message"`
	PipelinePromotion IDRef  `json:"pipeline_promotion"`
}

// PipelineStatus is a release status context a pipeline's couplings can
// require (GET /pipelines/{pipeline}/statuses).
type PipelineStatus struct {
	Context string `json:"context"`
	Name    string `json:"name"`
}

// Hook is a webhook of an app. Its secret is never shown.
type Hook struct {
	ID        string   `json:"id"`
	App       AppRef   `json:"app"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Active    bool     `json:"active"`
	CreatedAt Time     `json:"created_at"`
	UpdatedAt Time     `json:"updated_at"`
}

// HookChange is the body of POST /apps/{app}/hooks and of PATCH
// /apps/{app}/hooks/{id}, where nil fields stay as they are. Events are
// among slipway.HookEvents(); Secret signs every delivery.
type HookChange struct {
	URL    *string   `json:"url,omitempty"`
	Events *[]string `json:"events,omitempty"`
	Secret *string   `json:"secret,omitempty"`
	Active *bool     `json:"active,omitempty"`
}

// HookRequest is what a delivery attempt sent.
type HookRequest struct {
	Headers map[string]string `json:"headers"`
}

// HookResponse is what a delivery attempt got back; Code is 0 when no
// answer came.
type HookResponse struct {
	Code int `json:"code"`
}

// HookRef names a hook and the events it subscribes to.
type HookRef struct {
	ID     string   `json:"id"`
	Events []string `json:"events"`
}

// HookAttemptRequest is the request of a delivery attempt as Akkeris shows
// it: the method ("post"), URL, headers (the signatures included, never
// the secret) and the JSON body that was sent.
type HookAttemptRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// HookAttemptResponse is the answer to a delivery attempt: Code is 0 and
// Headers empty when no answer came.
type HookAttemptResponse struct {
	Code    int               `json:"code"`
	Headers map[string]string `json:"headers"`
}

// HookAttempt is a delivery attempt as Akkeris's last_attempt shows it;
// Status is "succeeded" for a 2xx answer, else "failed".
type HookAttempt struct {
	Request   HookAttemptRequest  `json:"request"`
	Response  HookAttemptResponse `json:"response"`
	Status    string              `json:"status"`
	UpdatedAt Time                `json:"updated_at"`
}

// HookResult is one delivery attempt of a webhook. Each attempt is a
// result: LastAttempt is the attempt itself, NumAttempts its number (the
// same as Attempt), Status its outcome.
type HookResult struct {
	ID          string       `json:"id"`
	Hook        HookRef      `json:"hook"`
	Delivery    IDRef        `json:"delivery"`
	Event       string       `json:"event"`
	Attempt     int          `json:"attempt"`
	Request     HookRequest  `json:"request"`
	Response    HookResponse `json:"response"`
	DurationMS  float64      `json:"duration_ms"`
	Error       string       `json:"error"`
	CreatedAt   Time         `json:"created_at"`
	Status      string       `json:"status"`
	NumAttempts int          `json:"num_attempts"`
	LastAttempt HookAttempt  `json:"last_attempt"`
}

// Audit is one entry of who did what to an app, as Akkeris's audits show
// it: App.Name is the app's bare name and Space its space (App.Key is the
// two together); Username and Timestamp repeat User.Email (or the user's
// id when there is no email) and CreatedAt under Akkeris's names.
type Audit struct {
	ID        string   `json:"id"`
	App       AuditApp `json:"app"`
	Space     NameRef  `json:"space"`
	Action    string   `json:"action"`
	Detail    string   `json:"detail"`
	User      User     `json:"user"`
	Username  string   `json:"username"`
	CreatedAt Time     `json:"created_at"`
	Timestamp Time     `json:"timestamp"`
}

// AuditApp is the app of an audit entry: Name is its bare name, Key its
// "<name>-<space>" key.
type AuditApp struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Key  string `json:"key"`
}

// NameRef is a {name} reference.
type NameRef struct {
	Name string `json:"name"`
}

// NewToken is the body of POST /tokens: a token limited to the
// organization Org.
type NewToken struct {
	Org         string `json:"org"`
	Description string `json:"description,omitempty"`
}

// Token is a token limited to one organization, without its secret.
type Token struct {
	ID           string `json:"id"`
	Organization Ref    `json:"organization"`
	Description  string `json:"description"`
	CreatedAt    Time   `json:"created_at"`
}

// CreatedToken is the answer to POST /tokens, the only one that shows the
// token's secret (Token). Its keys are in alphabetical order, as they
// have always been.
type CreatedToken struct {
	CreatedAt    Time   `json:"created_at"`
	Description  string `json:"description"`
	ID           string `json:"id"`
	Organization Ref    `json:"organization"`
	Token        string `json:"token"`
}
