package engine

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/rollout"
)

// errWaiting ends a pass over an app's work while its gated rollout waits
// (a pause, checks, a promote); the sweep, a check or an action brings the
// app back, on whichever server then holds its lease.
var errWaiting = errors.New("the rollout waits")

// carryOutGated takes a canary or blue-green release one plan at a time:
// it stores the planner's state before each action, carries the action
// out through the runtime, and returns errWaiting when the rollout has to
// wait. Each action (a step's placement, the promotion, the abort) has the
// release deadline; time spent waiting does not count.
func (e *Engine) carryOutGated(ctx context.Context, r *slipway.Release, sp slipway.Splitter, cur *slipway.Release) error {
	st := e.cfg.Store
	state, err := st.Rollout(ctx, r.ID)
	if slipway.ErrorCode(err) == slipway.ENotFound {
		state, err = &slipway.Rollout{ReleaseID: r.ID}, nil
	}
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		obs := rollout.Observation{Now: e.cfg.Now(), Strategy: r.Strategy, State: *state}
		superseded := false
		if newer, err := st.FindRelease(ctx, r.AppID, "v"+strconv.Itoa(r.Version+1)); err == nil && obs.State.Phase != slipway.PhaseAborted {
			obs.State.Request, obs.State.By = slipway.RequestAbort, "v"+strconv.Itoa(newer.Version)+", a newer release"
			superseded = true
		}
		if obs.Checks, err = e.checks(ctx, r.ID); err != nil {
			return err
		}
		obs.Traffic, obs.Measured = traffic(sp, r, cur)
		d := rollout.Plan(obs)
		next := d.State
		next.ReleaseID, next.Seq = r.ID, state.Seq
		e.logStep(ctx, r, cur, state, &next)
		if err := st.SaveRollout(ctx, &next); err != nil {
			return err
		}
		state = &next
		switch d.Kind {
		case rollout.Wait:
			if !d.Until.IsZero() {
				e.wakeAt(r.AppID, d.Until)
			}
			return errWaiting
		case rollout.Place:
			if err := e.place(ctx, r, cur, sp, d.Weight); err != nil {
				return e.failGated(ctx, r, state, err)
			}
			now, _ := traffic(sp, r, cur) // the step's analysis counts from here
			placed := rollout.Placed(*state, r.Strategy, e.cfg.Now(), now)
			if err := st.SaveRollout(ctx, &placed); err != nil {
				return err
			}
			state = &placed
		case rollout.Promote:
			web := r.Strategy.ForType("web")
			if delay := time.Duration(web.ScaleDownDelay); web.Type == slipway.StrategyBlueGreen && delay > 0 && sp.Traffic(r.AppID) != nil {
				// The switch: all traffic to the new release; the old
				// one's dynos stay for the delay, so a rollback is a flip.
				// (That takes a router that weighs traffic exactly: a
				// runtime without one, such as Kubernetes, where traffic
				// follows pod counts, promotes with Deploy.)
				e.logf(ctx, r, "Switching all traffic to v%d; the dynos of v%d stop in %s.", r.Version, cur.Version, delay)
				if err := e.place(ctx, r, cur, sp, 100); err != nil {
					return e.failGated(ctx, r, state, err)
				}
				at := e.cfg.Now().Add(delay)
				state.ScaleDownAt = &at
			} else {
				e.logf(ctx, r, "Promoting v%d to all of the app's dynos and traffic.", r.Version)
				if err := e.deployGated(ctx, r, r); err != nil {
					return e.failGated(ctx, r, state, err)
				}
			}
			state.Phase, state.Weight, state.Step = slipway.PhaseDone, 100, max(state.Steps-1, 0)
			state.PreviewURL = ""
			if err := st.SaveRollout(ctx, state); err != nil {
				return err
			}
			e.logf(ctx, r, "Release v%d succeeded.", r.Version)
			return e.finish(ctx, r, slipway.ReleaseSucceeded, "", state.Started, nil)
		case rollout.Abort:
			e.logf(ctx, r, "release_aborted: %s Going back to v%d.", d.Reason, cur.Version)
			if err := e.deployGated(ctx, r, cur); err != nil && ctx.Err() == nil {
				e.logf(ctx, r, "Going back to v%d failed too: %s", cur.Version, slipway.Message(err))
			}
			if ctx.Err() != nil {
				return ctx.Err() // resumes: the abort is stored and runs again
			}
			f, err := e.abortFailure(ctx, r, d.Failure, superseded)
			if err != nil {
				return err
			}
			return e.finish(ctx, r, slipway.ReleaseFailed, d.Reason, state.Started, f)
		}
	}
	return ctx.Err()
}

// place runs the step at weight: the counts of each type's dynos follow
// the weight (blue-green: both releases on their full formations).
func (e *Engine) place(ctx context.Context, r, cur *slipway.Release, sp slipway.Splitter, weight int) error {
	canary, err := e.desired(ctx, r)
	if err != nil {
		return err
	}
	stable, err := e.desired(ctx, cur)
	if err != nil {
		return err
	}
	split := slipway.Split{Stable: *stable, Canary: *canary, Weight: weight, Stables: map[string]int{}, Canaries: map[string]int{}}
	for _, f := range canary.Formations {
		switch r.Strategy.ForType(f.Type).Type {
		case slipway.StrategyBlueGreen:
			split.Stables[f.Type], split.Canaries[f.Type] = f.Quantity, f.Quantity
			split.Preview = weight < 100
		case slipway.StrategyCanary:
			split.Stables[f.Type], split.Canaries[f.Type] = slipway.SplitCounts(f.Quantity, weight)
		default: // a type that rolls goes over at the first step
			split.Canaries[f.Type] = f.Quantity
		}
	}
	dctx, cancel := context.WithTimeout(ctx, e.cfg.ReleaseDeadline)
	defer cancel()
	return sp.Split(dctx, split, e.progress(ctx, r))
}

// deployGated places to (the new release to promote, the stable one to
// abort) on the app's full formations, within the release deadline.
func (e *Engine) deployGated(ctx context.Context, r, to *slipway.Release) error {
	d, err := e.desired(ctx, to)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, e.cfg.ReleaseDeadline)
	defer cancel()
	return e.cfg.Runtime.Deploy(dctx, *d, e.progress(ctx, r))
}

// failGated ends a rollout whose step or promotion failed: the runtime
// has already gone back to the stable release.
func (e *Engine) failGated(ctx context.Context, r *slipway.Release, state *slipway.Rollout, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if slipway.ErrorCode(err) == slipway.EInternal && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	msg := slipway.Message(err)
	state.Phase, state.Reason = slipway.PhaseAborted, msg
	if err := e.cfg.Store.SaveRollout(ctx, state); err != nil {
		return err
	}
	e.logf(ctx, r, "release_failed: %s", msg)
	return e.finish(ctx, r, slipway.ReleaseFailed, msg, state.Started, placeFailure(err))
}

// abortFailure completes the planner's failure of an abort with what only
// the engine knows: that a newer release asked for it (superseded), and
// the failed check's target_url.
func (e *Engine) abortFailure(ctx context.Context, r *slipway.Release, f *slipway.Failure, superseded bool) (*slipway.Failure, error) {
	if f == nil {
		f = &slipway.Failure{Phase: slipway.FailAborted}
	}
	out := *f
	if superseded && out.Phase == slipway.FailAborted {
		out.Phase = slipway.FailSuperseded
	}
	if out.Check != nil {
		ss, err := e.cfg.Store.ListReleaseStatuses(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		c := *out.Check
		for _, s := range ss {
			if s.Context == c.Context {
				c.TargetURL = s.TargetURL
			}
		}
		out.Check = &c
	}
	return &out, nil
}

// checks is the newest state of each check context of the release.
func (e *Engine) checks(ctx context.Context, releaseID string) (map[string]string, error) {
	ss, err := e.cfg.Store.ListReleaseStatuses(ctx, releaseID)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ss))
	slices.SortStableFunc(ss, func(a, b *slipway.ReleaseStatus) int { return a.UpdatedAt.Compare(b.UpdatedAt) })
	for _, s := range ss {
		out[s.Context] = s.State
	}
	return out, nil
}

// progress writes the runtime's progress events to the release log.
func (e *Engine) progress(ctx context.Context, r *slipway.Release) slipway.ProgressFunc {
	return func(ev slipway.ProgressEvent) {
		e.logf(ctx, r, "%s", formatEvent(ev))
	}
}

// logStep writes a line to the release log when the rollout moves to
// another step or phase, or waits for something else.
func (e *Engine) logStep(ctx context.Context, r, cur *slipway.Release, from, to *slipway.Rollout) {
	if from.Phase == to.Phase && from.Step == to.Step && slices.Equal(from.WaitingFor, to.WaitingFor) && from.Placed == to.Placed {
		return
	}
	switch to.Phase {
	case slipway.PhaseProgressing:
		if to.Strategy == slipway.StrategyBlueGreen {
			e.logf(ctx, r, "Blue-green: starting v%d beside v%d for a preview.", r.Version, cur.Version)
		} else {
			e.logf(ctx, r, "Canary step %d/%d: %d%% of traffic to v%d.", to.Step+1, to.Steps, to.Weight, r.Version)
		}
	case slipway.PhasePaused:
		switch {
		case len(to.WaitingFor) > 0:
			e.logf(ctx, r, "release_paused: waiting for %s.", strings.Join(to.WaitingFor, ", "))
		case to.PauseUntil != nil:
			e.logf(ctx, r, "release_paused: until %s.", to.PauseUntil.UTC().Format(time.RFC3339))
		}
	case slipway.PhaseAnalyzing:
		e.logf(ctx, r, "Analyzing the traffic of v%d.", r.Version)
	}
}

// gatedStrategy reports whether r rolls out with the planner, and the
// runtime's Splitter when it does. A runtime that cannot split, or an app
// without a current release to compare with, rolls (said in the log).
func (e *Engine) gatedStrategy(ctx context.Context, r *slipway.Release) (slipway.Splitter, *slipway.Release, error) {
	if !rollout.Gated(r.Strategy) {
		return nil, nil, nil
	}
	sp, ok := e.cfg.Runtime.(slipway.Splitter)
	if !ok {
		e.logf(ctx, r, "This runtime cannot run two releases side by side; v%d rolls out instead of the %s strategy.", r.Version, r.Strategy.Type)
		return nil, nil, nil
	}
	cur, err := e.cfg.Store.CurrentRelease(ctx, r.AppID)
	if slipway.ErrorCode(err) == slipway.ENotFound {
		e.logf(ctx, r, "The app has no release to compare with; v%d rolls out.", r.Version)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return sp, cur, nil
}

// traffic is the router's cumulative figures of the stable and the new
// release; false when the runtime measures none.
func traffic(sp slipway.Splitter, r, cur *slipway.Release) (slipway.TrafficPair, bool) {
	t := sp.Traffic(r.AppID)
	if t == nil {
		return slipway.TrafficPair{}, false
	}
	return slipway.TrafficPair{Stable: t[cur.ID], Canary: t[r.ID]}, true
}

// scaleDown stops the dynos a blue-green switch left running once their
// delay is over, by placing the current release again.
func (e *Engine) scaleDown(ctx context.Context, appID string) error {
	st, err := e.cfg.Store.PendingScaleDown(ctx, appID)
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if e.cfg.Now().Before(*st.ScaleDownAt) {
		return nil
	}
	cur, err := e.cfg.Store.CurrentRelease(ctx, appID)
	if err != nil && slipway.ErrorCode(err) != slipway.ENotFound {
		return err
	}
	if cur != nil {
		d, err := e.desired(ctx, cur)
		if err != nil {
			return err
		}
		dctx, cancel := context.WithTimeout(ctx, e.cfg.ReleaseDeadline)
		defer cancel()
		if err := e.cfg.Runtime.Deploy(dctx, *d, func(ev slipway.ProgressEvent) {
			e.log.Debug("scale down", "app", appID, "event", ev.Type, "dyno", ev.Dyno, "msg", ev.Message)
		}); err != nil {
			return err
		}
	}
	return e.clearScaleDown(ctx, st.ReleaseID)
}

func (e *Engine) clearScaleDown(ctx context.Context, releaseID string) error {
	_, err := e.cfg.Store.UpdateRollout(ctx, releaseID, func(st *slipway.Rollout) error {
		st.ScaleDownAt = nil
		return nil
	})
	return err
}

// wakeAt kicks the app at t (the end of a pause, the next analysis), on
// this server; the sweep does it too, on any server, within its interval.
// An app has one wake-up at a time: the newest replaces the one before.
func (e *Engine) wakeAt(appID string, t time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.wakes[appID]; old != nil {
		old.Stop()
	}
	e.wakes[appID] = time.AfterFunc(max(t.Sub(e.cfg.Now()), 0), func() {
		e.mu.Lock()
		delete(e.wakes, appID)
		stopped := e.ctx != nil && e.ctx.Err() != nil
		e.mu.Unlock()
		if !stopped {
			e.Kick(appID)
		}
	})
}
