package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/internal/testslug"
)

// pushTiny builds a slug of just a Procfile and waits for the build to end.
func (ts *testServer) pushTiny(t *testing.T, app, procfile string) *client.Build {
	t.Helper()
	archive := testslug.TarGz(t, map[string]testslug.File{"Procfile": {Body: []byte(procfile), Mode: 0o644}})
	b, err := ts.c.CreateBuild(bg, app, client.NewBuild{URL: testslug.DataURI(archive)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ts.c.WaitBuild(bg, app, b.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestE2E_Slugs_CollectedButTheReleasedAndTheNewest pushes 12 builds and
// releases the first: the server keeps that one and the newest 10, answers
// 409 for a release of the one it collected, leaves nothing in its spool
// dir, and removes every slug when the app is deleted.
func TestE2E_Slugs_CollectedButTheReleasedAndTheNewest(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	if _, err := ts.c.CreateApp(bg, "gc", "", ""); err != nil {
		t.Fatal(err)
	}
	slugDir := filepath.Join(ts.dataDir, "slugs")
	first := ts.push(t, "gc", "web: ./testapp\n")
	if rel := ts.release(t, "gc", client.NewRelease{Slug: first}); rel.Status != slipway.ReleaseSucceeded {
		t.Fatalf("release of the first build: %+v", rel)
	}
	var ids []string
	for i := range 11 {
		b := ts.pushTiny(t, "gc", fmt.Sprintf("web: ./testapp --n=%d\n", i))
		if b.Status != slipway.BuildSucceeded {
			t.Fatalf("build %d: %s", i, b.Status)
		}
		ids = append(ids, b.ID)
	}
	want := append([]string{first}, ids[1:]...) // the second build is the 11th newest
	slices.Sort(want)
	waitUntil(t, "the oldest unreleased slug to be collected", func() bool {
		return slices.Equal(dirNames(t, slugDir), want)
	})
	var slug map[string]any
	if err := ts.c.Do(bg, "GET", "/slugs/"+ids[0], nil, &slug); err == nil {
		t.Errorf("the collected slug is still served: %v", slug)
	}
	code, body := ts.raw(t, "POST", "/apps/gc/releases", "Bearer test-token", `{"slug":"`+ids[0]+`"}`)
	if code != 409 || !strings.Contains(body, "garbage-collected") || !strings.Contains(body, "push the build again") {
		t.Errorf("release of a collected build: %d %s", code, body)
	}
	if left := dirNames(t, filepath.Join(ts.dataDir, "spool")); len(left) > 0 {
		t.Errorf("inline archives left in the spool dir: %v", left)
	}
	if err := ts.c.DeleteApp(bg, "gc"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the deleted app's slugs to be removed", func() bool { return len(dirNames(t, slugDir)) == 0 })
}

// TestE2E_Limits_RefusedWithTheLimit asks a real server for more than a
// tenant may have: each is refused with a message that says the limit.
func TestE2E_Limits_RefusedWithTheLimit(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MaxDynosPerApp, cfg.MaxDynosPerOrg = 5, 8
	ts := startTestServer(t, cfg)
	for _, app := range []string{"lima", "limb"} {
		if _, err := ts.c.CreateApp(bg, app, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	tok := "Bearer test-token"
	var types []string
	for i := 1; i <= 51; i++ {
		types = append(types, fmt.Sprintf(`{"type":"p%d","quantity":0}`, i))
	}
	tests := []struct {
		name, method, path, body string
		want                     int
		wantMsg                  string
	}{
		{"51 process types", "PATCH", "/apps/lima/formation", "[" + strings.Join(types, ",") + "]", 422, "an app may have at most 50"},
		{"over --max-dynos-per-app", "PATCH", "/apps/lima/formation", `[{"type":"web","quantity":4},{"type":"worker","quantity":2}]`, 422, "an app may run at most 5 on this server"},
		{"up to it", "PATCH", "/apps/lima/formation", `[{"type":"web","quantity":3},{"type":"worker","quantity":2}]`, 200, ""},
		{"over --max-dynos-per-org", "PATCH", "/apps/limb/formation", `[{"type":"web","quantity":4}]`, 422, "an organization may run at most 8 on this server"},
		{"NUL in a config var", "PATCH", "/apps/lima/config-vars", `{"SECRET":"a\u0000b"}`, 422, "Config var SECRET contains a NUL byte"},
		{"config var over 32 KiB", "PATCH", "/apps/lima/config-vars", `{"CERT":"` + strings.Repeat("c", 33<<10) + `"}`, 422, "Config var CERT is 33792 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := ts.raw(t, tt.method, tt.path, tok, tt.body)
			if code != tt.want || !strings.Contains(body, tt.wantMsg) {
				t.Fatalf("%d %s, want %d with %q", code, body, tt.want, tt.wantMsg)
			}
		})
	}
	if cfg, err := ts.c.ConfigVars(bg, "lima"); err != nil || len(cfg) != 0 {
		t.Errorf("config vars after refused changes: %v, %v", cfg, err)
	}
	// A Procfile of 51 process types fails its build, saying why.
	var procfile strings.Builder
	for i := 1; i <= 51; i++ {
		fmt.Fprintf(&procfile, "p%d: ./run\n", i)
	}
	b := ts.pushTiny(t, "limb", procfile.String())
	res, _ := ts.c.BuildResult(bg, "limb", b.ID)
	if b.Status != slipway.BuildFailed || !strings.Contains(strings.Join(res.Lines, "\n"), "The Procfile defines 51 process types; an app may have at most 50") {
		t.Errorf("build of 51 process types: %s %q", b.Status, res.Lines)
	}
}
