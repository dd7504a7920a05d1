package api

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// The answers' shapes are in package wire, which the client shares; these
// functions fill them from the domain.

func (s *Server) appJSON(a *slipway.App) wire.App {
	j := wire.App{
		ID: a.ID, Name: a.Key(), SimpleName: a.Name, Key: a.Key(), Description: a.Description,
		Organization: wire.Ref{ID: a.OrgID, Name: a.OrgName},
		Space:        wire.SpaceRef{ID: a.SpaceID, Name: a.SpaceName, Compliance: a.Compliance},
		CreatedAt:    wire.TimeOf(a.CreatedAt), UpdatedAt: wire.TimeOf(a.UpdatedAt), ReleasedAt: wire.TimePtr(a.ReleasedAt),
		WebURL: s.cfg.WebURL(a.Key()), Maintenance: a.Maintenance, GitURL: a.GitURL, GitBranch: a.GitBranch,
		Region: s.regionRef(), Stack: s.stackRef(), BuildStack: s.stackRef(),
		Owner: wire.User{ID: a.OrgID, Email: ""}, SlugSize: a.SlugSize,
	}
	if a.Compliance == nil {
		j.Space.Compliance = []string{}
	}
	if a.CurrentImage != "" {
		img := a.CurrentImage
		j.Image = &img
	}
	return j
}

// appRef names a in another answer, by its key.
func appRef(a *slipway.App) wire.AppRef { return wire.AppRef{ID: a.ID, Name: a.Key()} }

// buildToJSON is b, a build of the app a.
func buildToJSON(a *slipway.App, b *slipway.Build) wire.Build {
	j := wire.Build{
		ID: b.ID, App: appRef(a), CreatedAt: wire.TimeOf(b.CreatedAt), UpdatedAt: wire.TimeOf(b.UpdatedAt),
		SourceBlob: wire.SourceBlob{Checksum: b.Checksum, URL: b.SourceURL, Version: b.Version, Commit: b.SHA,
			Branch: b.Branch, Repo: b.Repo, Author: b.Author, Message: b.Message},
		Status: b.Status, User: wire.User{ID: b.UserID, Email: b.UserEmail},
		OutputStreamURL: "/apps/" + b.AppID + "/builds/" + b.ID + "/result",
	}
	if !b.CommitTime.IsZero() {
		t := wire.TimeOf(b.CommitTime)
		j.SourceBlob.CommitTime = &t
	}
	if b.Status == slipway.BuildSucceeded {
		j.Slug = &wire.IDRef{ID: b.ID}
	}
	return j
}

// releaseToJSON is a release's answer; appendRelease writes the same
// bytes faster, for lists.
func releaseToJSON(r *slipway.Release) wire.Release {
	return wire.Release{
		ID: r.ID, App: wire.AppRef{ID: r.AppID, Name: r.AppKey}, CreatedAt: wire.TimeOf(r.CreatedAt), UpdatedAt: wire.TimeOf(r.UpdatedAt),
		Description: r.Description, Slug: wire.IDRef{ID: r.SlugID}, Status: r.Status, State: r.State,
		User: wire.User{ID: r.UserID, Email: r.UserEmail}, Version: r.Version, Current: r.Current, Trigger: r.Trigger,
		Error: r.Error, Failure: r.Failure, OutputStreamURL: "/apps/" + r.AppID + "/releases/" + r.ID + "/log", Strategy: strategyName(r),
	}
}

// strategyName is the release's strategy as releases show it: "" (left
// out) for the rolling restart.
func strategyName(r *slipway.Release) string {
	if t := r.Strategy.ForType("web").Type; t != slipway.StrategyRolling {
		return t
	}
	return ""
}

// rolloutToJSON is a gated rollout as a release shows it.
func rolloutToJSON(st *slipway.Rollout) *wire.Rollout {
	out := &wire.Rollout{Strategy: st.Strategy, Step: st.Step, Steps: st.Steps, Weight: st.Weight, Phase: st.Phase,
		WaitingFor: st.WaitingFor, Analysis: st.Analysis, Reason: st.Reason, PreviewURL: st.PreviewURL}
	if st.PauseUntil != nil {
		t := wire.TimeOf(*st.PauseUntil)
		out.PauseUntil = &t
	}
	if out.WaitingFor == nil {
		out.WaitingFor = []string{}
	}
	return out
}

// statusToJSON is s, a status of the release rel.
func statusToJSON(rel *slipway.Release, s *slipway.ReleaseStatus) wire.ReleaseStatus {
	return wire.ReleaseStatus{ID: s.ID, State: s.State, Name: s.Name, Context: s.Context, Description: s.Description,
		TargetURL: s.TargetURL, ImageURL: s.ImageURL, CreatedAt: wire.TimeOf(s.CreatedAt), UpdatedAt: wire.TimeOf(s.UpdatedAt),
		Release: releaseToJSON(rel)}
}

func formationToJSON(a *slipway.App, f *slipway.Formation) wire.Formation {
	return wire.Formation{App: appRef(a), Type: f.Type, Quantity: f.Quantity, Size: f.Size, Port: f.Port,
		Command: f.Command, Healthcheck: f.Healthcheck, CreatedAt: wire.TimeOf(f.CreatedAt), UpdatedAt: wire.TimeOf(f.UpdatedAt)}
}

// dynoToJSON is d, a dyno of app a whose formation has the given size:
// named by its instance, so that clients print type.name.
func dynoToJSON(a *slipway.App, d slipway.Dyno, size string) wire.Dyno {
	return wire.Dyno{App: appRef(a), ID: d.ID, Name: d.Instance, Type: d.Type, State: d.State, Ready: d.Ready,
		Release: wire.ReleaseRef{ID: d.Release.ID, Version: d.Release.Version}, Command: d.Command,
		CreatedAt: wire.TimeOf(d.CreatedAt), UpdatedAt: wire.TimeOf(d.UpdatedAt), AdditionalInfo: d.AdditionalInfo,
		Size: size}
}

// orgToJSON is o as the request's token sees it: its role is "admin"
// for the admin token and "member" for a token limited to o.
func orgToJSON(r *http.Request, o *slipway.Organization) wire.Organization {
	role := "admin"
	if currentPrincipal(r).OrgID != "" {
		role = "member"
	}
	return wire.Organization{ID: o.ID, Name: o.Name, Description: o.Description, CreatedAt: wire.TimeOf(o.CreatedAt), UpdatedAt: wire.TimeOf(o.UpdatedAt), Role: role}
}

func (s *Server) spaceToJSON(sp *slipway.Space) wire.Space {
	j := wire.Space{ID: sp.ID, Name: sp.Name, Description: sp.Description, CreatedAt: wire.TimeOf(sp.CreatedAt), UpdatedAt: wire.TimeOf(sp.UpdatedAt),
		Compliance: sp.Compliance, Region: s.regionRef(), Stack: s.stackRef(), State: "allocated"}
	if !sp.Shared() {
		j.Organization = &wire.Ref{ID: sp.OrgID, Name: sp.OrgName}
	}
	return j
}

func pipelineToJSON(p *slipway.Pipeline) wire.Pipeline {
	return wire.Pipeline{ID: p.ID, Name: p.Name, CreatedAt: wire.TimeOf(p.CreatedAt), UpdatedAt: wire.TimeOf(p.UpdatedAt)}
}

func couplingToJSON(c *slipway.Coupling) wire.PipelineCoupling {
	return wire.PipelineCoupling{ID: c.ID, App: wire.AppRef{ID: c.AppID, Name: c.AppKey}, Pipeline: wire.Ref{ID: c.PipelineID, Name: c.PipelineName},
		Stage: c.Stage, RequiredStatusChecks: wire.StatusChecks{Contexts: c.RequiredChecks}, CreatedAt: wire.TimeOf(c.CreatedAt), UpdatedAt: wire.TimeOf(c.UpdatedAt)}
}

func promotionToJSON(p *slipway.Promotion) wire.PipelinePromotion {
	j := wire.PipelinePromotion{ID: p.ID, Pipeline: wire.Ref{ID: p.PipelineID, Name: p.PipelineName},
		Source: wire.PromotionSource{App: wire.Ref{ID: p.SourceAppID, Name: p.SourceAppKey}, Release: wire.IDRef{ID: p.SourceReleaseID}},
		Status: p.Status, CreatedAt: wire.TimeOf(p.CreatedAt), UpdatedAt: wire.TimeOf(p.UpdatedAt),
		Targets: make([]wire.PromotionTarget, 0, len(p.Targets))}
	for _, t := range p.Targets {
		j.Targets = append(j.Targets, promotionTargetToJSON(p.ID, t))
	}
	return j
}

func promotionTargetToJSON(promotionID string, t slipway.PromotionTarget) wire.PromotionTarget {
	return wire.PromotionTarget{ID: t.ID, App: wire.AppRef{ID: t.AppID, Name: t.AppKey}, Release: wire.IDRef{ID: t.ReleaseID}, Status: t.Status,
		ErrorMessage: t.Error, PipelinePromotion: wire.IDRef{ID: promotionID}}
}

// hookToJSON is h, a hook of the app a.
func hookToJSON(a *slipway.App, h *slipway.Hook) wire.Hook {
	return wire.Hook{ID: h.ID, App: appRef(a), URL: h.URL, Events: h.Events, Active: h.Active, CreatedAt: wire.TimeOf(h.CreatedAt), UpdatedAt: wire.TimeOf(h.UpdatedAt)}
}

// hookResultToJSON is a delivery attempt of hook h.
func hookResultToJSON(h *slipway.Hook, res *slipway.HookResult) wire.HookResult {
	status := "failed"
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		status = "succeeded"
	}
	body := json.RawMessage(res.RequestBody)
	if !json.Valid(body) {
		body = json.RawMessage("{}")
	}
	reqHdr, respHdr := res.RequestHeaders, res.ResponseHeaders
	if reqHdr == nil {
		reqHdr = map[string]string{}
	}
	if respHdr == nil {
		respHdr = map[string]string{}
	}
	events := h.Events
	if events == nil {
		events = []string{}
	}
	return wire.HookResult{ID: res.ID, Hook: wire.HookRef{ID: res.HookID, Events: events}, Delivery: wire.IDRef{ID: res.DeliveryID}, Event: res.Event, Attempt: res.Attempt,
		Request: wire.HookRequest{Headers: reqHdr}, Response: wire.HookResponse{Code: res.StatusCode},
		DurationMS: float64(res.Duration.Microseconds()) / 1000, Error: res.Error, CreatedAt: wire.TimeOf(res.CreatedAt),
		Status: status, NumAttempts: res.Attempt,
		LastAttempt: wire.HookAttempt{
			Request:  wire.HookAttemptRequest{Method: "post", URL: res.URL, Headers: reqHdr, Body: body},
			Response: wire.HookAttemptResponse{Code: res.StatusCode, Headers: respHdr},
			Status:   status, UpdatedAt: wire.TimeOf(res.CreatedAt),
		}}
}

// auditToJSON is an audit entry as Akkeris shows it: the app's bare name
// and its space apart, and a username: the user's email, "admin" for the
// admin token, "system" for the server itself. Entries keep only the app's key (they outlive the
// app); app names hold no dash, so the key splits at its first one.
func auditToJSON(a *slipway.Audit) wire.Audit {
	name, space, _ := strings.Cut(a.AppKey, "-")
	username := a.UserEmail
	switch {
	case username != "":
	case a.UserID == adminUser.ID:
		username = "admin"
	case a.UserID == "":
		username = "system"
	default:
		username = a.UserID
	}
	return wire.Audit{ID: a.ID, App: wire.AuditApp{ID: a.AppID, Name: name, Key: a.AppKey}, Space: wire.NameRef{Name: space},
		Action: a.Action, Detail: a.Detail, User: wire.User{ID: a.UserID, Email: a.UserEmail}, Username: username,
		CreatedAt: wire.TimeOf(a.CreatedAt), Timestamp: wire.TimeOf(a.CreatedAt)}
}

func tokenToJSON(t *slipway.Token) wire.Token {
	return wire.Token{ID: t.ID, Organization: wire.Ref{ID: t.OrgID, Name: t.OrgName}, Description: t.Description, CreatedAt: wire.TimeOf(t.CreatedAt)}
}

// user is who a request acts as (see principal); records keep its id and
// email, and answers show them as a wire.User.
type user struct {
	ID    string
	Email string
}
