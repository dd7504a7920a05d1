package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/engine"
	"github.com/slipway/slipway/store"
)

// fakeRuntime records Deploy calls and lets a test decide their outcome.
type fakeRuntime struct {
	mu       sync.Mutex
	deploys  map[string][]int // app id → versions placed, in order
	inflight map[string]int
	overlap  bool // two deploys of one app ran at once
	// deploy, when set, decides a Deploy's outcome.
	deploy func(ctx context.Context, d slipway.Desired) error
	// running makes Dynos report one dyno, as a runtime that adopted the
	// dynos of a previous server does.
	running bool
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{deploys: map[string][]int{}, inflight: map[string]int{}}
}

// overlapped reports whether two deploys of one app ever ran at once.
func (f *fakeRuntime) overlapped() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.overlap
}

func (f *fakeRuntime) Deploy(ctx context.Context, d slipway.Desired, p slipway.ProgressFunc) error {
	f.mu.Lock()
	f.inflight[d.App.ID]++
	if f.inflight[d.App.ID] > 1 {
		f.overlap = true
	}
	// A Deploy of the release already placed is a converge (after start or
	// scaling): record changes of release only.
	if v := f.deploys[d.App.ID]; len(v) == 0 || v[len(v)-1] != d.Release.Version {
		f.deploys[d.App.ID] = append(v, d.Release.Version)
	}
	fn := f.deploy
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight[d.App.ID]--
		f.mu.Unlock()
	}()
	p(slipway.ProgressEvent{Type: slipway.EventStarted, Dyno: "web.1"})
	if fn != nil {
		if err := fn(ctx, d); err != nil {
			return err
		}
	}
	p(slipway.ProgressEvent{Type: slipway.EventDone, Process: "web", Message: fmt.Sprintf("web: 1/1 on v%d", d.Release.Version)})
	return nil
}

func (f *fakeRuntime) Restart(ctx context.Context, appID, dyno string, p slipway.ProgressFunc) error {
	return nil
}
func (f *fakeRuntime) Dynos(ctx context.Context, appID string) ([]slipway.Dyno, error) {
	if f.running {
		return []slipway.Dyno{{Name: "web.1", Type: "web"}}, nil
	}
	return nil, nil
}
func (f *fakeRuntime) Remove(ctx context.Context, appID string) error { return nil }

func (f *fakeRuntime) versions(appID string) []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.deploys[appID]...)
}

type fixture struct {
	db  *store.DB
	rt  *fakeRuntime
	eng *engine.Engine
}

func newFixture(t *testing.T, now func() time.Time) *fixture {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, rt: newFakeRuntime()}
	f.eng = engine.New(engine.Config{Store: db, Runtime: f.rt, ReleaseDeadline: time.Minute, Sweep: 50 * time.Millisecond, Now: now})
	return f
}

func (f *fixture) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func (f *fixture) app(t *testing.T, name string) (*slipway.App, string) {
	t.Helper()
	ctx := context.Background()
	a := &slipway.App{Name: name, OrgName: "default", SpaceName: "default"}
	if err := f.db.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := &slipway.Build{AppID: a.ID}
	if err := f.db.CreateBuild(ctx, b); err != nil {
		t.Fatal(err)
	}
	err := f.db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{Dir: "/nowhere", ProcessTypes: map[string]string{"web": "./web", "worker": "./work"}}})
	if err != nil {
		t.Fatal(err)
	}
	return a, b.ID
}

func (f *fixture) release(t *testing.T, appID, slug string) *slipway.Release {
	t.Helper()
	r, err := f.db.CreateRelease(context.Background(), slipway.NewRelease{AppID: appID, SlugID: slug, Trigger: slipway.TriggerDeploy})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitStatus waits until the release reaches a terminal status.
func (f *fixture) waitStatus(t *testing.T, appID, id string) *slipway.Release {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := f.db.FindRelease(context.Background(), appID, id)
		if err != nil {
			t.Fatal(err)
		}
		if slipway.ReleaseTerminal(r.Status) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("release v%d still %s", r.Version, r.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) log(t *testing.T, id string) string {
	lines, err := f.db.ReleaseLog(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, l := range lines {
		s = append(s, l.Line)
	}
	return strings.Join(s, "\n")
}

func TestEngine_ReleasesOfOneApp_RunInVersionOrder(t *testing.T) {
	f := newFixture(t, nil)
	a, slug := f.app(t, "order")
	var rels []*slipway.Release
	for i := 0; i < 6; i++ {
		rels = append(rels, f.release(t, a.ID, slug))
	}
	f.run(t)
	for _, r := range rels {
		f.eng.Kick(a.ID)
		if got := f.waitStatus(t, a.ID, r.ID); got.Status != slipway.ReleaseSucceeded {
			t.Fatalf("v%d = %s", got.Version, got.Status)
		}
	}
	if got := fmt.Sprint(f.rt.versions(a.ID)); got != "[1 2 3 4 5 6]" {
		t.Fatalf("deploy order = %s", got)
	}
	if f.rt.overlapped() {
		t.Fatal("two releases of one app ran at once")
	}
	cur, _ := f.db.CurrentRelease(context.Background(), a.ID)
	if cur.Version != 6 {
		t.Fatalf("current = v%d, want v6", cur.Version)
	}
	d := f.log(t, rels[0].ID)
	for _, want := range []string{"Release v1 started", "web.1 started", "web: 1/1 on v1", "Release v1 succeeded."} {
		if !strings.Contains(d, want) {
			t.Errorf("log lacks %q:\n%s", want, d)
		}
	}
}

func TestEngine_DifferentApps_RunInParallel(t *testing.T) {
	f := newFixture(t, nil)
	a, slugA := f.app(t, "para")
	b, slugB := f.app(t, "parb")
	both := make(chan struct{})
	var once sync.Once
	var n int
	var mu sync.Mutex
	f.rt.deploy = func(ctx context.Context, d slipway.Desired) error {
		mu.Lock()
		n++
		if n == 2 {
			once.Do(func() { close(both) })
		}
		mu.Unlock()
		select {
		case <-both: // each waits for the other: passes only if they overlap
			return nil
		case <-time.After(5 * time.Second):
			return fmt.Errorf("the other app's release never started")
		}
	}
	ra, rb := f.release(t, a.ID, slugA), f.release(t, b.ID, slugB)
	f.run(t)
	f.eng.Kick(a.ID)
	f.eng.Kick(b.ID)
	for _, r := range []*slipway.Release{ra, rb} {
		if got := f.waitStatus(t, r.AppID, r.ID); got.Status != slipway.ReleaseSucceeded {
			t.Fatalf("%s = %s (%s)", r.AppName, got.Status, got.Error)
		}
	}
}

func TestEngine_FailedRelease_KeepsCurrent(t *testing.T) {
	f := newFixture(t, nil)
	a, slug := f.app(t, "fail")
	f.rt.deploy = func(ctx context.Context, d slipway.Desired) error {
		if d.Release.Version == 2 {
			return slipway.Errorf(slipway.EUnprocessable, "web.1 exited with status 1 before it was healthy")
		}
		return nil
	}
	f.run(t)
	r1 := f.release(t, a.ID, slug)
	f.eng.Kick(a.ID)
	f.waitStatus(t, a.ID, r1.ID)
	r2 := f.release(t, a.ID, slug)
	f.eng.Kick(a.ID)
	got := f.waitStatus(t, a.ID, r2.ID)
	if got.Status != slipway.ReleaseFailed || !strings.Contains(got.Error, "exited with status 1") {
		t.Fatalf("v2 = %s (%q)", got.Status, got.Error)
	}
	if !strings.Contains(f.log(t, r2.ID), "release_failed: web.1 exited with status 1") {
		t.Fatalf("log: %s", f.log(t, r2.ID))
	}
	cur, _ := f.db.CurrentRelease(context.Background(), a.ID)
	if cur.ID != r1.ID {
		t.Fatalf("current = v%d, want v1", cur.Version)
	}
}

func TestEngine_Deadline_MakesReleaseUnknown(t *testing.T) {
	f := newFixture(t, nil)
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: f.rt, ReleaseDeadline: 100 * time.Millisecond, Sweep: time.Hour})
	a, slug := f.app(t, "slow")
	f.rt.deploy = func(ctx context.Context, d slipway.Desired) error {
		<-ctx.Done()
		return ctx.Err()
	}
	r := f.release(t, a.ID, slug)
	f.run(t)
	if got := f.waitStatus(t, a.ID, r.ID); got.Status != slipway.ReleaseUnknown {
		t.Fatalf("status = %s, want unknown", got.Status)
	}
}

func TestEngine_Recovery_ResumesPendingAndExpiresOld(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	f := newFixture(t, clock)
	a, slug := f.app(t, "crash")
	b, slugB := f.app(t, "stale")
	ctx := context.Background()
	// A server died while these were pending: one recently, one long ago.
	fresh := f.release(t, a.ID, slug)
	if err := f.db.SetReleaseStatus(ctx, fresh.ID, slipway.ReleasePending, ""); err != nil {
		t.Fatal(err)
	}
	f.db.Now = func() time.Time { return now.Add(-time.Hour) }
	stale := f.release(t, b.ID, slugB)
	if err := f.db.SetReleaseStatus(ctx, stale.ID, slipway.ReleasePending, ""); err != nil {
		t.Fatal(err)
	}
	f.db.Now = time.Now
	queued := f.release(t, a.ID, slug)
	f.run(t) // no Kick: recovery must find the work itself
	if got := f.waitStatus(t, a.ID, fresh.ID); got.Status != slipway.ReleaseSucceeded {
		t.Fatalf("resumed release = %s", got.Status)
	}
	if !strings.Contains(f.log(t, fresh.ID), "resumed after a server restart") {
		t.Fatalf("log: %s", f.log(t, fresh.ID))
	}
	if got := f.waitStatus(t, b.ID, stale.ID); got.Status != slipway.ReleaseUnknown {
		t.Fatalf("stale release = %s, want unknown", got.Status)
	}
	if got := f.waitStatus(t, a.ID, queued.ID); got.Status != slipway.ReleaseSucceeded {
		t.Fatalf("queued release = %s", got.Status)
	}
	if got := fmt.Sprint(f.rt.versions(a.ID)); got != "[1 2]" {
		t.Fatalf("deploys = %s", got)
	}
}

// TestEngine_Recovery_PlacesCurrentBeforeResumingPending: a server died
// mid-rollout and its dynos live on (the runtime adopted them), so the
// runtime does not know which release they converged to. The current
// release is placed first, so a resumed release that fails has something
// to revert to.
func TestEngine_Recovery_PlacesCurrentBeforeResumingPending(t *testing.T) {
	f := newFixture(t, time.Now)
	f.rt.running = true
	a, slug := f.app(t, "adopted")
	ctx := context.Background()
	v1 := f.release(t, a.ID, slug)
	if err := f.db.SetReleaseStatus(ctx, v1.ID, slipway.ReleasePending, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetReleaseStatus(ctx, v1.ID, slipway.ReleaseSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	v2 := f.release(t, a.ID, slug)
	if err := f.db.SetReleaseStatus(ctx, v2.ID, slipway.ReleasePending, ""); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	if got := f.waitStatus(t, a.ID, v2.ID); got.Status != slipway.ReleaseSucceeded {
		t.Fatalf("resumed release = %s", got.Status)
	}
	if got := fmt.Sprint(f.rt.versions(a.ID)); got != "[1 2]" {
		t.Fatalf("deploys = %s, want the current v1 placed before v2 resumed", got)
	}
}

func TestEngine_FirstRelease_CreatesFormationsFromProcfile(t *testing.T) {
	f := newFixture(t, nil)
	a, slug := f.app(t, "forms")
	var got []slipway.Formation
	f.rt.deploy = func(ctx context.Context, d slipway.Desired) error { got = d.Formations; return nil }
	r := f.release(t, a.ID, slug)
	f.run(t)
	f.waitStatus(t, a.ID, r.ID)
	if len(got) != 2 || got[0].Type != "web" || got[0].Quantity != 1 || got[0].Command != "./web" || got[1].Type != "worker" || got[1].Quantity != 0 {
		t.Fatalf("formations = %+v", got)
	}
}

func TestEngine_Lease_WaitsForDeadHoldersLeaseToExpire(t *testing.T) {
	f := newFixture(t, nil)
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: f.rt, Sweep: 20 * time.Millisecond, LeaseTTL: time.Second, Holder: "b"})
	a, slug := f.app(t, "leased")
	// Server "a" took the lease and died.
	const ttl = 400 * time.Millisecond
	if ok, err := f.db.AcquireLease(context.Background(), a.ID, "a", ttl); !ok || err != nil {
		t.Fatalf("lease: %v %v", ok, err)
	}
	expires := time.Now().Add(ttl)
	r := f.release(t, a.ID, slug)
	f.run(t)
	f.eng.Kick(a.ID)
	got := f.waitStatus(t, a.ID, r.ID)
	if got.Status != slipway.ReleaseSucceeded {
		t.Fatalf("status = %s", got.Status)
	}
	if got.UpdatedAt.Before(expires) {
		t.Fatalf("release ended at %v, before the dead holder's lease expired at %v", got.UpdatedAt, expires)
	}
}

func TestEngine_RevertedPastDeadline_IsFailedNotUnknown(t *testing.T) {
	f := newFixture(t, nil)
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: f.rt, ReleaseDeadline: 100 * time.Millisecond, Sweep: time.Hour})
	a, slug := f.app(t, "late")
	f.rt.deploy = func(ctx context.Context, d slipway.Desired) error {
		<-ctx.Done() // the runtime gave up at the deadline and put v0 back
		return &slipway.Error{Code: slipway.EUnprocessable, Message: "web.1 was not healthy in time. The app is back on its previous release."}
	}
	r := f.release(t, a.ID, slug)
	f.run(t)
	if got := f.waitStatus(t, a.ID, r.ID); got.Status != slipway.ReleaseFailed || !strings.Contains(got.Error, "back on") {
		t.Fatalf("status = %s (%q), want failed with the runtime's reason", got.Status, got.Error)
	}
}

// sweepSpy is the store, telling when a sweep of the engine ran and when
// one found the app.
type sweepSpy struct {
	*store.DB
	mu           sync.Mutex
	app          string
	swept, found chan struct{}
}

func (s *sweepSpy) setApp(id string) {
	s.mu.Lock()
	s.app = id
	s.mu.Unlock()
}

func (s *sweepSpy) AppsToWork(ctx context.Context, holder string) ([]string, error) {
	ids, err := s.DB.AppsToWork(ctx, holder)
	select {
	case s.swept <- struct{}{}:
	default:
	}
	s.mu.Lock()
	app := s.app
	s.mu.Unlock()
	for _, id := range ids {
		if id == app {
			select {
			case s.found <- struct{}{}:
			default:
			}
		}
	}
	return ids, err
}

// TestEngine_Sweep_LeavesNewWorkToTheServerItWasSentTo: a release that
// another server's sweep finds before its own server has taken the lease
// stays with its own server, which takes it a moment later; a sweep takes
// only work the sweep before found too.
func TestEngine_Sweep_LeavesNewWorkToTheServerItWasSentTo(t *testing.T) {
	f := newFixture(t, nil)
	spy := sweepSpy{DB: f.db, swept: make(chan struct{}, 1), found: make(chan struct{}, 1)}
	rtB := newFakeRuntime()
	b := engine.New(engine.Config{Store: &spy, Runtime: rtB, Sweep: time.Second, LeaseTTL: 5 * time.Second, Holder: "b"})
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: f.rt, Sweep: time.Hour, LeaseTTL: 5 * time.Second, Holder: "a"})
	f.run(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wait := func(what string, ch chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal(what)
		}
	}
	// The app comes after both servers' start-up (which places every
	// app's current release, taking its lease for that moment).
	wait("server b never swept", spy.swept)
	a, slug := f.app(t, "sent")
	spy.setApp(a.ID)
	r := f.release(t, a.ID, slug)                               // sent to server a…
	wait("server b's sweep never found the release", spy.found) // …whose kick comes after b's sweep saw it
	f.eng.Kick(a.ID)
	if got := f.waitStatus(t, a.ID, r.ID); got.Status != slipway.ReleaseSucceeded {
		t.Fatalf("status = %s", got.Status)
	}
	if got, other := fmt.Sprint(f.rt.versions(a.ID)), fmt.Sprint(rtB.versions(a.ID)); got != "[1]" || other != "[]" {
		t.Fatalf("server a placed %s and server b %s; want v1 on a, where it was sent", got, other)
	}
}
