package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// formationChange is a formation request as the store takes it.
func formationChange(b wire.FormationChange) slipway.FormationChange {
	return slipway.FormationChange{Type: b.Type, Quantity: b.Quantity, Size: b.Size, Port: b.Port, Command: b.Command, Healthcheck: b.Healthcheck,
		RemoveHealthcheck: b.RemoveHealthcheck != nil && *b.RemoveHealthcheck, RemoveCommand: b.RemoveCommand != nil && *b.RemoveCommand}
}

// formationJSON is a formation with its id: Slipway keeps none, so it is
// derived from the app and the type, the same on every answer.
func formationJSON(a *slipway.App, f *slipway.Formation) wire.Formation {
	j := formationToJSON(a, f)
	j.ID = formationID(a.ID, f.Type)
	return j
}

func formationID(appID, typ string) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("slipway formation "+appID+" "+typ)).String()
}

// listSizes answers the dyno sizes formations may ask for.
func (s *Server) listSizes(w http.ResponseWriter, r *http.Request) {
	sizes := slipway.Sizes()
	out := make([]wire.Size, 0, len(sizes))
	for _, sz := range sizes {
		if sz.Name == slipway.DefaultSize {
			sz.MemoryBytes, sz.MilliCPU = s.cfg.DefaultSize.MemoryBytes, s.cfg.DefaultSize.MilliCPU
		}
		q := wire.SizeQuantities{}
		if sz.MemoryBytes > 0 {
			q.Memory = strconv.FormatInt(sz.MemoryBytes>>20, 10) + "Mi"
		}
		if sz.MilliCPU > 0 {
			q.CPU = strconv.FormatInt(sz.MilliCPU, 10) + "m"
		}
		out = append(out, wire.Size{Name: sz.Name, Description: sz.Description, Resources: wire.SizeResources{Requests: q, Limits: q}})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) listFormations(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	fs, err := s.st.ListFormations(r.Context(), a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeFormations(w, http.StatusOK, a, fs)
}

func (s *Server) writeFormations(w http.ResponseWriter, status int, a *slipway.App, fs []*slipway.Formation) {
	out := make([]wire.Formation, 0, len(fs))
	for _, f := range fs {
		out = append(out, formationJSON(a, f))
	}
	writeJSON(w, status, out)
}

func (s *Server) findFormation(w http.ResponseWriter, r *http.Request, a *slipway.App, typ string) (*slipway.Formation, bool) {
	fs, err := s.st.ListFormations(r.Context(), a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	for _, f := range fs {
		if f.Type == typ {
			return f, true
		}
	}
	s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "The app has no %q formation; create it with POST /apps/%s/formation.", slipway.Clip(typ), a.Key()))
	return nil, false
}

func (s *Server) getFormation(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	if f, ok := s.findFormation(w, r, a, chi.URLParam(r, "type")); ok {
		writeJSON(w, http.StatusOK, formationJSON(a, f))
	}
}

// upsert saves changes, converges the app and answers the formations of
// the changed types.
func (s *Server) upsert(w http.ResponseWriter, r *http.Request, a *slipway.App, status int, changes []slipway.FormationChange) {
	fs, err := s.st.UpsertFormations(r.Context(), a.ID, changes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.cfg.Engine.Converge(a.ID)
	changed := map[string]bool{}
	for _, c := range changes {
		changed[c.Type] = true
	}
	var out []*slipway.Formation
	for _, f := range fs {
		if changed[f.Type] {
			out = append(out, f)
		}
	}
	if r.Method == http.MethodPost || chi.URLParam(r, "type") != "" {
		writeJSON(w, status, formationJSON(a, out[0]))
		return
	}
	s.writeFormations(w, status, a, out)
}

func (s *Server) createFormation(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	var body wire.FormationChange
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	fs, err := s.st.ListFormations(r.Context(), a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, f := range fs {
		if f.Type == body.Type {
			s.writeError(w, r, slipway.Errorf(slipway.EConflict, "The app already has a %q formation; change it with PATCH /apps/%s/formation/%s.", body.Type, a.Key(), body.Type))
			return
		}
	}
	c := formationChange(body)
	if c.Quantity == nil {
		one := 1
		c.Quantity = &one
	}
	s.upsert(w, r, a, http.StatusCreated, []slipway.FormationChange{c})
}

// batchUpdateFormations takes an array of formations, or Heroku's
// {"updates": [...]}.
func (s *Server) batchUpdateFormations(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	var raw json.RawMessage
	if err := decode(w, r, s.cfg.MaxBody, &raw); err != nil {
		s.writeError(w, r, err)
		return
	}
	var list []wire.FormationChange
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
		var wrapped wire.FormationUpdates
		if err := strictUnmarshal(raw, &wrapped); err != nil {
			s.writeError(w, r, err)
			return
		}
		list = wrapped.Updates
	} else if err := strictUnmarshal(raw, &list); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(list) == 0 {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Send an array of formations, e.g. [{\"type\": \"web\", \"quantity\": 2}]."))
		return
	}
	fs, err := s.st.ListFormations(r.Context(), a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	have := map[string]bool{}
	for _, f := range fs {
		have[f.Type] = true
	}
	changes := make([]slipway.FormationChange, 0, len(list))
	for _, b := range list {
		if !have[b.Type] && b.Quantity == nil {
			s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Formation %q does not exist yet; give its quantity to create it.", slipway.Clip(b.Type)))
			return
		}
		changes = append(changes, formationChange(b))
	}
	s.upsert(w, r, a, http.StatusOK, changes)
}

func strictUnmarshal(raw []byte, v any) error {
	return decode(nil, &http.Request{Body: io.NopCloser(bytes.NewReader(raw))}, int64(len(raw))+1, v)
}

func (s *Server) updateFormation(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	typ := chi.URLParam(r, "type")
	if _, ok := s.findFormation(w, r, a, typ); !ok {
		return
	}
	var body wire.FormationChange
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Type != "" && body.Type != typ {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "type cannot be changed; create a %q formation instead.", slipway.Clip(body.Type)))
		return
	}
	body.Type = typ
	s.upsert(w, r, a, http.StatusOK, []slipway.FormationChange{formationChange(body)})
}

func (s *Server) deleteFormation(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	f, ok := s.findFormation(w, r, a, chi.URLParam(r, "type"))
	if !ok {
		return
	}
	if err := s.st.DeleteFormation(r.Context(), a.ID, f.Type); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.cfg.Engine.Converge(a.ID)
	writeJSON(w, http.StatusOK, formationJSON(a, f))
}

// dynos returns the app's dynos as the API shows them, each with its
// formation's size.
func (s *Server) dynos(r *http.Request, a *slipway.App) ([]wire.Dyno, []slipway.Dyno, error) {
	dynos, err := s.cfg.Runtime.Dynos(r.Context(), a.ID)
	if err != nil {
		return nil, nil, err
	}
	fs, err := s.st.ListFormations(r.Context(), a.ID)
	if err != nil {
		return nil, nil, err
	}
	sizes := make(map[string]string, len(fs))
	for _, f := range fs {
		sizes[f.Type] = f.Size
	}
	out := make([]wire.Dyno, 0, len(dynos))
	for _, d := range dynos {
		size := sizes[d.Type]
		if size == "" {
			size = slipway.DefaultSize
		}
		out = append(out, dynoToJSON(a, d, size))
	}
	return out, dynos, nil
}

func (s *Server) listDynos(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	out, _, err := s.dynos(r, a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// getDyno answers one dyno, named type.name (web.1) or by its id; a bare
// process type names no one dyno.
func (s *Server) getDyno(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	want := chi.URLParam(r, "dyno")
	out, dynos, err := s.dynos(r, a)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for i, d := range dynos {
		if d.Selected(want) && want != d.Type {
			writeJSON(w, http.StatusOK, out[i])
			return
		}
	}
	for _, d := range dynos {
		if d.Type == want {
			s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "%s is a process type, not a dyno: name one as type.name, such as %s.%s.", d.Type, d.Type, d.Instance))
			return
		}
	}
	s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "The app has no dyno %q; list them with GET /apps/%s/dynos.", slipway.Clip(want), a.Key()))
}

func (s *Server) restartDynos(w http.ResponseWriter, r *http.Request) { s.restart(w, r, "") }

func (s *Server) restartDyno(w http.ResponseWriter, r *http.Request) {
	s.restart(w, r, chi.URLParam(r, "dyno"))
}

func (s *Server) restart(w http.ResponseWriter, r *http.Request, dyno string) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	if _, err := s.st.CurrentRelease(r.Context(), a.ID); slipway.ErrorCode(err) == slipway.ENotFound {
		s.writeError(w, r, slipway.Errorf(slipway.EConflict, "The app has no current release, so there are no dynos to restart; release a build first."))
		return
	} else if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.cfg.Engine.Restart(r.Context(), a.ID, dyno); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, wire.Restart{Status: "pending", Message: "Restarting dynos with a rolling restart; follow them with GET /apps/" + a.Key() + "/dynos."})
}
