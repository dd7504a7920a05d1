package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/internal/testslug"
)

// TestE2E_ScopedToken_BuildsAndHooksConnectOnlyWhereAllowed runs a server
// whose operator opened 127.0.0.1 only (--allow-private-fetch 127.0.0.1)
// and a loopback file server that redirects to 127.0.0.2. A scoped
// token's build and hook reach 127.0.0.1; the redirect to 127.0.0.2 is
// refused as it is dialled, and the build log and the hook result say why.
// Every connection is to loopback.
func TestE2E_ScopedToken_BuildsAndHooksConnectOnlyWhereAllowed(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	if err := cfg.AllowPrivateFetch.Set("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	ts := startTestServer(t, cfg)
	if err := ts.c.Do(bg, "POST", "/organizations", map[string]string{"name": "acme"}, nil); err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	if err := ts.c.Do(bg, "POST", "/tokens", map[string]string{"org": "acme"}, &tok); err != nil {
		t.Fatal(err)
	}
	tenant := client.New(ts.APIURL, tok.Token)
	if _, err := tenant.CreateApp(bg, "tenant", "", ""); err != nil {
		t.Fatal(err)
	}

	archive := testslug.TestAppSlug(t, "web: ./testapp\n")
	var mu sync.Mutex
	hits := map[string]int{}
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.URL.Path]++
		mu.Unlock()
		_, port, _ := net.SplitHostPort(r.Host)
		switch r.URL.Path {
		case "/slug.tgz":
			w.Write(archive)
		case "/redirect":
			// 307 keeps a hook's POST a POST.
			http.Redirect(w, r, "http://127.0.0.2:"+port+"/slug.tgz", http.StatusTemporaryRedirect)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer files.Close()

	// The literal 127.0.0.2 is refused when given.
	code, body := ts.raw(t, "POST", "/apps/tenant/hooks", "Bearer "+tok.Token, `{"url":"http://127.0.0.2/hook","events":["build"]}`)
	if code != 422 || !strings.Contains(body, "127.0.0.2, which is a loopback address") {
		t.Fatalf("hook to 127.0.0.2: %d %s", code, body)
	}
	var h struct{ ID string }
	if err := tenant.Do(bg, "POST", "/apps/tenant/hooks", map[string]any{"url": files.URL + "/redirect", "events": []string{"build"}}, &h); err != nil {
		t.Fatal(err)
	}

	build := func(path string) (string, []string) {
		t.Helper()
		b, err := tenant.CreateBuild(bg, "tenant", client.NewBuild{URL: files.URL + path})
		if err != nil {
			t.Fatal(err)
		}
		got, err := tenant.WaitBuild(bg, "tenant", b.ID, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := tenant.BuildResult(bg, "tenant", b.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.Status, res.Lines
	}
	if status, lines := build("/slug.tgz"); status != "succeeded" {
		t.Fatalf("build from 127.0.0.1 (opened by the operator): %s %q", status, lines)
	}
	status, lines := build("/redirect")
	if status != "failed" || !strings.Contains(strings.Join(lines, "\n"), "was refused: 127.0.0.2 is a loopback address") {
		t.Fatalf("build redirected to 127.0.0.2: %s %q", status, lines)
	}

	// Each build sent the hook a build event; its redirect was refused too.
	var results []struct {
		Error    string `json:"error"`
		Response struct {
			Code int `json:"code"`
		} `json:"response"`
	}
	waitFor(t, "two hook results", 20*time.Second, func() bool {
		results = nil
		tenant.Do(bg, "GET", "/apps/tenant/hooks/"+h.ID+"/results", nil, &results)
		return len(results) >= 2
	})
	for _, r := range results {
		if r.Response.Code != 0 || !strings.HasPrefix(r.Error, "refused: 127.0.0.2 is a loopback address") {
			t.Fatalf("hook result = %+v, want refused at 127.0.0.2", r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if hits["/slug.tgz"] != 1 {
		t.Fatalf("the file server saw %v; only the allowed build may reach /slug.tgz", hits)
	}
}
