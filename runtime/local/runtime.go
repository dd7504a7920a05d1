// Package local is Slipway's embedded runtime: every dyno is a child process
// of the server, started from the release's unpacked slug, and a built-in
// router (Runtime.Router) sends each app's HTTP traffic to its ready web
// dynos.
//
// Deploy, scaling (Deploy of the running release with other quantities) and
// Restart share one converge code path (convergeType): per formation type,
// with surge S and max unavailable U, each round first stops the old
// dynos it may (those not ready, then ready ones as long as at least
// min(quantity, ready before) - U stay ready: out of the router, drained,
// stopped), then starts new ones up to quantity + S dynos in all, waits
// until they are healthy and routes them; rounds repeat until every old
// dyno is replaced. With the defaults (S 1, U 0) the first round stops
// nothing and starts one, and each later round stops one old dyno and
// starts one new. Process types converge in parallel, each at its own
// pace. A failure stops the new
// dynos and converges back to the app's last successful desired state
// (auto-revert), again with the same rules, so the app never loses
// capacity.
//
// Dynos: a dyno runs `/bin/sh -c <command>` in the slug directory, in its
// own process group (signals go to the whole group), with exactly the
// config vars, PORT (a free loopback port per process), DYNO (type.N), HOME
// (the slug directory), PATH=/usr/local/bin:/usr/bin:/bin and
// SLIPWAY_RELEASE_VERSION as its environment, nothing of the server's (see
// dynoEnv; isolation changes PORT and HOME; a config var PATH or HOME
// replaces the default). Numbers are the lowest free
// per type, so with surge 1 a rollout of web.1–3 starts web.4, then web.1
// again, and so on. Output is appended to DataDir/logs/<app id>/<dyno>.log
// after a header line naming the release, a stamped line at a time, and
// rotated into <dyno>.log.1 past Config.LogMaxBytes; Logs reads it back (a
// slipway.LogSource). Only the type "web" is routed.
//
// Progress: each rollout step is one slipway.ProgressEvent (started,
// healthy, routed, drained, stopped, failed, info, done) whose Message is a
// complete log line, such as "web.4 is healthy (v7, 12.3ms after start)" or
// "web: 4/4 on v7"; calls of the ProgressFunc are serialized.
//
// Locks: Deploy, Restart and Remove of one app are serialized by a per-app
// lock; apps do not wait for each other. Dynos and the router never take that
// lock: they read short-lived per-app and per-dyno mutexes and atomics.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	slipway "github.com/slipway/slipway"
)

// Runtime runs dynos as local processes and routes HTTP to them. It
// implements slipway.Runtime. Create it with New; Close it at shutdown.
type Runtime struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
	// after makes the timers of crash-restart backoff; tests replace it to
	// check the backoff sequence without sleeping.
	after func(time.Duration) <-chan time.Time

	ctx    context.Context // cancelled by Close; the context of auto-reverts
	cancel context.CancelFunc
	wg     sync.WaitGroup // supervisors and process watchers

	mu     sync.RWMutex
	apps   map[string]*app // by app id
	hosts  map[string]*app // by lower-case app key, for the router
	closed bool

	iso      *isolator // nil: dynos run unisolated as the server's user
	initPath string    // the binary that runs the dyno init (this one)
	ports    portAllocator
	state    *stateFile
	health   *http.Client
	router   *router
}

// app is what the runtime knows of one app.
type app struct {
	id string
	// lock serializes Deploy, Restart and Remove (a channel so that waiting
	// for it honours the caller's context).
	lock chan struct{}

	mu      sync.Mutex // guards the fields below; never held while waiting
	ref     slipway.AppRef
	key     string // lower-case key the router knows the app by
	dynos   []*dyno
	last    *slipway.Desired // the last desired state that converged
	removed bool

	// routes holds the ready web dynos, rebuilt under mu whenever a dyno's
	// routed flag changes; the router reads it without locks.
	routes atomic.Pointer[[]*dyno]
	next   atomic.Uint32 // round-robin start

	// split divides web traffic between two releases (see traffic.go);
	// nil sends it to every routed web dyno.
	split   atomic.Pointer[trafficSplit]
	traffic appTraffic // the router's counts per release
}

// New returns a runtime for cfg (defaults filled, then validated). It
// creates cfg.DataDir and adopts the dynos that a previous server listed in
// DataDir/dynos.json and that still run: their inits hold them, so a server
// killed and restarted leaves every dyno's pid unchanged, and the router
// sends traffic to the adopted web dynos as soon as New returns. A later
// Deploy of the same release keeps them; adopted dynos that no Deploy
// claims within AdoptGrace are stopped. Release-phase commands and
// processes of an older format are stopped instead (SIGTERM, SIGKILL after
// StopGrace, so New may block up to StopGrace). Errors carry no code.
func New(cfg Config) (*Runtime, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for _, dir := range []string{cfg.DataDir, filepath.Join(cfg.DataDir, "logs"), filepath.Join(cfg.DataDir, "dynos")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("local runtime: %w", err)
		}
	}
	var iso *isolator
	if cfg.Isolation.Enabled {
		var err error
		if iso, err = newIsolator(cfg.Isolation, cfg.DataDir); err != nil {
			return nil, err
		}
	}
	state := &stateFile{path: filepath.Join(cfg.DataDir, "dynos.json"), procs: map[int]procRecord{}}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		cfg:      cfg,
		log:      cfg.Logger,
		now:      cfg.Now,
		after:    time.After,
		ctx:      ctx,
		cancel:   cancel,
		apps:     map[string]*app{},
		hosts:    map[string]*app{},
		iso:      iso,
		initPath: "/proc/self/exe",
		ports:    portAllocator{min: cfg.PortMin, max: cfg.PortMax, used: map[int]bool{}},
		state:    state,
		health: &http.Client{
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	r.router = newRouter(r)
	r.adoptAll(readRecords(state.path, cfg.Logger))
	if err := state.write(); err != nil {
		cancel()
		return nil, fmt.Errorf("local runtime: %w", err)
	}
	return r, nil
}

// errClosed is the cause of operations cut short by Close.
var errClosed = errors.New("the local runtime is shutting down")

// opContext returns ctx, also cancelled (with errClosed) when r is closed.
func (r *Runtime) opContext(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(r.ctx, func() { cancel(errClosed) })
	return ctx, func() { stop(); cancel(nil) }
}

// lockApp returns the app of ref, created if new, with its lock held.
func (r *Runtime) lockApp(ctx context.Context, ref slipway.AppRef) (*app, error) {
	for {
		r.mu.RLock()
		closed := r.closed
		r.mu.RUnlock()
		if closed {
			return nil, slipway.Errorf(slipway.EConflict, "The runtime is shutting down; try again when the server is back.")
		}
		a := r.appFor(ref)
		select {
		case a.lock <- struct{}{}:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		a.mu.Lock()
		removed := a.removed
		a.mu.Unlock()
		if !removed {
			return a, nil
		}
		<-a.lock // removed while we waited: start over with a fresh app
	}
}

// findApp returns the app with this id or key, nil if none.
func (r *Runtime) findApp(idOrKey string) *app {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if a := r.apps[idOrKey]; a != nil {
		return a
	}
	return r.hosts[strings.ToLower(idOrKey)]
}

var safeIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// typePlan is one formation type resolved against the slug.
type typePlan struct {
	typ         string
	quantity    int
	command     string
	healthcheck string
	size        string
}

// buildFailure is the failure of a release whose slug this runtime cannot
// run.
func buildFailure() *slipway.Failure { return &slipway.Failure{Phase: slipway.FailBuild} }

// plan checks d and resolves its formations; nothing is started when it
// fails. Image slugs are ENotImplemented, anything else wrong EUnprocessable.
func plan(d *slipway.Desired) ([]typePlan, error) {
	if !safeIDRE.MatchString(d.App.ID) {
		return nil, slipway.Errorf(slipway.EUnprocessable, "The app id %q cannot be used by the local runtime.", d.App.ID)
	}
	if d.Slug.Dir == "" {
		if d.Slug.Image != "" {
			return nil, slipway.WithFailure(slipway.Errorf(slipway.ENotImplemented, "The local runtime runs archive slugs only; slug %s is the image %s. Use the kubernetes runtime for docker:// builds.", d.Slug.ID, d.Slug.Image), buildFailure())
		}
		return nil, slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "Slug %s has no unpacked directory to run.", d.Slug.ID), buildFailure())
	}
	if fi, err := os.Stat(d.Slug.Dir); err != nil || !fi.IsDir() {
		return nil, slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "The directory of slug %s is missing on this server; build it again.", d.Slug.ID), buildFailure())
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	var plans []typePlan
	for _, f := range d.Formations {
		if f.Type == "release" {
			continue // the release phase, never a dyno
		}
		cmd := f.Command
		if cmd == "" {
			cmd = d.Slug.ProcessTypes[f.Type]
		}
		plans = append(plans, typePlan{typ: f.Type, quantity: f.Quantity, command: cmd, healthcheck: f.Healthcheck, size: f.Size})
	}
	return plans, nil
}

// Deploy converges the app to d (see the package comment). It runs the
// slug's release command first, once per release: not when d.Release is the
// one running, nor when it already succeeded for d.Release (recorded under
// DataDir/apps, so a server restart that deploys the current release again
// does not repeat it). Its failure changes nothing. Dynos of d.Release with the same
// command are kept, so deploying the running release scales it. Formation
// Port is ignored: every dyno gets a free loopback port as $PORT.
//
// Errors: ENotImplemented for image slugs; EUnprocessable for a bad desired
// state, a failed release phase or a dyno that crashed or stayed unhealthy
// (after auto-revert; the message says why); EConflict when the runtime is
// closing; the context's error (wrapped) when ctx ends first.
func (r *Runtime) Deploy(ctx context.Context, d slipway.Desired, progress slipway.ProgressFunc) error {
	plans, err := plan(&d)
	if err != nil {
		return err
	}
	rep := newReporter(progress, r.log, d.App.ID)
	defer rep.Close()
	ctx, done := r.opContext(ctx)
	defer done()
	a, err := r.lockApp(ctx, d.App)
	if err != nil {
		return err
	}
	defer func() { <-a.lock }()

	a.mu.Lock()
	prev := a.last
	a.mu.Unlock()
	if prev == nil || prev.Release.ID != d.Release.ID {
		if err := r.releasePhaseOnce(ctx, a, &d, rep); err != nil {
			return err
		}
	}
	if sp := a.split.Load(); sp != nil {
		// The end of a split: a promotion sends all of the traffic to
		// the canary at once, an abort all of it back.
		weight := 0
		if sp.canary == d.Release.ID {
			weight = 100
		}
		a.setSplit(&trafficSplit{canary: sp.canary, canaryVersion: sp.canaryVersion, weight: weight})
	}
	if err := r.converge(ctx, a, &d, plans, nil, rep); err != nil {
		return r.revert(a, prev, err, rep)
	}
	a.setSplit(nil)
	last := cloneDesired(d)
	a.mu.Lock()
	a.last = &last
	a.mu.Unlock()
	return nil
}

// releasePhaseOnce runs d's release command unless it already succeeded
// for d.Release.
func (r *Runtime) releasePhaseOnce(ctx context.Context, a *app, d *slipway.Desired, rep *reporter) error {
	cmd := strings.TrimSpace(d.Slug.ProcessTypes["release"])
	if cmd == "" {
		return nil
	}
	if r.releasePhaseRan(a.id, d.Release.ID) {
		rep.Emit(slipway.EventInfo, "", "release", "release phase: already ran for v%d", d.Release.Version)
		return nil
	}
	if err := r.releasePhase(ctx, a, d, cmd, rep); err != nil {
		return err
	}
	r.markReleasePhase(a.id, d.Release.ID)
	return nil
}

// Restart replaces the dynos target selects (all for "", every dyno of a
// type for its name, one for "type.N", web.1 or its id; see
// slipway.Dyno.Selected) by fresh processes of the last deployed state,
// with the rolling rules of Deploy. Errors: ENotFound for an app never
// deployed here or a target that selects no dyno; otherwise as Deploy.
func (r *Runtime) Restart(ctx context.Context, appID, dyno string, progress slipway.ProgressFunc) error {
	a := r.findApp(appID)
	if a == nil {
		return slipway.Errorf(slipway.ENotFound, "App %s has no dynos: it has not been released yet.", appID)
	}
	a.mu.Lock()
	ref := a.ref
	a.mu.Unlock()
	ctx, done := r.opContext(ctx)
	defer done()
	a, err := r.lockApp(ctx, ref)
	if err != nil {
		return err
	}
	defer func() { <-a.lock }()
	a.mu.Lock()
	last := a.last
	replace := map[string]bool{}
	for _, dy := range a.dynos {
		if snap := (slipway.Dyno{ID: dy.id, Name: dy.name, Type: dy.typ, Instance: strconv.Itoa(dy.num)}); snap.Selected(dyno) {
			replace[dy.id] = true
		}
	}
	a.mu.Unlock()
	if last == nil {
		return slipway.Errorf(slipway.ENotFound, "App %s has no dynos: it has not been released yet.", appID)
	}
	if dyno != "" && len(replace) == 0 {
		return slipway.Errorf(slipway.ENotFound, "App %s has no dyno %q.", appID, dyno)
	}
	plans, err := plan(last)
	if err != nil {
		return err
	}
	rep := newReporter(progress, r.log, a.id)
	defer rep.Close()
	if err := r.converge(ctx, a, last, plans, replace, rep); err != nil {
		return r.revert(a, last, err, rep)
	}
	return nil
}

// revert converges a back to prev (or to nothing when there was no previous
// state) after cause made a rollout fail, and returns the error to report.
func (r *Runtime) revert(a *app, prev *slipway.Desired, cause error, rep *reporter) error {
	msg := slipway.Sentence(causeMessage(cause))
	if r.ctx.Err() != nil {
		return wrapCause(cause, msg+" The runtime is shutting down, so nothing was reverted.")
	}
	target := &slipway.Desired{App: a.ref}
	if prev != nil {
		target = prev
		rep.Emit(slipway.EventInfo, "", "", "reverting to v%d", prev.Release.Version)
	} else {
		rep.Emit(slipway.EventInfo, "", "", "stopping the new dynos: there is no previous release to go back to")
	}
	var plans []typePlan
	var err error
	if prev != nil {
		plans, err = plan(prev)
	}
	if sp := a.split.Load(); sp != nil {
		a.setSplit(&trafficSplit{canary: sp.canary, canaryVersion: sp.canaryVersion}) // all traffic back
	}
	if err == nil {
		err = r.converge(r.ctx, a, target, plans, nil, rep)
	}
	a.setSplit(nil)
	if err != nil {
		r.log.Error("auto-revert failed", "app", a.id, "err", err)
		return wrapCause(cause, msg+" Reverting failed too: "+causeMessage(err))
	}
	if prev != nil {
		return wrapCause(cause, msg+fmt.Sprintf(" The app is back on v%d.", prev.Release.Version))
	}
	return wrapCause(cause, msg+" The new dynos were stopped.")
}

// causeMessage is the user-facing text of a rollout error.
func causeMessage(err error) string { return slipway.Message(err) }

// wrapCause returns an EUnprocessable error with msg that still matches
// cause with errors.Is (so a cancelled context stays detectable) and
// carries cause's slipway.Failure.
func wrapCause(cause error, msg string) error {
	return slipway.WithFailure(slipway.WithCause(slipway.EUnprocessable, cause, msg), slipway.FailureOf(cause))
}

// Dynos lists the app's dynos by type, then number. An app this runtime
// never ran (or removed) has none; that is not an error.
func (r *Runtime) Dynos(ctx context.Context, appID string) ([]slipway.Dyno, error) {
	a := r.findApp(appID)
	if a == nil {
		return []slipway.Dyno{}, nil
	}
	a.mu.Lock()
	ds := append([]*dyno(nil), a.dynos...)
	a.mu.Unlock()
	out := make([]slipway.Dyno, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.snapshot())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return dynoNum(out[i].Name) < dynoNum(out[j].Name)
	})
	return out, nil
}

func dynoNum(name string) int {
	_, n, _ := strings.Cut(name, ".")
	i, _ := strconv.Atoi(n)
	return i
}

// Remove drains and stops every dyno of the app at once (no rolling: the app
// is going away), forgets its last state and removes its routes. Removing an
// unknown app is not an error. It waits for a running Deploy of the app.
func (r *Runtime) Remove(ctx context.Context, appID string) error {
	a := r.findApp(appID)
	if a == nil {
		return nil
	}
	select {
	case a.lock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-a.lock }()
	a.mu.Lock()
	a.removed = true
	ds := append([]*dyno(nil), a.dynos...)
	a.mu.Unlock()
	r.mu.Lock()
	if r.apps[a.id] == a {
		delete(r.apps, a.id)
	}
	for k, v := range r.hosts {
		if v == a {
			delete(r.hosts, k)
		}
	}
	r.mu.Unlock()
	r.stopDynos(ds, newReporter(nil, r.log, a.id))
	os.Remove(r.releasePhasePath(a.id))
	os.RemoveAll(filepath.Join(r.cfg.DataDir, "logs", a.id))
	return nil
}

// Close stops every dyno with the stop rules (out of the router, drain,
// SIGTERM, SIGKILL after StopGrace), all apps at once, after cancelling
// running rollouts; then it waits for every goroutine of the runtime. Later
// Deploys fail with EConflict. Close is idempotent and returns nil.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	apps := make([]*app, 0, len(r.apps))
	for _, a := range r.apps {
		apps = append(apps, a)
	}
	r.mu.Unlock()
	r.cancel()

	var wg sync.WaitGroup
	for _, a := range apps {
		wg.Go(func() {
			a.lock <- struct{}{} // wait for a running rollout to give up
			defer func() { <-a.lock }()
			a.mu.Lock()
			ds := append([]*dyno(nil), a.dynos...)
			a.mu.Unlock()
			r.stopDynos(ds, newReporter(nil, r.log, a.id))
		})
	}
	wg.Wait()
	r.wg.Wait()
	if err := r.state.write(); err != nil {
		r.log.Warn("local runtime: writing dynos.json", "err", err)
	}
	r.router.close()
	return nil
}

// cloneDesired copies d deeply enough that the caller may reuse its maps and
// slices.
func cloneDesired(d slipway.Desired) slipway.Desired {
	c := d
	c.Config = make(map[string]string, len(d.Config))
	for k, v := range d.Config {
		c.Config[k] = v
	}
	c.Slug.ProcessTypes = make(map[string]string, len(d.Slug.ProcessTypes))
	for k, v := range d.Slug.ProcessTypes {
		c.Slug.ProcessTypes[k] = v
	}
	c.Formations = append([]slipway.Formation(nil), d.Formations...)
	return c
}

// fmtDur prints d the way people write it: 300ms, 60s, 90s, 10m, 1.5s.
func fmtDur(d time.Duration) string {
	switch {
	case d >= 2*time.Minute && d%time.Minute == 0 && d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d >= time.Second && d%time.Second == 0 && d < time.Hour:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Second && d%time.Millisecond == 0:
		return strconv.Itoa(int(d/time.Millisecond)) + "ms"
	}
	return d.String()
}
