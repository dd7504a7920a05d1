package local

import (
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
