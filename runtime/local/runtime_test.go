package local

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/testslug"
)

const procfile = "web: ./testapp\nworker: ./testapp --worker\n"

func TestDeploy_ReplacesRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	slug := testslug.UnpackedSlug(t, procfile)
	f.mustDeploy(f.desired(1, slug, web(2)))
	if got := f.versionsServed(6); got["1"] != 6 {
		t.Fatalf("after v1, versions served = %v, want only 1", got)
	}
	dynos := map[string]bool{}
	for range 4 {
		dynos[strings.TrimSpace(strings.SplitN(f.mustGet("/"), "dyno=", 2)[1])] = true
	}
	if len(dynos) != 2 {
		t.Errorf("router used dynos %v, want both web.1 and web.2", dynos)
	}
	oldPids := f.pids()

	f.events.reset()
	f.mustDeploy(f.desired(2, slug, web(2)))
	if got := f.versionsServed(6); got["2"] != 6 {
		t.Fatalf("after v2, versions served = %v, want only 2", got)
	}
	for name, pid := range oldPids {
		if alive(pid) {
			t.Errorf("old %s (pid %d) still runs", name, pid)
		}
	}
	ds := f.dynos()
	if len(ds) != 2 {
		t.Fatalf("Dynos = %+v, want 2", ds)
	}
	for _, d := range ds {
		if d.State != slipway.DynoRunning || !d.Ready || d.Release.Version != 2 || d.Type != "web" || d.Command != "./testapp" {
			t.Errorf("dyno %+v, want running, ready, v2", d)
		}
	}
	// Every step is reported, in rolling order: the first new dyno is
	// routed before the first old one is drained.
	routed, drained := f.events.find(slipway.EventRouted, "web.3"), f.events.find(slipway.EventDrained, "web.1")
	for _, want := range []struct{ typ, msg string }{
		{slipway.EventStarted, "web.3 started on v2"},
		{slipway.EventHealthy, "web.3 is healthy"},
		{slipway.EventRouted, "web.3"},
		{slipway.EventDrained, "web.1 is out of the router"},
		{slipway.EventStopped, "web.1 stopped (v1)"},
		{slipway.EventDone, "web: 2/2 on v2"},
	} {
		if f.events.find(want.typ, want.msg) < 0 {
			t.Errorf("no %s event with %q in\n%s", want.typ, want.msg, f.events)
		}
	}
	if routed < 0 || drained < 0 || routed > drained {
		t.Errorf("web.3 routed at %d, web.1 drained at %d; want routed first\n%s", routed, drained, f.events)
	}
}

func TestDeploy_CrashAtStart_KeepsOldDynos(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(2)))
	before := f.dynos()

	err := f.deploy(f.desired(2, testslug.UnpackedSlug(t, "web: ./testapp --crash\n"), web(2)))
	if err == nil {
		t.Fatal("Deploy of a crashing slug succeeded")
	}
	if slipway.ErrorCode(err) != slipway.EUnprocessable {
		t.Errorf("code = %q, want %q", slipway.ErrorCode(err), slipway.EUnprocessable)
	}
	msg := slipway.ErrorMessage(err)
	for _, want := range []string{"web.3 exited with status 1 before it was healthy", "crashing at start as asked", "back on v1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	// The cause ends with the dyno's last log line, which has no full
	// stop of its own: the joining puts one.
	if !strings.HasSuffix(msg, "(dyno web.3). The app is back on v1.") {
		t.Errorf("error %q does not end in \"(dyno web.3). The app is back on v1.\"", msg)
	}
	after := f.dynos()
	if len(after) != 2 || after[0].ID != before[0].ID || after[1].ID != before[1].ID {
		t.Errorf("dynos changed:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := f.versionsServed(4); got["1"] != 4 {
		t.Errorf("versions served = %v, want only 1", got)
	}
	if f.events.find(slipway.EventFailed, "exited with status 1") < 0 {
		t.Errorf("no failed event:\n%s", f.events)
	}
}

func TestDeploy_NeverHealthy_FailsAfterDeadline(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.HealthyDeadline = time.Second })
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(1)))
	unhealthy := slipway.Formation{Type: "web", Quantity: 1, Healthcheck: "/health"}
	start := time.Now()
	err := f.deploy(f.desired(2, testslug.UnpackedSlug(t, "web: ./testapp --unhealthy\n"), unhealthy))
	if err == nil {
		t.Fatal("Deploy of an unhealthy slug succeeded")
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("failed after %s, before the healthy deadline", took)
	}
	if msg := slipway.ErrorMessage(err); !strings.Contains(msg, "web.2 did not pass its health check (GET /health) within 1s") || !strings.Contains(msg, "500") {
		t.Errorf("error = %q", msg)
	}
	if got := f.versionsServed(3); got["1"] != 3 {
		t.Errorf("versions served = %v, want only 1", got)
	}

	err = f.deploy(f.desired(3, testslug.UnpackedSlug(t, "web: ./testapp --never-listen\n"), web(1)))
	if msg := slipway.ErrorMessage(err); !strings.Contains(msg, "web.2 did not accept connections on its port within 1s") {
		t.Errorf("error = %q", msg)
	}
	if ds := f.dynos(); len(ds) != 1 || ds[0].Release.Version != 1 {
		t.Errorf("dynos = %+v, want web.1 on v1", ds)
	}
}

// A rollout that fails after one old dyno was already replaced puts v1 back
// on it: with surge 1, old web.1–3 and new dynos named web.4, then web.1
// (the lowest free number), the v2 slug crashes only as web.1.
func TestDeploy_AutoRevertMidRollout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(3)))
	err := f.deploy(f.desired(2, testslug.UnpackedSlug(t, "web: ./testapp --crash-if-dyno=web.1\n"), web(3)))
	if err == nil {
		t.Fatal("Deploy succeeded")
	}
	if msg := slipway.ErrorMessage(err); !strings.Contains(msg, "web.1 exited with status 1 before it was healthy") || !strings.Contains(msg, "back on v1") {
		t.Errorf("error = %q", msg)
	}
	// v2 really replaced one dyno before it failed.
	if f.events.find(slipway.EventStopped, "(v1)") < 0 || f.events.find(slipway.EventInfo, "reverting to v1") < 0 {
		t.Fatalf("events do not show a replaced dyno and a revert:\n%s", f.events)
	}
	ds := f.dynos()
	if len(ds) != 3 {
		t.Fatalf("dynos = %+v, want 3", ds)
	}
	for _, d := range ds {
		if d.Release.Version != 1 || d.State != slipway.DynoRunning || !d.Ready {
			t.Errorf("dyno %s: v%d %s ready=%v, want v1 running ready", d.Name, d.Release.Version, d.State, d.Ready)
		}
	}
	if got := f.versionsServed(6); got["1"] != 6 {
		t.Errorf("versions served = %v, want only 1", got)
	}
}

func TestDeploy_ScaleWithSameRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	slug := testslug.UnpackedSlug(t, procfile)
	f.mustDeploy(f.desired(1, slug, web(1)))
	first := f.dynos()[0]

	f.mustDeploy(f.desired(1, slug, web(3), formation("worker", 1)))
	ds := f.dynos()
	if len(ds) != 4 || ds[0].ID != first.ID {
		t.Fatalf("after scale up: %+v, want web.1 kept and 3 new", ds)
	}
	names := []string{ds[0].Name, ds[1].Name, ds[2].Name, ds[3].Name}
	if strings.Join(names, ",") != "web.1,web.2,web.3,worker.1" {
		t.Errorf("names = %v", names)
	}
	pids := f.pids()

	f.mustDeploy(f.desired(1, slug, web(1)))
	ds = f.dynos()
	if len(ds) != 1 || ds[0].ID != first.ID {
		t.Fatalf("after scale down: %+v, want only the first web.1", ds)
	}
	for _, name := range []string{"web.2", "web.3", "worker.1"} {
		if alive(pids[name]) {
			t.Errorf("%s (pid %d) still runs", name, pids[name])
		}
	}
	if got := f.versionsServed(2); got["1"] != 2 {
		t.Errorf("versions served = %v", got)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	if err := f.rt.Restart(ctx, f.app.ID, "", nil); slipway.ErrorCode(err) != slipway.ENotFound {
		t.Errorf("Restart of an app never deployed: %v, want not_found", err)
	}
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(2), formation("worker", 1)))
	before := f.dynos()

	if err := f.rt.Restart(ctx, f.app.Key, "web.2", nil); err != nil {
		t.Fatalf("Restart web.2: %v", err)
	}
	after := f.dynos()
	if len(after) != 3 || after[0].ID != before[0].ID || after[1].ID == before[1].ID || after[2].ID != before[2].ID {
		t.Errorf("restart of web.2 changed\nbefore %+v\nafter  %+v", before, after)
	}

	if err := f.rt.Restart(ctx, f.app.ID, "", f.events.add); err != nil {
		t.Fatalf("Restart all: %v", err)
	}
	again := f.dynos()
	if len(again) != 3 {
		t.Fatalf("after restart all: %+v", again)
	}
	for i := range again {
		if again[i].ID == after[i].ID || again[i].Release.Version != 1 {
			t.Errorf("dyno %s was not replaced (or changed release): %+v", again[i].Name, again[i])
		}
	}
	if err := f.rt.Restart(ctx, f.app.ID, "web.9", nil); slipway.ErrorCode(err) != slipway.ENotFound {
		t.Errorf("Restart of an unknown dyno: %v, want not_found", err)
	}
}

// Restart of a process type replaces every dyno of that type, rolling,
// and no other; the dynos' names are their instance within the type.
func TestRestart_Type(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := context.Background()
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(2), formation("worker", 1)))
	before := f.dynos()
	var inst []string
	for _, d := range before {
		inst = append(inst, d.Type+"."+d.Instance)
	}
	if strings.Join(inst, ",") != "web.1,web.2,worker.1" {
		t.Fatalf("type.instance = %v", inst)
	}
	if err := f.rt.Restart(ctx, f.app.ID, "web", f.events.add); err != nil {
		t.Fatalf("Restart web: %v", err)
	}
	after := f.dynos()
	if len(after) != 3 || after[0].ID == before[0].ID || after[1].ID == before[1].ID || after[2].ID != before[2].ID {
		t.Errorf("restart of web changed\nbefore %+v\nafter  %+v", before, after)
	}
	if err := f.rt.Restart(ctx, f.app.ID, "worker.1", nil); err != nil {
		t.Fatalf("Restart worker.1: %v", err)
	}
	if err := f.rt.Restart(ctx, f.app.ID, "clock", nil); slipway.ErrorCode(err) != slipway.ENotFound {
		t.Errorf("Restart of an unknown type: %v, want not_found", err)
	}
}

func TestDeploy_RemovedFormationTypeIsStopped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	slug := testslug.UnpackedSlug(t, procfile)
	f.mustDeploy(f.desired(1, slug, web(1), formation("worker", 2)))
	f.mustDeploy(f.desired(2, slug, web(1)))
	ds := f.dynos()
	if len(ds) != 1 || ds[0].Name != "web.1" && ds[0].Name != "web.2" || ds[0].Release.Version != 2 {
		t.Errorf("dynos = %+v, want one web dyno on v2", ds)
	}
	if f.events.find(slipway.EventDone, "worker: 0/0 on v2") < 0 {
		t.Errorf("no done event for the worker:\n%s", f.events)
	}
}

func TestDeploy_RejectsBadDesired(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	slug := testslug.UnpackedSlug(t, procfile)
	image := slipway.Slug{ID: "s1", Image: "docker://nginx:1"}
	tests := []struct {
		name     string
		d        slipway.Desired
		wantCode string
		wantMsg  string
	}{
		{"image slug", f.desired(1, image, web(1)), slipway.ENotImplemented, "kubernetes runtime"},
		{"no command", f.desired(1, slug, formation("clock", 1)), slipway.EUnprocessable, "clock has no command"},
		{"negative", f.desired(1, slug, web(-1)), slipway.EUnprocessable, "must be between 0 and 100"},
		{"twice", f.desired(1, slug, web(1), web(2)), slipway.EUnprocessable, "appears twice"},
		{"bad healthcheck", f.desired(1, slug, slipway.Formation{Type: "web", Quantity: 1, Healthcheck: "health"}), slipway.EUnprocessable, "healthcheck"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.deploy(tt.d)
			if slipway.ErrorCode(err) != tt.wantCode || !strings.Contains(slipway.ErrorMessage(err), tt.wantMsg) {
				t.Errorf("Deploy: %v, want %s mentioning %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
	if ds := f.dynos(); len(ds) != 0 {
		t.Errorf("dynos = %+v, want none", ds)
	}
}

func TestDeploy_Environment(t *testing.T) {
	t.Setenv("SLIPWAY_TOKEN", "server-secret")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "server-secret")
	f := newFixture(t, nil)
	d := f.desired(4, testslug.UnpackedSlug(t, procfile), web(1))
	d.Config = map[string]string{"FOO": "bar baz", "PORT": "1", "DYNO": "x"}
	f.mustDeploy(d)
	for key, want := range map[string]string{
		"FOO":                     "bar baz",
		"DYNO":                    "web.1",
		"SLIPWAY_RELEASE_VERSION": "4",
		"PATH":                    "/usr/local/bin:/usr/bin:/bin",
		"HOME":                    d.Slug.Dir,
	} {
		if got := f.mustGet("/env/" + key); got != want {
			t.Errorf("$%s = %q, want %q", key, got, want)
		}
	}
	if port := f.mustGet("/env/PORT"); port == "1" || port == "" {
		t.Errorf("$PORT = %q, want the dyno's own port", port)
	}
	for _, key := range []string{"SLIPWAY_TOKEN", "AWS_SECRET_ACCESS_KEY", "GREETING", "LANG", "SLIPWAY_RELEASE_ID", "SLIPWAY_APP"} {
		if code, body, _ := f.get("/env/" + key); code != 404 {
			t.Errorf("$%s is set in the dyno: %d %q", key, code, body)
		}
	}
	logFile := filepath.Join(f.rt.cfg.DataDir, "logs", f.app.ID, "web.1.log")
	b, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(b), "web.1 v4 (release "+d.Release.ID+")") || !strings.Contains(string(b), "testapp: web.1 v4 listening") {
		t.Errorf("log %s = %q, %v", logFile, b, err)
	}
}

// The dyno's command starts with exactly its config vars, PORT, DYNO, HOME
// (the slug's folder), the fixed PATH and SLIPWAY_RELEASE_VERSION.
func TestDeploy_EnvironmentIsExact(t *testing.T) {
	deployAndCheckEnv(t, newFixture(t, nil), "")
}

// A non-web dyno is healthy once its command, not its init, has been up
// MinUptime: when Deploy returns, the command has run (the init's own
// start can take longer than a short MinUptime on a busy host, and the
// release then succeeded before the command had run at all).
func TestDeploy_WorkerUptimeCountsFromItsCommand(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.MinUptime = 250 * time.Millisecond })
	d := f.desired(1, testslug.UnpackedSlug(t, "worker: : > started; exec sleep 60\n"), formation("worker", 1))
	f.mustDeploy(d)
	if _, err := os.Stat(filepath.Join(d.Slug.Dir, "started")); err != nil {
		t.Fatalf("Deploy returned before the worker's command ran: %v", err)
	}
}

// A config var PATH or HOME replaces the runtime's default, as on Heroku:
// the command gets each once, with the config's value.
func TestDeploy_ConfigPathAndHomeReplaceTheDefaults(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	d := f.desired(2, testslug.UnpackedSlug(t, envProcfile), web(1))
	d.Config = map[string]string{"PATH": "/app/bin:/usr/bin:/bin", "HOME": "/tmp"}
	f.mustDeploy(d)
	var paths, homes []string
	for _, kv := range strings.Split(f.mustGet("/probe/read?path=environ"), "\x00") {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			paths = append(paths, v)
		}
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			homes = append(homes, v)
		}
	}
	if !slices.Equal(paths, []string{"/app/bin:/usr/bin:/bin"}) || !slices.Equal(homes, []string{"/tmp"}) {
		t.Errorf("PATH %q and HOME %q in the command's environment, want each once with the config's value", paths, homes)
	}
}

// envProcfile's web command saves the environment it was started with (the
// shell's own, as the init handed it over) to ./environ, then runs the app.
// The shell adds what any POSIX shell sets itself (PWD) to what it runs.
const envProcfile = "web: cat /proc/$$/environ > environ; exec ./testapp\n"

// deployAndCheckEnv deploys release 4 of envProcfile to f with config vars
// (reserved keys among them, which the runtime drops) while the server's
// environment holds variables of the test's own, and checks that the
// dyno's command started with exactly the config vars, PORT, DYNO, HOME
// (home, or the slug's folder when empty), the fixed PATH and
// SLIPWAY_RELEASE_VERSION.
func deployAndCheckEnv(t *testing.T, f *fixture, home string) {
	t.Helper()
	t.Setenv("SLIPWAY_ENV_TEST_SERVER_ONLY", "must not reach a dyno")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("TERM", "xterm")
	d := f.desired(4, testslug.UnpackedSlug(t, envProcfile), web(1))
	d.Config = map[string]string{"FOO": "bar baz", "EMPTY": "", "PORT": "1", "DYNO": "x", "SLIPWAY_APP": "y"}
	f.mustDeploy(d)
	if home == "" {
		home = d.Slug.Dir
	}
	recs := readRecords(f.rt.state.path, f.rt.log)
	if len(recs) != 1 || recs[0].Port == 0 {
		t.Fatalf("dynos.json = %+v, want one dyno with a port", recs)
	}
	want := []string{
		"FOO=bar baz", "EMPTY=", "PORT=" + strconv.Itoa(recs[0].Port), "DYNO=web.1", "HOME=" + home,
		"PATH=/usr/local/bin:/usr/bin:/bin", "SLIPWAY_RELEASE_VERSION=4",
	}
	got := strings.Split(strings.TrimSuffix(f.mustGet("/probe/read?path=environ"), "\x00"), "\x00")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the dyno's command started with\n  %q\nwant exactly\n  %q", got, want)
	}
}

func TestReleasePhase(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	once := filepath.Join(t.TempDir(), "once")
	slug := testslug.UnpackedSlug(t, "release: ./testapp --release-task --once-file="+once+"\n"+procfile)
	f.mustDeploy(f.desired(1, slug, web(1), formation("release", 1)))
	b, err := os.ReadFile(once)
	if err != nil || string(b) != "release v1 port= dyno=release.1\n" {
		t.Fatalf("once file = %q, %v; want one line from release.1 without PORT", b, err)
	}
	ran, started := f.events.find(slipway.EventInfo, "release.1: testapp: release task for v1"), f.events.find(slipway.EventStarted, "web.1")
	if ran < 0 || started < 0 || ran > started {
		t.Errorf("release output at %d, first dyno started at %d; want release first\n%s", ran, started, f.events)
	}
	for _, d := range f.dynos() {
		if d.Type != "web" {
			t.Errorf("release ran as a dyno: %+v", d)
		}
	}
	// Scaling the same release does not run the release phase again.
	f.mustDeploy(f.desired(1, slug, web(2)))
	if b, _ := os.ReadFile(once); strings.Count(string(b), "\n") != 1 {
		t.Errorf("once file after scaling = %q, want one line", b)
	}

	before := f.dynos()
	failing := testslug.UnpackedSlug(t, "release: ./testapp --release-task --fail\n"+procfile)
	err = f.deploy(f.desired(2, failing, web(2)))
	if msg := slipway.ErrorMessage(err); !strings.Contains(msg, "Release phase failed: the release command exited with status 3: testapp: release task failing as asked") {
		t.Errorf("error = %q", msg)
	}
	after := f.dynos()
	if len(after) != 2 || after[0].ID != before[0].ID || after[1].ID != before[1].ID {
		t.Errorf("dynos changed by a failed release phase:\nbefore %+v\nafter  %+v", before, after)
	}
}

// A server restart deploys the current release again; its release phase
// does not run again.
func TestReleasePhase_NotRepeatedAfterServerRestart(t *testing.T) {
	t.Parallel()
	once := filepath.Join(t.TempDir(), "once")
	slug := testslug.UnpackedSlug(t, "release: ./testapp --release-task --once-file="+once+"\n"+procfile)
	f := newFixture(t, nil)
	f.mustDeploy(f.desired(1, slug, web(1)))
	f.rt.Close()
	rt, err := New(f.rt.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	f.rt = rt
	f.mustDeploy(f.desired(1, slug, web(1)))
	if b, _ := os.ReadFile(once); strings.Count(string(b), "\n") != 1 {
		t.Errorf("once file = %q, want one line", b)
	}
	if f.events.find(slipway.EventInfo, "release phase: already ran for v1") < 0 {
		t.Errorf("no event says the release phase was skipped:\n%s", f.events)
	}
	f.mustDeploy(f.desired(2, slug, web(1)))
	if b, _ := os.ReadFile(once); strings.Count(string(b), "\n") != 2 {
		t.Errorf("once file = %q, want a second line for v2", b)
	}
}

func TestReleasePhase_Timeout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.ReleasePhaseTimeout = 200 * time.Millisecond })
	slug := testslug.UnpackedSlug(t, "release: ./testapp --worker\n"+procfile)
	err := f.deploy(f.desired(1, slug, web(1)))
	if msg := slipway.ErrorMessage(err); !strings.Contains(msg, "did not finish within 200ms") {
		t.Errorf("error = %q", msg)
	}
	if ds := f.dynos(); len(ds) != 0 {
		t.Errorf("dynos = %+v, want none", ds)
	}
}

func TestDeploy_CancelledContextReverts(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(1)))
	ctx, cancel := context.WithCancel(context.Background())
	slow := testslug.UnpackedSlug(t, "web: ./testapp --start-delay=10s\n")
	go func() {
		defer cancel()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if ds, _ := f.rt.Dynos(context.Background(), f.app.ID); len(ds) == 2 {
				return
			}
		}
	}()
	err := f.rt.Deploy(ctx, f.desired(2, slow, web(1)), nil)
	if !errors.Is(err, context.Canceled) || slipway.ErrorCode(err) != slipway.EUnprocessable {
		t.Errorf("Deploy: %v, want a coded error wrapping context.Canceled", err)
	}
	if ds := f.dynos(); len(ds) != 1 || ds[0].Release.Version != 1 {
		t.Errorf("dynos = %+v, want web.1 on v1", ds)
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(2)))
	pids := f.pids()
	if err := f.rt.Remove(context.Background(), f.app.ID); err != nil {
		t.Fatal(err)
	}
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s still runs", name)
		}
	}
	if code, _, _ := f.get("/"); code != 404 {
		t.Errorf("router answers %d for a removed app, want 404", code)
	}
	if ds := f.dynos(); len(ds) != 0 {
		t.Errorf("dynos = %+v", ds)
	}
	if err := f.rt.Restart(context.Background(), f.app.ID, "", nil); slipway.ErrorCode(err) != slipway.ENotFound {
		t.Errorf("Restart after Remove: %v", err)
	}
}

func TestClose_StopsEveryDyno(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, rt: rt, app: newApp(), events: &events{}}
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(2), formation("worker", 1)))
	pids := f.pids()
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	for name, pid := range pids {
		if alive(pid) {
			t.Errorf("%s still runs after Close", name)
		}
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "dynos.json"))
	if err != nil || strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("dynos.json after Close = %q, %v", b, err)
	}
	if err := f.deploy(f.desired(2, testslug.UnpackedSlug(t, procfile), web(1))); slipway.ErrorCode(err) != slipway.EConflict {
		t.Errorf("Deploy after Close: %v, want conflict", err)
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{DataDir: "/x", Surge: 1}, ""},
		{"defaults ok", Config{DataDir: "/x"}.withDefaults(), ""},
		{"no dir", Config{Surge: 1}, "DataDir"},
		{"both zero", Config{DataDir: "/x"}, "cannot both be 0"},
		{"negative surge", Config{DataDir: "/x", Surge: -1}, "negative"},
		{"negative duration", Config{DataDir: "/x", Surge: 1, DrainTimeout: -1}, "DrainTimeout"},
		{"backoff", Config{DataDir: "/x", Surge: 1, CrashBackoffBase: time.Minute, CrashBackoffMax: time.Second}, "CrashBackoffBase"},
		{"ports", Config{DataDir: "/x", Surge: 1, PortMin: 30000, PortMax: 20000}, "port range"},
		{"domain", Config{DataDir: "/x", Surge: 1, BaseDomain: "localhost:5080"}, "BaseDomain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	if c := (Config{DataDir: "/x"}).withDefaults(); c.Surge != 1 || c.MaxUnavailable != 0 || c.HealthyDeadline != time.Minute || c.BaseDomain != "localhost" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestFmtDur(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		60 * time.Second:        "60s",
		4 * time.Second:         "4s",
		300 * time.Millisecond:  "300ms",
		10 * time.Minute:        "10m",
		1500 * time.Millisecond: "1.5s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%s) = %q, want %q", d, got, want)
		}
	}
}

// Apps do not wait for each other, and Dynos answers while a Deploy runs.
func TestDeploy_AppsInParallel(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	other := &fixture{t: t, rt: f.rt, srv: f.srv, client: f.client, app: newApp(), events: &events{}}
	slow := testslug.UnpackedSlug(t, "web: ./testapp --start-delay=1s\n")
	slowDone := make(chan error, 1)
	go func() { slowDone <- f.deploy(f.desired(1, slow, web(1))) }()
	waitFor(t, 5*time.Second, "the slow dyno to start", func() bool {
		ds := f.dynos() // must not block behind the running Deploy
		return len(ds) == 1 && ds[0].State == slipway.DynoStarting
	})
	other.mustDeploy(other.desired(1, testslug.UnpackedSlug(t, procfile), web(1)))
	select {
	case err := <-slowDone:
		t.Fatalf("the slow Deploy finished (%v) before the other app's", err)
	default:
	}
	if body := other.mustGet("/"); !strings.HasPrefix(body, "version=1 dyno=web.1") {
		t.Errorf("other app answers %q", body)
	}
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
}

// Close ends every goroutine the runtime started, including the router's
// connections to dynos.
func TestClose_LeavesNoGoroutines(t *testing.T) {
	testslug.TestAppBinary(t) // build first: the build's goroutines are not ours
	before := runtime.NumGoroutine()
	rt, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, rt: rt, app: newApp(), events: &events{}}
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(2), formation("worker", 1)))
	for range 4 {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = f.app.Key + ".localhost"
		w := httptest.NewRecorder()
		rt.Router().ServeHTTP(w, req)
		if w.Code != 200 {
			t.Fatalf("router: %d %s", w.Code, w.Body)
		}
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before New, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}
