package ui

import (
	"html"
	"strings"
	"testing"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// TestTemplates_RolloutAndFailureShowTheirFigures renders the fragments
// with every optional part filled in, as only a real rollout fills them.
func TestTemplates_RolloutAndFailureShowTheirFigures(t *testing.T) {
	u := New(Config{})
	figures := slipway.Figures{
		Canary: slipway.TrafficSummary{Requests: 120, Errors: 6, ErrorRate: 0.05, P50Ms: 3.25, P99Ms: 812},
		Stable: slipway.TrafficSummary{Requests: 480, Errors: 1, ErrorRate: 0.0021, P50Ms: 2.5, P99Ms: 40},
	}
	rel := &wire.Release{ID: "r2", Version: 2, Status: slipway.ReleasePending, Strategy: slipway.StrategyCanary,
		Rollout: &wire.Rollout{Strategy: slipway.StrategyCanary, Step: 1, Steps: 3, Weight: 25, Phase: slipway.PhasePaused,
			WaitingFor: []string{"ci/smoke"}, Analysis: figures}}
	v := rolloutView{App: "shop-default", Release: rel, Types: []typeProgress{{Type: "web", Running: 1, Ready: 1, Want: 1}},
		Actions: []string{"promote", "abort"}}
	got, err := u.fragment("rollout", &v)
	if err != nil {
		t.Fatal(err)
	}
	got = html.UnescapeString(got)
	for _, want := range []string{"2 of 3", "25%", "ci/smoke", "Requests</th><td>120</td><td>480</td>", "5.00%", "812.0 ms", "confirm/promote?release=v2", "confirm/abort?release=v2"} {
		if !strings.Contains(got, want) {
			t.Errorf("the rollout does not show %q:\n%s", want, got)
		}
	}

	exit := 3
	row := rowOf(wire.Release{Version: 3, Status: slipway.ReleaseFailed,
		Failure: &slipway.Failure{Phase: slipway.FailAnalysis, Dyno: "web.2", ExitCode: &exit, Analysis: &figures, AbortedBy: "ops@example.com",
			Output: []string{"panic: boom"}}})
	var b strings.Builder
	if err := u.pages["release"].ExecuteTemplate(&b, "failure", row.Failure); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"analysis", "web.2", ">3<", "ops@example.com", "panic: boom", "<td>6</td><td>1</td>"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the failure does not show %q:\n%s", want, b.String())
		}
	}
	if c := row.Cause; !strings.Contains(c, "analysis of web.2") {
		t.Errorf("the failure's cause in one line: %q", c)
	}
}
