package local

import (
	"context"
	"fmt"
	"sort"
	"strconv"
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
	env         []string // base env, config vars, SLIPWAY_*; PORT and DYNO come per process
	key         string
}

// releaseEnv is what every process of d gets besides PORT, DYNO and HOME:
// a fixed PATH, the config vars (minus reserved keys) and
// SLIPWAY_RELEASE_VERSION. Nothing of the server's environment passes.
func (r *Runtime) releaseEnv(d *slipway.Desired) []string {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
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
	return &spec{
		app:         d.App,
		release:     d.Release,
		typ:         p.typ,
		command:     p.command,
		dir:         d.Slug.Dir,
		healthcheck: p.healthcheck,
		env:         r.releaseEnv(d),
		key:         d.Release.ID + "\x00" + d.Slug.Dir + "\x00" + p.command + "\x00" + p.healthcheck,
	}
}

// converge brings every formation type of a to d: the types in plans to
// their quantity, any other type that has dynos to zero. Types converge in
// parallel; the first failure cancels the others and is returned. replace
// holds ids of dynos to replace even though they match d (Restart).
func (r *Runtime) converge(ctx context.Context, a *app, d *slipway.Desired, plans []typePlan, replace map[string]bool, rep *reporter) error {
	byType := map[string]typePlan{}
	for _, p := range plans {
		byType[p.typ] = p
	}
	a.mu.Lock()
	for _, dy := range a.dynos {
		if _, ok := byType[dy.typ]; !ok {
			byType[dy.typ] = typePlan{typ: dy.typ}
		}
	}
	a.mu.Unlock()
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	sort.Strings(types)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for _, t := range types {
		p := byType[t]
		var sp *spec
		if p.quantity > 0 {
			sp = r.newSpec(d, p)
		}
		wg.Go(func() {
			if err := r.convergeType(ctx, a, d, sp, p, replace, rep); err != nil {
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

// convergeType is the rolling strategy for one formation type. With surge S
// and max unavailable U, each round first stops the old dynos it may (those
// not ready at all, then ready ones while the ready count stays at or above
// floor = min(quantity, ready before) - U), then starts up to
// quantity + S - (dynos left) new ones and waits until they are healthy and
// routed. Stopping a dyno is synchronous (out of the router, drain, SIGTERM,
// exit) so that names are freed for the next round. If dynos we counted on
// crash meanwhile, it starts one more dyno rather than stall, and once every
// new dyno is up it stops the remaining old ones regardless of the floor.
func (r *Runtime) convergeType(ctx context.Context, a *app, d *slipway.Desired, sp *spec, p typePlan, replace map[string]bool, rep *reporter) error {
	q := p.quantity
	var keep, old []*dyno
	for _, dy := range a.liveDynos(p.typ) {
		if sp != nil && dy.currentSpec().key == sp.key && !replace[dy.id] {
			dy.claim(sp)
			keep = append(keep, dy)
		} else {
			old = append(old, dy)
		}
	}
	if len(keep) > q { // scale down: the highest numbers go first
		excess := append([]*dyno(nil), keep[q:]...)
		keep = keep[:q]
		for i, j := 0, len(excess)-1; i < j; i, j = i+1, j-1 {
			excess[i], excess[j] = excess[j], excess[i]
		}
		old = append(excess, old...)
	}
	floor := max(0, min(q, countReady(keep)+countReady(old))-r.cfg.MaxUnavailable)
	need := q - len(keep)
	var started []*dyno
	for need > 0 || len(old) > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("the rollout of %s was cancelled: %w", p.typ, context.Cause(ctx))
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
		batch, err := r.startBatch(ctx, a, sp, n, rep)
		started = append(started, batch...)
		if err != nil {
			return err
		}
		need -= n
	}
	version := 0
	if sp != nil {
		version = sp.release.Version
	} else {
		version = d.Release.Version
	}
	rep.emit(slipway.EventDone, "", p.typ, "%s: %d/%d on v%d", p.typ, countReady(keep)+countReady(started), q, version)
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
				rep.emit(slipway.EventFailed, d.name, d.typ, "%s", causeMessage(res.err))
				return fail(res.err)
			}
			rep.emit(slipway.EventHealthy, d.name, d.typ, "%s is healthy (v%d, %s after start)", d.name, sp.release.Version, fmtMS(d.sinceStart()))
			if d.typ != "web" {
				continue
			}
			if r.route(d) {
				rep.emit(slipway.EventRouted, d.name, d.typ, "%s is in the router", d.name)
			} else {
				rep.emit(slipway.EventInfo, d.name, d.typ, "%s exited right after it became healthy; it restarts with backoff", d.name)
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
