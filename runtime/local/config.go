package local

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/slipway/slipway/runtime/local/dynoinit"
)

// Config is the local runtime's rollout strategy and environment. Zero
// fields take the defaults documented on each field (see New).
type Config struct {
	// DataDir holds dynos.json (the processes this server started, for
	// orphan clean-up after a crash) and logs/<app id>/<dyno>.log (and .log.1). Required.
	DataDir string

	// HealthyDeadline is how long a new dyno has to pass its health check
	// before the rollout fails. Default 60s.
	HealthyDeadline time.Duration
	// DrainTimeout bounds the wait for a dyno's in-flight requests once it
	// is out of the router; it is signalled when they are done or this has
	// passed. Default 30s.
	DrainTimeout time.Duration
	// StopGrace is the time between SIGTERM and SIGKILL. Default 10s.
	StopGrace time.Duration

	// Surge is how many dynos of a formation type may run above its
	// quantity during a rollout. Default 1 when both Surge and
	// MaxUnavailable are 0.
	Surge int
	// MaxUnavailable is how many ready dynos of a formation type a rollout
	// may take away before their replacements are ready. Default 0: the
	// number of ready dynos never drops during a rollout.
	MaxUnavailable int

	// MinUptime is how long a process without a port check (not web, no
	// healthcheck) must stay up to count as healthy. Default 2s.
	MinUptime time.Duration
	// ReleasePhaseTimeout bounds the Procfile's release command. Default 10m.
	ReleasePhaseTimeout time.Duration

	// BaseDomain is the router's domain: Host "<app key>.<BaseDomain>"
	// routes to the app. Default "localhost".
	BaseDomain string

	// CrashBackoffBase is the delay before the first restart of a crashed
	// dyno; each further crash doubles it up to CrashBackoffMax. A dyno that
	// stayed up for CrashBackoffMax before it crashed starts again from the
	// base. Defaults 1s and 60s.
	CrashBackoffBase time.Duration
	// CrashBackoffMax caps the crash restart delay. Default 60s.
	CrashBackoffMax time.Duration

	// PortMin and PortMax bound the loopback ports handed to dynos as $PORT.
	// The default, 20000–29999, lies below Linux's ephemeral range
	// (32768–60999) so that a port chosen for a dyno is not taken by an
	// outgoing connection before the dyno binds it.
	PortMin, PortMax int

	// Isolation keeps dynos apart from the server and from each other; see
	// Isolation. Off by default (dynos run as the server's user).
	Isolation Isolation

	// LogMaxBytes caps each dyno's log file: past it the file's content
	// moves to <dyno>.log.1 (the one older generation kept) and the file
	// starts afresh, so a dyno keeps at most about twice this. Default
	// 2 MiB.
	LogMaxBytes int64

	// AdoptGrace is how long dynos adopted from a previous server wait for
	// a Deploy of their release before they are stopped. Default 5m.
	AdoptGrace time.Duration

	// Logger receives what happens outside a rollout (crashes, restarts,
	// orphan clean-up). Default: discard.
	Logger *slog.Logger
	// Now is the clock for dyno timestamps and the backoff reset. Default
	// time.Now.
	Now func() time.Time
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HealthyDeadline, 60*time.Second)
	def(&c.DrainTimeout, 30*time.Second)
	def(&c.StopGrace, 10*time.Second)
	def(&c.MinUptime, 2*time.Second)
	def(&c.ReleasePhaseTimeout, 10*time.Minute)
	def(&c.CrashBackoffBase, time.Second)
	def(&c.CrashBackoffMax, 60*time.Second)
	def(&c.AdoptGrace, adoptGraceDefault)
	if c.Surge == 0 && c.MaxUnavailable == 0 {
		c.Surge = 1
	}
	if c.LogMaxBytes == 0 {
		c.LogMaxBytes = dynoinit.DefaultLogMaxBytes
	}
	if c.BaseDomain == "" {
		c.BaseDomain = "localhost"
	}
	c.BaseDomain = strings.ToLower(strings.Trim(c.BaseDomain, "."))
	if c.PortMin == 0 && c.PortMax == 0 {
		c.PortMin, c.PortMax = 20000, 29999
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate returns an error (no code: this is server configuration, not a
// user's request) naming the first field that is out of range or
// inconsistent with another. Zero fields pass (they mean "default") except
// Surge and MaxUnavailable both 0, so a server can reject
// --surge=0 --max-unavailable=0 by calling Validate before New; New fills
// the defaults (turning that pair into 1 and 0) and validates again.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("local runtime: DataDir is required")
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"HealthyDeadline", c.HealthyDeadline}, {"DrainTimeout", c.DrainTimeout},
		{"StopGrace", c.StopGrace}, {"MinUptime", c.MinUptime},
		{"ReleasePhaseTimeout", c.ReleasePhaseTimeout},
		{"CrashBackoffBase", c.CrashBackoffBase}, {"CrashBackoffMax", c.CrashBackoffMax},
	} {
		if f.d < 0 {
			return fmt.Errorf("local runtime: %s must not be negative, got %s", f.name, f.d)
		}
	}
	if c.CrashBackoffMax != 0 && c.CrashBackoffBase > c.CrashBackoffMax {
		return fmt.Errorf("local runtime: CrashBackoffBase (%s) must not exceed CrashBackoffMax (%s)", c.CrashBackoffBase, c.CrashBackoffMax)
	}
	if c.LogMaxBytes < 0 {
		return fmt.Errorf("local runtime: LogMaxBytes must not be negative, got %d", c.LogMaxBytes)
	}
	if c.Surge < 0 || c.MaxUnavailable < 0 {
		return fmt.Errorf("local runtime: surge (%d) and max unavailable (%d) must not be negative", c.Surge, c.MaxUnavailable)
	}
	if c.Surge == 0 && c.MaxUnavailable == 0 {
		return errors.New("local runtime: surge and max unavailable cannot both be 0: a rollout could never start a new dyno")
	}
	if (c.PortMin != 0 || c.PortMax != 0) && c.PortMin < 1024 || c.PortMax > 65535 || c.PortMin > c.PortMax {
		return fmt.Errorf("local runtime: port range %d-%d is invalid: use 1024 <= PortMin <= PortMax <= 65535", c.PortMin, c.PortMax)
	}
	if strings.ContainsAny(c.BaseDomain, ":/ ") {
		return fmt.Errorf("local runtime: BaseDomain %q must be a bare domain name", c.BaseDomain)
	}
	return nil
}
