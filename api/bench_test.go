package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
	"github.com/slipway/slipway/internal/pgtest"
	"github.com/slipway/slipway/store"
)

// nopEngine accepts work and does nothing, so benchmarks measure the API
// and the store alone.
type nopEngine struct{}

func (nopEngine) Kick(string)                                       {}
func (nopEngine) Converge(string)                                   {}
func (nopEngine) StartBuild(*slipway.Build, slipway.BuildSource)    {}
func (nopEngine) CancelBuild(context.Context, *slipway.Build) error { return nil }
func (nopEngine) Restart(context.Context, string, string) error     { return nil }
func (nopEngine) RemoveApp(context.Context, string) error           { return nil }

// benchBackends opens SQLite, and PostgreSQL when SLIPWAY_TEST_DATABASE_URL
// is set (in a fresh schema).
func benchBackends(b *testing.B) map[string]*store.DB {
	out := map[string]*store.DB{}
	db, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	out["sqlite"] = db
	if pgtest.Enabled() {
		dsn := pgtest.DSN(b)
		db, err := store.Open(context.Background(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		out["postgres"] = db
	}
	return out
}

type benchApp struct {
	srv   *httptest.Server
	db    *store.DB
	appID string
	slug  string
}

func newBenchApp(b *testing.B, db *store.DB, name string) *benchApp {
	ctx := context.Background()
	a := &slipway.App{Name: name, OrgName: "default", SpaceName: "default"}
	if err := db.CreateApp(ctx, a); err != nil {
		b.Fatal(err)
	}
	build := &slipway.Build{AppID: a.ID}
	if err := db.CreateBuild(ctx, build); err != nil {
		b.Fatal(err)
	}
	if err := db.FinishBuild(ctx, build.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{ProcessTypes: map[string]string{"web": "./web"}}}); err != nil {
		b.Fatal(err)
	}
	s := api.New(api.Config{Store: db, Engine: nopEngine{}, Token: "t"})
	srv := httptest.NewServer(s)
	b.Cleanup(srv.Close)
	return &benchApp{srv: srv, db: db, appID: a.ID, slug: build.ID}
}

func (ba *benchApp) do(b *testing.B, method, path, body string, hdr map[string]string) int {
	req, _ := http.NewRequest(method, ba.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer t")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// BenchmarkReleaseCreate measures POST /apps/{app}/releases end to end
// through HTTP and the store, reporting p50 and p99 latency.
func BenchmarkReleaseCreate(b *testing.B) {
	for name, db := range benchBackends(b) {
		ba := newBenchApp(b, db, "create")
		b.Run(name, func(b *testing.B) {
			body := fmt.Sprintf(`{"slug":%q}`, ba.slug)
			lat := make([]time.Duration, 0, b.N)
			q0 := db.Queries()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if code := ba.do(b, "POST", "/apps/create/releases", body, nil); code != 201 {
					b.Fatalf("status %d", code)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			reportPercentiles(b, lat)
			if db.Queries() > 0 {
				b.ReportMetric(float64(db.Queries()-q0)/float64(b.N), "stmts/op")
			}
		})
	}
}

// BenchmarkReleaseList measures GET /apps/{app}/releases over 1,000 and
// 10,000 releases, the whole list and a page of 20 from the newest.
func BenchmarkReleaseList(b *testing.B) {
	for name, db := range benchBackends(b) {
		for _, n := range []int{1000, 10000} {
			ba := newBenchApp(b, db, fmt.Sprintf("list%d", n))
			seedReleases(b, ba, n)
			for _, mode := range []string{"whole", "page"} {
				b.Run(fmt.Sprintf("%s/releases=%d/%s", name, n, mode), func(b *testing.B) {
					hdr := map[string]string{}
					want := 200
					if mode == "page" {
						hdr["Range"] = "version ..; order=desc, max=20"
						want = 206
					}
					lat := make([]time.Duration, 0, b.N)
					for i := 0; i < b.N; i++ {
						start := time.Now()
						if code := ba.do(b, "GET", "/apps/"+ba.appID+"/releases", "", hdr); code != want {
							b.Fatalf("status %d", code)
						}
						lat = append(lat, time.Since(start))
					}
					reportPercentiles(b, lat)
				})
			}
		}
	}
}

func seedReleases(b *testing.B, ba *benchApp, n int) {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		r, err := ba.db.CreateRelease(ctx, slipway.NewRelease{AppID: ba.appID, SlugID: ba.slug, Trigger: slipway.TriggerDeploy})
		if err != nil {
			b.Fatal(err)
		}
		if i%3 != 2 {
			ba.db.SetReleaseStatus(ctx, r.ID, slipway.ReleasePending, "")
			ba.db.SetReleaseStatus(ctx, r.ID, slipway.ReleaseSucceeded, "")
		}
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
}
