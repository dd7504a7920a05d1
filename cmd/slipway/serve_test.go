package main

import (
	"bytes"
	"os/user"
	"strings"
	"sync"
	"testing"
)

// TestServe_FlagDefaults: `slipway serve` with no flags gets the limits
// and dyno isolation settings the README promises. The values are written
// out, not taken from the constants the flags use, so that changing a
// default fails here until the docs are changed with it.
func TestServe_FlagDefaults(t *testing.T) {
	cmd, c := newServeCmdConfig()
	if err := cmd.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		flag      string
		got, want any
	}{
		{"--dyno-uid-range", c.DynoUIDRange, "200000-299999"},
		{"--dyno-subnet", c.DynoSubnet, "10.213.0.0/16"},
		{"--max-dynos-per-app", c.MaxDynosPerApp, 100},
		{"--max-dynos-per-org", c.MaxDynosPerOrg, 5000},
		{"--max-concurrent-builds", c.MaxConcurrentBuilds, 4},
		{"--dyno-isolation", c.DynoIsolation, "auto"},
		{"--require-isolation", c.RequireIsolation, false},
		{"--dyno-egress", c.DynoEgress, false},
		{"--dyno-memory", c.DynoMemory, "512MiB"},
		{"--dyno-cpu", c.DynoCPU, 1.0},
		{"--dyno-pids", c.DynoPids, int64(256)},
	} {
		if d.got != d.want {
			t.Errorf("%s defaults to %v, want %v (as README.md says)", d.flag, d.got, d.want)
		}
	}
}

// TestServe_UnisolatedDynosAreAnnounced: a server whose dynos cannot be
// isolated (here --dyno-isolation=off; also without root or cgroups) says
// so as it starts, before it says it is serving: dynos run as the server's
// own user, and scoped tokens for untrusted tenants need root or the
// Kubernetes runtime.
func TestServe_UnisolatedDynosAreAnnounced(t *testing.T) {
	cfg := testConfig(t)
	cfg.DynoIsolation = "off"
	var out lockedBuffer
	srv, err := startServer(bg, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	warned := strings.Index(text, "dynos run unisolated as "+u.Username+":")
	serving := strings.Index(text, "Slipway API on ")
	if warned < 0 || serving < 0 || warned > serving {
		t.Fatalf("start-up output does not say, before it serves, that dynos run unisolated as %s:\n%s", u.Username, text)
	}
	if !strings.Contains(text, "Scoped tokens for untrusted tenants need root (dyno isolation) or the Kubernetes runtime") {
		t.Errorf("start-up output does not say what untrusted tenants need:\n%s", text)
	}
}

// lockedBuffer is a bytes.Buffer the server's goroutines may write to
// while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
