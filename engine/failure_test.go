package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/engine"
)

// secret is a config value the failing processes of these tests print.
const secret = "hunter2-s3cr3t"

// failRelease releases v2 of an app whose v1 succeeded, with secret in
// its config, on a runtime whose Deploy of v2 returns err, and returns
// v2 as it ended.
func failRelease(t *testing.T, deadline time.Duration, deploy func(ctx context.Context) error) (*fixture, *slipway.Release) {
	t.Helper()
	f := newFixture(t, nil)
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: f.rt, ReleaseDeadline: deadline, Sweep: 20 * time.Millisecond})
	a, slug := f.app(t, "failing")
	f.rt.deploy = func(ctx context.Context, d slipway.Desired) error {
		if d.Release.Version == 2 {
			return deploy(ctx)
		}
		return nil
	}
	f.run(t)
	v1 := f.release(t, a.ID, slug)
	f.eng.Kick(a.ID)
	f.waitStatus(t, a.ID, v1.ID)
	v2, err := f.db.CreateRelease(context.Background(), slipway.NewRelease{AppID: a.ID, SlugID: slug, Trigger: slipway.TriggerDeploy,
		Config: map[string]string{"DATABASE_PASSWORD": secret, "EMPTY": ""}})
	if err != nil {
		t.Fatal(err)
	}
	f.eng.Kick(a.ID)
	return f, f.waitStatus(t, a.ID, v2.ID)
}

// Each way a rolling release fails reaches the release's failure, with
// what the runtime said of it; the runtime's own failure wins over what
// the engine infers from the error's code.
func TestEngine_Failure_PhasePerRuntimeError(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status string
		want   slipway.Failure
	}{
		{"build: the runtime cannot run the slug", slipway.Errorf(slipway.ENotImplemented, "The local runtime runs archive slugs only."),
			slipway.ReleaseFailed, slipway.Failure{Phase: slipway.FailBuild}},
		{"start: an error without a failure", slipway.Errorf(slipway.EUnprocessable, "Kubernetes refused to create deployments."),
			slipway.ReleaseFailed, slipway.Failure{Phase: slipway.FailStart}},
		{"release-phase", slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "Release phase failed: the release command exited with status 3."),
			&slipway.Failure{Phase: slipway.FailReleasePhase, Dyno: "release.1", ExitCode: slipway.ExitStatus(3), Output: []string{"migrating", "oops"}}),
			slipway.ReleaseFailed, slipway.Failure{Phase: slipway.FailReleasePhase, Dyno: "release.1", ExitCode: slipway.ExitStatus(3), Output: []string{"migrating", "oops"}}},
		{"health", slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "web.1 did not pass its health check."),
			&slipway.Failure{Phase: slipway.FailHealth, Dyno: "web.1", Health: &slipway.HealthAnswer{Check: "GET /health", Code: 503, Body: "db " + secret + " down"}}),
			slipway.ReleaseFailed, slipway.Failure{Phase: slipway.FailHealth, Dyno: "web.1", Output: []string{},
				Health: &slipway.HealthAnswer{Check: "GET /health", Code: 503, Body: "db [redacted] down"}}},
		{"crash", slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "web.1 was killed by signal killed before it was healthy."),
			&slipway.Failure{Phase: slipway.FailCrash, Dyno: "web.1", Signal: "SIGKILL"}),
			slipway.ReleaseFailed, slipway.Failure{Phase: slipway.FailCrash, Dyno: "web.1", Signal: "SIGKILL", Output: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := failRelease(t, time.Minute, func(context.Context) error { return tt.err })
			if got.Status != tt.status {
				t.Fatalf("status = %s, want %s", got.Status, tt.status)
			}
			if got.Failure == nil {
				t.Fatalf("failure = nil, want %+v", tt.want)
			}
			if g, w := fmt.Sprintf("%+v", failureText(got.Failure)), fmt.Sprintf("%+v", failureText(&tt.want)); g != w {
				t.Errorf("failure =\n %s\nwant\n %s", g, w)
			}
		})
	}
}

// failureText prints a failure with its pointers followed.
func failureText(f *slipway.Failure) string {
	code := "nil"
	if f.ExitCode != nil {
		code = fmt.Sprint(*f.ExitCode)
	}
	out := f.Output
	if out == nil {
		out = []string{}
	}
	return fmt.Sprintf("phase=%s dyno=%s exit=%s signal=%s output=%q health=%+v check=%+v analysis=%+v by=%q",
		f.Phase, f.Dyno, code, f.Signal, out, f.Health, f.Check, f.Analysis, f.AbortedBy)
}

// A crashing dyno's output reaches the failure cut to its last 20 lines,
// and every config value is [redacted] there, in the error and in the
// release log.
func TestEngine_Failure_Crash_OutputRedacted(t *testing.T) {
	var out []string
	for i := 1; i <= 25; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	out = append(out, "connecting with password "+secret)
	f, got := failRelease(t, time.Minute, func(context.Context) error {
		return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "web.1 exited with status 1 before it was healthy: connecting with password %s", secret),
			&slipway.Failure{Phase: slipway.FailCrash, Dyno: "web.1", ExitCode: slipway.ExitStatus(1), Output: out})
	})
	if got.Status != slipway.ReleaseFailed || got.Failure == nil || got.Failure.Phase != slipway.FailCrash {
		t.Fatalf("v2 = %s, failure %+v", got.Status, got.Failure)
	}
	fl := got.Failure
	if len(fl.Output) != 20 || fl.Output[0] != "line 7" || fl.Output[19] != "connecting with password [redacted]" {
		t.Errorf("output = %q, want lines 7-25 and the last, redacted", fl.Output)
	}
	if fl.ExitCode == nil || *fl.ExitCode != 1 || fl.Dyno != "web.1" {
		t.Errorf("failure = %s", failureText(fl))
	}
	if !strings.HasSuffix(got.Error, "connecting with password [redacted]") {
		t.Errorf("error = %q", got.Error)
	}
	if log := f.log(t, got.ID); strings.Contains(log, secret) || !strings.Contains(log, "password [redacted]") {
		t.Errorf("log shows the secret or lacks the redacted line:\n%s", log)
	}
}

// A rollout that outlives the release deadline is unknown, with a
// deadline failure.
func TestEngine_Failure_Deadline(t *testing.T) {
	_, got := failRelease(t, 100*time.Millisecond, func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if got.Status != slipway.ReleaseUnknown || got.Failure == nil || got.Failure.Phase != slipway.FailDeadline {
		t.Fatalf("v2 = %s, failure %+v; want unknown, deadline", got.Status, got.Failure)
	}
}

// The gated rollouts' failures: the analysis figures, the failed check
// with its target_url, who aborted, and a newer release that superseded.
func TestEngine_Failure_Gated(t *testing.T) {
	canary := func() slipway.Strategy {
		return slipway.Strategy{Type: slipway.StrategyCanary, RequiredChecks: []string{"ci/smoke"},
			Steps:    []slipway.CanaryStep{{Weight: 20, Pause: "1h"}, {Weight: 100}},
			Analysis: &slipway.Analysis{MaxErrorRate: 0.05, MinRequests: 100, Interval: slipway.Duration(time.Second)}}
	}
	ctx := context.Background()
	t.Run("analysis", func(t *testing.T) {
		f, sp, a, slug := gatedFixture(t, canary())
		v2 := f.release(t, a.ID, slug)
		f.eng.Kick(a.ID)
		waitFor(t, "v2 placed", func() bool { return sp.placed() != "" })
		sp.mu.Lock()
		sp.traffic = map[string]slipway.Traffic{v2.ID: {Requests: 200, Errors: 40}}
		sp.mu.Unlock()
		got := f.waitStatus(t, a.ID, v2.ID)
		fl := got.Failure
		if got.Status != slipway.ReleaseFailed || fl == nil || fl.Phase != slipway.FailAnalysis || fl.Analysis == nil ||
			fl.Analysis.Canary.Requests != 200 || fl.Analysis.Canary.Errors != 40 || fl.Analysis.Canary.ErrorRate != 0.2 {
			t.Fatalf("v2 = %s, failure %+v", got.Status, fl)
		}
	})
	t.Run("check", func(t *testing.T) {
		f, sp, a, slug := gatedFixture(t, canary())
		v2 := f.release(t, a.ID, slug)
		f.eng.Kick(a.ID)
		waitFor(t, "v2 placed", func() bool { return sp.placed() != "" })
		err := f.db.CreateReleaseStatus(ctx, &slipway.ReleaseStatus{ReleaseID: v2.ID, State: slipway.StateFailure, Name: "smoke tests",
			Context: "ci/smoke", TargetURL: "https://ci.example.com/run/7"})
		if err != nil {
			t.Fatal(err)
		}
		f.eng.Kick(a.ID)
		got := f.waitStatus(t, a.ID, v2.ID)
		want := slipway.FailedCheck{Context: "ci/smoke", State: slipway.StateFailure, TargetURL: "https://ci.example.com/run/7"}
		if fl := got.Failure; got.Status != slipway.ReleaseFailed || fl == nil || fl.Phase != slipway.FailCheck || fl.Check == nil || *fl.Check != want {
			t.Fatalf("v2 = %s, failure %+v", got.Status, fl)
		}
	})
	t.Run("aborted", func(t *testing.T) {
		f, sp, a, slug := gatedFixture(t, canary())
		v2 := f.release(t, a.ID, slug)
		f.eng.Kick(a.ID)
		waitFor(t, "v2 placed", func() bool { return sp.placed() != "" })
		_, err := f.db.UpdateRollout(ctx, v2.ID, func(st *slipway.Rollout) error {
			st.Request, st.By = slipway.RequestAbort, "ann@example.com"
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		f.eng.Kick(a.ID)
		got := f.waitStatus(t, a.ID, v2.ID)
		if fl := got.Failure; got.Status != slipway.ReleaseFailed || fl == nil || fl.Phase != slipway.FailAborted || fl.AbortedBy != "ann@example.com" {
			t.Fatalf("v2 = %s, failure %+v", got.Status, fl)
		}
	})
	t.Run("superseded", func(t *testing.T) {
		f, sp, a, slug := gatedFixture(t, canary())
		v2 := f.release(t, a.ID, slug)
		f.eng.Kick(a.ID)
		waitFor(t, "v2 placed", func() bool { return sp.placed() != "" })
		f.release(t, a.ID, slug)
		f.eng.Kick(a.ID)
		got := f.waitStatus(t, a.ID, v2.ID)
		if fl := got.Failure; got.Status != slipway.ReleaseFailed || fl == nil || fl.Phase != slipway.FailSuperseded || fl.AbortedBy != "v3, a newer release" {
			t.Fatalf("v2 = %s, failure %+v", got.Status, fl)
		}
	})
	t.Run("step placement fails", func(t *testing.T) {
		f, sp, a, slug := gatedFixture(t, canary())
		sp.splitErr = slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "web-canary-1 crashed."), &slipway.Failure{Phase: slipway.FailCrash, Dyno: "web-canary-1"})
		v2 := f.release(t, a.ID, slug)
		f.eng.Kick(a.ID)
		got := f.waitStatus(t, a.ID, v2.ID)
		if fl := got.Failure; got.Status != slipway.ReleaseFailed || fl == nil || fl.Phase != slipway.FailCrash || fl.Dyno != "web-canary-1" {
			t.Fatalf("v2 = %s (%s), failure %+v", got.Status, got.Error, fl)
		}
	})
}

// A succeeded release has no failure.
func TestEngine_Failure_NoneOnSuccess(t *testing.T) {
	f := newFixture(t, nil)
	a, slug := f.app(t, "fine")
	f.run(t)
	r := f.release(t, a.ID, slug)
	f.eng.Kick(a.ID)
	if got := f.waitStatus(t, a.ID, r.ID); got.Status != slipway.ReleaseSucceeded || got.Failure != nil {
		t.Fatalf("v1 = %s, failure %+v", got.Status, got.Failure)
	}
}
