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

// cluster is one runtime that several servers drive, as they share a
// Kubernetes cluster: it records every Deploy and Restart of the app, by
// which server, and whether two of them ever ran at once.
type cluster struct {
	mu       sync.Mutex
	seq      int
	ops      []clusterOp
	inflight int
	overlap  []string
	// hold, when set, holds a Deploy of that version until released is
	// closed; started is closed when it begins.
	hold     int
	started  chan struct{}
	released chan struct{}
}

type clusterOp struct {
	server, what string
	start, end   int // sequence numbers: what started and ended in what order
}

func (c *cluster) begin(server, what string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.inflight++
	if c.inflight > 1 {
		c.overlap = append(c.overlap, fmt.Sprintf("%s on %s began while another ran: %+v", what, server, c.ops))
	}
	c.ops = append(c.ops, clusterOp{server: server, what: what, start: c.seq})
	return len(c.ops) - 1
}

func (c *cluster) end(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.inflight--
	c.ops[i].end = c.seq
}

func (c *cluster) snapshot() ([]clusterOp, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]clusterOp(nil), c.ops...), append([]string(nil), c.overlap...)
}

// serverRuntime is one server's client of the cluster.
type serverRuntime struct {
	c    *cluster
	name string
}

func (r serverRuntime) Deploy(ctx context.Context, d slipway.Desired, p slipway.ProgressFunc) error {
	i := r.c.begin(r.name, fmt.Sprintf("deploy v%d", d.Release.Version))
	defer r.c.end(i)
	if d.Release.Version == r.c.hold {
		close(r.c.started)
		select {
		case <-r.c.released:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r serverRuntime) Restart(ctx context.Context, appID, dyno string, p slipway.ProgressFunc) error {
	i := r.c.begin(r.name, "restart")
	defer r.c.end(i)
	return nil
}

func (r serverRuntime) Dynos(ctx context.Context, appID string) ([]slipway.Dyno, error) {
	return []slipway.Dyno{{ID: "d1", Name: "web.1", Type: "web", State: slipway.DynoRunning}}, nil
}

func (r serverRuntime) Remove(ctx context.Context, appID string) error { return nil }

// waitUntil polls cond until it holds, failing the test after a deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEngine_Restart_TwoServers_WaitsForTheReleaseOnTheOther has two
// servers on one database and one cluster. A restart asked of the server
// that is not carrying out the app's release is queued, not run: it is
// carried out once the release has ended, by the holder of the app's
// lease, and never beside the rollout (where a failing restart could put
// back the pod template the other server had just deployed).
func TestEngine_Restart_TwoServers_WaitsForTheReleaseOnTheOther(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	cl := &cluster{hold: 2, started: make(chan struct{}), released: make(chan struct{})}
	engines := map[string]*engine.Engine{}
	var dbs []*store.DB
	for _, name := range []string{"a", "b"} {
		db, err := store.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
		eng := engine.New(engine.Config{Store: db, Runtime: serverRuntime{cl, name}, Sweep: 20 * time.Millisecond, LeaseTTL: 2 * time.Second, Holder: name})
		engines[name] = eng
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- eng.Run(runCtx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	db := dbs[0]
	a := &slipway.App{Name: "shared", OrgName: "default", SpaceName: "default"}
	if err := db.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := &slipway.Build{AppID: a.ID}
	if err := db.CreateBuild(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{ProcessTypes: map[string]string{"web": "./web"}}}); err != nil {
		t.Fatal(err)
	}
	release := func() *slipway.Release {
		r, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: b.ID, Trigger: slipway.TriggerDeploy})
		if err != nil {
			t.Fatal(err)
		}
		engines["a"].Kick(a.ID)
		return r
	}
	status := func(r *slipway.Release) string {
		got, err := db.FindRelease(ctx, a.ID, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	v1 := release()
	waitUntil(t, "v1 to succeed", func() bool { return status(v1) == slipway.ReleaseSucceeded })

	// v2's rollout is held on whichever server took the app's lease; the
	// restart is asked of the other one.
	v2 := release()
	<-cl.started
	ops, _ := cl.snapshot()
	deployer := ops[len(ops)-1].server
	other := map[string]string{"a": "b", "b": "a"}[deployer]
	if err := engines[other].Restart(ctx, a.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.NextRestart(ctx, a.ID); err != nil {
		t.Fatalf("the restart is not in the app's queue: %v", err)
	}
	if ops, _ := cl.snapshot(); strings.Contains(fmt.Sprint(ops), "restart") {
		t.Fatalf("the restart ran while v2 rolled out: %+v", ops)
	}
	close(cl.released)

	waitUntil(t, "v2 to succeed and the restart to be carried out", func() bool {
		_, err := db.NextRestart(ctx, a.ID)
		return status(v2) == slipway.ReleaseSucceeded && slipway.ErrorCode(err) == slipway.ENotFound
	})
	ops, overlap := cl.snapshot()
	if len(overlap) > 0 {
		t.Fatalf("operations on the app overlapped: %v", overlap)
	}
	var deploy2, restart *clusterOp
	for i := range ops {
		switch ops[i].what {
		case "deploy v2":
			deploy2 = &ops[i]
		case "restart":
			if restart != nil {
				t.Fatalf("restarted twice: %+v", ops)
			}
			restart = &ops[i]
		}
	}
	if deploy2 == nil || restart == nil || restart.start < deploy2.end {
		t.Fatalf("want the restart after v2's rollout ended: %+v", ops)
	}
	t.Logf("v2 rolled out by %s, the restart asked of %s carried out by %s", deployer, other, restart.server)
}

// TestEngine_Restart_InTurnWithReleases: restarts and releases of an app
// are one queue, carried out oldest first, one at a time.
func TestEngine_Restart_InTurnWithReleases(t *testing.T) {
	f := newFixture(t, nil)
	cl := &cluster{hold: 1, started: make(chan struct{}), released: make(chan struct{})}
	f.eng = engine.New(engine.Config{Store: f.db, Runtime: serverRuntime{cl, "a"}, Sweep: 20 * time.Millisecond})
	a, slug := f.app(t, "turns")
	ctx := context.Background()
	v1 := f.release(t, a.ID, slug)
	f.run(t)
	f.eng.Kick(a.ID)
	<-cl.started // v1 is rolling out; queue a restart, v2, a restart
	if err := f.eng.Restart(ctx, a.ID, ""); err != nil {
		t.Fatal(err)
	}
	v2 := f.release(t, a.ID, slug)
	if err := f.eng.Restart(ctx, a.ID, "web.1"); err != nil {
		t.Fatal(err)
	}
	wantCode := func(err error, code string) {
		t.Helper()
		if slipway.ErrorCode(err) != code {
			t.Fatalf("error %v, want %s", err, code)
		}
	}
	wantCode(f.eng.Restart(ctx, a.ID, "web.9"), slipway.ENotFound)
	close(cl.released)
	f.waitStatus(t, a.ID, v1.ID)
	f.waitStatus(t, a.ID, v2.ID)
	waitUntil(t, "the restarts", func() bool {
		_, err := f.db.NextRestart(ctx, a.ID)
		return slipway.ErrorCode(err) == slipway.ENotFound
	})
	ops, overlap := cl.snapshot()
	var order []string
	for _, op := range ops {
		order = append(order, op.what)
	}
	if got := strings.Join(order, ", "); got != "deploy v1, restart, deploy v2, restart" || len(overlap) > 0 {
		t.Fatalf("operations = %s (overlaps %v)", got, overlap)
	}
}
