package local

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	slipway "github.com/slipway/slipway"
)

// This file holds the router's traffic split (canary releases) and its
// per-release accounting. Both are read and written on the request path
// without locks: the split is one atomic pointer per app, and every
// request adds to three atomic counters of the release that answered.

// trafficSplit divides an app's web traffic between two releases during a
// canary. A nil split (the default, and after any Deploy) sends each
// request to any routed web dyno.
type trafficSplit struct {
	canary        string // release id of the canary
	canaryVersion int    // its version: dynos are matched by it
	weight        int    // percent (0–100) of requests sent to the canary's dynos
	preview       bool   // the app's preview host reaches the canary (blue-green)
}

// setSplit makes the router divide a's traffic by s from the next request
// on; nil ends a split. Split and Deploy call it once the dynos of both
// releases are in place.
func (a *app) setSplit(s *trafficSplit) {
	if s != nil {
		c := *s
		c.weight = min(max(c.weight, 0), 100)
		s = &c
	}
	a.traffic.credit.Store(0)
	a.split.Store(s)
}

// Tracks name a release's role in the app's traffic; /metrics labels
// requests by track, which stays bounded where release ids would not.
type track uint8

const (
	trackStable  track = iota // the release that is not the canary (all of them without a split)
	trackCanary               // the split's canary release
	trackPreview              // requests to a blue-green release's preview host
	numTracks
)

var trackNames = [numTracks]string{"stable", "canary", "preview"}

// Code classes of answers. classError is an answer the router made because
// no dyno answered: no dyno ready, or the connection to it failed.
// classClosed is a request whose client went away before any answer,
// counted like nginx's 499 under 4xx: it says nothing of the release.
type codeClass uint8

const (
	class2xx codeClass = iota // and 1xx: 101 Switching Protocols is a success
	class3xx
	class4xx
	class5xx
	classError
	numClasses
	classClosed = class4xx
)

var classNames = [numClasses]string{"2xx", "3xx", "4xx", "5xx", "error"}

func classOf(status int) codeClass {
	switch {
	case status < 300:
		return class2xx
	case status < 400:
		return class3xx
	case status < 500:
		return class4xx
	}
	return class5xx
}

// numBuckets is len(slipway.LatencyBucketsMs)+1 (a test holds them
// together): the last bucket is unbounded.
const numBuckets = 14

// bucketBoundsNs are slipway.LatencyBucketsMs in nanoseconds.
var bucketBoundsNs = func() (b [numBuckets - 1]int64) {
	for i, ms := range slipway.LatencyBucketsMs[:numBuckets-1] {
		b[i] = int64(ms * float64(time.Millisecond))
	}
	return b
}()

func bucketOf(took time.Duration) int {
	ns := int64(took)
	for i, b := range bucketBoundsNs {
		if ns <= b {
			return i
		}
	}
	return numBuckets - 1
}

// trackCounts are the cumulative counts of one release on one track.
type trackCounts struct {
	codes   [numClasses]atomic.Int64
	buckets [numBuckets]atomic.Int64
	sumNs   atomic.Int64
}

func (c *trackCounts) observe(class codeClass, took time.Duration) {
	c.codes[class].Add(1)
	c.buckets[bucketOf(took)].Add(1)
	c.sumNs.Add(int64(took))
}

// addTo adds c's counts to sum (plain numbers, for reading).
func (c *trackCounts) addTo(sum *trackSum) {
	for i := range c.codes {
		sum.codes[i] += c.codes[i].Load()
	}
	for i := range c.buckets {
		sum.buckets[i] += c.buckets[i].Load()
	}
	sum.sumNs += c.sumNs.Load()
}

// trackSum is a reading of trackCounts.
type trackSum struct {
	codes   [numClasses]int64
	buckets [numBuckets]int64
	sumNs   int64
}

func (s *trackSum) requests() int64 {
	var n int64
	for _, c := range s.codes {
		n += c
	}
	return n
}

// releaseTraffic counts the requests that one release's dynos answered (or
// failed to), per track: a canary that is promoted keeps its counts while
// its later requests count as stable.
type releaseTraffic struct {
	id      string
	version int
	tracks  [numTracks]trackCounts
}

// traffic returns the release's figures over all tracks.
func (rt *releaseTraffic) traffic() slipway.Traffic {
	var sum trackSum
	for i := range rt.tracks {
		rt.tracks[i].addTo(&sum)
	}
	return slipway.Traffic{
		Requests: sum.requests(),
		Errors:   sum.codes[class5xx] + sum.codes[classError],
		Buckets:  append([]int64(nil), sum.buckets[:]...),
	}
}

// appTraffic is an app's accounting: an entry per release that has served
// since its dynos started, and what no longer has an entry.
type appTraffic struct {
	credit atomic.Int64 // the split's weighted choice, in hundredths of a request (see weighted)

	mu       sync.Mutex                 // guards releases; taken before a.mu and d.mu
	releases map[string]*releaseTraffic // by release id
	// other holds the counts of releases whose entries were dropped and
	// of answers no release gave (no dyno ready, outside a split's
	// canary), so that /metrics counters never go down.
	other [numTracks]trackCounts
}

// release returns the traffic entry of d's release, creating it on d's
// first request. The entry also tells the router which release d runs
// without taking d.mu.
func (d *dyno) release() *releaseTraffic {
	if e := d.traffic.Load(); e != nil {
		return e
	}
	ref := d.currentSpec().release
	e := d.app.traffic.entry(ref.ID, ref.Version)
	d.traffic.Store(e)
	return e
}

// entry returns the release's entry, creating it (and dropping the entries
// of releases that no longer run) if there is none.
func (t *appTraffic) entry(id string, version int) *releaseTraffic {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.releases[id]; e != nil {
		return e
	}
	if t.releases == nil {
		t.releases = map[string]*releaseTraffic{}
	}
	e := &releaseTraffic{id: id, version: version}
	t.releases[id] = e
	return e
}

// prune drops the entries of releases with no dyno of a, folding their
// counts into other. Holding t.mu while it lists a's dynos means an entry
// created for a new dyno (which is in a.dynos before it is ever routed) is
// never dropped.
func (a *app) pruneTraffic() {
	t := &a.traffic
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.releases) == 0 {
		return
	}
	a.mu.Lock()
	ds := append([]*dyno(nil), a.dynos...)
	a.mu.Unlock()
	running := make(map[string]bool, 2)
	for _, d := range ds {
		running[d.currentSpec().release.ID] = true
	}
	for id, e := range t.releases {
		if running[id] {
			continue
		}
		for tr := range e.tracks {
			from, to := &e.tracks[tr], &t.other[tr]
			for i := range from.codes {
				to.codes[i].Add(from.codes[i].Load())
			}
			for i := range from.buckets {
				to.buckets[i].Add(from.buckets[i].Load())
			}
			to.sumNs.Add(from.sumNs.Load())
		}
		delete(t.releases, id)
	}
}

// Traffic returns the router's cumulative counts of the app's requests per
// release id, for each release that has dynos (zero before its first
// request), since the server started (or since the release's dynos last
// started after a time without any); nil for an unknown app. A request counts for the release of the dyno
// that answered it, or that it last tried when none answered; answers of
// 5xx and requests that no dyno answered are errors, and its latency is the
// time until the answer's headers. "No dyno ready" answers count as errors
// of the canary when the split chose the canary, and of no release
// otherwise.
func (r *Runtime) Traffic(appID string) map[string]slipway.Traffic {
	a := r.findApp(appID)
	if a == nil || a.id != appID {
		return nil
	}
	a.mu.Lock()
	ds := append([]*dyno(nil), a.dynos...)
	a.mu.Unlock()
	for _, d := range ds {
		d.release()
	}
	a.pruneTraffic()
	t := &a.traffic
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]slipway.Traffic, len(t.releases))
	for id, e := range t.releases {
		out[id] = e.traffic()
	}
	return out
}

// choice is where one request goes: to a sticky release when it asks for
// one that has routed dynos, else to the split's side chosen by weight,
// else to any routed dyno.
type choice struct {
	split  *trafficSplit // nil: no split
	sticky int           // version asked for by header or cookie; 0 if none
	// preview: the request came to the app's preview host, and goes to
	// the split's canary or to no dyno.
	preview bool
	chosen  bool // the weighted choice is made (only when needed)
	canary  bool // with chosen: it is the canary
}

// choose returns where req goes. The weighted choice is made on first use
// and kept for the request's retries; a request that reaches its sticky
// release never makes it, so sticky traffic leaves the others' share alone.
func (a *app) choose(req *http.Request) choice {
	c := choice{split: a.split.Load(), sticky: stickyVersion(req.Header)}
	if req.Context().Value(previewRequest{}) != nil && c.split != nil && c.split.preview {
		c.preview, c.sticky = true, 0
	}
	return c
}

// previewRequest marks, in a request's context, one that came to the
// app's preview host.
type previewRequest struct{}

// toCanary reports whether the split's weighted choice sends the request
// to the canary.
func (c *choice) toCanary(a *app) bool {
	if !c.chosen {
		c.canary, c.chosen = a.traffic.weighted(c.split.weight), true
	}
	return c.canary
}

// weighted reports whether the next request goes to the canary. Each
// request adds weight to a credit, counted in hundredths of a request, and
// goes to the canary with probability credit/100; a request sent there
// pays 100. So over any run of requests the canary's share is weight%
// within a couple of requests, yet each choice is random (a client's
// periodic pattern of paths does not line up with it, as it would with a
// fixed sequence), and neither side gets a burst: a full credit forces a
// canary request, and one right after another is unlikely.
func (t *appTraffic) weighted(weight int) bool {
	switch {
	case weight <= 0:
		return false
	case weight >= 100:
		return true
	}
	credit := t.credit.Add(int64(weight))
	if credit <= 0 || (credit < 100 && rand.Int64N(100) >= credit) {
		return false
	}
	t.credit.Add(-100)
	return true
}

// stickyVersion is the release version that the header X-Slipway-Release or
// the cookie slipway-release names ("7" or "v7"), 0 if none.
func stickyVersion(h http.Header) int {
	if v := h["X-Slipway-Release"]; len(v) > 0 {
		return parseVersion(v[0])
	}
	for _, line := range h["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			if name, v, ok := strings.Cut(strings.TrimSpace(part), "="); ok && name == "slipway-release" {
				return parseVersion(strings.Trim(v, "\""))
			}
		}
	}
	return 0
}

func parseVersion(s string) int {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "v"), "V")
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// trackOf is the track of a request that release e answered under split.
func (c *choice) trackOf(e *releaseTraffic) track {
	switch {
	case c.preview:
		return trackPreview
	case c.split != nil && e.version == c.split.canaryVersion:
		return trackCanary
	}
	return trackStable
}

// noDynoAnswered counts a "no dyno ready" answer: as the canary's when the
// split chose it, else for no release.
func (a *app) noDynoAnswered(c *choice, took time.Duration) {
	if c.split != nil && (c.preview || c.toCanary(a)) {
		a.traffic.entry(c.split.canary, c.split.canaryVersion).tracks[trackCanary].observe(classError, took)
		return
	}
	a.traffic.other[trackStable].observe(classError, took)
}

// routerCollector exports the router's counts to Prometheus at scrape time,
// so the request path only adds to atomics.
type routerCollector struct {
	rt       *Runtime
	requests *prometheus.Desc
	duration *prometheus.Desc
}

// RouterCollector returns the Prometheus collector of the router's series:
// slipway_router_requests_total{app_id,track,code_class} and
// slipway_router_request_duration_seconds{app_id,track}. Labels carry app
// ids, never names or release ids, so an app has at most 3 tracks' worth
// of series; a track appears once it has had a request.
func (r *Runtime) RouterCollector() prometheus.Collector {
	return &routerCollector{
		rt: r,
		requests: prometheus.NewDesc("slipway_router_requests_total",
			"Requests the router sent to apps' web dynos, by app id, track (stable, canary, preview) and code class (2xx, 3xx, 4xx, 5xx, or error: no dyno ready or none answered; a client that left first counts as 4xx).",
			[]string{"app_id", "track", "code_class"}, nil),
		duration: prometheus.NewDesc("slipway_router_request_duration_seconds",
			"Time from the router sending a request until the answer's headers, by app id and track.",
			[]string{"app_id", "track"}, nil),
	}
}

func (c *routerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.duration
}

func (c *routerCollector) Collect(ch chan<- prometheus.Metric) {
	c.rt.mu.RLock()
	apps := make([]*app, 0, len(c.rt.apps))
	for _, a := range c.rt.apps {
		apps = append(apps, a)
	}
	c.rt.mu.RUnlock()
	for _, a := range apps {
		var sums [numTracks]trackSum
		t := &a.traffic
		t.mu.Lock()
		for _, e := range t.releases {
			for tr := range e.tracks {
				e.tracks[tr].addTo(&sums[tr])
			}
		}
		for tr := range t.other {
			t.other[tr].addTo(&sums[tr])
		}
		t.mu.Unlock()
		for tr, s := range sums {
			n := s.requests()
			if n == 0 {
				continue
			}
			name := trackNames[tr]
			for cl, v := range s.codes {
				ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(v), a.id, name, classNames[cl])
			}
			buckets := make(map[float64]uint64, numBuckets-1)
			var cum int64
			for i, b := range slipway.LatencyBucketsMs[:numBuckets-1] {
				cum += s.buckets[i]
				buckets[b/1000] = uint64(cum)
			}
			// The count is the buckets' total rather than n: each is read
			// at its own moment, and the +Inf bucket must not be below
			// the others.
			cum += s.buckets[numBuckets-1]
			ch <- prometheus.MustNewConstHistogram(c.duration, uint64(cum), float64(s.sumNs)/1e9, buckets, a.id, name)
		}
	}
}
