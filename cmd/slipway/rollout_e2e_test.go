package main

// End-to-end checks of zero-downtime rollouts: a real
// server, real dynos of internal/testapp, and requests through the router.
// Every wait is a condition with a deadline; the load generators stop by
// themselves after loadMaxRun even if a test dies before stopping them.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway/slipway/client"
)

const (
	rolloutWait = 30 * time.Second // bound on any single condition below
	loadMaxRun  = 90 * time.Second // a load generator never runs longer
)

// waitDynos polls GET /apps/{app}/dynos until check returns "" (satisfied)
// and returns that list; past timeout it fails with check's last complaint.
func waitDynos(t *testing.T, ts *testServer, app, what string, check func([]client.Dyno) string) []client.Dyno {
	t.Helper()
	deadline := time.Now().Add(rolloutWait)
	for {
		ds, err := ts.c.Dynos(bg, app)
		why := ""
		if err != nil {
			why = err.Error()
		} else if why = check(ds); why == "" {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %s\ndynos: %s", what, rolloutWait, why, dynoSummary(ds))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dynoSummary(ds []client.Dyno) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%s.%s(v%d %s ready=%v %q)", d.Type, d.Name, d.Release.Version, d.State, d.Ready, d.AdditionalInfo))
	}
	return strings.Join(s, " ")
}

// settledOn is satisfied when the app runs exactly want dynos per type, all
// of release version v, web ones routed and the others running.
func settledOn(v int, want map[string]int) func([]client.Dyno) string {
	return func(ds []client.Dyno) string {
		got := map[string]int{}
		for _, d := range ds {
			got[d.Type]++
			if d.Release.Version != v {
				return fmt.Sprintf("%s is on v%d, want v%d", d.Name, d.Release.Version, v)
			}
			if d.State != "running" || (d.Type == "web") != d.Ready {
				return fmt.Sprintf("%s is %s (ready=%v)", d.Name, d.State, d.Ready)
			}
		}
		for typ, n := range want {
			if got[typ] != n {
				return fmt.Sprintf("%d %s dynos, want %d", got[typ], typ, n)
			}
		}
		if len(ds) != dynoTotal(want) {
			return fmt.Sprintf("%d dynos, want %d", len(ds), dynoTotal(want))
		}
		return ""
	}
}

func dynoTotal(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func dynoIDs(ds []client.Dyno) map[string]string {
	ids := map[string]string{}
	for _, d := range ds {
		ids[d.ID] = d.Name
	}
	return ids
}

func rolloutLog(t *testing.T, ts *testServer, app, id string) []string {
	t.Helper()
	l, err := ts.c.ReleaseLog(bg, app, id)
	if err != nil {
		t.Fatal(err)
	}
	return l.Lines
}

// lineMatching is the index of the first line matching re, -1 if none.
func lineMatching(lines []string, re string) int {
	rx := regexp.MustCompile(re)
	return slices.IndexFunc(lines, rx.MatchString)
}

// pushFast is ts.push; testslug.TestAppSlug compresses the test app once
// per test process, which was what made a push slow.
func pushFast(t *testing.T, ts *testServer, app, procfile string) string {
	t.Helper()
	return ts.push(t, app, procfile)
}

// procByVersion is a Procfile command that runs ./testapp with the flags given
// for the release version it runs in, else with def: one slug (one push)
// then makes good and bad releases.
func procByVersion(def string, flags map[int]string) string {
	vs := make([]int, 0, len(flags))
	for v := range flags {
		vs = append(vs, v)
	}
	sort.Ints(vs)
	cmd := `case "$SLIPWAY_RELEASE_VERSION" in`
	for _, v := range vs {
		cmd += fmt.Sprintf(" %d) exec ./testapp %s;;", v, flags[v])
	}
	return cmd + " *) exec ./testapp " + def + ";; esac"
}

// scaleTo PATCHes formations and fails the test on an error.
func scaleTo(t *testing.T, ts *testServer, app string, fs ...map[string]any) {
	t.Helper()
	if _, err := ts.c.UpdateFormations(bg, app, fs); err != nil {
		t.Fatalf("scale %v: %v", fs, err)
	}
}

// timedRelease creates a release, waits until it ends and says how long
// that took.
func timedRelease(t *testing.T, ts *testServer, app, slug string) (*client.Release, time.Duration) {
	t.Helper()
	start := time.Now()
	r := ts.release(t, app, client.NewRelease{Slug: slug})
	return r, time.Since(start)
}

// routerLoad sends GET requests through the router from several clients until
// stopped (or loadMaxRun), and records every failure and which release and
// dyno answered. A request must be answered by one of the versions allowed
// when it was sent.
type routerLoad struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	hc     *http.Client

	allowed atomic.Pointer[map[string]bool]
	ok      atomic.Int64

	mu        sync.Mutex
	failed    int
	failures  []string // the first few
	byVersion map[string]int
	byDyno    map[string]int
	answered  map[string][]time.Time // when each answer of a version came, errors too
}

// startRouterLoad starts n clients on the app with router key key. Client 0 asks
// for /sleep?ms=25 so that dynos have requests in flight when drained; the
// others ask for / back to back.
func startRouterLoad(t *testing.T, ts *testServer, key string, n int, versions ...int) *routerLoad {
	ctx, cancel := context.WithTimeout(context.Background(), loadMaxRun)
	l := &routerLoad{
		cancel:    cancel,
		hc:        &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: n}},
		byVersion: map[string]int{},
		byDyno:    map[string]int{},
		answered:  map[string][]time.Time{},
	}
	l.allow(versions...)
	for i := range n {
		path := "/"
		if i == 0 {
			path = "/sleep?ms=25"
		}
		l.wg.Go(func() {
			// A short pause between requests keeps this from taking both
			// cores of a shared box; there are still thousands of requests
			// per second across the clients.
			pace := time.NewTicker(time.Millisecond)
			defer pace.Stop()
			for ctx.Err() == nil {
				<-pace.C
				allowed := *l.allowed.Load()
				code, body, err := l.send(ctx, ts.RouterURL+path, key)
				if ctx.Err() != nil {
					return // stopped mid-request: not the app's fault
				}
				v, dyno, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(body, "version=")), " dyno=")
				if err == nil && strings.HasPrefix(body, "version=") {
					l.mu.Lock()
					l.answered[v] = append(l.answered[v], time.Now()) // whatever the status
					l.mu.Unlock()
				}
				switch {
				case err != nil:
					l.fail("%s: %v", path, err)
				case code != 200:
					l.fail("%s: %d %q", path, code, body)
				case !allowed[v]:
					l.fail("%s: answer from v%s, allowed %v: %q", path, v, allowed, body)
				default:
					l.ok.Add(1)
					l.mu.Lock()
					l.byVersion[v]++
					l.byDyno[dyno]++
					l.mu.Unlock()
				}
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

func (l *routerLoad) send(ctx context.Context, url, key string) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Host = key + ".localhost"
	resp, err := l.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 && len(b) == 0 {
		// Say who answered an empty error: the router always writes a body.
		b = []byte(fmt.Sprintf("(empty body; headers %v)", resp.Header))
	}
	return resp.StatusCode, string(b), err
}

func (l *routerLoad) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failed++
	if len(l.failures) < 10 {
		l.failures = append(l.failures, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
	}
}

// allow sets the versions that answers to requests sent from now on may
// come from.
func (l *routerLoad) allow(versions ...int) {
	m := map[string]bool{}
	for _, v := range versions {
		m[strconv.Itoa(v)] = true
	}
	l.allowed.Store(&m)
}

// served waits until n more requests were answered well.
func (l *routerLoad) served(t *testing.T, n int) {
	t.Helper()
	target := l.ok.Load() + int64(n)
	deadline := time.Now().Add(rolloutWait)
	for l.ok.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the router answered only %d requests in %s (%d failed: %q)", l.ok.Load(), rolloutWait, l.failedCount(), l.firstFailures())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// during runs step and checks that requests were answered while it ran.
func (l *routerLoad) during(t *testing.T, what string, step func()) {
	t.Helper()
	before := l.ok.Load()
	start := time.Now()
	step()
	n := l.ok.Load() - before
	t.Logf("%s: %d requests answered in %s", what, n, time.Since(start).Round(time.Millisecond))
	if n == 0 {
		t.Fatalf("%s: no request was answered while it ran", what)
	}
}

func (l *routerLoad) failedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

func (l *routerLoad) firstFailures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}

func (l *routerLoad) stop() {
	l.cancel()
	l.wg.Wait()
	l.hc.CloseIdleConnections()
}

// finish stops the load and fails the test if any request failed.
func (l *routerLoad) finish(t *testing.T) {
	t.Helper()
	l.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("load: %d requests answered, by version %v, by dyno %v", l.ok.Load(), l.byVersion, l.byDyno)
	if l.failed > 0 {
		t.Fatalf("%d of %d requests failed; first ones:\n%s", l.failed, int(l.ok.Load())+l.failed, strings.Join(l.failures, "\n"))
	}
}

func (l *routerLoad) answeredBy(version string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byVersion[version]
}

// nthAnswer is when the nth answer (errors included) from version came
// at or after since, or zero if it has not come yet.
func (l *routerLoad) nthAnswer(version string, since time.Time, n int) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, at := range l.answered[version] {
		if !at.Before(since) {
			if n--; n == 0 {
				return at
			}
		}
	}
	return time.Time{}
}

func (l *routerLoad) answeredByDyno(dyno string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byDyno[dyno]
}

// Scaling through the formation endpoints starts and stops the
// current release's dynos at once; the first release creates web=1 and the
// Procfile's other types at 0.
func TestE2E_Scale_FormationEndpoints(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "scaly", "", "")
	v1 := ts.release(t, "scaly", client.NewRelease{Slug: pushFast(t, ts, "scaly", "web: ./testapp\nworker: ./testapp --worker\n")})
	if v1.Status != "succeeded" {
		t.Fatalf("v1 = %+v", v1)
	}
	fs, err := ts.c.Formations(bg, "scaly")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range fs {
		got[f.Type] = f.Quantity
	}
	if len(got) != 2 || got["web"] != 1 || got["worker"] != 0 {
		t.Fatalf("formations after the first release = %+v, want web=1 worker=0", fs)
	}
	waitDynos(t, ts, "scaly", "web.1 only", settledOn(1, map[string]int{"web": 1}))

	tok := "Bearer test-token"
	// PATCH /formation/{type}: web up to 3, with a healthcheck and a size.
	code, body := ts.raw(t, "PATCH", "/apps/scaly/formation/web", tok, `{"quantity":3,"healthcheck":"/health","size":"gp1"}`)
	if code != 200 || !strings.Contains(body, `"quantity":3`) || !strings.Contains(body, `"healthcheck":"/health"`) {
		t.Fatalf("PATCH web: %d %s", code, body)
	}
	waitDynos(t, ts, "scaly", "web scaled to 3", settledOn(1, map[string]int{"web": 3}))

	// POST /formation: a type the Procfile lacks, with its own command.
	code, body = ts.raw(t, "POST", "/apps/scaly/formation", tok, `{"type":"clock","quantity":1,"command":"./testapp --worker"}`)
	if code != 201 || !strings.Contains(body, `"type":"clock"`) {
		t.Fatalf("POST clock: %d %s", code, body)
	}
	// PATCH /formation (batch): two workers.
	code, body = ts.raw(t, "PATCH", "/apps/scaly/formation", tok, `[{"type":"worker","quantity":2}]`)
	if code != 200 || !strings.Contains(body, `"quantity":2`) {
		t.Fatalf("PATCH batch: %d %s", code, body)
	}
	// They start at once: listed as starting right away...
	waitDynos(t, ts, "scaly", "clock and workers listed", func(ds []client.Dyno) string {
		names := map[string]bool{}
		for _, d := range ds {
			names[d.Type+"."+d.Name] = true
		}
		if !names["clock.1"] || !names["worker.1"] || !names["worker.2"] {
			return "clock.1, worker.1 and worker.2 are not all listed"
		}
		return ""
	})
	// ...and running once they stayed up the minimum time.
	ds := waitDynos(t, ts, "scaly", "clock and workers running", settledOn(1, map[string]int{"web": 3, "worker": 2, "clock": 1}))
	for _, d := range ds {
		if d.Type == "clock" && d.Command != "./testapp --worker" {
			t.Errorf("clock.1 runs %q", d.Command)
		}
	}

	// DELETE /formation/{type} stops its dynos; the batch form also takes
	// Heroku's {"updates": [...]} and scales down.
	if code, body := ts.raw(t, "DELETE", "/apps/scaly/formation/clock", tok, ""); code != 200 || !strings.Contains(body, `"type":"clock"`) {
		t.Fatalf("DELETE clock: %d %s", code, body)
	}
	ds = waitDynos(t, ts, "scaly", "clock stopped", settledOn(1, map[string]int{"web": 3, "worker": 2}))
	code, body = ts.raw(t, "PATCH", "/apps/scaly/formation", tok, `{"updates":[{"type":"web","quantity":1},{"type":"worker","quantity":0}]}`)
	if code != 200 {
		t.Fatalf("PATCH updates: %d %s", code, body)
	}
	lowest := ds[0] // of the three web dynos: highest numbers go first
	ds = waitDynos(t, ts, "scaly", "scaled down to one web dyno", settledOn(1, map[string]int{"web": 1}))
	if ds[0].ID != lowest.ID {
		t.Errorf("scaling down kept %s, want %s (highest numbers go first)", ds[0].Name, lowest.Name)
	}
	if code, body := ts.get(t, "scaly-default", "/"); code != 200 || !strings.HasPrefix(body, "version=1 dyno="+lowest.Type+"."+lowest.Name) {
		t.Fatalf("router after scaling down: %d %q", code, body)
	}

	// Refused changes change nothing.
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/apps/scaly/formation", `{"type":"web","quantity":2}`},
		{"PATCH", "/apps/scaly/formation", `[{"type":"nope"}]`},
		{"PATCH", "/apps/scaly/formation/web", `{"quantity":-1}`},
		{"PATCH", "/apps/scaly/formation/nope", `{"quantity":1}`},
		{"DELETE", "/apps/scaly/formation/clock", ``},
		{"PATCH", "/apps/scaly/formation", `{"updates":[{"type":"release","quantity":1}]}`},
	} {
		if code, body := ts.raw(t, tt.method, tt.path, tok, tt.body); code < 400 || code >= 500 {
			t.Errorf("%s %s %s = %d %s, want a 4xx", tt.method, tt.path, tt.body, code, body)
		}
	}
	fs, _ = ts.c.Formations(bg, "scaly")
	if len(fs) != 2 {
		t.Errorf("formations after refused changes = %+v", fs)
	}
	waitDynos(t, ts, "scaly", "still one web dyno", settledOn(1, map[string]int{"web": 1}))

	// web=0: the router has nothing to send to and says so.
	scaleTo(t, ts, "scaly", map[string]any{"type": "web", "quantity": 0})
	waitDynos(t, ts, "scaly", "no dyno left", settledOn(1, nil))
	if code, body := ts.get(t, "scaly-default", "/"); code != 503 || !strings.Contains(body, "scaly-default") || !strings.Contains(body, "ready") {
		t.Fatalf("router with web=0: %d %q", code, body)
	}
}

// GET /dynos names each dyno, its type, state, whether it is
// routed, its release, and why it is in that state.
func TestE2E_DynoList_Fields(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "seen", "", "")
	v1 := ts.release(t, "seen", client.NewRelease{Slug: pushFast(t, ts, "seen", "web: ./testapp\nworker: ./testapp --worker\n")})
	scaleTo(t, ts, "seen", map[string]any{"type": "worker", "quantity": 1})

	// A worker is starting (not ready, waiting for its health check) for
	// the minimum uptime (2s) before it is running.
	waitDynos(t, ts, "seen", "worker.1 starting", func(ds []client.Dyno) string {
		for _, d := range ds {
			if d.Type == "worker" && d.Name == "1" && d.State == "starting" && !d.Ready && d.AdditionalInfo == "waiting for its health check" {
				return ""
			}
		}
		return "worker.1 not seen starting"
	})
	waitDynos(t, ts, "seen", "web.1 and worker.1 running", settledOn(1, map[string]int{"web": 1, "worker": 1}))

	code, body := ts.raw(t, "GET", "/apps/seen/dynos", "Bearer test-token", "")
	if code != 200 {
		t.Fatalf("GET dynos: %d %s", code, body)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("dynos JSON: %v: %s", err, body)
	}
	if len(raw) != 2 {
		t.Fatalf("dynos = %s", body)
	}
	for _, d := range raw {
		for _, k := range []string{"id", "name", "type", "state", "ready", "release", "command", "created_at", "updated_at", "additional_info"} {
			if _, ok := d[k]; !ok {
				t.Errorf("dyno %v lacks %q", d["name"], k)
			}
		}
	}
	web, worker := raw[0], raw[1] // ordered by type, then number
	rel, _ := web["release"].(map[string]any)
	if web["name"] != "1" || web["type"] != "web" || web["state"] != "running" || web["ready"] != true ||
		rel["id"] != v1.ID || rel["version"] != float64(1) || web["command"] != "./testapp" || web["additional_info"] != "" {
		t.Errorf("web dyno = %v", web)
	}
	if worker["name"] != "1" || worker["type"] != "worker" || worker["state"] != "running" || worker["ready"] != false {
		t.Errorf("worker dyno = %v", worker)
	}
	if code, body := ts.raw(t, "GET", "/apps/nope/dynos", "Bearer test-token", ""); code != 404 {
		t.Errorf("dynos of an unknown app: %d %s", code, body)
	}
}

// A release, a release that fails mid-rollout (auto-revert) and a
// rolling restart of 4 web and 2 worker dynos while 4 clients hammer the
// router: no request fails, answers come from the old or the new release,
// and after each rollout only from the one that stays.
func TestE2E_RolloutUnderLoad_ZeroFailedRequests(t *testing.T) {
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "busy", "", "")
	// v3 fails once it has replaced an old web dyno: its web.1 crashes.
	slug := pushFast(t, ts, "busy", "web: "+procByVersion("", map[int]string{3: "--crash-if-dyno=web.1"})+"\nworker: ./testapp --worker\n")
	ts.release(t, "busy", client.NewRelease{Slug: slug})
	scaleTo(t, ts, "busy", map[string]any{"type": "web", "quantity": 4}, map[string]any{"type": "worker", "quantity": 2})
	six := map[string]int{"web": 4, "worker": 2}
	waitDynos(t, ts, "busy", "4 web + 2 workers on v1", settledOn(1, six))

	l := startRouterLoad(t, ts, "busy-default", 4, 1)
	l.served(t, 50)

	l.allow(1, 2)
	var v2 *client.Release
	l.during(t, "release v2", func() { v2 = ts.release(t, "busy", client.NewRelease{Slug: slug}) })
	if v2.Status != "succeeded" || !v2.Current {
		t.Fatalf("v2 = %+v", v2)
	}
	l.allow(2)
	waitDynos(t, ts, "busy", "4 web + 2 workers on v2", settledOn(2, six))
	l.served(t, 50)

	l.allow(2, 3)
	var v3 *client.Release
	l.during(t, "failed release v3", func() { v3 = ts.release(t, "busy", client.NewRelease{Slug: slug}) })
	l.allow(2)
	if v3.Status != "failed" || v3.Current || !strings.Contains(v3.Error, "web.1") || !strings.Contains(v3.Error, "back on v2") {
		t.Fatalf("v3 = %+v", v3)
	}
	lines := rolloutLog(t, ts, "busy", v3.ID)
	stoppedOld := lineMatching(lines, `^web\.\d+ stopped \(v2\)`)
	failed := lineMatching(lines, `^web\.1 exited with status 1 before it was healthy`)
	if stoppedOld < 0 || failed < stoppedOld || lineMatching(lines, `^reverting to v2$`) < failed || lineMatching(lines, `^release_failed: `) < 0 {
		t.Fatalf("v3 did not fail mid-rollout and revert; log:\n%s", strings.Join(lines, "\n"))
	}
	waitDynos(t, ts, "busy", "back on v2", settledOn(2, six))
	if got := versions(t, ts, "busy"); got != "v1:succeeded v2:succeeded* v3:failed" {
		t.Fatalf("releases = %s", got)
	}
	l.served(t, 50)

	before := dynoIDs(waitDynos(t, ts, "busy", "v2", settledOn(2, six)))
	l.during(t, "rolling restart", func() {
		if err := ts.c.RestartDynos(bg, "busy", ""); err != nil {
			t.Fatal(err)
		}
		waitDynos(t, ts, "busy", "every dyno replaced", func(ds []client.Dyno) string {
			for _, d := range ds {
				if before[d.ID] != "" {
					return d.Type + "." + d.Name + " is not replaced yet"
				}
			}
			return settledOn(2, six)(ds)
		})
	})
	l.served(t, 50)
	l.finish(t)
	if l.answeredBy("1") == 0 || l.answeredBy("2") == 0 {
		t.Fatalf("answers by version: v1 %d, v2 %d; want both", l.answeredBy("1"), l.answeredBy("2"))
	}
}

// A release whose web process crashes at start fails at once; one
// whose health check never passes fails after the healthy deadline. Either
// way the log says why, the new dyno is stopped, the old dynos serve all
// along (same processes), current stays, and release_failed is logged.
func TestE2E_RolloutFailure_CrashOrUnhealthy_ChangesNothing(t *testing.T) {
	cfg := testConfig(t)
	cfg.HealthyDeadline = 2 * time.Second
	ts := startTestServer(t, cfg)
	ts.c.CreateApp(bg, "frail", "", "")
	// v2 crashes at start, v3 never passes its health check.
	slug := pushFast(t, ts, "frail", "web: "+procByVersion("", map[int]string{2: "--crash", 3: "--unhealthy"})+"\n")
	v1 := ts.release(t, "frail", client.NewRelease{Slug: slug})
	scaleTo(t, ts, "frail", map[string]any{"type": "web", "quantity": 2, "healthcheck": "/health"})
	two := map[string]int{"web": 2}
	before := dynoIDs(waitDynos(t, ts, "frail", "2 web on v1", settledOn(1, two)))

	l := startRouterLoad(t, ts, "frail-default", 4, 1)
	l.served(t, 50)
	check := func(t *testing.T, rel *client.Release, why string) {
		t.Helper()
		if rel.Status != "failed" || rel.Current || !strings.Contains(rel.Error, why) {
			t.Fatalf("release = %+v, want failed saying %q", rel, why)
		}
		lines := rolloutLog(t, ts, "frail", rel.ID)
		text := strings.Join(lines, "\n")
		if lineMatching(lines, `^web\.\d+ `+regexp.QuoteMeta(why)) < 0 || lineMatching(lines, `^release_failed: .*`+regexp.QuoteMeta(why)) < 0 ||
			lineMatching(lines, fmt.Sprintf(`^web\.\d+ stopped \(v%d\)`, rel.Version)) < 0 {
			t.Fatalf("log lacks the failure, its reason or the new dyno's stop:\n%s", text)
		}
		if strings.Contains(text, "(v1)") {
			t.Fatalf("an old dyno was touched:\n%s", text)
		}
		ds := waitDynos(t, ts, "frail", "still the v1 dynos", settledOn(1, two))
		if got := dynoIDs(ds); !maps.Equal(got, before) {
			t.Fatalf("dynos %v, want the same processes %v", got, before)
		}
		cur, err := ts.c.Release(bg, "frail", v1.ID)
		if err != nil || !cur.Current {
			t.Fatalf("v1 is no longer current: %+v %v", cur, err)
		}
	}
	t.Run("crash at start", func(t *testing.T) {
		var rel *client.Release
		var took time.Duration
		l.during(t, "crashing release", func() { rel, took = timedRelease(t, ts, "frail", slug) })
		check(t, rel, "exited with status 1 before it was healthy: testapp: crashing at start as asked")
		if took >= cfg.HealthyDeadline {
			t.Errorf("a crash at start took %s to fail; want under the healthy deadline %s", took, cfg.HealthyDeadline)
		}
	})
	t.Run("health check never passes", func(t *testing.T) {
		var rel *client.Release
		var took time.Duration
		l.during(t, "unhealthy release", func() {
			start := time.Now()
			r, err := ts.c.CreateRelease(bg, "frail", client.NewRelease{Slug: slug})
			if err != nil {
				t.Fatal(err)
			}
			// Meanwhile its dyno is listed as starting and gets no request
			// (the load allows answers from v1 only).
			waitDynos(t, ts, "frail", "the new dyno starting", func(ds []client.Dyno) string {
				for _, d := range ds {
					if d.Release.Version == r.Version && d.State == "starting" && !d.Ready && d.AdditionalInfo == "waiting for its health check" {
						return ""
					}
				}
				return "no v3 dyno is starting"
			})
			if rel, err = ts.c.WaitRelease(bg, "frail", r.ID); err != nil {
				t.Fatal(err)
			}
			took = time.Since(start)
		})
		check(t, rel, "did not pass its health check (GET /health) within 2s (last attempt: answered 500")
		if took < cfg.HealthyDeadline {
			t.Errorf("an unhealthy release failed after %s, before the healthy deadline %s", took, cfg.HealthyDeadline)
		}
	})
	l.served(t, 20)
	l.finish(t)
}

// DELETE /dynos/{name or id} restarts one dyno, DELETE /dynos all of
// them, rolling, with no failed request.
func TestE2E_DynoRestart_OneAndAll_NoFailedRequest(t *testing.T) {
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "again", "", "")
	tok := "Bearer test-token"
	if code, body := ts.raw(t, "DELETE", "/apps/again/dynos", tok, ""); code != 409 {
		t.Fatalf("restart before any release: %d %s", code, body)
	}
	ts.release(t, "again", client.NewRelease{Slug: pushFast(t, ts, "again", "web: ./testapp\nworker: ./testapp --worker\n")})
	scaleTo(t, ts, "again", map[string]any{"type": "web", "quantity": 3}, map[string]any{"type": "worker", "quantity": 1})
	three := map[string]int{"web": 3, "worker": 1}
	ds := waitDynos(t, ts, "again", "3 web, 1 worker", settledOn(1, three))

	l := startRouterLoad(t, ts, "again-default", 4, 1)
	l.served(t, 50)
	restartOne := func(what, ref, id string) {
		t.Helper()
		before := dynoIDs(ds)
		l.during(t, what, func() {
			code, body := ts.raw(t, "DELETE", "/apps/again/dynos/"+ref, tok, "")
			if code != 202 || !strings.Contains(body, "rolling restart") {
				t.Fatalf("DELETE dynos/%s: %d %s", ref, code, body)
			}
			ds = waitDynos(t, ts, "again", what, func(ds []client.Dyno) string {
				now := dynoIDs(ds)
				if now[id] != "" {
					return "the dyno is not replaced yet"
				}
				for oid := range before {
					if oid != id && now[oid] == "" {
						return "another dyno was replaced too"
					}
				}
				return settledOn(1, three)(ds)
			})
		})
	}
	restartOne("restart web.1 by name", "web.1", ds[0].ID)
	restartOne("restart a dyno by id", ds[1].ID, ds[1].ID)

	// One dyno, as a client asks for it: GET /dyno/{type.name} (Akkeris's
	// singular) and the plural, or by id; a type or an unknown name is 404.
	one := ds[1]
	for _, path := range []string{"/apps/again/dyno/web." + one.Name, "/apps/again/dynos/web." + one.Name, "/apps/again-default/dyno/" + one.ID} {
		code, body := ts.raw(t, "GET", path, tok, "")
		var got map[string]any
		json.Unmarshal([]byte(body), &got)
		app, _ := got["app"].(map[string]any)
		if code != 200 || got["type"] != "web" || got["name"] != one.Name || got["id"] != one.ID || got["size"] != "standard" ||
			got["attach_url"] != "" || app["name"] != "again-default" {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
	for _, name := range []string{"web", "web.99", "clock"} {
		if code, body := ts.raw(t, "GET", "/apps/again/dyno/"+name, tok, ""); code != 404 {
			t.Errorf("GET dyno/%s: %d %s", name, code, body)
		}
	}

	// DELETE /dynos/web restarts every web dyno, rolling, and no other.
	before := dynoIDs(ds)
	worker := ds[3].ID
	l.during(t, "restart the web type", func() {
		if code, body := ts.raw(t, "DELETE", "/apps/again/dynos/web", tok, ""); code != 202 {
			t.Fatalf("DELETE dynos/web: %d %s", code, body)
		}
		ds = waitDynos(t, ts, "again", "web replaced", func(ds []client.Dyno) string {
			now := dynoIDs(ds)
			if now[worker] == "" {
				return "the worker was replaced too"
			}
			for _, d := range ds {
				if d.Type == "web" && before[d.ID] != "" {
					return "web." + d.Name + " is not replaced yet"
				}
			}
			return settledOn(1, three)(ds)
		})
	})
	if code, body := ts.raw(t, "DELETE", "/apps/again/dynos/clock", tok, ""); code != 404 {
		t.Errorf("restart of an unknown type: %d %s", code, body)
	}

	before = dynoIDs(ds)
	l.during(t, "restart all", func() {
		if code, body := ts.raw(t, "DELETE", "/apps/again/dynos", tok, ""); code != 202 {
			t.Fatalf("DELETE dynos: %d %s", code, body)
		}
		waitDynos(t, ts, "again", "all replaced", func(ds []client.Dyno) string {
			for _, d := range ds {
				if before[d.ID] != "" {
					return d.Type + "." + d.Name + " is not replaced yet"
				}
			}
			return settledOn(1, three)(ds)
		})
	})
	if code, body := ts.raw(t, "DELETE", "/apps/again/dynos/web.9", tok, ""); code != 404 {
		t.Errorf("restart of an unknown dyno: %d %s", code, body)
	}
	l.served(t, 20)
	l.finish(t)
}

// A dyno that crashes after it was released shows crashed, leaves
// the router at once (no request fails) and is restarted with a growing
// backoff (1s, then 2s).
func TestE2E_CrashAfterRelease_RestartsWithBackoff(t *testing.T) {
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "flaky", "", "")
	// web.2 crashes 1.5s after each start; web.1 stays up.
	slug := pushFast(t, ts, "flaky", `web: if [ "$DYNO" = web.2 ]; then exec ./testapp --crash-after=1500ms; else exec ./testapp; fi`+"\n")
	ts.release(t, "flaky", client.NewRelease{Slug: slug})
	waitDynos(t, ts, "flaky", "web.1", settledOn(1, map[string]int{"web": 1}))
	l := startRouterLoad(t, ts, "flaky-default", 4, 1)
	l.served(t, 20)
	scaleTo(t, ts, "flaky", map[string]any{"type": "web", "quantity": 2})

	// crashed waits until web.2 is crashed, waiting for restart attempt n,
	// and returns it.
	crashed := func(n int, delay string) client.Dyno {
		t.Helper()
		var got client.Dyno
		waitDynos(t, ts, "flaky", fmt.Sprintf("web.2 crashed (attempt %d)", n), func(ds []client.Dyno) string {
			for _, d := range ds {
				if d.Type == "web" && d.Name == "2" && d.State == "crashed" && strings.Contains(d.AdditionalInfo, fmt.Sprintf("restarting in %s (attempt %d)", delay, n)) {
					got = d
					return ""
				}
			}
			return "web.2 is not crashed waiting for that attempt"
		})
		if got.Ready || !strings.Contains(got.AdditionalInfo, "exited with status 1") {
			t.Fatalf("crashed web.2 = %+v", got)
		}
		return got
	}
	first := crashed(1, "1s")
	if l.answeredByDyno("web.2") == 0 {
		t.Fatal("web.2 never served a request before it crashed")
	}
	// While web.2 is down, every request is answered by web.1.
	l.served(t, 20)
	second := crashed(2, "2s")
	if first.ID != second.ID {
		t.Errorf("web.2 was replaced (%s → %s), want the same dyno restarted", first.ID, second.ID)
	}
	// Between the crashes: the 1s backoff, then 1.5s of running.
	if gap := second.UpdatedAt.Sub(first.UpdatedAt.Time); gap < time.Second {
		t.Errorf("second crash %s after the first; the 1s backoff was not waited", gap)
	}
	l.served(t, 20)
	l.finish(t)
	if l.answeredByDyno("web.1") == 0 {
		t.Fatal("web.1 served nothing")
	}
}

// The Procfile's release command runs once, to completion, before
// any dyno of its release starts; when it fails, the release fails and
// nothing changes.
func TestE2E_ReleasePhase_RunsOnceBeforeDynos(t *testing.T) {
	t.Parallel()
	// The release command records each run in a file of the test's; an
	// isolated dyno cannot reach the host's files (the isolation tests
	// prove that), so this one runs unisolated.
	cfg := testConfig(t)
	cfg.DynoIsolation = "off"
	ts := startTestServer(t, cfg)
	ts.c.CreateApp(bg, "phase", "", "")
	once := filepath.Join(t.TempDir(), "once.txt")
	// v2's release command fails.
	slug := pushFast(t, ts, "phase", "release: "+procByVersion("--release-task --once-file="+once, map[int]string{2: "--release-task --fail"})+"\nweb: ./testapp\n")
	ranLines := func() []string {
		b, err := os.ReadFile(once)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}

	v1 := ts.release(t, "phase", client.NewRelease{Slug: slug})
	if v1.Status != "succeeded" {
		t.Fatalf("v1 = %+v", v1)
	}
	if got := ranLines(); len(got) != 1 || got[0] != "release v1 port= dyno=release.1" {
		t.Fatalf("release phase runs = %q", got)
	}
	lines := rolloutLog(t, ts, "phase", v1.ID)
	running, finished, started := lineMatching(lines, `release phase: running `), lineMatching(lines, `release phase finished`), lineMatching(lines, `^web\.\d+ started`)
	if running < 0 || finished < running || started < finished {
		t.Fatalf("the release phase did not finish before the first dyno started:\n%s", strings.Join(lines, "\n"))
	}
	fs, _ := ts.c.Formations(bg, "phase")
	if len(fs) != 1 || fs[0].Type != "web" {
		t.Fatalf("formations = %+v, want web only", fs)
	}
	// Scaling and restarting run the same release: no second run.
	scaleTo(t, ts, "phase", map[string]any{"type": "web", "quantity": 2})
	ds := waitDynos(t, ts, "phase", "2 web", settledOn(1, map[string]int{"web": 2}))
	ts.c.RestartDynos(bg, "phase", "")
	before := dynoIDs(ds)
	ds = waitDynos(t, ts, "phase", "restarted", func(ds []client.Dyno) string {
		for _, d := range ds {
			if before[d.ID] != "" {
				return d.Name + " not restarted yet"
			}
		}
		return settledOn(1, map[string]int{"web": 2})(ds)
	})
	if got := ranLines(); len(got) != 1 {
		t.Fatalf("the release phase ran again on scaling or restart: %q", got)
	}

	v2 := ts.release(t, "phase", client.NewRelease{Slug: slug})
	if v2.Status != "failed" || v2.Current || !strings.Contains(v2.Error, "Release phase failed") ||
		!strings.Contains(v2.Error, "exited with status 3") || !strings.Contains(v2.Error, "release task failing as asked") {
		t.Fatalf("v2 = %+v", v2)
	}
	lines = rolloutLog(t, ts, "phase", v2.ID)
	if lineMatching(lines, `^release_failed: Release phase failed`) < 0 || lineMatching(lines, `^web\.\d+ (started|stopped|is out of the router)`) >= 0 {
		t.Fatalf("v2 log:\n%s", strings.Join(lines, "\n"))
	}
	after := waitDynos(t, ts, "phase", "still v1", settledOn(1, map[string]int{"web": 2}))
	if !maps.Equal(dynoIDs(after), dynoIDs(ds)) {
		t.Fatalf("dynos changed: %s", dynoSummary(after))
	}
	if code, body := ts.get(t, "phase-default", "/"); code != 200 || !strings.HasPrefix(body, "version=1 ") {
		t.Fatalf("router after the failed release phase: %d %q", code, body)
	}
	if got := versions(t, ts, "phase"); got != "v1:succeeded* v2:failed" {
		t.Fatalf("releases = %s", got)
	}
	if got := ranLines(); len(got) != 1 {
		t.Fatalf("release phase runs = %q", got)
	}
}

// GET /releases/{id}/log, and its ?follow=true stream, show each
// dyno's steps in order: new ones started, healthy, routed; old ones
// drained, stopped; a new dyno routed before any old one is drained.
func TestE2E_ReleaseLog_FollowShowsEachStep(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "steps", "", "")
	// The start delay makes the rollout last ≥1s, so streaming shows.
	slug := pushFast(t, ts, "steps", "web: ./testapp --start-delay=500ms\n")
	ts.release(t, "steps", client.NewRelease{Slug: slug})
	scaleTo(t, ts, "steps", map[string]any{"type": "web", "quantity": 2})
	old := waitDynos(t, ts, "steps", "2 web on v1", settledOn(1, map[string]int{"web": 2}))

	rel, err := ts.c.CreateRelease(bg, "steps", client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	type arrival struct {
		line string
		at   time.Time
	}
	var streamed []arrival
	ctx, cancel := context.WithTimeout(bg, rolloutWait)
	defer cancel()
	if err := ts.c.FollowReleaseLog(ctx, "steps", rel.ID, func(line string) {
		streamed = append(streamed, arrival{line, time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	end, err := ts.c.Release(bg, "steps", rel.ID)
	if err != nil || end.Status != "succeeded" {
		t.Fatalf("the stream ended before the release: %+v %v", end, err)
	}

	// Streamed lines are "<RFC 3339 UTC ms> <line>", the same lines as
	// the plain log.
	var lines []string
	var stamps []time.Time
	for _, a := range streamed {
		stamp, line, _ := strings.Cut(a.line, " ")
		at, err := time.Parse("2006-01-02T15:04:05.000Z", stamp)
		if err != nil {
			t.Fatalf("streamed line without a timestamp: %q", a.line)
		}
		lines, stamps = append(lines, line), append(stamps, at)
	}
	plain := rolloutLog(t, ts, "steps", rel.ID)
	if !slices.Equal(lines, plain) {
		t.Fatalf("streamed lines\n%s\ndiffer from the log\n%s", strings.Join(lines, "\n"), strings.Join(plain, "\n"))
	}
	// It streamed: the first dyno's start arrived before the release ended.
	first := lineMatching(lines, `^web\.\d+ started`)
	if first < 0 || !streamed[first].at.Before(stamps[len(stamps)-1]) {
		t.Fatalf("the first step arrived only after the release ended:\n%s", strings.Join(lines, "\n"))
	}

	text := strings.Join(lines, "\n")
	if !strings.HasPrefix(lines[0], "Release v2 started") || lines[len(lines)-1] != "Release v2 succeeded." || lineMatching(lines, `^web: 2/2 on v2$`) < 0 {
		t.Fatalf("log:\n%s", text)
	}
	// Each step's line, as the runtime words it.
	steps := []struct{ name, re string }{
		{"started", `^(web\.\d+) started on v2: `},
		{"healthy", `^(web\.\d+) is healthy \(v2, `},
		{"routed", `^(web\.\d+) is in the router$`},
		{"drained", `^(web\.\d+) is out of the router; its in-flight requests finished`},
		{"stopped", `^(web\.\d+) stopped \(v1\): `},
	}
	seen := map[string][]string{} // dyno → its steps in order
	var order []string
	for _, line := range lines {
		for _, st := range steps {
			if m := regexp.MustCompile(st.re).FindStringSubmatch(line); m != nil {
				seen[m[1]] = append(seen[m[1]], st.name)
				order = append(order, st.name)
			}
		}
	}
	oldNames := map[string]bool{}
	for _, d := range old {
		oldNames[d.Type+"."+d.Name] = true
	}
	newCount := 0
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		steps := strings.Join(seen[name], ",")
		switch steps {
		case "started,healthy,routed":
			newCount++
		case "drained,stopped":
			delete(oldNames, name)
		case "drained,stopped,started,healthy,routed": // a freed name reused
			delete(oldNames, name)
			newCount++
		default:
			t.Errorf("%s: steps %s", name, steps)
		}
	}
	if newCount != 2 || len(oldNames) != 0 {
		t.Errorf("%d new dynos routed (want 2); old dynos not drained and stopped: %v", newCount, oldNames)
	}
	if slices.Index(order, "routed") > slices.Index(order, "drained") {
		t.Errorf("an old dyno was drained before a new one was routed")
	}
	if t.Failed() {
		t.Logf("log:\n%s", text)
	}
}
