package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/backoff"
	"github.com/slipway/slipway/runtime/local/dynoinit"
)

// dyno is one slot of an app's formation: a supervisor goroutine that runs a
// process, checks its health, and restarts it with backoff when it crashes,
// until it is stopped.
type dyno struct {
	id        string
	name      string // type.N
	typ       string
	num       int
	app       *app
	spec      *spec
	createdAt time.Time

	// Router state, read on the hot path without locks.
	inflight atomic.Int64                   // requests sent and not yet answered in full
	routed   atomic.Bool                    // the router may send it requests
	addr     atomic.Pointer[string]         // 127.0.0.1:PORT of the current process
	traffic  atomic.Pointer[releaseTraffic] // its release's counts; set by release()

	stopCh   chan struct{} // closed to stop the supervisor
	stopOnce sync.Once
	done     chan struct{}      // closed when the supervisor has exited
	first    chan<- firstResult // the outcome of the first start
	rep      *reporter          // the rollout that started it, for "started"
	tail     tail               // the process's last output lines

	mu        sync.Mutex // guards the fields below
	state     string
	info      string
	updatedAt time.Time
	healthyAt time.Time // zero until the current process is healthy
	stopping  bool
	proc      *proc
	stopNote  string // how the last process ended, for the "stopped" event
}

// errStopRequested ends a health wait because the dyno is being stopped.
var errStopRequested = errors.New("stop requested")

func (d *dyno) setState(now time.Time, state, info string) {
	d.mu.Lock()
	d.state, d.info, d.updatedAt = state, info, now
	d.mu.Unlock()
}

// isReady reports whether the dyno counts as available: routed for web,
// healthy and not stopping for other types.
func (d *dyno) isReady() bool {
	if d.typ == "web" {
		return d.routed.Load()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state == slipway.DynoRunning && !d.stopping
}

// sinceStart is the time from the current process's start until now.
func (d *dyno) sinceStart() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil {
		return 0
	}
	return time.Since(d.proc.started)
}

func (d *dyno) snapshot() slipway.Dyno {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slipway.Dyno{
		ID:             d.id,
		Name:           d.name,
		Instance:       strconv.Itoa(d.num),
		Type:           d.typ,
		State:          d.state,
		Ready:          d.routed.Load(),
		Release:        d.spec.release,
		Command:        d.spec.command, // d.mu is held
		CreatedAt:      d.createdAt,
		UpdatedAt:      d.updatedAt,
		AdditionalInfo: d.info,
	}
}

// liveDynos returns a's dynos of type typ that are not being stopped, by
// number.
func (a *app) liveDynos(typ string) []*dyno {
	a.mu.Lock()
	var out []*dyno
	for _, d := range a.dynos {
		if d.typ == typ {
			out = append(out, d)
		}
	}
	a.mu.Unlock()
	live := out[:0]
	for _, d := range out {
		d.mu.Lock()
		stopping := d.stopping
		d.mu.Unlock()
		if !stopping {
			live = append(live, d)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].num < live[j].num })
	return live
}

// rebuildRoutes publishes the app's routed dynos to the router. Callers
// change a dyno's routed flag first; the router re-checks the flag after it
// counts a request in, so a stale table never sends a request to a dyno
// that is draining.
func (a *app) rebuildRoutes() {
	a.mu.Lock()
	defer a.mu.Unlock()
	rs := make([]*dyno, 0, len(a.dynos))
	for _, d := range a.dynos {
		if d.routed.Load() {
			rs = append(rs, d)
		}
	}
	a.routes.Store(&rs)
}

// route puts a healthy web dyno in the router; false if it is no longer
// running or is being stopped.
func (r *Runtime) route(d *dyno) bool {
	d.mu.Lock()
	ok := d.state == slipway.DynoRunning && !d.stopping
	if ok {
		d.routed.Store(true)
	}
	d.mu.Unlock()
	if ok {
		d.app.rebuildRoutes()
	}
	return ok
}

// startDyno creates a dyno of sp with the lowest free number of its type and
// starts its supervisor; the first start's outcome goes to results.
func (r *Runtime) startDyno(a *app, sp *spec, rep *reporter, results chan<- firstResult) *dyno {
	now := r.now()
	a.mu.Lock()
	used := map[int]bool{}
	for _, d := range a.dynos {
		if d.typ == sp.typ {
			used[d.num] = true
		}
	}
	num := 1
	for used[num] {
		num++
	}
	d := &dyno{
		id:        uuid.NewString(),
		name:      sp.typ + "." + strconv.Itoa(num),
		typ:       sp.typ,
		num:       num,
		app:       a,
		spec:      sp,
		createdAt: now,
		stopCh:    make(chan struct{}),
		done:      make(chan struct{}),
		first:     results,
		rep:       rep,
		state:     slipway.DynoStarting,
		updatedAt: now,
	}
	a.dynos = append(a.dynos, d)
	a.mu.Unlock()
	r.wg.Add(1)
	go r.supervise(d, nil)
	return d
}

// forget removes d from its app and the router.
func (r *Runtime) forget(d *dyno) {
	d.routed.Store(false)
	a := d.app
	a.mu.Lock()
	for i, x := range a.dynos {
		if x == d {
			a.dynos = append(a.dynos[:i:i], a.dynos[i+1:]...)
			break
		}
	}
	a.mu.Unlock()
	a.rebuildRoutes()
}

// supervise runs d's process until d is stopped. The first start reports
// to d.first and never restarts: a rollout decides what a failed new dyno
// means. After that, a process that exits is a crash: the dyno leaves the
// router at once and starts again after an exponential backoff (reset when
// the crashed process had been healthy for CrashBackoffMax).
func (r *Runtime) supervise(d *dyno, adopted *proc) {
	defer r.wg.Done()
	defer close(d.done)
	defer r.forget(d)
	first := adopted == nil
	attempt := 0
	lastCrash := ""
	for {
		var why string
		if adopted != nil {
			p := adopted
			adopted = nil
			var stopped bool
			if why, stopped = r.runUntilExit(d, p); stopped {
				return
			}
			if d.currentSpec().env == nil {
				// Adopted and not yet claimed by a Deploy: without the
				// release's config it cannot start again; the Deploy that
				// claims the app starts a replacement.
				d.setState(r.now(), slipway.DynoCrashed, why)
				r.log.Warn("adopted dyno exited before a release claimed it", "app", d.app.id, "dyno", d.name, "why", why)
				return
			}
		} else if p, err := r.startProcess(d); err != nil {
			why = "could not be started: " + err.Error()
			if first {
				d.setState(r.now(), slipway.DynoStopped, why)
				d.first <- firstResult{d, slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s %s", d.name, why),
					&slipway.Failure{Phase: slipway.FailStart, Dyno: d.name})}
				return
			}
		} else {
			sp := d.currentSpec()
			if first {
				d.rep.Emit(slipway.EventStarted, d.name, d.typ, "%s started on v%d: %s", d.name, sp.release.Version, sp.command)
			}
			herr := r.waitHealthy(d, p)
			switch {
			case herr == errStopRequested:
				r.stopped(d, p)
				if first {
					d.first <- firstResult{d, fmt.Errorf("%s was stopped before it was healthy", d.name)}
				}
				return
			case herr != nil:
				r.terminate(p)
				if first {
					d.setState(r.now(), slipway.DynoStopped, causeMessage(herr))
					d.first <- firstResult{d, herr}
					return
				}
				why = causeMessage(herr)
			default:
				now := r.now()
				info := ""
				if lastCrash != "" {
					// The last crash stays visible until the next one:
					// an out-of-memory kill should not vanish on restart.
					info = fmt.Sprintf("restarted (attempt %d) after it %s", attempt, lastCrash)
				}
				d.mu.Lock()
				d.state, d.info, d.updatedAt, d.healthyAt = slipway.DynoRunning, info, now, now
				d.mu.Unlock()
				if first {
					first = false
					d.first <- firstResult{d, nil}
				} else {
					if d.typ == "web" {
						r.route(d)
					}
					r.log.Info("dyno restarted", "app", d.app.id, "dyno", d.name, "attempt", attempt)
				}
				var stopped bool
				if why, stopped = r.runUntilExit(d, p); stopped {
					return
				}
			}
		}

		d.mu.Lock()
		if !d.healthyAt.IsZero() && r.now().Sub(d.healthyAt) >= r.cfg.CrashBackoffMax {
			attempt = 0
		}
		d.healthyAt = time.Time{}
		d.mu.Unlock()
		attempt++
		lastCrash = why
		delay := r.backoff(attempt)
		d.setState(r.now(), slipway.DynoCrashed, fmt.Sprintf("%s; restarting in %s (attempt %d)", why, fmtDur(delay), attempt))
		r.log.Warn("dyno crashed", "app", d.app.id, "dyno", d.name, "why", why, "last_output", d.tail.last(), "restart_in", delay, "attempt", attempt)
		select {
		case <-r.after(delay):
		case <-d.stopCh:
			d.mu.Lock()
			d.state, d.info, d.updatedAt, d.stopNote = slipway.DynoStopped, "stopped while waiting to restart", r.now(), "it was not running"
			d.mu.Unlock()
			return
		}
	}
}

// runUntilExit waits while d's healthy process p runs. When p exits it
// takes d out of the router and returns why; when d is stopped it stops p
// and returns stopped.
func (r *Runtime) runUntilExit(d *dyno, p *proc) (why string, stopped bool) {
	select {
	case <-p.exited:
		d.mu.Lock()
		d.state, d.info, d.updatedAt = slipway.DynoCrashed, p.exitDescription(), r.now()
		d.routed.Store(false)
		d.mu.Unlock()
		d.app.rebuildRoutes()
		r.reap(p)
		return p.exitDescription(), false
	case <-d.stopCh:
		r.stopped(d, p)
		return "", true
	}
}

// currentSpec is what d runs; a Deploy that claims an adopted dyno gives it
// the release's full spec.
func (d *dyno) currentSpec() *spec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.spec
}

// claim gives sp to a dyno a rollout keeps: an adopted one (same key), so
// it can restart, or one of another release kept by Desired.Reuse.
func (d *dyno) claim(sp *spec) {
	d.mu.Lock()
	if d.spec.env == nil || sp.reuse && d.spec.key != sp.key {
		d.spec = sp // adopted, or kept for another release (Desired.Reuse)
	}
	d.mu.Unlock()
}

// backoff is the delay before restart attempt n (1-based): base doubled
// n-1 times, capped.
func (r *Runtime) backoff(n int) time.Duration {
	return backoff.Exponential{Initial: r.cfg.CrashBackoffBase, Max: r.cfg.CrashBackoffMax}.Delay(n)
}

// stopped terminates p on request and records how it ended.
func (r *Runtime) stopped(d *dyno, p *proc) {
	note := r.terminate(p)
	d.mu.Lock()
	d.state, d.info, d.updatedAt, d.stopNote = slipway.DynoStopped, note, r.now(), note
	d.mu.Unlock()
}

// stopDyno takes d out of the router, waits until its in-flight requests
// are answered (at most DrainTimeout), then stops its process (SIGTERM to
// the group, SIGKILL after StopGrace) and waits for the supervisor to end.
func (r *Runtime) stopDyno(d *dyno, rep *reporter) {
	d.mu.Lock()
	already := d.stopping
	d.stopping = true
	wasRouted := d.routed.Swap(false)
	if !already && (d.state == slipway.DynoRunning || d.state == slipway.DynoStarting) {
		d.state, d.info, d.updatedAt = slipway.DynoStopping, "draining", r.now()
	}
	d.mu.Unlock()
	if already {
		<-d.done
		return
	}
	if wasRouted {
		d.app.rebuildRoutes()
		start := time.Now()
		left := r.drain(d)
		if left == 0 {
			rep.Emit(slipway.EventDrained, d.name, d.typ, "%s is out of the router; its in-flight requests finished (%s)", d.name, fmtMS(time.Since(start)))
		} else {
			rep.Emit(slipway.EventDrained, d.name, d.typ, "%s is out of the router; %d requests still in flight after the %s drain timeout", d.name, left, fmtDur(r.cfg.DrainTimeout))
		}
	}
	d.stopOnce.Do(func() { close(d.stopCh) })
	<-d.done
	d.mu.Lock()
	note := d.stopNote
	d.mu.Unlock()
	if note == "" {
		note = "stopped"
	}
	rep.Emit(slipway.EventStopped, d.name, d.typ, "%s stopped (v%d): %s", d.name, d.currentSpec().release.Version, note)
}

// drain waits until d has no request in flight or DrainTimeout has passed,
// and returns the number still in flight.
func (r *Runtime) drain(d *dyno) int64 {
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	poll := backoff.Exponential{Initial: time.Millisecond, Max: 20 * time.Millisecond}.Sequence()
	for {
		n := d.inflight.Load()
		if n <= 0 {
			return 0
		}
		if !time.Now().Before(deadline) {
			return n
		}
		time.Sleep(min(poll.Next(), time.Until(deadline)))
	}
}

// startProcess starts d's command: on its own address and $PORT with
// isolation, else on a free loopback port.
func (r *Runtime) startProcess(d *dyno) (*proc, error) {
	sp := d.currentSpec()
	port, home := 0, "/app"
	if r.iso != nil {
		port = r.iso.cfg.Port
	} else {
		var err error
		if port, err = r.ports.take(); err != nil {
			return nil, err
		}
		home = sp.dir
	}
	header := fmt.Sprintf("%s v%d (release %s) starting on port %d: %s",
		d.name, sp.release.Version, sp.release.ID, port, sp.command)
	p, err := r.spawn(spawnSpec{
		appID: d.app.id, appKey: sp.app.Key, logName: d.name, dynoID: d.id, command: sp.command, dir: sp.dir,
		env: dynoEnv(sp.env, port, d.name, home), header: header, port: port,
		release: relRef{ID: sp.release.ID, Version: sp.release.Version}, specKey: sp.key, healthcheck: sp.healthcheck,
		onLine: d.tail.add, size: sp.size,
	})
	if err != nil {
		if r.iso == nil {
			r.ports.free(port)
		}
		return nil, err
	}
	d.addr.Store(&p.addr)
	d.mu.Lock()
	d.proc = p
	d.healthyAt = time.Time{}
	if !d.stopping {
		d.state, d.info, d.updatedAt = slipway.DynoStarting, "waiting for its health check", r.now()
	}
	d.mu.Unlock()
	return p, nil
}

// waitHealthy polls p's health with intervals growing from 1ms by half each
// time up to 200ms (so an app is found healthy at most about half of its
// own start time late: the interval after time t is about t/2, until it
// reaches 200ms):
// the healthcheck path answering 2xx/3xx, else for web the port accepting a
// connection, else the process staying up MinUptime. It returns nil when
// healthy, errStopRequested when d is being stopped, and an EUnprocessable
// error when the process exits first or HealthyDeadline passes.
func (r *Runtime) waitHealthy(d *dyno, p *proc) error {
	exited := func() error {
		r.reap(p) // wait for the last output lines
		msg := fmt.Sprintf("%s %s before it was healthy", d.name, p.exitDescription())
		if last := d.tail.last(); last != "" {
			msg += ": " + last
		}
		return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s", msg), p.failure(slipway.FailCrash, d.name, d.tail.lines()))
	}
	healthcheck := d.currentSpec().healthcheck
	if d.typ != "web" && healthcheck == "" {
		// hold waits dur; p exiting or d being stopped ends it early.
		hold := func(dur time.Duration) error {
			t := time.NewTimer(dur)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-p.exited:
				return exited()
			case <-d.stopCh:
				return errStopRequested
			}
		}
		// Its uptime counts from when the init started the command, not
		// from the init's own start.
		giveUp := time.Now().Add(r.cfg.HealthyDeadline)
		status := filepath.Join(r.procDir(p.id), "status")
		for poll := (backoff.Exponential{Initial: time.Millisecond, Factor: 1.5, Max: 20 * time.Millisecond}).Sequence(); dynoinit.ReadStatus(status).PID == 0; {
			if time.Now().After(giveUp) {
				return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s: its command did not start within %s", d.name, fmtDur(r.cfg.HealthyDeadline)),
					&slipway.Failure{Phase: slipway.FailCrash, Dyno: d.name, Output: d.tail.lines()})
			}
			if err := hold(poll.Next()); err != nil {
				return err
			}
		}
		return hold(r.cfg.MinUptime)
	}
	deadline := time.NewTimer(r.cfg.HealthyDeadline)
	defer deadline.Stop()
	poll := backoff.Exponential{Initial: time.Millisecond, Factor: 1.5, Max: 200 * time.Millisecond}.Sequence()
	var last slipway.HealthAnswer
	for {
		select {
		case <-p.exited:
			return exited()
		default:
		}
		ok, answer := r.probe(p, healthcheck)
		if ok {
			return nil
		}
		last = answer
		t := time.NewTimer(poll.Next())
		select {
		case <-p.exited:
			t.Stop()
			return exited()
		case <-d.stopCh:
			t.Stop()
			return errStopRequested
		case <-deadline.C:
			t.Stop()
			f := &slipway.Failure{Phase: slipway.FailHealth, Dyno: d.name, Output: d.tail.lines(), Health: &last}
			if healthcheck != "" {
				msg := fmt.Sprintf("%s did not pass its health check (GET %s) within %s", d.name, healthcheck, fmtDur(r.cfg.HealthyDeadline))
				if t := answerText(last); t != "" {
					msg += " (last attempt: " + t + ")"
				}
				return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s", msg), f)
			}
			return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s did not accept connections on its port within %s", d.name, fmtDur(r.cfg.HealthyDeadline)), f)
		case <-t.C:
		}
	}
}

// probe checks p's health once: GET healthcheck answering 2xx or 3xx, or
// with no healthcheck the port accepting a connection. It returns the
// answer: the status code and the first bytes of a GET's body, or why
// nothing answered.
func (r *Runtime) probe(p *proc, healthcheck string) (bool, slipway.HealthAnswer) {
	if healthcheck == "" {
		a := slipway.HealthAnswer{Check: "TCP connect to $PORT"}
		c, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err != nil {
			a.Error = "connection refused"
			return false, a
		}
		c.Close()
		return true, a
	}
	a := slipway.HealthAnswer{Check: "GET " + healthcheck}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+healthcheck, nil)
	if err != nil {
		a.Error = err.Error()
		return false, a
	}
	res, err := r.health.Do(req)
	if err != nil {
		a.Error = "no answer"
		return false, a
	}
	defer res.Body.Close()
	a.Code = res.StatusCode
	if res.StatusCode >= 200 && res.StatusCode < 400 {
		return true, a
	}
	// More than a failure keeps: the engine redacts config values before
	// it cuts the body, so that a value across the cut does not leak.
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	a.Body = string(b)
	a.Error = "answered " + res.Status
	return false, a
}

// answerText is a health answer as the error of a rollout says it:
// "connection refused", "answered 500 Internal Server Error".
func answerText(a slipway.HealthAnswer) string { return a.Error }
