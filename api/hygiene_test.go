package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
)

// doReader sends a request whose body arrives through r, e.g. one byte
// per Read.
func (f *fixture) doReader(method, path, auth string, r io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, r)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// errorMessage is the message of a JSON error answer; the test fails when
// the answer is not one.
func errorMessage(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.ID == "" || e.Message == "" {
		t.Fatalf("%d %.300q is not a JSON error", rec.Code, rec.Body)
	}
	if api.StatusCode(e.ID) != rec.Code {
		t.Fatalf("error id %s does not match status %d", e.ID, rec.Code)
	}
	return e.Message
}

// A JSON body that is not UTF-8 is refused, not stored with U+FFFD in place
// of what was sent; it does not matter how the bytes are split into reads.
func TestJSONBody_InvalidUTF8IsA400(t *testing.T) {
	f := newFixture(t)
	before := f.dump()
	tests := []struct{ name, body string }{
		{"latin-1 in a value", "{\"description\":\"caf\xe9\"}"},
		{"in a key", "{\"\xff\":\"x\"}"},
		{"overlong slash", "{\"description\":\"\xc0\xaf\"}"},
		{"surrogate half", "{\"description\":\"\xed\xa0\x80\"}"},
		{"cut-off rune at the end", "{\"description\":\"\xe2\x82"},
		{"cut-off rune inside", "{\"description\":\"\xe2\x82\"}"},
		{"after the value", "{\"description\":\"x\"}\n\xff"},
	}
	for _, tt := range tests {
		for _, split := range []string{"whole", "byte by byte"} {
			t.Run(tt.name+"/"+split, func(t *testing.T) {
				var body io.Reader = strings.NewReader(tt.body)
				if split != "whole" {
					body = iotest.OneByteReader(body)
				}
				rec := f.doReader("PATCH", "/apps/hello", admin, body)
				if rec.Code != 400 {
					t.Fatalf("%d %s, want 400", rec.Code, rec.Body)
				}
				if msg := errorMessage(t, rec); !strings.Contains(msg, "not valid UTF-8") {
					t.Errorf("message %q does not say the body is not UTF-8", msg)
				}
			})
		}
	}
	if after := f.dump(); after != before {
		t.Errorf("refused requests changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// UTF-8 of every length, split anywhere, is kept as sent.
	want := "café ✓ 𝄞 ü"
	for _, split := range []string{"whole", "byte by byte"} {
		var body io.Reader = strings.NewReader(`{"description":"` + want + `"}`)
		if split != "whole" {
			body = iotest.OneByteReader(body)
		}
		if rec := f.doReader("PATCH", "/apps/hello", admin, body); rec.Code != 200 {
			t.Fatalf("%s: %d %s", split, rec.Code, rec.Body)
		}
		var got struct{ Description string }
		json.Unmarshal(f.do("GET", "/apps/hello", admin, "").Body.Bytes(), &got)
		if got.Description != want {
			t.Errorf("%s: description %q, want %q", split, got.Description, want)
		}
	}
}

// Wrong JSON types get a message that says what was expected in words a
// person uses, and quotes at most a short prefix of what was sent.
func TestJSONBody_WrongTypeMessages(t *testing.T) {
	f := newFixture(t)
	long := "1" + strings.Repeat("0", 100000)
	tests := []struct {
		name, method, path, body, want string
	}{
		{"fraction for a whole number", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":1.5}]`, "Field quantity must be a whole number, not 1.5."},
		{"exponent for a whole number", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":1e999}]`, "Field quantity must be a whole number, not 1e999."},
		{"string for a whole number", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":"3"}]`, "Field quantity must be a whole number, not a string."},
		{"whole number out of range", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":99999999999999999999}]`, "Field quantity is out of range: 99999999999999999999."},
		{"long number", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":` + long + `}]`, "Field quantity is out of range: " + long[:64] + "…."},
		{"number for a string", "POST", "/apps", `{"name":5}`, "Field name must be a string, not a number."},
		{"string for a bool", "PATCH", "/apps/hello", `{"maintenance":"yes"}`, "Field maintenance must be true or false, not a string."},
		{"array for an object", "POST", "/apps", `[1]`, "The body must be an object, not an array."},
		{"object for a config var", "PATCH", "/apps/hello/config-vars", `{"A":{}}`, "Config var \"A\" must be a string or null."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.method, tt.path, admin, tt.body)
			if rec.Code != 400 {
				t.Fatalf("%d %.300s, want 400", rec.Code, rec.Body)
			}
			if msg := errorMessage(t, rec); msg != tt.want {
				t.Errorf("message %q, want %q", msg, tt.want)
			}
		})
	}
}

// TestErrors_QuoteAtMostAShortPrefixOfInput sends a long value in every
// path parameter of every route, in query strings and headers, and in the
// fields of every kind of body: each is refused with a 4xx whose message
// quotes at most slipway.MaxEcho characters of it. (Build URLs are
// checked when the build runs; the slug package's tests cover those.)
func TestErrors_QuoteAtMostAShortPrefixOfInput(t *testing.T) {
	f := newFixture(t)
	if rec := f.do("POST", "/pipelines", admin, `{"name":"pl"}`); rec.Code != 201 {
		t.Fatal(rec.Body)
	}
	const n = 100 << 10
	long := strings.Repeat("x", n)
	echo := strings.Repeat("x", slipway.MaxEcho+1)
	check := func(t *testing.T, what string, rec *httptest.ResponseRecorder) {
		t.Helper()
		if rec.Code < 400 || rec.Code >= 500 {
			t.Errorf("%s: %d %.200s, want a 4xx", what, rec.Code, rec.Body)
			return
		}
		if msg := errorMessage(t, rec); strings.Contains(msg, echo) || len(msg) > 1024 {
			t.Errorf("%s: %d, a message of %d bytes echoes the input: %.200s…", what, rec.Code, len(msg), msg)
		}
	}
	valid := map[string]string{
		"app": "hello", "release": "v1", "status": f.status.ID, "build": f.slug, "slug": f.slug, "type": "web",
		"feature": "auto-release", "org": "default", "space": "default", "pipeline": "pl",
	}
	for _, rt := range f.srv.Routes() {
		method, pattern, _ := strings.Cut(rt, " ")
		params := param.FindAllString(pattern, -1)
		for _, p := range params {
			path := param.ReplaceAllStringFunc(pattern, func(q string) string {
				if q == p {
					return long
				}
				if v, ok := valid[strings.Trim(q, "{}")]; ok {
					return v
				}
				return f.other.ID
			})
			check(t, method+" "+strings.Replace(pattern, p, "<long>", 1), f.do(method, path, admin, "{}"))
		}
	}
	check(t, "unknown path", f.do("GET", "/"+long, admin, ""))
	check(t, "unknown method", f.do(strings.Repeat("X", 10<<10), "/apps", admin, ""))
	f.do("POST", "/organizations", admin, `{"name":"acme"}`)
	var tok struct{ Token string }
	json.Unmarshal(f.do("POST", "/tokens", admin, `{"org":"acme"}`).Body.Bytes(), &tok)
	check(t, "audits of an unknown app", f.do("GET", "/audits?app="+long, "Bearer "+tok.Token, ""))
	for _, path := range []string{"/apps/hello/releases", "/apps/hello/builds", "/apps/hello/hooks/" + f.other.ID + "/results"} {
		for _, rng := range []string{"version " + long, "version ..; " + long + "=1", "created_at " + long + ".."} {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", admin)
			req.Header.Set("Range", rng)
			rec := httptest.NewRecorder()
			f.srv.ServeHTTP(rec, req)
			check(t, "Range "+rng[:20]+"… of "+path, rec)
		}
	}

	bodies := []struct{ method, path, body string }{
		{"POST", "/apps", `{"name":"LONG"}`},
		{"POST", "/apps", `{"name":"abc","space":"LONG"}`},
		{"POST", "/apps", `{"name":"abc","org":"LONG"}`},
		{"POST", "/organizations", `{"name":"LONG"}`},
		{"POST", "/spaces", `{"name":"LONG"}`},
		{"PATCH", "/apps/hello/config-vars", `{"LONG":"x"}`},
		{"PATCH", "/apps/hello/config-vars", `{"SLIPWAY_LONG":"x"}`},
		{"PATCH", "/apps/hello/config-vars", `{"LONG":1}`},
		{"PATCH", "/apps/hello", `{"LONG":1,"maintenance":"x"}`},
		{"POST", "/apps/hello/releases", `{"slug":"LONG"}`},
		{"POST", "/apps/hello/releases", `{"release":"LONG"}`},
		{"POST", "/apps/hello/releases/v1/statuses", `{"state":"LONG","name":"tests","context":"ci/other"}`},
		{"POST", "/apps/hello/releases/v1/statuses", `{"state":"success","name":"tests","context":"LONG"}`},
		{"POST", "/apps/hello/releases/v1/statuses", `{"state":"success","name":"tests","context":"ci/other","target_url":"http://LONG"}`},
		{"PATCH", "/apps/hello/releases/v1/statuses/" + f.status.ID, `{"context":"LONG"}`},
		{"POST", "/apps/hello/formation", `{"type":"LONG","quantity":1}`},
		{"PATCH", "/apps/hello/formation", `[{"type":"LONG","quantity":1}]`},
		{"PATCH", "/apps/hello/formation", `[{"type":"LONG"}]`},
		{"PATCH", "/apps/hello/formation", `[{"type":"web","quantity":1,"healthcheck":"LONG"}]`},
		{"PATCH", "/apps/hello/formation/web", `{"type":"LONG"}`},
		{"POST", "/apps/hello/builds", `{"url":"LONG"}`},
		{"POST", "/apps/hello/hooks", `{"url":"LONG","events":["release"]}`},
		{"POST", "/apps/hello/hooks", `{"url":"http://example.com/","events":["LONG"]}`},
		{"PATCH", "/apps/hello/features/auto-release", `{"enabled":"LONG"}`},
		{"POST", "/pipelines", `{"name":"LONG"}`},
		{"POST", "/pipeline-couplings", `{"app":"LONG","pipeline":"pl","stage":"review"}`},
		{"POST", "/pipeline-couplings", `{"app":"hello","pipeline":"LONG","stage":"review"}`},
		{"POST", "/pipeline-couplings", `{"app":"hello","pipeline":"pl","stage":"LONG"}`},
		{"POST", "/pipeline-couplings", `{"app":"hello","pipeline":"pl","stage":"development","required_status_checks":{"contexts":["LONG"]}}`},
		{"POST", "/pipeline-promotions", `{"pipeline":{"id":"LONG"},"source":{"app":{"id":"hello"}}}`},
		{"POST", "/pipeline-promotions", `{"pipeline":{"id":"pl"},"source":{"app":{"id":"LONG"}}}`},
		{"POST", "/pipeline-promotions", `{"pipeline":{"id":"pl"},"source":{"app":{"id":"hello"},"release":{"id":"LONG"}}}`},
		{"POST", "/tokens", `{"org":"LONG"}`},
	}
	for _, b := range bodies {
		body := strings.ReplaceAll(b.body, "LONG", long)
		check(t, b.method+" "+b.path+" "+b.body, f.do(b.method, b.path, admin, body))
	}
}

// dynoRuntime reports one running dyno per app, so the dyno gauge has
// something to count.
type dynoRuntime struct{ stubRuntime }

func (dynoRuntime) Dynos(_ context.Context, appID string) ([]slipway.Dyno, error) {
	return []slipway.Dyno{{ID: appID + "-web-1", Name: "1", Type: "web", State: slipway.DynoRunning}}, nil
}

// /metrics names no app, organization or release, whatever requests the
// server saw and whatever its engine reported.
func TestMetrics_NameNoAppOrgOrRelease(t *testing.T) {
	f := newFixture(t)
	f.srv = api.New(api.Config{Store: f.db, Engine: nopEngine{}, Runtime: dynoRuntime{}, Token: "admin-token"})
	f.srv.RegisterGauges()
	for _, req := range []struct{ method, path, body string }{
		{"POST", "/organizations", `{"name":"tenantorg"}`},
		{"POST", "/apps", `{"name":"tenantapp","org":"tenantorg"}`},
		{"PATCH", "/apps/tenantapp/config-vars", `{"SECRET_KEY":"tenantvalue"}`},
		{"GET", "/apps/tenantapp-default/releases", ``},
		{"GET", "/apps/tenantapp/releases/" + f.rel.ID, ``},
		{"GET", "/apps/tenantapp/nothing-here", ``},
		{"GET", "/tenantapp", ``},
		{"TENANTAPP", "/apps/tenantapp", ``},
	} {
		f.do(req.method, req.path, admin, req.body)
	}
	rel, build := f.rel, &slipway.Build{ID: f.slug, AppID: f.app.ID}
	f.srv.Metrics().ReleaseFinished(rel, slipway.ReleaseSucceeded, 0)
	f.srv.Metrics().BuildFinished(build, slipway.BuildSucceeded)

	rec := f.do("GET", "/metrics", "", "")
	if rec.Code != 200 {
		t.Fatalf("/metrics without a token = %d, want 200", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{`slipway_http_requests_total{code="201",method="POST",route="/apps"} 1`, `method="other"`, `slipway_dynos{state="running"} 3`, `slipway_release_duration_seconds_count{status="succeeded"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	for _, secret := range []string{"tenantapp", "TENANTAPP", "tenantorg", "tenantvalue", "SECRET_KEY", "hello", f.app.ID, f.other.ID, f.rel.ID, f.slug, f.app.OrgID} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics names %q:\n%s", secret, body)
		}
	}
}

// With a metrics token, /metrics answers 401 without it (the admin token
// is not it) and 200 with it.
func TestMetrics_Token(t *testing.T) {
	f := newFixture(t)
	f.srv = api.New(api.Config{Store: f.db, Engine: nopEngine{}, Runtime: stubRuntime{}, Token: "admin-token", MetricsToken: "metrics-token"})
	tests := []struct {
		auth string
		want int
	}{
		{"", 401},
		{"Bearer wrong", 401},
		{"Bearer metrics-token-but-longer", 401},
		{admin, 401},
		{"Bearer metrics-token", 200},
		{"bearer  metrics-token ", 200},
		{"metrics-token", 200},
	}
	for _, tt := range tests {
		rec := f.do("GET", "/metrics", tt.auth, "")
		if rec.Code != tt.want {
			t.Errorf("Authorization %q: %d, want %d", tt.auth, rec.Code, tt.want)
			continue
		}
		if tt.want == 401 {
			if msg := errorMessage(t, rec); !strings.Contains(msg, "--metrics-token") {
				t.Errorf("401 message %q does not say what to send", msg)
			}
		} else if !strings.Contains(rec.Body.String(), "slipway_http_requests_total") {
			t.Errorf("200 without metrics: %.300s", rec.Body)
		}
	}
	// The rest of the API still takes the admin token only.
	if rec := f.do("GET", "/apps", "Bearer metrics-token", ""); rec.Code != 401 {
		t.Errorf("GET /apps with the metrics token = %d, want 401", rec.Code)
	}
}

// A release's slug token fetches that release's slug and nothing else:
// not another app's slug, not another slug of its own app, not with
// another release named, and it is no API token.
func TestSlugBlob_TokenFetchesOnlyItsReleasesSlug(t *testing.T) {
	f := newFixture(t)
	key := []byte("blob-key")
	ctx := context.Background()
	slug := func(appID string) string {
		b := &slipway.Build{AppID: appID}
		f.db.CreateBuild(ctx, b)
		f.db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{Dir: t.TempDir(), ProcessTypes: map[string]string{"web": "x"}}})
		return b.ID
	}
	releaseOf := func(appID, slugID string) string {
		r, err := f.db.CreateRelease(ctx, slipway.NewRelease{AppID: appID, SlugID: slugID, Trigger: slipway.TriggerDeploy})
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	x1, x2, y1 := slug(f.app.ID), slug(f.app.ID), slug(f.other.ID)
	relX, relY := releaseOf(f.app.ID, x1), releaseOf(f.other.ID, y1)
	f.srv = api.New(api.Config{Store: f.db, Engine: nopEngine{}, Runtime: stubRuntime{}, Token: "admin-token", BlobKey: key,
		SlugBlob: func(w io.Writer, s *slipway.Slug) error { _, err := io.WriteString(w, "tar.gz of "+s.ID); return err }})
	tokX, tokY := "Bearer "+api.SlugToken(key, x1, relX), "Bearer "+api.SlugToken(key, y1, relY)
	blob := func(slug, rel string) string { return "/slugs/" + slug + "/blob?release=" + rel }
	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"its own slug", blob(x1, relX), tokX, 200},
		{"the other app's with its own", blob(y1, relY), tokY, 200},
		{"another app's slug, naming its own release", blob(y1, relX), tokX, 401},
		{"another app's slug, naming that app's release", blob(y1, relY), tokX, 401},
		{"another slug of its own app", blob(x2, relX), tokX, 401},
		{"its slug, naming another release", blob(x1, relY), tokX, 401},
		{"its slug, naming no release", "/slugs/" + x1 + "/blob", tokX, 401},
		{"its slug, with another app's token", blob(x1, relX), tokY, 401},
		{"as an API token", "/apps/hello", tokX, 401},
		{"as an API token on the slug", "/slugs/" + x1, tokX, 401},
	}
	for _, tt := range tests {
		rec := f.do("GET", tt.path, tt.auth, "")
		if rec.Code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, rec.Code, rec.Body, tt.want)
			continue
		}
		if tt.want == 200 && rec.Body.String() != "tar.gz of "+strings.Split(tt.path, "/")[2] {
			t.Errorf("%s: got %q", tt.name, rec.Body)
		}
		if tt.want != 200 && strings.Contains(rec.Body.String(), "tar.gz of") {
			t.Errorf("%s: a refusal carried a slug: %q", tt.name, rec.Body)
		}
	}
}
