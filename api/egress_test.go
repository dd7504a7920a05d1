package api_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
	"github.com/slipway/slipway/internal/egress"
)

// sourceEngine records the build sources it is asked to run and runs none,
// so nothing is ever fetched.
type sourceEngine struct {
	nopEngine
	mu      sync.Mutex
	sources []slipway.BuildSource
}

func (e *sourceEngine) StartBuild(_ *slipway.Build, src slipway.BuildSource) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sources = append(e.sources, src)
}

func (e *sourceEngine) last() slipway.BuildSource {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sources[len(e.sources)-1]
}

// TestBuilds_ScopedURLsMustBePublic: a scoped token's build URL whose host
// is a loopback, link-local or private address (or a loopback name) is
// refused at once, saying why, with nothing written; other URLs are
// queued marked scoped, so the fetch is checked again as it dials. The
// admin's URLs are not restricted.
func TestBuilds_ScopedURLsMustBePublic(t *testing.T) {
	f := newFixture(t)
	eng := &sourceEngine{}
	opened := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}
	f.srv = api.New(api.Config{Store: f.db, Engine: eng, Runtime: stubRuntime{}, Token: "admin-token", MaxSlug: 1 << 20, Egress: opened})
	acme := f.scopedToken("acme")
	f.mustDo("POST", "/apps", acme, `{"name":"mine"}`, 201)

	before := f.dump()
	for _, tt := range []struct{ url, says string }{
		{"http://127.0.0.1:5000/tokens", "url points at 127.0.0.1, which is a loopback address; builds of a token limited to one organization may reach only public addresses."},
		{"http://[::1]:5432/", "::1, which is a loopback address"},
		{"http://localhost:5080/", "localhost, which is a loopback name"},
		{"http://hello-default.localhost:5080/leak.txt", "hello-default.localhost, which is a loopback name"},
		{"http://2130706433:5080/", "2130706433, which is a loopback address (127.0.0.1)"},
		{"http://169.254.169.254/latest/meta-data/", "a link-local address"},
		{"https://10.0.0.7/app.tgz", "10.0.0.7, which is a private address"},
		{"http://192.168.1.20:20001/", "a private address"},
		{"http://0.0.0.0:5000/", "the unspecified address"},
	} {
		rec := f.mustDo("POST", "/apps/mine/builds", acme, `{"url":"`+tt.url+`"}`, 422)
		if msg := errorMessage(t, rec); !strings.Contains(msg, tt.says) || !strings.Contains(msg, "only public addresses") {
			t.Errorf("%s: %q, want it to say %q and why", tt.url, msg, tt.says)
		}
	}
	if after := f.dump(); after != before {
		t.Fatalf("refused builds changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if len(eng.sources) != 0 {
		t.Fatalf("refused builds were started: %+v", eng.sources)
	}

	for _, tt := range []struct {
		auth, url string
		scoped    bool
	}{
		{acme, "https://artifacts.example.com/app.tgz", true},
		{acme, "https://10.20.3.4/app.tgz", true}, // inside what the operator opened
		{acme, "data:application/gzip;base64,AAAA", true},
		{admin, "http://127.0.0.1:5000/app.tgz", false},
		{admin, "https://10.0.0.7/app.tgz", false},
	} {
		app := "mine"
		if tt.auth == admin {
			app = "hello"
		}
		f.mustDo("POST", "/apps/"+app+"/builds", tt.auth, `{"url":"`+tt.url+`"}`, 201)
		want := tt.url
		if strings.HasPrefix(want, "data:") {
			want = "data:" // an inline archive travels as a file, its URL as "data:"
		}
		if src := eng.last(); src.URL != want || src.Scoped != tt.scoped {
			t.Errorf("%s: started %+v, want scoped %v", tt.url, src, tt.scoped)
		}
	}
}

// TestHooks_ScopedURLsMustBePublic: a scoped token's hook URL whose host
// is a loopback, link-local or private address is refused at once, saying
// why, with nothing written; a hook whose URL a scoped token set is
// recorded as scoped (with who created it), so its deliveries are checked
// as they dial, and a URL the admin sets lifts the rule.
func TestHooks_ScopedURLsMustBePublic(t *testing.T) {
	f := newFixture(t)
	acme := f.scopedToken("acme")
	f.mustDo("POST", "/apps", acme, `{"name":"mine"}`, 201)
	var created struct{ ID string }
	json.Unmarshal(f.mustDo("POST", "/apps/mine/hooks", acme, `{"url":"https://hooks.example.com/x","events":["release"]}`, 201).Body.Bytes(), &created)
	var adminHook struct{ ID string }
	json.Unmarshal(f.mustDo("POST", "/apps/mine/hooks", admin, `{"url":"http://10.0.0.9/ops","events":["release"]}`, 201).Body.Bytes(), &adminHook)

	before := f.dump()
	for _, tt := range []struct{ method, path, body, says string }{
		{"POST", "/apps/mine/hooks", `{"url":"http://127.0.0.1:5000/","events":["release"]}`, "url points at 127.0.0.1, which is a loopback address; webhooks of a token limited to one organization may reach only public addresses."},
		{"POST", "/apps/mine/hooks", `{"url":"http://[::1]/","events":["release"]}`, "::1, which is a loopback address"},
		{"POST", "/apps/mine/hooks", `{"url":"http://localhost:5432/","events":["release"]}`, "localhost, which is a loopback name"},
		{"POST", "/apps/mine/hooks", `{"url":"http://169.254.169.254/","events":["release"]}`, "a link-local address"},
		{"POST", "/apps/mine/hooks", `{"url":"https://172.20.1.1/","events":["release"]}`, "172.20.1.1, which is a private address"},
		{"PATCH", "/apps/mine/hooks/" + created.ID, `{"url":"http://192.168.0.10:8080/"}`, "192.168.0.10, which is a private address"},
		{"PATCH", "/apps/mine/hooks/" + adminHook.ID, `{"url":"http://10.0.0.10/"}`, "10.0.0.10, which is a private address"},
	} {
		rec := f.mustDo(tt.method, tt.path, acme, tt.body, 422)
		if msg := errorMessage(t, rec); !strings.Contains(msg, tt.says) {
			t.Errorf("%s %s: %q, want it to say %q", tt.method, tt.body, msg, tt.says)
		}
	}
	if after := f.dump(); after != before {
		t.Fatalf("refused hooks changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	ctx := context.Background()
	app, _ := f.db.FindApp(ctx, "mine")
	hookOf := func(id string) *slipway.Hook {
		t.Helper()
		h, err := f.db.FindHook(ctx, app.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var tokens []struct{ ID string }
	json.Unmarshal(f.mustDo("GET", "/tokens", admin, "", 200).Body.Bytes(), &tokens)
	if h := hookOf(created.ID); !h.Scoped || h.CreatedBy != tokens[0].ID {
		t.Fatalf("the tenant's hook = %+v, want scoped and created by token %s", h, tokens[0].ID)
	}
	if h := hookOf(adminHook.ID); h.Scoped {
		t.Fatalf("the admin's hook is scoped: %+v", h)
	}
	// The tenant changes only the events of the admin's hook: the admin's
	// URL keeps the admin's rule. The admin sets the tenant hook's URL:
	// the rule is lifted.
	f.mustDo("PATCH", "/apps/mine/hooks/"+adminHook.ID, acme, `{"events":["release","released"]}`, 200)
	if h := hookOf(adminHook.ID); h.Scoped {
		t.Fatalf("a scoped token's change of events made the admin's hook scoped")
	}
	f.mustDo("PATCH", "/apps/mine/hooks/"+created.ID, admin, `{"url":"http://10.0.0.11/"}`, 200)
	if h := hookOf(created.ID); h.Scoped {
		t.Fatalf("the admin's URL kept the tenant's rule")
	}
	f.mustDo("PATCH", "/apps/mine/hooks/"+created.ID, acme, `{"url":"https://hooks.example.com/y"}`, 200)
	if h := hookOf(created.ID); !h.Scoped {
		t.Fatalf("a URL set by the tenant is not scoped")
	}
}
