// Package rollout holds Slipway's release strategies as a planner: from
// what is observed of a rollout (its durable state, the time, the
// release's status checks, the router's figures) Plan returns the next
// action and the state to store before carrying it out. It starts no
// process and calls no runtime; the engine carries out what it returns,
// through the runtime's primitives (Splitter.Split for a step, Deploy to
// promote or to abort), and stores the state first, so any server that
// holds the app's lease can go on after a crash.
//
// The rolling strategy is the runtimes' own rolling restart and is not
// planned here: Gated reports whether a strategy needs the planner.
//
// Adding a strategy: add its name and validation to the domain's
// Strategy (strategy.go), a case to Plan that moves the state from one
// phase to the next with the actions below, and its rows to the table
// tests. The engine and the runtimes need no change as long as the
// strategy is made of the same actions: place a weight (with its dyno
// counts), wait, promote, abort.
package rollout

import (
	"fmt"
	"slices"
	"time"

	"github.com/slipway/slipway"
)

// Kind is what the engine must do next.
type Kind int

const (
	// Place runs the step's dynos and sets its traffic weight
	// (Splitter.Split), then calls Placed and plans again.
	Place Kind = iota + 1
	// Wait stores the state and plans again at Until (or earlier, when
	// something changes: a check arrives, a user acts). A zero Until waits
	// for such a change only.
	Wait
	// Promote gives the new release every dyno and all traffic (Deploy
	// of the new release); the release succeeds.
	Promote
	// Abort goes back to the stable release at once (Deploy of the stable
	// release); the release fails with Reason.
	Abort
)

func (k Kind) String() string {
	switch k {
	case Place:
		return "place"
	case Wait:
		return "wait"
	case Promote:
		return "promote"
	case Abort:
		return "abort"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Decision is the next action and the state to store before it.
type Decision struct {
	Kind   Kind
	Weight int       // Place: the share of traffic for the new release
	Until  time.Time // Wait: when to plan again
	Reason string    // Abort: why, one sentence
	// Failure is why, as data (Abort): the phase (aborted, check or
	// analysis) and what it rests on. The engine adds what the planner
	// does not see (a check's target_url, that a newer release aborted).
	Failure *slipway.Failure
	State   slipway.Rollout
}

// Observation is what the planner sees of a rollout.
type Observation struct {
	Now      time.Time
	Strategy slipway.Strategy // the strategy of the app's web type
	State    slipway.Rollout  // as stored; zero for a rollout not begun
	// Checks holds the newest state of each status check context of the
	// release.
	Checks map[string]string
	// Traffic is the router's cumulative figures now; Measured is false
	// when the runtime has no router (then analysis cannot judge).
	Traffic  slipway.TrafficPair
	Measured bool
}

// Gated reports whether releases with strategy s need the planner: a
// canary or blue-green web type.
func Gated(s slipway.Strategy) bool {
	t := s.ForType("web").Type
	return t == slipway.StrategyCanary || t == slipway.StrategyBlueGreen
}

// Placed returns the state after the runtime carried out the current
// step at time now, when the router read traffic: a step placed for the
// first time starts its pause and its analysis window; a step placed
// again (after a restart) keeps its deadline.
func Placed(st slipway.Rollout, strategy slipway.Strategy, now time.Time, traffic slipway.TrafficPair) slipway.Rollout {
	first := st.StepStarted.IsZero()
	st.Placed = true
	if first {
		st.StepStarted = now
		st.Baseline = traffic
		if p := pauseOf(strategy, st.Step); p > 0 {
			until := now.Add(p)
			st.PauseUntil = &until
		}
	} else if st.Baseline.Canary.Requests > traffic.Canary.Requests || st.Baseline.Stable.Requests > traffic.Stable.Requests {
		st.Baseline = traffic // the router started again
	}
	return st
}

// Plan returns what to do next.
func Plan(o Observation) Decision {
	st := o.State
	s := o.Strategy.ForType("web")
	if st.Phase == "" {
		st = begin(s, o.Now)
	}
	// A promotion or an abort is stored before it is carried out; found
	// again, it was cut short (the server stopped), so it runs again.
	switch st.Phase {
	case slipway.PhaseDone:
		return Decision{Kind: Promote, State: st}
	case slipway.PhaseAborted:
		return Decision{Kind: Abort, Reason: st.Reason, State: st}
	}
	if st.Request == slipway.RequestAbort {
		by := "a user"
		if st.By != "" {
			by = st.By
		}
		d := abort(st, fmt.Sprintf("Aborted by %s at step %d (%d%% on the new release).", by, st.Step+1, st.Weight))
		d.Failure = &slipway.Failure{Phase: slipway.FailAborted, AbortedBy: by}
		return d
	}
	if c, state, ok := failedCheck(s.RequiredChecks, o.Checks); ok {
		d := abort(st, fmt.Sprintf("The required check %s reported %s.", c, state))
		d.Failure = &slipway.Failure{Phase: slipway.FailCheck, Check: &slipway.FailedCheck{Context: c, State: state}}
		return d
	}
	if !st.Placed && st.Weight >= 100 {
		return promote(st) // a canary step at 100% is the promotion
	}
	if !st.Placed {
		st.Phase = slipway.PhaseProgressing
		return Decision{Kind: Place, Weight: st.Weight, State: st}
	}
	// The step runs: judge the figures, then the gates.
	if o.Measured {
		st.Analysis = slipway.Figures{
			Canary: o.Traffic.Canary.Since(st.Baseline.Canary).Summary(),
			Stable: o.Traffic.Stable.Since(st.Baseline.Stable).Summary(),
		}
		if why := breach(s.Analysis, st.Analysis.Canary); why != "" {
			d := abort(st, why)
			figures := st.Analysis
			d.Failure = &slipway.Failure{Phase: slipway.FailAnalysis, Analysis: &figures}
			return d
		}
	}
	switch st.Request {
	case slipway.RequestPromoteFull:
		return promote(st)
	case slipway.RequestPromote:
		st.Request, st.Held = "", false
		return next(s, st, o.Now)
	}
	if st.Held {
		st.Phase, st.WaitingFor = slipway.PhasePaused, []string{"resume"}
		return Decision{Kind: Wait, State: st}
	}
	wake := analysisWake(s, st, o)
	switch s.Type {
	case slipway.StrategyBlueGreen:
		st.WaitingFor = missing(s.RequiredChecks, o.Checks)
		if len(st.WaitingFor) > 0 || !s.AutoPromote {
			if !s.AutoPromote {
				st.WaitingFor = append(st.WaitingFor, "promote")
			}
			st.Phase = slipway.PhasePaused
			return Decision{Kind: Wait, Until: wake, State: st}
		}
		return promote(st)
	}
	// Canary: the step's pause, then the analysis' first verdict.
	st.WaitingFor = nil
	pause := s.Steps[st.Step].Pause
	if pause == slipway.PauseUntilChecks {
		if st.WaitingFor = missing(s.RequiredChecks, o.Checks); len(st.WaitingFor) > 0 {
			st.Phase = slipway.PhasePaused
			return Decision{Kind: Wait, Until: wake, State: st}
		}
	}
	if st.PauseUntil != nil && o.Now.Before(*st.PauseUntil) {
		st.Phase = slipway.PhasePaused
		return Decision{Kind: Wait, Until: earliest(*st.PauseUntil, wake), State: st}
	}
	if a := s.Analysis; a != nil && o.Measured && o.Now.Sub(st.StepStarted) < time.Duration(a.Interval) {
		st.Phase = slipway.PhaseAnalyzing
		return Decision{Kind: Wait, Until: st.StepStarted.Add(time.Duration(a.Interval)), State: st}
	}
	return next(s, st, o.Now)
}

// begin is the state of a rollout about to place its first step.
func begin(s slipway.Strategy, now time.Time) slipway.Rollout {
	st := slipway.Rollout{Strategy: s.Type, Phase: slipway.PhaseProgressing, Started: now, Steps: 1}
	if s.Type == slipway.StrategyCanary {
		st.Steps = len(s.Steps)
		st.Weight = s.Steps[0].Weight
	}
	return st
}

// next leaves the current step: to the following one, or to 100%.
func next(s slipway.Strategy, st slipway.Rollout, now time.Time) Decision {
	// A step at 100% is the promotion itself.
	if s.Type != slipway.StrategyCanary || st.Step+1 >= len(s.Steps) || s.Steps[st.Step+1].Weight >= 100 {
		return promote(st)
	}
	st.Step++
	st.Weight = s.Steps[st.Step].Weight
	st.Placed, st.StepStarted, st.PauseUntil, st.WaitingFor = false, time.Time{}, nil, nil
	st.Phase = slipway.PhaseProgressing
	return Decision{Kind: Place, Weight: st.Weight, State: st}
}

func promote(st slipway.Rollout) Decision {
	st.Phase, st.Request, st.Held, st.WaitingFor, st.PauseUntil = slipway.PhasePromoting, "", false, nil, nil
	return Decision{Kind: Promote, State: st}
}

func abort(st slipway.Rollout, reason string) Decision {
	st.Phase, st.Reason, st.Request, st.WaitingFor, st.PauseUntil = slipway.PhaseAborted, reason, "", nil, nil
	return Decision{Kind: Abort, Reason: reason, State: st}
}

// pauseOf is the timed pause of a canary step; 0 for none or until-checks.
func pauseOf(s slipway.Strategy, step int) time.Duration {
	s = s.ForType("web")
	if s.Type != slipway.StrategyCanary || step >= len(s.Steps) {
		return 0
	}
	d, err := time.ParseDuration(s.Steps[step].Pause)
	if err != nil {
		return 0
	}
	return d
}

// breach returns why the canary's figures break the analysis' bounds, ""
// when they hold or there are too few requests to say.
func breach(a *slipway.Analysis, c slipway.TrafficSummary) string {
	if a == nil || c.Requests == 0 || c.Requests < a.MinRequests {
		return ""
	}
	if a.MaxErrorRate > 0 && c.ErrorRate > a.MaxErrorRate {
		return fmt.Sprintf("The error rate of the new release was %.2f%% (%d of %d requests), over the limit of %.2f%%.",
			c.ErrorRate*100, c.Errors, c.Requests, a.MaxErrorRate*100)
	}
	if a.MaxP99Ms > 0 && c.P99Ms > a.MaxP99Ms {
		return fmt.Sprintf("The p99 latency of the new release was %g ms over %d requests, over the limit of %g ms.", c.P99Ms, c.Requests, a.MaxP99Ms)
	}
	return ""
}

// analysisWake is when the analysis next judges the figures, zero when
// there is no analysis.
func analysisWake(s slipway.Strategy, st slipway.Rollout, o Observation) time.Time {
	if s.Analysis == nil || !o.Measured {
		return time.Time{}
	}
	return o.Now.Add(time.Duration(s.Analysis.Interval))
}

// failedCheck returns the first required context whose newest check is
// failure or error.
func failedCheck(required []string, checks map[string]string) (string, string, bool) {
	for _, c := range required {
		if st := checks[c]; st == slipway.StateFailure || st == slipway.StateError {
			return c, st, true
		}
	}
	return "", "", false
}

// missing lists the required contexts that are not success yet.
func missing(required []string, checks map[string]string) []string {
	var out []string
	for _, c := range required {
		if checks[c] != slipway.StateSuccess {
			out = append(out, c)
		}
	}
	return slices.Clip(out)
}

func earliest(a, b time.Time) time.Time {
	if b.IsZero() || a.Before(b) {
		return a
	}
	return b
}
