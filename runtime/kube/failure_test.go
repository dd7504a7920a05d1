package kube

import (
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
)

// Each way a Deploy fails on Kubernetes carries a slipway.Failure behind
// the reverted error: the phase, the pod, how its container ended and
// the health check's last answer.
func TestDeploy_Failure_PerPhase(t *testing.T) {
	tests := []struct {
		name  string
		d     func() slipway.Desired
		check func(t *testing.T, f *slipway.Failure)
	}{
		{"crash", func() slipway.Desired { return release(2, "hello:crash-loop", nil, web(1)) }, func(t *testing.T, f *slipway.Failure) {
			if f.Phase != slipway.FailCrash || f.ExitCode == nil || *f.ExitCode != 1 || len(f.Output) == 0 {
				t.Errorf("failure = %+v", f)
			}
		}},
		{"start: image pull", func() slipway.Desired { return release(2, "registry.example.com/hello:pull-error", nil, web(1)) }, func(t *testing.T, f *slipway.Failure) {
			if f.Phase != slipway.FailStart || f.ExitCode != nil {
				t.Errorf("failure = %+v", f)
			}
		}},
		{"health", func() slipway.Desired {
			return release(2, "hello:unready", nil, slipway.Formation{Type: "web", Quantity: 1, Healthcheck: "/health"})
		}, func(t *testing.T, f *slipway.Failure) {
			if h := f.Health; f.Phase != slipway.FailHealth || h == nil || h.Code != 503 || h.Check != "HTTP GET /health on port 5000" {
				t.Errorf("failure = %+v, health %+v", f, h)
			}
		}},
		{"release-phase", func() slipway.Desired {
			d := release(2, "hello:v2", nil, web(1))
			d.Slug.ProcessTypes["release"] = "bin/migrate; exit 1"
			return d
		}, func(t *testing.T, f *slipway.Failure) {
			if f.Phase != slipway.FailReleasePhase || f.ExitCode == nil || *f.ExitCode != 1 || f.Dyno == "" {
				t.Errorf("failure = %+v", f)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.HealthyDeadline = 2 * time.Second })
			h.mustDeploy(release(1, "hello:v1", nil, slipway.Formation{Type: "web", Quantity: 1, Healthcheck: "/health"}))
			_, err := h.deploy(tt.d())
			if err == nil {
				t.Fatal("Deploy succeeded")
			}
			f := slipway.FailureOf(err)
			if f == nil {
				t.Fatalf("no failure behind %v", err)
			}
			if f.Phase != slipway.FailReleasePhase && f.Dyno == "" {
				t.Errorf("failure names no pod: %+v", f)
			}
			tt.check(t, f)
		})
	}
}
