// Package hook delivers webhook events from the outbox: it signs each
// delivery, posts it, records every attempt and retries failures with
// exponential backoff. Deliveries of hooks set by organization-scoped
// tokens go through a client that connects to public addresses only; one
// it refuses is recorded and not retried. Deliveries run on their own workers, so a slow or
// dead hook never holds up a release.
package hook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/backoff"
	"github.com/slipway/slipway/internal/egress"
)

// Outbox is what the deliverer needs of the store.
type Outbox interface {
	ClaimDeliveries(ctx context.Context, n int, lease time.Duration) ([]*slipway.Delivery, error)
	RecordAttempt(ctx context.Context, d *slipway.Delivery, r *slipway.HookResult, done bool, retryAt time.Time) error
	ReleaseDelivery(ctx context.Context, id string) error
}

// Config holds the deliverer's settings.
type Config struct {
	Outbox Outbox
	// Client sends deliveries; default one with a 10s timeout.
	Client *http.Client
	// ScopedClient sends the deliveries of hooks whose URL an
	// organization-scoped token set (Delivery.Scoped); default one with a
	// 10s timeout that connects to public addresses only
	// (egress.Policy{}). Give it a transport of its own.
	ScopedClient *http.Client
	// Workers is how many deliveries are in flight at once (default 4).
	Workers int
	// Poll is how often the outbox is checked for due deliveries (default 250ms).
	Poll time.Duration
	// RetryBase is the wait after the first failure; each further failure
	// doubles it, up to RetryMax (defaults 1s and 10m).
	RetryBase, RetryMax time.Duration
	// GiveUpAfter is how long after the event a failing delivery is
	// retried (default 2h, so at least an hour of retries).
	GiveUpAfter time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
}

// Deliverer sends webhook deliveries.
type Deliverer struct {
	cfg Config
}

// New returns a deliverer; call Run to start it.
func New(cfg Config) *Deliverer {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.ScopedClient == nil {
		cfg.ScopedClient = egress.Policy{}.Client(10 * time.Second)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 250 * time.Millisecond
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 10 * time.Minute
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = 2 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Deliverer{cfg: cfg}
}

// Run delivers until ctx is cancelled.
func (d *Deliverer) Run(ctx context.Context) error {
	work := make(chan *slipway.Delivery)
	var wg sync.WaitGroup
	for i := 0; i < d.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for del := range work {
				d.deliver(ctx, del)
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	for {
		// A claim lasts longer than one attempt can take, so a delivery is
		// never sent twice at once, even by two servers.
		dels, err := d.cfg.Outbox.ClaimDeliveries(ctx, d.cfg.Workers, max(d.cfg.Client.Timeout, d.cfg.ScopedClient.Timeout)+30*time.Second)
		if err != nil && ctx.Err() == nil {
			d.cfg.Logger.Error("claim hook deliveries", "err", err)
		}
		for i, del := range dels {
			select {
			case work <- del:
			case <-ctx.Done():
				for _, left := range dels[i:] {
					d.release(ctx, left)
				}
				return nil
			}
		}
		if len(dels) == d.cfg.Workers {
			continue // more may be due
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// release gives del back to the outbox when the deliverer stops (ctx has
// ended) before it was attempted, or during its attempt, so that the next
// run (this server restarted, or another) sends it at once instead of
// after its claim's lease. A failure leaves the lease to expire.
func (d *Deliverer) release(ctx context.Context, del *slipway.Delivery) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := d.cfg.Outbox.ReleaseDelivery(rctx, del.ID); err != nil {
		d.cfg.Logger.Warn("give back a hook delivery at shutdown", "delivery", del.ID, "err", err)
	}
}

// Sign returns the two signature headers' values for body: Akkeris's
// sha1=<hex HMAC-SHA1> and sha256=<hex HMAC-SHA256>.
func Sign(body []byte, secret string) (sha1Sig, sha256Sig string) {
	m1 := hmac.New(sha1.New, []byte(secret))
	m1.Write(body)
	m2 := hmac.New(sha256.New, []byte(secret))
	m2.Write(body)
	return "sha1=" + hex.EncodeToString(m1.Sum(nil)), "sha256=" + hex.EncodeToString(m2.Sum(nil))
}

func (d *Deliverer) deliver(ctx context.Context, del *slipway.Delivery) {
	attempt := del.Attempts + 1
	s1, s256 := Sign(del.Payload, del.Secret)
	headers := map[string]string{
		"Content-Type":            "application/json",
		"User-Agent":              "Slipway-Hookshot/1",
		"X-Akkeris-Event":         del.Event,
		"X-Akkeris-Delivery":      del.ID,
		"X-Akkeris-Signature":     s1,
		"X-Slipway-Signature-256": s256,
	}
	res := &slipway.HookResult{HookID: del.HookID, DeliveryID: del.ID, Event: del.Event, Attempt: attempt, RequestHeaders: headers}
	start := d.cfg.Now()
	ok := false
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, del.URL, bytes.NewReader(del.Payload))
	if err == nil {
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		client := d.cfg.Client
		if del.Scoped {
			client = d.cfg.ScopedClient
		}
		var resp *http.Response
		resp, err = client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			res.StatusCode = resp.StatusCode
			res.ResponseHeaders = responseHeaders(resp.Header)
			ok = resp.StatusCode >= 200 && resp.StatusCode < 300
			if !ok {
				res.Error = fmt.Sprintf("the hook answered %s", resp.Status)
			}
		}
	}
	var refused *egress.RefusedError
	if err != nil {
		if ctx.Err() != nil {
			d.release(ctx, del) // shutting down: the next run retries it at once
			return
		}
		res.Error = err.Error()
		if errors.As(err, &refused) {
			res.Error = "refused: " + refused.Error()
		}
	}
	res.Duration = d.cfg.Now().Sub(start)
	var retryAt time.Time
	// A refused address is the hook's rule, not a passing failure: no retry.
	if !ok && refused == nil {
		wait := backoff.Exponential{Initial: d.cfg.RetryBase, Max: d.cfg.RetryMax}.Delay(attempt)
		if next := d.cfg.Now().Add(wait); next.Sub(del.CreatedAt) <= d.cfg.GiveUpAfter {
			retryAt = next
		}
	}
	if err := d.cfg.Outbox.RecordAttempt(context.WithoutCancel(ctx), del, res, ok, retryAt); err != nil {
		d.cfg.Logger.Error("record hook attempt", "delivery", del.ID, "err", err)
	}
}

// Limits on the answer headers kept with an attempt: a hook's server
// decides what it answers, so what is kept of it is bounded.
const (
	maxResponseHeaders = 50
	maxHeaderValue     = 1024
)

// responseHeaders returns the first value of each header of an answer,
// at most maxResponseHeaders of them (by name), each clipped to
// maxHeaderValue bytes.
func responseHeaders(h http.Header) map[string]string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > maxResponseHeaders {
		names = names[:maxResponseHeaders]
	}
	out := make(map[string]string, len(names))
	for _, k := range names {
		v := h.Get(k)
		if len(v) > maxHeaderValue {
			v = strings.ToValidUTF8(v[:maxHeaderValue], "")
		}
		out[k] = v
	}
	return out
}
