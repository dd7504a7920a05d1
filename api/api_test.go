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
		if path == "/healthz" || path == "/metrics" {
			if rec := f.do(method, path, "", ""); rec.Code != 200 {
				t.Errorf("%s %s without token = %d, want 200", method, path, rec.Code)
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
		{"org: bad name", "POST", "/organizations", `{"name":"A B"}`, 422},
		{"org: taken", "POST", "/organizations", `{"name":"default"}`, 409},
		{"space: taken", "POST", "/spaces", `{"name":"default"}`, 409},
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
	if len(apps) != 1 || apps[0].Name != "mine" {
		t.Fatalf("scoped app list = %+v", apps)
	}
	var orgs []struct{ Name string }
	json.Unmarshal(f.do("GET", "/organizations", scoped, "").Body.Bytes(), &orgs)
	if len(orgs) != 1 || orgs[0].Name != "acme" {
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
// server must never answer 500 or panic.
func FuzzRequests(f *testing.F) {
	seeds := []string{`{}`, `[]`, `null`, `{"name":"a"}`, `{"slug":"latest"}`, `{"release":"v1"}`, `{"state":"success","name":"abcd","context":"ci/tests"}`,
		`[{"type":"web","quantity":2}]`, `{"url":"data:;base64,AAAA"}`, `{"A":null}`, `{"enabled":true}`, `"x"`, `1e999`, `{"quantity":1.5}`}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	fx := newFixture(f)
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
			"{feature}", "auto-release", "{coupling}", fx.app.ID, "{hook}", fx.app.ID).Replace(pattern)
		path = param.ReplaceAllString(path, "x")
		rec := fx.do(method, path, admin, body)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q = %d %s", method, path, body, rec.Code, rec.Body)
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
