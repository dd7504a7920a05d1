// Package backoff is the one place that says how Slipway's waits grow:
// the retries of webhook deliveries, the restarts of crashed dynos, and
// the polls that wait for a dyno to drain, to pass its health check or to
// exit.
//
// It is a small helper rather than github.com/cenkalti/backoff: the
// retries here count attempts in durable state (a delivery's attempts in
// the outbox, a dyno's crashes) and need the wait for attempt n, not a
// stateful sequence; the crash restarts wait on an injected timer so that
// tests check the sequence without sleeping, which that library's Retry
// does not take (its timer option is unexported); and the polls wait on
// several channels at once, not on one operation that returns an error.
package backoff

import (
	"math"
	"time"
)

// Exponential is a wait that starts at Initial and grows by Factor at
// each step, never beyond Max.
type Exponential struct {
	// Initial is the first wait.
	Initial time.Duration
	// Factor is the growth from one wait to the next; 0 means 2.
	Factor float64
	// Max caps every wait; 0 means no cap.
	Max time.Duration
}

// Delay is the wait before attempt n (1-based, so Delay(1) is Initial):
// Initial × Factor^(n-1), at most Max. An n below 1 counts as 1.
func (e Exponential) Delay(n int) time.Duration {
	f := e.Factor
	if f == 0 {
		f = 2
	}
	limit := float64(math.MaxInt64)
	if e.Max > 0 {
		limit = float64(e.Max)
	}
	d := float64(e.Initial) * math.Pow(f, float64(max(n, 1)-1))
	if d >= limit || math.IsNaN(d) {
		if e.Max > 0 {
			return e.Max
		}
		return math.MaxInt64
	}
	return time.Duration(d)
}

// Sequence returns the waits of a poll one by one: Delay(1), Delay(2), …
func (e Exponential) Sequence() *Sequence { return &Sequence{e: e} }

// Sequence hands out an Exponential's waits in order. It is not safe for
// concurrent use; each poll loop takes its own.
type Sequence struct {
	e Exponential
	n int
}

// Next returns the next wait.
func (s *Sequence) Next() time.Duration {
	s.n++
	return s.e.Delay(s.n)
}
