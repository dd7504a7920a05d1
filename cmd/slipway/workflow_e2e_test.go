package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/hook"
)

func ptr[T any](v T) *T { return &v }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// latest waits for the app's newest release to end and returns it.
func (ts *testServer) latest(t *testing.T, app string) *client.Release {
	t.Helper()
	rels, err := ts.c.Releases(bg, app)
	if err != nil || len(rels) == 0 {
		t.Fatalf("releases of %s: %v %v", app, rels, err)
	}
	r, err := ts.c.WaitRelease(bg, app, rels[len(rels)-1].ID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestE2E_ConfigVars_ReleaseAndRollback(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "conf", "", "")
	// Config set before the first release is picked up by it.
	if _, err := ts.c.UpdateConfigVars(bg, "conf", map[string]*string{"COLOR": ptr("blue")}); err != nil {
		t.Fatal(err)
	}
	if rels, _ := ts.c.Releases(bg, "conf"); len(rels) != 0 {
		t.Fatalf("config change on an app with no release made a release: %+v", rels)
	}
	slug := ts.push(t, "conf", "web: ./testapp\n")
	v1 := ts.release(t, "conf", client.NewRelease{Slug: slug})
	if _, body := ts.get(t, "conf-default", "/env/COLOR"); body != "blue" {
		t.Fatalf("COLOR = %q", body)
	}
	cfg, err := ts.c.UpdateConfigVars(bg, "conf", map[string]*string{"COLOR": ptr("red"), "SIZE": ptr("xl")})
	if err != nil || cfg["COLOR"] != "red" {
		t.Fatalf("config = %v, %v", cfg, err)
	}
	v2 := ts.latest(t, "conf")
	if v2.Version != 2 || v2.Trigger != "config" || v2.Status != "succeeded" || v2.Description != "Set COLOR, SIZE config vars" || v2.Slug.ID != slug {
		t.Fatalf("config release = %+v", v2)
	}
	if _, body := ts.get(t, "conf-default", "/env/COLOR"); body != "red" {
		t.Fatalf("COLOR after change = %q", body)
	}
	ts.c.UpdateConfigVars(bg, "conf", map[string]*string{"SIZE": nil})
	if v3 := ts.latest(t, "conf"); v3.Description != "Unset SIZE config vars" {
		t.Fatalf("unset release = %+v", v3)
	}
	tok := "Bearer test-token"
	for _, body := range []string{`{"PORT":"1"}`, `{"SLIPWAY_X":"1"}`, `{"lower":"1"}`, `{"1ABC":"1"}`, `{}`} {
		if code, _ := ts.raw(t, "PATCH", "/apps/conf/config-vars", tok, body); code != 422 {
			t.Errorf("config %s: %d, want 422", body, code)
		}
	}
	if code, _ := ts.raw(t, "PATCH", "/apps/conf/config-vars", tok, `{"A":1}`); code != 400 {
		t.Errorf("number value: %d, want 400", code)
	}
	// Rollback to v1 restores its config (and slug).
	rb := ts.release(t, "conf", client.NewRelease{Release: v1.ID})
	if rb.Status != "succeeded" {
		t.Fatalf("rollback = %+v", rb)
	}
	if _, body := ts.get(t, "conf-default", "/env/COLOR"); body != "blue" {
		t.Fatalf("COLOR after rollback = %q", body)
	}
	if cfg, _ := ts.c.ConfigVars(bg, "conf"); fmt.Sprint(cfg) != "map[COLOR:blue]" {
		t.Fatalf("config vars after rollback = %v", cfg)
	}
}

// pipelineFixture: apps dev, stg, prod in pipeline "shop", each released once.
func pipelineFixture(t *testing.T, ts *testServer) (slug string) {
	t.Helper()
	for _, a := range []string{"dev", "stg", "prod"} {
		if _, err := ts.c.CreateApp(bg, a, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	slug = ts.push(t, "dev", "web: ./testapp\n")
	if v := ts.release(t, "dev", client.NewRelease{Slug: slug}); v.Status != "succeeded" {
		t.Fatalf("dev v1 = %+v", v)
	}
	if err := ts.c.Do(bg, "POST", "/pipelines", map[string]string{"name": "shop"}, nil); err != nil {
		t.Fatal(err)
	}
	for app, stage := range map[string]string{"dev": "development", "stg": "staging", "prod": "production"} {
		body := map[string]any{"app": app, "pipeline": "shop", "stage": stage}
		if app == "dev" {
			body["required_status_checks"] = map[string]any{"contexts": []string{"ci/tests"}}
		}
		if err := ts.c.Do(bg, "POST", "/pipeline-couplings", body, nil); err != nil {
			t.Fatal(err)
		}
	}
	return slug
}

func TestE2E_Pipelines_CouplingsAndDownstream(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	slug := pipelineFixture(t, ts)
	tok := "Bearer test-token"
	stages, err := ts.c.PipelineStages(bg)
	if err != nil || strings.Join(stages, ",") != "review,development,staging,production" {
		t.Fatalf("stages = %v, %v", stages, err)
	}
	type coupling struct {
		ID    string `json:"id"`
		Stage string `json:"stage"`
		App   struct {
			Name string `json:"name"`
		} `json:"app"`
		RequiredStatusChecks struct {
			Contexts []string `json:"contexts"`
		} `json:"required_status_checks"`
	}
	var byPipeline, all []coupling
	var stgCoupling coupling
	ts.c.Do(bg, "GET", "/pipelines/shop/pipeline-couplings", nil, &byPipeline)
	ts.c.Do(bg, "GET", "/apps/stg/pipeline-couplings", nil, &stgCoupling)
	ts.c.Do(bg, "GET", "/pipeline-couplings", nil, &all)
	if len(byPipeline) != 3 || byPipeline[0].Stage != "development" || byPipeline[2].Stage != "production" || len(all) != 3 {
		t.Fatalf("couplings = %+v", byPipeline)
	}
	if stgCoupling.App.Name != "stg-default" || stgCoupling.Stage != "staging" {
		t.Fatalf("stg coupling = %+v", stgCoupling)
	}
	byApp := []coupling{stgCoupling}
	errs := []struct {
		name, method, path, body string
		want                     int
	}{
		{"checks on review", "POST", "/pipeline-couplings", `{"app":"other","pipeline":"shop","stage":"review","required_status_checks":{"contexts":["ci/tests"]}}`, 422},
		{"unknown stage", "POST", "/pipeline-couplings", `{"app":"stg","pipeline":"shop","stage":"qa"}`, 422},
		{"coupled twice", "POST", "/pipeline-couplings", `{"app":"stg","pipeline":"shop","stage":"staging"}`, 409},
		{"unknown pipeline", "POST", "/pipeline-couplings", `{"app":"stg","pipeline":"nope","stage":"staging"}`, 404},
		{"missing fields", "POST", "/pipeline-couplings", `{"app":"stg"}`, 422},
		{"duplicate pipeline", "POST", "/pipelines", `{"name":"shop"}`, 409},
		{"bad pipeline name", "POST", "/pipelines", `{"name":"Bad Name"}`, 422},
		{"unknown coupling", "GET", "/pipeline-couplings/c5b5896f-7896-4a11-80f0-dbb0e6c00ac5", ``, 404},
		{"patch without checks", "PATCH", "/pipeline-couplings/" + byApp[0].ID, `{"stage":"production"}`, 422},
		{"slug release downstream", "POST", "/apps/stg/releases", fmt.Sprintf(`{"slug":%q}`, slug), 422},
	}
	ts.c.CreateApp(bg, "other", "", "")
	for _, tt := range errs {
		code, body := ts.raw(t, tt.method, tt.path, tok, tt.body)
		if code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.want)
		}
		if tt.name == "slug release downstream" && !strings.Contains(body, "promote") {
			t.Errorf("downstream message does not say to promote: %s", body)
		}
	}
	var up coupling
	if err := ts.c.Do(bg, "PATCH", "/pipeline-couplings/"+byApp[0].ID, map[string]any{"required_status_checks": map[string]any{"contexts": []string{"qa/smoke"}}}, &up); err != nil || up.RequiredStatusChecks.Contexts[0] != "qa/smoke" {
		t.Fatalf("patch = %+v, %v", up, err)
	}
	// The development app is upstream: releasing to it directly is fine.
	if code, body := ts.raw(t, "POST", "/apps/dev/releases", tok, fmt.Sprintf(`{"slug":%q}`, slug)); code != 201 {
		t.Fatalf("release to dev: %d %s", code, body)
	}
	// Uncoupled, staging takes direct releases again; deleting the
	// pipeline takes its couplings with it.
	if err := ts.c.Do(bg, "DELETE", "/pipeline-couplings/"+byApp[0].ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := ts.c.Do(bg, "DELETE", "/pipelines/shop", nil, nil); err != nil {
		t.Fatal(err)
	}
	ts.c.Do(bg, "GET", "/pipeline-couplings", nil, &all)
	if len(all) != 0 {
		t.Fatalf("couplings after delete = %+v", all)
	}
}

func TestE2E_Promotion(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	slug := pipelineFixture(t, ts)
	ts.c.UpdateConfigVars(bg, "stg", map[string]*string{"TIER": ptr("staging")})
	ts.c.UpdateConfigVars(bg, "dev", map[string]*string{"TIER": ptr("dev")})
	dev := ts.latest(t, "dev") // the config release of dev
	promote := func(body map[string]any) (int, string) {
		b, _ := json.Marshal(body)
		return ts.raw(t, "POST", "/pipeline-promotions", "Bearer test-token", string(b))
	}
	base := func(targets ...string) map[string]any {
		var ts []map[string]any
		for _, a := range targets {
			ts = append(ts, map[string]any{"app": map[string]string{"id": a}})
		}
		return map[string]any{"pipeline": map[string]string{"id": "shop"}, "source": map[string]any{"app": map[string]string{"id": "dev"}}, "targets": ts}
	}
	// The required check ci/tests is missing, then failing.
	if code, body := promote(base("stg")); code != 409 || !strings.Contains(body, "ci/tests (missing)") {
		t.Fatalf("promotion without checks: %d %s", code, body)
	}
	st, _ := ts.c.CreateReleaseStatus(bg, "dev", dev.ID, client.ReleaseStatus{State: "failure", Name: "unit tests", Context: "ci/tests"})
	if code, body := promote(base("stg")); code != 409 || !strings.Contains(body, "ci/tests (failure)") {
		t.Fatalf("promotion with failing check: %d %s", code, body)
	}
	ts.c.UpdateReleaseStatus(bg, "dev", dev.ID, st.ID, client.ReleaseStatus{State: "success"})
	if code, body := promote(base("dev")); code != 422 {
		t.Fatalf("promotion to itself: %d %s", code, body)
	}
	ts.c.CreateApp(bg, "loner", "", "")
	if code, body := promote(base("loner")); code != 422 || !strings.Contains(body, "not coupled") {
		t.Fatalf("promotion outside the pipeline: %d %s", code, body)
	}
	safe := base("stg")
	safe["safe"] = true
	ts.c.UpdateConfigVars(bg, "dev", map[string]*string{"ONLY_DEV": ptr("1")})
	dev = ts.latest(t, "dev")
	ts.c.CreateReleaseStatus(bg, "dev", dev.ID, client.ReleaseStatus{State: "success", Name: "unit tests", Context: "ci/tests"})
	if code, body := promote(safe); code != 422 || !strings.Contains(body, "ONLY_DEV") {
		t.Fatalf("safe promotion with differing keys: %d %s", code, body)
	}
	code, body := promote(base("stg", "prod"))
	if code != 201 {
		t.Fatalf("promotion: %d %s", code, body)
	}
	var p struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	json.Unmarshal([]byte(body), &p)
	stg := ts.latest(t, "stg")
	if stg.Trigger != "promotion" || stg.Slug.ID != slug || stg.Status != "succeeded" {
		t.Fatalf("stg release = %+v", stg)
	}
	if _, tier := ts.get(t, "stg-default", "/env/TIER"); tier != "staging" {
		t.Fatalf("stg runs with TIER=%q, want its own config", tier)
	}
	ts.latest(t, "prod")
	waitFor(t, "promotion to finish", 30*time.Second, func() bool {
		ts.c.Do(bg, "GET", "/pipeline-promotions/"+p.ID, nil, &p)
		return p.Status != "pending"
	})
	var targets []struct {
		App     struct{ ID string } `json:"app"`
		Release struct{ ID string } `json:"release"`
		Status  string              `json:"status"`
	}
	ts.c.Do(bg, "GET", "/pipeline-promotions/"+p.ID+"/promotion-targets", nil, &targets)
	if p.Status != "succeeded" || len(targets) != 2 || targets[0].Status != "succeeded" {
		t.Fatalf("promotion = %+v, targets = %+v", p, targets)
	}
	// A source release that has not succeeded cannot be promoted.
	bad := ts.push(t, "dev", "web: ./testapp --crash\n")
	failed := ts.release(t, "dev", client.NewRelease{Slug: bad})
	withRel := base("stg")
	withRel["source"] = map[string]any{"app": map[string]string{"id": "dev"}, "release": map[string]string{"id": failed.ID}}
	if code, body := promote(withRel); code != 422 {
		t.Fatalf("promoting a failed release: %d %s", code, body)
	}
	// Rollbacks on a downstream app are allowed.
	if r := ts.release(t, "stg", client.NewRelease{Release: stg.ID}); r.Status != "succeeded" {
		t.Fatalf("downstream rollback = %+v", r)
	}
}

// receiver is a webhook endpoint that checks both signatures.
type receiver struct {
	t      *testing.T
	secret string
	failN  int // answer 500 to this many attempts of each delivery first
	mu     sync.Mutex
	got    []map[string]any
	seen   map[string]int // attempts by delivery id
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s1, s256 := hook.Sign(body, rc.secret)
	if r.Header.Get("X-Akkeris-Signature") != s1 || r.Header.Get("X-Slipway-Signature-256") != s256 {
		rc.t.Errorf("bad signatures on %s", body)
		w.WriteHeader(400)
		return
	}
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil || ev["action"] != r.Header.Get("X-Akkeris-Event") || r.Header.Get("X-Akkeris-Delivery") == "" {
		rc.t.Errorf("bad delivery %s (%v)", body, r.Header)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.seen == nil {
		rc.seen = map[string]int{}
	}
	id := r.Header.Get("X-Akkeris-Delivery")
	rc.seen[id]++
	if rc.seen[id] <= rc.failN {
		w.WriteHeader(500)
		return
	}
	rc.got = append(rc.got, ev)
}

// events returns a copy of the events received so far.
func (rc *receiver) events() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.got...)
}

func (rc *receiver) actions() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, e := range rc.got {
		out = append(out, e["action"].(string))
	}
	return out
}

func has(list []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, l := range list {
			found = found || l == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestE2E_Webhooks_SignedRetriedAndAudited(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	ts.c.CreateApp(bg, "hooked", "", "")
	rc := &receiver{t: t, secret: "s3cret", failN: 2}
	srv := &http.Server{Handler: rc}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()
	var h struct {
		ID     string   `json:"id"`
		Secret string   `json:"secret"`
		Events []string `json:"events"`
	}
	err := ts.c.Do(bg, "POST", "/apps/hooked/hooks", map[string]any{"url": "http://" + ln.Addr().String() + "/hook", "events": slipway.HookEvents(), "secret": "s3cret"}, &h)
	if err != nil || h.Secret != "" || len(h.Events) != len(slipway.HookEvents()) {
		t.Fatalf("hook = %+v, %v (the secret must never be shown)", h, err)
	}
	tok := "Bearer test-token"
	for _, body := range []string{`{"url":"ftp://x","events":["release"]}`, `{"url":"http://x","events":[]}`, `{"url":"http://x","events":["nope"]}`} {
		if code, _ := ts.raw(t, "POST", "/apps/hooked/hooks", tok, body); code != 422 {
			t.Errorf("hook %s: %d, want 422", body, code)
		}
	}
	slug := ts.push(t, "hooked", "web: ./testapp\n")
	ts.release(t, "hooked", client.NewRelease{Slug: slug})
	ts.release(t, "hooked", client.NewRelease{Slug: ts.push(t, "hooked", "web: ./testapp --crash\n")})
	ts.c.UpdateFormations(bg, "hooked", []map[string]any{{"type": "web", "quantity": 1}})
	ts.c.UpdateConfigVars(bg, "hooked", map[string]*string{"K": ptr("v")})
	ts.latest(t, "hooked")
	waitFor(t, "every event", 30*time.Second, func() bool {
		return has(rc.actions(), "build", "release", "released", "release_failed", "formation_change", "config_change")
	})
	var results []struct {
		Attempt  int `json:"attempt"`
		Response struct {
			Code int `json:"code"`
		} `json:"response"`
		Request struct {
			Headers map[string]string `json:"headers"`
		} `json:"request"`
		Error string `json:"error"`
	}
	ts.c.Do(bg, "GET", "/apps/hooked/hooks/"+h.ID+"/results", nil, &results)
	if len(results) < 3 || results[0].Response.Code != 500 || results[0].Request.Headers["X-Akkeris-Event"] == "" {
		t.Fatalf("results = %+v", results)
	}
	retried := false
	for _, r := range results {
		retried = retried || (r.Attempt == 3 && r.Response.Code == 200)
	}
	if !retried {
		t.Fatalf("no delivery succeeded on its third attempt: %+v", results)
	}
	// Each attempt is a result with Akkeris's last_attempt, readable by id
	// through the client.
	all, err := ts.c.HookResults(bg, "hooked", h.ID)
	if err != nil || len(all) < len(results) {
		t.Fatalf("client results = %d, %v", len(all), err)
	}
	last := all[len(all)-1]
	one, err := ts.c.HookResult(bg, "hooked-default", h.ID, last.ID)
	if err != nil || one.ID != last.ID || one.LastAttempt.Request.URL != "http://"+ln.Addr().String()+"/hook" || one.LastAttempt.Request.Method != "post" ||
		!strings.Contains(string(one.LastAttempt.Request.Body), `"action":"`+one.Event+`"`) || one.Hook.ID != h.ID || len(one.Hook.Events) != len(slipway.HookEvents()) ||
		one.LastAttempt.Response.Code != one.Response.Code || (one.Status == "succeeded") != (one.Response.Code == 200) {
		t.Fatalf("result = %+v, %v", one, err)
	}
	if one.Status == "succeeded" && one.LastAttempt.Response.Headers["Date"] == "" {
		t.Fatalf("the answer's headers are not kept: %+v", one.LastAttempt.Response)
	}
	// The events the engine sends follow Webhook-Event-Payloads.md: the
	// app by its bare name, with its space.
	for _, e := range rc.events() {
		app, _ := e["app"].(map[string]any)
		space, _ := e["space"].(map[string]any)
		if app["name"] != "hooked" || space["name"] != "default" {
			t.Fatalf("%v event names the app %v in %v", e["action"], app, space)
		}
		if e["action"] == "released" {
			dyno, _ := e["dyno"].(map[string]any)
			slug, _ := e["slug"].(map[string]any)
			blob, _ := slug["source_blob"].(map[string]any)
			if id, _ := slug["id"].(string); dyno["type"] != "web" || len(id) != 36 || blob == nil || e["released_at"] == nil {
				t.Fatalf("released = %v", e)
			}
		}
	}
	// The config value never leaves the server in an event.
	for _, e := range rc.events() {
		if b, _ := json.Marshal(e); strings.Contains(string(b), `"v"`) && e["action"] == "config_change" {
			t.Fatalf("config value in event: %s", b)
		}
	}
	var audits []struct {
		Action string `json:"action"`
	}
	ts.c.Do(bg, "GET", "/audits?app=hooked-default&limit=50", nil, &audits)
	if len(audits) < 4 || audits[0].Action != "release.config" || audits[1].Action != "config.change" {
		t.Fatalf("audits (newest first) = %+v", audits)
	}
	if code, _ := ts.raw(t, "GET", "/audits?limit=abc", tok, ""); code != 400 {
		t.Fatalf("bad limit: %d", code)
	}
	// destroy is delivered after the app and its hooks are gone.
	if err := ts.c.DeleteApp(bg, "hooked"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the destroy event", 10*time.Second, func() bool { return has(rc.actions(), "destroy") })
}

func TestE2E_Webhooks_SurviveRestart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	ts := startTestServer(t, cfg)
	ts.c.CreateApp(bg, "durable", "", "")
	// The receiver's port is reserved but nothing listens yet.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if err := ts.c.Do(bg, "POST", "/apps/durable/hooks", map[string]any{"url": "http://" + addr + "/", "events": []string{"formation_change"}, "secret": "k"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := ts.c.Do(bg, "POST", "/apps/durable/formation", map[string]any{"type": "worker", "quantity": 0}, nil); err != nil {
		t.Fatal(err)
	}
	ts.stop(t)
	rc := &receiver{t: t, secret: "k"}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	srv := &http.Server{Handler: rc}
	go srv.Serve(ln)
	defer srv.Close()
	startTestServer(t, cfg)
	waitFor(t, "the delivery after restart", 30*time.Second, func() bool { return has(rc.actions(), "formation_change") })
}
