package local

import (
	"net"
	"strings"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/testslug"
)

// Each way a Deploy fails carries a slipway.Failure, found behind the
// reverted error with FailureOf: its phase, the dyno, how the process
// ended and its last output lines.
func TestDeploy_Failure_PerPhase(t *testing.T) {
	t.Parallel()
	many := "i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); done; "
	tests := []struct {
		name     string
		procfile string
		form     slipway.Formation
		check    func(t *testing.T, f *slipway.Failure)
	}{
		{"crash", "web: " + many + "echo \"greeting $GREETING\"; exit 4\n", web(1), func(t *testing.T, f *slipway.Failure) {
			if f.Phase != slipway.FailCrash || f.Dyno != "web.1" || f.ExitCode == nil || *f.ExitCode != 4 || f.Signal != "" {
				t.Errorf("failure = %+v", f)
			}
			// The runtime keeps the last lines as they were; the engine
			// redacts config values.
			if len(f.Output) != slipway.MaxFailureOutput || f.Output[len(f.Output)-1] != "greeting hello" || f.Output[0] != "line 11" {
				t.Errorf("output = %q", f.Output)
			}
		}},
		{"killed by a signal", "web: echo bye; kill -9 $$\n", web(1), func(t *testing.T, f *slipway.Failure) {
			if f.Phase != slipway.FailCrash || f.ExitCode != nil || f.Signal != "SIGKILL" {
				t.Errorf("failure = %+v", f)
			}
		}},
		{"health", "web: ./testapp --unhealthy\n", slipway.Formation{Type: "web", Quantity: 1, Healthcheck: "/health"}, func(t *testing.T, f *slipway.Failure) {
			h := f.Health
			if f.Phase != slipway.FailHealth || f.Dyno != "web.1" || h == nil || h.Check != "GET /health" || h.Code != 500 || h.Body != "unhealthy as asked\n" {
				t.Errorf("failure = %+v, health %+v", f, h)
			}
			if len(f.Output) == 0 || !strings.Contains(strings.Join(f.Output, "\n"), "listening on") {
				t.Errorf("output = %q", f.Output)
			}
		}},
		{"health without a path", "web: ./testapp --never-listen\n", web(1), func(t *testing.T, f *slipway.Failure) {
			if h := f.Health; f.Phase != slipway.FailHealth || h == nil || h.Code != 0 || h.Error != "connection refused" {
				t.Errorf("failure = %+v, health %+v", f, h)
			}
		}},
		{"release-phase", "release: echo migrating; echo \"with $GREETING\"; exit 3\nweb: ./testapp\n", web(1), func(t *testing.T, f *slipway.Failure) {
			if f.Phase != slipway.FailReleasePhase || f.Dyno != "release.1" || f.ExitCode == nil || *f.ExitCode != 3 ||
				strings.Join(f.Output, "|") != "migrating|with hello" {
				t.Errorf("failure = %+v", f)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, func(c *Config) { c.HealthyDeadline = time.Second })
			err := f.deploy(f.desired(1, testslug.UnpackedSlug(t, tt.procfile), tt.form))
			if err == nil {
				t.Fatal("Deploy succeeded")
			}
			fl := slipway.FailureOf(err)
			if fl == nil {
				t.Fatalf("no failure behind %v", err)
			}
			if slipway.ErrorCode(err) != slipway.EUnprocessable {
				t.Errorf("code = %s", slipway.ErrorCode(err))
			}
			tt.check(t, fl)
		})
	}
}

// A slug the runtime cannot run fails in the build phase, before any
// dyno starts.
func TestDeploy_Failure_Build(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, slug := range []slipway.Slug{{ID: "img", Image: "registry.example.com/app:1"}, {ID: "gone", Dir: t.TempDir() + "/missing"}} {
		err := f.deploy(f.desired(1, slug, web(1)))
		if fl := slipway.FailureOf(err); fl == nil || fl.Phase != slipway.FailBuild {
			t.Errorf("slug %s: failure = %+v (%v), want build", slug.ID, fl, err)
		}
	}
}

// A dyno that cannot be started at all (here: no free port for it)
// fails in the start phase.
func TestDeploy_Failure_Start(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	f := newFixture(t, func(c *Config) { c.PortMin, c.PortMax = port, port })
	err = f.deploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(1)))
	if fl := slipway.FailureOf(err); fl == nil || fl.Phase != slipway.FailStart || fl.Dyno != "web.1" {
		t.Fatalf("failure = %+v (%v), want start of web.1", fl, err)
	}
}
