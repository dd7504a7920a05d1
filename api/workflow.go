package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

func (s *Server) createPipeline(w http.ResponseWriter, r *http.Request) {
	var body wire.NewPipeline
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	p := &slipway.Pipeline{Name: body.Name}
	if err := s.st.CreatePipeline(r.Context(), p); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, pipelineToJSON(p))
}

func (s *Server) listPipelines(w http.ResponseWriter, r *http.Request) {
	ps, err := s.st.ListPipelines(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.Pipeline, 0, len(ps))
	for _, p := range ps {
		out = append(out, pipelineToJSON(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) pipeline(w http.ResponseWriter, r *http.Request) (*slipway.Pipeline, bool) {
	p, err := s.st.FindPipeline(r.Context(), chi.URLParam(r, "pipeline"))
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return p, true
}

func (s *Server) getPipeline(w http.ResponseWriter, r *http.Request) {
	if p, ok := s.pipeline(w, r); ok {
		writeJSON(w, http.StatusOK, pipelineToJSON(p))
	}
}

func (s *Server) deletePipeline(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipeline(w, r)
	if !ok {
		return
	}
	if err := s.st.DeletePipeline(r.Context(), p.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pipelineToJSON(p))
}

// listStages answers the map of each stage to the next (null for the
// last), as Akkeris does.
func (s *Server) listStages(w http.ResponseWriter, r *http.Request) {
	out := map[string]*string{}
	for _, st := range slipway.Stages() {
		out[st] = nil
		if next := slipway.NextStage(st); next != "" {
			out[st] = &next
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// listPipelineStatuses answers the status contexts the pipeline's
// couplings can require.
func (s *Server) listPipelineStatuses(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipeline(w, r)
	if !ok {
		return
	}
	cs, err := s.st.ListPipelineStatuses(r.Context(), p.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.PipelineStatus, 0, len(cs))
	for _, c := range cs {
		out = append(out, wire.PipelineStatus{Context: c.Context, Name: c.Name})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) writeCouplings(w http.ResponseWriter, r *http.Request, pipelineID, appID string) {
	cs, err := s.st.ListCouplings(r.Context(), pipelineID, appID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.PipelineCoupling, 0, len(cs))
	for _, c := range cs {
		out = append(out, couplingToJSON(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listCouplings(w http.ResponseWriter, r *http.Request) {
	s.writeCouplings(w, r, "", "")
}

func (s *Server) listPipelineCouplings(w http.ResponseWriter, r *http.Request) {
	if p, ok := s.pipeline(w, r); ok {
		s.writeCouplings(w, r, p.ID, "")
	}
}

// getAppCoupling answers the app's one coupling; 404 when it has none.
func (s *Server) getAppCoupling(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	cs, err := s.st.ListCouplings(r.Context(), "", a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(cs) == 0 {
		s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "App %s is not coupled to a pipeline; couple it with POST /pipeline-couplings.", a.Key()))
		return
	}
	writeJSON(w, http.StatusOK, couplingToJSON(cs[0]))
}

func (s *Server) createCoupling(w http.ResponseWriter, r *http.Request) {
	var body wire.NewPipelineCoupling
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.App == "" || body.Pipeline == "" || body.Stage == "" {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "app, pipeline and stage are required."))
		return
	}
	a, err := s.st.FindApp(r.Context(), body.App)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.st.FindPipeline(r.Context(), body.Pipeline)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c := &slipway.Coupling{AppID: a.ID, PipelineID: p.ID, Stage: body.Stage}
	if body.RequiredStatusChecks != nil {
		c.RequiredChecks = body.RequiredStatusChecks.Contexts
	}
	if err := s.st.CreateCoupling(r.Context(), c); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, couplingToJSON(c))
}

func (s *Server) coupling(w http.ResponseWriter, r *http.Request) (*slipway.Coupling, bool) {
	c, err := s.st.FindCoupling(r.Context(), chi.URLParam(r, "coupling"))
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return c, true
}

func (s *Server) getCoupling(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.coupling(w, r); ok {
		writeJSON(w, http.StatusOK, couplingToJSON(c))
	}
}

func (s *Server) updateCoupling(w http.ResponseWriter, r *http.Request) {
	c, ok := s.coupling(w, r)
	if !ok {
		return
	}
	var body wire.NewPipelineCoupling
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.RequiredStatusChecks == nil {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Send required_status_checks, e.g. {\"required_status_checks\": {\"contexts\": [\"ci/tests\"]}}; stage and app cannot be changed."))
		return
	}
	c, err := s.st.UpdateCouplingChecks(r.Context(), c.ID, body.RequiredStatusChecks.Contexts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, couplingToJSON(c))
}

func (s *Server) deleteCoupling(w http.ResponseWriter, r *http.Request) {
	c, ok := s.coupling(w, r)
	if !ok {
		return
	}
	if err := s.st.DeleteCoupling(r.Context(), c.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, couplingToJSON(c))
}

func (s *Server) createPromotion(w http.ResponseWriter, r *http.Request) {
	var body wire.NewPipelinePromotion
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Pipeline.ID == "" || body.Source.App.ID == "" {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "pipeline.id and source.app.id are required."))
		return
	}
	u := currentUser(r)
	np := slipway.NewPromotion{Pipeline: body.Pipeline.ID, SourceApp: body.Source.App.ID, Safe: body.Safe, UserID: u.ID, UserEmail: u.Email}
	// The release may come as source.release or, as Pipelines.md's table
	// has it, source.app.release; both must agree when both are sent.
	for _, rel := range []*wire.IDRef{body.Source.Release, body.Source.App.Release} {
		if rel == nil {
			continue
		}
		if np.Release != "" && rel.ID != np.Release {
			s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "source.release.id and source.app.release.id name different releases; send one."))
			return
		}
		np.Release = rel.ID
	}
	for _, t := range body.Targets {
		if t.App.ID == "" {
			s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Every target needs app.id."))
			return
		}
		np.Targets = append(np.Targets, t.App.ID)
	}
	p, err := s.st.CreatePromotion(r.Context(), np)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, t := range p.Targets {
		s.cfg.Engine.Kick(t.AppID)
	}
	writeJSON(w, http.StatusCreated, promotionToJSON(p))
}

func (s *Server) promotion(w http.ResponseWriter, r *http.Request) (*slipway.Promotion, bool) {
	p, err := s.st.FindPromotion(r.Context(), chi.URLParam(r, "promotion"))
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return p, true
}

func (s *Server) getPromotion(w http.ResponseWriter, r *http.Request) {
	if p, ok := s.promotion(w, r); ok {
		writeJSON(w, http.StatusOK, promotionToJSON(p))
	}
}

func (s *Server) listPromotionTargets(w http.ResponseWriter, r *http.Request) {
	p, ok := s.promotion(w, r)
	if !ok {
		return
	}
	out := make([]wire.PromotionTarget, 0, len(p.Targets))
	for _, t := range p.Targets {
		out = append(out, promotionTargetToJSON(p.ID, t))
	}
	writeJSON(w, http.StatusOK, out)
}

// applyHookChange sets the fields a hook request gives.
func applyHookChange(b *wire.HookChange, h *slipway.Hook) {
	if b.URL != nil {
		h.URL = *b.URL
	}
	if b.Events != nil {
		h.Events = *b.Events
	}
	if b.Secret != nil {
		h.Secret = *b.Secret
	}
	if b.Active != nil {
		h.Active = *b.Active
	}
}

// applyHookBody applies a hook body. A URL set by a scoped token makes the
// hook scoped (its deliveries reach public addresses only), and one whose
// literal host such a hook could never reach is refused at once; a URL
// the admin sets lifts the rule.
func (s *Server) applyHookBody(r *http.Request, b *wire.HookChange, h *slipway.Hook) error {
	if b.URL != nil {
		if err := s.checkScopedURL(r, *b.URL, "webhooks"); err != nil {
			return err
		}
		h.Scoped = scoped(r)
	}
	applyHookChange(b, h)
	return nil
}

func (s *Server) createHook(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	var body wire.HookChange
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	h := &slipway.Hook{AppID: a.ID, Active: true, CreatedBy: currentUser(r).ID}
	if err := s.applyHookBody(r, &body, h); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.st.CreateHook(r.Context(), h); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, hookToJSON(a, h))
}

func (s *Server) listHooks(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	hs, err := s.st.ListHooks(r.Context(), a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.Hook, 0, len(hs))
	for _, h := range hs {
		out = append(out, hookToJSON(a, h))
	}
	writeJSON(w, http.StatusOK, out)
}

// hook finds the {hook} of the path's app, answering 404 itself when
// either is unknown.
func (s *Server) hook(w http.ResponseWriter, r *http.Request) (*slipway.App, *slipway.Hook, bool) {
	a, ok := s.app(w, r)
	if !ok {
		return nil, nil, false
	}
	h, err := s.st.FindHook(r.Context(), a.ID, chi.URLParam(r, "hook"))
	if err != nil {
		s.writeError(w, r, err)
		return nil, nil, false
	}
	return a, h, true
}

func (s *Server) getHook(w http.ResponseWriter, r *http.Request) {
	if a, h, ok := s.hook(w, r); ok {
		writeJSON(w, http.StatusOK, hookToJSON(a, h))
	}
}

func (s *Server) updateHook(w http.ResponseWriter, r *http.Request) {
	a, h, ok := s.hook(w, r)
	if !ok {
		return
	}
	var body wire.HookChange
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.applyHookBody(r, &body, h); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.st.UpdateHook(r.Context(), h); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hookToJSON(a, h))
}

func (s *Server) deleteHook(w http.ResponseWriter, r *http.Request) {
	a, h, ok := s.hook(w, r)
	if !ok {
		return
	}
	if err := s.st.DeleteHook(r.Context(), h.AppID, h.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hookToJSON(a, h))
}

func (s *Server) listHookResults(w http.ResponseWriter, r *http.Request) {
	_, h, ok := s.hook(w, r)
	if !ok {
		return
	}
	rs, status, ok := listPage(s, w, r, func(p slipway.Page) ([]*slipway.HookResult, error) {
		return s.st.ListHookResults(r.Context(), h.ID, p)
	}, func(res *slipway.HookResult) (time.Time, string) { return res.CreatedAt, res.ID })
	if !ok {
		return
	}
	out := make([]wire.HookResult, 0, len(rs))
	for _, res := range rs {
		out = append(out, hookResultToJSON(h, res))
	}
	writeJSON(w, status, out)
}

func (s *Server) getHookResult(w http.ResponseWriter, r *http.Request) {
	_, h, ok := s.hook(w, r)
	if !ok {
		return
	}
	res, err := s.st.FindHookResult(r.Context(), h.ID, chi.URLParam(r, "result"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hookResultToJSON(h, res))
}

func (s *Server) listAudits(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, slipway.Errorf(slipway.EInvalid, "limit must be a number from 1 to 1000."))
			return
		}
		limit = n
	}
	q := r.URL.Query()
	key := q.Get("app")
	// Akkeris clients name the app by its bare name and its space apart
	// (?app=api&space=default); the key (?app=api-default) works alone.
	if space := q.Get("space"); space != "" {
		if key == "" {
			s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "space filters one app's entries: send ?app=<name>&space=<space>, or ?app=<name>-<space>."))
			return
		}
		key += "-" + space
	}
	if q.Get("user") != "" {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Filtering audits by user is not supported; filter by app (?app=<name>&space=<space>) instead."))
		return
	}
	if p := currentPrincipal(r); p.OrgID != "" {
		// A scoped token reads the trail of its own live apps only.
		a, err := s.findApp(r, key)
		if key == "" || err != nil || a.OrgID != p.OrgID {
			s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "App %q was not found; a scoped token needs ?app=<one of its apps>.", slipway.Clip(key)))
			return
		}
		key = a.Key()
	} else if key != "" {
		// A deleted app's audits stay, so an unknown key is not an error,
		// but a bare name is resolved to the app's key when it exists.
		if a, err := s.st.FindApp(r.Context(), key); err == nil {
			key = a.Key()
		}
	}
	as, err := s.st.ListAudits(r.Context(), key, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.Audit, 0, len(as))
	for _, a := range as {
		out = append(out, auditToJSON(a))
	}
	writeJSON(w, http.StatusOK, out)
}

// createToken makes a token limited to one organization; the secret is
// shown in this answer only.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var body wire.NewToken
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Org == "" {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "org is required: the organization the token is limited to."))
		return
	}
	o, err := s.st.FindOrganization(r.Context(), body.Org)
	if err != nil {
		s.writeError(w, r, unprocessable(err))
		return
	}
	secret, err := slipway.NewTokenSecret()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t := &slipway.Token{OrgID: o.ID, OrgName: o.Name, Description: body.Description}
	if err := s.st.CreateToken(r.Context(), t, secret); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, wire.CreatedToken{ID: t.ID, Token: secret, Organization: wire.Ref{ID: o.ID, Name: o.Name},
		Description: t.Description, CreatedAt: wire.TimeOf(t.CreatedAt)})
}

// listTokens lists the scoped tokens; their secrets are never shown again.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.st.ListTokens(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.Token, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenToJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteToken revokes a scoped token at once.
func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	if err := s.st.DeleteToken(r.Context(), chi.URLParam(r, "token")); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.Message{Message: "The token is revoked."})
}

// unprocessable turns a not-found reference in a body into a 422.
func unprocessable(err error) error {
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return slipway.Errorf(slipway.EUnprocessable, "%s", slipway.ErrorMessage(err))
	}
	return err
}
