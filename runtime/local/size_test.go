package local

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/slipway/slipway/internal/testslug"
	"github.com/slipway/slipway/runtime/local/dynocg"
)

// A formation's size sets its dynos' cgroup memory and CPU; the default
// size (and one stored before sizes were checked) keeps the server's
// --dyno-memory and --dyno-cpu. Pids stay the server's.
func TestIsolator_LimitsFollowTheSize(t *testing.T) {
	iso := &isolator{cfg: Isolation{MemoryBytes: 96 << 20, CPU: 1, Pids: 64}}
	for _, tt := range []struct {
		size string
		want dynocg.Limits
	}{
		{"", dynocg.Limits{MemoryBytes: 96 << 20, CPU: 1, Pids: 64}},
		{"standard", dynocg.Limits{MemoryBytes: 96 << 20, CPU: 1, Pids: 64}},
		{"standard-1x", dynocg.Limits{MemoryBytes: 96 << 20, CPU: 1, Pids: 64}},
		{"gp1", dynocg.Limits{MemoryBytes: 256 << 20, CPU: 0.25, Pids: 64}},
		{"gp4", dynocg.Limits{MemoryBytes: 2 << 30, CPU: 2, Pids: 64}},
	} {
		if got := iso.limits(tt.size); got != tt.want {
			t.Errorf("limits(%q) = %+v, want %+v", tt.size, got, tt.want)
		}
	}
}

// Changing a formation's size replaces its dynos (their limits change);
// deploying the same size again keeps them.
func TestDeploy_SizeChangeReplacesDynos(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	slug := testslug.UnpackedSlug(t, procfile)
	f.mustDeploy(f.desired(1, slug, web(1), formation("worker", 1)))
	before := f.dynos()
	worker := formation("worker", 1)
	worker.Size = "gp1"
	f.mustDeploy(f.desired(1, slug, web(1), worker))
	after := f.dynos()
	if len(after) != 2 || after[0].ID != before[0].ID || after[1].ID == before[1].ID {
		t.Fatalf("after resizing the worker\nbefore %+v\nafter  %+v", before, after)
	}
	f.mustDeploy(f.desired(1, slug, web(1), worker))
	if again := f.dynos(); again[1].ID != after[1].ID {
		t.Errorf("deploying the same size replaced the worker")
	}
}

// An isolated dyno's cgroup holds its formation's size: gp1's 256 MiB,
// not the server's 96 MiB.
func TestIsolation_SizeSetsTheCgroupMemory(t *testing.T) {
	f := isolatedFixture(t, nil)
	w := web(1)
	w.Size = "gp1"
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), w))
	recs := readRecords(f.rt.state.path, f.rt.log)
	if len(recs) != 1 {
		t.Fatalf("dynos.json = %+v", recs)
	}
	if got := memoryLimit(t, recs[0].PID); got != 256<<20 {
		t.Errorf("memory limit of a gp1 dyno = %d, want %d", got, 256<<20)
	}
}

// memoryLimit reads the memory limit of pid's cgroup (v1 or v2).
func memoryLimit(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			file = filepath.Join("/sys/fs/cgroup", parts[2], "memory.max")
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			file = filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")
		default:
			continue
		}
		v, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		if err == nil {
			return n
		}
	}
	t.Fatalf("no memory limit found for pid %d:\n%s", pid, b)
	return 0
}
