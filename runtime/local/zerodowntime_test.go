package local

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/testslug"
)

// hammer sends GET / through the router from n clients until stop is
// called, and records every failure and the versions that answered.
type hammer struct {
	f        *fixture
	stopping atomic.Bool
	wg       sync.WaitGroup
	// mark is the version every answer to a request sent after it was set
	// must come from (0: any).
	mark atomic.Int64

	mu       sync.Mutex
	total    int
	failures []string
	versions map[string]int
}

func startHammer(f *fixture, n int) *hammer {
	h := &hammer{f: f, versions: map[string]int{}}
	for range n {
		h.wg.Go(func() {
			for !h.stopping.Load() {
				want := h.mark.Load()
				code, body, err := f.get("/")
				h.mu.Lock()
				h.total++
				v, _, _ := strings.Cut(strings.TrimPrefix(body, "version="), " ")
				switch {
				case err != nil:
					h.failures = append(h.failures, err.Error())
				case code != 200:
					h.failures = append(h.failures, fmt.Sprintf("%d %s", code, body))
				case want != 0 && v != fmt.Sprint(want):
					h.failures = append(h.failures, fmt.Sprintf("answer from v%s after v%d was out: %s", v, want, body))
				default:
					h.versions[v]++
				}
				h.mu.Unlock()
			}
		})
	}
	return h
}

func (h *hammer) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

// waitRequests waits until n more requests were answered.
func (h *hammer) waitRequests(t *testing.T, n int) {
	t.Helper()
	target := h.count() + n
	waitFor(t, 10*time.Second, "requests through the router", func() bool { return h.count() >= target })
}

func (h *hammer) stop() {
	h.stopping.Store(true)
	h.wg.Wait()
}

// Four clients hammer the router through a rollout of web×4 + worker×2, a
// failed release and a rolling restart: not one request fails, every answer
// comes from v1 or v2, and every answer after the rollout from v2.
func TestZeroDowntime(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	slug := testslug.UnpackedSlug(t, procfile)
	forms := []slipway.Formation{web(4), formation("worker", 2)}
	f.mustDeploy(f.desired(1, slug, forms...))

	// With max unavailable 0 the router never has fewer than 4 web dynos.
	a := f.rt.findApp(f.app.ID)
	minRouted := atomic.Int64{}
	minRouted.Store(100)
	watching := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-watching:
				return
			default:
			}
			n := 0
			for _, d := range *a.routes.Load() {
				if d.routed.Load() {
					n++
				}
			}
			if int64(n) < minRouted.Load() {
				minRouted.Store(int64(n))
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()

	h := startHammer(f, 4)
	defer h.stop()
	h.waitRequests(t, 50)

	// Each rollout must overlap with traffic, however loaded the machine:
	// the first new dyno of each holds the rollout (its "started" event
	// waits) until the clients had 5 requests answered since the rollout
	// began, while the old dynos still serve.
	during := func(what string, step func(progress slipway.ProgressFunc)) {
		before := h.count()
		var once sync.Once
		step(func(ev slipway.ProgressEvent) {
			if ev.Type == slipway.EventStarted {
				once.Do(func() {
					deadline := time.Now().Add(20 * time.Second)
					for h.count() < before+5 && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond)
					}
				})
			}
			f.events.add(ev)
		})
		n := h.count() - before
		t.Logf("%s: %d requests during the rollout", what, n)
		if n < 5 {
			t.Errorf("%s: only %d requests ran during the rollout", what, n)
		}
	}
	deploy := func(d slipway.Desired, progress slipway.ProgressFunc) error {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		return f.rt.Deploy(ctx, d, progress)
	}
	slow := testslug.UnpackedSlug(t, "web: ./testapp --start-delay=20ms\nworker: ./testapp --worker\n")
	during("release", func(p slipway.ProgressFunc) {
		if err := deploy(f.desired(2, slow, forms...), p); err != nil {
			t.Fatalf("Deploy v2: %v", err)
		}
	})
	h.mark.Store(2)
	h.waitRequests(t, 50)

	// The first new web dyno crashes 100ms after it starts, before it is
	// healthy; the new worker is healthy and must be reverted too.
	crash := testslug.UnpackedSlug(t, "web: ./testapp --start-delay=100ms --crash\nworker: ./testapp --worker\n")
	during("failed release", func(p slipway.ProgressFunc) {
		if err := deploy(f.desired(3, crash, forms...), p); err == nil {
			t.Error("the crashing release succeeded")
		}
	})
	h.waitRequests(t, 50)

	during("restart", func(p slipway.ProgressFunc) {
		if err := f.rt.Restart(context.Background(), f.app.ID, "", p); err != nil {
			t.Errorf("Restart: %v", err)
		}
	})
	h.waitRequests(t, 50)
	h.stop()
	close(watching)
	<-watched
	if m := minRouted.Load(); m < 4 {
		t.Errorf("the router had %d ready web dynos at one point, want at least 4", m)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.failures) > 0 {
		t.Errorf("%d of %d requests failed; first ones: %q", len(h.failures), h.total, h.failures[:min(5, len(h.failures))])
	}
	for v := range h.versions {
		if v != "1" && v != "2" {
			t.Errorf("answer from v%s", v)
		}
	}
	if h.versions["1"] == 0 || h.versions["2"] == 0 {
		t.Errorf("versions = %v, want answers from both", h.versions)
	}
	t.Logf("%d requests, versions %v", h.total, h.versions)
	ds := f.dynos()
	if len(ds) != 6 {
		t.Errorf("dynos = %+v, want 6", ds)
	}
	for _, d := range ds {
		if d.Release.Version != 2 || d.State != slipway.DynoRunning {
			t.Errorf("dyno %s: v%d %s", d.Name, d.Release.Version, d.State)
		}
	}
}

// A request in flight on an old dyno is answered before that dyno stops.
func TestDeploy_DrainsInFlightRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	slug := testslug.UnpackedSlug(t, procfile)
	f.mustDeploy(f.desired(1, slug, web(1)))
	type answer struct {
		code int
		body string
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		code, body, err := f.get("/sleep?ms=400")
		done <- answer{code, body, err}
	}()
	a := f.rt.findApp(f.app.ID)
	waitFor(t, 5*time.Second, "the slow request to be in flight", func() bool {
		return (*a.routes.Load())[0].inflight.Load() == 1
	})
	start := time.Now()
	f.mustDeploy(f.desired(2, slug, web(1)))
	got := <-done
	if got.err != nil || got.code != 200 || !strings.HasPrefix(got.body, "version=1 ") {
		t.Errorf("slow request: %d %q %v, want v1's answer", got.code, got.body, got.err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("Deploy took %s: it did not wait for the request", took)
	}
	if f.events.find(slipway.EventDrained, "in-flight requests finished") < 0 {
		t.Errorf("no drained event:\n%s", f.events)
	}
}
