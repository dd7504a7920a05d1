package api_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
	"github.com/slipway/slipway/wire"
)

// history seeds an app's releases through the store with a clock the
// test moves, as a person would make them through the API.
type history struct {
	t   *testing.T
	f   *fixture
	app *slipway.App
	now time.Time
}

func newHistory(t *testing.T, f *fixture, name string, start time.Time) *history {
	h := &history{t: t, f: f, now: start}
	f.db.Now = func() time.Time { return h.now }
	h.app = &slipway.App{Name: name, OrgName: "default", SpaceName: "default"}
	if err := f.db.CreateApp(context.Background(), h.app); err != nil {
		t.Fatal(err)
	}
	return h
}

// at moves the clock to start + hours.
func (h *history) at(start time.Time, hours float64) *history {
	h.now = start.Add(time.Duration(hours * float64(time.Hour)))
	return h
}

func (h *history) build(b slipway.Build, processTypes map[string]string) string {
	h.t.Helper()
	ctx := context.Background()
	b.AppID = h.app.ID
	if err := h.f.db.CreateBuild(ctx, &b); err != nil {
		h.t.Fatal(err)
	}
	if err := h.f.db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{ProcessTypes: processTypes, Checksum: "sha256:" + b.ID[:8]}}); err != nil {
		h.t.Fatal(err)
	}
	return b.ID
}

func (h *history) release(nr slipway.NewRelease) *slipway.Release {
	h.t.Helper()
	nr.AppID = h.app.ID
	if nr.Trigger == "" {
		nr.Trigger = slipway.TriggerDeploy
	}
	r, err := h.f.db.CreateRelease(context.Background(), nr)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// end moves a release through pending to status.
func (h *history) end(r *slipway.Release, status string) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.f.db.SetReleaseStatus(ctx, r.ID, slipway.ReleasePending, ""); err != nil {
		h.t.Fatal(err)
	}
	if err := h.f.db.SetReleaseStatus(ctx, r.ID, status, ""); err != nil {
		h.t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func getJSON[T any](t *testing.T, srv *api.Server, path string, wantCode int) (T, string) {
	t.Helper()
	f := &fixture{t: t, srv: srv}
	rec := f.do("GET", path, admin, "")
	var out T
	if rec.Code != wantCode {
		t.Fatalf("GET %s = %d, want %d: %s", path, rec.Code, wantCode, rec.Body)
	}
	if rec.Code < 300 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, rec.Body)
		}
	}
	return out, rec.Body.String()
}

// The diff names config var keys that were added, removed and changed,
// never a value; the slug (with its commit), process types, formation,
// strategy and a rollback's target; by default against the release that
// was current when the release was made.
func TestReleaseDiff_KeysCodeFormationStrategyRollback(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	h := newHistory(t, f, "differ", t0)
	secrets := []string{"s3cret-first-value", "s3cret-second-value", "s3cret-third-value"}

	b1 := h.at(t0, 0).build(slipway.Build{}, map[string]string{"web": "./web", "worker": "./worker"})
	v1 := h.release(slipway.NewRelease{SlugID: b1})
	h.at(t0, 1).end(v1, slipway.ReleaseSucceeded)
	if err := f.db.EnsureFormations(ctx, h.app.ID, []string{"web", "worker"}); err != nil {
		t.Fatal(err)
	}
	v2 := h.at(t0, 2).release(slipway.NewRelease{Trigger: slipway.TriggerConfig, ConfigChange: map[string]*string{"SECRET_TOKEN": &secrets[0], "LOG_LEVEL": ptr("debug")}})
	h.at(t0, 3).end(v2, slipway.ReleaseSucceeded)
	v3 := h.at(t0, 4).release(slipway.NewRelease{Trigger: slipway.TriggerConfig, ConfigChange: map[string]*string{"SECRET_TOKEN": &secrets[1], "LOG_LEVEL": nil, "NEW_KEY": &secrets[2]}})
	h.at(t0, 5).end(v3, slipway.ReleaseSucceeded)
	if _, err := f.db.UpsertFormations(ctx, h.app.ID, []slipway.FormationChange{{Type: "web", Quantity: ptr(3), Healthcheck: ptr("/health")}}); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetAppStrategy(ctx, h.app.ID, &slipway.Strategy{Type: slipway.StrategyCanary, Steps: []slipway.CanaryStep{{Weight: 50}, {Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	b2 := h.at(t0, 6).build(slipway.Build{SHA: "0123456789abcdef0123", Branch: "main", Repo: "https://git.example.com/differ"}, map[string]string{"web": "./web --fast", "clock": "./clock"})
	v4 := h.release(slipway.NewRelease{SlugID: b2})
	h.at(t0, 7).end(v4, slipway.ReleaseSucceeded)
	v5 := h.at(t0, 8).release(slipway.NewRelease{RollbackTo: "v2", Trigger: slipway.TriggerRollback, Description: "back to the old token"})
	h.at(t0, 9).end(v5, slipway.ReleaseSucceeded)

	base := "/apps/" + h.app.Key() + "/releases/"
	keys := func(a, r, c []string) wire.KeyChanges { return wire.KeyChanges{Added: a, Removed: r, Changed: c} }
	none := []string{}
	slug1 := wire.DiffSlug{ID: b1, Checksum: "sha256:" + b1[:8]}
	slug2 := wire.DiffSlug{ID: b2, Checksum: "sha256:" + b2[:8], Commit: "0123456789abcdef0123", Branch: "main", Repo: "https://git.example.com/differ"}
	ref := func(r *slipway.Release) *wire.ReleaseRef { return &wire.ReleaseRef{ID: r.ID, Version: r.Version} }
	tests := []struct {
		name string
		path string
		want wire.ReleaseDiff
	}{
		{"first release against nothing", "v1/diff", wire.ReleaseDiff{Release: *ref(v1), Config: keys(none, none, none),
			Slug: wire.DiffSlugChange{Changed: true, To: slug1}, ProcessTypes: keys([]string{"web", "worker"}, none, none),
			Formation: []wire.FormationDiff{}, Strategy: wire.StrategyChange{From: "rolling", To: "rolling"},
			Summary: "v1 (first release): code none → " + b1[:8] + "; process types +web +worker"}},
		{"config change against the release current then", "v3/diff", wire.ReleaseDiff{Release: *ref(v3), Against: ref(v2),
			Config: keys([]string{"NEW_KEY"}, []string{"LOG_LEVEL"}, []string{"SECRET_TOKEN"}),
			Slug:   wire.DiffSlugChange{From: &slug1, To: slug1}, ProcessTypes: keys(none, none, none),
			Formation: []wire.FormationDiff{}, Strategy: wire.StrategyChange{From: "rolling", To: "rolling"},
			Summary: "v3 against v2: config +NEW_KEY -LOG_LEVEL ~SECRET_TOKEN"}},
		{"deploy: code, process types, formation, strategy", "v4/diff", wire.ReleaseDiff{Release: *ref(v4), Against: ref(v3),
			Config: keys(none, none, none), Slug: wire.DiffSlugChange{Changed: true, From: &slug1, To: slug2},
			ProcessTypes: keys([]string{"clock"}, []string{"worker"}, []string{"web"}),
			Formation: []wire.FormationDiff{{Type: "web", Change: "changed", Fields: []wire.FieldChange{
				{Field: "quantity", From: "1", To: "3"}, {Field: "healthcheck", To: "/health"}}}},
			Strategy: wire.StrategyChange{Changed: true, From: "rolling", To: "canary"},
			Summary:  "v4 against v3: code " + b1[:8] + " → 01234567; process types +clock -worker ~web; formation ~web; strategy rolling → canary"}},
		{"rollback names what it restored", "v5/diff", wire.ReleaseDiff{Release: *ref(v5), Against: ref(v4), RollbackOf: ref(v2),
			Config: keys([]string{"LOG_LEVEL"}, []string{"NEW_KEY"}, []string{"SECRET_TOKEN"}),
			Slug:   wire.DiffSlugChange{Changed: true, From: &slug2, To: slug1}, ProcessTypes: keys([]string{"worker"}, []string{"clock"}, []string{"web"}),
			Formation: []wire.FormationDiff{}, Strategy: wire.StrategyChange{Changed: true, From: "canary", To: "rolling"},
			Summary: "v5 against v4: rollback to v2; code 01234567 → " + b1[:8] + "; config +LOG_LEVEL -NEW_KEY ~SECRET_TOKEN; process types +worker -clock ~web; strategy canary → rolling"}},
		{"against a chosen release", "v4/diff?against=v1", wire.ReleaseDiff{Release: *ref(v4), Against: ref(v1),
			Config: keys([]string{"NEW_KEY", "SECRET_TOKEN"}, none, none), Slug: wire.DiffSlugChange{Changed: true, From: &slug1, To: slug2},
			ProcessTypes: keys([]string{"clock"}, []string{"worker"}, []string{"web"}),
			Formation:    []wire.FormationDiff{{Type: "web", Change: "added"}, {Type: "worker", Change: "added"}},
			Strategy:     wire.StrategyChange{Changed: true, From: "rolling", To: "canary"},
			Summary:      "v4 against v1: code " + b1[:8] + " → 01234567; config +NEW_KEY +SECRET_TOKEN; process types +clock -worker ~web; formation +web +worker; strategy rolling → canary"}},
		{"against by id", "v2/diff?against=" + v1.ID, wire.ReleaseDiff{Release: *ref(v2), Against: ref(v1),
			Config: keys([]string{"LOG_LEVEL", "SECRET_TOKEN"}, none, none), Slug: wire.DiffSlugChange{From: &slug1, To: slug1},
			ProcessTypes: keys(none, none, none), Formation: []wire.FormationDiff{{Type: "web", Change: "added"}, {Type: "worker", Change: "added"}},
			Strategy: wire.StrategyChange{From: "rolling", To: "rolling"},
			Summary:  "v2 against v1: config +LOG_LEVEL +SECRET_TOKEN; formation +web +worker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, body := getJSON[wire.ReleaseDiff](t, f.srv, base+tt.path, http.StatusOK)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("diff (-want +got):\n%s", d)
			}
			for _, s := range secrets {
				if strings.Contains(body, s) {
					t.Fatalf("the answer holds a config value: %s", body)
				}
			}
		})
	}

	for _, tt := range []struct {
		path string
		code int
		want string
	}{
		{"v9/diff", http.StatusNotFound, "not found"},
		{"v4/diff?against=v9", http.StatusUnprocessableEntity, "against"},
		{"v4/diff?against=", http.StatusUnprocessableEntity, "against"},
	} {
		rec := f.do("GET", base+tt.path, admin, "")
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("GET %s = %d %s, want %d naming %q", tt.path, rec.Code, rec.Body, tt.code, tt.want)
		}
	}
}

// hours is a duration of h hours in seconds, as the answers give them.
func hours(h float64) *float64 { v := h * 3600; return &v }

// The delivery metrics of a seeded history, against figures worked out by
// hand (times in hours from t0):
//
//	v1 deploy  b1 (commit t0-2h)  created 1,  succeeded 1.5   lead 3.5h
//	v2 deploy  b2 (no commit, built 24)  created 25, failed 26 → failure, restored by v3 at 31: 5h
//	v3 config  created 30, succeeded 31
//	v4 deploy  b3 (commit 40)     created 49, succeeded 50    lead 10h; rolled back past by v5 at 60 (10h later) → failure, restored by v5 at 61: 11h
//	v5 rollback to v3             created 60, succeeded 61
//	v6 deploy  b4 (no commit, built 72)  created 73, succeeded 74  lead 2h (from the build)
//	v7 rollback to v4             created 99 (25h after v6: not v6's failure), succeeded 99.5
//	v8 deploy  b4                 created 120, unknown at 121 → failure, not restored
//	v9 deploy  b4                 created 130, still queued
//
// and now is t0+140h. Over 30 days: 6 deployments, 3 succeeded, 2 failed
// (v2, v8), 1 running; 3/30 per day; lead times 2, 3.5, 10 h: median
// 3.5h, p90 10h, one from the build; 3 failures (v2, v4, v8) of 5 ended;
// restores 5h and 11h: median 8h, one unrestored. v1 is not blamed for
// v5, which went back to v3, later than v1.
//
// Over 72h (from 68): v6, v8, v9: 1 succeeded per 3 days, lead 2h, one
// failure (v8) of 2 ended, nothing restored.
func TestDeliveryMetrics_SeededHistory(t *testing.T) {
	f := newFixture(t)
	t0 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(140 * time.Hour)
	srv := api.New(api.Config{Store: f.db, Engine: nopEngine{}, Runtime: stubRuntime{}, Token: "admin-token", Now: func() time.Time { return now }})
	h := newHistory(t, f, "metrics", t0)
	at := func(hrs float64) *history { return h.at(t0, hrs) }
	pt := map[string]string{"web": "./web"}

	b1 := at(0).build(slipway.Build{CommitTime: t0.Add(-2 * time.Hour)}, pt)
	v1 := at(1).release(slipway.NewRelease{SlugID: b1})
	at(1.5).end(v1, slipway.ReleaseSucceeded)
	b2 := at(24).build(slipway.Build{}, pt)
	v2 := at(25).release(slipway.NewRelease{SlugID: b2})
	at(26).end(v2, slipway.ReleaseFailed)
	v3 := at(30).release(slipway.NewRelease{Trigger: slipway.TriggerConfig, ConfigChange: map[string]*string{"A": ptr("1")}})
	at(31).end(v3, slipway.ReleaseSucceeded)
	b3 := at(45).build(slipway.Build{CommitTime: t0.Add(40 * time.Hour)}, pt)
	v4 := at(49).release(slipway.NewRelease{SlugID: b3})
	at(50).end(v4, slipway.ReleaseSucceeded)
	v5 := at(60).release(slipway.NewRelease{RollbackTo: "v3", Trigger: slipway.TriggerRollback})
	at(61).end(v5, slipway.ReleaseSucceeded)
	b4 := at(72).build(slipway.Build{}, pt)
	v6 := at(73).release(slipway.NewRelease{SlugID: b4})
	at(74).end(v6, slipway.ReleaseSucceeded)
	v7 := at(99).release(slipway.NewRelease{RollbackTo: "v4", Trigger: slipway.TriggerRollback})
	at(99.5).end(v7, slipway.ReleaseSucceeded)
	v8 := at(120).release(slipway.NewRelease{SlugID: b4})
	at(121).end(v8, slipway.ReleaseUnknown)
	at(130).release(slipway.NewRelease{SlugID: b4})

	// Another app's releases in the same window count only for it.
	other := newHistory(t, f, "bystander", t0.Add(10*time.Hour))
	bo := other.build(slipway.Build{}, pt)
	other.end(other.release(slipway.NewRelease{SlugID: bo}), slipway.ReleaseFailed)

	app := &wire.Ref{ID: h.app.ID, Name: h.app.Key()}
	want30 := wire.DeliveryMetrics{App: app, Window: "30d", From: wire.TimeOf(now.Add(-30 * 24 * time.Hour)), To: wire.TimeOf(now),
		Deployments:         wire.DeploymentCounts{Total: 6, Succeeded: 3, Failed: 2, Running: 1},
		DeploymentFrequency: wire.DeploymentFrequency{PerDay: 3.0 / 30},
		LeadTime:            wire.LeadTime{MedianSeconds: hours(3.5), P90Seconds: hours(10), Measured: 3, FromBuildCreated: 1},
		ChangeFailureRate:   wire.ChangeFailureRate{Rate: ptr(3.0 / 5), Failures: 3, Ended: 5},
		TimeToRestore:       wire.TimeToRestore{MedianSeconds: hours(8), Restored: 2, Unrestored: 1},
	}
	want72 := wire.DeliveryMetrics{App: app, Window: "72h", From: wire.TimeOf(now.Add(-72 * time.Hour)), To: wire.TimeOf(now),
		Deployments:         wire.DeploymentCounts{Total: 3, Succeeded: 1, Failed: 1, Running: 1},
		DeploymentFrequency: wire.DeploymentFrequency{PerDay: 1.0 / 3},
		LeadTime:            wire.LeadTime{MedianSeconds: hours(2), P90Seconds: hours(2), Measured: 1, FromBuildCreated: 1},
		ChangeFailureRate:   wire.ChangeFailureRate{Rate: ptr(1.0 / 2), Failures: 1, Ended: 2},
		TimeToRestore:       wire.TimeToRestore{Unrestored: 1},
	}
	near := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) < 1e-9 })
	for _, tt := range []struct {
		query string
		want  wire.DeliveryMetrics
	}{{"", want30}, {"?window=30d", want30}, {"?window=72h", want72}} {
		got, _ := getJSON[wire.DeliveryMetrics](t, srv, "/apps/"+h.app.Key()+"/delivery-metrics"+tt.query, http.StatusOK)
		if d := cmp.Diff(tt.want, got, near); d != "" {
			t.Errorf("%s (-want +got):\n%s", tt.query, d)
		}
	}

	// A pipeline counts the deployments to its production-stage apps.
	ctx := context.Background()
	p := &slipway.Pipeline{Name: "shop"}
	if err := f.db.CreatePipeline(ctx, p); err != nil {
		t.Fatal(err)
	}
	for app, stage := range map[string]string{h.app.ID: "production", other.app.ID: "staging"} {
		if err := f.db.CreateCoupling(ctx, &slipway.Coupling{PipelineID: p.ID, AppID: app, Stage: stage}); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := getJSON[wire.DeliveryMetrics](t, srv, "/pipelines/shop/delivery-metrics?window=30d", http.StatusOK)
	wantP := want30
	wantP.App, wantP.Pipeline = nil, &wire.Ref{ID: p.ID, Name: "shop"}
	if d := cmp.Diff(wantP, got, near); d != "" {
		t.Errorf("pipeline (-want +got):\n%s", d)
	}

	// /metrics carries the same figures over 30 days for all apps
	// together, naming none: with the bystander's failed deployment, 4
	// failures of 6 ended deployments, and 2 of them unrestored.
	srv.RegisterGauges()
	rec := (&fixture{t: t, srv: srv}).do("GET", "/metrics", "", "")
	for _, line := range []string{
		"slipway_delivery_deployments_per_day 0.1\n",
		`slipway_delivery_lead_time_seconds{quantile="0.5"} 12600` + "\n",
		`slipway_delivery_lead_time_seconds{quantile="0.9"} 36000` + "\n",
		"slipway_delivery_change_failure_rate 0.666666",
		"slipway_delivery_time_to_restore_seconds 28800\n",
	} {
		if !strings.Contains(rec.Body.String(), line) {
			t.Errorf("/metrics lacks %s:\n%s", line, grepLines(rec.Body.String(), "slipway_delivery"))
		}
	}
	for _, name := range []string{h.app.Key(), other.app.Key(), h.app.ID} {
		if strings.Contains(rec.Body.String(), name) {
			t.Errorf("/metrics names %s", name)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A window is a whole number of days or hours, at most 365d.
func TestDeliveryMetrics_Window(t *testing.T) {
	f := newFixture(t)
	if err := f.db.CreatePipeline(context.Background(), &slipway.Pipeline{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		window string
		code   int
	}{
		{"30d", 200}, {"365d", 200}, {"1h", 200}, {"8760h", 200}, {"7d", 200},
		{"366d", 422}, {"8761h", 422}, {"0d", 422}, {"-1d", 422}, {"+3d", 422}, {"30", 422}, {"d", 422},
		{"1w", 422}, {"1.5d", 422}, {"30m", 422}, {"9999999d", 422}, {"30D", 422}, {"%2030d", 422},
	} {
		for _, path := range []string{"/apps/hello/delivery-metrics?window=", "/pipelines/shop/delivery-metrics?window="} {
			rec := f.do("GET", path+tt.window, admin, "")
			if rec.Code != tt.code || tt.code == 422 && !strings.Contains(rec.Body.String(), "window") {
				t.Errorf("%s%s = %d %s, want %d", path, tt.window, rec.Code, rec.Body, tt.code)
			}
		}
	}
}

// source_blob.commit_time is optional, RFC 3339, and shown back.
func TestBuild_CommitTime(t *testing.T) {
	f := newFixture(t)
	rec := f.do("POST", "/apps/hello/builds", admin, `{"url":"docker://example.com/app:1","commit_time":"2026-11-29T10:11:12+01:00"}`)
	if rec.Code != http.StatusCreated || !strings.Contains(rec.Body.String(), `"commit_time":"2026-11-29T09:11:12`) {
		t.Fatalf("create = %d %s", rec.Code, rec.Body)
	}
	var b wire.Build
	json.Unmarshal(rec.Body.Bytes(), &b)
	got, _ := getJSON[wire.Build](t, f.srv, "/apps/hello/builds/"+b.ID, http.StatusOK)
	if got.SourceBlob.CommitTime == nil || !got.SourceBlob.CommitTime.Equal(time.Date(2026, 11, 29, 9, 11, 12, 0, time.UTC)) {
		t.Fatalf("commit_time = %v", got.SourceBlob.CommitTime)
	}
	if rec := f.do("POST", "/apps/hello/builds", admin, `{"url":"docker://example.com/app:1"}`); !strings.Contains(rec.Body.String(), `"source_blob":{`) || strings.Contains(rec.Body.String(), "commit_time") {
		t.Fatalf("without commit_time: %d %s", rec.Code, rec.Body)
	}
	before := f.dump()
	for _, bad := range []string{`"yesterday"`, `"2026-11-29"`, `"2026-11-29 10:11:12"`, `12`} {
		rec := f.do("POST", "/apps/hello/builds", admin, `{"url":"docker://example.com/app:1","commit_time":`+bad+`}`)
		if rec.Code != http.StatusUnprocessableEntity && !(bad == "12" && rec.Code == http.StatusBadRequest) || !strings.Contains(rec.Body.String(), "commit_time") {
			t.Errorf("commit_time %s = %d %s, want 422 naming the field", bad, rec.Code, rec.Body)
		}
	}
	if f.dump() != before {
		t.Fatal("a refused build was written")
	}
}
