package api_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	_ "modernc.org/sqlite"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
	"github.com/slipway/slipway/store"
)

// stubRuntime has no dynos.
type stubRuntime struct{}

func (stubRuntime) Deploy(context.Context, slipway.Desired, slipway.ProgressFunc) error { return nil }
func (stubRuntime) Restart(context.Context, string, string, slipway.ProgressFunc) error { return nil }
func (stubRuntime) Dynos(context.Context, string) ([]slipway.Dyno, error)               { return nil, nil }
func (stubRuntime) Remove(context.Context, string) error                                { return nil }

type fixture struct {
	t      testing.TB
	srv    *api.Server
	db     *store.DB
	path   string
	app    *slipway.App
	other  *slipway.App
	slug   string
	rel    *slipway.Release
	status *slipway.ReleaseStatus
}

const admin = "Bearer admin-token"

func newFixture(t testing.TB) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "api.db")
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{t: t, db: db, path: path, srv: api.New(api.Config{Store: db, Engine: nopEngine{}, Runtime: stubRuntime{}, Token: "admin-token", MaxSlug: 1 << 20, SpoolDir: t.TempDir()})}
	ctx := context.Background()
	f.app = &slipway.App{Name: "hello", OrgName: "default", SpaceName: "default"}
	f.other = &slipway.App{Name: "other", OrgName: "default", SpaceName: "default"}
	for _, a := range []*slipway.App{f.app, f.other} {
		if err := db.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	b := &slipway.Build{AppID: f.app.ID}
	db.CreateBuild(ctx, b)
	db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{ProcessTypes: map[string]string{"web": "./web"}}})
	f.slug = b.ID
	if f.rel, err = db.CreateRelease(ctx, slipway.NewRelease{AppID: f.app.ID, SlugID: b.ID, Trigger: slipway.TriggerDeploy}); err != nil {
		t.Fatal(err)
	}
	f.status = &slipway.ReleaseStatus{ReleaseID: f.rel.ID, State: "pending", Name: "unit tests", Context: "ci/tests"}
	if err := db.CreateReleaseStatus(ctx, f.status); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) do(method, path, auth, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// dump is every row of every table, for checking that refused requests
// change nothing.
func (f *fixture) dump() string {
	db, err := sql.Open("sqlite", "file:"+f.path+"?mode=ro")
	if err != nil {
		f.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		f.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var out strings.Builder
	for _, tbl := range tables {
		rs, err := db.Query(`SELECT * FROM ` + tbl)
		if err != nil {
			f.t.Fatal(err)
		}
		cols, _ := rs.Columns()
		var lines []string
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rs.Scan(ptrs...)
			lines = append(lines, fmt.Sprint(vals...))
		}
		rs.Close()
		sort.Strings(lines)
		fmt.Fprintf(&out, "%s\n%s\n", tbl, strings.Join(lines, "\n"))
	}
	return out.String()
}

var param = regexp.MustCompile(`\{[^}]+\}`)

func TestRoutes_EveryRouteNeedsAToken(t *testing.T) {
	f := newFixture(t)
	routes := f.srv.Routes()
	if len(routes) < 50 {
		t.Fatalf("only %d routes found: %v", len(routes), routes)
	}
	for _, rt := range routes {
		method, pattern, _ := strings.Cut(rt, " ")
		path := param.ReplaceAllString(pattern, "x")
		if path == "/healthz" || path == "/metrics" || path == "/openapi.json" {
			if rec := f.do(method, path, "", ""); rec.Code != 200 {
				t.Errorf("%s %s without token = %d, want 200", method, path, rec.Code)
			}
			continue
		}
		if path == "/log-sessions/x" { // the URL's secret stands in for a token
			if rec := f.do(method, path+"?secret=wrong", admin, ""); rec.Code != 404 {
				t.Errorf("%s %s with a wrong secret and the admin token = %d, want 404", method, path, rec.Code)
			}
			continue
		}
		for _, auth := range []string{"", "Bearer wrong", "wrong", "Bearer admin-token-but-longer"} {
			rec := f.do(method, path, auth, "{}")
			if rec.Code != 401 || !strings.Contains(rec.Body.String(), `"id":"unauthorized"`) {
				t.Errorf("%s %s with %q = %d %s, want 401", method, path, auth, rec.Code, rec.Body)
			}
		}
	}
}

// TestBadInput_ClearErrorAndNothingWritten sends every kind of bad request
// and checks the documented 4xx, a JSON error, and an unchanged store.
func TestBadInput_ClearErrorAndNothingWritten(t *testing.T) {
	f := newFixture(t)
	before := f.dump()
	rel, st, other := f.rel.ID, f.status.ID, f.other.ID
	big := `{"description":"` + strings.Repeat("x", 2<<20) + `"}`
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"app: bad json", "POST", "/apps", `{"name":`, 400},
		{"app: wrong type", "POST", "/apps", `{"name":5}`, 400},
		{"app: array body", "POST", "/apps", `[1]`, 400},
		{"app: trailing data", "POST", "/apps", `{"name":"a"} {}`, 400},
		{"app: bad name", "POST", "/apps", `{"name":"Hello World"}`, 422},
		{"app: long name", "POST", "/apps", `{"name":"` + strings.Repeat("a", 25) + `"}`, 422},
		{"app: taken", "POST", "/apps", `{"name":"hello"}`, 409},
		{"app: unknown space", "POST", "/apps", `{"name":"x","space":"nope"}`, 422},
		{"app: huge body", "POST", "/apps", big, 413},
		{"app: unknown", "GET", "/apps/nope-default", ``, 404},
		{"app: patch wrong type", "PATCH", "/apps/hello", `{"maintenance":"yes"}`, 400},
		{"app: rename", "PATCH", "/apps/hello", `{"maintenance":true,"name":"goodbye"}`, 422},
		{"org: bad name", "POST", "/organizations", `{"name":"A B"}`, 422},
		{"org: taken", "POST", "/organizations", `{"name":"default"}`, 409},
		{"space: taken", "POST", "/spaces", `{"name":"default"}`, 409},
		{"space: unknown org", "POST", "/spaces", `{"name":"ghost","org":"nope"}`, 422},
		{"space: org wrong type", "POST", "/spaces", `{"name":"ghost","org":7}`, 400},
		{"space: unknown stack", "POST", "/spaces", `{"name":"ghost","stack":"ds1"}`, 422},
		{"region: unknown", "GET", "/regions/us-seattle", ``, 404},
		{"stack: unknown", "GET", "/stacks/ds1", ``, 404},
		{"audits: space without app", "GET", "/audits?space=default", ``, 422},
		{"audits: by user", "GET", "/audits?user=someone", ``, 422},
		{"feature: unknown", "PATCH", "/apps/hello/features/nope", `{"enabled":true}`, 404},
		{"feature: no enabled", "PATCH", "/apps/hello/features/auto-release", `{}`, 422},
		{"config: reserved", "PATCH", "/apps/hello/config-vars", `{"PORT":"80"}`, 422},
		{"config: not a string", "PATCH", "/apps/hello/config-vars", `{"A":true}`, 400},
		{"config: NUL byte", "PATCH", "/apps/hello/config-vars", `{"A":"ok","B":"x\u0000y"}`, 422},
		{"config: value over 32 KiB", "PATCH", "/apps/hello/config-vars", `{"A":"ok","B":"` + strings.Repeat("v", 32<<10+1) + `"}`, 422},
		{"config: app over 256 KiB", "PATCH", "/apps/hello/config-vars", `{` + manyConfigVars(9, 32<<10) + `}`, 422},
		{"build: no url", "POST", "/apps/hello/builds", `{}`, 422},
		{"build: bad scheme", "POST", "/apps/hello/builds", `{"url":"file:///etc/passwd"}`, 422},
		{"build: too big", "POST", "/apps/hello/builds", `{"url":"data:;base64,` + strings.Repeat("A", 2<<20) + `"}`, 413},
		{"build: unknown", "GET", "/apps/hello/builds/" + rel, ``, 404},
		{"build: not a uuid", "GET", "/apps/hello/builds/abc", ``, 404},
		{"release: both", "POST", "/apps/hello/releases", `{"slug":"latest","release":"v1"}`, 422},
		{"release: neither", "POST", "/apps/hello/releases", `{}`, 422},
		{"release: slug not uuid", "POST", "/apps/hello/releases", `{"slug":"../etc"}`, 422},
		{"release: slug of another app", "POST", "/apps/other/releases", `{"slug":"` + f.slug + `"}`, 409},
		{"release: rollback to another app's", "POST", "/apps/other/releases", `{"release":"` + rel + `"}`, 404},
		{"release: rollback to unfinished", "POST", "/apps/hello/releases", `{"release":"v1"}`, 409},
		{"release: long description", "POST", "/apps/hello/releases", `{"slug":"latest","description":"` + strings.Repeat("d", 1100) + `"}`, 422},
		{"release: of another app", "GET", "/apps/other/releases/" + rel, ``, 404},
		{"release: bad range", "GET", "/apps/hello/releases", ``, 0},
		{"status: bad state", "POST", "/apps/hello/releases/v1/statuses", `{"state":"ok","name":"tests","context":"ci/other"}`, 422},
		{"status: duplicate context", "POST", "/apps/hello/releases/v1/statuses", `{"state":"success","name":"tests","context":"ci/tests"}`, 422},
		{"status: change context", "PATCH", "/apps/hello/releases/v1/statuses/" + st, `{"context":"ci/other"}`, 422},
		{"status: of another app", "GET", "/apps/other/releases/" + rel + "/statuses/" + st, ``, 404},
		{"status: bad url", "PATCH", "/apps/hello/releases/v1/statuses/" + st, `{"target_url":"javascript:x"}`, 422},
		{"formation: bad type", "POST", "/apps/hello/formation", `{"type":"Web!","quantity":1}`, 422},
		{"formation: negative", "POST", "/apps/hello/formation", `{"type":"web","quantity":-1}`, 422},
		{"formation: too many", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":1000}]`, 422},
		{"formation: bad healthcheck", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":1,"healthcheck":"health"}]`, 422},
		{"formation: empty batch", "PATCH", "/apps/hello/formation", `[]`, 422},
		{"formation: unknown type", "PATCH", "/apps/hello/formation/worker", `{"quantity":1}`, 404},
		{"formation: release type", "POST", "/apps/hello/formation", `{"type":"release","quantity":1}`, 422},
		{"formation: 51 types", "PATCH", "/apps/hello/formation", formationList(51, 0), 422},
		{"formation: over the app's dynos", "PATCH", "/apps/hello/formation", formationList(2, 51), 422},
		{"dynos: restart without release", "DELETE", "/apps/other/dynos", ``, 409},
		{"hook: bad url", "POST", "/apps/hello/hooks", `{"url":"gopher://x","events":["release"]}`, 422},
		{"hook: unknown", "GET", "/apps/hello/hooks/" + other, ``, 404},
		{"pipeline: unknown", "GET", "/pipelines/nope", ``, 404},
		{"coupling: bad stage", "POST", "/pipeline-couplings", `{"app":"hello","pipeline":"nope","stage":"qa"}`, 404},
		{"promotion: missing fields", "POST", "/pipeline-promotions", `{}`, 422},
		{"promotion: unknown", "GET", "/pipeline-promotions/" + other, ``, 404},
		{"token: no org", "POST", "/tokens", `{}`, 422},
		{"audits: bad limit", "GET", "/audits?limit=-1", ``, 400},
		{"slug: unknown", "GET", "/slugs/" + other, ``, 404},
		{"wrong method", "PUT", "/apps/hello", `{}`, 405},
		{"unknown path", "GET", "/apps/hello/nothing", ``, 404},
	}
	for _, tt := range tests {
		if tt.want == 0 {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.method, tt.path, admin, tt.body)
			if rec.Code != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.want)
			}
			var e api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.ID == "" || e.Message == "" {
				t.Fatalf("body %q is not a JSON error", rec.Body)
			}
			if api.StatusCode(e.ID) != tt.want {
				t.Fatalf("error id %s does not match status %d", e.ID, tt.want)
			}
		})
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/apps/hello/releases", nil)
	req.Header.Set("Authorization", admin)
	req.Header.Set("Range", "version ..; max=99999")
	f.srv.ServeHTTP(rec, req)
	if rec.Code != 400 {
		t.Errorf("bad Range = %d", rec.Code)
	}
	if after := f.dump(); after != before {
		t.Errorf("refused requests changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestScopedToken_SeesOnlyItsOrganization(t *testing.T) {
	f := newFixture(t)
	if rec := f.do("POST", "/organizations", admin, `{"name":"acme"}`); rec.Code != 201 {
		t.Fatal(rec.Body)
	}
	rec := f.do("POST", "/tokens", admin, `{"org":"acme","description":"ci"}`)
	if rec.Code != 201 {
		t.Fatal(rec.Body)
	}
	var tok struct{ Token string }
	json.Unmarshal(rec.Body.Bytes(), &tok)
	scoped := "Bearer " + tok.Token
	if rec := f.do("POST", "/apps", scoped, `{"name":"mine"}`); rec.Code != 201 || !strings.Contains(rec.Body.String(), `"name":"acme"`) {
		t.Fatalf("create in own org: %d %s", rec.Code, rec.Body)
	}
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"own app", "GET", "/apps/mine", ``, 200},
		{"another org's app", "GET", "/apps/hello", ``, 404},
		{"another org's app by id", "GET", "/apps/" + f.app.ID, ``, 404},
		{"change another org's app", "PATCH", "/apps/hello", `{"description":"x"}`, 404},
		{"release to another org's app", "POST", "/apps/hello/releases", `{"slug":"latest"}`, 404},
		{"another org's releases", "GET", "/apps/hello/releases", ``, 404},
		{"delete another org's app", "DELETE", "/apps/hello", ``, 404},
		{"another org's slug", "GET", "/slugs/" + f.slug, ``, 404},
		{"another org's audits", "GET", "/audits?app=hello", ``, 404},
		{"another org's audits by name and space", "GET", "/audits?app=hello&space=default", ``, 404},
		{"own audits by name and space", "GET", "/audits?app=mine&space=default", ``, 200},
		{"app in another org", "POST", "/apps", `{"name":"sneaky","org":"default"}`, 422},
		{"another org", "GET", "/organizations/default", ``, 404},
		{"tokens are admin only", "POST", "/tokens", `{"org":"acme"}`, 403},
		{"pipelines are admin only", "GET", "/pipelines", ``, 403},
		{"orgs are admin only", "POST", "/organizations", `{"name":"mine2"}`, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := f.do(tt.method, tt.path, scoped, tt.body); rec.Code != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, rec.Code, rec.Body, tt.want)
			}
		})
	}
	var apps []struct{ Name string }
	json.Unmarshal(f.do("GET", "/apps", scoped, "").Body.Bytes(), &apps)
	if len(apps) != 1 || apps[0].Name != "mine-default" {
		t.Fatalf("scoped app list = %+v", apps)
	}
	var orgs []struct{ Name, Role string }
	json.Unmarshal(f.do("GET", "/organizations", scoped, "").Body.Bytes(), &orgs)
	if len(orgs) != 1 || orgs[0].Name != "acme" || orgs[0].Role != "member" {
		t.Fatalf("scoped org list = %+v", orgs)
	}
	// The admin lists tokens (no secrets) and revokes this one.
	var list []map[string]any
	json.Unmarshal(f.do("GET", "/tokens", admin, "").Body.Bytes(), &list)
	if len(list) != 1 || list[0]["token"] != nil || list[0]["description"] != "ci" {
		t.Fatalf("tokens = %+v", list)
	}
	if rec := f.do("DELETE", "/tokens/"+list[0]["id"].(string), admin, ""); rec.Code != 200 {
		t.Fatalf("revoke: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do("GET", "/apps/mine", scoped, ""); rec.Code != 401 {
		t.Fatalf("revoked token still works: %d", rec.Code)
	}
	if rec := f.do("DELETE", "/tokens/"+list[0]["id"].(string), admin, ""); rec.Code != 404 {
		t.Fatalf("revoking twice: %d", rec.Code)
	}
}

// FuzzRequests sends arbitrary bodies to every POST and PATCH route: the
// server must never answer 500 or panic, must refuse a body that is not
// UTF-8, and must not echo much of the body in an error.
func FuzzRequests(f *testing.F) {
	seeds := []string{`{}`, `[]`, `null`, `{"name":"a"}`, `{"slug":"latest"}`, `{"release":"v1"}`, `{"state":"success","name":"abcd","context":"ci/tests"}`,
		`[{"type":"web","quantity":2}]`, `{"url":"data:;base64,AAAA"}`, `{"A":null}`, `{"enabled":true}`, `"x"`, `1e999`, `{"quantity":1.5}`, "{\"name\":\"\xff\"}"}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	fx := newFixture(f)
	// A real pipeline coupling and hook, so that the PATCH routes that
	// take their ids find them and decode the fuzzed body (an empty one is
	// then a 200 or a 422 that says what is missing, never a 404).
	ctx := context.Background()
	pl := &slipway.Pipeline{Name: "fuzz"}
	if err := fx.db.CreatePipeline(ctx, pl); err != nil {
		f.Fatal(err)
	}
	coupling := &slipway.Coupling{PipelineID: pl.ID, AppID: fx.app.ID, Stage: "development"}
	if err := fx.db.CreateCoupling(ctx, coupling); err != nil {
		f.Fatal(err)
	}
	hook := &slipway.Hook{AppID: fx.app.ID, URL: "https://hooks.example.com/fuzz", Events: []string{slipway.EventRelease}, Active: true}
	if err := fx.db.CreateHook(ctx, hook); err != nil {
		f.Fatal(err)
	}
	for _, path := range []string{"/pipeline-couplings/" + coupling.ID, "/apps/hello/hooks/" + hook.ID} {
		if rec := fx.do("PATCH", path, admin, `{}`); rec.Code == 404 || rec.Code >= 500 {
			f.Fatalf("PATCH %s {} = %d %s: the fuzzed PATCH bodies would not be decoded", path, rec.Code, rec.Body)
		}
	}
	var routes []string
	for _, r := range fx.srv.Routes() {
		if strings.HasPrefix(r, "POST ") || strings.HasPrefix(r, "PATCH ") {
			routes = append(routes, r)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		rt := routes[int(which)%len(routes)]
		method, pattern, _ := strings.Cut(rt, " ")
		path := strings.NewReplacer("{app}", "hello", "{release}", "v1", "{status}", fx.status.ID, "{type}", "web",
			"{feature}", "auto-release", "{coupling}", coupling.ID, "{hook}", hook.ID).Replace(pattern)
		path = param.ReplaceAllString(path, "x")
		rec := fx.do(method, path, admin, body)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q = %d %s", method, path, body, rec.Code, rec.Body)
		}
		if !utf8.ValidString(body) && rec.Code != 400 && rec.Code != 404 {
			t.Fatalf("%s %s %q (not UTF-8) = %d %s, want 400", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && rec.Body.Len() > 1024 {
			t.Fatalf("%s %s %q = %d with an error of %d bytes: %s", method, path, body, rec.Code, rec.Body.Len(), rec.Body)
		}
	})
}

func TestListBuilds_Paging(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 2; i++ {
		f.db.CreateBuild(context.Background(), &slipway.Build{AppID: f.app.ID})
	}
	get := func(rng string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/apps/hello/builds", nil)
		req.Header.Set("Authorization", admin)
		req.Header.Set("Range", rng)
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, req)
		return rec
	}
	first := get("created_at ..; max=2")
	next := first.Header().Get("Next-Range")
	if first.Code != 206 || !strings.HasPrefix(next, "created_at ]") {
		t.Fatalf("first page: %d, Next-Range %q", first.Code, next)
	}
	var page []struct{ ID string }
	json.Unmarshal(first.Body.Bytes(), &page)
	second := get(next)
	var rest []struct{ ID string }
	json.Unmarshal(second.Body.Bytes(), &rest)
	if len(page) != 2 || second.Code != 200 || len(rest) != 1 || second.Header().Get("Next-Range") != "" {
		t.Fatalf("pages: %d + %d (%d)", len(page), len(rest), second.Code)
	}
	if rest[0].ID == page[0].ID || rest[0].ID == page[1].ID {
		t.Fatal("the second page repeats the first")
	}
}

// TestListBuilds_PagingRowsOfOneMicrosecond walks the builds a page at a
// time, both ways, when many were created in the same microsecond: each
// comes exactly once, in order, because the Next-Range cursor names one
// row (time and id) instead of a time.
func TestListBuilds_PagingRowsOfOneMicrosecond(t *testing.T) {
	f := newFixture(t)
	at := time.Now().Add(time.Hour) // after the fixture's build
	f.db.Now = func() time.Time { return at }
	defer func() { f.db.Now = time.Now }()
	want := map[string]bool{f.slug: true}
	for range 7 {
		b := &slipway.Build{AppID: f.app.ID}
		if err := f.db.CreateBuild(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		want[b.ID] = true
	}
	for _, order := range []string{"asc", "desc"} {
		t.Run(order, func(t *testing.T) {
			rng := "created_at ..; order=" + order + ", max=2"
			var ids []string
			for pages := 0; rng != ""; pages++ {
				if pages > len(want) {
					t.Fatalf("still paging after %d pages: %v", pages, ids)
				}
				req := httptest.NewRequest("GET", "/apps/hello/builds", nil)
				req.Header.Set("Authorization", admin)
				req.Header.Set("Range", rng)
				rec := httptest.NewRecorder()
				f.srv.ServeHTTP(rec, req)
				if rec.Code != 200 && rec.Code != 206 {
					t.Fatalf("Range %q = %d %s", rng, rec.Code, rec.Body)
				}
				var page []struct{ ID string }
				json.Unmarshal(rec.Body.Bytes(), &page)
				for _, b := range page {
					ids = append(ids, b.ID)
				}
				rng = rec.Header().Get("Next-Range")
			}
			seen := map[string]bool{}
			for _, id := range ids {
				if !want[id] || seen[id] {
					t.Fatalf("build %s unknown or listed twice: %v", id, ids)
				}
				seen[id] = true
			}
			if len(seen) != len(want) {
				t.Fatalf("walked %d builds of %d: %v", len(seen), len(want), ids)
			}
			// Same time: ordered by id, the one build made earlier first
			// (last when descending).
			same := ids[1:]
			if order == "desc" {
				same = ids[:len(ids)-1]
			}
			if !sort.SliceIsSorted(same, func(i, j int) bool { return (same[i] < same[j]) == (order == "asc") }) {
				t.Fatalf("builds of one microsecond not in id order: %v", ids)
			}
		})
	}
}

func TestSlugBlob_PerReleaseToken(t *testing.T) {
	f := newFixture(t)
	key := []byte("blob-key")
	ctx := context.Background()
	b := &slipway.Build{AppID: f.app.ID}
	f.db.CreateBuild(ctx, b)
	f.db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{Dir: t.TempDir(), ProcessTypes: map[string]string{"web": "x"}}})
	f.srv = api.New(api.Config{Store: f.db, Engine: nopEngine{}, Runtime: stubRuntime{}, Token: "admin-token", BlobKey: key,
		SlugBlob: func(w io.Writer, s *slipway.Slug) error { _, err := io.WriteString(w, "tar.gz of "+s.ID); return err }})
	good := api.SlugToken(key, b.ID, f.rel.ID)
	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"release token", "/slugs/" + b.ID + "/blob?release=" + f.rel.ID, "Bearer " + good, 200},
		{"admin token", "/slugs/" + b.ID + "/blob", admin, 200},
		{"token of another release", "/slugs/" + b.ID + "/blob?release=" + f.other.ID, "Bearer " + good, 401},
		{"token of another slug", "/slugs/" + f.slug + "/blob?release=" + f.rel.ID, "Bearer " + good, 401},
		{"no token", "/slugs/" + b.ID + "/blob?release=" + f.rel.ID, "", 401},
		{"image or empty slug", "/slugs/" + f.slug + "/blob", admin, 501},
	}
	for _, tt := range tests {
		rec := f.do("GET", tt.path, tt.auth, "")
		if rec.Code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, rec.Code, rec.Body, tt.want)
		}
		if tt.want == 200 && rec.Body.String() != "tar.gz of "+b.ID {
			t.Errorf("%s: body %q", tt.name, rec.Body)
		}
	}
}

// TestListReleases_WholeListAcrossChunks lists more releases than one
// streamed chunk holds: all of them, oldest first, none twice.
func TestListReleases_WholeListAcrossChunks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := 0; i < 1100; i++ {
		if _, err := f.db.CreateRelease(ctx, slipway.NewRelease{AppID: f.app.ID, SlugID: f.slug, Trigger: slipway.TriggerDeploy}); err != nil {
			t.Fatal(err)
		}
	}
	rec := f.do("GET", "/apps/hello/releases", admin, "")
	var rels []struct{ Version int }
	if err := json.Unmarshal(rec.Body.Bytes(), &rels); err != nil || rec.Code != 200 {
		t.Fatalf("%d %v", rec.Code, err)
	}
	if len(rels) != 1101 {
		t.Fatalf("got %d releases, want 1101", len(rels))
	}
	for i, r := range rels {
		if r.Version != i+1 {
			t.Fatalf("release %d has version %d", i, r.Version)
		}
	}
}

// scopedToken creates an organization (unless it exists) and a token
// limited to it, and returns the Authorization header of the token.
func (f *fixture) scopedToken(org string) string {
	f.t.Helper()
	if rec := f.do("POST", "/organizations", admin, `{"name":"`+org+`"}`); rec.Code != 201 && rec.Code != 409 {
		f.t.Fatal(rec.Body)
	}
	rec := f.do("POST", "/tokens", admin, `{"org":"`+org+`"}`)
	if rec.Code != 201 {
		f.t.Fatal(rec.Body)
	}
	var tok struct{ Token string }
	json.Unmarshal(rec.Body.Bytes(), &tok)
	return "Bearer " + tok.Token
}

// mustDo sends a request that has to succeed with want.
func (f *fixture) mustDo(method, path, auth, body string, want int) *httptest.ResponseRecorder {
	f.t.Helper()
	rec := f.do(method, path, auth, body)
	if rec.Code != want {
		f.t.Fatalf("%s %s = %d %s, want %d", method, path, rec.Code, rec.Body, want)
	}
	return rec
}

// TestScopedToken_OtherOrganizationsSpacesAndNamesDoNotLeak: a scoped
// token sees and uses its organization's spaces and shared ones only, its
// bare app names resolve among its own apps, and every refusal reads the
// same whether or not what was named exists in another organization.
func TestScopedToken_OtherOrganizationsSpacesAndNamesDoNotLeak(t *testing.T) {
	f := newFixture(t)
	acme, globex := f.scopedToken("acme"), f.scopedToken("globex")
	f.mustDo("POST", "/spaces", admin, `{"name":"acme-prod","org":"acme"}`, 201)
	rec := f.mustDo("POST", "/spaces", admin, `{"name":"globex-prod","org":"globex"}`, 201)
	if !strings.Contains(rec.Body.String(), `"organization":{"id":`) || !strings.Contains(rec.Body.String(), `"name":"globex"}`) {
		t.Fatalf("owned space: %s", rec.Body)
	}
	if rec := f.mustDo("POST", "/spaces", admin, `{"name":"shared"}`, 201); !strings.Contains(rec.Body.String(), `"organization":null`) {
		t.Fatalf("shared space: %s", rec.Body)
	}
	f.mustDo("POST", "/spaces", acme, `{"name":"mine","org":"acme"}`, 403)
	f.mustDo("POST", "/apps", globex, `{"name":"shop","space":"globex-prod"}`, 201)
	f.mustDo("POST", "/apps", globex, `{"name":"secret","space":"globex-prod"}`, 201)
	f.mustDo("POST", "/apps", globex, `{"name":"taken","space":"shared"}`, 201)

	// Spaces: the organization's own and the shared ones.
	var spaces []struct{ Name string }
	json.Unmarshal(f.mustDo("GET", "/spaces", acme, "", 200).Body.Bytes(), &spaces)
	var names []string
	for _, sp := range spaces {
		names = append(names, sp.Name)
	}
	if strings.Join(names, ",") != "acme-prod,default,shared" {
		t.Fatalf("acme's spaces = %v", names)
	}
	json.Unmarshal(f.mustDo("GET", "/spaces", admin, "", 200).Body.Bytes(), &spaces)
	if len(spaces) != 4 {
		t.Fatalf("the admin sees %d spaces, want 4", len(spaces))
	}
	f.mustDo("GET", "/spaces/acme-prod", acme, "", 200)
	f.mustDo("GET", "/spaces/shared", acme, "", 200)
	same := func(what string, a, b *httptest.ResponseRecorder, nameA, nameB string) {
		t.Helper()
		if a.Code != b.Code || errorMessage(t, a) != strings.ReplaceAll(errorMessage(t, b), nameB, nameA) {
			t.Fatalf("%s: %d %s and %d %s differ", what, a.Code, a.Body, b.Code, b.Body)
		}
	}
	same("a space of another organization and a space that does not exist",
		f.mustDo("GET", "/spaces/globex-prod", acme, "", 404), f.mustDo("GET", "/spaces/nowhere", acme, "", 404), "globex-prod", "nowhere")

	before := f.dump()
	// Creating in another organization's space: refused, and the same
	// answer whether or not the name is taken there.
	taken := f.mustDo("POST", "/apps", acme, `{"name":"secret","space":"globex-prod"}`, 422)
	free := f.mustDo("POST", "/apps", acme, `{"name":"unused","space":"globex-prod"}`, 422)
	same("a taken and a free name in another organization's space", taken, free, "secret", "unused")
	same("another organization's space and one that does not exist",
		taken, f.mustDo("POST", "/apps", acme, `{"name":"secret","space":"nowhere"}`, 422), "globex-prod", "nowhere")
	f.mustDo("POST", "/apps", acme, `{"name":"sneaky","org":"globex","space":"globex-prod"}`, 422)
	// Another organization's app, by bare name, key or id, reads like one
	// that does not exist.
	var secret struct{ ID string }
	json.Unmarshal(f.mustDo("GET", "/apps/secret", globex, "", 200).Body.Bytes(), &secret)
	for _, ref := range []string{"secret", "secret-globex-prod", secret.ID} {
		same("another organization's app and one that does not exist",
			f.mustDo("GET", "/apps/"+ref, acme, "", 404), f.mustDo("GET", "/apps/nosuchapp", acme, "", 404), ref, "nosuchapp")
		f.mustDo("GET", "/audits?app="+ref, acme, "", 404)
	}
	// A name taken in a shared space is a 409 that names no organization.
	if rec := f.mustDo("POST", "/apps", acme, `{"name":"taken","space":"shared"}`, 409); strings.Contains(rec.Body.String(), "globex") {
		t.Fatalf("the conflict names the other organization: %s", rec.Body)
	}
	if after := f.dump(); after != before {
		t.Fatalf("refused requests changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// The tenant's own bare name works although globex holds it too.
	rec = f.mustDo("POST", "/apps", acme, `{"name":"shop","space":"acme-prod"}`, 201)
	var mine struct {
		ID           string
		Organization struct{ Name string }
	}
	json.Unmarshal(rec.Body.Bytes(), &mine)
	if mine.Organization.Name != "acme" {
		t.Fatalf("app in own space: %s", rec.Body)
	}
	for _, tok := range []string{acme, globex} {
		var got struct{ ID string }
		json.Unmarshal(f.mustDo("GET", "/apps/shop", tok, "", 200).Body.Bytes(), &got)
		if (tok == acme) != (got.ID == mine.ID) {
			t.Fatalf("bare name resolved to another organization's app")
		}
	}
	f.mustDo("PATCH", "/apps/shop", acme, `{"description":"ours"}`, 200)
	f.mustDo("GET", "/audits?app=shop", acme, "", 200)
	f.mustDo("POST", "/apps", acme, `{"name":"api","space":"shared"}`, 201)
	// The admin sees both and needs the key.
	if msg := errorMessage(t, f.mustDo("GET", "/apps/shop", admin, "", 404)); !strings.Contains(msg, "<name>-<space>") {
		t.Fatalf("admin's ambiguous name: %s", msg)
	}
	// The admin's app without an org goes to the space's organization;
	// another organization's app does not go in an owned space.
	if rec := f.mustDo("POST", "/apps", admin, `{"name":"ops","space":"acme-prod"}`, 201); !strings.Contains(rec.Body.String(), `"name":"acme"`) {
		t.Fatalf("admin's app in acme-prod: %s", rec.Body)
	}
	if msg := errorMessage(t, f.mustDo("POST", "/apps", admin, `{"name":"ops2","org":"default","space":"acme-prod"}`, 422)); !strings.Contains(msg, "belongs to organization") {
		t.Fatalf("admin's app of another org in an owned space: %s", msg)
	}
}
