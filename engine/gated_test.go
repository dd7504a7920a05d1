package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/engine"
)

// fakeSplitter is a runtime that can split: it records each step's
// weight and counts, and reports the traffic a test sets.
type fakeSplitter struct {
	*fakeRuntime
	mu      sync.Mutex
	steps   []string // "v2@10%:web=1+1" per Split
	traffic map[string]slipway.Traffic
	// splitErr, when set, is what every Split returns.
	splitErr error
}

func (f *fakeSplitter) Split(ctx context.Context, s slipway.Split, p slipway.ProgressFunc) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.steps = append(f.steps, fmt.Sprintf("v%d@%d%%:web=%d+%d", s.Canary.Release.Version, s.Weight, s.Stables["web"], s.Canaries["web"]))
	return f.splitErr
}

func (f *fakeSplitter) Traffic(appID string) map[string]slipway.Traffic {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.traffic
}

func (f *fakeSplitter) placed() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.steps, " ")
}

// gatedFixture is an app with v1 succeeded on 3 web dynos and strategy s,
// on an engine whose release deadline is shorter than the pauses.
func gatedFixture(t *testing.T, s slipway.Strategy) (*fixture, *fakeSplitter, *slipway.App, string) {
	t.Helper()
	f := newFixture(t, nil)
	sp := &fakeSplitter{fakeRuntime: f.rt}
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: sp, ReleaseDeadline: 100 * time.Millisecond, Sweep: 20 * time.Millisecond})
	a, slug := f.app(t, "gated")
	ctx := context.Background()
	v1 := f.release(t, a.ID, slug)
	f.run(t)
	if got := f.waitStatus(t, a.ID, v1.ID); got.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v1 = %s", got.Status)
	}
	three := 3
	if _, err := f.db.UpsertFormations(ctx, a.ID, []slipway.FormationChange{{Type: "web", Quantity: &three}}); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetAppStrategy(ctx, a.ID, &s); err != nil {
		t.Fatal(err)
	}
	return f, sp, a, slug
}

func TestEngine_Canary_PausesDoNotCountAgainstTheDeadline(t *testing.T) {
	f, sp, a, slug := gatedFixture(t, slipway.Strategy{Type: slipway.StrategyCanary,
		Steps: []slipway.CanaryStep{{Weight: 10, Pause: "300ms"}, {Weight: 50, Pause: "300ms"}, {Weight: 100}}})
	v2 := f.release(t, a.ID, slug)
	f.eng.Kick(a.ID)
	got := f.waitStatus(t, a.ID, v2.ID)
	if got.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v2 = %s (%s), want succeeded after pauses longer than the deadline\nlog:\n%s", got.Status, got.Error, f.log(t, v2.ID))
	}
	if steps := sp.placed(); steps != "v2@10%:web=2+1 v2@50%:web=1+2" {
		t.Fatalf("steps = %s", steps)
	}
	if vs := fmt.Sprint(f.rt.versions(a.ID)); vs != "[1 2]" {
		t.Fatalf("deploys = %s, want v2 deployed once, to promote it", vs)
	}
	st, err := f.db.Rollout(context.Background(), v2.ID)
	if err != nil || st.Phase != slipway.PhaseDone || st.Weight != 100 {
		t.Fatalf("rollout = %+v, %v; want done at 100", st, err)
	}
	for _, want := range []string{"Canary step 1/3: 10% of traffic to v2.", "Canary step 2/3: 50% of traffic to v2.", "Release v2 succeeded."} {
		if !strings.Contains(f.log(t, v2.ID), want) {
			t.Errorf("log lacks %q:\n%s", want, f.log(t, v2.ID))
		}
	}
}

func TestEngine_Canary_AnalysisAbortsOnErrorRate(t *testing.T) {
	f, sp, a, slug := gatedFixture(t, slipway.Strategy{Type: slipway.StrategyCanary,
		Steps:    []slipway.CanaryStep{{Weight: 20, Pause: "1h"}, {Weight: 100}},
		Analysis: &slipway.Analysis{MaxErrorRate: 0.05, MinRequests: 100, Interval: slipway.Duration(time.Second)}})
	v2 := f.release(t, a.ID, slug)
	f.eng.Kick(a.ID)
	waitFor(t, "v2 placed at 20%", func() bool { return sp.placed() != "" })
	sp.mu.Lock()
	sp.traffic = map[string]slipway.Traffic{v2.ID: {Requests: 200, Errors: 40}}
	sp.mu.Unlock()
	got := f.waitStatus(t, a.ID, v2.ID)
	if got.Status != slipway.ReleaseFailed || !strings.Contains(got.Error, "error rate of the new release was 20.00% (40 of 200 requests)") {
		t.Fatalf("v2 = %s %q, want failed on its error rate", got.Status, got.Error)
	}
	if vs := fmt.Sprint(f.rt.versions(a.ID)); vs != "[1]" {
		t.Fatalf("deploys = %s, want only v1 (the abort places it again)", vs)
	}
	if !strings.Contains(f.log(t, v2.ID), "release_aborted: ") {
		t.Fatalf("log:\n%s", f.log(t, v2.ID))
	}
}
