package slug

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/egress"
)

// TestBuild_Scoped_FetchesOnlyFromAllowedAddresses fetches from a loopback
// server only: an admin build gets there, a scoped build is refused as it
// dials (by address, by a name that resolves to loopback, and through a
// redirect), so the server never sees its request.
func TestBuild_Scoped_FetchesOnlyFromAllowedAddresses(t *testing.T) {
	archive := tarGz(t, []entry{procfile, exe("bin/server", "#!/bin/sh\n")})
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/redirect" {
			_, port, _ := net.SplitHostPort(r.Host)
			http.Redirect(w, r, "http://127.0.0.2:"+port+"/app.tgz", http.StatusFound)
			return
		}
		w.Write(archive)
	}))
	defer srv.Close()
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)
	only1 := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}

	tests := []struct {
		name    string
		b       *Builder
		url     string
		scoped  bool
		refused string // "" when the build succeeds
		hits    int32  // requests the server sees
	}{
		{"admin", &Builder{}, srv.URL + "/app.tgz", false, "", 1},
		{"scoped, loopback address", &Builder{}, srv.URL + "/app.tgz", true, "127.0.0.1 is a loopback address", 0},
		{"scoped, loopback name", &Builder{}, "http://localhost:" + port + "/app.tgz", true, "is a loopback address", 0},
		{"scoped, operator opened 127.0.0.1", &Builder{ScopedHTTPClient: only1.Client(10 * time.Second)}, srv.URL + "/app.tgz", true, "", 1},
		{"scoped, redirect past what the operator opened", &Builder{ScopedHTTPClient: only1.Client(10 * time.Second)}, srv.URL + "/redirect", true, "127.0.0.2 is a loopback address", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			var log logLines
			dir := filepath.Join(t.TempDir(), "slug")
			s, err := tt.b.Build(context.Background(), slipway.BuildSource{URL: tt.url, Scoped: tt.scoped}, dir, log.logf)
			if got := hits.Load(); got != tt.hits {
				t.Errorf("the server saw %d requests, want %d", got, tt.hits)
			}
			if tt.refused == "" {
				if err != nil || s.Checksum != sha(archive) {
					t.Fatalf("Build = %+v, %v", s, err)
				}
				return
			}
			msg := slipway.ErrorMessage(err)
			if slipway.ErrorCode(err) != slipway.EUnprocessable || !strings.Contains(msg, "was refused") || !strings.Contains(msg, tt.refused) ||
				!strings.Contains(msg, "only to public addresses") {
				t.Fatalf("Build error = %v, want a refusal saying %q and why", err, tt.refused)
			}
		})
	}
}
