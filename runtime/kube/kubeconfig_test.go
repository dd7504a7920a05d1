package kube

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestNewFromKubeconfig_WrapSeesEveryRequest: the transport wrapper the
// server counts API requests with is on the path of the client's calls.
func TestNewFromKubeconfig_WrapSeesEveryRequest(t *testing.T) {
	path := fakeAPIServer(t)
	var n atomic.Int64
	kc, err := NewFromKubeconfig(path, ClientOptions{Wrap: func(next http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			n.Add(1)
			return next.RoundTrip(r)
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := kc.Discovery().ServerVersion(); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Load(); got != 3 {
		t.Fatalf("the wrapper saw %d requests, want 3", got)
	}
}

// TestNewFromKubeconfig_RateIsTheOptions: --kube-qps and --kube-burst
// bound the client: with a burst of 1 at 10 a second, 4 requests take at
// least 0.3 s (the default rate sends them at once).
func TestNewFromKubeconfig_RateIsTheOptions(t *testing.T) {
	path := fakeAPIServer(t)
	kc, err := NewFromKubeconfig(path, ClientOptions{QPS: 10, Burst: 1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 4 {
		if _, err := kc.Discovery().ServerVersion(); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 290*time.Millisecond {
		t.Errorf("4 requests at 10 a second with a burst of 1 took %s, want at least 0.3 s", took)
	}
}

// fakeAPIServer answers /version and returns a kubeconfig naming it.
func fakeAPIServer(t *testing.T) string {
	t.Helper()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"major":"1","minor":"37","gitVersion":"v1.37.2"}`))
	}))
	t.Cleanup(api.Close)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kubeconfig := `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: ` + api.URL + `}
users:
- name: u
  user: {token: t}
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
`
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
