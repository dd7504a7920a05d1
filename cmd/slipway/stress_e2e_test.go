package main

// Proof under stress: kill -9 of the server in the middle of rollouts, 100
// apps with 2 dynos each and 20 releases in flight on one server, and
// secrets that never reach a log or an answer.
//
// The crash and load tests are long: they run only with SLIPWAY_STRESS=1
// (.ci/run sets it). The crash test draws its kill points from a seed that it
// logs; SLIPWAY_STRESS_SEED=<seed> replays a run. SLIPWAY_STRESS_APPS sets
// the number of apps of the load test (default 100).

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/internal/testslug"
)

// needStress skips a long test unless SLIPWAY_STRESS=1.
func needStress(t *testing.T) {
	t.Helper()
	if os.Getenv("SLIPWAY_STRESS") != "1" {
		t.Skip("long stress test: set SLIPWAY_STRESS=1 to run it (.ci/run does)")
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// ---------------------------------------------------------------------------
// Slugs and processes

// fastTarGz is a tar.gz of files (name → body; names starting with "testapp"
// are executable) compressed at gzip.BestSpeed.
func fastTarGz(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	for _, n := range names {
		mode := int64(0o644)
		if strings.HasPrefix(n, "testapp") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: mode, Size: int64(len(files[n])), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// appSlug is a slug holding the test app and the Procfile.
func appSlug(t *testing.T, procfile string) []byte {
	t.Helper()
	return testslug.TestAppSlug(t, procfile)
}

// pushArchive builds archive for app through c and returns the slug id.
func pushArchive(t *testing.T, c *client.Client, app string, archive []byte) string {
	t.Helper()
	b, err := c.CreateBuild(bg, app, client.NewBuild{URL: testslug.DataURI(archive)})
	if err != nil {
		t.Fatalf("build of %s: %v", app, err)
	}
	got, err := c.WaitBuild(bg, app, b.ID, nil)
	if err != nil {
		t.Fatalf("build of %s: %v", app, err)
	}
	if got.Status != slipway.BuildSucceeded {
		res, _ := c.BuildResult(bg, app, b.ID)
		t.Fatalf("build of %s %s: %v", app, got.Status, res.Lines)
	}
	return b.ID
}

// waitReleaseEvery polls a release every interval until it ends.
func waitReleaseEvery(c *client.Client, app, id string, interval, limit time.Duration) (*client.Release, error) {
	deadline := time.Now().Add(limit)
	for {
		r, err := c.Release(bg, app, id)
		if err == nil && slipway.ReleaseTerminal(r.Status) {
			return r, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("release %s of %s still %s after %s", id, app, r.Status, limit)
			}
			return r, err
		}
		time.Sleep(interval)
	}
}

// osProc is a process seen in /proc.
type osProc struct {
	pid           int
	exe, cwd      string
	dyno, version string // $DYNO and $SLIPWAY_RELEASE_VERSION
	rssKiB        int64
}

func (p osProc) String() string {
	return fmt.Sprintf("pid %d %s v%s (%s)", p.pid, p.dyno, p.version, p.exe)
}

// procsUnder lists the live processes whose executable (byExe) or working
// directory lies under dir: the dynos a server with that data dir started.
// dir must be absolute with symlinks resolved. Zombies are not listed (their
// exe and cwd cannot be read).
func procsUnder(dir string, byExe bool) []osProc {
	entries, _ := os.ReadDir("/proc")
	var out []osProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		base := "/proc/" + e.Name()
		exe, err1 := os.Readlink(base + "/exe")
		cwd, err2 := os.Readlink(base + "/cwd")
		if err1 != nil || err2 != nil {
			continue
		}
		path := cwd
		if byExe {
			path = exe
		}
		if !strings.HasPrefix(path, dir+"/") && !(byExe && isolatedUnder(base, exe, dir)) {
			continue
		}
		p := osProc{pid: pid, exe: exe, cwd: cwd}
		if env, err := os.ReadFile(base + "/environ"); err == nil {
			for _, kv := range strings.Split(string(env), "\x00") {
				if v, ok := strings.CutPrefix(kv, "DYNO="); ok {
					p.dyno = v
				} else if v, ok := strings.CutPrefix(kv, "SLIPWAY_RELEASE_VERSION="); ok {
					p.version = v
				}
			}
		}
		p.rssKiB = rssKiB(procfs.NewProc(pid))
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].dyno < out[j].dyno || out[i].dyno == out[j].dyno && out[i].pid < out[j].pid
	})
	return out
}

// isolatedUnder reports whether the process at /proc path base is an
// isolated dyno's test app whose overlay lives under dir: in its own mount
// namespace its executable is /app/testapp, and its mounts name the layer.
func isolatedUnder(base, exe, dir string) bool {
	if filepath.Base(exe) != "testapp" {
		return false
	}
	mi, err := os.ReadFile(base + "/mountinfo")
	return err == nil && strings.Contains(string(mi), "upperdir="+dir+"/")
}

// rssKiB is the resident memory of p in KiB, 0 when unknown.
func rssKiB(p procfs.Proc, err error) int64 {
	if err != nil {
		return 0
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0
	}
	return int64(st.VmRSS / 1024)
}

// killProcsUnder SIGKILLs what a test's server left under dir, by pid: a
// failed test must not leave dynos behind.
func killProcsUnder(t *testing.T, dir string, byExe bool) {
	for _, p := range procsUnder(dir, byExe) {
		t.Logf("cleanup: killing leftover %s", p)
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// absDir creates dir's parent and returns dir absolute with symlinks of the
// parent resolved, as /proc shows paths.
func absDir(t *testing.T, dir string) string {
	t.Helper()
	parent, err := filepath.EvalSymlinks(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(filepath.Join(parent, filepath.Base(dir)))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// ---------------------------------------------------------------------------
// Kill -9 at random points of a rollout

const crashToken = "crash-token"

// crashServer is `slipway serve` as a child process, with both URLs.
type crashServer struct {
	cmd         *exec.Cmd
	started     time.Time // when the process was started
	api, router string
	c           *client.Client
	done        chan struct{}
	mu          sync.Mutex
	out         []string // its output, for failure reports
}

var serveLine = regexp.MustCompile(`Slipway API on (http://[0-9.:]+), router on (http://[0-9.:]+) `)

// startCrashServer runs `slipway serve` on dataDir (SQLite) with short
// timeouts: a lease TTL of 2s so that a restarted server takes the app over
// from its dead predecessor within a few seconds.
func startCrashServer(t *testing.T, dataDir string) *crashServer {
	t.Helper()
	return startServerProcess(t, crashToken, "--data-dir", dataDir, "--log-level", "info", "--lease-ttl", "2s", "--healthy-deadline", "20s",
		"--drain-timeout", "1s", "--stop-grace", "2s", "--min-uptime", "300ms", "--release-deadline", "60s")
}

// startServerProcess runs `slipway serve` on loopback ports with args and
// the admin token, none of the test's own SLIPWAY_* variables, and waits
// until it listens.
func startServerProcess(t *testing.T, token string, args ...string) *crashServer {
	t.Helper()
	cmd := exec.Command(slipwayBinary(t), append([]string{"serve", "--listen", "127.0.0.1:0", "--router-listen", "127.0.0.1:0"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLIPWAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "SLIPWAY_TOKEN="+token)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &crashServer{cmd: cmd, started: started, done: make(chan struct{})}
	found := make(chan []string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.out = append(s.out, line)
			s.mu.Unlock()
			if m := serveLine.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1:]:
				default:
				}
			}
		}
	}()
	go func() { <-copied; cmd.Wait(); close(s.done) }()
	select {
	case m := <-found:
		s.api, s.router = m[0], m[1]
	case <-s.done:
		t.Fatalf("slipway serve exited before it listened:\n%s", s.output())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("slipway serve did not start within 30s")
	}
	s.c = client.New(s.api, token)
	t.Cleanup(s.stop)
	return s
}

func (s *crashServer) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.out, "\n")
}

// kill is kill -9: the server's dynos live on as orphans.
func (s *crashServer) kill() {
	s.cmd.Process.Kill()
	<-s.done
}

// stop is a graceful stop (SIGTERM): the server stops its dynos.
func (s *crashServer) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// routerGet asks the server's router for / on the app.
func (s *crashServer) routerGet(app string) (int, string) {
	req, _ := http.NewRequest("GET", s.router+"/", nil)
	req.Host = app + "-default.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// crashApp is the app every crash run deploys: two web dynos of a test app
// that takes 200ms to listen, so that a rollout has several steps worth
// interrupting (start, health, route, drain, stop, twice).
const (
	crashApp      = "crashy"
	crashProcfile = "web: ./testapp --start-delay=200ms\n"
)

// crashSetup starts a server on a fresh data dir with the app released
// once (v1, two web dynos) and returns it with its data dir and slug.
func crashSetup(t *testing.T, procfile string) (s *crashServer, dataDir, slugID string) {
	t.Helper()
	dataDir = absDir(t, filepath.Join(t.TempDir(), "data"))
	t.Cleanup(func() { killProcsUnder(t, dataDir, true) })
	s = startCrashServer(t, dataDir)
	if _, err := s.c.CreateApp(bg, crashApp, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Do(bg, "POST", "/apps/"+crashApp+"/formation", map[string]any{"type": "web", "quantity": 2}, nil); err != nil {
		t.Fatal(err)
	}
	slugID = pushArchive(t, s.c, crashApp, appSlug(t, procfile))
	r, err := s.c.CreateRelease(bg, crashApp, client.NewRelease{Slug: slugID})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = waitReleaseEvery(s.c, crashApp, r.ID, 20*time.Millisecond, 30*time.Second); err != nil || r.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v1 = %+v, %v", r, err)
	}
	return s, dataDir, slugID
}

// checkRecovered asserts what a restarted server must show once it settles:
// every release ended (succeeded, as every release here is good), versions
// 1..N without a gap, the newest one current; exactly the current release's
// two dynos run (per the API and per /proc: no orphan of the killed server);
// the router serves the current release; a graceful stop leaves no dyno.
// wantLast is the status the newest release must end with.
func checkRecovered(t *testing.T, s *crashServer, dataDir string, wantLast string) (summary string) {
	t.Helper()
	var rels []client.Release
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		rels, err = s.c.Releases(bg, crashApp)
		done := err == nil && len(rels) > 0
		for _, r := range rels {
			done = done && slipway.ReleaseTerminal(r.Status)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("releases not all terminal 30s after the restart: %s (%v)\nserver output:\n%s", relSummary(rels), err, s.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	current := 0
	for i, r := range rels {
		if r.Version != i+1 {
			t.Fatalf("versions are not contiguous: %s", relSummary(rels))
		}
		want := slipway.ReleaseSucceeded
		if i == len(rels)-1 {
			want = wantLast
		}
		if r.Status != want {
			log, _ := s.c.ReleaseLog(bg, crashApp, r.ID)
			t.Fatalf("v%d ended %s (%s), want %s; releases %s\nlog:\n%s", r.Version, r.Status, r.Error, want, relSummary(rels), strings.Join(log.Lines, "\n"))
		}
		if r.Current {
			current = r.Version
		}
	}
	if current == 0 {
		t.Fatalf("no current release: %s", relSummary(rels))
	}
	last := "the newest release had ended before the kill"
	if log, err := s.c.ReleaseLog(bg, crashApp, rels[len(rels)-1].ID); err == nil && strings.Contains(strings.Join(log.Lines, "\n"), "resumed after a server restart") {
		last = fmt.Sprintf("v%d resumed after the restart", len(rels))
	}
	// The API settles on two ready web dynos of the current release.
	var ds []client.Dyno
	why := ""
	deadline = time.Now().Add(20 * time.Second)
	for {
		var err error
		ds, err = s.c.Dynos(bg, crashApp)
		if err != nil {
			why = err.Error()
		} else if why = settledOn(current, map[string]int{"web": 2})(ds); why == "" {
			break
		}
		if time.Now().After(deadline) {
			code, body := s.routerGet(crashApp)
			t.Fatalf("dynos never settled on the current release v%d after the restart: %s\ndynos: %s\nrouter: %d %q\nreleases: %s\nserver output:\n%s",
				current, why, dynoSummary(ds), code, body, relSummary(rels), s.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// /proc agrees: the test app processes under the data dir are exactly
	// those dynos. Anything else is an orphan of the killed server.
	want := map[string]bool{}
	for _, d := range ds {
		want[fmt.Sprintf("%s.%s v%d", d.Type, d.Name, d.Release.Version)] = true
	}
	var procs []osProc
	deadline = time.Now().Add(5 * time.Second)
	for {
		procs = procsUnder(dataDir, true)
		got := map[string]bool{}
		for _, p := range procs {
			got[p.dyno+" v"+p.version] = true
		}
		if len(procs) == len(ds) && fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes under the data dir differ from the dynos of v%d: want %v, running %v", current, want, procs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The router serves the current release on every request.
	prefix := fmt.Sprintf("version=%d ", current)
	for i := 0; i < 6; i++ {
		if code, body := s.routerGet(crashApp); code != 200 || !strings.HasPrefix(body, prefix) {
			t.Fatalf("router request %d after the restart: %d %q, want 200 %q…", i, code, body, prefix)
		}
	}
	// A graceful stop leaves no dyno behind.
	s.stop()
	deadline = time.Now().Add(3 * time.Second)
	for {
		left := procsUnder(dataDir, true)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dynos still running after a graceful stop: %v", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("%s (%s); %d dynos on v%d, no orphan; router ok; none left after a graceful stop", relSummary(rels), last, len(procs), current)
}

func relSummary(rels []client.Release) string {
	var s []string
	for _, r := range rels {
		v := fmt.Sprintf("v%d:%s", r.Version, r.Status)
		if r.Current {
			v += "*"
		}
		s = append(s, v)
	}
	return strings.Join(s, " ")
}

func crashSeed(t *testing.T) uint64 {
	if v := os.Getenv("SLIPWAY_STRESS_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SLIPWAY_STRESS_SEED=%q: %v", v, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// TestStressCrash_KillDuringRollout kills the server (SIGKILL) at 10 points
// of a rollout of two web dynos, one per run, each on a fresh data dir, and
// restarts it on the same data dir. The points are drawn from a logged seed,
// one in each tenth of the rollout's measured duration so that the runs cover
// it from its start to its end.
func TestStressCrash_KillDuringRollout(t *testing.T) {
	needStress(t)
	seed := crashSeed(t)
	t.Logf("seed %d (replay with SLIPWAY_STRESS_SEED=%d)", seed, seed)
	rng := mrand.New(mrand.NewPCG(seed, 0x5ca1ab1e))
	const runs = 10
	fracs := make([]float64, runs)
	for i := range fracs {
		fracs[i] = (float64(i) + rng.Float64()) / runs
	}
	var rollout time.Duration // measured in the first run
	start := time.Now()
	for i := 0; i < runs; i++ {
		t.Run(fmt.Sprintf("kill%02d", i), func(t *testing.T) {
			runStart := time.Now()
			s, dataDir, slugID := crashSetup(t, crashProcfile)
			if rollout == 0 {
				// Calibration: one rollout left alone (v2) says how long one takes.
				t0 := time.Now()
				r, err := s.c.CreateRelease(bg, crashApp, client.NewRelease{Slug: slugID})
				if err != nil {
					t.Fatal(err)
				}
				if r, err = waitReleaseEvery(s.c, crashApp, r.ID, 10*time.Millisecond, 30*time.Second); err != nil || r.Status != slipway.ReleaseSucceeded {
					t.Fatalf("calibration release = %+v, %v", r, err)
				}
				rollout = time.Since(t0)
				t.Logf("calibration: a rollout of 2 web dynos takes %s; kills fall within it", rollout.Round(time.Millisecond))
			}
			delay := time.Duration(fracs[i] * float64(rollout))
			r, err := s.c.CreateRelease(bg, crashApp, client.NewRelease{Slug: slugID})
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay)
			s.kill()
			orphans := procsUnder(dataDir, true)
			s2 := startCrashServer(t, dataDir)
			summary := checkRecovered(t, s2, dataDir, slipway.ReleaseSucceeded)
			t.Logf("kill %d: SIGKILL %s after v%d was created (%.0f%% of the rollout); %d dynos left running by the dead server; after restart: %s (%.1fs)",
				i, delay.Round(time.Millisecond), r.Version, 100*fracs[i], len(orphans), summary, time.Since(runStart).Seconds())
		})
	}
	t.Logf("%d kill runs in %.1fs", runs, time.Since(start).Seconds())
}

// TestStressCrash_KillWhileIdle_RestartServesCurrentRelease kills the server
// when no release is in flight (the end point of a rollout) and restarts it
// at once, while the dead server's lease on the app is still valid: the
// restarted server must still place the current release on dynos again
// (its orphan clean-up stopped the old ones).
func TestStressCrash_KillWhileIdle_RestartServesCurrentRelease(t *testing.T) {
	needStress(t)
	s, dataDir, _ := crashSetup(t, crashProcfile)
	s.kill()
	s2 := startCrashServer(t, dataDir)
	t.Logf("after restart: %s", checkRecovered(t, s2, dataDir, slipway.ReleaseSucceeded))
}

// TestStressCrash_KillDuringScale_RestartServesCurrentRelease kills the
// server while it converges a formation change (web 2 → 3), which holds the
// app's lease like a release does but leaves no release pending. The
// restarted server must still place the current release on its dynos once
// the dead server's lease has expired.
func TestStressCrash_KillDuringScale_RestartServesCurrentRelease(t *testing.T) {
	needStress(t)
	s, dataDir, _ := crashSetup(t, "web: ./testapp --start-delay=1s\n")
	if _, err := s.c.UpdateFormations(bg, crashApp, []map[string]any{{"type": "web", "quantity": 3}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web.3 to start", 10*time.Second, func() bool {
		ds, _ := s.c.Dynos(bg, crashApp)
		return len(ds) == 3
	})
	s.kill()
	s2 := startCrashServer(t, dataDir)
	// The formation now says 3.
	var ds []client.Dyno
	deadline := time.Now().Add(20 * time.Second)
	for {
		ds, _ = s2.c.Dynos(bg, crashApp)
		if settledOn(1, map[string]int{"web": 3})(ds) == "" {
			break
		}
		if time.Now().After(deadline) {
			code, body := s2.routerGet(crashApp)
			t.Fatalf("20s after the restart the app still does not run its current release v1 ×3: dynos %q; router %d %q\nserver output:\n%s",
				dynoSummary(ds), code, body, s2.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := s2.routerGet(crashApp); code != 200 || !strings.HasPrefix(body, "version=1 ") {
		t.Fatalf("router after the restart: %d %q", code, body)
	}
}

// TestStressCrash_KillDuringFailingRollout_KeepsServingCurrent kills the
// server during the rollout of a release that will fail (its dynos crash
// after a second): after the restart the resumed release fails, and the
// app must be back on the current release, not left without dynos.
func TestStressCrash_KillDuringFailingRollout_KeepsServingCurrent(t *testing.T) {
	needStress(t)
	s, dataDir, slugID := crashSetup(t, "web: "+procByVersion("--start-delay=200ms", map[int]string{2: "--start-delay=1500ms --crash"})+"\n")
	r, err := s.c.CreateRelease(bg, crashApp, client.NewRelease{Slug: slugID})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "v2 pending", 10*time.Second, func() bool {
		got, _ := s.c.Release(bg, crashApp, r.ID)
		return got != nil && got.Status == slipway.ReleasePending
	})
	// Kill once a dyno of v2 has started (it crashes 1.5 s later).
	waitFor(t, "a dyno of v2 to start", 10*time.Second, func() bool {
		ds, _ := s.c.Dynos(bg, crashApp)
		for _, d := range ds {
			if d.Release.Version == 2 {
				return true
			}
		}
		return false
	})
	s.kill()
	s2 := startCrashServer(t, dataDir)
	t.Logf("after restart: %s", checkRecovered(t, s2, dataDir, slipway.ReleaseFailed))
}

// ---------------------------------------------------------------------------
// 100 apps with 2 dynos each, 20 releases in flight

// selfRSSMiB is the test process's resident memory (the server is in it).
func selfRSSMiB() float64 { return float64(rssKiB(procfs.Self())) / 1024 }

// settledGoroutines closes idle client connections and waits until the
// goroutine count stops moving (3 equal samples 50ms apart, at most 5s).
func settledGoroutines() int {
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	last, same := -1, 0
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		runtime.GC()
		n := runtime.NumGoroutine()
		if n == last {
			same++
			if same >= 3 {
				return n
			}
		} else {
			last, same = n, 0
		}
		time.Sleep(50 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

func heapMiB() float64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return float64(m.HeapInuse) / (1 << 20)
}

// loadSample is one measurement of the load test.
type loadSample struct {
	rss, heap, dynoRSS float64 // MiB
	goroutines, procs  int
}

func sampleLoad(dataDir string) loadSample {
	s := loadSample{rss: selfRSSMiB(), heap: heapMiB(), goroutines: settledGoroutines()}
	for _, p := range procsUnder(dataDir, false) {
		s.procs++
		s.dynoRSS += float64(p.rssKiB) / 1024
	}
	return s
}

// parallel runs fn(i) for i in [0,n) on width goroutines.
func parallel(n, width int, fn func(i int)) {
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < width; w++ {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// TestStressLoad_ManyAppsConcurrentReleases puts SLIPWAY_STRESS_APPS apps
// (default 100) with 2 web dynos each on one in-process server, releases
// each twice with 20 releases in flight at a time, and reports memory and
// goroutines before, during (peak) and after. Each app's slug is a Procfile
// that execs the shared test app binary by its absolute path: the API needs
// one build per app, and that keeps a push to a few hundred bytes (the
// figure for a full test-app slug is measured and logged once).
func TestStressLoad_ManyAppsConcurrentReleases(t *testing.T) {
	needStress(t)
	n := envInt(t, "SLIPWAY_STRESS_APPS", 100)
	const inflight = 20
	cfg := testConfig(t)
	cfg.HealthyDeadline = 60 * time.Second // 2 busy cores: a start may queue behind 20 others
	cfg.ReleaseDeadline = 3 * time.Minute
	cfg.DrainTimeout = time.Second
	cfg.StopGrace = 2 * time.Second
	cfg.DataDir = absDir(t, cfg.DataDir)
	// Each app's Procfile runs the one test app binary by its host path,
	// which an isolated dyno cannot see (its root holds only /usr, /etc and
	// its slug); this test measures the controller per dyno, and
	// BenchmarkRollout measures what isolation adds to a rollout.
	cfg.DynoIsolation = "off"
	dataDir := cfg.DataDir
	t.Cleanup(func() { killProcsUnder(t, dataDir, false) })
	testStart := time.Now()
	ts := startTestServer(t, cfg)
	bin := testslug.TestAppBinary(t)
	tiny := fastTarGz(t, map[string][]byte{"Procfile": []byte("web: exec " + bin + "\n")})
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("load%03d", i)
	}

	// One full slug (binary inside) for the record.
	full := appSlug(t, "web: ./testapp\n")
	ts.c.CreateApp(bg, "fullslug", "", "")
	t0 := time.Now()
	pushArchive(t, ts.c, "fullslug", full)
	fullPush := time.Since(t0)
	ts.c.DeleteApp(bg, "fullslug")

	slugs := make([]string, n)
	t0 = time.Now()
	parallel(n, inflight, func(i int) {
		if _, err := ts.c.CreateApp(bg, names[i], "", ""); err != nil {
			t.Errorf("create %s: %v", names[i], err)
			return
		}
		if err := ts.c.Do(bg, "POST", "/apps/"+names[i]+"/formation", map[string]any{"type": "web", "quantity": 2}, nil); err != nil {
			t.Errorf("formation of %s: %v", names[i], err)
			return
		}
		slugs[i] = pushArchive(t, ts.c, names[i], tiny)
	})
	if t.Failed() {
		t.FailNow()
	}
	setup := time.Since(t0)
	t.Logf("push cost: a full test-app slug (%.1f MiB gzip) %s; %d apps created and pushed (%d-byte Procfile-only slugs, %d at a time) in %s",
		float64(len(full))/(1<<20), fullPush.Round(time.Millisecond), n, len(tiny), inflight, setup.Round(time.Millisecond))

	before := sampleLoad(dataDir)

	// Peak sampler: goroutines and RSS every 100ms, dyno RSS every second.
	var peak loadSample
	var peakMu sync.Mutex
	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-stopSampler:
				return
			case <-tick.C:
			}
			g, rss := runtime.NumGoroutine(), selfRSSMiB()
			peakMu.Lock()
			peak.goroutines = max(peak.goroutines, g)
			peak.rss = max(peak.rss, rss)
			peakMu.Unlock()
			if k%10 == 0 {
				var sum float64
				ps := procsUnder(dataDir, false)
				for _, p := range ps {
					sum += float64(p.rssKiB) / 1024
				}
				peakMu.Lock()
				peak.dynoRSS = max(peak.dynoRSS, sum)
				peak.procs = max(peak.procs, len(ps))
				peakMu.Unlock()
			}
		}
	}()

	// Two waves: every app's v1 (2 new dynos), then every app's v2 (a
	// rolling replacement of both), 20 releases in flight at a time.
	var durMu sync.Mutex
	var durs []time.Duration
	var maxInflight, nowInflight atomic.Int64
	wave := func(version int) time.Duration {
		start := time.Now()
		parallel(n, inflight, func(i int) {
			k := nowInflight.Add(1)
			defer nowInflight.Add(-1)
			for {
				m := maxInflight.Load()
				if k <= m || maxInflight.CompareAndSwap(m, k) {
					break
				}
			}
			t0 := time.Now()
			r, err := ts.c.CreateRelease(bg, names[i], client.NewRelease{Slug: slugs[i]})
			if err != nil {
				t.Errorf("release of %s: %v", names[i], err)
				return
			}
			r, err = waitReleaseEvery(ts.c, names[i], r.ID, 100*time.Millisecond, 3*time.Minute)
			if err != nil {
				t.Errorf("release of %s: %v", names[i], err)
				return
			}
			if r.Status != slipway.ReleaseSucceeded || r.Version != version {
				log, _ := ts.c.ReleaseLog(bg, names[i], r.ID)
				t.Errorf("%s v%d ended %s (%s), want v%d succeeded; log:\n%s", names[i], r.Version, r.Status, r.Error, version, strings.Join(log.Lines, "\n"))
			}
			durMu.Lock()
			durs = append(durs, time.Since(t0))
			durMu.Unlock()
		})
		return time.Since(start)
	}
	wave1 := wave(1)
	mid := sampleLoad(dataDir)
	wave2 := wave(2)
	close(stopSampler)
	<-samplerDone
	after := sampleLoad(dataDir)
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	pct := func(p float64) time.Duration {
		if len(durs) == 0 {
			return 0
		}
		return durs[min(len(durs)-1, int(p*float64(len(durs))))].Round(time.Millisecond)
	}

	// Every app serves v2 through the router.
	bad := 0
	for _, name := range names {
		if code, body := ts.get(t, name+"-default", "/"); code != 200 || !strings.HasPrefix(body, "version=2 ") {
			if bad++; bad <= 5 {
				t.Errorf("router for %s: %d %q", name, code, body)
			}
		}
	}

	// Remove every app; all dynos stop and goroutines return to the baseline.
	t0 = time.Now()
	parallel(n, inflight, func(i int) {
		if err := ts.c.DeleteApp(bg, names[i]); err != nil {
			t.Errorf("delete %s: %v", names[i], err)
		}
	})
	removal := time.Since(t0)
	waitFor(t, "every dyno process to exit", 30*time.Second, func() bool { return len(procsUnder(dataDir, false)) == 0 })
	removed := sampleLoad(dataDir)

	dynos := 2 * n
	perDyno := float64(mid.goroutines-before.goroutines) / float64(dynos)
	t.Logf("load: %d apps × 2 web dynos, %d releases in %d-wide waves (max %d in flight): wave v1 %.1fs, wave v2 %.1fs; release p50 %s p90 %s max %s; removal %.1fs; whole test %.1fs",
		n, len(durs), inflight, maxInflight.Load(), wave1.Seconds(), wave2.Seconds(), pct(0.5), pct(0.9), pct(1), removal.Seconds(), time.Since(testStart).Seconds())
	t.Logf("%-26s %10s %10s %10s %10s %10s", "", "before", "after v1", "peak", "after v2", "removed")
	t.Logf("%-26s %10.0f %10.0f %10.0f %10.0f %10.0f", "server RSS MiB (test proc)", before.rss, mid.rss, peak.rss, after.rss, removed.rss)
	t.Logf("%-26s %10.1f %10.1f %10s %10.1f %10.1f", "server heap in use MiB", before.heap, mid.heap, "-", after.heap, removed.heap)
	t.Logf("%-26s %10d %10d %10d %10d %10d", "goroutines", before.goroutines, mid.goroutines, peak.goroutines, after.goroutines, removed.goroutines)
	t.Logf("%-26s %10d %10d %10d %10d %10d", "dyno processes", before.procs, mid.procs, peak.procs, after.procs, removed.procs)
	t.Logf("%-26s %10.0f %10.0f %10.0f %10.0f %10.0f", "dyno RSS sum MiB", before.dynoRSS, mid.dynoRSS, peak.dynoRSS, after.dynoRSS, removed.dynoRSS)
	t.Logf("goroutines per running dyno: %.2f ((after v1 − before) / %d dynos)", perDyno, dynos)

	// Bounded: a fixed cost per running dyno (supervisor, output copier,
	// process waiter = 3), nothing per release: the second wave of releases
	// leaves the count where the first left it, and removing the apps brings
	// it back to the baseline.
	if perDyno > 3.5 {
		t.Errorf("%.2f goroutines per running dyno, want ≤ 3.5 (supervisor, output copier, waiter)", perDyno)
	}
	if d := after.goroutines - mid.goroutines; d > 10 || d < -10 {
		t.Errorf("a second release of every app changed the goroutine count by %d (%d → %d): something is kept per release", d, mid.goroutines, after.goroutines)
	}
	if d := removed.goroutines - before.goroutines; d > 10 {
		t.Errorf("%d goroutines more after removing every app than before (%d → %d): leak", d, before.goroutines, removed.goroutines)
	}
	if after.heap > mid.heap+32 {
		t.Errorf("heap in use grew from %.1f to %.1f MiB over the second wave of releases", mid.heap, after.heap)
	}
	if after.procs != dynos || mid.procs != dynos {
		t.Errorf("dyno processes after the waves: %d and %d, want %d", mid.procs, after.procs, dynos)
	}
}

// ---------------------------------------------------------------------------
// Secrets never appear in logs

// logCapture keeps everything the server writes and forwards it to the
// test log.
type logCapture struct {
	t  *testing.T
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.b.Write(p)
	c.mu.Unlock()
	c.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (c *logCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// exchange is one API request and its answer, as recorded.
type exchange struct {
	method, url, auth string
	reqBody, respBody string
	status            int
}

// recorder is an http.RoundTripper that keeps every exchange.
type recorder struct {
	mu  sync.Mutex
	all []exchange
}

func (rc *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	rc.mu.Lock()
	rc.all = append(rc.all, exchange{method: req.Method, url: req.URL.String(), auth: req.Header.Get("Authorization"),
		reqBody: string(body), respBody: string(rb), status: resp.StatusCode})
	rc.mu.Unlock()
	return resp, nil
}

func (rc *recorder) exchanges() []exchange {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]exchange(nil), rc.all...)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestSecrets_NeverInLogsOrAnswers runs a server at debug level with its
// output captured while an admin token, a scoped token, config var values,
// a hook secret and credentials in a build URL are in use: releases, a
// config change, a failing release, hook deliveries (one refused), builds
// from a URL, tokens sent in the wrong place and wrong tokens. No secret may
// appear in the server's output, in a release log, a build result, a hook
// payload or a dyno log, nor in any API answer except the documented ones:
// the scoped token in the answer that creates it, config values in
// /config-vars. An error answer that repeats what its own request put in the
// URL or body (such as "App "<x>" was not found.") is not a leak; it is
// listed in the test log.
func TestSecrets_NeverInLogsOrAnswers(t *testing.T) {
	t.Parallel()
	adminTok := "slw_adm1n" + randHex(20)
	cfgVal := "s3cr3t-config-value-" + randHex(8)
	cfgVal2 := "s3cr3t-config-value-" + randHex(8)
	hookSecret := "s3cr3t-hook-" + randHex(8)
	urlPass := "s3cr3t-url-pass-" + randHex(6)
	urlSig := "s3cr3t-url-sig-" + randHex(6)

	logs := &logCapture{t: t}
	cfg := testConfig(t)
	cfg.Token = adminTok
	cfg.LogLevel = "debug"
	cfg.HookRetryBase = 50 * time.Millisecond
	// The scoped token's hook and build servers are on loopback, which
	// only an operator can open to scoped tokens.
	if err := cfg.AllowPrivateFetch.Set("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(bg, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	hc := &http.Client{Transport: rec, Timeout: time.Minute}
	admin := client.New(srv.APIURL, adminTok)
	admin.HTTP = hc
	ts := &testServer{server: srv, c: admin, dataDir: cfg.DataDir, cfg: cfg}
	t.Cleanup(func() { ts.stop(t) })
	raw := func(method, path string, hdr map[string]string, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.APIURL+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

	// A scoped token for the organization the app lives in.
	if err := admin.Do(bg, "POST", "/organizations", map[string]string{"name": "vault-org"}, nil); err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	if err := admin.Do(bg, "POST", "/tokens", map[string]string{"org": "vault-org", "description": "ci"}, &tok); err != nil || tok.Token == "" {
		t.Fatalf("token = %+v, %v", tok, err)
	}
	scoped := client.New(srv.APIURL, tok.Token)
	scoped.HTTP = hc
	secrets := map[string]string{"admin token": adminTok, "scoped token": tok.Token, "config value": cfgVal, "config value 2": cfgVal2,
		"hook secret": hookSecret, "build URL password": urlPass, "build URL signature": urlSig}

	if _, err := scoped.CreateApp(bg, "vault", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := scoped.UpdateConfigVars(bg, "vault", map[string]*string{"SECRET_KEY": ptr(cfgVal)}); err != nil {
		t.Fatal(err)
	}
	rc := &receiver{t: t, secret: hookSecret, failN: 1}
	hookSrv := httptest.NewServer(rc)
	defer hookSrv.Close()
	if err := scoped.Do(bg, "POST", "/apps/vault/hooks", map[string]any{"url": hookSrv.URL + "/hook", "events": slipway.HookEvents(), "secret": hookSecret}, nil); err != nil {
		t.Fatal(err)
	}

	// Releases: a good one, a config change, a failing one.
	good := pushArchive(t, scoped, "vault", appSlug(t, "web: ./testapp\n"))
	if r := ts.release(t, "vault", client.NewRelease{Slug: good}); r.Status != "succeeded" {
		t.Fatalf("v1 = %+v", r)
	}
	if code, body := ts.get(t, "vault-default", "/env/SECRET_KEY"); code != 200 || body != cfgVal {
		t.Fatalf("the dyno does not see the config value: %d %q", code, body)
	}
	if _, err := scoped.UpdateConfigVars(bg, "vault", map[string]*string{"SECRET_KEY": ptr(cfgVal2), "OTHER": ptr("x")}); err != nil {
		t.Fatal(err)
	}
	if r := ts.latest(t, "vault"); r.Status != "succeeded" || r.Version != 2 {
		t.Fatalf("config release = %+v", r)
	}
	crash := pushArchive(t, scoped, "vault", appSlug(t, "web: ./testapp --crash\n"))
	if r := ts.release(t, "vault", client.NewRelease{Slug: crash}); r.Status != "failed" {
		t.Fatalf("v3 = %+v", r)
	}

	// Builds from URLs with credentials in the user info and the query.
	archive := appSlug(t, "web: ./testapp\n")
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slug.tgz" && r.URL.Query().Get("sig") == urlSig {
			w.Write(archive)
			return
		}
		http.Error(w, "no such archive", 404)
	}))
	defer files.Close()
	for _, path := range []string{"/missing.tgz", "/slug.tgz"} {
		u := strings.Replace(files.URL, "http://", "http://builder:"+urlPass+"@", 1) + path + "?sig=" + urlSig
		b, err := scoped.CreateBuild(bg, "vault", client.NewBuild{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := scoped.WaitBuild(bg, "vault", b.ID, nil); err != nil || (got.Status == "succeeded") != (path == "/slug.tgz") {
			t.Fatalf("build from %s = %+v, %v", path, got, err)
		}
	}

	// Tokens in the wrong place, wrong tokens, and bad bodies holding secrets.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+adminTok))
	bad := []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		want               int
	}{
		{"token in the query", "GET", "/apps?token=" + adminTok, nil, "", 401},
		{"scoped token in the query", "GET", "/apps/vault?access_token=" + tok.Token, nil, "", 401},
		{"token in another header", "GET", "/apps", map[string]string{"X-Slipway-Token": adminTok}, "", 401},
		{"token with another scheme", "GET", "/apps", map[string]string{"Authorization": "Token " + adminTok}, "", 401},
		{"token as basic auth", "GET", "/apps", map[string]string{"Authorization": basic}, "", 401},
		{"token in the body", "POST", "/apps", nil, `{"name":"x","token":"` + adminTok + `"}`, 401},
		{"token as the path", "GET", "/" + adminTok, nil, "", 404},
		{"token as an app name", "GET", "/apps/" + adminTok, bearer(adminTok), "", 404},
		{"scoped token as an app name", "POST", "/apps", bearer(adminTok), `{"name":"` + tok.Token + `"}`, 422},
		{"wrong token", "GET", "/apps", bearer(adminTok[:len(adminTok)-1] + "x"), "", 401},
		{"hook secret as token", "GET", "/apps", bearer(hookSecret), "", 401},
		{"scoped token, altered", "GET", "/apps/vault", bearer(tok.Token + "0"), "", 401},
		{"huge token", "GET", "/apps", bearer(adminTok + strings.Repeat("A", 300)), "", 401},
		{"scoped token on an admin route", "POST", "/tokens", bearer(tok.Token), `{"org":"vault-org"}`, 403},
		{"config value, bad JSON", "PATCH", "/apps/vault/config-vars", bearer(tok.Token), `{"SECRET_KEY":"` + cfgVal, 400},
		{"config value, wrong type", "PATCH", "/apps/vault/config-vars", bearer(tok.Token), `{"SECRET_KEY":["` + cfgVal + `"]}`, 400},
		{"config value, bad name", "PATCH", "/apps/vault/config-vars", bearer(tok.Token), `{"bad name!":"` + cfgVal + `"}`, 422},
		{"hook secret, bad hook", "POST", "/apps/vault/hooks", bearer(tok.Token), `{"url":"ftp://x","events":["release"],"secret":"` + hookSecret + `"}`, 422},
		{"hook secret, bad JSON", "POST", "/apps/vault/hooks", bearer(tok.Token), `{"url":"http://x","secret":"` + hookSecret, 400},
		{"build URL with a bad scheme", "POST", "/apps/vault/builds", bearer(tok.Token), `{"url":"ftp://u:` + urlPass + `@x/a.tgz"}`, 422},
		{"build URL malformed", "POST", "/apps/vault/builds", bearer(tok.Token), `{"url":"http://u:` + urlPass + `@[::1/a.tgz"}`, 0},
	}
	for _, b := range bad {
		code, body := raw(b.method, b.path, b.hdr, b.body)
		if b.want != 0 && code != b.want {
			t.Errorf("%s: %s %s = %d %s, want %d", b.name, b.method, clipStr(b.path, 40), code, body, b.want)
		}
	}
	waitFor(t, "hook deliveries of every kind", 30*time.Second, func() bool {
		return has(rc.actions(), "build", "release", "released", "release_failed", "config_change")
	})

	// Read back everything that might carry a secret.
	var rels []client.Release
	admin.Do(bg, "GET", "/apps/vault/releases", nil, &rels)
	relLogs := map[string]string{}
	for _, r := range rels {
		l, err := scoped.ReleaseLog(bg, "vault", r.ID)
		if err != nil {
			t.Fatal(err)
		}
		relLogs[fmt.Sprintf("release log v%d", r.Version)] = strings.Join(l.Lines, "\n")
	}
	builds, _ := scoped.Builds(bg, "vault")
	for _, b := range builds {
		res, err := scoped.BuildResult(bg, "vault", b.ID)
		if err != nil {
			t.Fatal(err)
		}
		relLogs["build result "+b.ID[:8]] = strings.Join(res.Lines, "\n")
		admin.Do(bg, "GET", "/slugs/"+b.ID, nil, nil)
	}
	var hooks []struct{ ID string }
	scoped.Do(bg, "GET", "/apps/vault/hooks", nil, &hooks)
	for _, h := range hooks {
		scoped.Do(bg, "GET", "/apps/vault/hooks/"+h.ID, nil, nil)
		scoped.Do(bg, "GET", "/apps/vault/hooks/"+h.ID+"/results", nil, nil)
	}
	for _, p := range []string{"/apps/vault", "/apps", "/apps/vault/dynos", "/apps/vault/formation", "/apps/vault/builds", "/audits?app=vault-default&limit=100", "/audits", "/organizations", "/apps/vault/features"} {
		admin.Do(bg, "GET", p, nil, nil)
	}
	if code, _ := raw("GET", "/metrics", nil, ""); code != 200 {
		t.Errorf("/metrics = %d", code)
	}
	raw("GET", "/healthz", nil, "")
	rc.mu.Lock()
	for i, ev := range rc.got {
		b, _ := json.Marshal(ev)
		relLogs[fmt.Sprintf("hook payload %d (%v)", i, ev["action"])] = string(b)
	}
	rc.mu.Unlock()
	filepath.WalkDir(filepath.Join(cfg.DataDir, "runtime", "logs"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(path)
			relLogs["dyno log "+filepath.Base(path)] = string(b)
		}
		return nil
	})
	ts.stop(t) // the server's output is complete once it has stopped
	logText := logs.String()
	if !strings.Contains(logText, "dyno crashed") && !strings.Contains(logText, "level=DEBUG") {
		t.Errorf("the captured output holds no debug or crash line; is the logger wired to it?\n%s", logText)
	}

	// The checks.
	leaks := 0
	for label, s := range secrets {
		if i := strings.Index(logText, s); i >= 0 {
			leaks++
			t.Errorf("the %s appears in the server's log: …%s…", label, lineAround(logText, i))
		}
		for where, text := range relLogs {
			if strings.HasPrefix(where, "dyno log") && strings.HasPrefix(label, "config value") {
				continue // the app's own output; the test app never prints it
			}
			if i := strings.Index(text, s); i >= 0 {
				leaks++
				t.Errorf("the %s appears in the %s: …%s…", label, where, lineAround(text, i))
			}
		}
	}
	exs := rec.exchanges()
	echoes := map[string]bool{}
	for _, ex := range exs {
		path := ex.url[len(srv.APIURL):]
		for label, s := range secrets {
			if !strings.Contains(ex.respBody, s) {
				continue
			}
			switch {
			case label == "scoped token" && ex.method == "POST" && path == "/tokens" && ex.status == 201:
				continue // documented: shown once, when created
			case strings.HasPrefix(label, "config value") && strings.HasSuffix(strings.SplitN(path, "?", 2)[0], "/config-vars") && ex.status == 200:
				continue // documented: the config vars API shows values
			case strings.Contains(ex.url, s) || strings.Contains(ex.reqBody, s):
				echoes[fmt.Sprintf("%s %s → %d echoes the %s its own request carried", ex.method, clipStr(path, 50), ex.status, label)] = true
				continue
			}
			leaks++
			i := strings.Index(ex.respBody, s)
			t.Errorf("the %s appears in the answer to %s %s (%d): …%s…", label, ex.method, clipStr(path, 60), ex.status, lineAround(ex.respBody, i))
		}
	}
	for e := range echoes {
		t.Logf("echo (not a leak): %s", e)
	}
	t.Logf("%d secrets checked against %d KiB of server output, %d API answers, %d release logs/build results/hook payloads/dyno logs: %d leaks, %d echoes",
		len(secrets), len(logText)>>10, len(exs), len(relLogs), leaks, len(echoes))
}

func clipStr(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// lineAround is the text around index i, for a leak report.
func lineAround(s string, i int) string {
	from, to := max(0, i-80), min(len(s), i+80)
	return strings.ReplaceAll(s[from:to], "\n", "⏎")
}

// TestStressCrash_KillDuringCanaryPause kills the server while a canary
// waits at 50% with a long pause: after the restart the rollout is at the
// same step with the same pause deadline (it is stored as a time), both
// releases serve, and a promote completes it.
func TestStressCrash_KillDuringCanaryPause(t *testing.T) {
	needStress(t)
	s, dataDir, slugID := crashSetup(t, crashProcfile)
	strategy := slipway.Strategy{Type: slipway.StrategyCanary, Steps: []slipway.CanaryStep{{Weight: 50, Pause: "1h"}, {Weight: 100}}}
	if _, err := s.c.SetReleaseStrategy(bg, crashApp, strategy); err != nil {
		t.Fatal(err)
	}
	r, err := s.c.CreateRelease(bg, crashApp, client.NewRelease{Slug: slugID})
	if err != nil {
		t.Fatal(err)
	}
	paused := func(c *client.Client) *client.Release {
		var got *client.Release
		waitFor(t, "v2 paused at 50%", 30*time.Second, func() bool {
			got, _ = c.Release(bg, crashApp, r.ID)
			return got != nil && got.Rollout != nil && got.Rollout.Phase == slipway.PhasePaused && got.Rollout.PauseUntil != nil
		})
		return got
	}
	before := paused(s.c)
	s.kill()
	s2 := startCrashServer(t, dataDir)
	after := paused(s2.c)
	if after.Rollout.Step != before.Rollout.Step || after.Rollout.Weight != 50 || !after.Rollout.PauseUntil.Equal(before.Rollout.PauseUntil.Time) {
		t.Fatalf("after the restart the rollout is %+v, before it was %+v", *after.Rollout, *before.Rollout)
	}
	seen := map[string]bool{}
	waitFor(t, "both releases served after the restart", 20*time.Second, func() bool {
		if code, body := s2.routerGet(crashApp); code == 200 {
			v, _, _ := strings.Cut(strings.TrimPrefix(body, "version="), " ")
			seen[v] = true
		}
		return seen["1"] && seen["2"]
	})
	if _, err := s2.c.PromoteRelease(bg, crashApp, r.ID, false); err != nil {
		t.Fatal(err)
	}
	var got *client.Release
	waitFor(t, "v2 succeeded", 30*time.Second, func() bool {
		got, _ = s2.c.Release(bg, crashApp, r.ID)
		return got != nil && slipway.ReleaseTerminal(got.Status)
	})
	if got.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v2 = %s %q", got.Status, got.Error)
	}
	t.Logf("after restart: %s", checkRecovered(t, s2, dataDir, slipway.ReleaseSucceeded))
}
