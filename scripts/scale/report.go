package main

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slipway/slipway/store"
)

// wave is one wave of releases and what it measured.
type wave struct {
	name          string
	version       int
	start, end    time.Time
	before, after []sample // per server
	cpu0, cpu1    cpuTimes // the machine's processes, at start and end
	ids           []string
	done          int
	total         []time.Duration // create → succeeded
	ends          []time.Duration // wave start → succeeded
	queued        []time.Duration // create → "Release vN started"
	overhead      []time.Duration // last new pod Ready (watched) → succeeded
	overheadLT    []time.Duration // the same from lastTransitionTime (whole seconds)
	controller    []time.Duration // of that: last new pod Ready → Deployment seen rolled out
	afterDeploy   []time.Duration // and: Deployment seen rolled out → succeeded
	notSucceeded  int
	noPods        int // succeeded releases none of whose pods the watch saw Ready
}

type memoryRow struct {
	name            string
	rss, goroutines float64
	peakRSS, peakGo float64
	killed          bool
}

type checkResult struct {
	name string
	err  error
}

// report is everything one run prints.
type report struct {
	cfg               config
	started, finished time.Time
	waves             []*wave
	kill              struct {
		server   string
		at       time.Time
		releases []string        // releases not ended on the killed server's apps
		pickups  []time.Duration // kill → next log line of each, sorted
		lost     int             // of them, never picked up
		err      error
	}
	restart struct {
		apps          int
		start, end    time.Time
		before, after []sample
		took          []time.Duration
	}
	idle struct {
		start, end    time.Time
		before, after []sample
		cpu0, cpu1    cpuTimes
	}
	memory []memoryRow
	// peakConns is the most connections the servers held open at once.
	peakConns atomic.Int64
	// finishedBy counts, per window of windows and server, the apps whose
	// last rollout event in the window was that server's.
	windows    []window
	finishedBy [][]int
	handovers  int // rollouts of an app another server went on with after the first died
	// scrapeQueries is what one scrape costs in statements, taken off.
	scrapeQueries float64
	checks        []checkResult
}

func (r *report) ok() bool {
	for _, c := range r.checks {
		if c.err != nil {
			return false
		}
	}
	return len(r.checks) > 0
}

// pct is the p-th percentile (nearest rank) of sorted-in-place ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }

// dist is "p50 / p90 / p99 / max" in seconds.
func dist(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s / %s / %s", secs(pct(ds, 50)), secs(pct(ds, 90)), secs(pct(ds, 99)), secs(pct(ds, 100)))
}

func metTarget(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**missed**"
}

// perServer returns after−before of f for each server.
func perServer(before, after []sample, f func(sample) float64) []float64 {
	out := make([]float64, len(before))
	for i := range before {
		out[i] = f(after[i]) - f(before[i])
	}
	return out
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

func joinf(xs []float64, format string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, " / ")
}

// spread is the largest distance of a server's count from an even share,
// as a fraction of that share.
func spread(xs []float64) float64 {
	even := sum(xs) / float64(len(xs))
	if even == 0 {
		return 0
	}
	worst := 0.0
	for _, x := range xs {
		worst = max(worst, math.Abs(x-even)/even)
	}
	return worst
}

func (r *report) markdown() string {
	var b strings.Builder
	c := r.cfg
	fmt.Fprintf(&b, "### Scale: %d apps, three servers, %d releases in flight\n\n", c.Apps, c.InFlight)
	fmt.Fprintf(&b, "Run %s–%s on %d cores (Go %s); `--lease-ttl %s`; apps with 2 or 3 web dynos (docker:// images on k8s-lab's kwok).\n\n",
		r.started.Format("2006-01-02 15:04"), r.finished.Format("15:04Z"), runtime.NumCPU(), runtime.Version(), c.LeaseTTL)
	fmt.Fprintf(&b, "```\n$ %s\n```\n\n", c.Command)

	var w1, w2 *wave
	if len(r.waves) > 0 {
		w1 = r.waves[0]
	}
	if len(r.waves) > 1 {
		w2 = r.waves[1]
	}
	b.WriteString("| | " + strings.Join(names(r.waves), " | ") + " |\n|---|" + strings.Repeat("---|", len(r.waves)) + "\n")
	row := func(label string, f func(w *wave) string) {
		cells := make([]string, len(r.waves))
		for i, w := range r.waves {
			cells[i] = f(w)
		}
		fmt.Fprintf(&b, "| %s | %s |\n", label, strings.Join(cells, " | "))
	}
	row("releases (not succeeded)", func(w *wave) string { return fmt.Sprintf("%d (%d)", len(w.ids), w.notSucceeded) })
	row("wall time, s", func(w *wave) string { return secs(w.end.Sub(w.start)) })
	row("releases completed per minute", func(w *wave) string {
		return fmt.Sprintf("%.0f", float64(len(w.total))/w.end.Sub(w.start).Minutes())
	})
	row("90% of the wave succeeded after, s", func(w *wave) string { return secs(pct(w.ends, 90)) })
	row("create → succeeded, s: p50 / p90 / p99 / max", func(w *wave) string { return dist(w.total) })
	row("queued (create → started), s", func(w *wave) string { return dist(w.queued) })
	row("control-plane overhead (last new pod Ready, as watched → succeeded), s", func(w *wave) string { return dist(w.overhead) })
	row("the same from the pods' lastTransitionTime (whole seconds), s", func(w *wave) string { return dist(w.overheadLT) })
	row("of which: last new pod Ready → Deployment status rolled out (Kubernetes' controllers), s", func(w *wave) string { return dist(w.controller) })
	row("and: Deployment status rolled out → succeeded (Slipway), s", func(w *wave) string { return dist(w.afterDeploy) })
	row("releases carried out per server (s0 / s1 / s2)", func(w *wave) string {
		return joinf(perServer(w.before, w.after, func(s sample) float64 { return s.finished }), "%.0f")
	})
	row("Kubernetes API requests per server", func(w *wave) string {
		return joinf(perServer(w.before, w.after, func(s sample) float64 { return s.kubeReqs }), "%.0f")
	})
	row("Kubernetes API requests per minute, per server", func(w *wave) string {
		m := w.end.Sub(w.start).Minutes()
		xs := perServer(w.before, w.after, func(s sample) float64 { return s.kubeReqs })
		for i := range xs {
			xs[i] /= m
		}
		return joinf(xs, "%.0f")
	})
	row("CPU time per release, by process; how busy the cores were", func(w *wave) string {
		return cpuLine(w.cpu0, w.cpu1, len(w.ids), w.end.Sub(w.start).Seconds(), runtime.NumCPU())
	})
	row("PostgreSQL statements per release (all servers)", func(w *wave) string {
		q := sum(perServer(w.before, w.after, func(s sample) float64 { return s.dbQueries }))
		scr := sum(perServer(w.before, w.after, func(s sample) float64 { return float64(s.scrapes) }))
		return fmt.Sprintf("%.1f", (q-scr*r.scrapeQueries)/float64(max(1, len(w.ids))))
	})
	b.WriteString("\n")

	rs := &r.restart
	if rs.apps > 0 {
		fmt.Fprintf(&b, "Rolling restart of %d apps at once: all off the queue in %s s; per app (asked → off the queue) p50 / p90 / p99 / max %s s; Kubernetes API requests %s per server.\n\n",
			rs.apps, secs(rs.end.Sub(rs.start)), dist(rs.took), joinf(perServer(rs.before, rs.after, func(s sample) float64 { return s.kubeReqs }), "%.0f"))
	}
	if len(r.finishedBy) > 0 {
		b.WriteString("Apps rolled out per server, from the servers' own logs (the server whose progress events came last; s0 / s1 / s2):")
		for i, w := range r.windows {
			fmt.Fprintf(&b, " %s %d / %d / %d;", w.name, r.finishedBy[i][0], r.finishedBy[i][1], r.finishedBy[i][2])
		}
		fmt.Fprintf(&b, " %d rollouts were begun by the killed server and ended by another.\n\n", r.handovers)
	}
	k := &r.kill
	fmt.Fprintf(&b, "SIGKILL of %s during the second wave: it held %d releases not ended; %d were picked up by another server (kill → its next log line) in p50 %s s, max %s s; %d never were.\n\n",
		k.server, len(k.releases), len(k.pickups), secs(pct(k.pickups, 50)), secs(pct(k.pickups, 100)), k.lost)

	id := &r.idle
	idleMin := id.end.Sub(id.start).Minutes()
	idleReqs := perServer(id.before, id.after, func(s sample) float64 { return s.kubeReqs })
	idleQ := perServer(id.before, id.after, func(s sample) float64 { return s.dbQueries })
	idleScr := perServer(id.before, id.after, func(s sample) float64 { return float64(s.scrapes) })
	for i := range idleQ {
		idleQ[i] = (idleQ[i] - idleScr[i]*r.scrapeQueries) / idleMin
	}
	perIdleApp := 0.0
	if idleMin > 0 {
		perIdleApp = sum(idleReqs) / idleMin / float64(c.Apps)
	}
	fmt.Fprintf(&b, "Idle for %.0f s after that: Kubernetes API requests %s per server (%.3f per app per minute, all servers); PostgreSQL statements per minute %s per server.\n\n",
		id.end.Sub(id.start).Seconds(), joinf(idleReqs, "%.0f"), perIdleApp, joinf(idleQ, "%.0f"))

	if idleMin > 0 && id.cpu1.by != nil {
		var parts []string
		for _, c := range components {
			if d := id.cpu1.by[c.name] - id.cpu0.by[c.name]; d > 0 {
				parts = append(parts, fmt.Sprintf("%s %.2f", c.name, d/idleMin/60))
			}
		}
		fmt.Fprintf(&b, "CPU while idle, in cores busy (CPU seconds per second): %s.\n\n", strings.Join(parts, ", "))
	}

	fmt.Fprintf(&b, "PostgreSQL connections the three servers held open at once, at most: %d (each may open %d).\n\n", r.peakConns.Load(), store.DefaultMaxConns)

	b.WriteString("| server | RSS MiB at end (peak) | goroutines at end (peak) |\n|---|---|---|\n")
	for _, m := range r.memory {
		note := ""
		if m.killed {
			note = " (killed; last scrape)"
		}
		fmt.Fprintf(&b, "| %s%s | %.0f (%.0f) | %.0f (%.0f) |\n", m.name, note, m.rss/(1<<20), m.peakRSS/(1<<20), m.goroutines, m.peakGo)
	}
	b.WriteString("\n")

	b.WriteString("Targets (cost that grows with the fleet, not faster):\n\n| target | measured | |\n|---|---|---|\n")
	if w1 != nil {
		p99 := pct(w1.overhead, 99)
		fmt.Fprintf(&b, "| control-plane overhead p99 < 2 s with %d in flight (wave 1) | %s s (from lastTransitionTime: %s s); of it Slipway's part after the Deployment's status said rolled out: p99 %s s | %s |\n",
			c.InFlight, secs(p99), secs(pct(w1.overheadLT, 99)), secs(pct(w1.afterDeploy, 99)), metTarget(p99 < 2*time.Second && len(w1.overhead) > 0))
		sp := spread(perServer(w1.before, w1.after, func(s sample) float64 { return s.finished }))
		fmt.Fprintf(&b, "| releases per server within ±20%% of even (wave 1, all three alive) | %s, off by %.0f%% at most | %s |\n",
			joinf(perServer(w1.before, w1.after, func(s sample) float64 { return s.finished }), "%.0f"), sp*100, metTarget(sp <= 0.2))
	}
	fmt.Fprintf(&b, "| Kubernetes API requests per idle app per minute ≤ 1 | %.3f | %s |\n", perIdleApp, metTarget(perIdleApp <= 1 && idleMin > 0))
	limit := c.LeaseTTL + 5*time.Second
	fmt.Fprintf(&b, "| a dead server's work picked up within --lease-ttl + 5 s (%s) | max %s s over %d releases | %s |\n",
		limit, secs(pct(k.pickups, 100)), len(k.pickups), metTarget(len(k.pickups) > 0 && k.lost == 0 && pct(k.pickups, 100) <= limit))
	if w2 != nil {
		fmt.Fprintf(&b, "\nThe second wave's overhead leaves out the %d releases the killed server held (their time includes the lease TTL).\n", len(k.releases))
	}

	b.WriteString("\nChecks:\n\n")
	for _, ch := range r.checks {
		if ch.err == nil {
			fmt.Fprintf(&b, "- passed: %s\n", ch.name)
		} else {
			fmt.Fprintf(&b, "- **FAILED**: %s: %v\n", ch.name, ch.err)
		}
	}
	return b.String()
}

func names(ws []*wave) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.name
	}
	return out
}
