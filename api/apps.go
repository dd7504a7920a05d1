package api

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/go-chi/chi/v5"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

func (s *Server) createOrganization(w http.ResponseWriter, r *http.Request) {
	var body wire.NewOrganization
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	o := &slipway.Organization{Name: body.Name, Description: body.Description}
	if err := s.st.CreateOrganization(r.Context(), o); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, orgToJSON(r, o))
}

func (s *Server) listOrganizations(w http.ResponseWriter, r *http.Request) {
	orgs, err := s.st.ListOrganizations(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.Organization, 0, len(orgs))
	for _, o := range orgs {
		if allowed(r, o.ID) {
			out = append(out, orgToJSON(r, o))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getOrganization(w http.ResponseWriter, r *http.Request) {
	o, err := s.st.FindOrganization(r.Context(), chi.URLParam(r, "org"))
	if err == nil && !allowed(r, o.ID) {
		err = slipway.Errorf(slipway.ENotFound, "Organization %q was not found.", slipway.Clip(chi.URLParam(r, "org")))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orgToJSON(r, o))
}

func (s *Server) createSpace(w http.ResponseWriter, r *http.Request) {
	var body wire.NewSpace
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Stack != "" && !namesRef(s.stackRef(), body.Stack) {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Stack %q was not found; this server's one stack is %q.", slipway.Clip(body.Stack), s.runtimeName()))
		return
	}
	sp := &slipway.Space{Name: body.Name, Description: body.Description, Compliance: body.Compliance, OrgName: body.Org}
	if err := s.st.CreateSpace(r.Context(), sp); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.spaceToJSON(sp))
}

func (s *Server) listSpaces(w http.ResponseWriter, r *http.Request) {
	spaces, err := s.st.ListSpaces(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.Space, 0, len(spaces))
	for _, sp := range spaces {
		if sp.VisibleTo(currentPrincipal(r).OrgID) {
			out = append(out, s.spaceToJSON(sp))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// visibleSpace finds a space the token may see: its organization's or a
// shared one. Any other is ENotFound, worded as for a space that does
// not exist.
func (s *Server) visibleSpace(r *http.Request, idOrName string) (*slipway.Space, error) {
	sp, err := s.st.FindSpace(r.Context(), idOrName)
	if err == nil && !sp.VisibleTo(currentPrincipal(r).OrgID) {
		err = slipway.Errorf(slipway.ENotFound, "Space %q was not found.", idOrName)
	}
	return sp, err
}

func (s *Server) getSpace(w http.ResponseWriter, r *http.Request) {
	sp, err := s.visibleSpace(r, chi.URLParam(r, "space"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.spaceToJSON(sp))
}

func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	var body wire.NewApp
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Space == "" {
		body.Space = "default"
	}
	if p := currentPrincipal(r); p.OrgID != "" {
		// A scoped token creates apps in its own organization only, in
		// its organization's spaces or shared ones; anything else is
		// answered as if it did not exist.
		if body.Org == "" {
			body.Org = p.OrgID
		}
		if o, err := s.st.FindOrganization(r.Context(), body.Org); err != nil || o.ID != p.OrgID {
			s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Organization %q was not found.", slipway.Clip(body.Org)))
			return
		}
		if _, err := s.visibleSpace(r, body.Space); err != nil {
			s.writeError(w, r, unprocessable(err))
			return
		}
	}
	// An admin's app without an org goes to the space's organization, or
	// to "default" in a shared space (the store decides).
	a := &slipway.App{Name: body.Name, OrgName: body.Org, SpaceName: body.Space, Description: body.Description, GitURL: body.GitURL, GitBranch: body.GitBranch}
	if err := s.st.CreateApp(r.Context(), a); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.appJSON(a))
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	apps, err := s.st.ListApps(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.App, 0, len(apps))
	for _, a := range apps {
		if allowed(r, a.OrgID) {
			out = append(out, s.appJSON(a))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// findApp resolves an app reference as the token sees apps: a scoped
// token among its organization's apps only, so a bare name another
// organization also holds is still its own, and another organization's
// app is not found, in the words used for one that does not exist.
func (s *Server) findApp(r *http.Request, idOrKey string) (*slipway.App, error) {
	if p := currentPrincipal(r); p.OrgID != "" {
		return s.st.FindAppInOrg(r.Context(), p.OrgID, idOrKey)
	}
	return s.st.FindApp(r.Context(), idOrKey)
}

// app finds the {app} of the path, answering 404 itself when it is
// unknown or belongs to an organization the token may not see (404, not
// 403, so app names do not leak).
func (s *Server) app(w http.ResponseWriter, r *http.Request) (*slipway.App, bool) {
	a, err := s.findApp(r, chi.URLParam(r, "app"))
	if err == nil && !allowed(r, a.OrgID) { // a second line behind FindAppInOrg
		err = slipway.Errorf(slipway.ENotFound, "App %q was not found.", slipway.Clip(chi.URLParam(r, "app")))
	}
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return a, true
}

func (s *Server) getApp(w http.ResponseWriter, r *http.Request) {
	if a, ok := s.app(w, r); ok {
		writeJSON(w, http.StatusOK, s.appJSON(a))
	}
}

func (s *Server) updateApp(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	var body wire.AppUpdate
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Name != nil && *body.Name != a.Name && *body.Name != a.Key() {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Apps cannot be renamed; create an app named %q and deploy to it instead.", slipway.Clip(*body.Name)))
		return
	}
	a, err := s.st.UpdateApp(r.Context(), a.ID, slipway.AppUpdate{Description: body.Description, Maintenance: body.Maintenance})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.appJSON(a))
}

func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	// Records first, so the engine finds no more work for the app; then
	// its work in progress is stopped and its dynos with it.
	if err := s.st.DeleteApp(r.Context(), a.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.cfg.Engine.RemoveApp(r.Context(), a.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.DeletedApp{App: s.appJSON(a), Result: "successful"})
}

// features are the features every app has, as Akkeris describes them:
// the id is stable (see stableID), the doc_url a path, and no feedback
// address is given.
var features = []wire.Feature{
	{ID: stableID("feature", slipway.FeatureAutoRelease), Name: slipway.FeatureAutoRelease, DisplayName: "Auto-release builds",
		Description: "Release every build that succeeds, automatically.", DocURL: "/features/" + slipway.FeatureAutoRelease, State: "public"},
}

func featureOf(a *slipway.App, name string) (wire.Feature, bool) {
	for _, f := range features {
		if f.Name == name {
			f.Enabled = a.AutoRelease
			return f, true
		}
	}
	return wire.Feature{}, false
}

func (s *Server) listFeatures(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	out := []wire.Feature{}
	for _, f := range features {
		f, _ := featureOf(a, f.Name)
		out = append(out, f)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getFeature(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	f, ok := featureOf(a, chi.URLParam(r, "feature"))
	if !ok {
		s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "Feature %q does not exist; the features are: auto-release.", slipway.Clip(chi.URLParam(r, "feature"))))
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) updateFeature(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	name := chi.URLParam(r, "feature")
	if _, ok := featureOf(a, name); !ok {
		s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "Feature %q does not exist; the features are: auto-release.", slipway.Clip(name)))
		return
	}
	var body wire.FeatureUpdate
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Enabled == nil {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Send {\"enabled\": true} or {\"enabled\": false}."))
		return
	}
	a, err := s.st.UpdateApp(r.Context(), a.ID, slipway.AppUpdate{AutoRelease: body.Enabled})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f, _ := featureOf(a, name)
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) getConfigVars(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	cfg, err := s.st.ConfigVars(r.Context(), a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

// systemConfigVars are the variables every dyno gets from the runtime,
// which config vars may not set (slipway.ReservedConfigKey).
var systemConfigVars = map[string]string{
	"PORT":                    "The TCP port a web dyno must answer HTTP on.",
	"DYNO":                    "The dyno's name, <type>.<number>, e.g. web.1.",
	"SLIPWAY_APP":             "The app's name, without its space (Kubernetes runtime).",
	"SLIPWAY_RELEASE_ID":      "The id of the release the dyno runs (Kubernetes runtime).",
	"SLIPWAY_RELEASE_VERSION": "The version of the release the dyno runs.",
}

// getConfigVarNotes describes each variable a dyno of the app sees: the
// runtime's own and the app's config vars (keys only, never values).
// Notes are not kept, so config vars have no description.
func (s *Server) getConfigVarNotes(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	cfg, err := s.st.ConfigVars(r.Context(), a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make(map[string]wire.ConfigVarNote, len(cfg)+len(systemConfigVars))
	for k := range cfg {
		out[k] = wire.ConfigVarNote{Type: "user"}
	}
	for k, desc := range systemConfigVars {
		out[k] = wire.ConfigVarNote{Type: "system", ReadOnly: true, Required: true, Description: desc}
	}
	writeJSON(w, http.StatusOK, out)
}

// updateConfigVars sets ("KEY": "value") and unsets ("KEY": null) config
// vars; an app with a current release gets a new release with them.
func (s *Server) updateConfigVars(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	var raw map[string]json.RawMessage
	if err := decode(w, r, s.cfg.MaxBody, &raw); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(raw) == 0 {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Send at least one config var, e.g. {\"KEY\": \"value\"} or {\"KEY\": null} to unset."))
		return
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	change := map[string]*string{}
	for _, k := range keys {
		if string(raw[k]) == "null" {
			change[k] = nil
			continue
		}
		var v string
		if err := json.Unmarshal(raw[k], &v); err != nil {
			s.writeError(w, r, slipway.Errorf(slipway.EInvalid, "Config var %q must be a string or null.", slipway.Clip(k)))
			return
		}
		change[k] = &v
	}
	u := currentUser(r)
	rel, err := s.st.CreateRelease(r.Context(), slipway.NewRelease{AppID: a.ID, ConfigChange: change, Trigger: slipway.TriggerConfig, UserID: u.ID, UserEmail: u.Email})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if rel != nil {
		s.cfg.Engine.Kick(a.ID)
	}
	cfg, err := s.st.ConfigVars(r.Context(), a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}
