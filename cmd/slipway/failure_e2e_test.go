package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// A real dyno that prints a config value and crashes: its release fails
// with a crash failure whose last output shows the value as [redacted],
// in the release's JSON, the list, `releases:info`, the rollout the CLI
// follows and the release_failed webhook, and nowhere the value itself.
func TestE2E_ReleaseFailure_CrashOutputRedacted(t *testing.T) {
	t.Parallel()
	const secret = "pa55-e2e-0f-the-db"
	var (
		mu       sync.Mutex
		payloads []string
	)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		payloads = append(payloads, string(b))
		mu.Unlock()
	}))
	defer sink.Close()
	ts := startTestServer(t, testConfig(t))
	if _, err := ts.c.CreateApp(bg, "crashy", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.c.UpdateConfigVars(bg, "crashy", map[string]*string{"DATABASE_PASSWORD": ptr(secret)}); err != nil {
		t.Fatal(err)
	}
	url, events := sink.URL, []string{"release_failed"}
	if _, err := ts.c.CreateHook(bg, "crashy", client.NewHook{URL: &url, Events: &events, Secret: ptr("hook-secret")}); err != nil {
		t.Fatal(err)
	}
	slug := ts.push(t, "crashy", "web: echo starting; echo \"connecting with $DATABASE_PASSWORD\"; exit 3\n")

	h := newCLIHarness(t, ts)
	h.ok("login", "--api", ts.APIURL, "--token", "test-token")
	res := h.run("releases:create", slug, "-a", "crashy")
	if res.code == 0 {
		t.Fatalf("releases:create of a crashing slug exited 0")
	}
	for _, want := range []string{"Why it failed", "Failed in:", "crash (web.1)", "exit code 3", "connecting with [redacted]"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("the followed rollout lacks %q:\n%s", want, res.stdout)
		}
	}

	rel, err := ts.c.Release(bg, "crashy", "v1")
	if err != nil {
		t.Fatal(err)
	}
	f := rel.Failure
	if rel.Status != slipway.ReleaseFailed || f == nil || f.Phase != slipway.FailCrash || f.Dyno != "web.1" || f.ExitCode == nil || *f.ExitCode != 3 {
		t.Fatalf("v1 = %s (%s), failure %+v", rel.Status, rel.Error, f)
	}
	if strings.Join(f.Output, "|") != "starting|connecting with [redacted]" {
		t.Errorf("output = %q", f.Output)
	}
	if !strings.Contains(rel.Error, "connecting with [redacted]") {
		t.Errorf("error = %q", rel.Error)
	}
	info := h.ok("releases:info", "v1", "-a", "crashy")
	for _, want := range []string{"Failed in:", "crash (web.1)", "exit code 3", "=== Last output of web.1", "  connecting with [redacted]"} {
		if !strings.Contains(info, want) {
			t.Errorf("releases:info lacks %q:\n%s", want, info)
		}
	}

	var hook string
	deadline := time.Now().Add(30 * time.Second)
	for hook == "" && time.Now().Before(deadline) {
		mu.Lock()
		if len(payloads) > 0 {
			hook = payloads[0]
		}
		mu.Unlock()
		if hook == "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	var p struct {
		Action  string `json:"action"`
		Release struct {
			Failure *slipway.Failure `json:"failure"`
		} `json:"release"`
	}
	if err := json.Unmarshal([]byte(hook), &p); err != nil || p.Action != "release_failed" || p.Release.Failure == nil ||
		p.Release.Failure.Phase != slipway.FailCrash || strings.Join(p.Release.Failure.Output, "|") != "starting|connecting with [redacted]" {
		t.Errorf("release_failed payload = %s (%v)", hook, err)
	}

	_, list := ts.raw(t, "GET", "/apps/crashy/releases", "Bearer test-token", "")
	_, log := ts.raw(t, "GET", "/apps/crashy/releases/v1/log", "Bearer test-token", "")
	for name, text := range map[string]string{"list": list, "log": log, "webhook": hook, "releases:info": info, "rollout": res.stdout + res.stderr} {
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the config value:\n%s", name, text)
		}
	}
	if !strings.Contains(list, `"failure":{"phase":"crash"`) {
		t.Errorf("list = %s", list)
	}
}
