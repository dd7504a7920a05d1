package api_test

import (
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
		if src := eng.last(); src.URL != tt.url || src.Scoped != tt.scoped {
			t.Errorf("%s: started %+v, want scoped %v", tt.url, src, tt.scoped)
		}
	}
}
