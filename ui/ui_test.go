package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/ui"
)

type nopEngine struct{}

func (nopEngine) Kick(string)                                       {}
func (nopEngine) Converge(string)                                   {}
func (nopEngine) StartBuild(*slipway.Build, slipway.BuildSource)    {}
func (nopEngine) CancelBuild(context.Context, *slipway.Build) error { return nil }
func (nopEngine) Restart(context.Context, string, string) error     { return nil }
func (nopEngine) RemoveApp(context.Context, string) error           { return nil }

type stubRuntime struct{}

func (stubRuntime) Deploy(context.Context, slipway.Desired, slipway.ProgressFunc) error { return nil }
func (stubRuntime) Restart(context.Context, string, string, slipway.ProgressFunc) error { return nil }
func (stubRuntime) Dynos(context.Context, string) ([]slipway.Dyno, error)               { return nil, nil }
func (stubRuntime) Remove(context.Context, string) error                                { return nil }

const adminToken = "admin-token"

// fixture is the API and the dashboard in front of it, on a SQLite store
// with one app of the default organization that has one release.
type fixture struct {
	t       testing.TB
	db      *store.DB
	h       http.Handler
	now     time.Time
	appID   string
	slug    string
	release string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "ui.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a := api.New(api.Config{Store: db, Engine: nopEngine{}, Runtime: stubRuntime{}, Token: adminToken})
	f := &fixture{t: t, db: db, now: time.Now()}
	f.h = ui.Wrap(a, ui.New(ui.Config{API: a, Now: func() time.Time { return f.now }, SessionTTL: time.Hour}))
	ctx := context.Background()
	app := &slipway.App{Name: "shop", OrgName: "default", SpaceName: "default"}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	build := &slipway.Build{AppID: app.ID}
	if err := db.CreateBuild(ctx, build); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishBuild(ctx, build.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{ProcessTypes: map[string]string{"web": "./web"}}}); err != nil {
		t.Fatal(err)
	}
	f.appID, f.slug = app.ID, build.ID
	f.api("PATCH", "/apps/shop-default/config-vars", `{"DATABASE_URL":"hunter2-secret-value"}`, nil)
	rel, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: app.ID, SlugID: build.ID, Trigger: slipway.TriggerDeploy})
	if err != nil {
		t.Fatal(err)
	}
	db.SetReleaseStatus(ctx, rel.ID, slipway.ReleasePending, "")
	db.SetReleaseStatus(ctx, rel.ID, slipway.ReleaseSucceeded, "")
	f.release = rel.ID
	return f
}

// browser is a cookie jar and the last CSRF token a page held.
type browser struct {
	f       *fixture
	cookies map[string]string
	csrf    string
}

func (f *fixture) browser() *browser { return &browser{f: f, cookies: map[string]string{}} }

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// do sends a request as the browser and returns the answer, keeping its
// cookies and the CSRF token of its page.
func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	b.f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	rec := httptest.NewRecorder()
	b.f.h.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	if m := csrfField.FindStringSubmatch(rec.Body.String()); m != nil {
		b.csrf = m[1]
	}
	return rec
}

// signIn signs the browser in with token and checks it landed on /ui/.
func (b *browser) signIn(token string) {
	b.f.t.Helper()
	b.do("GET", "/ui/login", nil)
	rec := b.do("POST", "/ui/login", url.Values{"csrf": {b.csrf}, "token": {token}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ui/" {
		b.f.t.Fatalf("sign in: %d %s", rec.Code, rec.Body)
	}
}

// api sends a request to the API as the admin and decodes the answer.
func (f *fixture) api(method, path, body string, out any) {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	if rec.Code >= 300 {
		f.t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	if out != nil {
		json.Unmarshal(rec.Body.Bytes(), out)
	}
}

func (f *fixture) releases() int {
	var rels []json.RawMessage
	f.api("GET", "/apps/shop-default/releases", "", &rels)
	return len(rels)
}

func TestUI_Routing(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, method, path, accept string
		wantStatus                 int
		wantLocation, wantBody     string
	}{
		{"a browser at / goes to the dashboard", "GET", "/", "text/html,application/xhtml+xml,*/*;q=0.8", 302, "/ui/", ""},
		{"an API client at / gets the API's JSON", "GET", "/", "application/json", 404, "", `"id":"not_found"`},
		{"no Accept at / gets the API's JSON", "GET", "/", "", 404, "", `"id":"not_found"`},
		{"a browser elsewhere gets the API", "GET", "/apps", "text/html", 401, "", `"id":"unauthorized"`},
		{"the dashboard without a session asks to sign in", "GET", "/ui/", "text/html", 303, "/ui/login", ""},
		{"/ui without a slash too", "GET", "/ui", "text/html", 303, "/ui/login", ""},
		{"a page without a session", "GET", "/ui/apps/shop-default", "text/html", 303, "/ui/login", ""},
		{"the live stream without a session", "GET", "/ui/apps/shop-default/events", "text/event-stream", 401, "", "sign in again"},
		{"an action without a session", "POST", "/ui/apps/shop-default/do/rollback", "text/html", 401, "", "sign in again"},
		{"the sign-in page", "GET", "/ui/login", "text/html", 200, "", `<label for="token">API token</label>`},
		{"the stylesheet", "GET", "/ui/static/style.css", "text/css", 200, "", "box-sizing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			rec := httptest.NewRecorder()
			f.h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus || rec.Header().Get("Location") != tc.wantLocation || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("%s %s = %d, Location %q, body %.200q; want %d, %q, %q", tc.method, tc.path, rec.Code, rec.Header().Get("Location"), rec.Body, tc.wantStatus, tc.wantLocation, tc.wantBody)
			}
		})
	}
}

func TestUI_SignIn_SessionCookieHoldsNoToken(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.do("GET", "/ui/login", nil)

	t.Run("a form without the sign-in cookie's value is refused", func(t *testing.T) {
		rec := b.do("POST", "/ui/login", url.Values{"csrf": {"0123"}, "token": {adminToken}})
		if rec.Code != http.StatusForbidden || b.cookies["slipway_session"] != "" {
			t.Errorf("= %d, session %q", rec.Code, b.cookies["slipway_session"])
		}
	})
	t.Run("a wrong token gets the API's message", func(t *testing.T) {
		rec := b.do("POST", "/ui/login", url.Values{"csrf": {b.csrf}, "token": {"wrong"}})
		if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "The token is not valid") {
			t.Errorf("= %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("the admin token", func(t *testing.T) {
		b.do("GET", "/ui/login", nil)
		rec := b.do("POST", "/ui/login", url.Values{"csrf": {b.csrf}, "token": {adminToken}})
		var session *http.Cookie
		for _, c := range rec.Result().Cookies() {
			if c.Name == "slipway_session" {
				session = c
			}
		}
		if rec.Code != http.StatusSeeOther || session == nil {
			t.Fatalf("= %d, cookies %v", rec.Code, rec.Result().Cookies())
		}
		if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/ui/" || strings.Contains(session.Value, adminToken) {
			t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, Path /ui/, not the token", session)
		}
		for _, p := range []string{"/ui/", "/ui/apps/shop-default", "/ui/apps/shop-default/releases/v1", "/ui/pipelines", "/ui/apps/shop-default/confirm/rollback?release=v1"} {
			rec := b.do("GET", p, nil)
			if rec.Code != 200 {
				t.Errorf("GET %s = %d %s", p, rec.Code, rec.Body)
			}
			if body := rec.Body.String(); strings.Contains(body, adminToken) || strings.Contains(body, "hunter2") {
				t.Errorf("GET %s shows the token or a config value", p)
			}
		}
		if body := b.do("GET", "/ui/apps/shop-default", nil).Body.String(); !strings.Contains(body, "DATABASE_URL") {
			t.Error("the app's page does not name its config var")
		}
	})
	t.Run("the session ends with its TTL", func(t *testing.T) {
		f.now = f.now.Add(2 * time.Hour)
		defer func() { f.now = f.now.Add(-2 * time.Hour) }()
		if rec := b.do("GET", "/ui/", nil); rec.Code != http.StatusSeeOther {
			t.Errorf("after the TTL: %d", rec.Code)
		}
	})
}

func TestUI_Actions_NeedTheFormsCSRFToken(t *testing.T) {
	f := newFixture(t)
	// A second release, so that v1 can be rolled back to.
	rel, err := f.db.CreateRelease(context.Background(), slipway.NewRelease{AppID: f.appID, SlugID: f.slug, Trigger: slipway.TriggerDeploy})
	if err != nil {
		t.Fatal(err)
	}
	f.db.SetReleaseStatus(context.Background(), rel.ID, slipway.ReleasePending, "")
	f.db.SetReleaseStatus(context.Background(), rel.ID, slipway.ReleaseSucceeded, "")
	b := f.browser()
	b.signIn(adminToken)
	page := b.do("GET", "/ui/apps/shop-default/confirm/rollback?release=v1", nil)
	if page.Code != 200 || f.releases() != 2 {
		t.Fatalf("the confirmation page: %d, %d releases (it must not act)", page.Code, f.releases())
	}
	for _, csrf := range []string{"", "0000", strings.Repeat("a", 64)} {
		rec := b.do("POST", "/ui/apps/shop-default/do/rollback", url.Values{"csrf": {csrf}, "release": {"v1"}})
		if rec.Code != http.StatusForbidden || f.releases() != 2 {
			t.Errorf("csrf %q: %d, %d releases; want 403 and nothing written", csrf, rec.Code, f.releases())
		}
	}
	b.do("GET", "/ui/apps/shop-default/confirm/rollback?release=v1", nil)
	rec := b.do("POST", "/ui/apps/shop-default/do/rollback", url.Values{"csrf": {b.csrf}, "release": {"v1"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ui/apps/shop-default" || f.releases() != 3 {
		t.Fatalf("the confirmed rollback: %d %s, %d releases", rec.Code, rec.Header().Get("Location"), f.releases())
	}
	if body := b.do("GET", "/ui/apps/shop-default", nil).Body.String(); !strings.Contains(body, "Rolling back to v1: release v3 is queued.") {
		t.Errorf("the app's page after the rollback does not say so")
	}
	t.Run("a refusal shows the API's message", func(t *testing.T) {
		rec := b.do("POST", "/ui/apps/shop-default/do/rollback", url.Values{"csrf": {b.csrf}, "release": {"v9"}})
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "v9") || f.releases() != 3 {
			t.Errorf("rollback to v9: %d %s", rec.Code, rec.Body)
		}
		rec = b.do("POST", "/ui/apps/shop-default/do/scale", url.Values{"csrf": {b.csrf}, "type": {"web"}, "quantity": {"2"}})
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `formation; create it with POST /apps/shop-default/formation.`) {
			t.Errorf("scale a type the app does not have: %d %s", rec.Code, rec.Body)
		}
	})
}

func TestUI_ScopedToken_SeesItsOrganizationOnly(t *testing.T) {
	f := newFixture(t)
	f.api("POST", "/organizations", `{"name":"acme"}`, nil)
	var tok struct{ Token string }
	f.api("POST", "/tokens", `{"org":"acme"}`, &tok)
	f.api("POST", "/apps", `{"name":"tenant","org":"acme"}`, nil)
	b := f.browser()
	b.signIn(tok.Token)
	body := b.do("GET", "/ui/", nil).Body.String()
	if !strings.Contains(body, "tenant-default") || strings.Contains(body, "shop-default") || !strings.Contains(body, "organization acme") {
		t.Errorf("a scoped token's apps page:\n%s", body)
	}
	for _, p := range []string{"/ui/apps/shop-default", "/ui/apps/shop-default/releases/v1"} {
		if rec := b.do("GET", p, nil); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "was not found") {
			t.Errorf("GET %s = %d, want the API's 404", p, rec.Code)
		}
	}
	b.do("GET", "/ui/apps/shop-default/confirm/rollback?release=v1", nil)
	if rec := b.do("POST", "/ui/apps/shop-default/do/rollback", url.Values{"csrf": {b.csrf}, "release": {"v1"}}); rec.Code != http.StatusNotFound || f.releases() != 1 {
		t.Errorf("a scoped token's rollback of another organization's app: %d, %d releases", rec.Code, f.releases())
	}
	if rec := b.do("GET", "/ui/pipelines", nil); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "admin token") {
		t.Errorf("pipelines with a scoped token: %d, want the API's 403", rec.Code)
	}
}

func TestUI_Events_StreamTheRollout(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn(adminToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := httptest.NewRequest("GET", "/ui/apps/shop-default/events?release=v1", nil).WithContext(ctx)
	req.AddCookie(&http.Cookie{Name: "slipway_session", Value: b.cookies["slipway_session"]})
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req) // v1 has ended: one rollout event, then end
	body := rec.Body.String()
	if rec.Header().Get("Content-Type") != "text/event-stream" || !strings.Contains(body, "event: rollout\ndata: ") ||
		!strings.Contains(body, `data-status="succeeded"`) || !strings.HasSuffix(body, "event: end\ndata: succeeded\n\n") {
		t.Errorf("events of an ended release:\n%s", body)
	}
}

// BenchmarkPages measures each page's server time (the dashboard and the
// API calls it makes in process) for an app with 1,000 releases.
func BenchmarkPages(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	for i := 0; i < 999; i++ {
		r, err := f.db.CreateRelease(ctx, slipway.NewRelease{AppID: f.appID, SlugID: f.slug, Trigger: slipway.TriggerDeploy})
		if err != nil {
			b.Fatal(err)
		}
		f.db.SetReleaseStatus(ctx, r.ID, slipway.ReleasePending, "")
		f.db.SetReleaseStatus(ctx, r.ID, slipway.ReleaseSucceeded, "")
	}
	f.api("POST", "/pipelines", `{"name":"flow"}`, nil)
	f.api("POST", "/pipeline-couplings", `{"app":"shop-default","pipeline":"flow","stage":"development"}`, nil)
	br := f.browser()
	br.signIn(adminToken)
	// The first view of an app works out the change summaries it has not
	// seen (five in the page, the rest when the browser asks); every later
	// view reads them from memory.
	for _, p := range []string{"/ui/apps/shop-default", "/ui/apps/shop-default/changes"} {
		start := time.Now()
		if rec := br.do("GET", p, nil); rec.Code != 200 {
			b.Fatalf("GET %s = %d", p, rec.Code)
		}
		b.Logf("first GET %s: %.1f ms", p, float64(time.Since(start))/float64(time.Millisecond))
	}
	for _, p := range []string{"/ui/", "/ui/apps/shop-default", "/ui/apps/shop-default/changes", "/ui/apps/shop-default/releases/v1000", "/ui/pipelines"} {
		b.Run(strings.ReplaceAll(strings.TrimPrefix(p, "/ui/"), "/", "_")+"_", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if rec := br.do("GET", p, nil); rec.Code != 200 {
					b.Fatalf("GET %s = %d", p, rec.Code)
				}
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
			if p99 := lat[len(lat)*99/100]; p99 > 50*time.Millisecond && b.N >= 100 {
				b.Logf("GET %s: p99 %s, over the 50 ms target", p, p99)
			}
		})
	}
}

func TestUI_Pipelines_PromoteShowsTheRequiredChecks(t *testing.T) {
	f := newFixture(t)
	f.api("POST", "/apps", `{"name":"shopstage"}`, nil)
	var p struct{ ID string }
	f.api("POST", "/pipelines", `{"name":"flow"}`, &p)
	f.api("POST", "/pipeline-couplings", `{"app":"shop-default","pipeline":"flow","stage":"development","required_status_checks":{"contexts":["ci/tests"]}}`, nil)
	f.api("POST", "/pipeline-couplings", `{"app":"shopstage-default","pipeline":"flow","stage":"staging"}`, nil)
	b := f.browser()
	b.signIn(adminToken)
	page := b.do("GET", "/ui/pipelines", nil).Body.String()
	for _, want := range []string{"Promote to shopstage-default…", "ci/tests: missing", "cannot be promoted until its required status checks succeed: ci/tests is missing."} {
		if !strings.Contains(page, want) {
			t.Errorf("the pipelines page does not say %q:\n%s", want, page)
		}
	}
	b.do("GET", "/ui/pipelines/"+p.ID+"/confirm/promote?app="+f.appID, nil)
	rec := b.do("POST", "/ui/pipelines/"+p.ID+"/do/promote", url.Values{"csrf": {b.csrf}, "app": {f.appID}})
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "required status checks succeed: ci/tests") {
		t.Errorf("promote with a missing check: %d %s", rec.Code, rec.Body)
	}
	var rels []json.RawMessage
	f.api("GET", "/apps/shopstage-default/releases", "", &rels)
	if len(rels) != 0 {
		t.Errorf("a refused promotion released %d", len(rels))
	}
}

func TestUI_Timeline_EveryRowSaysWhatChanged(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const n = 12
	for i := 1; i <= n; i++ {
		f.api("PATCH", "/apps/shop-default/config-vars", fmt.Sprintf(`{"KEY_%d":"secret-value-%d"}`, i, i), nil)
		var rels []struct{ ID string }
		f.api("GET", "/apps/shop-default/releases", "", &rels)
		id := rels[len(rels)-1].ID
		f.db.SetReleaseStatus(ctx, id, slipway.ReleasePending, "")
		f.db.SetReleaseStatus(ctx, id, slipway.ReleaseSucceeded, "")
	}
	b := f.browser()
	b.signIn(adminToken)
	page := html.UnescapeString(b.do("GET", "/ui/apps/shop-default", nil).Body.String())
	// The newest rows carry their summary in the page, the others are left
	// for the browser to ask for.
	for i := n; i > n-5; i-- {
		if want := fmt.Sprintf("v%d against v%d: config +KEY_%d", i+1, i, i); !strings.Contains(page, want) {
			t.Errorf("the app page does not say %q:\n%s", want, page)
		}
	}
	if got := strings.Count(page, "data-diff-pending="); got != n+1-5 {
		t.Errorf("%d rows are left pending, want %d", got, n+1-5)
	}
	rec := b.do("GET", "/ui/apps/shop-default/changes", nil)
	var changes map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &changes); rec.Code != 200 || err != nil {
		t.Fatalf("changes: %d %s", rec.Code, rec.Body)
	}
	if len(changes) != n+1 {
		t.Errorf("changes has %d versions, want %d: %v", len(changes), n+1, changes)
	}
	for i := 1; i <= n; i++ {
		if want := fmt.Sprintf("v%d against v%d: config +KEY_%d", i+1, i, i); changes[strconv.Itoa(i+1)] != want {
			t.Errorf("changes[%d] = %q, want %q", i+1, changes[strconv.Itoa(i+1)], want)
		}
	}
	if strings.Contains(rec.Body.String(), "secret-value") || strings.Contains(page, "secret-value") {
		t.Error("a config value reached the dashboard")
	}
	// What was worked out once is in the next page.
	if page := html.UnescapeString(b.do("GET", "/ui/apps/shop-default", nil).Body.String()); strings.Contains(page, "data-diff-pending=") || !strings.Contains(page, "v2 against v1: config +KEY_1") {
		t.Errorf("the second view still leaves rows pending")
	}
	// Another organization's token gets the API's 404, not the summaries.
	var tok struct{ Token string }
	f.api("POST", "/organizations", `{"name":"other"}`, nil)
	f.api("POST", "/tokens", `{"org":"other"}`, &tok)
	o := f.browser()
	o.signIn(tok.Token)
	if rec := o.do("GET", "/ui/apps/shop-default/changes", nil); rec.Code != 404 || strings.Contains(rec.Body.String(), "KEY_") {
		t.Errorf("another organization's changes: %d %s", rec.Code, rec.Body)
	}
}
