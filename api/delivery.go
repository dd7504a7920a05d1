package api

import (
	"net/http"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// getReleaseDiff answers what changed from ?against= (an id or vN; by
// default the release that was current when this one was created) to the
// release: config var keys, never values.
func (s *Server) getReleaseDiff(w http.ResponseWriter, r *http.Request) {
	a, rel, ok := s.release(w, r)
	if !ok {
		return
	}
	var against *slipway.Release
	var err error
	if q, given := r.URL.Query()["against"]; given {
		against, err = s.st.FindRelease(r.Context(), a.ID, q[0])
		if slipway.ErrorCode(err) == slipway.ENotFound {
			err = slipway.Errorf(slipway.EUnprocessable, "against must name a release of the app (an id or vN); %q is none.", slipway.Clip(q[0]))
		}
	} else if against, err = s.st.ReleaseCurrentAt(r.Context(), rel); slipway.ErrorCode(err) == slipway.ENotFound {
		against, err = nil, nil
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	d, err := s.diffReleases(r, against, rel)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, diffToJSON(d))
}

func (s *Server) diffReleases(r *http.Request, from, to *slipway.Release) (slipway.ReleaseDiff, error) {
	toC, err := s.st.ReleaseContents(r.Context(), to)
	if err != nil {
		return slipway.ReleaseDiff{}, err
	}
	var fromC *slipway.ReleaseContents
	if from != nil {
		if fromC, err = s.st.ReleaseContents(r.Context(), from); err != nil {
			return slipway.ReleaseDiff{}, err
		}
	}
	return slipway.DiffReleases(fromC, toC), nil
}

func releaseRef(r *slipway.Release) *wire.ReleaseRef {
	if r == nil {
		return nil
	}
	return &wire.ReleaseRef{ID: r.ID, Version: r.Version}
}

func diffSlugJSON(s slipway.SlugSide) wire.DiffSlug {
	return wire.DiffSlug{ID: s.ID, Checksum: s.Checksum, Image: s.Image, Commit: s.Commit, Branch: s.Branch, Repo: s.Repo}
}

func diffToJSON(d slipway.ReleaseDiff) wire.ReleaseDiff {
	keys := func(k slipway.KeyChanges) wire.KeyChanges {
		return wire.KeyChanges{Added: k.Added, Removed: k.Removed, Changed: k.Changed}
	}
	out := wire.ReleaseDiff{Release: *releaseRef(d.Release), Against: releaseRef(d.Against), Config: keys(d.Config),
		ProcessTypes: keys(d.ProcessTypes), RollbackOf: releaseRef(d.RollbackOf), Summary: d.Summary(),
		Slug: wire.DiffSlugChange{Changed: d.Slug.Changed, To: diffSlugJSON(d.Slug.To)}}
	if d.Slug.From != nil {
		from := diffSlugJSON(*d.Slug.From)
		out.Slug.From = &from
	}
	if d.FormationKnown {
		out.Formation = []wire.FormationDiff{}
		for _, f := range d.Formation {
			fd := wire.FormationDiff{Type: f.Type, Change: f.Change}
			for _, c := range f.Fields {
				fd.Fields = append(fd.Fields, wire.FieldChange{Field: c.Field, From: c.From, To: c.To})
			}
			out.Formation = append(out.Formation, fd)
		}
	}
	from, to := slipway.StrategyRolling, d.Release.Strategy.Type
	if d.Against != nil {
		from = d.Against.Strategy.Type
	}
	if from == "" {
		from = slipway.StrategyRolling
	}
	if to == "" {
		to = slipway.StrategyRolling
	}
	out.Strategy = wire.StrategyChange{Changed: d.Strategy != nil, From: from, To: to}
	return out
}

// deliveryWindow reads ?window= (default 30d) and the history since it
// started, computing the metrics of appIDs.
func (s *Server) deliveryMetrics(r *http.Request, appIDs []string) (wire.DeliveryMetrics, error) {
	win := r.URL.Query().Get("window")
	d, err := slipway.ParseDeliveryWindow(win)
	if err != nil {
		return wire.DeliveryMetrics{}, err
	}
	if win == "" {
		win = "30d"
	}
	now := s.cfg.Now()
	recs, err := s.st.DeliveryHistory(r.Context(), appIDs, now.Add(-d))
	if err != nil {
		return wire.DeliveryMetrics{}, err
	}
	out := deliveryToJSON(slipway.ComputeDeliveryMetrics(recs, now, d))
	out.Window = win
	return out, nil
}

func seconds(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	v := d.Seconds()
	return &v
}

func deliveryToJSON(m slipway.DeliveryMetrics) wire.DeliveryMetrics {
	return wire.DeliveryMetrics{
		From: wire.TimeOf(m.From), To: wire.TimeOf(m.To),
		Deployments:         wire.DeploymentCounts{Total: m.Deployments, Succeeded: m.Succeeded, Failed: m.Failed, Running: m.Running},
		DeploymentFrequency: wire.DeploymentFrequency{PerDay: m.PerDay},
		LeadTime: wire.LeadTime{MedianSeconds: seconds(m.LeadTimeMedian), P90Seconds: seconds(m.LeadTimeP90),
			Measured: m.LeadTimeMeasured, FromBuildCreated: m.LeadTimeFromBuild},
		ChangeFailureRate: wire.ChangeFailureRate{Rate: m.ChangeFailureRate, Failures: m.ChangeFailures, Ended: m.Succeeded + m.Failed},
		TimeToRestore:     wire.TimeToRestore{MedianSeconds: seconds(m.TimeToRestoreMedian), Restored: m.Restored, Unrestored: m.Unrestored},
	}
}

func (s *Server) getAppDeliveryMetrics(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	out, err := s.deliveryMetrics(r, []string{a.ID})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out.App = &wire.Ref{ID: a.ID, Name: a.Key()}
	writeJSON(w, http.StatusOK, out)
}

// getPipelineDeliveryMetrics answers the metrics of the deployments to
// the pipeline's production-stage apps.
func (s *Server) getPipelineDeliveryMetrics(w http.ResponseWriter, r *http.Request) {
	p, ok := s.pipeline(w, r)
	if !ok {
		return
	}
	cs, err := s.st.ListCouplings(r.Context(), p.ID, "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ids := []string{}
	for _, c := range cs {
		if c.Stage == "production" {
			ids = append(ids, c.AppID)
		}
	}
	out, err := s.deliveryMetrics(r, ids)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out.Pipeline = &wire.Ref{ID: p.ID, Name: p.Name}
	writeJSON(w, http.StatusOK, out)
}
