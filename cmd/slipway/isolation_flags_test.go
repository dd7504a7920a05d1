package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestIsolationFlags_BadValuesSayWhatToDo(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		name string
		mod  func(*serveConfig)
		want string
	}{
		{"unknown mode", func(c *serveConfig) { c.DynoIsolation = "maybe" }, "use auto, on or off"},
		{"uid range without a dash", func(c *serveConfig) { c.DynoIsolation, c.DynoUIDRange = "on", "200000" }, "FIRST-LAST"},
		{"uid range reaching system users", func(c *serveConfig) { c.DynoIsolation, c.DynoUIDRange = "on", "0-100" }, "1000 <= FIRST"},
		{"uid range backwards", func(c *serveConfig) { c.DynoIsolation, c.DynoUIDRange = "on", "300000-200000" }, "FIRST <= LAST"},
		{"memory that is not a size", func(c *serveConfig) { c.DynoIsolation, c.DynoMemory = "on", "lots" }, "e.g. 512MiB"},
		{"memory too small to run anything", func(c *serveConfig) { c.DynoIsolation, c.DynoMemory = "on", "1MiB" }, "at least 16MiB"},
		{"negative pids", func(c *serveConfig) { c.DynoIsolation, c.DynoPids = "on", -1 }, "must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := testConfig(t)
			tt.mod(&c)
			_, err := isolation(c, nil, quiet)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				if err != nil && strings.Contains(err.Error(), "needs the server to run as root") {
					t.Skip("not root: --dyno-isolation=on is refused before its values are read")
				}
				t.Fatalf("isolation() = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	c := testConfig(t)
	c.DynoIsolation, c.RequireIsolation = "off", true
	if _, err := isolation(c, nil, quiet); err == nil || !strings.Contains(err.Error(), "--require-isolation") {
		t.Fatalf("--require-isolation with isolation off = %v, want a refusal", err)
	}
}
