package local

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway/slipway/internal/testslug"
)

// New stops the process groups a previous server left in dynos.json, and
// only those: a record whose pid now has another start time is left alone.
func TestNew_KillsOrphans(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := func() *exec.Cmd {
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	orphan, bystander := start(), start()
	defer bystander.Process.Kill()
	recs := []procRecord{
		{App: "a", Dyno: "web.1", PID: orphan.Process.Pid, PGID: orphan.Process.Pid, StartTicks: procStartTicks(orphan.Process.Pid)},
		// Same pid, different start time: the kernel gave the pid to
		// someone else since.
		{App: "a", Dyno: "web.2", PID: bystander.Process.Pid, PGID: bystander.Process.Pid, StartTicks: procStartTicks(bystander.Process.Pid) + 1},
	}
	b, _ := json.Marshal(recs)
	if err := os.WriteFile(filepath.Join(dir, "dynos.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- orphan.Wait() }()

	cfg := testConfig(t)
	cfg.DataDir = dir
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	select {
	case err := <-waited:
		if ws, ok := orphan.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGTERM {
			t.Errorf("orphan ended with %v, want SIGTERM", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the orphan still runs")
	}
	if !alive(bystander.Process.Pid) {
		t.Error("the process that reused a recorded pid was killed")
	}
	b, _ = os.ReadFile(filepath.Join(dir, "dynos.json"))
	if strings.TrimSpace(string(b)) != "[]" {
		t.Errorf("dynos.json after New = %s", b)
	}
}

// dynos.json lists every running process with its start time, so that the
// next server can find it.
func TestStateFile_ListsRunningDynos(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(2)))
	b, err := os.ReadFile(filepath.Join(f.rt.cfg.DataDir, "dynos.json"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []procRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	pids := f.pids()
	if len(recs) != 2 {
		t.Fatalf("dynos.json = %s, want 2 records", b)
	}
	for _, rec := range recs {
		if pids[rec.Dyno] != rec.PID || rec.PGID != rec.PID || !stillRuns(rec) || rec.App != f.app.ID {
			t.Errorf("record %+v does not match the running %s (pid %d)", rec, rec.Dyno, pids[rec.Dyno])
		}
	}
}

// A command name may hold spaces and parentheses (a dyno runs what its
// Procfile says): stillRuns still reads the process group, start time and
// state that follow it in /proc/<pid>/stat, and a zombie does not run.
func TestStillRuns_OddCommandName(t *testing.T) {
	t.Parallel()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command:", err)
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(t.TempDir(), "a) Z 1 (b")
	if err := os.WriteFile(odd, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(odd, "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	rec := procRecord{PID: pid, PGID: pid, StartTicks: procStartTicks(pid)}
	if rec.StartTicks == 0 || !stillRuns(rec) {
		t.Fatalf("a running %q: start ticks %d, stillRuns %v", filepath.Base(odd), rec.StartTicks, stillRuns(rec))
	}
	if other := (procRecord{PID: pid, PGID: pid + 1, StartTicks: rec.StartTicks}); stillRuns(other) {
		t.Error("stillRuns ignored the process group")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	waitFor(t, 10*time.Second, "the killed process to become a zombie", func() bool { return !stillRuns(rec) })
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		t.Fatalf("the zombie is gone before it was reaped: %v", err)
	}
	cmd.Wait()
	if stillRuns(rec) {
		t.Error("a reaped process still runs")
	}
}
