package hook

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/egress"
)

// fakeOutbox hands out deliveries once and records attempts.
type fakeOutbox struct {
	mu       sync.Mutex
	pending  []*slipway.Delivery
	attempts []*slipway.HookResult
	done     map[string]bool
	retryAt  map[string]time.Time
	released []string
}

func (f *fakeOutbox) ClaimDeliveries(ctx context.Context, n int, lease time.Duration) ([]*slipway.Delivery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.pending
	f.pending = nil
	return out, nil
}

func (f *fakeOutbox) ReleaseDelivery(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = append(f.released, id)
	return nil
}

func (f *fakeOutbox) RecordAttempt(ctx context.Context, d *slipway.Delivery, r *slipway.HookResult, done bool, retryAt time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts = append(f.attempts, r)
	f.done[d.ID] = done
	f.retryAt[d.ID] = retryAt
	return nil
}

func TestDeliver_SignsAndSchedulesRetries(t *testing.T) {
	var got http.Header
	status := http.StatusInternalServerError
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(status)
	}))
	defer srv.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ob := &fakeOutbox{done: map[string]bool{}, retryAt: map[string]time.Time{}}
	d := New(Config{Outbox: ob, RetryBase: time.Second, RetryMax: 8 * time.Second, GiveUpAfter: time.Hour, Now: func() time.Time { return now }})
	del := &slipway.Delivery{ID: "d1", HookID: "h1", Event: "release", URL: srv.URL, Secret: "k", Payload: []byte(`{"action":"release"}`), CreatedAt: now}

	wantWaits := []time.Duration{1, 2, 4, 8, 8}
	for i, w := range wantWaits {
		del.Attempts = i
		d.deliver(context.Background(), del)
		if ob.done["d1"] || !ob.retryAt["d1"].Equal(now.Add(w*time.Second)) {
			t.Fatalf("attempt %d: done=%v retry at %v, want +%ds", i+1, ob.done["d1"], ob.retryAt["d1"], w)
		}
	}
	s1, s256 := Sign(del.Payload, "k")
	if got.Get("X-Akkeris-Signature") != s1 || got.Get("X-Slipway-Signature-256") != s256 || got.Get("X-Akkeris-Event") != "release" || got.Get("X-Akkeris-Delivery") != "d1" {
		t.Fatalf("headers = %v", got)
	}
	// Past GiveUpAfter a failure is final.
	now = now.Add(2 * time.Hour)
	d.deliver(context.Background(), del)
	if !ob.retryAt["d1"].IsZero() {
		t.Fatalf("a delivery past its give-up time is retried at %v", ob.retryAt["d1"])
	}
	// A 2xx ends it.
	status = http.StatusNoContent
	d.deliver(context.Background(), del)
	if !ob.done["d1"] || ob.attempts[len(ob.attempts)-1].StatusCode != 204 {
		t.Fatalf("done = %v, last = %+v", ob.done["d1"], ob.attempts[len(ob.attempts)-1])
	}
}

// A deliverer that stops gives back what it claimed and did not send, so
// that the next run sends it at once rather than after the claim's lease;
// nothing is recorded as an attempt.
func TestRun_StopGivesBackUnsentDeliveries(t *testing.T) {
	started := make(chan struct{}, 4)
	hold := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-hold // answers only once the deliverer has stopped
	}))
	defer srv.Close()
	defer close(hold)
	ob := &fakeOutbox{done: map[string]bool{}, retryAt: map[string]time.Time{}}
	for i := range 3 {
		ob.pending = append(ob.pending, &slipway.Delivery{ID: fmt.Sprint("d", i), HookID: "h", Event: "release", URL: srv.URL, Payload: []byte(`{}`), CreatedAt: time.Now()})
	}
	d := New(Config{Outbox: ob, Workers: 1, Poll: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	select {
	case <-started: // d0 is in flight; d1 and d2 wait for the one worker
	case <-time.After(10 * time.Second):
		t.Fatal("the first delivery was not sent")
	}
	cancel()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	released := append([]string(nil), ob.released...)
	slices.Sort(released)
	if !slices.Equal(released, []string{"d0", "d1", "d2"}) || len(ob.attempts) != 0 {
		t.Errorf("given back %v with %d attempts recorded, want d0 (cut off), d1 and d2 (never sent) and none", released, len(ob.attempts))
	}
}

func TestDeliver_DeadHookIsRecorded(t *testing.T) {
	ob := &fakeOutbox{done: map[string]bool{}, retryAt: map[string]time.Time{}}
	d := New(Config{Outbox: ob, Client: &http.Client{Timeout: time.Second}})
	del := &slipway.Delivery{ID: "d2", URL: "http://127.0.0.1:1/", Payload: []byte(`{}`), CreatedAt: time.Now()}
	d.deliver(context.Background(), del)
	if len(ob.attempts) != 1 || ob.attempts[0].StatusCode != 0 || ob.attempts[0].Error == "" || ob.retryAt["d2"].IsZero() {
		t.Fatalf("attempt = %+v retry %v", ob.attempts, ob.retryAt["d2"])
	}
}

// TestDeliver_ScopedHooksReachOnlyAllowedAddresses sends only to a
// loopback server or to addresses the dialer refuses before connecting.
func TestDeliver_ScopedHooksReachOnlyAllowedAddresses(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	only1 := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	tests := []struct {
		name    string
		scoped  *http.Client // nil: the default scoped client
		url     string
		isScope bool
		refused string // "" when delivered
		hits    int32
	}{
		{"admin's hook to loopback", nil, srv.URL, false, "", 1},
		{"scoped hook to loopback", nil, srv.URL, true, "refused: 127.0.0.1 is a loopback address", 0},
		{"scoped hook to a private address", nil, "http://10.0.0.1/hook", true, "refused: 10.0.0.1 is a private address", 0},
		{"scoped hook to a link-local address", nil, "http://169.254.169.254/hook", true, "refused: 169.254.169.254 is a link-local address", 0},
		{"scoped hook, operator opened 127.0.0.1", only1.Client(5 * time.Second), srv.URL, true, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			ob := &fakeOutbox{done: map[string]bool{}, retryAt: map[string]time.Time{}}
			d := New(Config{Outbox: ob, ScopedClient: tt.scoped})
			d.deliver(context.Background(), &slipway.Delivery{ID: "d", URL: tt.url, Payload: []byte(`{}`), Scoped: tt.isScope, CreatedAt: time.Now()})
			if got := hits.Load(); got != tt.hits {
				t.Errorf("the server saw %d requests, want %d", got, tt.hits)
			}
			res := ob.attempts[0]
			if tt.refused == "" {
				if !ob.done["d"] || res.StatusCode != 200 {
					t.Fatalf("not delivered: %+v", res)
				}
				return
			}
			if ob.done["d"] || res.StatusCode != 0 || !strings.HasPrefix(res.Error, tt.refused) || !strings.Contains(res.Error, "only to public addresses") {
				t.Fatalf("attempt = %+v, want %q", res, tt.refused)
			}
			if !ob.retryAt["d"].IsZero() {
				t.Fatalf("a refused delivery is retried at %v", ob.retryAt["d"])
			}
		})
	}
}

// An attempt keeps the answer's headers (Webhooks.md's
// last_attempt.response.headers), bounded in number and length, and the
// request headers it sent, which hold the signatures but never the secret.
func TestDeliver_RecordsTheAnswersHeaders(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Hook-Server", "yes")
		w.Header().Set("X-Long", strings.Repeat("a", 5000))
		for i := range 100 {
			w.Header().Set(fmt.Sprintf("X-Many-%03d", i), "v")
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	ob := &fakeOutbox{done: map[string]bool{}, retryAt: map[string]time.Time{}}
	d := New(Config{Outbox: ob})
	const secret = "the-hook-secret"
	d.deliver(context.Background(), &slipway.Delivery{ID: "d", URL: srv.URL, Secret: secret, Payload: []byte(`{}`), CreatedAt: time.Now()})
	res := ob.attempts[0]
	if res.StatusCode != 202 || len(res.ResponseHeaders) > maxResponseHeaders || len(res.ResponseHeaders["X-Long"]) != maxHeaderValue {
		t.Fatalf("code %d, %d response headers, X-Long of %d bytes", res.StatusCode, len(res.ResponseHeaders), len(res.ResponseHeaders["X-Long"]))
	}
	for k, v := range res.RequestHeaders {
		if strings.Contains(v, secret) {
			t.Fatalf("request header %s carries the secret", k)
		}
	}
}
