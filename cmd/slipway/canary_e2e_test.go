package main

// End-to-end checks of canary releases on the local runtime: a real
// server, real dynos of the test app, the router, and status checks and
// user actions that move the rollout.

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// waitRollout polls the release until ok accepts it, and returns it.
func waitRollout(t *testing.T, ts *testServer, app, id, what string, ok func(*client.Release) bool) *client.Release {
	t.Helper()
	deadline := time.Now().Add(rolloutWait)
	for {
		r, err := ts.c.Release(bg, app, id)
		if err == nil && ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: release %+v (%v)\nrollout: %+v\nlog:\n%s", what, rolloutWait, r, err, rolloutOf(r),
				strings.Join(rolloutLog(t, ts, app, id), "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rolloutOf(r *client.Release) any {
	if r == nil || r.Rollout == nil {
		return nil
	}
	return *r.Rollout
}

func pausedFor(check string) func(*client.Release) bool {
	return func(r *client.Release) bool {
		return r.Rollout != nil && r.Rollout.Phase == slipway.PhasePaused && strings.Join(r.Rollout.WaitingFor, ",") == check
	}
}

func ended(r *client.Release) bool { return slipway.ReleaseTerminal(r.Status) }

// routerVersions asks the router n times and counts the answers per
// version.
func routerVersions(t *testing.T, ts *testServer, key string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		code, body := ts.get(t, key, "/")
		if code != 200 {
			t.Fatalf("router answered %d %q", code, body)
		}
		v, _, _ := strings.Cut(strings.TrimPrefix(body, "version="), " ")
		seen[v]++
	}
	return seen
}

func TestE2E_Canary_ChecksGateEachStep(t *testing.T) {
	// Serial: it judges timing and failed requests under load.
	ts := startTestServer(t, testConfig(t))
	const app, key = "canary", "canary-default"
	if _, err := ts.c.CreateApp(bg, app, "", ""); err != nil {
		t.Fatal(err)
	}
	scaleTo(t, ts, key, map[string]any{"type": "web", "quantity": 2})
	slug := ts.push(t, key, "web: ./testapp\n")
	if r := ts.release(t, key, client.NewRelease{Slug: slug}); r.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v1 = %s (%s)", r.Status, r.Error)
	}
	strategy := slipway.Strategy{Type: slipway.StrategyCanary, RequiredChecks: []string{"ci/smoke"},
		Steps: []slipway.CanaryStep{{Weight: 50, Pause: slipway.PauseUntilChecks}, {Weight: 100}}}
	if _, err := ts.c.SetReleaseStrategy(bg, key, strategy); err != nil {
		t.Fatal(err)
	}

	// v2 waits at 50% for its check: one dyno of each release, both served.
	v2, err := ts.c.CreateRelease(bg, key, client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	r := waitRollout(t, ts, key, v2.ID, "v2 paused for ci/smoke", pausedFor("ci/smoke"))
	if r.Status != slipway.ReleasePending || r.Strategy != "canary" || r.Rollout.Weight != 50 || r.Rollout.Step != 0 || r.Rollout.Steps != 2 {
		t.Fatalf("paused v2 = %s %s %+v, want pending canary at step 0 of 2, weight 50", r.Status, r.Strategy, *r.Rollout)
	}
	waitDynos(t, ts, key, "one dyno per release", func(ds []client.Dyno) string {
		per := map[int]int{}
		for _, d := range ds {
			if d.Ready {
				per[d.Release.Version]++
			}
		}
		if per[1] != 1 || per[2] != 1 || len(ds) != 2 {
			return fmt.Sprintf("ready per version %v of %d dynos, want v1:1 v2:1", per, len(ds))
		}
		return ""
	})
	if seen := routerVersions(t, ts, key, 40); seen["1"] == 0 || seen["2"] == 0 {
		t.Fatalf("router served %v, want both versions", seen)
	}
	if got := versions(t, ts, key); got != "v1:succeeded* v2:pending" {
		t.Fatalf("releases = %s", got)
	}
	// Scaling during the canary sets the total; the releases share it.
	scaleTo(t, ts, key, map[string]any{"type": "web", "quantity": 4})
	waitDynos(t, ts, key, "two dynos per release after scaling to 4", func(ds []client.Dyno) string {
		per := map[int]int{}
		for _, d := range ds {
			if d.Ready {
				per[d.Release.Version]++
			}
		}
		if per[1] != 2 || per[2] != 2 || len(ds) != 4 {
			return fmt.Sprintf("ready per version %v of %d dynos, want v1:2 v2:2", per, len(ds))
		}
		return ""
	})
	if r := waitRollout(t, ts, key, v2.ID, "v2 still paused", pausedFor("ci/smoke")); r.Rollout.Step != 0 {
		t.Fatalf("after scaling the rollout is at step %d", r.Rollout.Step)
	}

	// The check's success moves it on within a second, to 100%.
	if _, err := ts.c.CreateReleaseStatus(bg, key, v2.ID, client.ReleaseStatus{State: "success", Context: "ci/smoke", Name: "smoke"}); err != nil {
		t.Fatal(err)
	}
	passed := time.Now()
	waitRollout(t, ts, key, v2.ID, "v2 goes on", func(r *client.Release) bool { return r.Rollout.Phase != slipway.PhasePaused })
	took := time.Since(passed)
	t.Logf("the rollout went on %s after the check passed", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("the rollout went on %s after the check passed, want within 1s", took)
	}
	if r := waitRollout(t, ts, key, v2.ID, "v2 ends", ended); r.Status != slipway.ReleaseSucceeded || !r.Current || r.Rollout.Phase != slipway.PhaseDone || r.Rollout.Weight != 100 {
		t.Fatalf("v2 = %s current=%v rollout %+v, want succeeded, current, done at 100", r.Status, r.Current, rolloutOf(r))
	}
	waitDynos(t, ts, key, "v2 on every dyno", settledOn(2, map[string]int{"web": 4}))

	// v3's check fails: it is aborted and the app stays on v2.
	v3, err := ts.c.CreateRelease(bg, key, client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	waitRollout(t, ts, key, v3.ID, "v3 paused for ci/smoke", pausedFor("ci/smoke"))
	if _, err := ts.c.CreateReleaseStatus(bg, key, v3.ID, client.ReleaseStatus{State: "failure", Context: "ci/smoke", Name: "smoke"}); err != nil {
		t.Fatal(err)
	}
	r = waitRollout(t, ts, key, v3.ID, "v3 ends", ended)
	if r.Status != slipway.ReleaseFailed || !strings.Contains(r.Error, "ci/smoke reported failure") || r.Rollout.Phase != slipway.PhaseAborted {
		t.Fatalf("v3 = %s %q rollout %+v, want failed naming the check", r.Status, r.Error, rolloutOf(r))
	}
	waitDynos(t, ts, key, "back on v2", settledOn(2, map[string]int{"web": 4}))
	if seen := routerVersions(t, ts, key, 20); seen["2"] != 20 {
		t.Fatalf("router served %v after the abort, want only v2", seen)
	}
}

func TestE2E_Canary_UserActions(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	const app, key = "steer", "steer-default"
	if _, err := ts.c.CreateApp(bg, app, "", ""); err != nil {
		t.Fatal(err)
	}
	slug := ts.push(t, key, "web: ./testapp\n")
	ts.release(t, key, client.NewRelease{Slug: slug})
	// Not rolling out: 409.
	if _, err := ts.c.PromoteRelease(bg, key, "v1", false); slipway.ErrorCode(err) != slipway.EConflict {
		t.Fatalf("promote of a finished release: %v, want a conflict", err)
	}
	strategy := slipway.Strategy{Type: slipway.StrategyCanary,
		Steps: []slipway.CanaryStep{{Weight: 10, Pause: "1h"}, {Weight: 50, Pause: "1h"}, {Weight: 100}}}
	if _, err := ts.c.SetReleaseStrategy(bg, key, strategy); err != nil {
		t.Fatal(err)
	}
	v2, err := ts.c.CreateRelease(bg, key, client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	r := waitRollout(t, ts, key, v2.ID, "v2 paused at 10%", func(r *client.Release) bool {
		return r.Rollout != nil && r.Rollout.Phase == slipway.PhasePaused && r.Rollout.PauseUntil != nil
	})
	if until := time.Until(r.Rollout.PauseUntil.Time); until < 50*time.Minute {
		t.Fatalf("pause_until in %s, want about an hour", until)
	}
	// Bad actions are refused and change nothing.
	tok := "Bearer " + ts.Token
	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/actions/skip", "", 404},
		{"/actions/promote", "{", 400},
		{"/actions/promote", `{"full":"yes"}`, 400},
	} {
		if code, body := ts.raw(t, "POST", "/apps/"+key+"/releases/"+v2.ID+tc.path, tok, tc.body); code != tc.code {
			t.Errorf("POST %s %q = %d %s, want %d", tc.path, tc.body, code, body, tc.code)
		}
	}
	// promote: the next step at once.
	if _, err := ts.c.PromoteRelease(bg, key, v2.ID, false); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, ts, key, v2.ID, "v2 paused at 50%", func(r *client.Release) bool {
		return r.Rollout.Step == 1 && r.Rollout.Weight == 50 && r.Rollout.Phase == slipway.PhasePaused
	})
	// pause holds it; resume lets the timed pause count again.
	if _, err := ts.c.PauseRelease(bg, key, v2.ID); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, ts, key, v2.ID, "v2 held", pausedFor("resume"))
	if _, err := ts.c.ResumeRelease(bg, key, v2.ID); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, ts, key, v2.ID, "v2 resumed", func(r *client.Release) bool {
		return r.Rollout.Phase == slipway.PhasePaused && len(r.Rollout.WaitingFor) == 0
	})
	// abort: back to v1, failed with who did it.
	if _, err := ts.c.AbortRelease(bg, key, v2.ID); err != nil {
		t.Fatal(err)
	}
	r = waitRollout(t, ts, key, v2.ID, "v2 ends", ended)
	if r.Status != slipway.ReleaseFailed || !strings.Contains(r.Error, "Aborted by") {
		t.Fatalf("v2 = %s %q, want failed, aborted by a user", r.Status, r.Error)
	}
	waitDynos(t, ts, key, "back on v1", settledOn(1, map[string]int{"web": 1}))

	// A new release while a canary runs aborts the running one first.
	v3, err := ts.c.CreateRelease(bg, key, client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	waitRollout(t, ts, key, v3.ID, "v3 paused at 10%", func(r *client.Release) bool {
		return r.Rollout != nil && r.Rollout.Phase == slipway.PhasePaused
	})
	v4, err := ts.c.CreateRelease(bg, key, client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	if r := waitRollout(t, ts, key, v3.ID, "v3 ends", ended); r.Status != slipway.ReleaseFailed || !strings.Contains(r.Error, "v4, a newer release") {
		t.Fatalf("v3 = %s %q, want failed, superseded by v4", r.Status, r.Error)
	}
	// Full promote of v4 skips its steps.
	waitRollout(t, ts, key, v4.ID, "v4 paused at 10%", func(r *client.Release) bool {
		return r.Rollout != nil && r.Rollout.Phase == slipway.PhasePaused
	})
	if _, err := ts.c.PromoteRelease(bg, key, "v4", true); err != nil {
		t.Fatal(err)
	}
	if r := waitRollout(t, ts, key, v4.ID, "v4 ends", ended); r.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v4 = %s %q", r.Status, r.Error)
	}
	waitDynos(t, ts, key, "v4 everywhere", settledOn(4, map[string]int{"web": 1}))
}

// canaryApp creates app on ts with web dynos running procfile, releases
// v1, and sets strategy s.
func canaryApp(t *testing.T, ts *testServer, app string, web int, procfile string, s slipway.Strategy) (key, slug string) {
	t.Helper()
	key = app + "-default"
	if _, err := ts.c.CreateApp(bg, app, "", ""); err != nil {
		t.Fatal(err)
	}
	scaleTo(t, ts, key, map[string]any{"type": "web", "quantity": web})
	slug = ts.push(t, key, procfile)
	if r := ts.release(t, key, client.NewRelease{Slug: slug}); r.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v1 = %s (%s)", r.Status, r.Error)
	}
	if _, err := ts.c.SetReleaseStrategy(bg, key, s); err != nil {
		t.Fatal(err)
	}
	return key, slug
}

// TestE2E_Canary_WeightsUnderLoad: at each step, of at least 1,000
// requests through the router the new release answers its weight's share
// (±5 points), and no request fails during the whole rollout.
func TestE2E_Canary_WeightsUnderLoad(t *testing.T) {
	// Serial: it judges timing and failed requests under load.
	ts := startTestServer(t, testConfig(t))
	key, slug := canaryApp(t, ts, "weights", 2, "web: ./testapp\n", slipway.Strategy{Type: slipway.StrategyCanary,
		Steps: []slipway.CanaryStep{{Weight: 10, Pause: "1h"}, {Weight: 50, Pause: "1h"}, {Weight: 100}}})
	load := startRouterLoad(t, ts, key, 6, 1, 2)
	load.served(t, 50)
	v2, err := ts.c.CreateRelease(bg, key, client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	for step, weight := range []int{10, 50} {
		waitRollout(t, ts, key, v2.ID, fmt.Sprintf("paused at %d%%", weight), func(r *client.Release) bool {
			return r.Rollout != nil && r.Rollout.Step == step && r.Rollout.Phase == slipway.PhasePaused
		})
		before1, before2 := load.answeredBy("1"), load.answeredBy("2")
		load.served(t, 1200)
		n1, n2 := load.answeredBy("1")-before1, load.answeredBy("2")-before2
		share := 100 * float64(n2) / float64(n1+n2)
		t.Logf("step %d: v2 answered %d of %d requests (%.1f%%), weight %d%%", step+1, n2, n1+n2, share, weight)
		if share < float64(weight)-5 || share > float64(weight)+5 {
			t.Errorf("step %d: v2 answered %.1f%% of %d requests, want %d%% ± 5", step+1, share, n1+n2, weight)
		}
		if _, err := ts.c.PromoteRelease(bg, key, v2.ID, false); err != nil {
			t.Fatal(err)
		}
	}
	if r := waitRollout(t, ts, key, v2.ID, "v2 ends", ended); r.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v2 = %s %q", r.Status, r.Error)
	}
	waitDynos(t, ts, key, "v2 everywhere", settledOn(2, map[string]int{"web": 2}))
	load.allow(2)
	load.served(t, 200)
	load.finish(t)
}

// TestE2E_Canary_ErrorRateAborts: a release that answers 500 to 20% of
// requests is aborted by the router's figures soon after the analysis has
// its minimum of requests; only canary requests failed meanwhile, and
// none after the abort.
func TestE2E_Canary_ErrorRateAborts(t *testing.T) {
	// Serial: it judges timing and failed requests under load.
	ts := startTestServer(t, testConfig(t))
	interval := time.Second
	key, slug := canaryApp(t, ts, "errors", 2, "web: "+procByVersion("", map[int]string{2: "--fail-percent=20"})+"\n", slipway.Strategy{Type: slipway.StrategyCanary,
		Steps:    []slipway.CanaryStep{{Weight: 20, Pause: "1h"}, {Weight: 100}},
		Analysis: &slipway.Analysis{MaxErrorRate: 0.05, MinRequests: 50, Interval: slipway.Duration(interval)}})
	load := startRouterLoad(t, ts, key, 4, 1, 2)
	load.served(t, 50)
	v2, err := ts.c.CreateRelease(bg, key, client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	// Watch from the create on, so an abort that comes quickly is seen
	// too: when the step was placed (the rollout pauses at 20%), when it
	// was aborted (stored before the app goes back to v1), and so when the
	// canary answered its min_requests within the analysis' window
	// (answers before the step was placed do not count).
	var placed, reached, aborted time.Time
	created := time.Now()
	okBefore, failedBefore := load.ok.Load(), load.failedCount()
	deadline := time.Now().Add(rolloutWait)
	for aborted.IsZero() && time.Now().Before(deadline) {
		if r, err := ts.c.Release(bg, key, v2.ID); err == nil && r.Rollout != nil {
			if placed.IsZero() && r.Rollout.Phase == slipway.PhasePaused {
				placed = time.Now()
			}
			if r.Rollout.Phase == slipway.PhaseAborted {
				aborted = time.Now()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if placed.IsZero() {
		// The pause went by between two looks (a slow answer under
		// load): the step was placed by its first answer at the latest.
		placed = load.nthAnswer("2", created, 1)
	}
	if !placed.IsZero() {
		reached = load.nthAnswer("2", placed, 50)
	}
	r := waitRollout(t, ts, key, v2.ID, "v2 ends", ended)
	window, failed := load.ok.Load()-okBefore+int64(load.failedCount()-failedBefore), load.failedCount()-failedBefore
	t.Logf("the canary answered 50 requests %s after it was placed and was aborted %s later; %d of %d requests failed meanwhile; analysis %+v",
		reached.Sub(placed).Round(time.Millisecond), aborted.Sub(reached).Round(time.Millisecond), failed, window, r.Rollout.Analysis)
	if r.Status != slipway.ReleaseFailed || !strings.Contains(r.Error, "error rate of the new release") {
		t.Fatalf("v2 = %s %q, want failed naming the error rate", r.Status, r.Error)
	}
	if reached.IsZero() || aborted.IsZero() {
		t.Fatalf("the canary's 50th answer at %v, the abort at %v: one was not seen", reached, aborted)
	}
	if took := aborted.Sub(reached); took > 2*interval {
		t.Errorf("the abort came %s after the canary's 50th answer, want within two analysis intervals (%s)", took, 2*interval)
	}
	if float64(failed) > 0.2*float64(window)+1 {
		t.Errorf("%d of %d requests failed during the canary, more than its 20%% share", failed, window)
	}
	waitDynos(t, ts, key, "back on v1", settledOn(1, map[string]int{"web": 2}))
	after := load.failedCount()
	load.served(t, 500)
	if n := load.failedCount() - after; n != 0 {
		t.Errorf("%d requests failed after the abort: %q", n, load.firstFailures())
	}
	load.stop()
}

// TestE2E_Canary_StickyRelease: a request naming a release by header or
// cookie reaches that release, every time, while it is routed.
func TestE2E_Canary_StickyRelease(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	key, slug := canaryApp(t, ts, "sticky", 2, "web: ./testapp\n", slipway.Strategy{Type: slipway.StrategyCanary,
		Steps: []slipway.CanaryStep{{Weight: 10, Pause: "1h"}, {Weight: 100}}})
	v2, err := ts.c.CreateRelease(bg, key, client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	waitRollout(t, ts, key, v2.ID, "v2 paused at 10%", pausedFor(""))
	for _, tc := range []struct {
		name, header, cookie, want string
	}{
		{"header names the canary", "2", "", "2"},
		{"cookie names the stable release", "", "1", "1"},
		{"cookie names the canary", "", "2", "2"},
	} {
		seen := map[string]int{}
		for range 200 {
			req, _ := http.NewRequest("GET", ts.RouterURL+"/", nil)
			req.Host = key + ".localhost"
			if tc.header != "" {
				req.Header.Set("X-Slipway-Release", tc.header)
			}
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "slipway-release", Value: tc.cookie})
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			v, _, _ := strings.Cut(strings.TrimPrefix(string(b), "version="), " ")
			seen[v]++
		}
		if seen[tc.want] != 200 {
			t.Errorf("%s: answers by version %v, want all 200 from v%s", tc.name, seen, tc.want)
		}
	}
}

// previewGet asks the app's preview host for / and returns the version
// that answered ("" and the status otherwise).
func previewGet(t *testing.T, ts *testServer, key string) (int, string) {
	t.Helper()
	code, body := ts.get(t, key+"--preview", "/")
	v, _, _ := strings.Cut(strings.TrimPrefix(body, "version="), " ")
	return code, v
}

// TestE2E_BlueGreen_PreviewSwitchAndRollback: the new release runs beside
// the old one behind the preview host; the switch under load fails no
// request; within the scale-down delay a rollback only moves traffic back
// (no dyno starts); after the delay the old dynos stop.
func TestE2E_BlueGreen_PreviewSwitchAndRollback(t *testing.T) {
	// Serial: it judges timing and failed requests under load.
	ts := startTestServer(t, testConfig(t))
	key, slug := canaryApp(t, ts, "bluegreen", 2, "web: ./testapp\n", slipway.Strategy{Type: slipway.StrategyBlueGreen, Preview: true, ScaleDownDelay: slipway.Duration(time.Hour)})
	v1Dynos := dynoIDs(waitDynos(t, ts, key, "v1", settledOn(1, map[string]int{"web": 2})))
	if code, _ := previewGet(t, ts, key); code != http.StatusNotFound {
		t.Fatalf("preview host before a blue-green release: %d, want 404", code)
	}
	load := startRouterLoad(t, ts, key, 4, 1)
	v2, err := ts.c.CreateRelease(bg, key, client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	r := waitRollout(t, ts, key, v2.ID, "v2 waits for promote", pausedFor("promote"))
	if r.Rollout.Weight != 0 || !strings.Contains(r.Rollout.PreviewURL, key+"--preview.localhost") {
		t.Fatalf("rollout = %+v, want weight 0 and the preview URL", *r.Rollout)
	}
	for range 30 {
		if code, v := previewGet(t, ts, key); code != 200 || v != "2" {
			t.Fatalf("preview host answered %d from v%s, want v2", code, v)
		}
	}
	load.served(t, 300) // the main host: v1 only (allowed 1)
	if n := len(waitDynos(t, ts, key, "both releases", func(ds []client.Dyno) string {
		if len(ds) != 4 {
			return fmt.Sprintf("%d dynos, want 2 of each release", len(ds))
		}
		return ""
	})); n != 4 {
		t.Fatal(n)
	}

	// The switch under load.
	load.allow(1, 2)
	if _, err := ts.c.PromoteRelease(bg, key, v2.ID, false); err != nil {
		t.Fatal(err)
	}
	if r := waitRollout(t, ts, key, v2.ID, "v2 ends", ended); r.Status != slipway.ReleaseSucceeded || !r.Current {
		t.Fatalf("v2 = %s %q current=%v", r.Status, r.Error, r.Current)
	}
	load.allow(2)
	load.served(t, 300)
	if code, _ := previewGet(t, ts, key); code != http.StatusNotFound {
		t.Fatalf("preview host after the switch: %d, want 404", code)
	}
	ds, _ := ts.c.Dynos(bg, key)
	if len(ds) != 4 {
		t.Fatalf("after the switch: %s, want v1's dynos kept for the scale-down delay", dynoSummary(ds))
	}

	// A rollback within the delay serves v1 again within a second,
	// from v1's own dynos.
	load.allow(1, 2)
	start := time.Now()
	if _, err := ts.c.CreateRelease(bg, key, client.NewRelease{Release: "v1"}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, body := ts.get(t, key, "/"); strings.HasPrefix(body, "version=1 ") {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the router does not serve v1 5s after the rollback")
		}
	}
	took := time.Since(start)
	t.Logf("rollback within the scale-down delay: v1 served again %s after the rollback was created", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("v1 served again %s after the rollback, want within 1s", took)
	}
	final := waitDynos(t, ts, key, "v3 on v1's dynos", settledOn(3, map[string]int{"web": 2}))
	if got := dynoIDs(final); !maps.Equal(got, v1Dynos) {
		t.Errorf("dynos after the rollback %v, want v1's own %v (no dyno started)", got, v1Dynos)
	}
	load.allow(1)
	load.served(t, 200)

	// With a short delay the old release's dynos stop by themselves.
	if _, err := ts.c.SetReleaseStrategy(bg, key, slipway.Strategy{Type: slipway.StrategyBlueGreen, AutoPromote: true, ScaleDownDelay: slipway.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	load.allow(1, 4)
	v4, err := ts.c.CreateRelease(bg, key, client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	if r := waitRollout(t, ts, key, v4.ID, "v4 ends", ended); r.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v4 = %s %q", r.Status, r.Error)
	}
	waitDynos(t, ts, key, "v3's dynos stopped after the delay", settledOn(4, map[string]int{"web": 2}))
	load.finish(t)
}
