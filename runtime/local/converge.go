package local

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	slipway "github.com/slipway/slipway"
)

// spec is what a dyno runs: one formation type of one desired state. Dynos
// with the same key are interchangeable, so a rollout keeps them.
type spec struct {
	app         slipway.AppRef
	release     slipway.ReleaseRef
	typ         string
	command     string
	dir         string
	healthcheck string
	size        string   // the formation's size: the dynos' limits
	env         []string // base env, config vars, SLIPWAY_*; PORT and DYNO come per process
	key         string
	// sameRun is key without the release: dynos with the same sameRun
	// run the same slug, command and config. reuse lets a rollout keep
	// such dynos of another release (Desired.Reuse).
	sameRun string
	reuse   bool
}

// defaultPath is a dyno's PATH unless its config vars set one.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// releaseEnv is what every process of d gets besides PORT, DYNO and HOME:
// the config vars (minus reserved keys), PATH (defaultPath unless a config
// var sets it, as on Heroku) and SLIPWAY_RELEASE_VERSION. Nothing of the
// server's environment passes.
func (r *Runtime) releaseEnv(d *slipway.Desired) []string {
	var env []string
	if _, ok := d.Config["PATH"]; !ok {
		env = append(env, "PATH="+defaultPath)
	}
	keys := make([]string, 0, len(d.Config))
	for k := range d.Config {
		if slipway.ReservedConfigKey(k) {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+d.Config[k])
	}
	return append(env, "SLIPWAY_RELEASE_VERSION="+strconv.Itoa(d.Release.Version))
}

func (r *Runtime) newSpec(d *slipway.Desired, p typePlan) *spec {
	env := r.releaseEnv(d)
	return &spec{
		app:         d.App,
		release:     d.Release,
		typ:         p.typ,
		command:     p.command,
		dir:         d.Slug.Dir,
		healthcheck: p.healthcheck,
		size:        p.size,
		env:         env,
		key:         d.Release.ID + "\x00" + d.Slug.Dir + "\x00" + p.command + "\x00" + p.healthcheck + sizeKey(p.size),
		sameRun:     d.Slug.Dir + "\x00" + p.command + "\x00" + p.healthcheck + sizeKey(p.size) + "\x00" + strings.Join(configEnv(env), "\x00"),
		reuse:       d.Reuse,
	}
}

// sizeKey is the part of a spec's key that the size makes: nothing for
// the default size, so that dynos started before sizes existed (and
// adopted with their recorded key) still match.
func sizeKey(size string) string {
	if size == "" || size == slipway.DefaultSize {
		return ""
	}
	return "\x00size=" + size
}

// target is how many dynos of one spec a formation type runs.
type target struct {
	sp *spec
	q  int
}

// configEnv is env without the release's version.
func configEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SLIPWAY_RELEASE_VERSION=") {
			out = append(out, kv)
		}
	}
	return out
}

// converge brings every formation type of a to d: the types in plans to
// their quantity, any other type that has dynos to zero. replace holds ids
// of dynos to replace even though they match d (Restart).
func (r *Runtime) converge(ctx context.Context, a *app, d *slipway.Desired, plans []typePlan, replace map[string]bool, rep *reporter) error {
	targets := map[string][]target{}
	for _, p := range plans {
		targets[p.typ] = nil
		if p.quantity > 0 {
			targets[p.typ] = []target{{sp: r.newSpec(d, p), q: p.quantity}}
		}
	}
	return r.convergeTargets(ctx, a, targets, d.Release.Version, replace, rep)
}

// convergeTargets brings every formation type of a to its targets (any
// type not in targets that has dynos to zero). Types converge in parallel;
// the first failure cancels the others and is returned. version names the
// release in the "done" events of types that end with no dyno.
func (r *Runtime) convergeTargets(ctx context.Context, a *app, targets map[string][]target, version int, replace map[string]bool, rep *reporter) error {
	targets = maps.Clone(targets)
	a.mu.Lock()
	for _, dy := range a.dynos {
		if _, ok := targets[dy.typ]; !ok {
			targets[dy.typ] = nil
		}
	}
	a.mu.Unlock()
	types := slices.Sorted(maps.Keys(targets))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, t := range types {
		ts := targets[t]
		wg.Go(func() {
			if err := r.convergeType(ctx, a, t, ts, version, replace, rep); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel(err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// convergeType is the rolling strategy for one formation type, towards
// one target (a release) or two (a canary beside its stable release).
// With surge S and max unavailable U, each round first stops the old
// dynos it may (those not ready at all, then ready ones while the ready
// count stays at or above floor = min(quantity, ready before) - U), then
// starts up to quantity + S - (dynos left) new ones and waits until they
// are healthy and routed. Stopping a dyno is synchronous (out of the
// router, drain, SIGTERM, exit) so that names are freed for the next
// round. If dynos we counted on crash meanwhile, it starts one more dyno
// rather than stall, and once every new dyno is up it stops the remaining
// old ones regardless of the floor.
func (r *Runtime) convergeType(ctx context.Context, a *app, typ string, targets []target, version int, replace map[string]bool, rep *reporter) error {
	q := 0
	for _, t := range targets {
		q += t.q
	}
	var keep, old []*dyno
	kept := make([]int, len(targets))
	var excess []*dyno
dynos:
	for _, dy := range a.liveDynos(typ) {
		if !replace[dy.id] {
			for i, t := range targets {
				if cur := dy.currentSpec(); cur.key == t.sp.key || t.sp.reuse && cur.sameRun == t.sp.sameRun {
					if kept[i] < t.q {
						dy.claim(t.sp)
						keep = append(keep, dy)
						kept[i]++
					} else {
						excess = append(excess, dy)
					}
					continue dynos
				}
			}
		}
		old = append(old, dy)
	}
	// Scale down: the highest numbers go first.
	slices.Reverse(excess)
	old = append(excess, old...)
	floor := max(0, min(q, countReady(keep)+countReady(old))-r.cfg.MaxUnavailable)
	need := q - len(keep)
	var started []*dyno
	for need > 0 || len(old) > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("the rollout of %s was cancelled: %w", typ, context.Cause(ctx))
		}
		ready := countReady(keep) + countReady(started) + countReady(old)
		var stopNow, rest []*dyno
		for _, o := range old {
			if o.isReady() {
				rest = append(rest, o)
			} else {
				stopNow = append(stopNow, o)
			}
		}
		canStop := ready - floor
		if need == 0 {
			canStop = len(rest)
		}
		for len(rest) > 0 && canStop > 0 {
			stopNow = append(stopNow, rest[0])
			rest = rest[1:]
			canStop--
		}
		old = rest
		r.stopDynos(stopNow, rep)
		if need == 0 {
			continue
		}
		n := min(need, q+r.cfg.Surge-len(keep)-len(started)-len(old))
		if n <= 0 {
			if len(stopNow) > 0 {
				continue
			}
			n = 1
		}
		// Start for the first target still short of dynos.
		i := 0
		for kept[i] >= targets[i].q {
			i++
		}
		n = min(n, targets[i].q-kept[i])
		batch, err := r.startBatch(ctx, a, targets[i].sp, n, rep)
		started = append(started, batch...)
		if err != nil {
			return err
		}
		kept[i] += n
		need -= n
	}
	ready := countReady(keep) + countReady(started)
	switch len(targets) {
	case 0:
		rep.Emit(slipway.EventDone, "", typ, "%s: %d/0 on v%d", typ, ready, version)
	case 1:
		rep.Emit(slipway.EventDone, "", typ, "%s: %d/%d on v%d", typ, ready, q, targets[0].sp.release.Version)
	default:
		parts := make([]string, 0, len(targets))
		for _, t := range targets {
			parts = append(parts, fmt.Sprintf("%d on v%d", t.q, t.sp.release.Version))
		}
		rep.Emit(slipway.EventDone, "", typ, "%s: %s (%d/%d ready)", typ, strings.Join(parts, ", "), ready, q)
	}
	return nil
}

func countReady(ds []*dyno) int {
	n := 0
	for _, d := range ds {
		if d.isReady() {
			n++
		}
	}
	return n
}

// firstResult is the outcome of a new dyno's first start: nil once healthy.
type firstResult struct {
	d   *dyno
	err error
}

// startBatch starts n dynos of sp and waits until each is healthy, routing
// each web dyno as soon as it is. On the first failure (or ctx's end) it
// stops the batch's dynos that are not ready and returns the error; the
// dynos started are returned either way.
func (r *Runtime) startBatch(ctx context.Context, a *app, sp *spec, n int, rep *reporter) ([]*dyno, error) {
	results := make(chan firstResult, n)
	batch := make([]*dyno, 0, n)
	for range n {
		batch = append(batch, r.startDyno(a, sp, rep, results))
	}
	fail := func(err error) ([]*dyno, error) {
		var notReady []*dyno
		for _, d := range batch {
			if !d.isReady() {
				notReady = append(notReady, d)
			}
		}
		r.stopDynos(notReady, rep)
		return batch, err
	}
	for pending := n; pending > 0; pending-- {
		select {
		case res := <-results:
			d := res.d
			if res.err != nil {
				rep.Emit(slipway.EventFailed, d.name, d.typ, "%s", causeMessage(res.err))
				return fail(res.err)
			}
			rep.Emit(slipway.EventHealthy, d.name, d.typ, "%s is healthy (v%d, %s after start)", d.name, sp.release.Version, fmtMS(d.sinceStart()))
			if d.typ != "web" {
				continue
			}
			if r.route(d) {
				rep.Emit(slipway.EventRouted, d.name, d.typ, "%s is in the router", d.name)
			} else {
				rep.Emit(slipway.EventInfo, d.name, d.typ, "%s exited right after it became healthy; it restarts with backoff", d.name)
			}
		case <-ctx.Done():
			return fail(fmt.Errorf("the rollout of %s was cancelled while new dynos were starting: %w", sp.typ, context.Cause(ctx)))
		}
	}
	return batch, nil
}

// stopDynos stops ds in parallel with the stop rules and returns when all
// have exited.
func (r *Runtime) stopDynos(ds []*dyno, rep *reporter) {
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { r.stopDyno(d, rep) })
	}
	wg.Wait()
}
