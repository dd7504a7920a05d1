package local

import (
	"os"
	"strings"
	"time"

	slipway "github.com/slipway/slipway"
)

// adoptAll takes over the dynos of recs that still run (see New) and stops
// the other processes a previous server left behind.
func (r *Runtime) adoptAll(recs []procRecord) {
	var stop []procRecord
	var adopted []*dyno
	for _, rec := range recs {
		if !stillRuns(rec) {
			r.cleanup(rec)
			continue
		}
		d, err := r.adopt(rec)
		if err != nil {
			r.log.Info("local runtime: stopping a process left by a previous server", "app", rec.App, "dyno", rec.Dyno, "pid", rec.PID, "why", err)
			stop = append(stop, rec)
			continue
		}
		adopted = append(adopted, d)
	}
	killOrphans(stop, r.cfg.StopGrace, r.log)
	for _, rec := range stop {
		r.cleanup(rec)
	}
	if len(adopted) == 0 {
		return
	}
	r.log.Info("local runtime: adopted the dynos of a previous server", "dynos", len(adopted))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		select {
		case <-r.after(r.cfg.AdoptGrace):
		case <-r.ctx.Done():
			return
		}
		var unclaimed []*dyno
		for _, d := range adopted {
			if d.currentSpec().env == nil {
				unclaimed = append(unclaimed, d)
			}
		}
		if len(unclaimed) > 0 {
			r.log.Warn("local runtime: stopping adopted dynos that no release claimed", "dynos", len(unclaimed))
			r.stopDynos(unclaimed, newReporter(nil, r.log, ""))
		}
	}()
}

// cleanup removes what a dead or stopped process of a previous server
// left: its folder and, with isolation, its link and cgroup.
func (r *Runtime) cleanup(rec procRecord) {
	if r.iso != nil {
		r.iso.cleanup(rec)
	}
	if rec.ID != "" {
		os.RemoveAll(r.procDir(rec.ID))
	}
}

// errNotAdoptable says why a record is stopped rather than adopted.
type errNotAdoptable string

func (e errNotAdoptable) Error() string { return string(e) }

// adopt makes a running dyno of rec one of this runtime's: its app (and
// router host), its dyno slot, a supervisor watching its init, and for web
// a place in the router.
func (r *Runtime) adopt(rec procRecord) (*dyno, error) {
	typ, num, ok := strings.Cut(rec.Dyno, ".")
	switch {
	case rec.ID == "" || rec.SpecKey == "" || rec.DynoID == "":
		return nil, errNotAdoptable("recorded by an older server")
	case !ok || typ == "release":
		return nil, errNotAdoptable("a release-phase command is not adopted")
	case (rec.NetHost != "") != (r.iso != nil):
		return nil, errNotAdoptable("started with another isolation setting")
	}
	p := &proc{id: rec.ID, pid: rec.PID, port: rec.Port, addr: rec.Addr, started: rec.Started, exited: make(chan struct{})}
	if r.iso != nil {
		b, err := r.iso.adopt(rec)
		if err != nil {
			return nil, err
		}
		p.box = b
	} else {
		r.ports.reserve(rec.Port)
	}
	if typ == "web" || rec.Healthcheck != "" {
		// A dyno the old server had not yet found healthy is not taken on
		// trust: it is stopped, and the Deploy that follows starts another.
		if ok, answer := r.probe(p, rec.Healthcheck); !ok {
			if p.box != nil {
				r.iso.forget(p.box)
			}
			return nil, errNotAdoptable("not healthy: " + answerText(answer))
		}
	}
	if err := r.watchAdopted(p); err != nil {
		if p.box != nil {
			r.iso.forget(p.box)
		}
		return nil, err
	}
	r.state.add(rec, r.log)
	ref := slipway.AppRef{ID: rec.App, Key: rec.AppKey}
	a := r.appFor(ref)
	sp := &spec{
		app: ref, release: slipway.ReleaseRef{ID: rec.Release.ID, Version: rec.Release.Version},
		typ: typ, command: rec.Command, healthcheck: rec.Healthcheck, size: rec.Size, key: rec.SpecKey,
	}
	now := r.now()
	d := &dyno{
		id: rec.DynoID, name: rec.Dyno, typ: typ, num: dynoNum(rec.Dyno), app: a, spec: sp,
		createdAt: rec.Started, stopCh: make(chan struct{}), done: make(chan struct{}),
		rep: newReporter(nil, r.log, a.id), state: slipway.DynoRunning, info: "adopted after a server restart",
		updatedAt: now, healthyAt: now, proc: p,
	}
	_ = num
	d.addr.Store(&p.addr)
	a.mu.Lock()
	a.dynos = append(a.dynos, d)
	a.mu.Unlock()
	if typ == "web" {
		d.routed.Store(true)
		a.rebuildRoutes()
	}
	r.wg.Add(1)
	go r.supervise(d, p)
	return d, nil
}

// appFor returns the app of ref, created (with its router host) if new.
func (r *Runtime) appFor(ref slipway.AppRef) *app {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.apps[ref.ID]
	if a == nil {
		a = &app{id: ref.ID, lock: make(chan struct{}, 1)}
		a.routes.Store(new([]*dyno))
		r.apps[ref.ID] = a
	}
	key := strings.ToLower(ref.Key)
	a.mu.Lock()
	if key != "" && key != a.key {
		if a.key != "" && r.hosts[a.key] == a {
			delete(r.hosts, a.key)
		}
		a.key = key
		r.hosts[key] = a
	}
	if ref.Name != "" || a.ref.ID == "" {
		a.ref = ref
	}
	a.mu.Unlock()
	return a
}

// adoptGraceDefault is how long adopted dynos wait for a Deploy to claim
// them.
const adoptGraceDefault = 5 * time.Minute
