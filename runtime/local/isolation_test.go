package local

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/isotest"
	"github.com/slipway/slipway/internal/testslug"
	"github.com/slipway/slipway/runtime/local/dynoinit"
)

// isolatedFixture is a fixture whose dynos run isolated, as the app's uid
// 201234 (202345 for a second app), with small limits. It skips, saying
// why, where isolation cannot run; in CI (which runs as root) it fails
// instead, so the suite cannot pass without testing isolation.
func isolatedFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	isotest.Need(t)
	var mu sync.Mutex // dynos that start together ask at once
	uids := map[string]int{}
	return newFixture(t, func(c *Config) {
		c.Isolation = Isolation{
			Enabled: true, Subnet: "10.213.0.0/16", MemoryBytes: 96 << 20, CPU: 1, Pids: 64,
			AppUID: func(appID string) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				if _, ok := uids[appID]; !ok {
					uids[appID] = 201234 + 1111*len(uids)
				}
				return uids[appID], nil
			},
		}
		if mod != nil {
			mod(c)
		}
	})
}

func TestIsolation_DynoSeesOnlyItself(t *testing.T) {
	f := isolatedFixture(t, nil)
	d := f.desired(1, testslug.UnpackedSlug(t, procfile), web(1))
	d.Config = map[string]string{"OWN_SECRET": "mine"}
	f.mustDeploy(d)

	hostLn, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	_, hostPort, _ := net.SplitHostPort(hostLn.Addr().String())
	dynos := readRecords(f.rt.state.path, f.rt.log)
	if len(dynos) != 1 || dynos[0].NetHost == "" {
		t.Fatalf("dynos.json = %+v, want one isolated dyno", dynos)
	}

	for _, tt := range []struct {
		path, wantBody string
		wantCode       int
	}{
		{"/probe/whoami", "uid=201234 gid=201234", 200},
		{"/env/HOME", "/app", 200},
		{"/env/PORT", "5000", 200},
		{"/env/OWN_SECRET", "mine", 200},
		{"/probe/write?path=/app/note.txt", "written", 200},
		{"/probe/write?path=/tmp/note.txt", "written", 200},
		{"/probe/write?path=/etc/owned", "read-only file system", 403},
		{"/probe/write?path=/usr/bin/owned", "read-only file system", 403},
		{"/probe/read?path=" + f.rt.cfg.DataDir + "/dynos.json", "no such file or directory", 403},
		{"/probe/read?path=" + d.Slug.Dir + "/Procfile", "no such file or directory", 403},
		{"/probe/read?path=/etc/shadow", "permission denied", 403},
		{"/probe/dial?addr=127.0.0.1:5432", "connection refused", 403},
		{"/probe/dial?addr=" + dynos[0].NetHost + ":" + hostPort, "", 403},
		{"/probe/dial?addr=" + f.srv.Listener.Addr().String(), "connection refused", 403},
	} {
		code, body, err := f.get(tt.path)
		if err != nil || code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
			t.Errorf("GET %s = %d %q, %v; want %d with %q", tt.path, code, body, err, tt.wantCode, tt.wantBody)
		}
	}
	// /proc holds the dyno's own processes only: its init, the shell and
	// the app, none with the server's environment.
	_, procs, _ := f.get("/probe/procs")
	if n := strings.Count(procs, "pid "); n > 3 || strings.Contains(procs, "GOPATH") || strings.Contains(procs, "SLIPWAY_TEST") {
		t.Errorf("/proc in the dyno shows %d processes:\n%s", n, procs)
	}
}

// An isolated dyno's command starts with exactly its config vars, PORT,
// DYNO, HOME=/app, the fixed PATH and SLIPWAY_RELEASE_VERSION.
func TestIsolation_EnvironmentIsExact(t *testing.T) {
	deployAndCheckEnv(t, isolatedFixture(t, nil), "/app")
}

func TestIsolation_ReleasePhaseRunsAsTheAppsUID(t *testing.T) {
	f := isolatedFixture(t, nil)
	slug := testslug.UnpackedSlug(t, "release: echo phase uid=$(id -u) home=$HOME; ls /proc | grep -c '^[0-9]'\n"+procfile)
	f.mustDeploy(f.desired(1, slug, web(1)))
	log := f.events.String()
	if !strings.Contains(log, "release.1: phase uid=201234 home=/app") {
		t.Errorf("release phase output = %q, want it to run as uid 201234 in /app", log)
	}
	m := regexp.MustCompile(`release\.1: (\d+)\b`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("release phase printed no process count: %q", log)
	}
	if n, _ := strconv.Atoi(m[1]); n > 5 {
		t.Errorf("release phase sees %v processes, want only its own (init, shell, ls, grep): %q", m, log)
	}
}

// The dyno's command runs under RLIMIT_NPROC (soft and hard) of
// --dyno-pids × the most dynos of one type, which the init sets for the
// app's uid.
func TestIsolation_CommandHasTheAppsNprocLimit(t *testing.T) {
	f := isolatedFixture(t, nil)
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(1)))
	want := strconv.FormatInt(f.rt.cfg.Isolation.Pids*slipway.MaxQuantity, 10)
	limits := f.mustGet("/probe/read?path=/proc/self/limits")
	for _, line := range strings.Split(limits, "\n") {
		if rest, ok := strings.CutPrefix(line, "Max processes"); ok {
			if got := strings.Fields(rest); len(got) < 2 || got[0] != want || got[1] != want {
				t.Errorf("the app's %q, want soft and hard limits of %s", line, want)
			}
			return
		}
	}
	t.Errorf("no Max processes in the app's /proc/self/limits:\n%s", limits)
}

// Each isolated dyno has its own /tmp: a file one dyno writes there is in
// neither the other dyno's /tmp nor the host's, and a file in the host's
// /tmp is in no dyno's.
func TestIsolation_TmpIsPrivate(t *testing.T) {
	f := isolatedFixture(t, nil)
	host, err := os.CreateTemp("/tmp", "slipway-host-")
	if err != nil {
		t.Fatal(err)
	}
	host.Close()
	t.Cleanup(func() { os.Remove(host.Name()) })
	if err := os.Chmod(host.Name(), 0o644); err != nil { // readable by the dyno's uid, were it there
		t.Fatal(err)
	}
	mark := "/tmp/slipway-" + f.app.Name + "-"
	t.Cleanup(func() { os.Remove(mark + "web.1"); os.Remove(mark + "web.2") }) // were /tmp the host's
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, "web: echo mine > "+mark+"$DYNO; exec ./testapp\n"), web(2)))
	addrs := f.dynoAddrs()
	if len(addrs) != 2 {
		t.Fatalf("dynos at %v, want two", addrs)
	}
	for name, addr := range addrs {
		for other := range addrs {
			code, body, err := f.getFrom(addr, "/probe/read?path="+mark+other)
			if other == name && (err != nil || code != 200 || body != "mine\n") {
				t.Errorf("%s reads its own %s%s: %d %q, %v; want %q", name, mark, other, code, body, err, "mine\n")
			}
			if other != name && (err != nil || code != 403 || !strings.Contains(body, "no such file or directory")) {
				t.Errorf("%s reads %s's %s%s: %d %q, %v; want no such file", name, other, mark, other, code, body, err)
			}
		}
		if _, err := os.Stat(mark + name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the host's /tmp holds what %s wrote in its own: %v", name, err)
		}
		if code, body, err := f.getFrom(addr, "/probe/read?path="+host.Name()); err != nil || code != 403 || !strings.Contains(body, "no such file or directory") {
			t.Errorf("%s reads the host's %s: %d %q, %v; want no such file", name, host.Name(), code, body, err)
		}
	}
}

// SIGINT to a dyno's init reaches the command: its trap runs, and how it
// exits is how the dyno ended. Isolated or not, the init forwards it.
func TestIsolation_InitForwardsSIGINT(t *testing.T) {
	// A crashed dyno waits to restart, so that its state can be read.
	wait := func(c *Config) { c.CrashBackoffBase, c.CrashBackoffMax = time.Hour, time.Hour }
	for _, tt := range []struct {
		name    string
		fixture func(t *testing.T) *fixture
	}{
		{"unisolated", func(t *testing.T) *fixture { return newFixture(t, wait) }},
		{"isolated", func(t *testing.T) *fixture { return isolatedFixture(t, wait) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.fixture(t)
			slug := testslug.UnpackedSlug(t, "worker: trap 'echo got SIGINT; exit 3' INT; echo trap set; sleep 60 & wait\n")
			f.mustDeploy(f.desired(1, slug, formation("worker", 1)))
			logFile := filepath.Join(f.rt.cfg.DataDir, "logs", f.app.ID, "worker.1.log")
			said := func(line string) bool { // the command's output, not the header quoting it
				b, _ := os.ReadFile(logFile)
				return strings.Contains(string(b), " "+dynoinit.SourceApp+" "+line+"\n")
			}
			// A signal before the shell has set its trap would end it by
			// SIGINT's default action, not through the trap.
			waitFor(t, 5*time.Second, "the worker to set its trap", func() bool { return said("trap set") })
			if err := syscall.Kill(f.pids()["worker.1"], syscall.SIGINT); err != nil {
				t.Fatalf("SIGINT to the init: %v", err)
			}
			waitFor(t, 5*time.Second, "the worker to end", func() bool {
				ds := f.dynos()
				return len(ds) == 1 && ds[0].State == slipway.DynoCrashed
			})
			if ds := f.dynos(); !strings.HasPrefix(ds[0].AdditionalInfo, "exited with status 3") || !said("got SIGINT") {
				b, _ := os.ReadFile(logFile)
				t.Errorf("after SIGINT to the init the worker %q; its log:\n%s\nwant its trap to run and exit 3", ds[0].AdditionalInfo, b)
			}
		})
	}
}

// The init is PID 1 of an isolated dyno: a process orphaned in it becomes
// the init's child, and once it exits the init reaps it (no zombie stays).
func TestIsolation_InitReapsOrphans(t *testing.T) {
	f := isolatedFixture(t, nil)
	// The subshell starts the loop in the background and exits: the loop
	// is orphaned, and runs until the test lets it end.
	slug := testslug.UnpackedSlug(t, "web: (until [ -e /tmp/orphan-may-exit ]; do sleep 0.02; done &); exec ./testapp\n")
	f.mustDeploy(f.desired(1, slug, web(1)))
	init := f.pids()["web.1"]
	orphan := 0
	waitFor(t, 5*time.Second, "the orphaned loop to become the init's child", func() bool {
		for _, st := range children(t, init) {
			if st.Comm == "sh" && st.State != "Z" {
				orphan = st.PID
				return true
			}
		}
		return false
	})
	f.mustGet("/probe/write?path=/tmp/orphan-may-exit")
	waitFor(t, 5*time.Second, "the init to reap its orphan and leave no zombie", func() bool {
		for _, st := range children(t, init) {
			if st.PID == orphan || st.State == "Z" {
				return false
			}
		}
		return true
	})
	if !alive(init) {
		t.Errorf("the init %d ended with its orphan", init)
	}
}
