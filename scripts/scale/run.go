package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/slipway/slipway/client"
)

// namespace is where the runtime puts the apps of the default space.
const namespace = "slipway-default"

// app is one app of the test.
type app struct {
	name, id string
	web      int       // web dynos
	builds   [2]string // build ids of v1 and v2
}

// scale is one run.
type scale struct {
	cfg     config
	began   time.Time
	db      *sql.DB
	servers []*server
	pods    *podWatch
	apps    []*app
	rep     report
}

func run(ctx context.Context, cfg config) (bool, error) {
	s := &scale{cfg: cfg, began: time.Now()}
	s.rep.cfg = cfg
	s.rep.started = time.Now().UTC()
	dsn, drop, err := freshSchema(ctx, cfg.Database)
	if err != nil {
		return false, err
	}
	if !cfg.Keep {
		defer drop()
	}
	if s.db, err = sql.Open("pgx", dsn); err != nil {
		return false, err
	}
	defer s.db.Close()
	kc, err := newKubeClient(cfg.Kubeconfig)
	if err != nil {
		return false, err
	}
	s.logf("work dir %s; %d apps, %d in flight, lease TTL %s", cfg.WorkDir, cfg.Apps, cfg.InFlight, cfg.LeaseTTL)

	for i := range 3 {
		// Each server's connections carry its name, to be counted.
		srv, err := startServer(ctx, cfg, fmt.Sprintf("s%d", i), dsn+"&application_name=slipway-scale-server")
		if err != nil {
			return false, err
		}
		defer srv.stop()
		s.servers = append(s.servers, srv)
	}
	s.logf("servers at %s, %s, %s", s.servers[0].url, s.servers[1].url, s.servers[2].url)
	if err := s.measureScrapeCost(ctx); err != nil {
		return false, err
	}
	sctx, stopScrapes := context.WithCancel(ctx)
	defer stopScrapes()
	go scrapeEvery(sctx, cfg.Scrape, s.servers)
	go s.countConnections(sctx)

	if s.pods, err = watchPods(sctx, kc, namespace); err != nil {
		return false, err
	}
	if err := s.createApps(ctx); err != nil {
		return false, err
	}
	w1, err := s.releaseWave(ctx, "release v1", 1, nil)
	if err != nil {
		return false, err
	}
	s.rep.waves = append(s.rep.waves, w1)
	victim := s.servers[2]
	w2, err := s.releaseWave(ctx, "release v2, one server killed", 2, func(done int) bool {
		if done < max(1, len(s.apps)*3/10) || !victim.alive() {
			return false
		}
		s.kill(ctx, victim)
		return true
	})
	if err != nil {
		return false, err
	}
	s.rep.waves = append(s.rep.waves, w2)
	if err := s.pickup(ctx, victim); err != nil {
		return false, err
	}
	if err := s.restartWave(ctx); err != nil {
		return false, err
	}
	if err := s.idle(ctx); err != nil {
		return false, err
	}
	for _, srv := range s.servers {
		if srv.alive() {
			srv.scrape(ctx)
		}
		smp := srv.lastSample()
		s.rep.memory = append(s.rep.memory, memoryRow{name: srv.name, rss: smp.rss, goroutines: smp.goroutines,
			peakRSS: srv.peakRSS, peakGo: srv.peakGo, killed: !srv.killed.IsZero()})
	}
	s.assert(ctx)
	s.rep.finished = time.Now().UTC()
	text := s.rep.markdown()
	fmt.Println(text)
	if cfg.Benchmarks != "" {
		f, err := os.OpenFile(cfg.Benchmarks, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return false, err
		}
		_, err = f.WriteString("\n" + text)
		if err = errors.Join(err, f.Close()); err != nil {
			return false, err
		}
		s.logf("appended to %s", cfg.Benchmarks)
	}
	if !cfg.Keep {
		kc.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), namespace, metav1.DeleteOptions{})
	}
	return s.rep.ok(), nil
}

// measureScrapeCost scrapes an idle server twice and keeps the difference
// of its statement count: what a scrape itself costs (the dyno and queue
// gauges read the store), taken off the figures.
func (s *scale) measureScrapeCost(ctx context.Context) error {
	a, err := s.servers[0].scrape(ctx)
	if err != nil {
		return err
	}
	b, err := s.servers[0].scrape(ctx)
	if err != nil {
		return err
	}
	s.rep.scrapeQueries = b.dbQueries - a.dbQueries
	return nil
}

// live returns the servers that run.
func (s *scale) live() []*server {
	var out []*server
	for _, srv := range s.servers {
		if srv.alive() {
			out = append(out, srv)
		}
	}
	return out
}

// createApps creates the apps, their formations (2 or 3 web dynos) and
// their two builds (docker:// images: kwok marks any image Ready).
func (s *scale) createApps(ctx context.Context) error {
	start := time.Now()
	s.apps = make([]*app, s.cfg.Apps)
	for i := range s.apps {
		s.apps[i] = &app{name: fmt.Sprintf("scale%04d", i), web: 2 + i%2}
	}
	err := parallel(ctx, 20, len(s.apps), func(i int) error {
		a, c := s.apps[i], s.servers[i%len(s.servers)].c
		got, err := c.CreateApp(ctx, a.name, "", "")
		if err != nil {
			return fmt.Errorf("create app %s: %w", a.name, err)
		}
		a.id = got.ID
		if _, err := c.UpdateFormations(ctx, a.name, []map[string]any{{"type": "web", "quantity": a.web}}); err != nil {
			return fmt.Errorf("formation of %s: %w", a.name, err)
		}
		for v := range 2 {
			b, err := c.CreateBuild(ctx, a.name, client.NewBuild{URL: fmt.Sprintf("docker://registry.example.com/scale/%s:v%d", a.name, v+1)})
			if err != nil {
				return fmt.Errorf("build of %s: %w", a.name, err)
			}
			if b, err = c.WaitBuild(ctx, a.name, b.ID, nil); err != nil || b.Status != "succeeded" {
				return fmt.Errorf("build of %s: %v %v", a.name, b, err)
			}
			a.builds[v] = b.ID
		}
		return nil
	})
	s.logf("created %d apps with two builds each in %.1fs", len(s.apps), time.Since(start).Seconds())
	return err
}

// parallel runs fn(0..n-1) with at most width at once; the first error
// stops it.
func parallel(ctx context.Context, width, n int, fn func(int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// releaseWave creates release v of every app, at most InFlight of them
// not yet ended at once, each through the next live server in turn, and
// waits for all to end. hook, if set, is called with the number ended so
// far until it returns true.
func (s *scale) releaseWave(ctx context.Context, name string, version int, hook func(done int) bool) (*wave, error) {
	w := &wave{name: name, version: version, before: s.samples(ctx), cpu0: readCPU()}
	w.start = time.Now()
	sem := make(chan struct{}, s.cfg.InFlight)
	ids := make([]string, len(s.apps))
	var mu sync.Mutex
	waiting := map[string]bool{}
	allCreated := false
	var createErr error
	// The collector asks the database which waiting releases ended, every
	// 250ms, and frees their places.
	collected := make(chan error, 1)
	go func() {
		for {
			if err := sleep(ctx, 250*time.Millisecond); err != nil {
				collected <- err
				return
			}
			mu.Lock()
			list := make([]string, 0, len(waiting))
			for id := range waiting {
				list = append(list, id)
			}
			finished := allCreated && len(waiting) == 0
			mu.Unlock()
			if finished {
				collected <- nil
				return
			}
			if time.Since(w.start) > 30*time.Minute {
				collected <- fmt.Errorf("%s: %d releases not ended after 30 minutes", name, len(list))
				return
			}
			ended, err := s.ended(ctx, list)
			if err != nil {
				collected <- err
				return
			}
			mu.Lock()
			for _, id := range ended {
				delete(waiting, id)
				w.done++
				<-sem
			}
			done := w.done
			mu.Unlock()
			if hook != nil && hook(done) {
				hook = nil
			}
		}
	}()
	var created sync.WaitGroup
	for i, a := range s.apps {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		created.Go(func() {
			id, err := s.createRelease(ctx, i, a, version)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				createErr = errors.Join(createErr, err)
				<-sem
				return
			}
			ids[i] = id
			waiting[id] = true
		})
	}
	created.Wait()
	mu.Lock()
	allCreated = true
	mu.Unlock()
	if err := <-collected; err != nil {
		return nil, err
	}
	if createErr != nil {
		return nil, createErr
	}
	w.end = time.Now()
	w.cpu1 = readCPU()
	w.after = s.samples(ctx)
	w.ids = ids
	if err := s.releaseFigures(ctx, w); err != nil {
		return nil, err
	}
	s.logf("%s: %d releases in %.1fs", name, len(ids), w.end.Sub(w.start).Seconds())
	return w, nil
}

// ended returns those of the releases that have ended.
func (s *scale) ended(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM releases WHERE id = ANY($1) AND status NOT IN ('queued', 'pending')`, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// createRelease creates release v of the app through a live server; if
// that server dies meanwhile, the database says whether it was made.
func (s *scale) createRelease(ctx context.Context, i int, a *app, v int) (string, error) {
	for attempt := 0; ; attempt++ {
		live := s.live()
		srv := live[(i+attempt)%len(live)]
		r, err := srv.c.CreateRelease(ctx, a.name, client.NewRelease{Slug: a.builds[v-1]})
		if err == nil {
			return r.ID, nil
		}
		var id string
		if e := s.db.QueryRowContext(ctx, `SELECT id FROM releases WHERE app_id = $1 AND version = $2`, a.id, v).Scan(&id); e == nil {
			return id, nil
		}
		// A server being killed resets the connection a moment before its
		// process is reaped: give it that moment before calling it alive.
		select {
		case <-srv.done:
		case <-time.After(2 * time.Second):
		}
		if srv.alive() || attempt > 3 {
			return "", fmt.Errorf("release v%d of %s through %s: %w", v, a.name, srv.name, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// samples scrapes every live server now; a dead one gives its last.
func (s *scale) samples(ctx context.Context) []sample {
	out := make([]sample, len(s.servers))
	for i, srv := range s.servers {
		if srv.alive() {
			srv.scrape(ctx)
		}
		out[i] = srv.lastSample()
	}
	return out
}

// kill sends SIGKILL to srv and records which of its apps had work.
func (s *scale) kill(ctx context.Context, srv *server) {
	srv.kill()
	s.rep.kill.at = srv.killed
	s.rep.kill.server = srv.name
	rows, err := s.db.QueryContext(ctx, `SELECT r.id FROM app_leases l JOIN releases r ON r.app_id = l.app_id
		WHERE l.holder = $1 AND r.status IN ('queued', 'pending')`, srv.holder)
	if err != nil {
		s.rep.kill.err = err
		return
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		rows.Scan(&id)
		s.rep.kill.releases = append(s.rep.kill.releases, id)
	}
	s.logf("killed %s (SIGKILL); it held %d releases not ended", srv.name, len(s.rep.kill.releases))
}

// pickup measures, for each release the killed server held, the time from
// the kill to the next line another server wrote in its log.
func (s *scale) pickup(ctx context.Context, srv *server) error {
	k := &s.rep.kill
	if k.at.IsZero() {
		return fmt.Errorf("no server was killed: the wave ended before 30%% of it")
	}
	for _, id := range k.releases {
		var at sql.NullInt64
		if err := s.db.QueryRowContext(ctx, `SELECT min(at) FROM release_logs WHERE release_id = $1 AND at > $2`, id, k.at.UnixMicro()).Scan(&at); err != nil {
			return err
		}
		if !at.Valid {
			k.lost++
			continue
		}
		k.pickups = append(k.pickups, time.UnixMicro(at.Int64).Sub(k.at))
	}
	sort.Slice(k.pickups, func(i, j int) bool { return k.pickups[i] < k.pickups[j] })
	return nil
}

// releaseFigures reads the wave's releases from the database and the
// pods' readiness from the watch.
func (s *scale) releaseFigures(ctx context.Context, w *wave) error {
	seen, lastTran := s.pods.lastReady(w.end)
	complete := s.pods.completed()
	taken := map[string]bool{}
	for _, id := range s.rep.kill.releases {
		taken[id] = true
	}
	rows, err := s.db.QueryContext(ctx, `SELECT r.id, r.status, r.created_at, r.updated_at,
			(SELECT min(at) FROM release_logs l WHERE l.release_id = r.id AND l.line LIKE 'Release v% started%')
		FROM releases r WHERE r.id = ANY($1)`, w.ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var created, updated int64
		var started sql.NullInt64
		if err := rows.Scan(&id, &status, &created, &updated, &started); err != nil {
			return err
		}
		if status != "succeeded" {
			w.notSucceeded++
			continue
		}
		c, u := time.UnixMicro(created), time.UnixMicro(updated)
		w.total = append(w.total, u.Sub(c))
		w.ends = append(w.ends, u.Sub(w.start))
		if started.Valid {
			w.queued = append(w.queued, time.UnixMicro(started.Int64).Sub(c))
		}
		if taken[id] {
			continue // its overhead includes the lease TTL: see the kill's figures
		}
		if t, ok := seen[id]; ok {
			w.overhead = append(w.overhead, u.Sub(t))
		} else {
			w.noPods++
		}
		if t, ok := lastTran[id]; ok {
			w.overheadLT = append(w.overheadLT, u.Sub(t))
		}
		if t, ok := complete[id]; ok {
			w.afterDeploy = append(w.afterDeploy, u.Sub(t))
			if r, ok := seen[id]; ok {
				w.controller = append(w.controller, t.Sub(r))
			}
		}
	}
	return rows.Err()
}

// restartWave restarts the first Restarts apps' dynos at once and waits
// until each restart is off the queue.
func (s *scale) restartWave(ctx context.Context) error {
	r := &s.rep.restart
	r.apps = s.cfg.Restarts
	r.before = s.samples(ctx)
	r.start = time.Now()
	asked := make([]time.Time, r.apps)
	err := parallel(ctx, s.cfg.InFlight, r.apps, func(i int) error {
		live := s.live()
		asked[i] = time.Now()
		return live[i%len(live)].c.RestartDynos(ctx, s.apps[i].name, "")
	})
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	left := map[string]int{}
	for i := range r.apps {
		left[s.apps[i].id] = i
	}
	for len(left) > 0 {
		rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT app_id FROM app_restarts`)
		if err != nil {
			return err
		}
		still := map[string]bool{}
		for rows.Next() {
			var id string
			rows.Scan(&id)
			still[id] = true
		}
		rows.Close()
		now := time.Now()
		for id, i := range left {
			if !still[id] {
				r.took = append(r.took, now.Sub(asked[i]))
				delete(left, id)
			}
		}
		if time.Since(r.start) > 20*time.Minute {
			return fmt.Errorf("restart: %d apps not restarted after 20 minutes", len(left))
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	r.end = time.Now()
	r.after = s.samples(ctx)
	s.logf("rolling restart of %d apps in %.1fs", r.apps, r.end.Sub(r.start).Seconds())
	return nil
}

// countConnections samples, every second, the connections the servers
// hold open to the database, keeping the most seen.
func (s *scale) countConnections(ctx context.Context) {
	for sleep(ctx, time.Second) == nil {
		var n int
		err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'slipway-scale-server'`).Scan(&n)
		if err == nil {
			s.rep.peakConns.Store(max(s.rep.peakConns.Load(), int64(n)))
		}
	}
}

// idle waits Idle with nothing asked, counting the servers' API requests.
func (s *scale) idle(ctx context.Context) error {
	// Let the restarts' old pods go first: their deletions are events.
	if err := sleep(ctx, 10*time.Second); err != nil {
		return err
	}
	s.rep.idle.before = s.samples(ctx)
	s.rep.idle.cpu0 = readCPU()
	s.rep.idle.start = time.Now()
	if err := sleep(ctx, s.cfg.Idle); err != nil {
		return err
	}
	s.rep.idle.end = time.Now()
	s.rep.idle.cpu1 = readCPU()
	s.rep.idle.after = s.samples(ctx)
	s.logf("idle %s", s.cfg.Idle)
	return nil
}

// assert checks the end state and records each check in the report.
func (s *scale) assert(ctx context.Context) {
	check := func(name string, err error) {
		s.rep.checks = append(s.rep.checks, checkResult{name: name, err: err})
		if err != nil {
			s.logf("FAILED: %s: %v", name, err)
		}
	}
	check("every release ended succeeded", s.queryNone(ctx,
		`SELECT a.name || ' v' || r.version || ' ' || r.status FROM releases r JOIN apps a ON a.id = r.app_id WHERE r.status <> 'succeeded'`))
	check("versions of each app are 1 and 2, contiguous", s.queryNone(ctx,
		`SELECT a.name || ': ' || count(r.id) || ' releases, v' || coalesce(min(r.version), 0) || '..v' || coalesce(max(r.version), 0)
		 FROM apps a LEFT JOIN releases r ON r.app_id = a.id GROUP BY a.name HAVING count(r.id) <> 2 OR min(r.version) <> 1 OR max(r.version) <> 2`))
	check("each release started once (one \"Release vN started\" line)", s.queryNone(ctx,
		`SELECT r.id || ': ' || count(l.seq) FROM releases r LEFT JOIN release_logs l ON l.release_id = r.id AND l.line LIKE 'Release v% started%'
		 GROUP BY r.id HAVING count(l.seq) <> 1`))
	check("nothing left pending (releases queued or pending, restarts queued)", s.queryNone(ctx,
		`SELECT 'release ' || id FROM releases WHERE status IN ('queued', 'pending') UNION ALL SELECT 'restart of ' || app_id FROM app_restarts`))
	check("every app ends with exactly its formation's pods, Ready, on v2", s.podsMatch(ctx))
	var windows []window
	for _, w := range s.rep.waves {
		windows = append(windows, window{name: w.name, start: w.start, end: w.end})
	}
	windows = append(windows, window{name: "restart", start: s.rep.restart.start, end: s.rep.restart.end})
	check("no app rolled out by two servers at once (servers' logs: a second server only after the first died)", s.checkNoOverlap(windows))
}

// queryNone fails with the first rows the query returns, if any.
func (s *scale) queryNone(ctx context.Context, q string) error {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var v string
		rows.Scan(&v)
		bad = append(bad, v)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
		}
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// podsMatch waits up to 2 minutes for every app to have exactly its
// formation's web pods, all Ready, all of its v2 release, none
// terminating.
func (s *scale) podsMatch(ctx context.Context) error {
	want := map[string]string{} // app id → v2 release id
	rows, err := s.db.QueryContext(ctx, `SELECT app_id, id FROM releases WHERE version = 2`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var a, r string
		rows.Scan(&a, &r)
		want[a] = r
	}
	rows.Close()
	end := time.Now().Add(2 * time.Minute)
	for {
		pods, err := s.pods.appPods(ctx)
		if err != nil {
			return err
		}
		var bad []string
		for _, a := range s.apps {
			n := 0
			for _, p := range pods[a.id] {
				if p.DeletionTimestamp != nil {
					continue
				}
				if !podReady(p) || p.Labels[labelRelease] != want[a.id] || p.Labels[labelType] != "web" {
					n = -1000
				}
				n++
			}
			if n != a.web {
				bad = append(bad, fmt.Sprintf("%s: %d pods (want %d Ready of v2)", a.name, max(n, -1), a.web))
			}
		}
		if len(bad) == 0 {
			return nil
		}
		if time.Now().After(end) {
			if len(bad) > 5 {
				bad = append(bad[:5], fmt.Sprintf("and %d more", len(bad)-5))
			}
			return errors.New(strings.Join(bad, "; "))
		}
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
}
