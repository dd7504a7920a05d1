package local

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/testslug"
)

// fakeTimers replaces Runtime.after: each call is handed to the test, which
// fires it when it wants.
type fakeTimers struct{ calls chan timerCall }

type timerCall struct {
	d  time.Duration
	ch chan time.Time
}

func (ft *fakeTimers) after(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ft.calls <- timerCall{d, ch}
	return ch
}

func (ft *fakeTimers) next(t *testing.T) timerCall {
	t.Helper()
	select {
	case c := <-ft.calls:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no backoff timer was started")
		return timerCall{}
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// A dyno that crashes after its release leaves the router at once, shows
// crashed with the backoff it waits, and restarts after 1s, 2s, 4s, 4s
// (capped); a dyno that stayed up for the cap before crashing starts again
// from 1s.
func TestCrash_RestartsWithBackoff(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := newFixture(t, func(c *Config) {
		c.CrashBackoffBase = time.Second
		c.CrashBackoffMax = 4 * time.Second
		c.Now = clock.Now
	})
	timers := &fakeTimers{calls: make(chan timerCall, 100)}
	f.rt.after = timers.after

	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, "web: ./testapp --crash-after=500ms\n"), web(1)))
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, wantDelay := range want {
		call := timers.next(t)
		if call.d != wantDelay {
			t.Errorf("restart %d waits %s, want %s", i+1, call.d, wantDelay)
		}
		ds := f.dynos()
		wantInfo := "exited with status 1; restarting in " + fmtDur(wantDelay) + " (attempt " + string(rune('1'+i)) + ")"
		if len(ds) != 1 || ds[0].State != slipway.DynoCrashed || ds[0].Ready || ds[0].AdditionalInfo != wantInfo {
			t.Errorf("while crashed: %+v, want crashed with %q", ds, wantInfo)
		}
		if code, body, _ := f.get("/"); code != 503 || !strings.Contains(body, "No web dyno of app "+f.app.Key+" is ready") {
			t.Errorf("router while crashed: %d %q, want 503", code, body)
		}
		call.ch <- time.Now()
		if i == len(want)-1 {
			// This process stays healthy past the cap before it crashes.
			waitFor(t, 10*time.Second, "the dyno to run again", func() bool {
				ds := f.dynos()
				return len(ds) == 1 && ds[0].State == slipway.DynoRunning
			})
			clock.Add(time.Hour)
		}
	}
	call := timers.next(t)
	if call.d != time.Second {
		t.Errorf("after a long healthy run the restart waits %s, want 1s", call.d)
	}
	if ds := f.dynos(); !strings.HasSuffix(ds[0].AdditionalInfo, "(attempt 1)") {
		t.Errorf("info = %q, want attempt 1", ds[0].AdditionalInfo)
	}
	call.ch <- time.Now()
	waitFor(t, 10*time.Second, "the dyno to serve again", func() bool {
		code, _, _ := f.get("/")
		return code == 200
	})
}

// Stopping a dyno that waits to restart ends it at once.
func TestCrash_StopWhileWaitingToRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	timers := &fakeTimers{calls: make(chan timerCall, 100)}
	f.rt.after = timers.after
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, "web: ./testapp --crash-after=300ms\n"), web(1)))
	timers.next(t) // crashed, waiting
	done := make(chan error, 1)
	go func() { done <- f.rt.Remove(context.Background(), f.app.ID) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Remove hung on a crashed dyno")
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	r := &Runtime{cfg: Config{CrashBackoffBase: time.Second, CrashBackoffMax: time.Minute}}
	var got []string
	for n := 1; n <= 8; n++ {
		got = append(got, fmtDur(r.backoff(n)))
	}
	if s := strings.Join(got, " "); s != "1s 2s 4s 8s 16s 32s 60s 60s" {
		t.Errorf("backoff = %s", s)
	}
}
