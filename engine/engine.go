// Package engine carries out releases and builds. Releases of one app run
// one at a time in version order, and restarts of its dynos in turn with
// them; different apps run in parallel. The queue is the store itself, so
// a restart of the server loses nothing: releases left pending are resumed
// (or marked unknown past their deadline), queued restarts are carried
// out, and every app's current release is placed on its dynos again.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slipway/slipway"
)

// Store is what the engine needs of the store: the queues of builds and
// releases it works through, the leases that let one server at a time
// work on an app, and the few reads and writes of a rollout. See the
// slipway interfaces each method comes from for its errors.
type Store interface {
	slipway.BuildQueue
	slipway.ReleaseQueue
	slipway.LeaseStore

	// FindApp (slipway.AppStore) reads the app a release places.
	FindApp(ctx context.Context, idOrKey string) (*slipway.App, error)
	// ListApps (slipway.AppStore) lists the apps to place again at start.
	ListApps(ctx context.Context) ([]*slipway.App, error)
	// CreateRelease (slipway.ReleaseStore) queues an auto-release.
	CreateRelease(ctx context.Context, r slipway.NewRelease) (*slipway.Release, error)
	// CurrentRelease (slipway.ReleaseStore) is what a converge places.
	CurrentRelease(ctx context.Context, appID string) (*slipway.Release, error)
	// FindSlug (slipway.BuildStore) reads the slug a release places.
	FindSlug(ctx context.Context, id string) (*slipway.Slug, error)
	// ListFormations and EnsureFormations (slipway.FormationStore) give a
	// release its formations, the first ones from its Procfile.
	ListFormations(ctx context.Context, appID string) ([]*slipway.Formation, error)
	EnsureFormations(ctx context.Context, appID string, processTypes []string) error
	// EmitReleased (slipway.Outbox) sends released as each process type
	// is rolled out.
	EmitReleased(ctx context.Context, releaseID, process string) error
	// FindRelease (slipway.ReleaseStore) tells whether a newer release
	// waits behind a gated rollout, which it then aborts.
	FindRelease(ctx context.Context, appID, idOrVersion string) (*slipway.Release, error)
	// ListReleaseStatuses (slipway.ReleaseStatusStore) gives the checks
	// that gate a rollout.
	ListReleaseStatuses(ctx context.Context, releaseID string) ([]*slipway.ReleaseStatus, error)
	// Rollout, SaveRollout, UpdateRollout and PendingScaleDown
	// (slipway.RolloutStore) keep a gated rollout's state.
	Rollout(ctx context.Context, releaseID string) (*slipway.Rollout, error)
	SaveRollout(ctx context.Context, st *slipway.Rollout) error
	UpdateRollout(ctx context.Context, releaseID string, fn func(*slipway.Rollout) error) (*slipway.Rollout, error)
	PendingScaleDown(ctx context.Context, appID string) (*slipway.Rollout, error)
}

// Config holds the engine's dependencies and settings.
type Config struct {
	Store   Store
	Runtime slipway.Runtime
	Builder slipway.Builder
	// SlugDir is where build archives are unpacked, one folder per build.
	SlugDir string
	// MaxConcurrentBuilds bounds the builds this server runs at once
	// (fetching and unpacking take memory, disk and CPU); the others wait
	// in the queued status. Default DefaultMaxConcurrentBuilds.
	MaxConcurrentBuilds int
	// Slugs garbage-collects slugs (see SlugStore); default Store when it
	// is one. With several servers, they share SlugDir and the store.
	Slugs SlugStore
	// KeepBuilds is how many of an app's newest succeeded builds keep
	// their slugs besides those releases use. Default DefaultKeepBuilds.
	KeepBuilds int
	// ReleaseDeadline bounds a rollout; past it the release is unknown.
	ReleaseDeadline time.Duration
	// Sweep is how often the store is scanned for work another server (or
	// a lost wake-up) left behind. Default 1s.
	Sweep time.Duration
	// LeaseTTL is how long an app's lease lasts without renewal: a server
	// that dies holding it is replaced after at most LeaseTTL plus two
	// Sweeps. Default 15s.
	LeaseTTL time.Duration
	// Holder names this server in leases; default host-pid-random.
	Holder string
	// Events, when set, hears about builds and releases (webhooks, metrics).
	Events Observer
	Logger *slog.Logger
	Now    func() time.Time
}

// DefaultMaxConcurrentBuilds is how many builds a server runs at once by
// default: each holds up to the slug limit on disk and an unpacker's
// buffers in memory, and on a small server (2 cores) four keep the CPU busy
// without starving releases.
const DefaultMaxConcurrentBuilds = 4

// Observer hears what the engine does. Calls must not block for long.
type Observer interface {
	BuildFinished(b *slipway.Build, status string)
	ReleaseFinished(r *slipway.Release, status string, took time.Duration)
}

// Engine carries out releases and builds.
type Engine struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	workers map[string]*worker
	// reconverge holds apps whose converge could not run (another holder
	// had the lease); the sweep asks for it again.
	reconverge map[string]bool
	builds     map[string]context.CancelFunc
	wakes      map[string]*time.Timer // when a waiting rollout plans again
	swept      map[string]bool        // the apps the last sweep found (the sweep's own)
	buildSlots chan struct{}          // one value per running build
	ctx        context.Context        // set by Run; work started before Run waits for it
	created    time.Time              // builds of this run are newer
	wg         sync.WaitGroup
	ready      chan struct{}
}

// worker runs one app's queue. again asks it for one more pass; converge
// asks it to place the current release again (after scaling or a restart
// of the server).
type worker struct {
	again, converge bool
	cancel          context.CancelFunc
	done            chan struct{} // closed when the worker exits
}

// New returns an engine; call Run to start it.
func New(cfg Config) *Engine {
	if cfg.ReleaseDeadline <= 0 {
		cfg.ReleaseDeadline = 10 * time.Minute
	}
	if cfg.Sweep <= 0 {
		cfg.Sweep = time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 15 * time.Second
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		cfg.Holder = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxConcurrentBuilds <= 0 {
		cfg.MaxConcurrentBuilds = DefaultMaxConcurrentBuilds
	}
	if cfg.Slugs == nil {
		cfg.Slugs, _ = cfg.Store.(SlugStore)
	}
	if cfg.KeepBuilds <= 0 {
		cfg.KeepBuilds = DefaultKeepBuilds
	}
	return &Engine{cfg: cfg, log: cfg.Logger, workers: map[string]*worker{}, reconverge: map[string]bool{}, builds: map[string]context.CancelFunc{}, wakes: map[string]*time.Timer{},
		buildSlots: make(chan struct{}, cfg.MaxConcurrentBuilds), ready: make(chan struct{}), created: cfg.Now()}
}

// Run recovers what a previous run left, then carries out work until ctx
// is cancelled, and waits for running work to stop.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	e.ctx = ctx
	e.mu.Unlock()
	close(e.ready)
	if err := e.recover(ctx); err != nil {
		if ctx.Err() != nil {
			e.wg.Wait()
			return nil // stopped while recovering
		}
		return err
	}
	t := time.NewTicker(e.cfg.Sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.mu.Lock()
			for _, w := range e.wakes {
				w.Stop()
			}
			e.mu.Unlock()
			e.wg.Wait()
			return nil
		case <-t.C:
			e.sweep(ctx)
		}
	}
}

// recover fails builds a dead server left running, places every app's
// current release on its dynos again, and resumes queued work.
func (e *Engine) recover(ctx context.Context) error {
	builds, err := e.cfg.Store.UnfinishedBuilds(ctx, e.cfg.Holder)
	if err != nil {
		return fmt.Errorf("recover builds: %w", err)
	}
	for _, b := range builds {
		if !b.CreatedAt.Before(e.created) {
			continue // pushed to this run (the API serves before recovery ends)
		}
		err := e.cfg.Store.FinishBuild(ctx, b.ID, finished(slipway.BuildResult{Status: slipway.BuildFailed,
			Lines: []string{"Build failed: the server restarted while it ran; push the build again."}}))
		if err != nil && slipway.ErrorCode(err) != slipway.EConflict {
			return fmt.Errorf("recover build %s: %w", b.ID, err)
		}
	}
	e.goSweepSlugDir() // slugs of apps deleted and builds cut off while it was down
	apps, err := e.cfg.Store.ListApps(ctx)
	if err != nil {
		return fmt.Errorf("recover apps: %w", err)
	}
	for _, a := range apps {
		e.kick(a.ID, true)
	}
	return nil
}

func (e *Engine) sweep(ctx context.Context) {
	ids, err := e.cfg.Store.AppsToWork(ctx, e.cfg.Holder)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("engine sweep", "err", err)
		}
		return
	}
	// An app takes work from a sweep only when the sweep before found it
	// too: a release just created is the receiving server's, which is
	// taking its lease that moment; another server's sweep taking it
	// first would leave releases spread by sweep timing, not by where
	// they were sent. Left-behind work waits one sweep more.
	prev := e.swept
	e.swept = make(map[string]bool, len(ids))
	for _, id := range ids {
		e.swept[id] = true
		if prev[id] {
			e.Kick(id)
		}
	}
	e.mu.Lock()
	again := make([]string, 0, len(e.reconverge))
	for id := range e.reconverge {
		again = append(again, id)
	}
	clear(e.reconverge)
	e.mu.Unlock()
	for _, id := range again {
		e.kick(id, true)
	}
}

// Kick tells the engine the app has new work (a release was queued).
func (e *Engine) Kick(appID string) { e.kick(appID, false) }

// Converge places the app's current release again with its current
// formations (after scaling), through the app's queue.
func (e *Engine) Converge(appID string) { e.kick(appID, true) }

func (e *Engine) kick(appID string, converge bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w := e.workers[appID]; w != nil {
		w.again = true
		w.converge = w.converge || converge
		return
	}
	w := &worker{converge: converge, done: make(chan struct{})}
	e.workers[appID] = w
	e.wg.Add(1)
	go e.work(appID, w)
}

// RemoveApp stops the app's work in progress, waits for it to end, and
// stops everything the runtime runs for the app; then, in the background,
// the app's slugs are removed. Call it after the app's records are
// deleted, so no new work for it can start.
func (e *Engine) RemoveApp(ctx context.Context, appID string) error {
	e.mu.Lock()
	w := e.workers[appID]
	if w != nil && w.cancel != nil {
		w.cancel()
	}
	e.mu.Unlock()
	if w != nil {
		select {
		case <-w.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := e.cfg.Runtime.Remove(ctx, appID); err != nil {
		return err
	}
	e.goSweepSlugDir()
	return nil
}

func (e *Engine) work(appID string, w *worker) {
	defer e.wg.Done()
	defer close(w.done)
	<-e.ready
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	e.mu.Lock()
	w.cancel = cancel
	e.mu.Unlock()
	defer e.cfg.Store.ReleaseLease(context.WithoutCancel(ctx), appID, e.cfg.Holder)
	for {
		// Only the holder of the app's lease carries out its releases; if
		// another server has it, the sweep brings us back once it expires.
		if ok := e.lease(ctx, appID); ok {
			lctx, stop := e.keepLease(ctx, appID)
			e.mu.Lock()
			converge := w.converge
			w.converge = false
			e.mu.Unlock()
			if converge && lctx.Err() == nil {
				if err := e.converge(lctx, appID); err != nil && lctx.Err() == nil {
					e.log.Error("converge", "app", appID, "err", err)
				}
			}
			e.drain(lctx, appID)
			stop()
		}
		e.mu.Lock()
		if !w.again || ctx.Err() != nil {
			if w.converge && ctx.Err() == nil {
				e.reconverge[appID] = true // the lease was elsewhere: retry on the next sweep
			}
			delete(e.workers, appID)
			e.mu.Unlock()
			return
		}
		w.again = false
		e.mu.Unlock()
	}
}

func (e *Engine) lease(ctx context.Context, appID string) bool {
	ok, err := e.cfg.Store.AcquireLease(ctx, appID, e.cfg.Holder, e.cfg.LeaseTTL)
	if err != nil && ctx.Err() == nil {
		e.log.Error("lease", "app", appID, "err", err)
	}
	return ok && err == nil
}

// keepLease renews the app's lease in the background; the returned
// context ends when the lease is lost (work on the app must stop) or when
// stop is called.
func (e *Engine) keepLease(ctx context.Context, appID string) (context.Context, func()) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(e.cfg.LeaseTTL / 5)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				if !e.lease(lctx, appID) {
					if lctx.Err() == nil {
						e.log.Warn("lost the app's lease; another server carries out its releases now", "app", appID)
					}
					cancel()
					return
				}
			}
		}
	}()
	return lctx, func() { cancel(); <-done }
}

// drain carries out the app's waiting work in turn: its releases in
// version order and its restarts, oldest first. A release left pending
// (resumed after a restart of the server) goes before any restart.
func (e *Engine) drain(ctx context.Context, appID string) {
	for ctx.Err() == nil {
		r, err := e.cfg.Store.NextRelease(ctx, appID)
		if err != nil && slipway.ErrorCode(err) != slipway.ENotFound {
			if ctx.Err() == nil {
				e.log.Error("next release", "app", appID, "err", err)
			}
			return
		}
		rs, err := e.cfg.Store.NextRestart(ctx, appID)
		if err != nil && slipway.ErrorCode(err) != slipway.ENotFound {
			if ctx.Err() == nil {
				e.log.Error("next restart", "app", appID, "err", err)
			}
			return
		}
		switch {
		case r == nil && rs == nil:
			if err := e.scaleDown(ctx, appID); err != nil && ctx.Err() == nil {
				e.log.Error("scale down", "app", appID, "err", err)
			}
			return
		case rs != nil && (r == nil || r.Status == slipway.ReleaseQueued && rs.CreatedAt.Before(r.CreatedAt)):
			if err := e.restart(ctx, rs); err != nil {
				if ctx.Err() == nil {
					e.log.Error("restart", "app", appID, "err", err)
				}
				return
			}
		default:
			if err := e.carryOut(ctx, r); err != nil {
				if errors.Is(err, errWaiting) {
					return
				}
				if ctx.Err() == nil {
					e.log.Error("release", "app", appID, "release", r.ID, "err", err)
				}
				return
			}
		}
	}
}

// restart carries out a queued restart with the runtime's rolling rules,
// within the release deadline, and takes it off the queue however it
// ended; it returns an error only when the store failed. Stopped (the
// server stops, or the lease was lost), the restart stays queued.
func (e *Engine) restart(ctx context.Context, rs *slipway.Restart) error {
	rctx, cancel := context.WithTimeout(ctx, e.cfg.ReleaseDeadline)
	defer cancel()
	err := e.cfg.Runtime.Restart(rctx, rs.AppID, rs.Dyno, func(ev slipway.ProgressEvent) {
		e.log.Info("restart", "app", rs.AppID, "event", ev.Type, "dyno", ev.Dyno, "msg", ev.Message)
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		e.log.Warn("restart", "app", rs.AppID, "dyno", rs.Dyno, "err", err)
	}
	return e.cfg.Store.FinishRestart(ctx, rs.ID)
}

// converge places the current release again, if the app has one and no
// release is waiting (the waiting one will place itself).
func (e *Engine) converge(ctx context.Context, appID string) error {
	if next, err := e.cfg.Store.NextRelease(ctx, appID); err == nil {
		// The waiting release places itself, unless it was cut short by a
		// server restart or the runtime runs nothing of the app: then the
		// current release goes first, so the runtime knows what a failing
		// release reverts to (a runtime that adopted the dynos of a
		// previous server does not know which state they converged to).
		if _, err := e.cfg.Store.Rollout(ctx, next.ID); err == nil {
			// A gated rollout in progress places its step again, with
			// the formations as they are now.
			_, err := e.cfg.Store.UpdateRollout(ctx, next.ID, func(st *slipway.Rollout) error {
				st.Placed = false
				return nil
			})
			return err
		}
		if next.Status != slipway.ReleasePending {
			if ds, err := e.cfg.Runtime.Dynos(ctx, appID); err != nil || len(ds) > 0 {
				return err
			}
		}
	}
	cur, err := e.cfg.Store.CurrentRelease(ctx, appID)
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return nil
	}
	if err != nil {
		return err
	}
	d, err := e.desired(ctx, cur)
	if err != nil {
		return err
	}
	return e.cfg.Runtime.Deploy(ctx, *d, func(ev slipway.ProgressEvent) {
		e.log.Debug("converge", "app", appID, "event", ev.Type, "dyno", ev.Dyno, "msg", ev.Message)
	})
}

// carryOut takes one release from queued (or pending, after a restart) to
// an end. It returns an error only when the store failed; a failed rollout
// is a failed release, not an error.
func (e *Engine) carryOut(ctx context.Context, r *slipway.Release) error {
	st := e.cfg.Store
	started := e.cfg.Now()
	switch r.Status {
	case slipway.ReleaseQueued:
		if err := st.SetReleaseStatus(ctx, r.ID, slipway.ReleasePending, ""); err != nil {
			return err
		}
		e.logf(ctx, r, "Release v%d started: %s", r.Version, r.Description)
	case slipway.ReleasePending:
		started = r.UpdatedAt
		if _, err := st.Rollout(ctx, r.ID); err == nil {
			break // a gated rollout: waiting does not count against the deadline
		}
		if e.cfg.Now().Sub(started) > e.cfg.ReleaseDeadline {
			e.logf(ctx, r, "Release v%d passed its deadline of %s while the server was down; its outcome is unknown.", r.Version, e.cfg.ReleaseDeadline)
			return e.finish(ctx, r, slipway.ReleaseUnknown, "release deadline passed", started, &slipway.Failure{Phase: slipway.FailDeadline})
		}
		e.logf(ctx, r, "Release v%d resumed after a server restart.", r.Version)
	}
	sp, cur, err := e.gatedStrategy(ctx, r)
	if err != nil {
		return err
	}
	if sp != nil {
		return e.carryOutGated(ctx, r, sp, cur)
	}
	d, err := e.desired(ctx, r)
	if err != nil {
		if slipway.ErrorCode(err) == slipway.EInternal {
			return err
		}
		e.logf(ctx, r, "release_failed: %s", slipway.ErrorMessage(err))
		return e.finish(ctx, r, slipway.ReleaseFailed, slipway.ErrorMessage(err), started, placeFailure(err))
	}
	// Within a blue-green release's scale-down delay the replaced
	// release's dynos still run: a rollback to them moves traffic only.
	waiting, err := e.cfg.Store.PendingScaleDown(ctx, r.AppID)
	if err != nil && slipway.ErrorCode(err) != slipway.ENotFound {
		return err
	}
	d.Reuse = waiting != nil && r.Trigger == slipway.TriggerRollback
	dctx, cancel := context.WithDeadline(ctx, started.Add(e.cfg.ReleaseDeadline))
	defer cancel()
	err = e.cfg.Runtime.Deploy(dctx, *d, func(ev slipway.ProgressEvent) {
		e.logf(ctx, r, "%s", formatEvent(ev))
		if ev.Type == slipway.EventDone {
			// released: a formation type is fully rolled out on the release.
			if err := e.cfg.Store.EmitReleased(ctx, r.ID, ev.Process); err != nil && ctx.Err() == nil {
				e.log.Error("released event", "release", r.ID, "err", err)
			}
		}
	})
	var se *slipway.Error
	errors.As(err, &se)
	switch {
	case ctx.Err() != nil:
		return ctx.Err() // shutting down: the release stays pending and resumes
	case err == nil:
		if waiting != nil {
			if err := e.clearScaleDown(ctx, waiting.ReleaseID); err != nil {
				return err
			}
		}
		e.logf(ctx, r, "Release v%d succeeded.", r.Version)
		return e.finish(ctx, r, slipway.ReleaseSucceeded, "", started, nil)
	case (errors.Is(err, context.DeadlineExceeded) || dctx.Err() != nil) && se == nil:
		// The runtime never said how it ended: its outcome is unknown.
		// (A runtime that reverted says so in a *slipway.Error, and the
		// release has failed.)
		e.logf(ctx, r, "Release v%d did not finish within the release deadline of %s; its outcome is unknown.", r.Version, e.cfg.ReleaseDeadline)
		return e.finish(ctx, r, slipway.ReleaseUnknown, "release deadline passed", started, deadlineFailure(err))
	default:
		msg := err.Error()
		if se != nil {
			msg = se.Message
		}
		e.logf(ctx, r, "release_failed: %s", msg)
		return e.finish(ctx, r, slipway.ReleaseFailed, msg, started, placeFailure(err))
	}
}

// finish ends a release with status. A failed or unknown release records
// reason, its error, and f, why it ended as data (a Failure of phase start
// when f is nil); both have every config value of the release replaced
// by [redacted] first, as its log lines have.
func (e *Engine) finish(ctx context.Context, r *slipway.Release, status, reason string, started time.Time, f *slipway.Failure) error {
	if status == slipway.ReleaseSucceeded {
		f = nil
	} else if f == nil {
		f = &slipway.Failure{Phase: slipway.FailStart}
	}
	x := slipway.NewRedactor(r.Config)
	reason, f = x.String(reason), x.Failure(f)
	if err := e.cfg.Store.FinishRelease(ctx, r.ID, status, reason, f); err != nil {
		return err
	}
	r.Status = status
	r.Error = reason
	r.Failure = f
	if e.cfg.Events != nil {
		e.cfg.Events.ReleaseFinished(r, status, e.cfg.Now().Sub(started))
	}
	return nil
}

// logf appends a line to the release's log, with every config value of
// the release replaced by [redacted]: lines carry the output of its
// processes (the release phase, a dyno that crashed), which may print
// them.
func (e *Engine) logf(ctx context.Context, r *slipway.Release, format string, args ...any) {
	line := slipway.NewRedactor(r.Config).String(fmt.Sprintf(format, args...))
	if err := e.cfg.Store.AppendReleaseLog(ctx, r.ID, line); err != nil && ctx.Err() == nil {
		e.log.Error("release log", "release", r.ID, "err", err)
	}
}

// placeFailure is why a placement failed, as data: what the runtime
// attached to err, else build for a slug it cannot run (gone, or of a
// kind it does not run) and start for anything else.
func placeFailure(err error) *slipway.Failure {
	if f := slipway.FailureOf(err); f != nil {
		return f
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &slipway.Failure{Phase: slipway.FailDeadline}
	}
	switch slipway.ErrorCode(err) {
	case slipway.EConflict, slipway.ENotImplemented:
		return &slipway.Failure{Phase: slipway.FailBuild}
	}
	return &slipway.Failure{Phase: slipway.FailStart}
}

// deadlineFailure is a rollout cut off by the release deadline; what the
// runtime knew of the dyno it was waiting for, if it said, is kept.
func deadlineFailure(err error) *slipway.Failure {
	f := &slipway.Failure{Phase: slipway.FailDeadline}
	if rf := slipway.FailureOf(err); rf != nil {
		*f = *rf
		f.Phase = slipway.FailDeadline
	}
	return f
}

// formatEvent is a progress event's log line: runtimes write complete
// lines as messages ("web.4 healthy on v2 (12ms)"); an event without one
// is named by its dyno or process and type.
func formatEvent(ev slipway.ProgressEvent) string {
	if ev.Message != "" {
		return ev.Message
	}
	who := ev.Dyno
	if who == "" {
		who = ev.Process
	}
	return strings.TrimSpace(who + " " + ev.Type)
}

// desired builds the runtime's target for a release: its slug and config
// on the app's formations, creating the first formations from the Procfile.
func (e *Engine) desired(ctx context.Context, r *slipway.Release) (*slipway.Desired, error) {
	st := e.cfg.Store
	app, err := st.FindApp(ctx, r.AppID)
	if err != nil {
		return nil, err
	}
	slug, err := st.FindSlug(ctx, r.SlugID)
	if err != nil {
		if slipway.ErrorCode(err) == slipway.ENotFound {
			return nil, slipway.Errorf(slipway.EConflict, "the slug %s of this release no longer exists", r.SlugID)
		}
		return nil, err
	}
	types := make([]string, 0, len(slug.ProcessTypes))
	for t := range slug.ProcessTypes {
		types = append(types, t)
	}
	sort.Strings(types)
	if err := st.EnsureFormations(ctx, app.ID, types); err != nil {
		return nil, err
	}
	fs, err := st.ListFormations(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	d := &slipway.Desired{App: app.Ref(), Release: slipway.ReleaseRef{ID: r.ID, Version: r.Version}, Slug: *slug, Config: r.Config}
	for _, f := range fs {
		f := *f
		if f.Command == "" {
			cmd, ok := slug.ProcessTypes[f.Type]
			if !ok {
				if f.Quantity > 0 {
					e.logf(ctx, r, "%s: the Procfile has no %s process and the formation no command; skipped.", f.Type, f.Type)
				}
				continue
			}
			f.Command = cmd
		}
		d.Formations = append(d.Formations, f)
	}
	return d, nil
}

// Restart queues a rolling restart of the dynos dyno selects (all for "",
// a process type's, or one: see slipway.Dyno.Selected) and returns. Like
// releases, it is carried out by the server that holds the app's lease,
// in turn with the app's releases, so it never runs beside a rollout of
// the app on another server. ENotFound when dyno selects no dyno.
func (e *Engine) Restart(ctx context.Context, appID, dyno string) error {
	if dyno != "" {
		dynos, err := e.cfg.Runtime.Dynos(ctx, appID)
		if err != nil {
			return err
		}
		found := false
		for _, d := range dynos {
			found = found || d.Selected(dyno)
		}
		if !found {
			return slipway.Errorf(slipway.ENotFound, "No dyno or process type %q with dynos was found; list them with GET /apps/{app}/dynos.", slipway.Clip(dyno))
		}
	}
	if _, err := e.cfg.Store.QueueRestart(ctx, appID, dyno); err != nil {
		return err
	}
	e.Kick(appID)
	return nil
}
