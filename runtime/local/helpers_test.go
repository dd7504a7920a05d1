package local

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/testslug"
)

// testConfig is a Config with deadlines small enough for tests.
func testConfig(t testing.TB) Config {
	return Config{
		DataDir:          t.TempDir(),
		HealthyDeadline:  10 * time.Second,
		DrainTimeout:     5 * time.Second,
		StopGrace:        3 * time.Second,
		MinUptime:        50 * time.Millisecond,
		CrashBackoffBase: 50 * time.Millisecond,
		CrashBackoffMax:  time.Second,
	}
}

// fixture is a runtime with its router behind an httptest server and one
// app.
type fixture struct {
	t      testing.TB
	rt     *Runtime
	srv    *httptest.Server
	client *http.Client
	app    slipway.AppRef
	events *events
}

func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	cfg := testConfig(t)
	if mod != nil {
		mod(&cfg)
	}
	rt, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(rt.Router())
	f := &fixture{
		t:      t,
		rt:     rt,
		srv:    srv,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 20 * time.Second},
		app:    newApp(),
		events: &events{},
	}
	t.Cleanup(func() {
		srv.Close()
		if err := rt.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		f.client.CloseIdleConnections()
	})
	return f
}

func newApp() slipway.AppRef {
	id := testslug.NewID()
	name := "app" + strings.ReplaceAll(id[:8], "-", "")
	return slipway.AppRef{ID: id, Name: name, Key: name + "-default", Space: "default"}
}

// desired is the state of release v of f's app with slug and formations.
func (f *fixture) desired(v int, slug slipway.Slug, forms ...slipway.Formation) slipway.Desired {
	return slipway.Desired{
		App:        f.app,
		Release:    slipway.ReleaseRef{ID: fmt.Sprintf("%s-r%d", f.app.ID[:8], v), Version: v},
		Slug:       slug,
		Config:     map[string]string{"GREETING": "hello"},
		Formations: forms,
	}
}

func web(n int) slipway.Formation { return slipway.Formation{Type: "web", Quantity: n} }

func formation(typ string, n int) slipway.Formation {
	return slipway.Formation{Type: typ, Quantity: n}
}

func (f *fixture) deploy(d slipway.Desired) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return f.rt.Deploy(ctx, d, f.events.add)
}

func (f *fixture) mustDeploy(d slipway.Desired) {
	f.t.Helper()
	if err := f.deploy(d); err != nil {
		f.t.Fatalf("Deploy v%d: %v", d.Release.Version, err)
	}
}

// get sends GET path through the router to f's app.
func (f *fixture) get(path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = f.app.Key + ".localhost"
	res, err := f.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func (f *fixture) mustGet(path string) string {
	f.t.Helper()
	code, body, err := f.get(path)
	if err != nil || code != http.StatusOK {
		f.t.Fatalf("GET %s: %d %q %v", path, code, body, err)
	}
	return body
}

func (f *fixture) dynos() []slipway.Dyno {
	f.t.Helper()
	ds, err := f.rt.Dynos(context.Background(), f.app.ID)
	if err != nil {
		f.t.Fatalf("Dynos: %v", err)
	}
	return ds
}

// appDynos returns the dynos f's app has now.
func (f *fixture) appDynos() []*dyno {
	a := f.rt.findApp(f.app.ID)
	if a == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*dyno(nil), a.dynos...)
}

// pids returns the pid of each dyno's current process by name.
func (f *fixture) pids() map[string]int {
	out := map[string]int{}
	for _, d := range f.appDynos() {
		d.mu.Lock()
		if d.proc != nil {
			out[d.name] = d.proc.pid
		}
		d.mu.Unlock()
	}
	return out
}

// dynoAddrs returns where each of f's dynos listens, by name.
func (f *fixture) dynoAddrs() map[string]string {
	out := map[string]string{}
	for _, d := range f.appDynos() {
		d.mu.Lock()
		if addr := d.addr.Load(); addr != nil {
			out[d.name] = *addr
		}
		d.mu.Unlock()
	}
	return out
}

// getFrom sends GET path to the dyno listening at addr, past the router.
func (f *fixture) getFrom(addr, path string) (int, string, error) {
	res, err := f.client.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// children returns the host's processes whose parent is pid.
func children(t testing.TB, pid int) []procfs.ProcStat {
	t.Helper()
	procs, err := procfs.AllProcs()
	if err != nil {
		t.Fatalf("listing processes: %v", err)
	}
	var out []procfs.ProcStat
	for _, p := range procs {
		if st, err := p.Stat(); err == nil && st.PPID == pid {
			out = append(out, st)
		}
	}
	return out
}

// versionsServed sends n requests and returns the versions that answered.
func (f *fixture) versionsServed(n int) map[string]int {
	f.t.Helper()
	seen := map[string]int{}
	for range n {
		body := f.mustGet("/")
		v, _, _ := strings.Cut(strings.TrimPrefix(body, "version="), " ")
		seen[v]++
	}
	return seen
}

// waitFor polls cond every few milliseconds until it holds or timeout
// passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	st, err := readProcStat(pid)
	return err == nil && st.State != "Z" && st.State != "X"
}

// events collects progress events.
type events struct {
	mu  sync.Mutex
	all []slipway.ProgressEvent
}

func (e *events) add(ev slipway.ProgressEvent) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) list() []slipway.ProgressEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]slipway.ProgressEvent(nil), e.all...)
}

func (e *events) reset() {
	e.mu.Lock()
	e.all = nil
	e.mu.Unlock()
}

// find returns the index of the first event of type typ whose message
// contains substr, -1 if none.
func (e *events) find(typ, substr string) int {
	for i, ev := range e.list() {
		if ev.Type == typ && strings.Contains(ev.Message, substr) {
			return i
		}
	}
	return -1
}

func (e *events) String() string {
	var b strings.Builder
	for _, ev := range e.list() {
		fmt.Fprintf(&b, "  %-8s %-8s %s\n", ev.Type, ev.Dyno, ev.Message)
	}
	return b.String()
}
