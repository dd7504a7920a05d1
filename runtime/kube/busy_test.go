package kube

import (
	"testing"
	"time"

	slipway "github.com/slipway/slipway"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	k8stesting "k8s.io/client-go/testing"
)

func quickBusyBackoff(t *testing.T) {
	old := busyBackoff
	busyBackoff = wait.Backoff{Duration: 5 * time.Millisecond, Factor: 2, Steps: 4}
	t.Cleanup(func() { busyBackoff = old })
}

// An API server too loaded to answer in time (as 100 releases at once
// made k8s-lab's) slows a release down; it does not fail it.
func TestDeploy_APIServerTimeouts_AreRetried(t *testing.T) {
	quickBusyBackoff(t)
	h := newHarness(t, nil)
	timeouts := 0
	h.cl.Clientset.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		if timeouts < 2 {
			timeouts++
			return true, nil, apierrors.NewTimeoutError("request did not complete within requested timeout", 0)
		}
		return false, nil, nil
	})
	h.mustDeploy(release(1, "hello:v1", nil, web(2)))
	if timeouts != 2 {
		t.Fatalf("the Service creation timed out %d times, want 2 before it went through", timeouts)
	}
}

// One that stays overloaded fails the release after the retries, with the
// API server's message; a refusal is not retried at all.
func TestDeploy_APIServerStaysBusy_FailsWithItsMessage(t *testing.T) {
	quickBusyBackoff(t)
	h := newHarness(t, nil)
	calls := 0
	h.cl.Clientset.PrependReactor("create", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		return true, nil, apierrors.NewTimeoutError("request did not complete within requested timeout", 0)
	})
	_, err := h.deploy(release(1, "hello:v1", nil, web(1)))
	wantError(t, err, slipway.EUnprocessable, "Kubernetes could not create services", "request did not complete within requested timeout")
	if calls != busyBackoff.Steps {
		t.Errorf("%d attempts, want %d", calls, busyBackoff.Steps)
	}
}
