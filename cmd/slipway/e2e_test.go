package main

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/internal/pgtest"
	"github.com/slipway/slipway/internal/testslug"
)

// testServer is a real Slipway on loopback ports with a temporary data dir.
type testServer struct {
	*server
	c       *client.Client
	dataDir string
	cfg     serveConfig
}

func testConfig(t *testing.T) serveConfig {
	return serveConfig{
		Listen: "127.0.0.1:0", RouterListen: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), "data"),
		BaseDomain: "localhost", ReleaseDeadline: time.Minute, HealthyDeadline: 10 * time.Second,
		DrainTimeout: 5 * time.Second, StopGrace: 2 * time.Second, MinUptime: 500 * time.Millisecond, Surge: 1, MaxSlugSize: 64 << 20,
		HookRetryBase: 50 * time.Millisecond, LogLevel: "warn", Token: "test-token",
	}
}

func startTestServer(t *testing.T, cfg serveConfig) *testServer {
	t.Helper()
	srv, err := startServer(context.Background(), cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{server: srv, c: client.New(srv.APIURL, srv.Token), dataDir: cfg.DataDir, cfg: cfg}
	// Every JSON answer the tests get is held against docs/openapi.yaml.
	ts.c.HTTP.Transport = newSpecCheck(t, nil)
	t.Cleanup(func() { ts.stop(t) })
	return ts
}

func (ts *testServer) stop(t *testing.T) {
	if ts.server == nil {
		return
	}
	if err := ts.server.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	ts.server = nil
}

// testWriter sends the server's output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var bg = context.Background()

// push builds a slug of the test app with the given Procfile and waits
// until the build succeeds.
func (ts *testServer) push(t *testing.T, app, procfile string) string {
	t.Helper()
	b, err := ts.c.CreateBuild(bg, app, client.NewBuild{URL: testslug.DataURI(testslug.TestAppSlug(t, procfile))})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ts.c.WaitBuild(bg, app, b.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != slipway.BuildSucceeded {
		res, _ := ts.c.BuildResult(bg, app, b.ID)
		t.Fatalf("build %s: %v", got.Status, res.Lines)
	}
	return b.ID
}

func (ts *testServer) release(t *testing.T, app string, r client.NewRelease) *client.Release {
	t.Helper()
	rel, err := ts.c.CreateRelease(bg, app, r)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Status != slipway.ReleaseQueued {
		t.Fatalf("new release status = %s, want queued", rel.Status)
	}
	done, err := ts.c.WaitRelease(bg, app, rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	return done
}

// get asks the router for path on the app's host.
func (ts *testServer) get(t *testing.T, key, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.RouterURL+path, nil)
	req.Host = key + ".localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// raw sends a request and returns the status and body as they are.
func (ts *testServer) raw(t *testing.T, method, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.APIURL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := (&http.Client{Transport: ts.c.HTTP.Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func versions(t *testing.T, ts *testServer, app string) string {
	rels, err := ts.c.Releases(bg, app)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, r := range rels {
		v := fmt.Sprintf("v%d:%s", r.Version, r.Status)
		if r.Current {
			v += "*"
		}
		s = append(s, v)
	}
	return strings.Join(s, " ")
}

func TestE2E_ReleaseLifecycle(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	if _, err := ts.c.CreateApp(bg, "hello", "", ""); err != nil {
		t.Fatal(err)
	}
	// v1 and v2 are slugs told apart by an env var set in the Procfile.
	one := ts.push(t, "hello", "web: TAG=one ./testapp\n")
	two := ts.push(t, "hello", "web: TAG=two ./testapp\n")
	res, _ := ts.c.BuildResult(bg, "hello", one)
	if len(res.Lines) < 2 || res.Build.Status != "succeeded" {
		t.Fatalf("build result = %+v", res)
	}

	v1 := ts.release(t, "hello-default", client.NewRelease{Slug: one, Description: "new release v1.0"})
	if v1.Status != "succeeded" || !v1.Current || v1.Version != 1 || v1.State != "success" || v1.Description != "new release v1.0" {
		t.Fatalf("v1 = %+v", v1)
	}
	if code, body := ts.get(t, "hello-default", "/env/TAG"); code != 200 || body != "one" {
		t.Fatalf("router after v1: %d %q", code, body)
	}
	v2 := ts.release(t, "hello-default", client.NewRelease{Slug: two})
	if v2.Status != "succeeded" || v2.Description != "Deploy "+two || v2.Trigger != "deploy" {
		t.Fatalf("v2 = %+v", v2)
	}
	if _, body := ts.get(t, "hello-default", "/"); !strings.HasPrefix(body, "version=2 ") {
		t.Fatalf("router after v2: %q", body)
	}

	// A release whose web process crashes fails and changes nothing.
	bad := ts.push(t, "hello", "web: ./testapp --crash\n")
	v3 := ts.release(t, "hello", client.NewRelease{Slug: bad})
	if v3.Status != "failed" || v3.Current {
		t.Fatalf("v3 = %+v", v3)
	}
	if _, body := ts.get(t, "hello-default", "/env/TAG"); body != "two" {
		t.Fatalf("router after failed v3: %q", body)
	}
	log, _ := ts.c.ReleaseLog(bg, "hello", v3.ID)
	if !strings.Contains(strings.Join(log.Lines, "\n"), "release_failed") {
		t.Fatalf("v3 log: %q", log.Lines)
	}

	// Rollback to v1: a new version with v1's slug.
	v4 := ts.release(t, "hello", client.NewRelease{Release: v1.ID})
	if v4.Status != "succeeded" || v4.Version != 4 || v4.Trigger != "rollback" || v4.Description != "Rollback to v1" || v4.Slug.ID != one {
		t.Fatalf("v4 = %+v", v4)
	}
	if _, body := ts.get(t, "hello-default", "/env/TAG"); body != "one" {
		t.Fatalf("router after rollback: %q", body)
	}
	if got := versions(t, ts, "hello"); got != "v1:succeeded v2:succeeded v3:failed v4:succeeded*" {
		t.Fatalf("releases = %s", got)
	}
	byVersion, err := ts.c.Release(bg, "hello", "v2")
	if err != nil || byVersion.ID != v2.ID {
		t.Fatalf("GET v2 = %+v, %v", byVersion, err)
	}
	app, _ := ts.c.App(bg, "hello")
	if app.Image == nil || *app.Image != one || app.ReleasedAt == nil {
		t.Fatalf("app = %+v", app)
	}
	dynos, _ := ts.c.Dynos(bg, "hello")
	if len(dynos) != 1 || dynos[0].Name != "1" || dynos[0].Type != "web" || !dynos[0].Ready || dynos[0].Release.Version != 4 {
		t.Fatalf("dynos = %+v", dynos)
	}
}

func TestE2E_ReleaseErrors(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "errs", "", "")
	ts.c.CreateApp(bg, "other", "", "")
	slug := ts.push(t, "errs", "web: ./testapp\n")
	rel := ts.release(t, "errs", client.NewRelease{Slug: slug})
	otherSlug := ts.push(t, "other", "web: ./testapp\n")
	// A build that stays pending: its archive server never answers.
	hang := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(hang)
	pending, err := ts.c.CreateBuild(bg, "errs", client.NewBuild{URL: hung.URL + "/slug.tgz"})
	if err != nil {
		t.Fatal(err)
	}
	tok := "Bearer test-token"
	tests := []struct {
		name, method, path, token, body string
		want                            int
		wantID                          string
	}{
		{"both slug and release", "POST", "/apps/errs/releases", tok, fmt.Sprintf(`{"slug":%q,"release":%q}`, slug, rel.ID), 422, "unprocessable_entity"},
		{"neither", "POST", "/apps/errs/releases", tok, `{"description":"x"}`, 422, "unprocessable_entity"},
		{"unknown slug", "POST", "/apps/errs/releases", tok, `{"slug":"c5b5896f-7896-4a11-80f0-dbb0e6c00ac5"}`, 409, "conflict"},
		{"slug of another app", "POST", "/apps/errs/releases", tok, fmt.Sprintf(`{"slug":%q}`, otherSlug), 409, "conflict"},
		{"slug still building", "POST", "/apps/errs/releases", tok, fmt.Sprintf(`{"slug":%q}`, pending.ID), 409, "conflict"},
		{"slug not a uuid", "POST", "/apps/errs/releases", tok, `{"slug":"abc"}`, 422, "unprocessable_entity"},
		{"unknown rollback target", "POST", "/apps/errs/releases", tok, `{"release":"c5b5896f-7896-4a11-80f0-dbb0e6c00ac5"}`, 404, "not_found"},
		{"unknown app", "POST", "/apps/nope-default/releases", tok, fmt.Sprintf(`{"slug":%q}`, slug), 404, "not_found"},
		{"bad json", "POST", "/apps/errs/releases", tok, `{"slug":`, 400, "bad_request"},
		{"wrong type", "POST", "/apps/errs/releases", tok, `{"slug":42}`, 400, "bad_request"},
		{"empty body", "POST", "/apps/errs/releases", tok, ``, 400, "bad_request"},
		{"no token", "POST", "/apps/errs/releases", "", fmt.Sprintf(`{"slug":%q}`, slug), 401, "unauthorized"},
		{"wrong token", "GET", "/apps/errs/releases", "Bearer nope", "", 401, "unauthorized"},
		{"bare token works", "GET", "/apps/errs/releases/" + rel.ID, "test-token", "", 200, ""},
		{"unknown release", "GET", "/apps/errs/releases/c5b5896f-7896-4a11-80f0-dbb0e6c00ac5", tok, "", 404, "not_found"},
		{"release of another app", "GET", "/apps/other/releases/" + rel.ID, tok, "", 404, "not_found"},
		{"unknown version", "GET", "/apps/errs/releases/v99", tok, "", 404, "not_found"},
		{"bad range", "GET", "/apps/errs/releases", tok, "", 200, ""},
		{"wrong method", "PUT", "/apps/errs/releases", tok, "{}", 405, "method_not_allowed"},
		{"unknown path", "GET", "/nothing-here", tok, "", 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := ts.raw(t, tt.method, tt.path, tt.token, tt.body)
			if code != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, code, body, tt.want)
			}
			if tt.wantID != "" && !strings.Contains(body, `"id":"`+tt.wantID+`"`) {
				t.Fatalf("body %s lacks id %s", body, tt.wantID)
			}
		})
	}
	// None of the refused requests made a release.
	if got := versions(t, ts, "errs"); got != "v1:succeeded*" {
		t.Fatalf("releases after errors = %s", got)
	}
}

func TestE2E_ReleasePaging(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "pages", "", "")
	slug := ts.push(t, "pages", "web: ./testapp\n")
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := ts.c.CreateRelease(bg, "pages", client.NewRelease{Slug: slug}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	resp, err := ts.c.Send(bg, "GET", "/apps/pages/releases", nil, http.Header{"Range": {"version ..; order=desc, max=2"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || resp.Header.Get("Next-Range") != "version ]4..; order=desc, max=2" {
		t.Fatalf("page 1: %d Next-Range %q", resp.StatusCode, resp.Header.Get("Next-Range"))
	}
	if !strings.Contains(string(body), `"version":5`) || !strings.Contains(string(body), `"version":4`) {
		t.Fatalf("page 1 body: %s", body)
	}
	code, body2 := ts.raw(t, "GET", "/apps/pages/releases", "Bearer test-token", "")
	if code != 200 || strings.Index(body2, `"version":1`) > strings.Index(body2, `"version":5`) {
		t.Fatalf("whole list not oldest first: %s", body2)
	}
	_, err = ts.c.Send(bg, "GET", "/apps/pages/releases", nil, http.Header{"Range": {"id ..; max=abc"}})
	if slipway.ErrorCode(err) != slipway.EInvalid {
		t.Fatalf("bad range: %v", err)
	}
}

func TestE2E_ReleaseStatuses_CombineIntoState(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "checks", "", "")
	rel := ts.release(t, "checks", client.NewRelease{Slug: ts.push(t, "checks", "web: ./testapp\n")})
	path := "/apps/checks/releases/" + rel.ID + "/statuses"
	tok := "Bearer test-token"
	invalid := []struct{ name, body, field string }{
		{"bad state", `{"state":"great","name":"tests","context":"ci/tests"}`, "state"},
		{"short context", `{"state":"success","name":"tests","context":"ci"}`, "context"},
		{"context chars", `{"state":"success","name":"tests","context":"ci tests!"}`, "context"},
		{"long context", `{"state":"success","name":"tests","context":"` + strings.Repeat("a", 32) + `"}`, "context"},
		{"short name", `{"state":"success","name":"abc","context":"ci/tests"}`, "name"},
		{"bad url", `{"state":"success","name":"tests","context":"ci/tests","target_url":"ftp://x"}`, "target_url"},
		{"long description", `{"state":"success","name":"tests","context":"ci/tests","description":"` + strings.Repeat("d", 1024) + `"}`, "description"},
	}
	for _, tt := range invalid {
		code, body := ts.raw(t, "POST", path, tok, tt.body)
		if code != 422 || !strings.Contains(body, tt.field) {
			t.Errorf("%s: %d %s, want 422 naming %s", tt.name, code, body, tt.field)
		}
	}
	st, err := ts.c.CreateReleaseStatus(bg, "checks", rel.ID, client.ReleaseStatus{State: "pending", Name: "unit tests", Context: "ci/tests", TargetURL: "https://ci.example.com/1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.c.CreateReleaseStatus(bg, "checks", rel.ID, client.ReleaseStatus{State: "success", Name: "unit tests", Context: "ci/tests"}); slipway.ErrorCode(err) != slipway.EUnprocessable {
		t.Fatalf("duplicate context: %v", err)
	}
	state := func() string {
		r, _ := ts.c.Release(bg, "checks", rel.ID)
		l, _ := ts.c.ReleaseStatuses(bg, "checks", rel.ID)
		if l.State != r.State {
			t.Fatalf("list state %s != release state %s", l.State, r.State)
		}
		return r.State
	}
	if s := state(); s != "pending" {
		t.Fatalf("state = %s, want pending", s)
	}
	ts.c.CreateReleaseStatus(bg, "checks", rel.ID, client.ReleaseStatus{State: "failure", Name: "security scan", Context: "ci/security"})
	if s := state(); s != "failure" {
		t.Fatalf("state = %s, want failure", s)
	}
	if _, err := ts.c.UpdateReleaseStatus(bg, "checks", rel.ID, st.ID, client.ReleaseStatus{Context: "ci/other"}); slipway.ErrorCode(err) != slipway.EUnprocessable {
		t.Fatalf("changing context: %v", err)
	}
	up, err := ts.c.UpdateReleaseStatus(bg, "checks", rel.ID, st.ID, client.ReleaseStatus{State: "error"})
	if err != nil || up.State != "error" || up.Name != "unit tests" {
		t.Fatalf("update = %+v, %v", up, err)
	}
	if s := state(); s != "error" {
		t.Fatalf("state = %s, want error", s)
	}
	if code, _ := ts.raw(t, "GET", path+"/c5b5896f-7896-4a11-80f0-dbb0e6c00ac5", tok, ""); code != 404 {
		t.Fatalf("unknown status: %d", code)
	}
	l, _ := ts.c.ReleaseStatuses(bg, "checks", rel.ID)
	if len(l.Statuses) != 2 || l.Release.ID != rel.ID {
		t.Fatalf("statuses = %+v", l)
	}
}

func TestE2E_AutoRelease(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "auto", "", "")
	if err := ts.c.SetFeature(bg, "auto", "auto-release", true); err != nil {
		t.Fatal(err)
	}
	id := ts.push(t, "auto", "web: ./testapp\n")
	deadline := time.Now().Add(30 * time.Second)
	for {
		rels, _ := ts.c.Releases(bg, "auto")
		if len(rels) == 1 && slipway.ReleaseTerminal(rels[0].Status) {
			r := rels[0]
			if r.Status != "succeeded" || r.Trigger != "auto-release" || r.Description != "Auto-Deploy "+id[:8] || r.Slug.ID != id {
				t.Fatalf("auto release = %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no auto release: %+v", rels)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := ts.get(t, "auto-default", "/"); code != 200 || !strings.HasPrefix(body, "version=1") {
		t.Fatalf("router: %d %q", code, body)
	}
}

func TestE2E_Builds(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "builds", "", "")
	wait := func(b *client.Build) (*client.Build, []string) {
		t.Helper()
		got, err := ts.c.WaitBuild(bg, "builds", b.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, _ := ts.c.BuildResult(bg, "builds", b.ID)
		return got, res.Lines
	}
	archive := testslug.TestAppSlug(t, "web: ./testapp\n")
	sum := sha256.Sum256(archive)
	b, err := ts.c.CreateBuild(bg, "builds", client.NewBuild{URL: testslug.DataURI(archive), Checksum: "sha256:" + hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}
	if b.Status != "queued" || b.SourceBlob.URL != "data:" {
		t.Fatalf("new build = %+v", b)
	}
	if got, lines := wait(b); got.Status != "succeeded" || got.Slug == nil || got.Slug.ID != b.ID || lines[len(lines)-1] != "Finished: SUCCESS" {
		t.Fatalf("build = %+v, lines %q", got, lines)
	}
	tok := "Bearer test-token"
	// PUT rebuilds from the same source (an inline build: its archive, from
	// the slug) as a new build, pollable like any other; the old one stays.
	rebuild := func(old string) *client.Build {
		t.Helper()
		code, body := ts.raw(t, "PUT", "/apps/builds/builds/"+old, tok, "")
		var nb client.Build
		if err := json.Unmarshal([]byte(body), &nb); code != 201 || err != nil || nb.ID == old || nb.Status != "queued" || nb.Buildpacks != nil || nb.Release != nil {
			t.Fatalf("PUT builds/%s: %d %s", old, code, body)
		}
		return &nb
	}
	nb := rebuild(b.ID)
	if got, lines := wait(nb); got.Status != "succeeded" || got.SourceBlob.URL != "data:" || lines[len(lines)-1] != "Finished: SUCCESS" {
		t.Fatalf("rebuild = %+v, lines %q", got, lines)
	}
	var slugs [2]struct {
		ProcessTypes map[string]string `json:"process_types"`
	}
	for i, id := range []string{b.ID, nb.ID} {
		if err := ts.c.Do(bg, "GET", "/slugs/"+id, nil, &slugs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if slugs[1].ProcessTypes["web"] != "./testapp" || slugs[0].ProcessTypes["web"] != "./testapp" {
		t.Fatalf("slugs of the build and its rebuild: %+v", slugs)
	}
	// Wrong checksum, hostile archive: the build fails and says why.
	b, _ = ts.c.CreateBuild(bg, "builds", client.NewBuild{URL: testslug.DataURI(archive), Checksum: "sha256:" + strings.Repeat("0", 64)})
	if got, lines := wait(b); got.Status != "failed" || !strings.Contains(strings.ToLower(strings.Join(lines, " ")), "checksum") || lines[len(lines)-1] != "Finished: FAILURE" {
		t.Fatalf("checksum build = %s %q", got.Status, lines)
	}
	// A failed inline build kept no archive: nothing to rebuild from.
	if code, body := ts.raw(t, "PUT", "/apps/builds/builds/"+b.ID, tok, ""); code != 422 || !strings.Contains(body, "push the build again") {
		t.Fatalf("rebuild of a failed inline build: %d %s", code, body)
	}
	if code, body := ts.raw(t, "PUT", "/apps/builds/builds/"+uuid.NewString(), tok, ""); code != 404 {
		t.Fatalf("rebuild of an unknown build: %d %s", code, body)
	}
	evil := testslug.TarGz(t, map[string]testslug.File{"Procfile": {Body: []byte("web: x\n"), Mode: 0o644}, "../../evil": {Body: []byte("x"), Mode: 0o644}})
	b, _ = ts.c.CreateBuild(bg, "builds", client.NewBuild{URL: testslug.DataURI(evil)})
	if got, lines := wait(b); got.Status != "failed" || len(lines) == 0 {
		t.Fatalf("hostile build = %s %q", got.Status, lines)
	}
	// An archive served over http.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(archive) }))
	defer srv.Close()
	b, _ = ts.c.CreateBuild(bg, "builds", client.NewBuild{URL: srv.URL + "/app.tgz"})
	if got, _ := wait(b); got.Status != "succeeded" {
		t.Fatalf("http build = %s", got.Status)
	}
	if got, _ := wait(rebuild(b.ID)); got.Status != "succeeded" || got.SourceBlob.URL != srv.URL+"/app.tgz" {
		t.Fatalf("http rebuild = %+v", got)
	}
	// A docker image: nothing to fetch, the reference is recorded.
	b, _ = ts.c.CreateBuild(bg, "builds", client.NewBuild{URL: "docker://registry.example.com/team/app:1.2"})
	if got, _ := wait(b); got.Status != "succeeded" {
		t.Fatalf("docker build = %s", got.Status)
	}
	var slug struct {
		Image string `json:"image"`
	}
	if err := ts.c.Do(bg, "GET", "/slugs/"+b.ID, nil, &slug); err != nil || slug.Image != "registry.example.com/team/app:1.2" {
		t.Fatalf("slug = %+v, %v", slug, err)
	}
	// Refused up front.
	if code, _ := ts.raw(t, "POST", "/apps/builds/builds", tok, `{"url":"ftp://x/y.tgz"}`); code != 422 {
		t.Fatalf("ftp url: %d", code)
	}
	if code, _ := ts.raw(t, "POST", "/apps/builds/builds", tok, `{}`); code != 422 {
		t.Fatalf("no url: %d", code)
	}
	huge := `{"url":"data:application/gzip;base64,` + strings.Repeat("A", int(ts.cfg.MaxSlugSize/3*4)+128<<10) + `"}`
	if code, body := ts.raw(t, "POST", "/apps/builds/builds", tok, huge); code != 413 {
		t.Fatalf("huge build: %d %s", code, body)
	}
	if code, _ := ts.raw(t, "DELETE", "/apps/builds/builds/"+b.ID, tok, ""); code != 409 {
		t.Fatalf("stopping a finished build: %d", code)
	}
}

func TestE2E_UnhealthyRelease_KeepsServingPrevious(t *testing.T) {
	cfg := testConfig(t)
	cfg.HealthyDeadline = 2 * time.Second // an isolated dyno on a busy machine can take most of a second to start
	ts := startTestServer(t, cfg)
	ts.c.CreateApp(bg, "sick", "", "")
	good := ts.release(t, "sick", client.NewRelease{Slug: ts.push(t, "sick", "web: ./testapp\n")})
	if _, err := ts.c.UpdateFormations(bg, "sick", []map[string]any{{"type": "web", "healthcheck": "/health"}}); err != nil {
		t.Fatal(err)
	}
	bad := ts.release(t, "sick", client.NewRelease{Slug: ts.push(t, "sick", "web: ./testapp --unhealthy\n")})
	if bad.Status != "failed" || !strings.Contains(bad.Error, "health") {
		t.Fatalf("unhealthy release = %+v", bad)
	}
	cur, _ := ts.c.Release(bg, "sick", good.ID)
	if !cur.Current {
		t.Fatal("current moved off the good release")
	}
	if code, body := ts.get(t, "sick-default", "/"); code != 200 || !strings.HasPrefix(body, "version=1") {
		t.Fatalf("router: %d %q", code, body)
	}
}

func TestE2E_RestartMidRelease_FinishesAfterRestart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	ts := startTestServer(t, cfg)
	ts.c.CreateApp(bg, "phoenix", "", "")
	slug := ts.push(t, "phoenix", "web: ./testapp --start-delay=1500ms\n")
	rel, err := ts.c.CreateRelease(bg, "phoenix", client.NewRelease{Slug: slug})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, _ := ts.c.Release(bg, "phoenix", rel.ID)
		if r.Status == slipway.ReleasePending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("release never pending: %s", r.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	ts.stop(t) // the server goes away mid-release
	ts2 := startTestServer(t, cfg)
	got, err := ts2.c.WaitRelease(bg, "phoenix", rel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "succeeded" || !got.Current {
		t.Fatalf("after restart = %+v", got)
	}
	log, _ := ts2.c.ReleaseLog(bg, "phoenix", rel.ID)
	if !strings.Contains(strings.Join(log.Lines, "\n"), "resumed after a server restart") {
		t.Fatalf("log: %q", log.Lines)
	}
	if code, _ := ts2.get(t, "phoenix-default", "/"); code != 200 {
		t.Fatalf("router after restart: %d", code)
	}
}

func TestServe_RefusesDataOpenToOthers(t *testing.T) {
	cfg := testConfig(t)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := startServer(bg, cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("start with a 0755 data dir: %v", err)
	}
	os.Chmod(cfg.DataDir, 0o700)
	cfg.Token = "" // the generated token file is checked too
	os.WriteFile(filepath.Join(cfg.DataDir, "token"), []byte("tok\n"), 0o644)
	if _, err := startServer(bg, cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("start with a 0644 token file: %v", err)
	}
}

// TestServe_DataIsTheServersAlone: a data dir the server creates is 0700,
// the token it generates 0600 and the SQLite files (-wal and -shm
// included) 0600; with a --slug-dir of its own, the slug dir and each
// slug's folder are 0700, and the slug's blob, which Kubernetes pods
// download, still packs its files with their modes. (Dynos running from
// 0700 slugs, isolated and not: the local runtime's tests.)
func TestServe_DataIsTheServersAlone(t *testing.T) {
	cfg := testConfig(t)
	base := t.TempDir()
	cfg.DataDir = filepath.Join(base, "state", "data") // neither exists yet
	cfg.SlugDir = filepath.Join(base, "shared", "slugs")
	cfg.Token = "" // generated and saved in the data dir
	ts := startTestServer(t, cfg)
	if _, err := ts.c.CreateApp(bg, "modes", "", ""); err != nil {
		t.Fatal(err)
	}
	archive := testslug.TarGz(t, map[string]testslug.File{
		"Procfile": {Body: []byte("web: bin/run\n")},
		"bin/run":  {Body: []byte("#!/bin/sh\nexec sleep 60\n"), Mode: 0o755},
	})
	b, err := ts.c.CreateBuild(bg, "modes", client.NewBuild{URL: testslug.DataURI(archive)})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ts.c.WaitBuild(bg, "modes", b.ID, nil); err != nil || got.Status != slipway.BuildSucceeded {
		t.Fatalf("build: %+v, %v", got, err)
	}
	slugID := b.ID
	code, blob := ts.raw(t, "GET", "/slugs/"+slugID+"/blob", "Bearer "+ts.Token, "")
	if code != 200 {
		t.Fatalf("GET the slug's blob: %d %.300s", code, blob)
	}
	modes := map[string]string{}
	zr, err := gzip.NewReader(strings.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	for tr := tar.NewReader(zr); ; {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		modes[h.Name] = fmt.Sprintf("%o", h.Mode)
	}
	if want := map[string]string{"Procfile": "644", "bin/": "755", "bin/run": "755"}; !maps.Equal(modes, want) {
		t.Errorf("the slug's blob holds %v (name: mode), want %v", modes, want)
	}

	db := filepath.Join(cfg.DataDir, "slipway.db")
	for path, want := range map[string]os.FileMode{
		cfg.DataDir:                         0o700,
		filepath.Join(cfg.DataDir, "token"): 0o600,
		db:                                  0o600,
		db + "-wal":                         0o600,
		db + "-shm":                         0o600,
		cfg.SlugDir:                         0o700,
		filepath.Join(cfg.SlugDir, slugID):  0o700,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

// TestServe_ScaleSettings: the pool and rate settings are refused when
// they cannot work, and --db-max-conns reaches the PostgreSQL pool.
func TestServe_ScaleSettings(t *testing.T) {
	for _, c := range []struct {
		set  func(*serveConfig)
		want string
	}{
		{func(c *serveConfig) { c.DBMaxConns = -1 }, "--db-max-conns -1"},
		{func(c *serveConfig) { c.KubeQPS = -5 }, "--kube-qps -5"},
		{func(c *serveConfig) { c.KubeBurst = -1 }, "--kube-burst -1"},
		{func(c *serveConfig) { c.LeaseTTL = 200 * time.Millisecond }, "--lease-ttl 200ms: must be at least 1s"},
	} {
		cfg := testConfig(t)
		c.set(&cfg)
		if _, err := startServer(bg, cfg, io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("start: %v, want an error naming %q", err, c.want)
		}
	}
	cfg := testConfig(t)
	cfg.Database = pgtest.DSN(t)
	cfg.DBMaxConns = 5
	ts := startTestServer(t, cfg)
	if got := ts.db.MaxConns(); got != 5 {
		t.Errorf("the PostgreSQL pool opens at most %d connections, want 5", got)
	}
}
