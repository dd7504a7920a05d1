package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/runtime/kube/kubefake"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// harness is a runtime on a fake cluster whose controllers run.
type harness struct {
	t  *testing.T
	cl *kubefake.Cluster
	rt *Runtime
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	cl := kubefake.New(2 * time.Millisecond)
	t.Cleanup(cl.Close)
	cfg := Config{
		Client:          cl.Clientset,
		HealthyDeadline: time.Second,
		PollInterval:    2 * time.Millisecond,
		Logger:          testLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() }) // before the cluster's Close: cleanups run last first
	return &harness{t: t, cl: cl, rt: rt}
}

func testLogger() *slog.Logger {
	if os.Getenv("SLIPWAY_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// recorder collects progress events.
type recorder struct {
	mu     sync.Mutex
	events []slipway.ProgressEvent
}

func (r *recorder) fn(ev slipway.ProgressEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) lines() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, ev := range r.events {
		fmt.Fprintf(&b, "%s %s: %s\n", ev.Type, ev.Dyno, ev.Message)
	}
	return b.String()
}

// has reports whether an event of the type has a message containing s.
func (r *recorder) has(typ, s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if ev.Type == typ && strings.Contains(ev.Message, s) {
			return true
		}
	}
	return false
}

const appID = "0c4b1a3e-5f1d-4d2a-9d0e-1f2a3b4c5d6e"

func appRef() slipway.AppRef {
	return slipway.AppRef{ID: appID, Name: "hello", Key: "hello-default", Space: "default"}
}

// release is a desired state of the app "hello" in space "default" at
// version v, running image (docker://) with the formations.
func release(v int, image string, config map[string]string, fs ...slipway.Formation) slipway.Desired {
	return slipway.Desired{
		App:        appRef(),
		Release:    slipway.ReleaseRef{ID: fmt.Sprintf("rel-%d", v), Version: v},
		Slug:       slipway.Slug{ID: fmt.Sprintf("slug-%d", v), Image: image, ProcessTypes: map[string]string{"web": ""}},
		Config:     config,
		Formations: fs,
	}
}

func web(q int) slipway.Formation { return slipway.Formation{Type: "web", Quantity: q} }

func (h *harness) deploy(d slipway.Desired) (*recorder, error) {
	h.t.Helper()
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := h.rt.Deploy(ctx, d, rec.fn)
	return rec, err
}

// settle waits for the clean-ups still running after releases of h.rt
// (collectLater): each holds its app's lock until it is done.
func (h *harness) settle() {
	h.t.Helper()
	settle(h.t, h.rt)
}

func settle(t *testing.T, rt *Runtime) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt.mu.Lock()
	apps := make([]*app, 0, len(rt.apps))
	for _, a := range rt.apps {
		apps = append(apps, a)
	}
	rt.mu.Unlock()
	for _, a := range apps {
		if err := a.acquire(ctx); err != nil {
			t.Fatalf("the clean-up after a release of app %s has not finished: %v", a.id, err)
		}
		a.release()
	}
}

func (h *harness) mustDeploy(d slipway.Desired) *recorder {
	h.t.Helper()
	rec, err := h.deploy(d)
	if err != nil {
		h.t.Fatalf("Deploy v%d: %v\nevents:\n%s", d.Release.Version, err, rec.lines())
	}
	return rec
}

func (h *harness) deployment(ns, name string) *appsv1.Deployment {
	h.t.Helper()
	d, err := h.cl.Clientset.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatalf("get deployment %s/%s: %v", ns, name, err)
	}
	return d
}

func (h *harness) exists(resource, ns, name string) bool {
	h.t.Helper()
	ctx := context.Background()
	var err error
	switch resource {
	case "deployments":
		_, err = h.cl.Clientset.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	case "services":
		_, err = h.cl.Clientset.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	case "secrets":
		_, err = h.cl.Clientset.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	case "jobs":
		_, err = h.cl.Clientset.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	case "namespaces":
		_, err = h.cl.Clientset.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	default:
		h.t.Fatalf("exists: unknown resource %s", resource)
	}
	if err != nil && !isNotFound(err) {
		h.t.Fatalf("get %s %s/%s: %v", resource, ns, name, err)
	}
	return err == nil
}

// dynos lists the app's dynos, failing the test on an error.
func (h *harness) dynos() []slipway.Dyno {
	h.t.Helper()
	ds, err := h.rt.Dynos(context.Background(), appID)
	if err != nil {
		h.t.Fatal(err)
	}
	return ds
}

// waitPods waits until the app runs exactly n pods, all ready.
func (h *harness) waitPods(n int) []slipway.Dyno {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ds := h.dynos()
		ready := 0
		for _, d := range ds {
			if d.Ready {
				ready++
			}
		}
		if len(ds) == n && ready == n {
			return ds
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("want %d ready pods, have %+v", n, ds)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantError checks that err is an *slipway.Error of the code whose message
// holds every part.
func wantError(t *testing.T, err error, code string, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got none", code)
	}
	var se *slipway.Error
	if !errors.As(err, &se) || se.Code != code {
		t.Fatalf("want a %s error, got %v", code, err)
	}
	for _, p := range parts {
		if !strings.Contains(se.Message, p) {
			t.Errorf("error message lacks %q:\n%s", p, se.Message)
		}
	}
	if m := unjoined.FindString(se.Message); m != "" {
		t.Errorf("a sentence of the error message does not end in a full stop before %q:\n%s", m, se.Message)
	}
}

// unjoined finds a sentence the revert adds to a cause that does not end
// in a full stop.
var unjoined = regexp.MustCompile(`[^.!?] (The previous pod template|The pod templates|The new Deployment|Reverting failed too|There is no previous release)`)

func envOf(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			m[e.Name] = "fieldRef:" + e.ValueFrom.FieldRef.FieldPath
		} else if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			m[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		} else {
			m[e.Name] = e.Value
		}
	}
	return m
}
