package local

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/testslug"
)

// BenchmarkRollout measures a release of an app with N web dynos (surge 1,
// max unavailable 0) and reports, per rollout:
//
//	rollout-ms        wall time of Deploy
//	app-start-ms      the test app's own time from process start (just before
//	                  fork/exec) to listening on its port, mean per dyno
//	overhead-ms/dyno  (rollout wall time - sum of app start times) / N: what
//	                  the controller adds per dyno (health polling, routing,
//	                  draining, stopping the old dyno)
//	wall/app          rollout wall time / sum of app start times
//
// With isolation (as root) the same runs again with every dyno isolated
// (namespaces, overlay, veth, cgroup): the difference is what isolation
// costs per dyno.
func BenchmarkRollout(b *testing.B) {
	modes := []string{"plain"}
	if os.Geteuid() == 0 {
		modes = append(modes, "isolated")
	}
	for _, mode := range modes {
		for _, n := range []int{1, 4, 16} {
			var f *fixture
			if mode == "isolated" {
				f = newFixture(b, func(c *Config) {
					c.Isolation = Isolation{Enabled: true, AppUID: func(string) (int, error) { return 201234, nil }, MemoryBytes: 256 << 20, Pids: 128}
				})
			} else {
				f = newFixture(b, nil)
			}
			slug := testslug.UnpackedSlug(b, "web: ./testapp\n")
			f.mustDeploy(f.desired(1, slug, web(n)))
			version := 1
			b.Run(fmt.Sprintf("%s/dynos=%d", mode, n), func(b *testing.B) {
				var wall, appStart time.Duration
				for i := 0; i < b.N; i++ {
					version++
					start := time.Now()
					f.mustDeploy(f.desired(version, slug, web(n)))
					wall += time.Since(start)
					b.StopTimer()
					appStart += f.appStartTimes(b)
					b.StartTimer()
				}
				perDyno := float64(b.N * n)
				b.ReportMetric(ms(wall)/float64(b.N), "rollout-ms")
				b.ReportMetric(ms(appStart)/perDyno, "app-start-ms")
				b.ReportMetric(ms(wall-appStart)/perDyno, "overhead-ms/dyno")
				b.ReportMetric(float64(wall)/float64(appStart), "wall/app")
			})
			f.rt.Close()
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// appStartTimes sums, over the app's dynos, the time from the start of each
// dyno's process to the moment the app reports it was listening.
func (f *fixture) appStartTimes(b *testing.B) time.Duration {
	a := f.rt.findApp(f.app.ID)
	a.mu.Lock()
	ds := append([]*dyno(nil), a.dynos...)
	a.mu.Unlock()
	var sum time.Duration
	for _, d := range ds {
		d.mu.Lock()
		p := d.proc
		d.mu.Unlock()
		res, err := http.Get("http://" + p.addr + "/startup")
		if err != nil {
			b.Fatal(err)
		}
		var st struct {
			ListenNS int64 `json:"listen_ns"`
		}
		err = json.NewDecoder(res.Body).Decode(&st)
		res.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		sum += time.Duration(st.ListenNS - p.started.UnixNano())
	}
	return sum
}

// BenchmarkRouter compares GET / sent straight to a dyno with the same
// request through a bare httputil.ReverseProxy to that one dyno (the floor:
// no dyno choice, no accounting, no retries) and through the router, from 1
// and 32 concurrent clients, all in one process and one run. It reports
// latency percentiles, throughput, and CPU time per request of the test
// process (clients, plus the proxy or router) and of the app (the processes
// under the dyno's init). For the proxy and the router it also reports what
// each adds over direct calls at the same concurrency: added-cpu-µs/req
// (test process plus app) and added-p50-µs; the router's rows add
// added/proxy, its added CPU over the bare proxy's. router-2dynos sends to
// a dyno of each of two releases without a split, router-split to the same
// two during a canary at 50%.
// allocs/req counts the test process's heap allocations per request, which
// the machine's load does not change.
func BenchmarkRouter(b *testing.B) {
	f := newFixture(b, nil)
	slug := testslug.UnpackedSlug(b, "web: ./testapp\n")
	f.mustDeploy(f.desired(1, slug, web(1)))
	d := (*f.rt.findApp(f.app.ID).routes.Load())[0]
	dynoURL := &url.URL{Scheme: "http", Host: *d.addr.Load()}
	bare := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(dynoURL)
			pr.SetXForwarded()
			pr.Out.Host = pr.In.Host
		},
		// The router's transport settings and buffer pool, so that the
		// difference is what the router does, not how it is tuned.
		Transport:  &http.Transport{MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second, DisableCompression: true},
		BufferPool: newBufferPool(),
	})
	defer bare.Close()
	targets := []struct {
		name, url, host string
		setup           func()
	}{
		{"direct", dynoURL.String() + "/", "", nil},
		{"proxy", bare.URL + "/", "", nil},
		{"router", f.srv.URL + "/", f.app.Key + ".localhost", nil},
		// Two dynos (v1 and v2) without a split, then a canary at 50%
		// on the same two: the difference is the split's choice.
		{"router-2dynos", f.srv.URL + "/", f.app.Key + ".localhost", func() {
			f.mustSplit(slipway.Split{Stable: f.desired(1, slug, web(1)), Canary: f.desired(2, slug, web(1)), Weight: 50})
			f.rt.findApp(f.app.ID).setSplit(nil)
		}},
		{"router-split", f.srv.URL + "/", f.app.Key + ".localhost", func() {
			f.mustSplit(slipway.Split{Stable: f.desired(1, slug, web(1)), Canary: f.desired(2, slug, web(1)), Weight: 50})
		}},
	}
	type figures struct{ cpu, p50 float64 } // per request, µs
	direct := map[int]figures{}
	proxyAdded := map[int]float64{}
	for _, tg := range targets {
		if tg.setup != nil {
			tg.setup()
		}
		for _, clients := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/clients=%d", tg.name, clients), func(b *testing.B) {
				tr := &http.Transport{MaxIdleConnsPerHost: 64}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr}
				lat := make([][]time.Duration, clients)
				var next atomic.Int64
				var wg sync.WaitGroup
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				dynos := *f.rt.findApp(f.app.ID).routes.Load()
				cpu0, app0 := selfCPU(), appCPU(b, dynos...)
				b.ResetTimer()
				start := time.Now()
				for c := range clients {
					wg.Go(func() {
						for next.Add(1) <= int64(b.N) {
							t0 := time.Now()
							req, _ := http.NewRequest(http.MethodGet, tg.url, nil)
							if tg.host != "" {
								req.Host = tg.host
							}
							res, err := client.Do(req)
							if err != nil {
								b.Error(err)
								return
							}
							io.Copy(io.Discard, res.Body)
							res.Body.Close()
							if res.StatusCode != 200 {
								b.Errorf("status %d", res.StatusCode)
								return
							}
							lat[c] = append(lat[c], time.Since(t0))
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				cpu, app := selfCPU()-cpu0, appCPU(b, dynos...)-app0
				runtime.ReadMemStats(&ms1)
				var all []time.Duration
				for _, l := range lat {
					all = append(all, l...)
				}
				if len(all) == 0 {
					return
				}
				sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
				pct := func(p float64) float64 {
					return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / float64(time.Microsecond)
				}
				n := float64(len(all))
				fig := figures{cpu: float64((cpu + app).Microseconds()) / n, p50: pct(0.50)}
				b.ReportMetric(fig.p50, "p50-µs")
				b.ReportMetric(pct(0.99), "p99-µs")
				b.ReportMetric(n/elapsed.Seconds(), "req/s")
				// CPU per request, which the other processes on a shared
				// machine do not skew: the test process (clients, plus the
				// proxy or router) and the app.
				b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-µs/req")
				b.ReportMetric(float64(app.Microseconds())/n, "app-cpu-µs/req")
				// Heap allocations per request in the test process: with
				// the clients' own the same in every mode, the difference
				// is the proxy's or router's, and unlike CPU time it does
				// not depend on the machine's load.
				b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/req")
				switch tg.name {
				case "direct":
					direct[clients] = fig
					return
				case "proxy":
					proxyAdded[clients] = fig.cpu - direct[clients].cpu
				case "router", "router-2dynos", "router-split":
					if pa := proxyAdded[clients]; pa > 0 {
						b.ReportMetric((fig.cpu-direct[clients].cpu)/pa, "added/proxy")
					}
				}
				b.ReportMetric(fig.cpu-direct[clients].cpu, "added-cpu-µs/req")
				b.ReportMetric(fig.p50-direct[clients].p50, "added-p50-µs")
			})
		}
	}
}

// selfCPU is the user+system CPU time of this process so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// appCPU is the user+system CPU time so far of the processes under the
// inits of ds: the app itself (and the /bin/sh that runs it, if it did not
// exec the command). proc.pid is the init's, which only waits, so its own
// figure stays near 0. Clock ticks are 10ms, so this is only meaningful
// over many requests.
func appCPU(b *testing.B, ds ...*dyno) time.Duration {
	var ticks uint
	for _, d := range ds {
		d.mu.Lock()
		pid := d.proc.pid
		d.mu.Unlock()
		found := false
		var walk func(pid int, depth int)
		walk = func(pid int, depth int) {
			tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
			for _, t := range tasks {
				kids, err := os.ReadFile(t)
				if err != nil {
					continue
				}
				for _, k := range strings.Fields(string(kids)) {
					kid, _ := strconv.Atoi(k)
					if st, err := readProcStat(kid); err == nil {
						ticks += st.UTime + st.STime
						found = true
					}
					if depth < 8 {
						walk(kid, depth+1)
					}
				}
			}
		}
		walk(pid, 0)
		if !found {
			b.Fatalf("no process under the init (pid %d) of %s: /proc/PID/task/*/children is missing or empty", pid, d.name)
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
