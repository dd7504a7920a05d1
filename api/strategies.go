package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/slipway/slipway"
)

func (s *Server) getStrategy(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	st, err := s.st.AppStrategy(r.Context(), a.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) putStrategy(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	var body slipway.Strategy
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.st.SetAppStrategy(r.Context(), a.ID, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, &body)
}

// releaseAction carries a user's promote, abort, pause or resume to the
// release's rollout: it is stored, and the engine acts on it at once.
func (s *Server) releaseAction(w http.ResponseWriter, r *http.Request) {
	a, rel, ok := s.release(w, r)
	if !ok {
		return
	}
	action := chi.URLParam(r, "action")
	var body struct {
		Full bool `json:"full"`
	}
	switch action {
	case "promote":
		if r.ContentLength != 0 {
			if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
	case "abort", "pause", "resume":
	default:
		s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "There is no release action %q; use promote, abort, pause or resume.", slipway.Clip(action)))
		return
	}
	notRolling := slipway.Errorf(slipway.EConflict, "Release v%d is not rolling out (it is %s); actions apply to a canary or blue-green release while it is pending.", rel.Version, rel.Status)
	if rel.Status != slipway.ReleasePending {
		s.writeError(w, r, notRolling)
		return
	}
	by := currentUser(r).Email
	if by == "" {
		by = "a user"
	}
	_, err := s.st.UpdateRollout(r.Context(), rel.ID, func(st *slipway.Rollout) error {
		if st.Phase == slipway.PhaseDone || st.Phase == slipway.PhaseAborted || st.Phase == slipway.PhasePromoting {
			return notRolling
		}
		switch action {
		case "promote":
			st.Request, st.Held = slipway.RequestPromote, false
			if body.Full {
				st.Request = slipway.RequestPromoteFull
			}
		case "abort":
			st.Request, st.By = slipway.RequestAbort, by
		case "pause":
			st.Held = true
		case "resume":
			st.Held = false
		}
		return nil
	})
	if slipway.ErrorCode(err) == slipway.ENotFound {
		err = notRolling
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	event := map[string]string{"promote": slipway.EventReleasePromoted, "abort": slipway.EventReleaseAborted, "pause": slipway.EventReleasePaused}[action]
	if err := s.st.RecordReleaseAction(r.Context(), a, rel, action, event); err != nil {
		s.log.Error("release action", "request_id", requestID(r), "err", err)
	}
	s.cfg.Engine.Kick(a.ID)
	s.writeRelease(w, r, http.StatusOK, a, rel)
}

// writeRelease answers a release with its rollout, when it has one, and
// the preview host of a blue-green release waiting for its switch.
func (s *Server) writeRelease(w http.ResponseWriter, r *http.Request, code int, a *slipway.App, rel *slipway.Release) {
	out := releaseToJSON(rel)
	if strategyName(rel) != "" {
		if st, err := s.st.Rollout(r.Context(), rel.ID); err == nil {
			out.Rollout = rolloutToJSON(st)
			if st.Strategy == slipway.StrategyBlueGreen && rel.Status == slipway.ReleasePending && st.Placed && st.Weight == 0 {
				out.Rollout.PreviewURL = s.cfg.WebURL(a.Key() + "--preview")
			}
		}
	}
	writeJSON(w, code, out)
}
