package kube

import (
	"context"
	"fmt"
	"testing"

	slipway "github.com/slipway/slipway"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
)

// The API server's load does not grow with the apps a namespace holds or
// with how often their dynos are read: one list and one watch of pods,
// Deployments and Jobs per namespace, whatever the number of rollouts;
// reading dynos makes no call at all.
func TestWatch_OneListAndWatchPerNamespace(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	ids := make([]string, 3)
	for i := range ids {
		for v := 1; v <= 2; v++ {
			d := release(v, fmt.Sprintf("app%d:v%d", i, v), nil, web(2))
			d.App = slipway.AppRef{ID: fmt.Sprintf("5e5e5e5e-0000-4000-8000-00000000000%d", i), Name: fmt.Sprintf("app%d", i), Key: fmt.Sprintf("app%d-default", i), Space: "default"}
			ids[i] = d.App.ID
			h.mustDeploy(d)
		}
	}
	h.settle() // the clean-ups after the releases make calls of their own
	calls := func() map[string]int {
		n := map[string]int{}
		for _, a := range h.cl.Clientset.Actions() {
			n[a.GetVerb()+" "+a.GetResource().Resource+" "+a.GetNamespace()]++
		}
		return n
	}
	before := calls()
	for _, res := range []string{"pods", "deployments", "jobs"} {
		if got := before["watch "+res+" "+ns]; got != 1 {
			t.Errorf("%d watches of %s for 6 rollouts of 3 apps, want 1", got, res)
		}
	}
	if got := before["list pods "+ns]; got != 1 {
		t.Errorf("%d lists of pods for 6 rollouts of 3 apps, want 1 (the informer's)", got)
	}
	n0 := len(h.cl.Clientset.Actions())
	for range 20 {
		for _, id := range ids {
			ds, err := h.rt.Dynos(ctx, id)
			if err != nil || len(ds) != 2 {
				t.Fatalf("Dynos(%s) = %v, %v", id, ds, err)
			}
		}
	}
	if got := len(h.cl.Clientset.Actions()) - n0; got != 0 {
		t.Errorf("reading dynos 60 times made %d API calls, want 0", got)
	}
	// /metrics counts every app's dynos from the same caches.
	total := 0
	for _, n := range h.rt.CountDynos() {
		total += n
	}
	if total != 6 {
		t.Errorf("CountDynos = %v; want 6 dynos in all", h.rt.CountDynos())
	}
	if got := len(h.cl.Clientset.Actions()) - n0; got != 0 {
		t.Errorf("counting dynos made %d API calls, want 0", got)
	}
}

// Reading the dynos of an app with nothing in the cluster asks the API
// server once, not on every read: a fleet of new apps polled by a
// dashboard does not list the whole cluster each time.
func TestDynos_AppNotInTheCluster_RemembersItsAbsence(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	const id = "5e5e5e5e-0000-4000-8000-00000000a5e7"
	n0 := len(h.cl.Clientset.Actions())
	for range 10 {
		if ds, err := h.rt.Dynos(ctx, id); err != nil || len(ds) != 0 {
			t.Fatalf("Dynos = %v, %v; want none", ds, err)
		}
	}
	if got := len(h.cl.Clientset.Actions()) - n0; got > 2 {
		t.Errorf("reading an absent app's dynos 10 times made %d API calls, want at most 2 (one search)", got)
	}
	d := release(1, "hello:v1", nil, web(1))
	d.App.ID = id
	h.mustDeploy(d)
	if ds, err := h.rt.Dynos(ctx, id); err != nil || len(ds) != 1 {
		t.Fatalf("after its Deploy, Dynos = %v, %v; want its one dyno", ds, err)
	}
}

// A service account that may list pods but not watch them (a Role written
// before the runtime watched) fails the release with a message naming the
// missing verb, instead of waiting on a cache that never changes.
func TestWatch_RefusedWatch_NamesTheVerb(t *testing.T) {
	h := newHarness(t, nil)
	h.cl.Clientset.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errSA("watch", "pods"))
	})
	_, err := h.deploy(release(1, "hello:v1", nil, web(1)))
	wantError(t, err, slipway.EUnprocessable, "Kubernetes refused to watch pods in namespace "+ns,
		`lacks the RBAC permission to "watch" "pods"`, "runtime/kube/README.md")
}
