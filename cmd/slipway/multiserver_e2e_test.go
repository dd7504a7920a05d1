package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/internal/pgtest"
	"github.com/slipway/slipway/internal/testslug"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// slipwayBinary builds this command once per test run.
func slipwayBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "slipway-bin")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "slipway")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// startProcess runs `slipway serve` with args as a child process (see
// startServerProcess) and waits for its API.
func startProcess(t *testing.T, args ...string) *crashServer {
	return startServerProcess(t, "multi-token", append([]string{"--log-level", "warn"}, args...)...)
}

func TestE2E_TwoServersOnePostgres(t *testing.T) {
	// Serial: its servers' leases and sweeps are timed; under the load of
	// the parallel tests another server took over a release at first sight.
	dsn := pgtest.DSN(t) // several servers share only PostgreSQL
	root := t.TempDir()
	slugs := filepath.Join(root, "slugs") // shared, as a network volume would be
	common := []string{"--database", dsn, "--slug-dir", slugs, "--lease-ttl", "3s", "--healthy-deadline", "30s"}
	a := startProcess(t, append([]string{"--data-dir", filepath.Join(root, "a")}, common...)...)
	b := startProcess(t, append([]string{"--data-dir", filepath.Join(root, "b")}, common...)...)
	ctx := context.Background()

	// A release created through one is listed by the other at once.
	if _, err := a.c.CreateApp(ctx, "many", "", ""); err != nil {
		t.Fatal(err)
	}
	build, err := b.c.CreateBuild(ctx, "many", client.NewBuild{URL: testslug.DataURI(testslug.TestAppSlug(t, "web: ./testapp\n"))})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.c.WaitBuild(ctx, "many", build.ID, nil); err != nil || got.Status != "succeeded" {
		t.Fatalf("build = %+v, %v", got, err)
	}
	// No dynos, so 100 releases roll out quickly.
	if err := a.c.Do(ctx, "POST", "/apps/many/formation", map[string]any{"type": "web", "quantity": 0}, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make(chan string, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(c *client.Client) {
			defer wg.Done()
			r, err := c.CreateRelease(ctx, "many", client.NewRelease{Slug: build.ID})
			if err != nil {
				t.Error(err)
				return
			}
			ids <- r.ID
		}([]*client.Client{a.c, b.c}[i%2])
	}
	wg.Wait()
	close(ids)
	var versions []int
	for id := range ids {
		r, err := b.c.WaitRelease(ctx, "many", id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != "succeeded" {
			t.Fatalf("v%d = %s (%s)", r.Version, r.Status, r.Error)
		}
		versions = append(versions, r.Version)
		log, _ := a.c.ReleaseLog(ctx, "many", id)
		if n := strings.Count(strings.Join(log.Lines, "\n"), fmt.Sprintf("Release v%d started", r.Version)); n != 1 {
			t.Fatalf("v%d was started %d times:\n%s", r.Version, n, strings.Join(log.Lines, "\n"))
		}
	}
	sort.Ints(versions)
	if len(versions) != 100 || versions[0] != 1 || versions[99] != 100 {
		t.Fatalf("versions = %v", versions)
	}
	for i, v := range versions {
		if v != i+1 {
			t.Fatalf("versions have a gap at %d: %v", i+1, versions)
		}
	}
	la, _ := a.c.Releases(ctx, "many")
	lb, _ := b.c.Releases(ctx, "many")
	if len(la) != 100 || len(lb) != 100 || !la[99].Current || !lb[99].Current {
		t.Fatalf("lists differ: %d vs %d", len(la), len(lb))
	}
}

func TestE2E_KilledLeaseHolder_OtherServerFinishes(t *testing.T) {
	// Serial: the other server must start and migrate within the killed
	// server's 3 s start delay.
	dsn := pgtest.DSN(t) // several servers share only PostgreSQL
	root := t.TempDir()
	slugs := filepath.Join(root, "slugs")
	common := []string{"--database", dsn, "--slug-dir", slugs, "--lease-ttl", "3s", "--healthy-deadline", "30s"}
	dirA := filepath.Join(root, "a")
	a := startProcess(t, append([]string{"--data-dir", dirA}, common...)...)
	ctx := context.Background()
	a.c.CreateApp(ctx, "phoenix", "", "")
	build, err := a.c.CreateBuild(ctx, "phoenix", client.NewBuild{URL: testslug.DataURI(testslug.TestAppSlug(t, "web: ./testapp --start-delay=3s\n"))})
	if err != nil {
		t.Fatal(err)
	}
	a.c.WaitBuild(ctx, "phoenix", build.ID, nil)
	rel, err := a.c.CreateRelease(ctx, "phoenix", client.NewRelease{Slug: build.ID})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the release to be pending on a", 10*time.Second, func() bool {
		r, _ := a.c.Release(ctx, "phoenix", rel.ID)
		return r.Status == slipway.ReleasePending
	})
	// b starts after a holds the app's lease; then a dies mid-release.
	b := startProcess(t, append([]string{"--data-dir", filepath.Join(root, "b")}, common...)...)
	killed := time.Now()
	a.kill()
	got, err := b.c.WaitRelease(ctx, "phoenix", rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "succeeded" || !got.Current {
		t.Fatalf("release after the kill = %+v", got)
	}
	log, _ := b.c.ReleaseLog(ctx, "phoenix", rel.ID)
	text := strings.Join(log.Lines, "\n")
	if strings.Count(text, "Release v1 started") != 1 || !strings.Contains(text, "resumed after a server restart") {
		t.Fatalf("log:\n%s", text)
	}
	t.Logf("taken over and finished %.1fs after the kill", time.Since(killed).Seconds())
	// a left its dyno running when it died; a restart on its data dir
	// stops it (orphan clean-up) before the test ends.
	startProcess(t, append([]string{"--data-dir", dirA}, common...)...).stop()
}

// TestE2E_TwoServers_RestartRunsOnTheLeaseHolderAfterTheRelease asks one
// server to restart an app's dynos while the other carries out the app's
// release. The restart goes through the app's queue and lease: it waits
// for the release to end and is carried out by the server holding the
// lease, whose dynos (the local runtime runs them on the server that
// released) are replaced, all on the new release.
func TestE2E_TwoServers_RestartRunsOnTheLeaseHolderAfterTheRelease(t *testing.T) {
	// Serial: its servers' leases and sweeps are timed; under the load of
	// the parallel tests another server took over a release at first sight.
	dsn := pgtest.DSN(t) // several servers share only PostgreSQL
	root := t.TempDir()
	common := []string{"--database", dsn, "--slug-dir", filepath.Join(root, "slugs"), "--lease-ttl", "3s", "--healthy-deadline", "30s"}
	a := startProcess(t, append([]string{"--data-dir", filepath.Join(root, "a")}, common...)...)
	ctx := context.Background()
	if _, err := a.c.CreateApp(ctx, "bounce", "", ""); err != nil {
		t.Fatal(err)
	}
	build, err := a.c.CreateBuild(ctx, "bounce", client.NewBuild{URL: testslug.DataURI(testslug.TestAppSlug(t, "web: ./testapp --start-delay=2s\n"))})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.c.WaitBuild(ctx, "bounce", build.ID, nil); err != nil || got.Status != "succeeded" {
		t.Fatalf("build = %+v, %v", got, err)
	}
	v1, err := a.c.CreateRelease(ctx, "bounce", client.NewRelease{Slug: build.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.c.WaitRelease(ctx, "bounce", v1.ID); err != nil || got.Status != "succeeded" {
		t.Fatalf("v1 = %+v, %v", got, err)
	}
	b := startProcess(t, append([]string{"--data-dir", filepath.Join(root, "b")}, common...)...)

	// v2 rolls out (its dyno takes 2 s to be healthy) on whichever server
	// took the app's lease; the restart is asked of the other.
	v2, err := a.c.CreateRelease(ctx, "bounce", client.NewRelease{Slug: build.ID})
	if err != nil {
		t.Fatal(err)
	}
	var holder, other *crashServer
	waitFor(t, "a dyno of v2 to start", 20*time.Second, func() bool {
		for _, s := range []*crashServer{a, b} {
			ds, _ := s.c.Dynos(ctx, "bounce")
			for _, d := range ds {
				if d.Release.Version == 2 {
					holder, other = s, map[*crashServer]*crashServer{a: b, b: a}[s]
					return true
				}
			}
		}
		return false
	})
	if r, err := holder.c.Release(ctx, "bounce", v2.ID); err != nil || r.Status != slipway.ReleasePending {
		t.Fatalf("v2 = %+v, %v; want it still rolling out when the restart is asked for", r, err)
	}
	if err := other.c.RestartDynos(ctx, "bounce", ""); err != nil {
		t.Fatal(err)
	}
	done, err := holder.c.WaitRelease(ctx, "bounce", v2.ID)
	if err != nil || done.Status != "succeeded" {
		t.Fatalf("v2 = %+v, %v", done, err)
	}
	// The holder's dynos are replaced after v2 ended, and run v2.
	waitFor(t, "the lease holder's dynos to be restarted after v2", 60*time.Second, func() bool {
		ds, err := holder.c.Dynos(ctx, "bounce")
		if err != nil || len(ds) != 1 {
			return false
		}
		d := ds[0]
		return d.State == slipway.DynoRunning && d.Release.Version == 2 && !d.CreatedAt.Before(done.UpdatedAt.Time)
	})
}

// TestE2E_TwoServers_CanaryGoesOnAfterTheHolderDies: a canary paused at
// 50% on one server, which dies; the other takes the app's lease, places
// the same step on its own dynos (the local runtime runs them where the
// rollout is carried out), keeps the stored pause deadline, and finishes
// the rollout when promoted there.
func TestE2E_TwoServers_CanaryGoesOnAfterTheHolderDies(t *testing.T) {
	// Serial: its servers' leases and sweeps are timed; under the load of
	// the parallel tests another server took over a release at first sight.
	dsn := pgtest.DSN(t)
	root := t.TempDir()
	common := []string{"--database", dsn, "--slug-dir", filepath.Join(root, "slugs"), "--lease-ttl", "3s", "--healthy-deadline", "30s"}
	dirA := filepath.Join(root, "a")
	a := startProcess(t, append([]string{"--data-dir", dirA}, common...)...)
	ctx := context.Background()
	if _, err := a.c.CreateApp(ctx, "relay", "", ""); err != nil {
		t.Fatal(err)
	}
	if err := a.c.Do(ctx, "POST", "/apps/relay/formation", map[string]any{"type": "web", "quantity": 2}, nil); err != nil {
		t.Fatal(err)
	}
	build, err := a.c.CreateBuild(ctx, "relay", client.NewBuild{URL: testslug.DataURI(testslug.TestAppSlug(t, "web: ./testapp\n"))})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.c.WaitBuild(ctx, "relay", build.ID, nil); err != nil || got.Status != "succeeded" {
		t.Fatalf("build = %+v, %v", got, err)
	}
	v1, _ := a.c.CreateRelease(ctx, "relay", client.NewRelease{Slug: build.ID})
	if got, err := a.c.WaitRelease(ctx, "relay", v1.ID); err != nil || got.Status != "succeeded" {
		t.Fatalf("v1 = %+v, %v", got, err)
	}
	strategy := slipway.Strategy{Type: slipway.StrategyCanary, Steps: []slipway.CanaryStep{{Weight: 50, Pause: "1h"}, {Weight: 100}}}
	if _, err := a.c.SetReleaseStrategy(ctx, "relay", strategy); err != nil {
		t.Fatal(err)
	}
	v2, err := a.c.CreateRelease(ctx, "relay", client.NewRelease{Slug: build.ID})
	if err != nil {
		t.Fatal(err)
	}
	paused := func(c *client.Client, what string) *client.Release {
		var got *client.Release
		waitFor(t, what, 30*time.Second, func() bool {
			got, _ = c.Release(ctx, "relay", v2.ID)
			return got != nil && got.Rollout != nil && got.Rollout.Phase == slipway.PhasePaused && got.Rollout.PauseUntil != nil
		})
		return got
	}
	before := paused(a.c, "v2 paused at 50% on a")
	b := startProcess(t, append([]string{"--data-dir", filepath.Join(root, "b")}, common...)...)
	a.kill()
	seen := map[string]bool{}
	waitFor(t, "b serves both releases", 30*time.Second, func() bool {
		if code, body := b.routerGet("relay"); code == 200 {
			v, _, _ := strings.Cut(strings.TrimPrefix(body, "version="), " ")
			seen[v] = true
		}
		return seen["1"] && seen["2"]
	})
	after := paused(b.c, "v2 paused at 50% on b")
	if after.Rollout.Step != before.Rollout.Step || !after.Rollout.PauseUntil.Equal(before.Rollout.PauseUntil.Time) {
		t.Fatalf("on b the rollout is %+v, on a it was %+v", *after.Rollout, *before.Rollout)
	}
	if _, err := b.c.PromoteRelease(ctx, "relay", v2.ID, false); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if got, err := b.c.WaitRelease(wctx, "relay", v2.ID); err != nil || got.Status != "succeeded" {
		var log struct{ Lines []string }
		b.c.Do(ctx, "GET", "/apps/relay/releases/"+v2.ID+"/log", nil, &log)
		t.Fatalf("v2 after the promote = %+v, %v\nits log:\n%s\nb's output:\n%s", got, err, strings.Join(log.Lines, "\n"), b.output())
	}
	// a left its dynos running when it died; a restart on its data dir
	// stops them (it does not hold the app) before the test ends.
	startProcess(t, append([]string{"--data-dir", dirA}, common...)...).stop()
}
