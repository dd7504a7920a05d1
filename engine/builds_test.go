package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/engine"
)

// gateBuilder holds every build until the test lets it go, counting how
// many run at once.
type gateBuilder struct {
	mu            sync.Mutex
	running, most int
	started       chan string // the build's dir, as it starts
	finish        chan struct{}
}

func newGateBuilder() *gateBuilder {
	return &gateBuilder{started: make(chan string, 100), finish: make(chan struct{}, 100)}
}

func (g *gateBuilder) Build(ctx context.Context, src slipway.BuildSource, dir string, logf func(string, ...any)) (*slipway.Slug, error) {
	g.mu.Lock()
	g.running++
	g.most = max(g.most, g.running)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running--
		g.mu.Unlock()
	}()
	g.started <- dir
	select {
	case <-g.finish:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &slipway.Slug{ProcessTypes: map[string]string{"web": "./web"}, Dir: dir}, nil
}

func (g *gateBuilder) mostAtOnce() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.most
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEngine_Builds_AtMostMaxConcurrentRunTheRestWaitQueued(t *testing.T) {
	f := newFixture(t, time.Now)
	g := newGateBuilder()
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: f.rt, Builder: g, SlugDir: t.TempDir(), MaxConcurrentBuilds: 2, Sweep: 50 * time.Millisecond})
	f.run(t)
	ctx := context.Background()
	a := &slipway.App{Name: "builds", OrgName: "default", SpaceName: "default"}
	if err := f.db.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	var builds []*slipway.Build
	for range 5 {
		b := &slipway.Build{AppID: a.ID, SourceURL: "data:"}
		if err := f.db.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(spool, b.ID)
		os.WriteFile(file, []byte("archive"), 0o600)
		f.eng.StartBuild(b, slipway.BuildSource{URL: "data:", File: file})
		builds = append(builds, b)
	}
	status := func(b *slipway.Build) string {
		got, err := f.db.FindBuild(ctx, a.ID, b.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	queuedLine := func(b *slipway.Build) bool {
		lines, _ := f.db.BuildLines(ctx, b.ID)
		return len(lines) > 0 && strings.HasPrefix(lines[0], "Queued: 2 builds are running on this server")
	}
	<-g.started
	<-g.started
	// The other three wait, queued, and say why.
	waitFor(t, "three builds to say they are queued", func() bool {
		n := 0
		for _, b := range builds {
			if queuedLine(b) {
				n++
			}
		}
		return n == 3
	})
	var waiting []*slipway.Build
	for _, b := range builds {
		if queuedLine(b) {
			if s := status(b); s != slipway.BuildQueued {
				t.Fatalf("a waiting build is %s, want queued", s)
			}
			waiting = append(waiting, b)
		}
	}
	// A waiting build can be stopped: it fails at once, its file removed.
	if err := f.eng.CancelBuild(ctx, waiting[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stopped build to fail", func() bool { return status(waiting[0]) == slipway.BuildFailed })
	for range 4 {
		g.finish <- struct{}{}
	}
	for _, b := range builds {
		if b != waiting[0] {
			waitFor(t, "the builds to succeed", func() bool { return status(b) == slipway.BuildSucceeded })
		}
	}
	if most := g.mostAtOnce(); most != 2 {
		t.Errorf("%d builds ran at once, want 2", most)
	}
	waitFor(t, "every inline archive to be removed", func() bool {
		left, _ := os.ReadDir(spool)
		return len(left) == 0
	})
}

// dirBuilder makes a slug folder with one file at once.
type dirBuilder struct{}

func (dirBuilder) Build(ctx context.Context, src slipway.BuildSource, dir string, logf func(string, ...any)) (*slipway.Slug, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &slipway.Slug{ProcessTypes: map[string]string{"web": "./web"}, Dir: dir}, os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: ./web\n"), 0o644)
}

// TestEngine_StartBuild_LeavesTheCallersBuildAlone: the API answers with
// the build it passed to StartBuild while the build runs, so the engine
// must not write to it (the race detector caught that once).
func TestEngine_StartBuild_LeavesTheCallersBuildAlone(t *testing.T) {
	f := newFixture(t, time.Now)
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: f.rt, Builder: dirBuilder{}, SlugDir: t.TempDir()})
	f.run(t)
	ctx := context.Background()
	a := &slipway.App{Name: "copy", OrgName: "default", SpaceName: "default"}
	if err := f.db.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := &slipway.Build{AppID: a.ID}
	if err := f.db.CreateBuild(ctx, b); err != nil {
		t.Fatal(err)
	}
	before := *b
	f.eng.StartBuild(b, slipway.BuildSource{URL: "data:"})
	waitFor(t, "the build to succeed", func() bool {
		got, _ := f.db.FindBuild(ctx, a.ID, b.ID)
		return got.Status == slipway.BuildSucceeded
	})
	if *b != before {
		t.Errorf("StartBuild changed the caller's build: %+v, was %+v", *b, before)
	}
}

// TestEngine_SlugGC keeps the slugs of releases and of the newest builds,
// removes the others after each build, the folders nothing refers to at
// start, and a deleted app's slugs.
func TestEngine_SlugGC(t *testing.T) {
	f := newFixture(t, time.Now)
	slugDir := t.TempDir()
	stray := filepath.Join(slugDir, "0b3c8a1e-6a0f-4d55-9d2a-2f1f4c9e7a11") // a build cut off by a crash
	other := filepath.Join(slugDir, "not-a-build")                          // not Slipway's: left alone
	for _, d := range []string{stray, other} {
		os.MkdirAll(d, 0o755)
	}
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: f.rt, Builder: dirBuilder{}, SlugDir: slugDir, KeepBuilds: 3, Sweep: 50 * time.Millisecond})
	f.run(t)
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	waitFor(t, "the stray folder to be swept at start", func() bool { return !exists(stray) })
	if !exists(other) {
		t.Fatal("a folder that is not a build's was removed")
	}
	ctx := context.Background()
	a := &slipway.App{Name: "gc", OrgName: "default", SpaceName: "default"}
	if err := f.db.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 6 {
		b := &slipway.Build{AppID: a.ID}
		if err := f.db.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
		f.eng.StartBuild(b, slipway.BuildSource{URL: "data:"})
		waitFor(t, "the build to succeed", func() bool {
			got, _ := f.db.FindBuild(ctx, a.ID, b.ID)
			return got.Status == slipway.BuildSucceeded
		})
		ids = append(ids, b.ID)
		if i == 0 { // the first is released: kept for good
			if _, err := f.db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: b.ID, Trigger: slipway.TriggerDeploy}); err != nil {
				t.Fatal(err)
			}
		}
	}
	kept := map[string]bool{ids[0]: true, ids[3]: true, ids[4]: true, ids[5]: true}
	waitFor(t, "the 2nd and 3rd slugs to be collected", func() bool {
		for _, id := range ids {
			if exists(filepath.Join(slugDir, id)) != kept[id] {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		if _, err := f.db.FindSlug(ctx, id); (err == nil) != kept[id] {
			t.Errorf("slug %s: record %v, want kept %v", id, err, kept[id])
		}
	}
	// Deleting the app removes its slugs.
	if err := f.db.DeleteApp(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.eng.RemoveApp(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted app's slugs to be removed", func() bool {
		left, _ := os.ReadDir(slugDir)
		return len(left) == 1 && left[0].Name() == "not-a-build"
	})
}

// TestEngine_SlugSweep_NarrowsKeptSlugFolders: a slug folder an older
// server left open to others (0755) is narrowed to 0700 by the sweep at
// start; a folder that is no build's is left as it is.
func TestEngine_SlugSweep_NarrowsKeptSlugFolders(t *testing.T) {
	f := newFixture(t, time.Now)
	ctx := context.Background()
	a := &slipway.App{Name: "old", OrgName: "default", SpaceName: "default"}
	if err := f.db.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	slugDir := t.TempDir()
	b := &slipway.Build{AppID: a.ID}
	if err := f.db.CreateBuild(ctx, b); err != nil {
		t.Fatal(err)
	}
	kept, other := filepath.Join(slugDir, b.ID), filepath.Join(slugDir, "not-a-build")
	for _, d := range []string{kept, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{Dir: kept, ProcessTypes: map[string]string{"web": "x"}}}); err != nil {
		t.Fatal(err)
	}
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: f.rt, Builder: dirBuilder{}, SlugDir: slugDir, Sweep: 50 * time.Millisecond})
	f.run(t)
	mode := func(p string) os.FileMode {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	waitFor(t, "the kept slug's folder to be narrowed to 0700", func() bool { return mode(kept) == 0o700 })
	if m := mode(other); m != 0o755 {
		t.Errorf("a folder that is no build's has mode %v, want it left at 0755", m)
	}
}

// TestEngine_Builds_QueuedBuildOutlivesAnotherServersStart waits a build
// for a slot on one server while another server starts on the same store:
// the other's recovery leaves it alone, as it does a running one.
func TestEngine_Builds_QueuedBuildOutlivesAnotherServersStart(t *testing.T) {
	f := newFixture(t, time.Now)
	g := newGateBuilder()
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: f.rt, Builder: g, SlugDir: t.TempDir(), MaxConcurrentBuilds: 1, Holder: "server-a"})
	f.run(t)
	ctx := context.Background()
	a := &slipway.App{Name: "held", OrgName: "default", SpaceName: "default"}
	if err := f.db.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	var builds []*slipway.Build
	for range 2 {
		b := &slipway.Build{AppID: a.ID}
		if err := f.db.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
		f.eng.StartBuild(b, slipway.BuildSource{URL: "data:"})
		builds = append(builds, b)
	}
	<-g.started
	// Either build may have taken the one slot first: the other waits.
	waitFor(t, "one build to wait for a slot", func() bool {
		for _, b := range builds {
			if lines, _ := f.db.BuildLines(ctx, b.ID); len(lines) > 0 && strings.HasPrefix(lines[0], "Queued:") {
				return true
			}
		}
		return false
	})
	// Server b starts on the same store. Its recovery has dealt with
	// builds once it sweeps its slug dir of a stray folder.
	otherSlugs := t.TempDir()
	stray := filepath.Join(otherSlugs, "0b3c8a1e-6a0f-4d55-9d2a-2f1f4c9e7a11")
	os.Mkdir(stray, 0o755)
	other := engine.New(engine.Config{Store: f.db, Runtime: newFakeRuntime(), Builder: g, SlugDir: otherSlugs, Holder: "server-b"})
	octx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- other.Run(octx) }()
	waitFor(t, "server b to recover", func() bool { _, err := os.Stat(stray); return os.IsNotExist(err) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	g.finish <- struct{}{}
	g.finish <- struct{}{}
	for _, b := range builds {
		waitFor(t, "both builds to succeed", func() bool {
			got, _ := f.db.FindBuild(ctx, a.ID, b.ID)
			return got.Status == slipway.BuildSucceeded
		})
	}
}
