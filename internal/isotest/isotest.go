// Package isotest tells tests whether dyno isolation can run here.
package isotest

import (
	"os"
	"testing"

	"github.com/slipway/slipway/runtime/local/dynocg"
)

// Need skips t, saying why, where dynos cannot be isolated (not root, or
// cgroup limits not all enforceable); in CI (CI set, as root) it fails t
// instead, so isolation cannot go untested there.
func Need(t testing.TB) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "dyno isolation needs root (namespaces, cgroups, veth pairs)"
	} else if m, err := dynocg.NewManager("slipway-check"); err != nil {
		why = "no cgroups: " + err.Error()
	} else if s, err := m.Check(); err != nil || !s.All() {
		why = "cgroup limits are not all enforceable here: " + s.String()
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must test dyno isolation, but: %s", why)
	}
	t.Skip(why)
}
