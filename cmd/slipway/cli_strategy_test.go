package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/wire"
)

// fakeAPI answers the CLI as the server would, from handlers keyed by
// "METHOD /path", and records each request's body. These tests hold the
// CLI's parsing and output without a server; TestCLI_ReleaseStrategy runs
// the same commands against a real one.
type fakeAPI struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	bodies map[string][]string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, routes: map[string]http.HandlerFunc{}, bodies: map[string][]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.Path
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.bodies[key] = append(f.bodies[key], string(b))
		h := f.routes[key]
		f.mu.Unlock()
		if h == nil {
			w.WriteHeader(404)
			io.WriteString(w, `{"id":"not_found","message":"no fake for `+key+`"}`)
			return
		}
		h(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) handle(key string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[key] = h
}

// answer makes key answer status with v as JSON.
func (f *fakeAPI) answer(key string, status int, v any) {
	f.handle(key, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	})
}

func (f *fakeAPI) sent(key string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies[key]...)
}

// harness is a CLI logged in to the fake through the environment.
func (f *fakeAPI) harness(t *testing.T) *cliHarness {
	h := newCLIHarness(t, nil)
	h.env["SLIPWAY_API_URL"] = f.srv.URL
	h.env["SLIPWAY_TOKEN"] = "tok"
	return h
}

func TestCLI_ReleasesStrategy_FlagsBuildTheStrategy(t *testing.T) {
	f := newFakeAPI(t)
	const path = "PUT /apps/hello/release-strategy"
	f.handle(path, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		b := f.bodies[path][len(f.bodies[path])-1]
		f.mu.Unlock()
		io.WriteString(w, b)
	})
	h := f.harness(t)
	for _, tt := range []struct {
		name string
		args []string
		sent string // the body of the PUT, "" for none
		code int
		want string // in stdout on success, stderr otherwise
	}{
		{"canary with a pause", []string{"--canary", "10,50,100", "--pause", "2m"},
			`{"type":"canary","steps":[{"weight":10,"pause":"2m"},{"weight":50,"pause":"2m"},{"weight":100}]}`, 0,
			"Steps:     10% for 2m → 50% for 2m → 100%"},
		{"checks without a pause wait for them", []string{"--canary", "10%,100", "--checks", "ci/smoke,ci/e2e-tests"},
			`{"type":"canary","steps":[{"weight":10,"pause":"until-checks"},{"weight":100}],"required_checks":["ci/smoke","ci/e2e-tests"]}`, 0,
			"10% until checks pass → 100%"},
		{"analysis", []string{"--canary", "10,100", "--pause", "1m", "--analysis-error-rate", "1%", "--analysis-p99", "800ms", "--analysis-min-requests", "50"},
			`{"type":"canary","steps":[{"weight":10,"pause":"1m"},{"weight":100}],"analysis":{"max_error_rate":0.01,"max_p99_ms":800,"min_requests":50,"interval":"15s"}}`, 0,
			"abort on errors above 1% or a p99 above 800ms, judged every 15s once the new release has 50 requests"},
		{"blue-green", []string{"--blue-green", "--preview", "--auto-promote", "--scale-down-delay", "5m", "--checks", "ci/smoke"},
			`{"type":"blue-green","required_checks":["ci/smoke"],"preview":true,"auto_promote":true,"scale_down_delay":"5m0s"}`, 0,
			"Old dynos stop: 5m after the switch"},
		{"rolling", []string{"--rolling"}, `{"type":"rolling"}`, 0, "Set the release strategy of hello to rolling"},
		{"JSON", []string{"--set", `{"type":"canary","steps":[{"weight":20,"pause":"5m"},{"weight":100}],"types":{"worker":{"type":"rolling"}}}`},
			`{"type":"canary","steps":[{"weight":20,"pause":"5m"},{"weight":100}],"types":{"worker":{"type":"rolling"}}}`, 0,
			"=== process type worker"},

		{"two modes", []string{"--canary", "10,100", "--rolling"}, "", 2, "--rolling and --canary do not go together"},
		{"a canary flag alone", []string{"--pause", "2m"}, "", 2, "--pause goes with --canary"},
		{"a blue-green flag on a canary", []string{"--canary", "10,100", "--preview"}, "", 2, "--preview goes with --blue-green"},
		{"checks on rolling", []string{"--rolling", "--checks", "ci/smoke"}, "", 2, "--checks goes with --canary or --blue-green"},
		{"a bad weight", []string{"--canary", "10,half"}, "", 2, "--canary takes traffic weights"},
		{"a bad pause", []string{"--canary", "10,100", "--pause", "soon"}, "", 2, "--pause takes a duration"},
		{"a bad rate", []string{"--canary", "10,100", "--analysis-error-rate", "lots"}, "", 2, "--analysis-error-rate takes a rate"},
		{"a misspelt JSON field", []string{"--set", `{"type":"canary","step":[]}`}, "", 2, `unknown field "step"`},

		// Validate finds these before anything is sent, naming the field.
		{"a zero weight", []string{"--canary", "0,100"}, "", 1, "steps[0].weight must be 1 to 100, not 0."},
		{"weights going down", []string{"--canary", "50,10"}, "", 1, "steps[1].weight must not be less than the step before it (50)."},
		{"until-checks without checks", []string{"--canary", "10,100", "--pause", "until-checks"}, "", 1, "required_checks must name at least one check context"},
		{"analysis without a bound", []string{"--canary", "10,100", "--analysis-min-requests", "5"}, "", 1, "analysis must set max_error_rate or max_p99_ms"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			before := len(f.sent(path))
			res := h.run(append([]string{"releases:strategy", "-a", "hello"}, tt.args...)...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", res.code, tt.code, res.stdout, res.stderr)
			}
			out := res.stdout
			if tt.code != 0 {
				out = res.stderr
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
			sent := f.sent(path)[before:]
			switch {
			case tt.sent == "" && len(sent) > 0:
				t.Errorf("sent %q, want nothing sent", sent)
			case tt.sent != "" && (len(sent) != 1 || sent[0] != tt.sent):
				t.Errorf("sent %q, want %s", sent, tt.sent)
			}
		})
	}
}

func TestCLI_ReleasesStrategy_Shows(t *testing.T) {
	f := newFakeAPI(t)
	h := f.harness(t)
	f.answer("GET /apps/hello/release-strategy", 200, slipway.Strategy{Type: "rolling"})
	out := h.ok("releases:strategy", "-a", "hello")
	for _, want := range []string{"=== hello release strategy", "Type: rolling: each release replaces the dynos one by one", "slipway releases:strategy --canary 10,50,100 --pause 2m -a hello"} {
		if !strings.Contains(out, want) {
			t.Fatalf("rolling lacks %q:\n%s", want, out)
		}
	}
	f.handle("GET /apps/hello/release-strategy", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"type":"canary","steps":[{"weight":10,"pause":"2m"},{"weight":50,"pause":"until-checks"},{"weight":100}],"analysis":{"max_error_rate":0.005,"interval":"30s"},"required_checks":["ci/smoke"],"rollbacks":"strategy"}`)
	})
	out = h.ok("releases:strategy", "-a", "hello")
	for _, re := range []string{
		`(?m)^Type: +canary: `,
		`(?m)^Steps: +10% for 2m → 50% until checks pass → 100%$`,
		`(?m)^Checks: +ci/smoke$`,
		`(?m)^Analysis: +abort on errors above 0.5%, judged every 30s$`,
		`(?m)^Rollbacks: +follow this strategy$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("canary does not match %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, "--canary 10,50,100") {
		t.Fatalf("a canary is told how to set a canary:\n%s", out)
	}
	var s slipway.Strategy
	h.jsonOut(&s, "releases:strategy", "-a", "hello")
	if s.Type != "canary" || len(s.Steps) != 3 || s.Rollbacks != "strategy" {
		t.Fatalf("--json = %+v", s)
	}
	f.answer("GET /apps/nope/release-strategy", 404, wire.ErrorBody{ID: "not_found", Message: "Couldn't find that app."})
	h.fails(1, []string{"Couldn't find that app."}, "releases:strategy", "-a", "nope")
}

func canaryRelease(id string, version int, status string, ro *client.Rollout) client.Release {
	return client.Release{ID: id, Version: version, Status: status, Strategy: "canary", Rollout: ro}
}

func TestCLI_ReleaseActions(t *testing.T) {
	f := newFakeAPI(t)
	h := f.harness(t)
	paused := &client.Rollout{Strategy: "canary", Step: 0, Steps: 3, Weight: 10, Phase: "paused", WaitingFor: []string{"ci/smoke"}}
	f.answer("GET /apps/hello/releases", 200, []client.Release{
		{ID: "r4", Version: 4, Status: "queued"},
		canaryRelease("r3", 3, "pending", paused),
		{ID: "r2", Version: 2, Status: "succeeded", Current: true},
	})
	f.answer("POST /apps/hello/releases/r3/actions/promote", 200,
		canaryRelease("r3", 3, "pending", &client.Rollout{Strategy: "canary", Step: 2, Steps: 3, Weight: 100, Phase: "promoting"}))
	out := h.ok("releases:promote", "--full", "-a", "hello")
	for _, want := range []string{"Promoted v3 of hello.", "canary step 3/3: 100% on v3, promoting", "slipway releases:wait v3 -a hello"} {
		if !strings.Contains(out, want) {
			t.Fatalf("promote lacks %q:\n%s", want, out)
		}
	}
	if got := f.sent("POST /apps/hello/releases/r3/actions/promote"); len(got) != 1 || got[0] != `{"full":true}` {
		t.Fatalf("promote sent %q", got)
	}

	// Named by version; pause has no body; --json prints the release.
	f.answer("GET /apps/hello/releases/v3", 200, canaryRelease("r3", 3, "pending", paused))
	f.answer("POST /apps/hello/releases/r3/actions/pause", 200, canaryRelease("r3", 3, "pending", paused))
	var rel client.Release
	h.jsonOut(&rel, "releases:pause", "3", "-a", "hello")
	if rel.Rollout == nil || rel.Rollout.Phase != "paused" {
		t.Fatalf("pause --json = %+v", rel)
	}
	if got := f.sent("POST /apps/hello/releases/r3/actions/pause"); len(got) != 1 || got[0] != "" {
		t.Fatalf("pause sent %q", got)
	}

	// releases:info shows the strategy and where the rollout is.
	f.answer("GET /apps/hello/releases/r3/log", 200, client.ReleaseLog{})
	out = h.ok("releases:info", "v3", "-a", "hello")
	for _, re := range []string{`(?m)^Strategy: +canary$`, `(?m)^Rollout: +canary step 1/3: 10% on v3, paused, waiting for checks: ci/smoke$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Fatalf("releases:info does not match %s:\n%s", re, out)
		}
	}

	// A release that is not rolling out: the server's 409 and where to look.
	f.answer("GET /apps/hello/releases/v2", 200, client.Release{ID: "r2", Version: 2, Status: "succeeded", Current: true})
	f.answer("POST /apps/hello/releases/r2/actions/abort", 409, wire.ErrorBody{ID: "conflict", Message: "Release v2 is not rolling out."})
	h.fails(1, []string{"Release v2 is not rolling out.", "slipway releases:info v2 -a hello"}, "releases:abort", "v2", "-a", "hello")

	// Nothing pending: say so, and what to do.
	f.answer("GET /apps/calm/releases", 200, []client.Release{{ID: "c2", Version: 2, Status: "succeeded", Current: true}, {ID: "c1", Version: 1, Status: "pending"}})
	h.fails(1, []string{"calm has no release rolling out.", "releases:strategy -a calm"}, "releases:resume", "-a", "calm")
	if got := f.sent("POST /apps/calm/releases/c1/actions/resume"); len(got) != 0 {
		t.Fatalf("resumed a release older than an ended one: %q", got)
	}
	h.fails(2, []string{"unknown flag: --full"}, "releases:abort", "--full", "-a", "hello")
}

func TestRolloutText(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *wire.Time { t := wire.TimeOf(now.Add(d)); return &t }
	figs := slipway.Figures{
		Canary: slipway.TrafficSummary{Requests: 120, Errors: 1, ErrorRate: 0.0083, P99Ms: 250},
		Stable: slipway.TrafficSummary{Requests: 1080, Errors: 1, ErrorRate: 0.0009, P99Ms: 180},
	}
	for _, tt := range []struct {
		name string
		ro   *client.Rollout
		want string
	}{
		{"no rollout", nil, ""},
		{"paused for a time", &client.Rollout{Strategy: "canary", Step: 1, Steps: 3, Weight: 50, Phase: "paused", PauseUntil: at(80 * time.Second)},
			"canary step 2/3: 50% on v2, paused, resumes in 1m20s"},
		{"a pause that is over", &client.Rollout{Strategy: "canary", Step: 0, Steps: 2, Weight: 10, Phase: "paused", PauseUntil: at(-time.Second)},
			"canary step 1/2: 10% on v2, paused, resumes now"},
		{"checks", &client.Rollout{Strategy: "canary", Step: 0, Steps: 2, Weight: 10, Phase: "paused", WaitingFor: []string{"ci/smoke", "ci/e2e"}},
			"canary step 1/2: 10% on v2, paused, waiting for checks: ci/smoke, ci/e2e"},
		{"held", &client.Rollout{Strategy: "canary", Step: 0, Steps: 2, Weight: 10, Phase: "paused"},
			"canary step 1/2: 10% on v2, paused, waiting for a promote: slipway releases:promote v2 -a hello"},
		{"analysis", &client.Rollout{Strategy: "canary", Step: 1, Steps: 3, Weight: 50, Phase: "analyzing", Analysis: figs},
			"canary step 2/3: 50% on v2, analyzing; canary: 120 requests, 0.83% errors, p99 250ms; stable: 1080 requests, 0.09% errors, p99 180ms"},
		{"aborted", &client.Rollout{Strategy: "canary", Step: 0, Steps: 3, Weight: 0, Phase: "aborted", PauseUntil: at(time.Minute), Reason: "error rate 25% is above 1%"},
			"canary step 1/3: 0% on v2, aborted, error rate 25% is above 1%"},
		{"blue-green preview", &client.Rollout{Strategy: "blue-green", Step: 0, Steps: 1, Weight: 0, Phase: "paused", PreviewURL: "http://hello-default--preview.localhost"},
			"blue-green step 1/1: 0% on v2, paused, waiting for a promote: slipway releases:promote v2 -a hello, preview at http://hello-default--preview.localhost"},
		{"blue-green done", &client.Rollout{Strategy: "blue-green", Steps: 1, Weight: 100, Phase: "done", PreviewURL: "http://x"},
			"blue-green step 1/1: 100% on v2, done"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rel := &client.Release{Version: 2, Rollout: tt.ro}
			if got := rolloutText(rel, "hello", now); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

// rollingOut fakes a release that goes through states, one every two
// reads of it; its log stream ends once the last state has been read.
func rollingOut(f *fakeAPI, states []client.Release) {
	var mu sync.Mutex
	reads := 0
	done := make(chan struct{})
	release := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := min(reads/2, len(states)-1)
		reads++
		if i == len(states)-1 && reads == 2*len(states)-1 {
			close(done)
		}
		mu.Unlock()
		json.NewEncoder(w).Encode(states[i])
	}
	f.handle("GET /apps/hello/releases/v2", release)
	f.handle("GET /apps/hello/releases/r2", release)
	f.handle("GET /apps/hello/releases/r2/log", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "2026-12-01T10:00:00Z release v2 started (canary)\n")
		w.(http.Flusher).Flush()
		select {
		case <-done:
		case <-r.Context().Done():
		}
		io.WriteString(w, "2026-12-01T10:00:09Z release v2 ended\n")
	})
	f.answer("GET /apps/hello/formation", 200, []client.Formation{{Type: "web", Quantity: 2}})
	f.answer("GET /apps/hello/dynos", 200, []client.Dyno{})
}

func canarySteps(until *wire.Time, final client.Release) []client.Release {
	ro := func(step, weight int, phase string) *client.Rollout {
		return &client.Rollout{Strategy: "canary", Step: step, Steps: 3, Weight: weight, Phase: phase}
	}
	s := []client.Release{
		canaryRelease("r2", 2, "pending", ro(0, 10, "progressing")),
		canaryRelease("r2", 2, "pending", ro(0, 10, "paused")),
		canaryRelease("r2", 2, "pending", ro(1, 50, "paused")),
		canaryRelease("r2", 2, "pending", ro(1, 50, "analyzing")),
		final,
	}
	s[1].Rollout.PauseUntil = until
	s[2].Rollout.WaitingFor = []string{"ci/smoke"}
	s[3].Rollout.Analysis.Canary = slipway.TrafficSummary{Requests: 60, ErrorRate: 0.01, P99Ms: 250}
	return s
}

// Off a terminal, releases:wait prints a line each time the rollout
// moves, and exits with the outcome.
func TestCLI_ReleasesWait_ShowsTheRollout(t *testing.T) {
	until := wire.TimeOf(time.Now().Add(80 * time.Second))
	t.Run("succeeds", func(t *testing.T) {
		f := newFakeAPI(t)
		h := f.harness(t)
		done := canaryRelease("r2", 2, "succeeded", &client.Rollout{Strategy: "canary", Step: 2, Steps: 3, Weight: 100, Phase: "done"})
		rollingOut(f, canarySteps(&until, done))
		out := h.ok("releases:wait", "v2", "-a", "hello")
		var at []int
		for _, re := range []string{
			`rollout: canary step 1/3: 10% on v2, progressing\n`,
			`rollout: canary step 1/3: 10% on v2, paused, resumes in 1m(19|20)s\n`,
			`rollout: canary step 2/3: 50% on v2, paused, waiting for checks: ci/smoke\n`,
			`rollout: canary step 2/3: 50% on v2, analyzing; canary: 60 requests, 1% errors, p99 250ms\n`,
			`rollout: canary step 3/3: 100% on v2, done\n`,
			`Released v2 to hello`,
		} {
			loc := regexp.MustCompile(re).FindStringIndex(out)
			if loc == nil {
				t.Fatalf("output lacks %s:\n%s", re, out)
			}
			at = append(at, loc[0])
		}
		for i := 1; i < len(at); i++ {
			if at[i] < at[i-1] {
				t.Fatalf("lines out of order:\n%s", out)
			}
		}
		if n := strings.Count(out, "progressing"); n != 1 {
			t.Fatalf("an unchanged rollout printed %d times:\n%s", n, out)
		}
	})
	t.Run("aborted", func(t *testing.T) {
		f := newFakeAPI(t)
		h := f.harness(t)
		failed := canaryRelease("r2", 2, "failed", &client.Rollout{Strategy: "canary", Step: 1, Steps: 3, Weight: 0, Phase: "aborted", Reason: "error rate 25% is above 1%"})
		rollingOut(f, canarySteps(&until, failed))
		res := h.fails(1, []string{"Release v2 of hello failed: error rate 25% is above 1%"}, "releases:wait", "v2", "-a", "hello")
		if !strings.Contains(res.stdout, "rollout: canary step 2/3: 0% on v2, aborted, error rate 25% is above 1%") {
			t.Fatalf("no aborted line:\n%s", res.stdout)
		}
	})
}

// On a terminal, the rollout is one live line below the bars.
func TestCLI_ReleasesWait_ShowsTheRolloutOnATerminal(t *testing.T) {
	f := newFakeAPI(t)
	h := f.harness(t)
	until := wire.TimeOf(time.Now().Add(80 * time.Second))
	done := canaryRelease("r2", 2, "succeeded", &client.Rollout{Strategy: "canary", Step: 2, Steps: 3, Weight: 100, Phase: "done"})
	rollingOut(f, canarySteps(&until, done))
	screen, code := h.runTTY("releases:wait", "v2", "-a", "hello")
	if code != 0 {
		t.Fatalf("exit %d:\n%q", code, screen)
	}
	for _, want := range []string{"canary step 2/3: 50% on v2, paused, waiting for checks: ci/smoke", "\x1b[32mcanary step 3/3: 100% on v2, done\x1b[0m", "Released v2 to hello"} {
		if !strings.Contains(screen, want) {
			t.Fatalf("terminal lacks %q:\n%q", want, screen)
		}
	}
	if strings.Contains(screen, "rollout: ") {
		t.Fatalf("log lines for the rollout on a terminal:\n%q", screen)
	}
}
