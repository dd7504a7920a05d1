package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	slipway "github.com/slipway/slipway"
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
	inflight atomic.Int64           // requests sent and not yet answered in full
	routed   atomic.Bool            // the router may send it requests
	addr     atomic.Pointer[string] // 127.0.0.1:PORT of the current process

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
		Type:           d.typ,
		State:          d.state,
		Ready:          d.routed.Load(),
		Release:        d.spec.release,
		Command:        d.spec.command,
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
		id:        newID(),
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
	go r.supervise(d)
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
func (r *Runtime) supervise(d *dyno) {
	defer r.wg.Done()
	defer close(d.done)
	defer r.forget(d)
	first := true
	attempt := 0
	for {
		var why string
		p, err := r.startProcess(d)
		if err != nil {
			why = "could not be started: " + err.Error()
			if first {
				d.setState(r.now(), slipway.DynoStopped, why)
				d.first <- firstResult{d, slipway.Errorf(slipway.EUnprocessable, "%s %s", d.name, why)}
				return
			}
		} else {
			if first {
				d.rep.emit(slipway.EventStarted, d.name, d.typ, "%s started on v%d: %s", d.name, d.spec.release.Version, d.spec.command)
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
				d.mu.Lock()
				d.state, d.info, d.updatedAt, d.healthyAt = slipway.DynoRunning, "", now, now
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
				select {
				case <-p.exited:
					d.mu.Lock()
					d.state, d.info, d.updatedAt = slipway.DynoCrashed, p.exitDescription(), r.now()
					d.routed.Store(false)
					d.mu.Unlock()
					d.app.rebuildRoutes()
					r.reap(p)
					why = p.exitDescription()
				case <-d.stopCh:
					r.stopped(d, p)
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

// backoff is the delay before restart attempt n (1-based): base doubled
// n-1 times, capped.
func (r *Runtime) backoff(n int) time.Duration {
	d := r.cfg.CrashBackoffBase
	for i := 1; i < n && d < r.cfg.CrashBackoffMax; i++ {
		d *= 2
	}
	return min(d, r.cfg.CrashBackoffMax)
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
			rep.emit(slipway.EventDrained, d.name, d.typ, "%s is out of the router; its in-flight requests finished (%s)", d.name, fmtMS(time.Since(start)))
		} else {
			rep.emit(slipway.EventDrained, d.name, d.typ, "%s is out of the router; %d requests still in flight after the %s drain timeout", d.name, left, fmtDur(r.cfg.DrainTimeout))
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
	rep.emit(slipway.EventStopped, d.name, d.typ, "%s stopped (v%d): %s", d.name, d.spec.release.Version, note)
}

// drain waits until d has no request in flight or DrainTimeout has passed,
// and returns the number still in flight.
func (r *Runtime) drain(d *dyno) int64 {
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	interval := time.Millisecond
	for {
		n := d.inflight.Load()
		if n <= 0 {
			return 0
		}
		if !time.Now().Before(deadline) {
			return n
		}
		time.Sleep(min(interval, time.Until(deadline)))
		interval = min(interval*2, 20*time.Millisecond)
	}
}

// startProcess starts d's command with a fresh port.
func (r *Runtime) startProcess(d *dyno) (*proc, error) {
	port, err := r.ports.take()
	if err != nil {
		return nil, err
	}
	env := append(append([]string(nil), d.spec.env...), "PORT="+strconv.Itoa(port), "DYNO="+d.name)
	header := fmt.Sprintf("--- %s %s v%d (release %s) starting on port %d: %s\n",
		r.now().UTC().Format(time.RFC3339), d.name, d.spec.release.Version, d.spec.release.ID, port, d.spec.command)
	p, err := r.spawn(d.app.id, d.name, d.spec.command, d.spec.dir, env, header, d.tail.add)
	if err != nil {
		r.ports.free(port)
		return nil, err
	}
	p.port = port
	addr := "127.0.0.1:" + strconv.Itoa(port)
	d.addr.Store(&addr)
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
// time up to 200ms (so an app is found healthy at most a third of its own
// start time late):
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
		return slipway.Errorf(slipway.EUnprocessable, "%s", msg)
	}
	if d.typ != "web" && d.spec.healthcheck == "" {
		t := time.NewTimer(r.cfg.MinUptime)
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
	deadline := time.NewTimer(r.cfg.HealthyDeadline)
	defer deadline.Stop()
	interval := time.Millisecond
	var last string
	for {
		select {
		case <-p.exited:
			return exited()
		default:
		}
		ok, detail := r.probe(d, p)
		if ok {
			return nil
		}
		last = detail
		t := time.NewTimer(interval)
		select {
		case <-p.exited:
			t.Stop()
			return exited()
		case <-d.stopCh:
			t.Stop()
			return errStopRequested
		case <-deadline.C:
			t.Stop()
			if d.spec.healthcheck != "" {
				msg := fmt.Sprintf("%s did not pass its health check (GET %s) within %s", d.name, d.spec.healthcheck, fmtDur(r.cfg.HealthyDeadline))
				if last != "" {
					msg += " (last attempt: " + last + ")"
				}
				return slipway.Errorf(slipway.EUnprocessable, "%s", msg)
			}
			return slipway.Errorf(slipway.EUnprocessable, "%s did not accept connections on its port within %s", d.name, fmtDur(r.cfg.HealthyDeadline))
		case <-t.C:
		}
		interval = min(interval*3/2, 200*time.Millisecond)
	}
}

// probe checks p's health once.
func (r *Runtime) probe(d *dyno, p *proc) (bool, string) {
	addr := "127.0.0.1:" + strconv.Itoa(p.port)
	if d.spec.healthcheck == "" {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, "connection refused"
		}
		c.Close()
		return true, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+d.spec.healthcheck, nil)
	if err != nil {
		return false, err.Error()
	}
	res, err := r.health.Do(req)
	if err != nil {
		return false, "no answer"
	}
	res.Body.Close()
	if res.StatusCode >= 200 && res.StatusCode < 400 {
		return true, ""
	}
	return false, "answered " + res.Status
}

// proc is one started process (group).
type proc struct {
	pid     int // also the process group id
	port    int // 0 for the release phase
	started time.Time
	exited  chan struct{} // closed once the process has exited and been waited for
	waitErr error         // cmd.Wait's error, read after exited
	outDone chan struct{} // closed once its output is copied to the log
	reaped  sync.Once
}

// exitDescription says how the process ended; call it after exited.
func (p *proc) exitDescription() string {
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "was killed by signal " + ws.Signal().String()
		}
		return "exited with status " + strconv.Itoa(ee.ExitCode())
	}
	if p.waitErr != nil {
		return "ended: " + p.waitErr.Error()
	}
	return "exited with status 0"
}

// exitCode is the process's exit status, -1 when a signal killed it.
func (p *proc) exitCode() int {
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode()
	}
	if p.waitErr != nil {
		return -1
	}
	return 0
}

// spawn starts `/bin/sh -c <command>` in its own process group (so a
// Procfile line such as `TAG=one ./server` works as it does on Heroku) with
// env, appending its output (after header) to DataDir/logs/<appID>/<logName>.log
// and feeding each output line to onLine, and records it in dynos.json.
func (r *Runtime) spawn(appID, logName, command, dir string, env []string, header string, onLine func(string)) (*proc, error) {
	logDir := filepath.Join(r.cfg.DataDir, "logs", appID)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(logDir, logName+".log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(header); err != nil {
		f.Close()
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		f.Close()
		return nil, err
	}
	cmd := exec.Command("/bin/sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	started := time.Now()
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		f.Close()
		return nil, err
	}
	p := &proc{pid: cmd.Process.Pid, started: started, exited: make(chan struct{}), outDone: make(chan struct{})}
	r.state.add(procRecord{App: appID, Dyno: logName, PID: p.pid, PGID: p.pid, StartTicks: procStartTicks(p.pid), Started: started.UTC()}, r.log)
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		copyOutput(f, pr, onLine)
		pr.Close()
		f.Close()
		close(p.outDone)
	}()
	go func() {
		defer r.wg.Done()
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// terminate stops p: SIGTERM to its group, SIGKILL after StopGrace; it
// returns how the process ended. It is a no-op (bar reaping) for a process
// that already exited.
func (r *Runtime) terminate(p *proc) string {
	select {
	case <-p.exited:
		r.reap(p)
		return p.exitDescription()
	default:
	}
	syscall.Kill(-p.pid, syscall.SIGTERM)
	t := time.NewTimer(r.cfg.StopGrace)
	defer t.Stop()
	note := ""
	select {
	case <-p.exited:
		note = p.exitDescription()
	case <-t.C:
		syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.exited
		note = "killed with SIGKILL after the " + fmtDur(r.cfg.StopGrace) + " stop grace period"
	}
	r.reap(p)
	return note
}

// reap finishes an exited process: SIGKILL to whatever is left of its group,
// a bounded wait for its last output, its port back to the pool and its
// entry out of dynos.json.
func (r *Runtime) reap(p *proc) {
	p.reaped.Do(func() {
		syscall.Kill(-p.pid, syscall.SIGKILL)
		t := time.NewTimer(2 * time.Second)
		select {
		case <-p.outDone:
		case <-t.C:
		}
		t.Stop()
		if p.port != 0 {
			r.ports.free(p.port)
		}
		r.state.remove(p.pid, r.log)
	})
}
