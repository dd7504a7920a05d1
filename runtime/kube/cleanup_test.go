package kube

import (
	"testing"

	slipway "github.com/slipway/slipway"
)

// The Deployments of types left out of the formation are deleted (and
// reported) before Deploy returns, found in the informer's cache: no list
// of Deployments.
func TestDeploy_RemovedTypes_FromTheCache(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(1), slipway.Formation{Type: "clock", Quantity: 1, Command: "c"}))
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
