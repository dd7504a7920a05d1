package rollout_test

import (
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/rollout"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func canary(analysis *slipway.Analysis, steps ...slipway.CanaryStep) slipway.Strategy {
	s := slipway.Strategy{Type: slipway.StrategyCanary, Steps: steps, Analysis: analysis, RequiredChecks: []string{"ci/smoke"}}
	if err := s.Validate(); err != nil {
		panic(err)
	}
	return s
}

// traffic is a cumulative reading: n requests, errs errors, all in the
// 10 ms bucket (or the last, unbounded one when slow).
func traffic(n, errs int64, slow bool) slipway.Traffic {
	b := make([]int64, len(slipway.LatencyBucketsMs)+1)
	if slow {
		b[len(b)-1] = n
	} else {
		b[3] = n
	}
	return slipway.Traffic{Requests: n, Errors: errs, Buckets: b}
}

func placedAt(s slipway.Strategy, st slipway.Rollout, at time.Time) slipway.Rollout {
	return rollout.Placed(st, s, at, slipway.TrafficPair{})
}

func TestPlan_Canary(t *testing.T) {
	timed := canary(nil, slipway.CanaryStep{Weight: 10, Pause: "2m"}, slipway.CanaryStep{Weight: 50, Pause: "until-checks"}, slipway.CanaryStep{Weight: 100})
	analysed := canary(&slipway.Analysis{MaxErrorRate: 0.01, MaxP99Ms: 800, MinRequests: 50, Interval: slipway.Duration(15 * time.Second)},
		slipway.CanaryStep{Weight: 20}, slipway.CanaryStep{Weight: 100})
	step0 := placedAt(timed, rollout.Plan(rollout.Observation{Now: t0, Strategy: timed}).State, t0)
	step1 := func() slipway.Rollout {
		d := rollout.Plan(rollout.Observation{Now: t0.Add(2 * time.Minute), Strategy: timed, State: step0})
		return placedAt(timed, d.State, t0.Add(2*time.Minute))
	}()
	a0 := placedAt(analysed, rollout.Plan(rollout.Observation{Now: t0, Strategy: analysed}).State, t0)
	with := func(st slipway.Rollout, f func(*slipway.Rollout)) slipway.Rollout { f(&st); return st }

	tests := []struct {
		name     string
		strategy slipway.Strategy
		state    slipway.Rollout
		now      time.Time
		checks   map[string]string
		traffic  *slipway.TrafficPair
		want     rollout.Kind
		weight   int
		until    time.Time
		phase    string
		step     int
		waiting  string
		reason   string // a part of the abort reason
	}{
		{name: "a new rollout places its first step", strategy: timed, now: t0, want: rollout.Place, weight: 10, phase: "progressing"},
		{name: "a placed step pauses until its deadline", strategy: timed, state: step0, now: t0.Add(time.Minute),
			want: rollout.Wait, until: t0.Add(2 * time.Minute), phase: "paused"},
		{name: "after the pause the next step is placed", strategy: timed, state: step0, now: t0.Add(2 * time.Minute),
			want: rollout.Place, weight: 50, step: 1, phase: "progressing"},
		{name: "a step placed again after a restart keeps its deadline", strategy: timed,
			state: placedAt(timed, with(step0, func(s *slipway.Rollout) { s.Placed = false }), t0.Add(90*time.Second)), now: t0.Add(90 * time.Second),
			want: rollout.Wait, until: t0.Add(2 * time.Minute), phase: "paused"},
		{name: "until-checks waits for the missing check", strategy: timed, state: step1, now: t0.Add(3 * time.Minute),
			checks: map[string]string{"ci/smoke": "pending"}, want: rollout.Wait, phase: "paused", step: 1, waiting: "ci/smoke"},
		{name: "until-checks goes on once the check succeeded", strategy: timed, state: step1, now: t0.Add(3 * time.Minute),
			checks: map[string]string{"ci/smoke": "success"}, want: rollout.Promote, phase: "promoting", step: 1},
		{name: "a failed required check aborts", strategy: timed, state: step1, now: t0.Add(3 * time.Minute),
			checks: map[string]string{"ci/smoke": "failure"}, want: rollout.Abort, phase: "aborted", step: 1, reason: "ci/smoke reported failure"},
		{name: "an errored required check aborts even before its step", strategy: timed, state: step0, now: t0.Add(time.Second),
			checks: map[string]string{"ci/smoke": "error"}, want: rollout.Abort, phase: "aborted", reason: "ci/smoke reported error"},
		{name: "promote goes to the next step at once", strategy: timed, state: with(step0, func(s *slipway.Rollout) { s.Request = slipway.RequestPromote }),
			now: t0.Add(time.Second), want: rollout.Place, weight: 50, step: 1, phase: "progressing"},
		{name: "a full promote skips to 100%", strategy: timed, state: with(step0, func(s *slipway.Rollout) { s.Request = slipway.RequestPromoteFull }),
			now: t0.Add(time.Second), want: rollout.Promote, phase: "promoting"},
		{name: "abort says who", strategy: timed, state: with(step0, func(s *slipway.Rollout) { s.Request, s.By = slipway.RequestAbort, "ann@example.com" }),
			now: t0.Add(time.Second), want: rollout.Abort, phase: "aborted", reason: "Aborted by ann@example.com at step 1 (10%"},
		{name: "a held rollout waits past its pause", strategy: timed, state: with(step0, func(s *slipway.Rollout) { s.Held = true }),
			now: t0.Add(time.Hour), want: rollout.Wait, phase: "paused", waiting: "resume"},
		{name: "analysis waits for its first interval", strategy: analysed, state: a0, now: t0.Add(5 * time.Second),
			traffic: &slipway.TrafficPair{Canary: traffic(10, 0, false)}, want: rollout.Wait, until: t0.Add(15 * time.Second), phase: "analyzing"},
		{name: "an error rate over the limit aborts", strategy: analysed, state: a0, now: t0.Add(5 * time.Second),
			traffic: &slipway.TrafficPair{Canary: traffic(100, 20, false)}, want: rollout.Abort, phase: "aborted", reason: "error rate of the new release was 20.00%"},
		{name: "too few requests give no verdict", strategy: analysed, state: a0, now: t0.Add(5 * time.Second),
			traffic: &slipway.TrafficPair{Canary: traffic(40, 20, false)}, want: rollout.Wait, phase: "analyzing"},
		{name: "a slow canary aborts on p99", strategy: analysed, state: a0, now: t0.Add(5 * time.Second),
			traffic: &slipway.TrafficPair{Canary: traffic(100, 0, true)}, want: rollout.Abort, phase: "aborted", reason: "p99 latency"},
		{name: "an abort cut short by a restart runs again", strategy: timed,
			state: with(step1, func(s *slipway.Rollout) { s.Phase, s.Reason = slipway.PhaseAborted, "ci/smoke reported failure" }),
			now:   t0.Add(time.Hour), want: rollout.Abort, phase: "aborted", step: 1, reason: "ci/smoke reported failure"},
		{name: "a promotion cut short by a restart runs again", strategy: timed,
			state: with(step1, func(s *slipway.Rollout) { s.Phase = slipway.PhaseDone }),
			now:   t0.Add(time.Hour), want: rollout.Promote, phase: "done", step: 1},
		{name: "a healthy canary goes on after an interval", strategy: analysed, state: a0, now: t0.Add(15 * time.Second),
			traffic: &slipway.TrafficPair{Canary: traffic(100, 1, false)}, want: rollout.Promote, phase: "promoting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := rollout.Observation{Now: tc.now, Strategy: tc.strategy, State: tc.state, Checks: tc.checks}
			if tc.traffic != nil {
				o.Traffic, o.Measured = *tc.traffic, true
			}
			d := rollout.Plan(o)
			if d.Kind != tc.want {
				t.Fatalf("kind = %s, want %s (state %+v)", d.Kind, tc.want, d.State)
			}
			if d.Kind == rollout.Place && d.Weight != tc.weight {
				t.Errorf("weight = %d, want %d", d.Weight, tc.weight)
			}
			if !tc.until.IsZero() && !d.Until.Equal(tc.until) {
				t.Errorf("until = %s, want %s", d.Until, tc.until)
			}
			if d.State.Phase != tc.phase || d.State.Step != tc.step {
				t.Errorf("phase, step = %s, %d; want %s, %d", d.State.Phase, d.State.Step, tc.phase, tc.step)
			}
			if got := strings.Join(d.State.WaitingFor, ","); got != tc.waiting {
				t.Errorf("waiting_for = %q, want %q", got, tc.waiting)
			}
			if !strings.Contains(d.Reason, tc.reason) || (tc.reason == "") != (d.Reason == "") {
				t.Errorf("reason = %q, want it to contain %q", d.Reason, tc.reason)
			}
			if d.Kind == rollout.Abort && d.State.Reason != d.Reason {
				t.Errorf("stored reason = %q", d.State.Reason)
			}
		})
	}
}

func TestPlan_BlueGreen(t *testing.T) {
	manual := slipway.Strategy{Type: slipway.StrategyBlueGreen, Preview: true, RequiredChecks: []string{"ci/smoke"}}
	auto := manual
	auto.AutoPromote = true
	for _, s := range []*slipway.Strategy{&manual, &auto} {
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	d := rollout.Plan(rollout.Observation{Now: t0, Strategy: manual})
	if d.Kind != rollout.Place || d.Weight != 0 || d.State.Strategy != "blue-green" {
		t.Fatalf("first = %+v, want the preview placed at weight 0", d)
	}
	placed := rollout.Placed(d.State, manual, t0, slipway.TrafficPair{})
	ok := map[string]string{"ci/smoke": "success"}
	if d := rollout.Plan(rollout.Observation{Now: t0, Strategy: manual, State: placed, Checks: ok}); d.Kind != rollout.Wait || strings.Join(d.State.WaitingFor, ",") != "promote" {
		t.Fatalf("without auto_promote = %s waiting for %v, want a wait for promote", d.Kind, d.State.WaitingFor)
	}
	placed.Request = slipway.RequestPromote
	if d := rollout.Plan(rollout.Observation{Now: t0, Strategy: manual, State: placed}); d.Kind != rollout.Promote {
		t.Fatalf("promote asked = %s, want promote", d.Kind)
	}
	placed.Request = ""
	if d := rollout.Plan(rollout.Observation{Now: t0, Strategy: auto, State: placed}); d.Kind != rollout.Wait || strings.Join(d.State.WaitingFor, ",") != "ci/smoke" {
		t.Fatalf("auto before the check = %s waiting for %v", d.Kind, d.State.WaitingFor)
	}
	if d := rollout.Plan(rollout.Observation{Now: t0, Strategy: auto, State: placed, Checks: ok}); d.Kind != rollout.Promote {
		t.Fatalf("auto after the check = %s, want promote", d.Kind)
	}
}

func TestSplitCounts(t *testing.T) {
	for _, tc := range []struct{ q, w, stable, canary int }{
		{3, 10, 2, 1}, {3, 50, 1, 2}, {3, 100, 0, 3}, {1, 10, 1, 1}, {1, 99, 1, 1}, {10, 25, 7, 3}, {0, 50, 0, 0},
	} {
		s, c := slipway.SplitCounts(tc.q, tc.w)
		if s != tc.stable || c != tc.canary {
			t.Errorf("SplitCounts(%d, %d) = %d, %d; want %d, %d", tc.q, tc.w, s, c, tc.stable, tc.canary)
		}
	}
}
