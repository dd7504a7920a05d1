package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	var body wire.NewRelease
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(body.Description) > 1024 {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "description must be at most 1024 characters."))
		return
	}
	u := currentUser(r)
	nr := slipway.NewRelease{AppID: a.ID, Description: body.Description, UserID: u.ID, UserEmail: u.Email}
	switch {
	case body.Slug != "" && body.Release != "":
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Send either slug (to deploy a build) or release (to roll back), not both."))
		return
	case body.Slug != "":
		nr.SlugID, nr.Trigger = body.Slug, slipway.TriggerDeploy
	case body.Release != "":
		nr.RollbackTo, nr.Trigger = body.Release, slipway.TriggerRollback
	default:
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "Send slug (a build id to deploy) or release (a release id to roll back to)."))
		return
	}
	rel, err := s.st.CreateRelease(r.Context(), nr)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.cfg.Engine.Kick(a.ID)
	writeJSON(w, http.StatusCreated, releaseToJSON(rel))
}

// listReleases answers the whole list (streamed, so memory stays flat
// however long it is) or, with a Range header, one page.
func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	p, err := parseRange(r.Header.Get("Range"), "version")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if p.Max == 0 {
		s.streamReleases(w, r, a)
		return
	}
	fetch := p
	fetch.Max = p.Max + 1
	out := make([]wire.Release, 0, p.Max)
	var last int
	more := false
	err = s.st.ListReleases(r.Context(), a.ID, fetch, func(rel *slipway.Release) error {
		if len(out) == p.Max {
			more = true
			return nil
		}
		out = append(out, releaseToJSON(rel))
		last = rel.Version
		return nil
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if more {
		w.Header().Set("Next-Range", nextRange("version", p, strconv.Itoa(last)))
		status = http.StatusPartialContent
	}
	writeJSON(w, status, out)
}

// streamChunk is how many releases one query of a streamed list reads;
// between chunks no database connection is held while the client reads.
const streamChunk = 500

func (s *Server) streamReleases(w http.ResponseWriter, r *http.Request, a *slipway.App) {
	buf := make([]byte, 0, 64<<10)
	started := false
	p := slipway.Page{Max: streamChunk}
	for {
		n, last := 0, 0
		err := s.st.ListReleases(r.Context(), a.ID, p, func(rel *slipway.Release) error {
			if !started {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(http.StatusOK)
				buf = append(buf, '[')
				started = true
			} else {
				buf = append(buf, ',')
			}
			buf = appendRelease(buf, rel)
			n, last = n+1, rel.Version
			return nil
		})
		if err != nil {
			if !started {
				s.writeError(w, r, err)
				return
			}
			// The status is sent: cut the connection so the client sees a
			// broken body rather than a short list.
			s.log.Error("list releases", "request_id", requestID(r), "err", err)
			panic(http.ErrAbortHandler)
		}
		if n < streamChunk {
			break
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		buf = buf[:0]
		p.Start, p.StartExclusive = strconv.Itoa(last), true
	}
	if !started {
		writeJSON(w, http.StatusOK, []wire.Release{})
		return
	}
	w.Write(append(buf, ']', '\n'))
}

func (s *Server) release(w http.ResponseWriter, r *http.Request) (*slipway.App, *slipway.Release, bool) {
	a, ok := s.app(w, r)
	if !ok {
		return nil, nil, false
	}
	rel, err := s.st.FindRelease(r.Context(), a.ID, chi.URLParam(r, "release"))
	if err != nil {
		s.writeError(w, r, err)
		return nil, nil, false
	}
	return a, rel, true
}

func (s *Server) getRelease(w http.ResponseWriter, r *http.Request) {
	if a, rel, ok := s.release(w, r); ok {
		s.writeRelease(w, r, http.StatusOK, a, rel)
	}
}

// getReleaseLog answers the rollout log; with ?follow=true it streams
// text lines as they are written until the release ends.
func (s *Server) getReleaseLog(w http.ResponseWriter, r *http.Request) {
	a, rel, ok := s.release(w, r)
	if !ok {
		return
	}
	if f := r.URL.Query().Get("follow"); f != "true" && f != "1" {
		lines, err := s.st.ReleaseLog(r.Context(), rel.ID, 0)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		text := make([]string, 0, len(lines))
		for _, l := range lines {
			text = append(text, l.Line)
		}
		writeJSON(w, http.StatusOK, wire.ReleaseLog{Release: wire.ReleaseStatusRef{ID: rel.ID, Status: rel.Status}, Lines: text})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	var after int64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		// Read the status before the lines, so the lines written before
		// the release ended are all sent before the stream closes.
		cur, err := s.st.FindRelease(r.Context(), a.ID, rel.ID)
		if err != nil {
			return
		}
		lines, err := s.st.ReleaseLog(r.Context(), rel.ID, after)
		if err != nil {
			return
		}
		for _, l := range lines {
			w.Write([]byte(l.Time.UTC().Format(wire.TimeLayout) + " " + l.Line + "\n"))
			after = l.Seq
		}
		if flusher != nil {
			flusher.Flush()
		}
		if slipway.ReleaseTerminal(cur.Status) {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// applyStatusChange sets the fields a status request gives, but not its
// context, which only a new status sets.
func applyStatusChange(b *wire.ReleaseStatusChange, st *slipway.ReleaseStatus) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&st.State, b.State)
	set(&st.Name, b.Name)
	set(&st.Description, b.Description)
	set(&st.TargetURL, b.TargetURL)
	set(&st.ImageURL, b.ImageURL)
}

func (s *Server) createStatus(w http.ResponseWriter, r *http.Request) {
	a, rel, ok := s.release(w, r)
	if !ok {
		return
	}
	var body wire.ReleaseStatusChange
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	st := &slipway.ReleaseStatus{ReleaseID: rel.ID}
	applyStatusChange(&body, st)
	if body.Context != nil {
		st.Context = *body.Context
	}
	if err := s.st.CreateReleaseStatus(r.Context(), st); err != nil {
		s.writeError(w, r, err)
		return
	}
	if rel.Status == slipway.ReleasePending {
		s.cfg.Engine.Kick(a.ID) // a gated rollout may wait for this check
	}
	writeJSON(w, http.StatusCreated, statusToJSON(rel, st))
}

func (s *Server) listStatuses(w http.ResponseWriter, r *http.Request) {
	_, rel, ok := s.release(w, r)
	if !ok {
		return
	}
	sts, err := s.st.ListReleaseStatuses(r.Context(), rel.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]wire.ReleaseStatus, 0, len(sts))
	states := make([]string, 0, len(sts))
	for _, st := range sts {
		out = append(out, statusToJSON(rel, st))
		states = append(states, st.State)
	}
	writeJSON(w, http.StatusOK, wire.ReleaseStatuses{State: slipway.CombineStates(states), Release: releaseToJSON(rel), Statuses: out})
}

// releaseStatus finds the {status} of the path's release, answering 404
// itself when either is unknown.
func (s *Server) releaseStatus(w http.ResponseWriter, r *http.Request) (*slipway.App, *slipway.Release, *slipway.ReleaseStatus, bool) {
	a, rel, ok := s.release(w, r)
	if !ok {
		return nil, nil, nil, false
	}
	st, err := s.st.FindReleaseStatus(r.Context(), rel.ID, chi.URLParam(r, "status"))
	if err != nil {
		s.writeError(w, r, err)
		return nil, nil, nil, false
	}
	return a, rel, st, true
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	if _, rel, st, ok := s.releaseStatus(w, r); ok {
		writeJSON(w, http.StatusOK, statusToJSON(rel, st))
	}
}

func (s *Server) updateStatus(w http.ResponseWriter, r *http.Request) {
	a, rel, st, ok := s.releaseStatus(w, r)
	if !ok {
		return
	}
	var body wire.ReleaseStatusChange
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.Context != nil && *body.Context != st.Context {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "context cannot be changed; create a new status for context %q.", slipway.Clip(*body.Context)))
		return
	}
	applyStatusChange(&body, st)
	if err := s.st.UpdateReleaseStatus(r.Context(), st); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.cfg.Engine.Kick(a.ID) // a gated rollout may wait for this check
	writeJSON(w, http.StatusOK, statusToJSON(rel, st))
}
