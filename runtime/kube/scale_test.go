package kube_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/runtime/kube"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestScale_APIRequestsPerMinute counts the requests the runtime sends to
// a real API server with many apps (SLIPWAY_K8S_SCALE_APPS, default 100)
// in one space, the way a server runs them:
//
//   - release: v1 of every app at once (the engine runs apps in parallel);
//   - idle: nothing asked for SLIPWAY_K8S_SCALE_IDLE (default 1m);
//   - idle, scraped: the same time with the dynos of every app read every
//     15s, as a Prometheus scrape of /metrics does (slipway_dynos);
//   - release again: v2 of every app at once (a rolling update each).
//
// It runs when SLIPWAY_K8S_SCALE=1 and SLIPWAY_TEST_KUBECONFIG names an
// admin kubeconfig (k8s-lab: see README.md); it prints its figures with
// -v. The client has the server's settings (NewFromKubeconfig: 50 QPS,
// burst 100) and counts with a RoundTripper around its transport. It uses
// only the exported API, so the same file measures an older runtime.
func TestScale_APIRequestsPerMinute(t *testing.T) {
	if os.Getenv("SLIPWAY_K8S_SCALE") == "" {
		t.Skip("SLIPWAY_K8S_SCALE is not set: skipping the API request count with many apps (runtime/kube/README.md says how to run it)")
	}
	path := os.Getenv("SLIPWAY_TEST_KUBECONFIG")
	if path == "" {
		t.Fatal("SLIPWAY_K8S_SCALE needs SLIPWAY_TEST_KUBECONFIG: an admin kubeconfig of the cluster to measure against")
	}
	apps := 100
	if s := os.Getenv("SLIPWAY_K8S_SCALE_APPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("SLIPWAY_K8S_SCALE_APPS=%q: want a number of apps", s)
		}
		apps = n
	}
	idle := time.Minute
	if s := os.Getenv("SLIPWAY_K8S_SCALE_IDLE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("SLIPWAY_K8S_SCALE_IDLE=%q: want a duration", s)
		}
		idle = d
	}
	const scrape = 15 * time.Second

	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := kubernetes.NewForConfig(rc) // set-up and clean-up, not counted
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingTransport{calls: map[string]int{}}
	rc.QPS, rc.Burst, rc.UserAgent = 50, 100, "slipway" // as NewFromKubeconfig
	rc.Wrap(func(next http.RoundTripper) http.RoundTripper { counted.next = next; return counted })
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := kube.New(kube.Config{Client: kc, HealthyDeadline: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := any(rt).(io.Closer); ok {
		defer c.Close()
	}

	space := "scale-" + hexID(3)
	t.Cleanup(func() {
		admin.CoreV1().Namespaces().Delete(context.Background(), "slipway-"+space, metav1.DeleteOptions{})
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	refs := make([]slipway.AppRef, apps)
	for i := range refs {
		name := fmt.Sprintf("app%03d", i)
		refs[i] = slipway.AppRef{ID: uuid.NewString(), Name: name, Key: name + "-" + space, Space: space}
	}
	releaseAll := func(v int) {
		var wg sync.WaitGroup
		errs := make(chan error, apps)
		for _, ref := range refs {
			wg.Go(func() {
				d := slipway.Desired{
					App:        ref,
					Release:    slipway.ReleaseRef{ID: uuid.NewString(), Version: v},
					Slug:       slipway.Slug{ID: uuid.NewString(), Image: fmt.Sprintf("registry.example.com/%s:v%d", ref.Name, v), ProcessTypes: map[string]string{"web": ""}},
					Config:     map[string]string{"V": strconv.Itoa(v)},
					Formations: []slipway.Formation{{Type: "web", Quantity: 1}},
				}
				if err := rt.Deploy(ctx, d, nil); err != nil {
					errs <- fmt.Errorf("%s v%d: %w", ref.Name, v, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	readDynos := func() {
		for _, ref := range refs {
			if _, err := rt.Dynos(ctx, ref.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	sleep := func(d time.Duration) {
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(d):
		}
	}

	var report strings.Builder
	fmt.Fprintf(&report, "%d apps, 1 web pod each, in namespace slipway-%s\n", apps, space)
	fmt.Fprintf(&report, "%-22s %9s %9s %9s  %s\n", "phase", "seconds", "requests", "per min", "top calls")
	phase := func(name string, run func()) {
		before := counted.snapshot()
		start := time.Now()
		run()
		took := time.Since(start)
		diff := counted.since(before)
		total := 0
		for _, n := range diff {
			total += n
		}
		fmt.Fprintf(&report, "%-22s %9.1f %9d %9.0f  %s\n", name, took.Seconds(), total, float64(total)/took.Minutes(), top(diff, 5))
	}
	phase("release v1", func() { releaseAll(1) })
	phase("idle", func() { sleep(idle) })
	phase("idle, dynos every 15s", func() {
		end := time.Now().Add(idle)
		for time.Now().Before(end) {
			next := time.Now().Add(scrape)
			readDynos()
			sleep(time.Until(next))
		}
	})
	phase("release v2", func() { releaseAll(2) })
	t.Log("\n" + report.String())
}

// countingTransport counts the requests that go through it by verb and
// resource ("list pods", "watch deployments", "update deployments").
type countingTransport struct {
	next  http.RoundTripper
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.calls[classify(req)]++
	c.mu.Unlock()
	return c.next.RoundTrip(req)
}

func (c *countingTransport) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

func (c *countingTransport) since(before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range c.snapshot() {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// classify names a request to the API server by verb and resource.
func classify(req *http.Request) string {
	segs := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	var rest []string
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		rest = segs[2:]
	case len(segs) >= 3 && segs[0] == "apis":
		rest = segs[3:]
	default:
		return req.Method + " " + req.URL.Path
	}
	if len(rest) > 2 && rest[0] == "namespaces" {
		rest = rest[2:]
	}
	if len(rest) == 0 {
		return req.Method + " " + req.URL.Path
	}
	resource := rest[0]
	if len(rest) > 2 {
		resource += "/" + rest[2]
	}
	named := len(rest) > 1
	verb := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodPatch: "patch", http.MethodDelete: "delete"}[req.Method]
	if req.Method == http.MethodGet {
		switch w := req.URL.Query().Get("watch"); {
		case w == "true" || w == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	}
	return verb + " " + resource
}

// top is the n most frequent calls, "list pods 1200, get deployments 100".
func top(calls map[string]int, n int) string {
	keys := make([]string, 0, len(calls))
	for k := range calls {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if calls[keys[i]] != calls[keys[j]] {
			return calls[keys[i]] > calls[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > n {
		keys = keys[:n]
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, calls[k])
	}
	return strings.Join(parts, ", ")
}

func hexID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
