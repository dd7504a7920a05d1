package local

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/testslug"
)

// mustSplit brings f's app to s with Split. Without counts, each release
// runs its formations' quantities.
func (f *fixture) mustSplit(s slipway.Split) {
	f.t.Helper()
	if s.Stables == nil && s.Canaries == nil {
		s.Stables, s.Canaries = map[string]int{}, map[string]int{}
		for _, fm := range s.Stable.Formations {
			s.Stables[fm.Type] = fm.Quantity
		}
		for _, fm := range s.Canary.Formations {
			s.Canaries[fm.Type] = fm.Quantity
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.rt.Split(ctx, s, func(slipway.ProgressEvent) {}); err != nil {
		f.t.Fatalf("split: %v", err)
	}
}

// served sends n GETs of path through the router from 4 clients, with
// header h, and counts the versions that answered (from a body
// "version=N …"), or the status code of any other answer.
func (f *fixture) served(n int, path string, h http.Header) map[string]int {
	f.t.Helper()
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	per := n / 4
	for range 4 {
		wg.Go(func() {
			for range per {
				req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
				req.Host = f.app.Key + ".localhost"
				for k, v := range h {
					req.Header[k] = v
				}
				code, body, err := do(f.client, req)
				if err != nil {
					f.t.Error(err)
					return
				}
				v := fmt.Sprint(code)
				if rest, ok := strings.CutPrefix(body, "version="); ok && code == http.StatusOK {
					v, _, _ = strings.Cut(rest, " ")
				}
				mu.Lock()
				seen[v]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return seen
}

func do(c *http.Client, req *http.Request) (int, string, error) {
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func TestRouter_Split_SharesByWeight(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	slug := testslug.UnpackedSlug(t, procfile)
	r1, r2 := f.desired(1, slug).Release.ID, f.desired(2, slug).Release.ID
	for _, weight := range []int{10, 50} {
		f.mustSplit(slipway.Split{Stable: f.desired(1, slug, web(2)), Canary: f.desired(2, slug, web(1)), Weight: weight})
		if weight == 10 {
			// Both releases are there before their first request.
			if tr := f.rt.Traffic(f.app.ID); len(tr) != 2 || tr[r1].Requests != 0 || tr[r2].Requests != 0 {
				t.Errorf("Traffic before any request = %v, want both releases at 0", tr)
			}
		}
		const n = 1000
		got := f.served(n, "/", nil)
		share := 100 * got["2"] / n
		if got["1"]+got["2"] != n || share < weight-5 || share > weight+5 {
			t.Errorf("weight %d: served %v, canary share %d%%, want %d±5 and no failures", weight, got, share, weight)
		}
	}
	// The counts per release add up to what the clients saw.
	tr := f.rt.Traffic(f.app.ID)
	if tr[r1].Requests+tr[r2].Requests != 2000 || tr[r1].Errors+tr[r2].Errors != 0 || tr[r2].Requests < 600-20 || tr[r2].Requests > 600+20 {
		t.Errorf("Traffic = %+v, want 2000 requests, about 600 of them on the canary, no errors", tr)
	}
}

// The chosen side with no ready dyno sends its share to the other side.
func TestRouter_Split_FallsBackToOtherSide(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	slug := testslug.UnpackedSlug(t, procfile)
	f.mustDeploy(f.desired(1, slug, web(1)))
	a := f.rt.findApp(f.app.ID)
	a.setSplit(&trafficSplit{canary: "gone", canaryVersion: 9, weight: 100})
	if got := f.served(100, "/", nil); got["1"] != 100 {
		t.Errorf("canary without dynos: served %v, want all on v1", got)
	}
	a.setSplit(&trafficSplit{canary: f.desired(1, slug).Release.ID, canaryVersion: 1, weight: 0})
	if got := f.served(100, "/", nil); got["1"] != 100 {
		t.Errorf("stable without dynos: served %v, want all on v1", got)
	}
}

func TestRouter_Split_Sticky(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	slug := testslug.UnpackedSlug(t, procfile)
	f.mustSplit(slipway.Split{Stable: f.desired(1, slug, web(1)), Canary: f.desired(2, slug, web(1)), Weight: 10})
	tests := []struct {
		name   string
		header http.Header
		want   string // the only version that answers; "" for the weighted share
	}{
		{"header names the canary", http.Header{"X-Slipway-Release": {"2"}}, "2"},
		{"header with v", http.Header{"X-Slipway-Release": {"v2"}}, "2"},
		{"header names the stable", http.Header{"X-Slipway-Release": {"1"}}, "1"},
		{"cookie names the canary", http.Header{"Cookie": {"session=abc; slipway-release=2; theme=dark"}}, "2"},
		{"cookie alone", http.Header{"Cookie": {"slipway-release=v2"}}, "2"},
		{"header wins over cookie", http.Header{"X-Slipway-Release": {"1"}, "Cookie": {"slipway-release=2"}}, "1"},
		{"another cookie's name", http.Header{"Cookie": {"not-slipway-release=2"}}, ""},
		{"release without dynos", http.Header{"X-Slipway-Release": {"7"}}, ""},
		{"not a version", http.Header{"X-Slipway-Release": {"latest"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.served(200, "/", tt.header)
			if tt.want != "" && got[tt.want] != 200 {
				t.Errorf("served %v, want all 200 on v%s", got, tt.want)
			}
			if tt.want == "" && (got["1"]+got["2"] != 200 || got["2"] < 10 || got["2"] > 30) {
				t.Errorf("served %v, want the weighted share (about 20 on v2)", got)
			}
		})
	}
	// Without a split, during a rollout both releases have dynos: the
	// header still picks one.
	f.rt.findApp(f.app.ID).setSplit(nil)
	if got := f.served(100, "/", http.Header{"X-Slipway-Release": {"2"}}); got["2"] != 100 {
		t.Errorf("without a split: served %v, want all on v2", got)
	}
}

func TestRouter_Traffic_CountsPerRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	// v2's /health answers 500: the port check passes, so it is routed.
	v1 := f.desired(1, testslug.UnpackedSlug(t, procfile), web(1))
	v2 := f.desired(2, testslug.UnpackedSlug(t, "web: ./testapp --unhealthy\n"), web(1))
	f.mustSplit(slipway.Split{Stable: v1, Canary: v2, Weight: 50})
	// Sticky requests, so that each release's count is known.
	to := func(v string) http.Header { return http.Header{"X-Slipway-Release": {v}} }
	if got := f.served(100, "/health", to("1")); got["200"] != 100 {
		t.Fatalf("v1 served %v, want 100 200s", got)
	}
	if got := f.served(100, "/health", to("2")); got["500"] != 100 {
		t.Fatalf("v2 served %v, want 100 500s", got)
	}
	f.served(20, "/env/UNSET", to("1")) // 404s: not errors
	f.served(20, "/env/UNSET", to("2"))
	tr := f.rt.Traffic(f.app.ID)
	want := map[string]slipway.Traffic{v1.Release.ID: {Requests: 120}, v2.Release.ID: {Requests: 120, Errors: 100}}
	for id, w := range want {
		got := tr[id]
		if got.Requests != w.Requests || got.Errors != w.Errors || len(got.Buckets) != len(slipway.LatencyBucketsMs)+1 || sum(got.Buckets) != got.Requests {
			t.Errorf("Traffic[%s] = %+v, want %d requests, %d errors, buckets adding up", id, got, w.Requests, w.Errors)
		}
	}
	if len(tr) != 2 {
		t.Errorf("Traffic has %d releases, want 2: %v", len(tr), tr)
	}
	if f.rt.Traffic("nope") != nil || f.rt.Traffic(f.app.Key) != nil {
		t.Error("Traffic of an unknown app id is not nil")
	}

	// A connection failure with no other dyno of the release to retry on
	// is an error of the release it tried.
	f.rt.findApp(f.app.ID).setSplit(&trafficSplit{canary: v2.Release.ID, canaryVersion: 2, weight: 100})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	var canary *dyno
	for _, d := range *f.rt.findApp(f.app.ID).routes.Load() {
		if d.release().version == 2 {
			canary = d
		}
	}
	live := *canary.addr.Load()
	canary.addr.Store(&dead)
	// POST with a streamed body is not retried: the router answers 502.
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/", strings.NewReader("x"))
	req.Host = f.app.Key + ".localhost"
	req.ContentLength = -1
	if code, _, err := do(f.client, req); err != nil || code != http.StatusBadGateway {
		t.Errorf("POST to a dead canary: %d %v, want 502", code, err)
	}
	canary.addr.Store(&live)
	if got := f.rt.Traffic(f.app.ID)[v2.Release.ID]; got.Requests != 121 || got.Errors != 101 {
		t.Errorf("after a connection failure, Traffic[v2] = %+v, want 121 requests, 101 errors", got)
	}

	// /metrics: by app id and track, never a release id or the app's name.
	text := scrape(t, f.rt.RouterCollector())
	for _, want := range []string{
		`slipway_router_requests_total{app_id="` + f.app.ID + `",code_class="5xx",track="canary"} 100`,
		`slipway_router_requests_total{app_id="` + f.app.ID + `",code_class="error",track="canary"} 1`,
		`slipway_router_requests_total{app_id="` + f.app.ID + `",code_class="4xx",track="canary"} 20`,
		`slipway_router_requests_total{app_id="` + f.app.ID + `",code_class="2xx",track="stable"} 100`,
		`slipway_router_request_duration_seconds_count{app_id="` + f.app.ID + `",track="canary"} 121`,
		`slipway_router_request_duration_seconds_bucket{app_id="` + f.app.ID + `",track="stable",le="+Inf"} 120`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, secret := range []string{v1.Release.ID, v2.Release.ID, f.app.Name} {
		if strings.Contains(text, secret) {
			t.Errorf("metrics name %q", secret)
		}
	}

	// Once a release has no dynos its entry goes; /metrics keeps its counts.
	f.mustDeploy(f.desired(3, testslug.UnpackedSlug(t, procfile), web(1)))
	f.rt.findApp(f.app.ID).setSplit(nil)
	f.served(20, "/", nil)
	tr = f.rt.Traffic(f.app.ID)
	if len(tr) != 1 || tr[f.desired(3, v1.Slug).Release.ID].Requests != 20 {
		t.Errorf("after v3 replaced both: Traffic = %v, want only v3's 20", tr)
	}
	text = scrape(t, f.rt.RouterCollector())
	for _, want := range []string{
		`slipway_router_requests_total{app_id="` + f.app.ID + `",code_class="5xx",track="canary"} 100`,
		`slipway_router_requests_total{app_id="` + f.app.ID + `",code_class="2xx",track="stable"} 120`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("after the releases went, metrics lack %s", want)
		}
	}
}

// "No dyno ready" answers are the canary's errors when the split chose it,
// and no release's otherwise.
func TestRouter_Traffic_NoDynoReady(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(0), formation("worker", 1)))
	a := f.rt.findApp(f.app.ID)
	a.setSplit(&trafficSplit{canary: "r2", canaryVersion: 2, weight: 50})
	if got := f.served(100, "/", nil); got["503"] != 100 {
		t.Fatalf("served %v, want 100 503s", got)
	}
	a.setSplit(nil)
	if got := f.served(20, "/", nil); got["503"] != 20 {
		t.Fatalf("served %v, want 20 503s", got)
	}
	// Traffic drops r2 (it has no dynos) and shows v1 (its worker) at 0;
	// the counts stay in /metrics.
	text := scrape(t, f.rt.RouterCollector())
	if tr := f.rt.Traffic(f.app.ID); len(tr) != 1 || tr[f.desired(1, slipway.Slug{}).Release.ID].Requests != 0 {
		t.Errorf("Traffic = %v, want only v1, at 0", tr)
	}
	canary := metricValue(t, text, `slipway_router_requests_total{app_id="`+f.app.ID+`",code_class="error",track="canary"}`)
	stable := metricValue(t, text, `slipway_router_requests_total{app_id="`+f.app.ID+`",code_class="error",track="stable"}`)
	if canary+stable != 120 || canary < 40 || canary > 60 {
		t.Errorf("errors on the canary track %v, on stable %v; want about 50 and 70", canary, stable)
	}
}

// metricValue returns the value of the series named (with labels) series
// in the text format.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in:\n%s", series, text)
	return 0
}

func TestRouter_StickyVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		h    http.Header
		want int
	}{
		{http.Header{}, 0},
		{http.Header{"X-Slipway-Release": {"12"}}, 12},
		{http.Header{"X-Slipway-Release": {" v3 "}}, 3},
		{http.Header{"X-Slipway-Release": {"0"}}, 0},
		{http.Header{"X-Slipway-Release": {"-1"}}, 0},
		{http.Header{"X-Slipway-Release": {""}}, 0},
		{http.Header{"Cookie": {`a=1;slipway-release="4"`}}, 4},
		{http.Header{"Cookie": {"a=1", "slipway-release=5"}}, 5},
		{http.Header{"Cookie": {"xslipway-release=5"}}, 0},
		{http.Header{"Cookie": {"slipway-release"}}, 0},
	} {
		if got := stickyVersion(tt.h); got != tt.want {
			t.Errorf("stickyVersion(%v) = %d, want %d", tt.h, got, tt.want)
		}
	}
}

// The canary's share stays within a couple of requests of the weight, the
// minority side comes up regularly, and a client whose requests alternate
// between two paths sees the weight on each path.
func TestRouter_WeightedShareAndSpread(t *testing.T) {
	t.Parallel()
	for _, weight := range []int{0, 1, 10, 33, 50, 90, 100} {
		var tr appTraffic
		const n = 4000
		canary, run, longest := 0, 0, 0
		var perPath [2]int
		for i := range n {
			to := tr.weighted(weight)
			if to {
				canary++
				perPath[i%2]++
			}
			// The run of the side that should come up less often.
			if to == (weight >= 50) {
				run++
				longest = max(longest, run)
			} else {
				run = 0
			}
		}
		if want := n * weight / 100; canary < want-2 || canary > want+2 {
			t.Errorf("weight %d: %d of %d to the canary, want %d±2", weight, canary, n, want)
		}
		if minority := min(weight, 100-weight); minority > 0 && longest > 200/minority+1 {
			t.Errorf("weight %d: a run of %d requests without the minority side", weight, longest)
		}
		for path, got := range perPath {
			if share := 100 * got / (n / 2); share < weight-5 || share > weight+5 {
				t.Errorf("weight %d: path %d got %d%% on the canary", weight, path, share)
			}
		}
	}
}

func TestTraffic_Buckets(t *testing.T) {
	t.Parallel()
	if numBuckets != len(slipway.LatencyBucketsMs)+1 {
		t.Fatalf("numBuckets = %d, want len(slipway.LatencyBucketsMs)+1 = %d", numBuckets, len(slipway.LatencyBucketsMs)+1)
	}
	for took, want := range map[time.Duration]int{
		0: 0, time.Millisecond: 0, time.Millisecond + 1: 1, 3 * time.Millisecond: 2,
		10 * time.Second: numBuckets - 2, time.Hour: numBuckets - 1,
	} {
		if got := bucketOf(took); got != want {
			t.Errorf("bucketOf(%s) = %d, want %d", took, got, want)
		}
	}
}

func sum(xs []int64) int64 {
	var n int64
	for _, x := range xs {
		n += x
	}
	return n
}

// scrape returns c's series in the text format, through a pedantic
// registry, which also checks them against their descriptions.
func scrape(t *testing.T, c prometheus.Collector) string {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
