package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// axeSource is axe-core, vendored from the npm registry
// (testdata/axe-core/README.md).
//
//go:embed testdata/axe-core/axe.min.js
var axeSource string

// chromiumPath finds Debian's chromium (or another Chrome). Without one
// the browser test skips, saying so; in CI (CI set, as .ci/run does) it
// fails instead, as .ci/run installs chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI must run the dashboard's browser test, but no chromium is installed (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH: the dashboard's browser test needs one (apt-get install chromium)")
	return ""
}

// browser drives one headless Chromium tab against the test server.
type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // folder of the screenshots
	n    int
}

func newBrowser(t *testing.T, path, base string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "profile")), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The screenshots go to a temporary folder, or to
	// SLIPWAY_UI_SCREENSHOTS to keep them.
	shots := os.Getenv("SLIPWAY_UI_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	b := &browser{t: t, ctx: ctx, base: base, shot: shots}
	// The first call starts the browser, which lives as long as the
	// context of that call: the tab's own, not one with a deadline (a
	// deadline there closed the browser mid-test once the test ran past it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("screenshots in %s", b.shot)
	return b
}

// timeout is the tab's context with a deadline, for one step.
func (b *browser) timeout(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(b.ctx, d)
	b.t.Cleanup(cancel)
	return ctx
}

// do runs steps, failing the test (with a screenshot) if one fails.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.timeout(30*time.Second), steps...); err != nil {
		b.screenshot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

// click clicks what sel finds and waits for the page it loads.
func (b *browser) click(what, sel string) {
	b.t.Helper()
	if _, err := chromedp.RunResponse(b.timeout(30*time.Second), chromedp.Click(chromedp.CSS(sel))); err != nil {
		b.screenshot("failed-" + what)
		b.t.Fatalf("%s: %v", what, err)
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.base+path))
}

// eval evaluates a JavaScript expression.
func eval[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	v, err := chromedp.Run(b.timeout(30*time.Second), chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.t.Fatalf("evaluate %.60q: %v", expr, err)
	}
	return v
}

// text is the text of the first element sel finds.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, sel))
}

// waitFor waits until a JavaScript expression is true.
func (b *browser) waitFor(what, expr string, d time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.timeout(d+5*time.Second), chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(d))); err != nil {
		b.screenshot("failed-" + what)
		b.t.Fatalf("%s: %v; the page says:\n%s", what, err, b.text("main"))
	}
}

func (b *browser) screenshot(name string) {
	b.n++
	buf, err := chromedp.Run(b.timeout(15*time.Second), chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.WriteFile(filepath.Join(b.shot, fmt.Sprintf("%02d-%s.png", b.n, name)), buf, 0o644)
}

// noHorizontalScroll checks that the page is no wider than the window.
func (b *browser) noHorizontalScroll(page string) {
	b.t.Helper()
	w := eval[[]int](b, `[document.documentElement.scrollWidth, document.documentElement.clientWidth, document.body.scrollWidth]`)
	if w[0] > w[1] || w[2] > w[1] {
		b.screenshot("too-wide")
		b.t.Errorf("%s at 360 px: the page is %d px (body %d px) wide in a %d px window", page, w[0], w[2], w[1])
	}
}

// axe runs axe-core on the page and fails on every serious or critical
// violation.
func (b *browser) axe(page string) {
	b.t.Helper()
	if !eval[bool](b, `typeof window.axe === "object"`) {
		eval[bool](b, axeSource+"\n;true")
	}
	found := eval[[]string](b, `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => v.impact + " " + v.id + ": " + v.help + " at " + v.nodes.map(n => n.target.join(" ")).join(", ")))`, chromedp.EvalAwaitPromise)
	for _, v := range found {
		b.t.Errorf("axe on %s: %s", page, v)
	}
}

func TestBrowser_Dashboard(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	cfg := testConfig(t)
	cfg.UI = true
	ts := startTestServer(t, cfg)
	b := newBrowser(t, chromium, ts.APIURL)

	if _, err := ts.c.CreateApp(bg, "shop", "", ""); err != nil {
		t.Fatal(err)
	}
	const app = "shop-default"
	if _, err := ts.c.UpdateConfigVars(bg, app, map[string]*string{"DATABASE_URL": ptr("postgres://u:hunter2@db/shop")}); err != nil {
		t.Fatal(err)
	}

	t.Run("a browser at / is sent to the sign-in page", func(t *testing.T) {
		b.open("/")
		if loc := eval[string](b, `location.pathname`); loc != "/ui/login" {
			t.Fatalf("GET / in a browser ends at %s, want /ui/login", loc)
		}
		b.axe("the sign-in page")
		b.do("enter a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "not-a-token"))
		b.click("sign in with a wrong token", `form.card button[type=submit]`)
		if msg := b.text(`[role=alert]`); !strings.Contains(msg, "The token is not valid") {
			t.Errorf("a wrong token: the page says %q, want the API's message", msg)
		}
		b.do("enter the token", chromedp.SendKeys(chromedp.CSS("#token"), "test-token"))
		b.click("sign in", `form.card button[type=submit]`)
		if h := b.text("h1"); h != "Apps" {
			t.Fatalf("after signing in the page's heading is %q, want Apps", h)
		}
		b.screenshot("apps")
	})

	t.Run("the rollout of a release deployed through the API shows live", func(t *testing.T) {
		b.open("/ui/apps/" + app)
		if got := b.text("#rollout .live"); !strings.Contains(got, "No release yet") {
			t.Fatalf("rollout before any release: %q", got)
		}
		eval[bool](b, `window.notReloaded = true`)
		b.waitFor("the live rollout connects", `document.querySelector("#rollout").dataset.live === "open"`, 10*time.Second)
		slug := ts.push(t, app, "web: TAG=one ./testapp\n")
		rel, err := ts.c.CreateRelease(bg, app, client.NewRelease{Slug: slug})
		if err != nil {
			t.Fatal(err)
		}
		b.waitFor("v1 shows as succeeded", `!!document.querySelector('#rollout .headline [data-status="succeeded"]') && document.querySelector("#rollout .headline").innerText.includes("v`+fmt.Sprint(rel.Version)+`")`, 60*time.Second)
		if !eval[bool](b, `window.notReloaded === true`) {
			t.Error("the page reloaded; the rollout should update in place")
		}
		b.screenshot("rolled-out")
		if page := eval[string](b, `document.body.innerText`); strings.Contains(page, "hunter2") || !strings.Contains(page, "DATABASE_URL") {
			t.Errorf("config vars: the page should name DATABASE_URL and never show its value")
		}
		// A second release, so that v1 can be rolled back to.
		if got := ts.release(t, app, client.NewRelease{Slug: ts.push(t, app, "web: TAG=two ./testapp\n")}); got.Status != slipway.ReleaseSucceeded {
			t.Fatalf("v2: %s %s", got.Status, got.Error)
		}
		b.axe("an app's page")
	})

	t.Run("roll back with the button, after a confirmation", func(t *testing.T) {
		b.open("/ui/apps/" + app)
		b.click("roll back", `a[href$="confirm/rollback?release=v1"]`)
		if h := b.text("h1"); !strings.Contains(h, "Roll back "+app+" to v1?") {
			t.Fatalf("the confirmation asks %q", h)
		}
		b.axe("a confirmation page")
		rels, err := ts.c.Releases(bg, app)
		if err != nil || len(rels) != 2 {
			t.Fatalf("before confirming: %d releases, %v; the confirmation page must not act", len(rels), err)
		}
		b.click("confirm the rollback", `form.confirm button[type=submit]`)
		b.waitFor("v3 shows as succeeded", `!!document.querySelector('#rollout .headline [data-status="succeeded"]') && document.querySelector("#rollout .headline").innerText.includes("v3")`, 60*time.Second)
		b.waitFor("the timeline shows v3 succeeded", `[...document.querySelectorAll("[data-timeline] tbody tr")].some(tr => tr.innerText.startsWith("v3") && tr.querySelector('[data-status="succeeded"]'))`, 30*time.Second)
		if f := b.text(".flash"); !strings.Contains(f, "Rolling back to v1") {
			t.Errorf("after the rollback the page says %q", f)
		}
		v3, err := ts.c.Release(bg, app, "v3")
		if err != nil || v3.Trigger != slipway.TriggerRollback || v3.Status != slipway.ReleaseSucceeded || !v3.Current {
			t.Fatalf("v3 = %+v, %v; want the current, succeeded rollback", v3, err)
		}
		b.screenshot("rolled-back")
	})

	t.Run("a release's page", func(t *testing.T) {
		b.open("/ui/apps/" + app + "/releases/v3")
		if got := b.text(".diff-summary"); !strings.Contains(strings.ToLower(got), "rollback") && !strings.Contains(got, "v1") {
			t.Errorf("v3's changes do not name the rollback to v1: %q", got)
		}
		if h := b.text("h1"); h != app+" v3" {
			t.Errorf("heading %q", h)
		}
		if log := b.text("pre.log"); log == "" {
			t.Error("the release's log is empty")
		}
		b.axe("a release's page")
	})

	t.Run("a release's diff", func(t *testing.T) {
		b.open("/ui/apps/" + app + "/releases/v2")
		if d := b.text("#diff-h + .diff-summary"); d == "" || !strings.Contains(b.text("main"), "changed") {
			t.Errorf("v2's changes: summary %q; page:\n%s", d, b.text("main"))
		}
		b.open("/ui/apps/" + app)
		if n := eval[int](b, `document.querySelectorAll("[data-timeline] .diff-summary").length`); n < 3 {
			t.Errorf("the timeline shows %d diff summaries, want one for each of the 3 releases", n)
		}
	})

	t.Run("a failed release shows its cause", func(t *testing.T) {
		bad := ts.release(t, app, client.NewRelease{Slug: ts.push(t, app, "web: ./testapp --crash\n")})
		if bad.Status != slipway.ReleaseFailed || bad.Failure == nil {
			t.Fatalf("the crashing release: %s, failure %v", bad.Status, bad.Failure)
		}
		v := fmt.Sprint(bad.Version)
		b.open("/ui/apps/" + app)
		row := eval[string](b, `([...document.querySelectorAll("[data-timeline] tbody tr")].find(tr => tr.innerText.startsWith("v`+v+`")) || {innerText: ""}).innerText`)
		if !strings.Contains(row, bad.Failure.Phase) {
			t.Errorf("the timeline's v%s row %q does not give the cause %q", v, row, bad.Failure.Phase)
		}
		b.open("/ui/apps/" + app + "/releases/v" + v)
		if got := b.text(".failure-section"); !strings.Contains(got, "Why it failed") || !strings.Contains(got, bad.Failure.Phase) {
			t.Errorf("v%s's page: %q", v, got)
		}
		b.axe("a failed release's page")
		b.screenshot("failed-release")
	})

	t.Run("a refused action shows the API's message", func(t *testing.T) {
		b.open("/ui/apps/" + app + "/confirm/scale?type=web&quantity=100000")
		b.click("confirm the scale", `form.confirm button[type=submit]`)
		msg := b.text(`[role=alert]`)
		if msg == "" || strings.Contains(msg, "dashboard") {
			t.Errorf("scaling to 100000: the page says %q, want the API's refusal", msg)
		}
	})

	t.Run("pipelines", func(t *testing.T) {
		if _, err := ts.c.CreatePipeline(bg, "flow", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.c.CreatePipelineCoupling(bg, client.NewPipelineCoupling{App: app, Pipeline: "flow", Stage: "development"}); err != nil {
			t.Fatal(err)
		}
		b.open("/ui/pipelines")
		if got := b.text("main"); !strings.Contains(got, "flow") || !strings.Contains(got, app) {
			t.Errorf("pipelines page: %q", got)
		}
		b.axe("the pipelines page")
	})

	t.Run("promote and abort a canary with the buttons", func(t *testing.T) {
		const gate = "gate-default"
		if _, err := ts.c.CreateApp(bg, "gate", "", ""); err != nil {
			t.Fatal(err)
		}
		scaleTo(t, ts, gate, map[string]any{"type": "web", "quantity": 2})
		slug := ts.push(t, gate, "web: ./testapp\n")
		if r := ts.release(t, gate, client.NewRelease{Slug: slug}); r.Status != slipway.ReleaseSucceeded {
			t.Fatalf("v1 = %s (%s)", r.Status, r.Error)
		}
		// Each step but the last waits an hour unless someone promotes it.
		if _, err := ts.c.SetReleaseStrategy(bg, gate, slipway.Strategy{Type: slipway.StrategyCanary,
			Steps: []slipway.CanaryStep{{Weight: 25, Pause: "1h"}, {Weight: 50, Pause: "1h"}, {Weight: 100}}}); err != nil {
			t.Fatal(err)
		}
		v2, err := ts.c.CreateRelease(bg, gate, client.NewRelease{Slug: slug})
		if err != nil {
			t.Fatal(err)
		}
		atStep := func(step int) func(*client.Release) bool {
			return func(r *client.Release) bool {
				return r.Rollout != nil && r.Rollout.Phase == slipway.PhasePaused && r.Rollout.Step == step
			}
		}
		waitRollout(t, ts, gate, v2.ID, "v2 paused at 25%", atStep(0))
		b.open("/ui/apps/" + gate)
		b.waitFor("the page shows the canary's first step at 25%, one dyno", `(document.querySelector("#rollout .facts") || {innerText: ""}).innerText.includes("1 of 3") && document.querySelector("#rollout .facts").innerText.includes("25%") && document.querySelector("#rollout .progress").innerText.includes("1 of 1 ready")`, 10*time.Second)
		b.axe("an app's page during a canary")
		b.screenshot("canary")

		b.click("promote", `#rollout a[href$="confirm/promote?release=v2"]`)
		if h := b.text("h1"); h != "Promote the rollout of "+gate+" v2?" {
			t.Fatalf("the confirmation asks %q", h)
		}
		if r, err := ts.c.Release(bg, gate, "v2"); err != nil || r.Rollout == nil || r.Rollout.Step != 0 {
			t.Fatalf("before confirming: v2 = %+v, %v; the confirmation page must not act", r, err)
		}
		b.click("confirm the promotion", `form.confirm button[type=submit]`)
		waitRollout(t, ts, gate, v2.ID, "v2 promoted to its next step", atStep(1))
		b.open("/ui/apps/" + gate)
		b.waitFor("the page shows step 2 of 3 at 50%", `(document.querySelector("#rollout .facts") || {innerText: ""}).innerText.includes("2 of 3") && document.querySelector("#rollout .facts").innerText.includes("50%")`, 10*time.Second)

		b.click("abort", `#rollout a[href$="confirm/abort?release=v2"]`)
		b.click("confirm the abort", `form.confirm button[type=submit]`)
		r := waitRollout(t, ts, gate, v2.ID, "v2 aborted", ended)
		if r.Status != slipway.ReleaseFailed || r.Failure == nil || r.Failure.Phase != "aborted" || r.Failure.AbortedBy == "" {
			t.Fatalf("after abort v2 = %s, failure %+v; want failed, aborted by the dashboard's user", r.Status, r.Failure)
		}
		if seen := routerVersions(t, ts, gate, 20); seen["2"] != 0 || seen["1"] != 20 {
			t.Errorf("after the abort the router served %v, want v1 only", seen)
		}
		b.open("/ui/apps/" + gate + "/releases/v2")
		if got := b.text(".failure-section"); !strings.Contains(got, "aborted") || !strings.Contains(got, r.Failure.AbortedBy) {
			t.Errorf("v2's page after the abort: %q", got)
		}
		b.screenshot("canary-aborted")
	})

	t.Run("every row of the timeline says what changed", func(t *testing.T) {
		// More new releases than a page works out summaries for (five):
		// the browser asks for the rest after the page has loaded.
		const gate = "gate-default"
		if _, err := ts.c.SetReleaseStrategy(bg, gate, slipway.Strategy{Type: slipway.StrategyRolling}); err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			if r := ts.release(t, gate, client.NewRelease{Slug: ts.push(t, gate, fmt.Sprintf("web: TAG=%d ./testapp\n", i))}); r.Status != slipway.ReleaseSucceeded {
				t.Fatalf("v%d = %s (%s)", r.Version, r.Status, r.Error)
			}
		}
		b.open("/ui/apps/" + gate)
		b.waitFor("every row has its summary", `document.querySelectorAll("[data-timeline] tbody tr").length === 8 && !document.querySelector("[data-diff-pending]") &&
			[...document.querySelectorAll("[data-timeline] tbody tr")].every(tr => /v\d+ (against v\d+|\(first release\))/.test(tr.querySelector(".diff-summary").innerText))`, 10*time.Second)
	})

	t.Run("360 px wide without horizontal scrolling", func(t *testing.T) {
		b.do("narrow the window", chromedp.EmulateViewport(360, 740))
		for _, p := range []string{"/ui/", "/ui/apps/" + app, "/ui/apps/" + app + "/releases/v3", "/ui/pipelines", "/ui/apps/" + app + "/confirm/rollback?release=v1"} {
			b.open(p)
			b.noHorizontalScroll(p)
			b.screenshot("narrow")
		}
		b.do("widen the window", chromedp.EmulateViewport(1280, 900))
	})

	t.Run("a scoped token sees its organization only", func(t *testing.T) {
		if err := ts.c.Do(bg, "POST", "/organizations", map[string]string{"name": "acme"}, nil); err != nil {
			t.Fatal(err)
		}
		var tok struct{ Token string }
		if err := ts.c.Do(bg, "POST", "/tokens", map[string]string{"org": "acme"}, &tok); err != nil {
			t.Fatal(err)
		}
		if _, err := client.New(ts.APIURL, tok.Token).CreateApp(bg, "tenant", "", ""); err != nil {
			t.Fatal(err)
		}
		b.open("/ui/")
		b.click("sign out", `form.signout button`)
		b.do("enter the scoped token", chromedp.SendKeys(chromedp.CSS("#token"), tok.Token))
		b.click("sign in", `form.card button[type=submit]`)
		apps := b.text("main")
		if !strings.Contains(apps, "tenant-default") || strings.Contains(apps, app) {
			t.Errorf("a scoped token's apps page: %q; want tenant-default and not %s", apps, app)
		}
		if who := b.text(".who"); !strings.Contains(who, "acme") {
			t.Errorf("signed in as %q", who)
		}
		b.open("/ui/apps/" + app)
		if msg := b.text(`[role=alert]`); !strings.Contains(msg, "not found") && !strings.Contains(msg, "was not found") {
			t.Errorf("a scoped token on another organization's app: %q, want the API's not-found message", msg)
		}
		b.open("/ui/apps/" + app + "/confirm/rollback?release=v1")
		b.click("confirm a rollback of another organization's app", `form.confirm button[type=submit]`)
		if rels, _ := ts.c.Releases(bg, app); len(rels) != 4 {
			t.Errorf("a scoped token rolled back another organization's app: %d releases", len(rels))
		}
		b.screenshot("scoped")
	})
}

// TestServe_UIOff: with --ui=false the API answers /ui/ and a browser's
// GET / as any unknown path.
func TestServe_UIOff(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t)) // UI false, as --ui=false
	for _, path := range []string{"/", "/ui/", "/ui/login"} {
		req, _ := http.NewRequest("GET", ts.APIURL+path, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"id":"not_found"`) {
			t.Errorf("GET %s with --ui=false = %d %s", path, resp.StatusCode, body)
		}
	}
}
