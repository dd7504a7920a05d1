package local

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slipway/slipway/internal/testslug"
)

func TestRouter_UnknownHostAndNoReadyDyno(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	// An app with only a worker is known to the router but has no web dyno.
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(0), formation("worker", 1)))
	tests := []struct {
		name     string
		host     string
		wantCode int
		wantBody string
	}{
		{"unknown app", "nope-default.localhost", 404, `No app is routed at host "nope-default.localhost"`},
		{"other domain", f.app.Key + ".example.com", 404, "No app is routed at host"},
		{"bare domain", "localhost:80", 404, "No app is routed at host"},
		{"no ready dyno", f.app.Key + ".localhost", 503, "No web dyno of app " + f.app.Key + " is ready; check `GET /apps/" + f.app.Key + "/dynos`."},
		{"case and port", strings.ToUpper(f.app.Key) + ".LOCALHOST:5080", 503, "No web dyno of app " + f.app.Key},
		{"long host", strings.Repeat("h", 1<<20) + ".localhost", 404, `No app is routed at host "` + strings.Repeat("h", 64) + `…"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Host = tt.host
			w := httptest.NewRecorder()
			f.rt.Router().ServeHTTP(w, req)
			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), tt.wantBody) || w.Body.Len() > 1024 {
				t.Errorf("%.80s: %d %.300q, want %d with %q", tt.host, w.Code, w.Body, tt.wantCode, tt.wantBody)
			}
		})
	}
}

func TestRouter_ForwardsHeadersAndBody(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(1)))
	// The test app has no echo endpoint; check what the proxy sends with
	// a dyno whose address points at a recording server.
	var got *http.Request
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = r
		w.Write(b)
	}))
	defer rec.Close()
	d := (*f.rt.findApp(f.app.ID).routes.Load())[0]
	addr := rec.Listener.Addr().String()
	d.addr.Store(&addr)

	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/echo", strings.NewReader("payload"))
	req.Host = f.app.Key + ".localhost"
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Real-IP", "6.6.6.6")
	req.Header.Set("Forwarded", "for=6.6.6.6")
	res, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "payload" {
		t.Errorf("body = %q", body)
	}
	if got.Host != f.app.Key+".localhost" || got.Header.Get("X-Forwarded-Host") != f.app.Key+".localhost" ||
		got.Header.Get("X-Forwarded-Proto") != "http" || got.Header.Get("X-Forwarded-For") != "127.0.0.1" {
		t.Errorf("upstream saw Host %q, headers %v", got.Host, got.Header)
	}
	if got.Header.Get("X-Real-Ip") != "127.0.0.1" || len(got.Header.Values("X-Real-Ip")) != 1 || got.Header.Get("Forwarded") != "" {
		t.Errorf("upstream saw X-Real-IP %q, Forwarded %q; want the router's own 127.0.0.1 and none", got.Header.Values("X-Real-Ip"), got.Header.Values("Forwarded"))
	}
	if n := d.inflight.Load(); n != 0 {
		t.Errorf("in flight after the answer = %d", n)
	}
}

// A request whose connection is refused goes to another ready dyno.
func TestRouter_RetriesRefusedConnection(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.mustDeploy(f.desired(1, testslug.UnpackedSlug(t, procfile), web(2)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	routes := *f.rt.findApp(f.app.ID).routes.Load()
	routes[0].addr.Store(&dead)
	for range 10 {
		if body := f.mustGet("/"); !strings.Contains(body, "dyno="+routes[1].name) {
			t.Errorf("answer %q, want it from %s", body, routes[1].name)
		}
	}
	// A body that cannot be replayed is not retried.
	for range 4 {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/", io.NopCloser(strings.NewReader(strings.Repeat("x", 100<<10))))
		req.Host = f.app.Key + ".localhost"
		req.ContentLength = -1
		res, err := f.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadGateway && res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("streamed POST: %d", res.StatusCode)
		}
	}
	for _, d := range routes {
		if n := d.inflight.Load(); n != 0 {
			t.Errorf("%s in flight = %d", d.name, n)
		}
	}
}

func TestRouter_AppKey(t *testing.T) {
	t.Parallel()
	rt := &router{suffix: ".apps.example.com"}
	for host, want := range map[string]string{
		"hello-default.apps.example.com":      "hello-default",
		"HELLO-default.Apps.Example.com:5080": "hello-default",
		"hello-default.apps.example.com.":     "hello-default",
		"a.b.apps.example.com":                "",
		"apps.example.com":                    "",
		".apps.example.com":                   "",
		"hello-default.apps.example.com.evil": "",
		"[::1]:80":                            "",
	} {
		if got, _ := rt.appKey(host); got != want {
			t.Errorf("appKey(%q) = %q, want %q", host, got, want)
		}
	}
}

// Recycling a copy buffer costs no allocation once the pool has one.
func TestRouter_BufferPoolDoesNotAllocate(t *testing.T) {
	p := newBufferPool()
	p.Put(p.Get())
	if n := testing.AllocsPerRun(100, func() { p.Put(p.Get()) }); n != 0 {
		t.Errorf("Get+Put allocates %.1f times", n)
	}
	if b := p.Get(); len(b) != 32<<10 {
		t.Errorf("buffer of %d bytes", len(b))
	}
	p.Put(make([]byte, 10)) // too small: dropped, not a panic
}
