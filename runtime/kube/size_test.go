package kube

import (
	"context"
	"testing"

	slipway "github.com/slipway/slipway"

	corev1 "k8s.io/api/core/v1"
)

// A formation's size becomes its container's resource requests and
// limits; the default size sets none, as before sizes.
func TestDeploy_SizeSetsContainerResources(t *testing.T) {
	h := newHarness(t, nil)
	worker := slipway.Formation{Type: "worker", Quantity: 1, Command: "w", Size: "gp2"}
	h.mustDeploy(release(1, "hello:v1", nil, web(1), worker))
	c := h.deployment(ns, "hello--worker").Spec.Template.Spec.Containers[0]
	for name, rl := range map[string]corev1.ResourceList{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
		if m, cpu := rl[corev1.ResourceMemory], rl[corev1.ResourceCPU]; m.String() != "512Mi" || cpu.String() != "500m" {
			t.Errorf("worker %s = memory %s, cpu %s; want 512Mi, 500m", name, m.String(), cpu.String())
		}
	}
	if r := h.deployment(ns, "hello--web").Spec.Template.Spec.Containers[0].Resources; len(r.Requests) != 0 || len(r.Limits) != 0 {
		t.Errorf("web (default size) resources = %+v", r)
	}
	// A new size rolls the Deployment with the new resources.
	worker.Size = "gp1"
	h.mustDeploy(release(1, "hello:v1", nil, web(1), worker))
	h.waitPods(2)
	c = h.deployment(ns, "hello--worker").Spec.Template.Spec.Containers[0]
	if m := c.Resources.Limits[corev1.ResourceMemory]; m.String() != "256Mi" {
		t.Errorf("worker memory limit after resizing = %s", m.String())
	}
}

// Restart of a process type restarts that type's Deployment only; a dyno
// named type.instance (as the API shows it) restarts that one pod.
func TestRestart_TypeAndTypeDotName(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(2), slipway.Formation{Type: "worker", Quantity: 1, Command: "w"}))
	before := h.waitPods(3)
	for _, d := range before {
		if d.Instance == "" || d.Name != "hello--"+d.Type+"-"+d.Instance {
			t.Errorf("dyno %s: instance %q", d.Name, d.Instance)
		}
	}
	if err := h.rt.Restart(context.Background(), appID, "web", nil); err != nil {
		t.Fatalf("Restart web: %v", err)
	}
	if _, ok := h.deployment(ns, "hello--web").Spec.Template.Annotations[AnnotationRestartedAt]; !ok {
		t.Error("web was not restarted")
	}
	if _, ok := h.deployment(ns, "hello--worker").Spec.Template.Annotations[AnnotationRestartedAt]; ok {
		t.Error("the worker was restarted too")
	}
	after := h.waitPods(3)
	var worker slipway.Dyno
	for _, d := range after {
		if d.Type == "worker" {
			worker = d
		}
	}
	if worker.ID != before[2].ID {
		t.Errorf("worker pod replaced: %s → %s", before[2].Name, worker.Name)
	}
	if err := h.rt.Restart(context.Background(), appID, "worker."+worker.Instance, nil); err != nil {
		t.Fatalf("Restart worker.%s: %v", worker.Instance, err)
	}
	for _, d := range h.waitPods(3) {
		if d.ID == worker.ID {
			t.Errorf("worker.%s survived its restart", worker.Instance)
		}
	}
	err := h.rt.Restart(context.Background(), appID, "clock", nil)
	wantError(t, err, slipway.ENotFound, `no dyno "clock"`)
}
