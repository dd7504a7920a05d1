package main

import (
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
