package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway/slipway"
)

type pipelineJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt Time   `json:"created_at"`
	UpdatedAt Time   `json:"updated_at"`
}

func pipelineToJSON(p *slipway.Pipeline) pipelineJSON {
	return pipelineJSON{ID: p.ID, Name: p.Name, CreatedAt: Time(p.CreatedAt), UpdatedAt: Time(p.UpdatedAt)}
}

type checksJSON struct {
	Contexts []string `json:"contexts"`
}

type couplingJSON struct {
	ID                   string     `json:"id"`
	App                  ref        `json:"app"`
	Pipeline             ref        `json:"pipeline"`
	Stage                string     `json:"stage"`
	RequiredStatusChecks checksJSON `json:"required_status_checks"`
	CreatedAt            Time       `json:"created_at"`
	UpdatedAt            Time       `json:"updated_at"`
}

func couplingToJSON(c *slipway.Coupling) couplingJSON {
	return couplingJSON{ID: c.ID, App: ref{ID: c.AppID, Name: c.AppKey}, Pipeline: ref{ID: c.PipelineID, Name: c.PipelineName},
		Stage: c.Stage, RequiredStatusChecks: checksJSON{Contexts: c.RequiredChecks}, CreatedAt: Time(c.CreatedAt), UpdatedAt: Time(c.UpdatedAt)}
}

func (s *Server) createPipeline(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"name"`
	}
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
	out := make([]pipelineJSON, 0, len(ps))
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

func (s *Server) listStages(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, slipway.Stages())
}

func (s *Server) writeCouplings(w http.ResponseWriter, r *http.Request, pipelineID, appID string) {
	cs, err := s.st.ListCouplings(r.Context(), pipelineID, appID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]couplingJSON, 0, len(cs))
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

func (s *Server) listAppCouplings(w http.ResponseWriter, r *http.Request) {
	if a, ok := s.app(w, r); ok {
		s.writeCouplings(w, r, "", a.ID)
	}
}

type couplingBody struct {
	App                  string      `json:"app"`
	Pipeline             string      `json:"pipeline"`
	Stage                string      `json:"stage"`
	RequiredStatusChecks *checksJSON `json:"required_status_checks"`
}

func (s *Server) createCoupling(w http.ResponseWriter, r *http.Request) {
	var body couplingBody
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
	var body couplingBody
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

type idBody struct {
	ID string `json:"id"`
}

type promotionJSON struct {
	ID       string `json:"id"`
	Pipeline ref    `json:"pipeline"`
	Source   struct {
		App     idRef `json:"app"`
		Release idRef `json:"release"`
	} `json:"source"`
	Status    string `json:"status"`
	CreatedAt Time   `json:"created_at"`
	UpdatedAt Time   `json:"updated_at"`
}

func promotionToJSON(p *slipway.Promotion) promotionJSON {
	j := promotionJSON{ID: p.ID, Pipeline: ref{ID: p.PipelineID, Name: p.PipelineName}, Status: p.Status, CreatedAt: Time(p.CreatedAt), UpdatedAt: Time(p.UpdatedAt)}
	j.Source.App.ID, j.Source.Release.ID = p.SourceAppID, p.SourceReleaseID
	return j
}

func (s *Server) createPromotion(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Pipeline idBody `json:"pipeline"`
		Source   struct {
			App     idBody  `json:"app"`
			Release *idBody `json:"release"`
		} `json:"source"`
		Targets []struct {
			App idBody `json:"app"`
		} `json:"targets"`
		Safe bool `json:"safe"`
	}
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
	if body.Source.Release != nil {
		np.Release = body.Source.Release.ID
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
	type targetJSON struct {
		ID           string `json:"id"`
		App          idRef  `json:"app"`
		Release      idRef  `json:"release"`
		Status       string `json:"status"`
		ErrorMessage string `json:"error_message"`
	}
	out := make([]targetJSON, 0, len(p.Targets))
	for _, t := range p.Targets {
		out = append(out, targetJSON{ID: t.ID, App: idRef{t.AppID}, Release: idRef{t.ReleaseID}, Status: t.Status, ErrorMessage: t.Error})
	}
	writeJSON(w, http.StatusOK, out)
}

type hookJSON struct {
	ID        string   `json:"id"`
	App       idRef    `json:"app"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	Active    bool     `json:"active"`
	CreatedAt Time     `json:"created_at"`
	UpdatedAt Time     `json:"updated_at"`
}

func hookToJSON(h *slipway.Hook) hookJSON {
	return hookJSON{ID: h.ID, App: idRef{h.AppID}, URL: h.URL, Events: h.Events, Active: h.Active, CreatedAt: Time(h.CreatedAt), UpdatedAt: Time(h.UpdatedAt)}
}

type hookBody struct {
	URL    *string   `json:"url"`
	Events *[]string `json:"events"`
	Secret *string   `json:"secret"`
	Active *bool     `json:"active"`
}

func (b *hookBody) applyTo(h *slipway.Hook) {
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
func (s *Server) applyHookBody(r *http.Request, b *hookBody, h *slipway.Hook) error {
	if b.URL != nil {
		if err := s.checkScopedURL(r, *b.URL, "webhooks"); err != nil {
			return err
		}
		h.Scoped = scoped(r)
	}
	b.applyTo(h)
	return nil
}

func (s *Server) createHook(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	var body hookBody
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
	writeJSON(w, http.StatusCreated, hookToJSON(h))
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
	out := make([]hookJSON, 0, len(hs))
	for _, h := range hs {
		out = append(out, hookToJSON(h))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) hook(w http.ResponseWriter, r *http.Request) (*slipway.Hook, bool) {
	a, ok := s.app(w, r)
	if !ok {
		return nil, false
	}
	h, err := s.st.FindHook(r.Context(), a.ID, chi.URLParam(r, "hook"))
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return h, true
}

func (s *Server) getHook(w http.ResponseWriter, r *http.Request) {
	if h, ok := s.hook(w, r); ok {
		writeJSON(w, http.StatusOK, hookToJSON(h))
	}
}

func (s *Server) updateHook(w http.ResponseWriter, r *http.Request) {
	h, ok := s.hook(w, r)
	if !ok {
		return
	}
	var body hookBody
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
	writeJSON(w, http.StatusOK, hookToJSON(h))
}

func (s *Server) deleteHook(w http.ResponseWriter, r *http.Request) {
	h, ok := s.hook(w, r)
	if !ok {
		return
	}
	if err := s.st.DeleteHook(r.Context(), h.AppID, h.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hookToJSON(h))
}

func (s *Server) listHookResults(w http.ResponseWriter, r *http.Request) {
	h, ok := s.hook(w, r)
	if !ok {
		return
	}
	rs, status, ok := listPage(s, w, r, func(p slipway.Page) ([]*slipway.HookResult, error) {
		return s.st.ListHookResults(r.Context(), h.ID, p)
	}, func(res *slipway.HookResult) (time.Time, string) { return res.CreatedAt, res.ID })
	if !ok {
		return
	}
	type resultJSON struct {
		ID       string `json:"id"`
		Hook     idRef  `json:"hook"`
		Delivery idRef  `json:"delivery"`
		Event    string `json:"event"`
		Attempt  int    `json:"attempt"`
		Request  struct {
			Headers map[string]string `json:"headers"`
		} `json:"request"`
		Response struct {
			Code int `json:"code"`
		} `json:"response"`
		DurationMS float64 `json:"duration_ms"`
		Error      string  `json:"error"`
		CreatedAt  Time    `json:"created_at"`
	}
	out := make([]resultJSON, 0, len(rs))
	for _, res := range rs {
		j := resultJSON{ID: res.ID, Hook: idRef{res.HookID}, Delivery: idRef{res.DeliveryID}, Event: res.Event, Attempt: res.Attempt,
			DurationMS: float64(res.Duration.Microseconds()) / 1000, Error: res.Error, CreatedAt: Time(res.CreatedAt)}
		j.Request.Headers = res.RequestHeaders
		j.Response.Code = res.StatusCode
		out = append(out, j)
	}
	writeJSON(w, status, out)
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
	key := r.URL.Query().Get("app")
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
	type auditJSON struct {
		ID        string `json:"id"`
		App       ref    `json:"app"`
		Action    string `json:"action"`
		Detail    string `json:"detail"`
		User      user   `json:"user"`
		CreatedAt Time   `json:"created_at"`
	}
	out := make([]auditJSON, 0, len(as))
	for _, a := range as {
		out = append(out, auditJSON{ID: a.ID, App: ref{ID: a.AppID, Name: a.AppKey}, Action: a.Action, Detail: a.Detail,
			User: user{ID: a.UserID, Email: a.UserEmail}, CreatedAt: Time(a.CreatedAt)})
	}
	writeJSON(w, http.StatusOK, out)
}

// createToken makes a token limited to one organization; the secret is
// shown in this answer only.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Org         string `json:"org"`
		Description string `json:"description"`
	}
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
	writeJSON(w, http.StatusCreated, map[string]any{"id": t.ID, "token": secret, "organization": ref{ID: o.ID, Name: o.Name},
		"description": t.Description, "created_at": Time(t.CreatedAt)})
}

type tokenJSON struct {
	ID           string `json:"id"`
	Organization ref    `json:"organization"`
	Description  string `json:"description"`
	CreatedAt    Time   `json:"created_at"`
}

// listTokens lists the scoped tokens; their secrets are never shown again.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.st.ListTokens(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]tokenJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenJSON{ID: t.ID, Organization: ref{ID: t.OrgID, Name: t.OrgName}, Description: t.Description, CreatedAt: Time(t.CreatedAt)})
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteToken revokes a scoped token at once.
func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	if err := s.st.DeleteToken(r.Context(), chi.URLParam(r, "token")); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"message": "The token is revoked."})
}

// unprocessable turns a not-found reference in a body into a 422.
func unprocessable(err error) error {
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return slipway.Errorf(slipway.EUnprocessable, "%s", slipway.ErrorMessage(err))
	}
	return err
}
