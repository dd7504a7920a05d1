package client

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slipway/slipway"
)

func TestClient_ReleaseStrategy_RoundTrip(t *testing.T) {
	var put string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apps/hello-default/release-strategy" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		switch r.Method {
		case "GET":
			w.Write([]byte(`{"type":"canary","steps":[{"weight":10,"pause":"2m"},{"weight":100}],"analysis":{"max_error_rate":0.01,"interval":"15s"},"required_checks":["ci/smoke"]}`))
		case "PUT":
			b, _ := io.ReadAll(r.Body)
			put = string(b)
			w.Write(b)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "tok")
	s, err := c.ReleaseStrategy(bg, "hello-default")
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != slipway.StrategyCanary || len(s.Steps) != 2 || s.Steps[0].Pause != "2m" || s.Analysis == nil ||
		time.Duration(s.Analysis.Interval) != 15*time.Second || s.RequiredChecks[0] != "ci/smoke" {
		t.Fatalf("strategy = %+v", s)
	}
	bgs := slipway.Strategy{Type: slipway.StrategyBlueGreen, Preview: true, ScaleDownDelay: slipway.Duration(5 * time.Minute)}
	got, err := c.SetReleaseStrategy(bg, "hello-default", bgs)
	if err != nil {
		t.Fatal(err)
	}
	if put != `{"type":"blue-green","preview":true,"scale_down_delay":"5m0s"}` || got.Type != slipway.StrategyBlueGreen || !got.Preview {
		t.Fatalf("PUT %s, answer %+v", put, got)
	}
}

// Each action posts to its own route: promote with {"full":true} only when
// asked, the others with no body; a 409 comes back as EConflict.
func TestClient_ReleaseActions(t *testing.T) {
	bodies := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != "POST" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		bodies[r.URL.Path] += string(b) + ";"
		if r.URL.Path == "/apps/a/releases/v1/actions/abort" {
			w.WriteHeader(409)
			w.Write([]byte(`{"id":"conflict","message":"Release v1 is not rolling out: it succeeded."}`))
			return
		}
		json.NewEncoder(w).Encode(Release{Version: 2, Status: "pending", Strategy: "canary", Rollout: &Rollout{Strategy: "canary", Step: 1, Steps: 3, Weight: 50, Phase: "paused"}})
	}))
	defer srv.Close()
	c := New(srv.URL, "tok")
	rel, err := c.PromoteRelease(bg, "a", "v2", false)
	if err != nil || rel.Rollout == nil || rel.Rollout.Weight != 50 || rel.Strategy != "canary" {
		t.Fatalf("promote = %+v, %v", rel, err)
	}
	if _, err := c.PromoteRelease(bg, "a", "v2", true); err != nil {
		t.Fatal(err)
	}
	for _, act := range []func() (*Release, error){
		func() (*Release, error) { return c.PauseRelease(bg, "a", "v2") },
		func() (*Release, error) { return c.ResumeRelease(bg, "a", "v2") },
		func() (*Release, error) { return c.AbortRelease(bg, "a", "v2") },
	} {
		if _, err := act(); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string]string{
		"/apps/a/releases/v2/actions/promote": `;{"full":true};`,
		"/apps/a/releases/v2/actions/pause":   ";",
		"/apps/a/releases/v2/actions/resume":  ";",
		"/apps/a/releases/v2/actions/abort":   ";",
	} {
		if bodies[path] != want {
			t.Errorf("%s got bodies %q, want %q", path, bodies[path], want)
		}
	}
	_, err = c.AbortRelease(bg, "a", "v1")
	if slipway.ErrorCode(err) != slipway.EConflict || slipway.ErrorMessage(err) != "Release v1 is not rolling out: it succeeded." {
		t.Fatalf("409: %v", err)
	}
}
