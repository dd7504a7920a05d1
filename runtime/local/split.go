package local

import (
	"context"

	"github.com/slipway/slipway"
)

// Split runs two releases of the app side by side (see slipway.Splitter):
// the router divides the web traffic by s.Weight from the start, so new
// canary dynos take only their share as they become ready, and falls back
// to the other release while one has no ready dyno. A failure converges
// the app back to s.Stable on its full formations.
func (r *Runtime) Split(ctx context.Context, s slipway.Split, progress slipway.ProgressFunc) error {
	stable, err := plan(&s.Stable)
	if err != nil {
		return err
	}
	canary, err := plan(&s.Canary)
	if err != nil {
		return err
	}
	rep := newReporter(progress, r.log, s.Canary.App.ID)
	defer rep.Close()
	ctx, done := r.opContext(ctx)
	defer done()
	a, err := r.lockApp(ctx, s.Canary.App)
	if err != nil {
		return err
	}
	defer func() { <-a.lock }()
	if err := r.releasePhaseOnce(ctx, a, &s.Canary, rep); err != nil {
		return err
	}

	targets := map[string][]target{}
	add := func(d *slipway.Desired, plans []typePlan, counts map[string]int) {
		for _, p := range plans {
			if _, ok := targets[p.typ]; !ok {
				targets[p.typ] = nil
			}
			if n := counts[p.typ]; n > 0 {
				targets[p.typ] = append(targets[p.typ], target{sp: r.newSpec(d, p), q: n})
			}
		}
	}
	add(&s.Stable, stable, s.Stables)
	add(&s.Canary, canary, s.Canaries)
	a.setSplit(&trafficSplit{canary: s.Canary.Release.ID, canaryVersion: s.Canary.Release.Version, weight: s.Weight, preview: s.Preview})
	if err := r.convergeTargets(ctx, a, targets, s.Canary.Release.Version, nil, rep); err != nil {
		back := cloneDesired(s.Stable)
		return r.revert(a, &back, err, rep)
	}
	rep.Emit(slipway.EventInfo, "", "web", "%d%% of the traffic goes to v%d", s.Weight, s.Canary.Release.Version)
	last := cloneDesired(s.Stable)
	a.mu.Lock()
	a.last = &last
	a.mu.Unlock()
	return nil
}
