//go:build linux

package dynocg

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/prometheus/procfs"
)

// newManager gives the test a parent group of its own, and removes it with
// everything in it at the end. It skips when cgroups cannot be used here.
func newManager(t *testing.T) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating cgroups needs root")
	}
	m, err := NewManager(fmt.Sprintf("slipway-test-%d-%s", os.Getpid(), t.Name()))
	if errors.Is(err, ErrUnsupported) {
		t.Skipf("no cgroup controllers on this host: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Sweep(nil); err != nil {
			t.Errorf("Sweep(nil): %v", err)
		}
		if err := removeParent(m); err != nil {
			t.Errorf("removing the parent group: %v", err)
		}
	})
	s, err := m.Check()
	if err != nil {
		t.Fatal(err)
	}
	if !s.Memory && !s.CPU && !s.Pids {
		t.Skipf("no cgroup controller is usable here (%v)", s)
	}
	return m
}

func removeParent(m *Manager) error {
	if m.v2 != nil {
		return m.v2.Delete()
	}
	c, err := cgroup1.Load(cgroup1.StaticPath(m.rel("")), m.hierarchy())
	if err != nil {
		return err
	}
	return c.Delete()
}

// create makes a group that the test deletes at its end.
func create(t *testing.T, m *Manager, name string, l Limits) *Group {
	t.Helper()
	g, err := m.Create(name, l)
	if err != nil {
		t.Fatalf("Create(%q, %+v): %v", name, l, err)
	}
	t.Cleanup(func() {
		if err := g.Delete(); err != nil {
			t.Errorf("Delete %s: %v", name, err)
		}
	})
	return g
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

// startIn runs script with /bin/sh in g the way a dyno must be started: the
// shell waits on its stdin until it has been added to g, so not one
// instruction of script runs outside the group.
func startIn(t *testing.T, g *Group, script string) *proc {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "read -r _ || exit 99; "+script)
	gate, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if _, err := gate.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	gate.Close()
	return p
}

// wait returns how p ended, failing the test if it runs past within.
func (p *proc) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		t.Fatalf("%v still running after %s", p.cmd.Args, within)
		return nil
	}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// file is the path of one of group name's control files for controller.
func file(t *testing.T, m *Manager, name, controller, f string) string {
	t.Helper()
	if m.v2 != nil {
		return filepath.Join(m.v2Dir(name), f)
	}
	s := m.v1Sub(cgroup1.Name(controller))
	if s == nil {
		t.Skipf("no %s controller on this host", controller)
	}
	return filepath.Join(s.Path(m.rel(name)), f)
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// keyed reads "key value" lines (pids.events, memory.events) and returns
// key's value.
func keyed(t *testing.T, path, key string) uint64 {
	t.Helper()
	for _, line := range strings.Split(read(t, path), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", path, line, err)
			}
			return n
		}
	}
	t.Fatalf("%s has no %q line", path, key)
	return 0
}

// dead reports whether pid has exited (gone, or a zombie nobody reaped).
func dead(pid int) bool {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return true
	}
	st, err := p.Stat()
	return err != nil || st.State == "Z"
}

func TestCheckReportsControllersHere(t *testing.T) {
	m := newManager(t)
	s, err := m.Check()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v", s)
	if !s.All() {
		t.Errorf("Check() = %v; want memory, cpu and pids all enforceable on this host", s)
	}
}

func TestPidsLimitContainsForkBomb(t *testing.T) {
	m := newManager(t)
	const limit = 20
	g := create(t, m, "app/bomb.1", Limits{Pids: limit})
	// A bomb that does not give up: it forks for ever, ignoring failures.
	bomb := startIn(t, g, `exec perl -e 'while (1) { my $p = fork; if (!defined $p) { select(undef, undef, undef, 0.001) } elsif (!$p) { sleep 1000; exit } }'`)

	events := file(t, m, "app/bomb.1", "pids", "pids.events")
	most := 0
	waitFor(t, 20*time.Second, "the bomb's forks are refused at the limit", func() bool {
		procs, err := g.procs()
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, len(procs))
		return keyed(t, events, "max") > 0
	})
	procs, err := g.procs()
	if err != nil {
		t.Fatal(err)
	}
	most = max(most, len(procs))
	t.Logf("the bomb has %d processes; the kernel refused %d forks", len(procs), keyed(t, events, "max"))
	if most > limit {
		t.Errorf("the group held %d processes; want at most %d", most, limit)
	}
	if len(procs) < limit/2 {
		t.Errorf("the bomb has only %d processes at its limit; did it run in the group?", len(procs))
	}
	if !bomb.running() {
		t.Fatalf("the bomb stopped by itself: %v", bomb.err)
	}
	// The limit is the dyno's alone: this process still forks and is not in
	// the group.
	if out, err := exec.Command("/bin/sh", "-c", "echo fine").Output(); err != nil || string(out) != "fine\n" {
		t.Errorf("the test could not fork while the bomb ran: %q, %v", out, err)
	}
	if slices.Contains(procs, os.Getpid()) {
		t.Errorf("the test process is in the bomb's group")
	}

	start := time.Now()
	if err := g.Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	t.Logf("Delete killed the bomb in %s", time.Since(start).Round(time.Millisecond))
	if err := bomb.wait(t, 10*time.Second); !killedBySIGKILL(err) {
		t.Errorf("the bomb ended with %v; want killed by SIGKILL", err)
	}
	for _, pid := range procs {
		if !dead(pid) {
			t.Errorf("pid %d of the bomb is still running after Delete", pid)
		}
	}
	if _, err := m.Load("app/bomb.1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load after Delete: %v; want fs.ErrNotExist", err)
	}
}

func TestMemoryHogIsOOMKilled(t *testing.T) {
	m := newManager(t)
	g := create(t, m, "app/hog.1", Limits{MemoryBytes: 32 << 20})
	if n, err := g.OOMKills(); err != nil || n != 0 {
		t.Fatalf("OOMKills of a new group = %d, %v; want 0, nil", n, err)
	}
	// Each element is a fresh 1 MiB string, written, so really resident.
	hog := startIn(t, g, `exec perl -e 'my @a; push @a, "x" x (1 << 20) while 1'`)
	err := hog.wait(t, 60*time.Second)
	if !killedBySIGKILL(err) {
		t.Errorf("the hog ended with %v; want killed by SIGKILL", err)
	}
	n, err := g.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("OOMKills() = 0 after the hog died; want > 0")
	}
	t.Logf("OOMKills() = %d", n)
}

func TestLoadFindsGroupAndSweepRemovesUnknown(t *testing.T) {
	m := newManager(t)
	web1 := create(t, m, "app1/web.1", Limits{Pids: 100})
	create(t, m, "app1/web.2", Limits{})
	stale := create(t, m, "app2/web.1", Limits{Pids: 100})
	left := startIn(t, stale, "exec sleep 1000")

	// A restarted server finds web.1 by name: what it adds lands in the
	// group Create made.
	loaded, err := m.Load("app1/web.1")
	if err != nil {
		t.Fatal(err)
	}
	adopted := startIn(t, loaded, "exec sleep 1000")
	procs, err := web1.procs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(procs, adopted.cmd.Process.Pid) {
		t.Errorf("pid %d added through Load is not in the group Create made (it has %v)", adopted.cmd.Process.Pid, procs)
	}
	for _, name := range []string{"app1/web.9", "app9"} {
		if _, err := m.Load(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load(%q) = %v; want fs.ErrNotExist", name, err)
		}
	}
	for _, name := range []string{"../x", "app1/../../x", "/abs", "a//b", ""} {
		if _, err := m.Load(name); !errors.Is(err, ErrInvalid) {
			t.Errorf("Load(%q) = %v; want ErrInvalid", name, err)
		}
	}

	// The server knows only app1's dynos; app2/web.1 was left by a crash.
	if err := m.Sweep(map[string]bool{"app1/web.1": true, "app1/web.2": true}); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if err := left.wait(t, 10*time.Second); !killedBySIGKILL(err) {
		t.Errorf("the stale dyno ended with %v; want killed by SIGKILL", err)
	}
	for _, name := range []string{"app2/web.1", "app2"} {
		if _, err := m.Load(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after Sweep, Load(%q) = %v; want fs.ErrNotExist", name, err)
		}
	}
	for _, name := range []string{"app1/web.1", "app1/web.2"} {
		if _, err := m.Load(name); err != nil {
			t.Errorf("Sweep removed kept group %s: %v", name, err)
		}
	}
	if !adopted.running() {
		t.Errorf("Sweep killed a kept dyno: %v", adopted.err)
	}
}

func TestLimitsWritten(t *testing.T) {
	m := newManager(t)
	type want struct{ shares, weight, memory, pids string }
	check := func(name string, w want) {
		t.Helper()
		if m.v2 != nil {
			for f, v := range map[string]string{"cpu.weight": w.weight, "memory.max": w.memory, "pids.max": w.pids} {
				if got := read(t, file(t, m, name, "", f)); got != v {
					t.Errorf("%s %s = %s; want %s", name, f, got, v)
				}
			}
			if m.swapAcct && w.memory != "max" {
				if got := read(t, file(t, m, name, "", "memory.swap.max")); got != "0" {
					t.Errorf("%s memory.swap.max = %s; want 0", name, got)
				}
			}
			return
		}
		for _, c := range []struct{ ctrl, f, want string }{
			{"cpu", "cpu.shares", w.shares},
			{"memory", "memory.limit_in_bytes", w.memory},
			{"pids", "pids.max", w.pids},
		} {
			if got := read(t, file(t, m, name, c.ctrl, c.f)); got != c.want {
				t.Errorf("%s %s = %s; want %s", name, c.f, got, c.want)
			}
		}
		if w.memory == unlimitedV1 {
			return
		}
		if got := read(t, file(t, m, name, "memory", "memory.swappiness")); got != "0" {
			t.Errorf("%s memory.swappiness = %s; want 0", name, got)
		}
		if m.swapAcct {
			if got := read(t, file(t, m, name, "memory", "memory.memsw.limit_in_bytes")); got != w.memory {
				t.Errorf("%s memory.memsw.limit_in_bytes = %s; want %s (no swap)", name, got, w.memory)
			}
		}
	}
	weight := func(shares uint64) string {
		return strconv.FormatUint(cgroup2.ConvertCPUSharesToCgroupV2Value(shares), 10)
	}

	create(t, m, "app/web.1", Limits{MemoryBytes: 64 << 20, CPU: 0.5, Pids: 50})
	check("app/web.1", want{"512", weight(512), "67108864", "50"})

	// Adoption rewrites the limits, up (memsw must be raised first) and down.
	create(t, m, "app/web.1", Limits{MemoryBytes: 128 << 20, CPU: 2, Pids: 60})
	check("app/web.1", want{"2048", weight(2048), "134217728", "60"})
	create(t, m, "app/web.1", Limits{MemoryBytes: 32 << 20, CPU: 0.25, Pids: 10})
	check("app/web.1", want{"256", weight(256), "33554432", "10"})

	// Zero is no limit.
	create(t, m, "app/free.1", Limits{})
	unlimited := unlimitedV1
	if m.v2 != nil {
		unlimited = "max"
	}
	check("app/free.1", want{"1024", "100", unlimited, "max"})
}

// unlimitedV1 is what v1's memory.limit_in_bytes reads when unset on x86-64
// (the largest page-aligned int64).
const unlimitedV1 = "9223372036854771712"

func TestNamesAndLimitsValidated(t *testing.T) {
	for _, name := range []string{"web.1", "app-default/web.1", "a_b/c-d/e.f"} {
		if err := validName(name); err != nil {
			t.Errorf("validName(%q) = %v; want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "../x", "a/../b", "/a", "a/", "a//b", ".hidden", "a b", "a\nb"} {
		if err := validName(name); !errors.Is(err, ErrInvalid) {
			t.Errorf("validName(%q) = %v; want ErrInvalid", name, err)
		}
	}
	for _, l := range []Limits{{MemoryBytes: -1}, {Pids: -1}, {CPU: -0.5}, {CPU: math.NaN()}, {CPU: math.Inf(1)}} {
		if err := l.validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v.validate() = %v; want ErrInvalid", l, err)
		}
	}
	for cores, want := range map[float64]uint64{0: 0, 0.001: 2, 0.5: 512, 1: 1024, 2.5: 2560, 1000: 262144} {
		if got := cpuShares(cores); got != want {
			t.Errorf("cpuShares(%v) = %d; want %d", cores, got, want)
		}
	}
}
