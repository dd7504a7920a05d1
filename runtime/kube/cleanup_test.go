package kube

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/util/watchlist"
)

// gate holds the clean-up after a release: once armed, the first list of
// Secrets in the app's namespace waits until open is called or its
// context ends (later ones pass). It wraps the runtime's client rather
// than adding a reactor: the fake clientset holds its lock while a
// reactor runs, which would block every other call.
type gate struct {
	entered chan struct{} // closed when the list has started waiting
	release chan struct{}
	mu      sync.Mutex
	armed   bool
	used    bool
	blocked bool // the list is waiting
}

// newGatedHarness is a harness whose runtime lists Secrets through g.
func newGatedHarness(t *testing.T) (*harness, *gate) {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	h := newHarness(t, func(c *Config) { c.Client = gatedClient{c.Client, g} })
	t.Cleanup(g.open) // never leave a clean-up (and Close) hanging
	return h, g
}

func (g *gate) arm() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.armed = true
}

func (g *gate) wait(ctx context.Context, namespace string) error {
	g.mu.Lock()
	first := g.armed && !g.used && namespace == ns
	if first {
		g.used, g.blocked = true, true
		close(g.entered)
	}
	g.mu.Unlock()
	if !first {
		return nil
	}
	defer func() {
		g.mu.Lock()
		g.blocked = false
		g.mu.Unlock()
	}()
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

func (g *gate) isBlocked() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocked
}

// waitEntered waits until the clean-up is held at the gate.
func (g *gate) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no clean-up listed the Secrets")
	}
}

type gatedClient struct {
	kubernetes.Interface
	g *gate
}

// IsWatchListSemanticsUnSupported passes on what the fake clientset says,
// so that the informers do not ask it for a streaming list it cannot give.
func (c gatedClient) IsWatchListSemanticsUnSupported() bool {
	return watchlist.DoesClientNotSupportWatchListSemantics(c.Interface)
}

func (c gatedClient) CoreV1() corev1client.CoreV1Interface {
	return gatedCore{c.Interface.CoreV1(), c.g}
}

type gatedCore struct {
	corev1client.CoreV1Interface
	g *gate
}

func (c gatedCore) Secrets(ns string) corev1client.SecretInterface {
	return gatedSecrets{c.CoreV1Interface.Secrets(ns), c.g, ns}
}

type gatedSecrets struct {
	corev1client.SecretInterface
	g  *gate
	ns string
}

func (s gatedSecrets) List(ctx context.Context, opts metav1.ListOptions) (*corev1.SecretList, error) {
	if err := s.g.wait(ctx, s.ns); err != nil {
		return nil, err
	}
	return s.SecretInterface.List(ctx, opts)
}

// releasePhase is release(v) with a release phase, so that each release
// leaves a Job.
func releasePhase(v int) slipway.Desired {
	d := release(v, "hello:v1", map[string]string{"V": "x"}, web(1))
	d.Slug.ProcessTypes["release"] = "bin/migrate"
	return d
}

// deployWithin runs Deploy in the background and fails the test if it has
// not returned within the deadline (it must not wait for a clean-up that
// the test holds).
func (h *harness) deployWithin(d slipway.Desired, within time.Duration) error {
	h.t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := h.deploy(d)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		h.t.Fatalf("Deploy v%d has not returned after %s", d.Release.Version, within)
		return nil
	}
}

// cleanUpHeld deploys v1 to vlast of an app with a release phase, so that
// v1 falls out of the window kept, and returns once Deploy of vlast has
// returned and its clean-up is held in its List of Secrets.
func cleanUpHeld(t *testing.T) (h *harness, g *gate, last int) {
	t.Helper()
	h, g = newGatedHarness(t)
	last = RevisionHistory + 2
	for v := 1; v < last; v++ {
		h.mustDeploy(releasePhase(v))
	}
	h.settle()
	g.arm()
	if err := h.deployWithin(releasePhase(last), 10*time.Second); err != nil {
		t.Fatalf("Deploy v%d: %v", last, err)
	}
	g.waitEntered(t)
	return h, g, last
}

// Deploy returns once the rollout is done: deleting the Secrets and Jobs
// of old releases happens after it, and happens even so.
func TestDeploy_ReturnsBeforeTheCleanUp(t *testing.T) {
	h, g, last := cleanUpHeld(t)
	if !h.exists("secrets", ns, secretName("hello", 1)) || !h.exists("jobs", ns, jobName("hello", 1)) {
		t.Fatal("v1's Secret or Job is gone while the clean-up is held")
	}
	g.open()
	h.settle()
	for v := 1; v <= last; v++ {
		want := v >= last-RevisionHistory
		if got := h.exists("secrets", ns, secretName("hello", v)); got != want {
			t.Errorf("secret of v%d exists %v, want %v", v, got, want)
		}
		if got := h.exists("jobs", ns, jobName("hello", v)); got != want {
			t.Errorf("job of v%d exists %v, want %v", v, got, want)
		}
	}
}

// The next Deploy of the app waits for the clean-up after the previous
// one: they never run at the same time.
func TestDeploy_NextDeployWaitsForTheCleanUp(t *testing.T) {
	h, g, last := cleanUpHeld(t)
	var (
		mu      sync.Mutex
		overlap bool // a call of the next Deploy came while the clean-up was held
	)
	h.cl.Clientset.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) {
		if g.isBlocked() {
			mu.Lock()
			overlap = true
			mu.Unlock()
		}
		return false, nil, nil
	})

	next := make(chan error, 1)
	go func() {
		_, err := h.deploy(releasePhase(last + 1))
		next <- err
	}()
	// A Deploy that may wait only so long gives up on the app's lock
	// before it has made a call.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	n0 := len(h.cl.Clientset.Actions())
	if err := h.rt.Deploy(ctx, releasePhase(last+1), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deploy during the clean-up = %v, want it to wait for the app's lock until its deadline", err)
	}
	if n := len(h.cl.Clientset.Actions()); n != n0 {
		t.Errorf("Deploys waiting for the clean-up made %d API calls", n-n0)
	}
	select {
	case err := <-next:
		t.Fatalf("Deploy v%d returned (%v) while the clean-up after v%d was held", last+1, err, last)
	default:
	}
	g.open()
	select {
	case err := <-next:
		if err != nil {
			t.Fatalf("Deploy v%d: %v", last+1, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Deploy v%d has not returned after the clean-up", last+1)
	}
	mu.Lock()
	defer mu.Unlock()
	if overlap {
		t.Error("the next Deploy ran while the clean-up after the previous one was held")
	}
	h.settle()
	if h.exists("secrets", ns, secretName("hello", 1)) || h.exists("secrets", ns, secretName("hello", 2)) {
		t.Error("the secrets of v1 and v2 are left")
	}
}

// Close cancels a clean-up still running and returns once it has
// stopped; a server that stopped (or crashed) before its clean-up leaves
// nothing for good: the next release's clean-up deletes it too.
func TestClose_StopsTheCleanUp_TheNextReleaseDoesIt(t *testing.T) {
	h, g, last := cleanUpHeld(t)
	// The clean-up's list waits (as a slow API server's would) until its
	// context ends: Close ends it, and returns once it has stopped.
	closed := make(chan struct{})
	go func() {
		h.rt.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close has not returned: it did not stop the clean-up, or waits for it for ever")
	}
	if g.isBlocked() {
		t.Error("Close returned while the clean-up was still running")
	}
	if !h.exists("secrets", ns, secretName("hello", 1)) || !h.exists("jobs", ns, jobName("hello", 1)) {
		t.Error("the cancelled clean-up went on deleting")
	}

	// Another server (or this one restarted) releases next.
	rt := newRuntimeOn(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := rt.Deploy(ctx, releasePhase(last+1), nil); err != nil {
		t.Fatal(err)
	}
	settle(t, rt)
	for v := 1; v <= last+1; v++ {
		want := v >= last+1-RevisionHistory
		if got := h.exists("secrets", ns, secretName("hello", v)); got != want {
			t.Errorf("secret of v%d exists %v, want %v", v, got, want)
		}
		if got := h.exists("jobs", ns, jobName("hello", v)); got != want {
			t.Errorf("job of v%d exists %v, want %v", v, got, want)
		}
	}
}

// The Deployments of types left out of the formation are deleted (and
// reported) before Deploy returns, found in the informer's cache: no list
// of Deployments.
func TestDeploy_RemovedTypes_FromTheCache(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(1), slipway.Formation{Type: "clock", Quantity: 1, Command: "c"}))
	h.settle()
	lists := func() int {
		n := 0
		for _, a := range h.cl.Clientset.Actions() {
			if a.GetVerb() == "list" && a.GetResource().Resource == "deployments" {
				n++
			}
		}
		return n
	}
	n0 := lists()
	rec := h.mustDeploy(release(2, "hello:v2", nil, web(1)))
	if h.exists("deployments", ns, "hello--clock") {
		t.Error("the clock Deployment is left after Deploy returned")
	}
	if !rec.has(slipway.EventStopped, "clock: no longer in the formation; Deployment hello--clock deleted") {
		t.Errorf("no stopped event:\n%s", rec.lines())
	}
	if n := lists() - n0; n != 0 {
		t.Errorf("Deploy listed Deployments %d times, want none (the cache has them)", n)
	}
}
