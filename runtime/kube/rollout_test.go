package kube

import (
	"context"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// After a stuck rollout is reverted to pods that are still available, the
// deployment controller (as in k8s-lab) says ProgressDeadlineExceeded for
// the reverted generation at once, measuring from its last progress long
// before, then finds the Deployment complete a step later. That early
// verdict must not fail the revert; the same condition once the deadline
// has passed since the change still fails the rollout.
func TestStep_EarlyProgressDeadlineExceeded_IsThePreviousTemplates(t *testing.T) {
	rt, err := New(Config{Client: fake.NewClientset(), HealthyDeadline: time.Minute, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rt.now = func() time.Time { return now }
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "hello--web", Namespace: ns, Generation: 3, Labels: map[string]string{LabelAppID: appID, LabelType: "web"}},
		Spec: appsv1.DeploymentSpec{
			Replicas:                ptr.To(int32(1)),
			ProgressDeadlineSeconds: ptr.To(int32(60)),
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{
				Labels: map[string]string{LabelVersion: "2"}, Annotations: map[string]string{AnnotationTemplate: "v2"}}},
		},
		// The reverted generation observed; the stuck v3 pod not yet gone.
		Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
				Message: `ReplicaSet "hello--web-5d8f" has timed out progressing.`}}},
	}
	target := newTarget("web", dep, nil)
	target.start, target.since = now, now
	rep := newReporter(nil, testLogger(), "")
	if err := rt.step(context.Background(), ns, target, dep, nil, rep); err != nil || target.done {
		t.Fatalf("a ProgressDeadlineExceeded seen right after the change: err %v, done %v; want neither", err, target.done)
	}
	now = now.Add(61 * time.Second)
	err = rt.step(context.Background(), ns, target, dep, nil, rep)
	wantError(t, err, slipway.EUnprocessable, "web: the rollout of v2 failed: no progress within the deadline of 60s (ProgressDeadlineExceeded)")
}
