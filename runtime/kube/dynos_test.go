package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

// Dynos are the app's pods, by type then age, with state, ready
// and release from the pod.
func TestDynos_ListsThePods(t *testing.T) {
	h := newHarness(t, nil)
	if ds := h.dynos(); len(ds) != 0 {
		t.Fatalf("dynos of an app never deployed: %v", ds)
	}
	h.mustDeploy(release(4, "hello:v4", nil, web(2), slipway.Formation{Type: "worker", Quantity: 1, Command: "bin/worker"}))
	ds := h.waitPods(3)
	types := []string{ds[0].Type, ds[1].Type, ds[2].Type}
	if strings.Join(types, ",") != "web,web,worker" {
		t.Errorf("order %v", types)
	}
	for _, d := range ds {
		if d.State != slipway.DynoRunning || !d.Ready || d.Release != (slipway.ReleaseRef{ID: "rel-4", Version: 4}) || d.ID == "" ||
			!strings.HasPrefix(d.Name, "hello--"+d.Type+"-") || d.CreatedAt.IsZero() || !strings.Contains(d.AdditionalInfo, "node fake-node-0") {
			t.Errorf("dyno %+v", d)
		}
	}
	if ds[2].Command != "bin/worker" {
		t.Errorf("worker command %q", ds[2].Command)
	}
	// By key too, and from a server that has not deployed the app (found by label).
	fresh := newRuntimeOn(t, h)
	for _, id := range []string{appID, "hello-default"} {
		got, err := h.rt.Dynos(context.Background(), id)
		if err != nil || len(got) != 3 {
			t.Errorf("Dynos(%q) = %d dynos, %v", id, len(got), err)
		}
	}
	if got, err := fresh.Dynos(context.Background(), appID); err != nil || len(got) != 3 {
		t.Errorf("a new server finds %d dynos, %v", len(got), err)
	}
}

// newRuntimeOn is another server's runtime on the same cluster.
func newRuntimeOn(t *testing.T, h *harness) *Runtime {
	rt, err := New(Config{Client: h.cl.Clientset, HealthyDeadline: time.Second, PollInterval: 2 * time.Millisecond, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// A restart of all dynos sets restartedAt on every template that
// has pods and replaces the pods; deploying the release again keeps it.
func TestRestart_All_RollsEveryDeployment(t *testing.T) {
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	h := newHarness(t, func(c *Config) { c.Now = func() time.Time { return now } })
	d := release(2, "hello:v2", nil, web(2), slipway.Formation{Type: "worker", Quantity: 0, Command: "w"})
	h.mustDeploy(d)
	before := h.waitPods(2)

	rec := &recorder{}
	if err := h.rt.Restart(context.Background(), appID, "", rec.fn); err != nil {
		t.Fatalf("Restart: %v\n%s", err, rec.lines())
	}
	dep := h.deployment(ns, "hello--web")
	if at := dep.Spec.Template.Annotations[AnnotationRestartedAt]; at != now.Format(time.RFC3339Nano) {
		t.Errorf("restartedAt %q", at)
	}
	if _, ok := h.deployment(ns, "hello--worker").Spec.Template.Annotations[AnnotationRestartedAt]; ok {
		t.Error("a type with no pods was restarted")
	}
	after := h.waitPods(2)
	for _, a := range after {
		for _, b := range before {
			if a.Name == b.Name {
				t.Errorf("pod %s survived the restart", a.Name)
			}
		}
	}
	if !rec.has(slipway.EventInfo, "web: restarting 2 pods of v2") || !rec.has(slipway.EventDone, "web: 2/2 on v2") {
		t.Errorf("events:\n%s", rec.lines())
	}
	// The engine deploys the current release again after a server restart:
	// that must not restart the pods again.
	gen := dep.Generation
	rec = h.mustDeploy(d)
	if g := h.deployment(ns, "hello--web").Generation; g != gen || strings.Contains(rec.lines(), "started") {
		t.Errorf("deploying the same release after a restart rolled again (generation %d → %d):\n%s", gen, g, rec.lines())
	}
}

// One dyno restarts by deleting its pod; the Deployment replaces it.
func TestRestart_OneDyno_ReplacesThePod(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(2)))
	before := h.waitPods(2)
	rec := &recorder{}
	if err := h.rt.Restart(context.Background(), appID, before[0].Name, rec.fn); err != nil {
		t.Fatalf("Restart: %v\n%s", err, rec.lines())
	}
	after := h.waitPods(2)
	names := after[0].Name + " " + after[1].Name
	if strings.Contains(names, before[0].Name) || !strings.Contains(names, before[1].Name) {
		t.Errorf("before %s %s, after %s", before[0].Name, before[1].Name, names)
	}
	if !rec.has(slipway.EventStopped, before[0].Name+" stopped (v1)") || !rec.has(slipway.EventStarted, "started on v1") || !rec.has(slipway.EventDone, "web: 2/2 on v1") {
		t.Errorf("events:\n%s", rec.lines())
	}
	// by uid too
	if err := h.rt.Restart(context.Background(), appID, after[0].ID, nil); err != nil {
		t.Fatal(err)
	}
}

func TestRestart_Unknown(t *testing.T) {
	h := newHarness(t, nil)
	err := h.rt.Restart(context.Background(), appID, "", nil)
	wantError(t, err, slipway.ENotFound, "has not been released yet")
	h.mustDeploy(release(1, "hello:v1", nil, web(1)))
	err = h.rt.Restart(context.Background(), appID, "web.9", nil)
	wantError(t, err, slipway.ENotFound, `no dyno "web.9"`)
}

// A restart whose new pods never get ready is reverted like a release.
func TestRestart_Fails_PutsTheTemplateBack(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(1)))
	h.waitPods(1)
	// Make the template's image one that never gets ready behind Slipway's
	// back, as if the registry lost it; the restart then cannot finish.
	ctx := context.Background()
	h.cl.Clientset.PrependReactor("update", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := a.(k8stesting.UpdateAction).GetObject().(*appsv1.Deployment)
		if d.Spec.Template.Annotations[AnnotationRestartedAt] != "" {
			d.Spec.Template.Spec.Containers[0].Image = "hello:never-ready"
		}
		return false, nil, nil
	})
	err := h.rt.Restart(ctx, appID, "", nil)
	wantError(t, err, slipway.EUnprocessable, "ProgressDeadlineExceeded", "back on v1")
	if img := h.deployment(ns, "hello--web").Spec.Template.Spec.Containers[0].Image; img != "hello:v1" {
		t.Errorf("image %s after the failed restart", img)
	}
}

// Remove deletes the app's Deployments, Service, Secrets and Jobs,
// nothing of another app, and never the namespace.
func TestRemove_DeletesWhatItCreatedOnly(t *testing.T) {
	h := newHarness(t, nil)
	d := release(1, "hello:v1", map[string]string{"A": "1"}, web(1), slipway.Formation{Type: "worker", Quantity: 1, Command: "w"})
	d.Slug.ProcessTypes["release"] = "bin/migrate"
	h.mustDeploy(d)
	other := release(1, "other:v1", nil, web(1))
	other.App = slipway.AppRef{ID: "7a7a7a7a-0000-4000-8000-000000000002", Name: "other", Key: "other-default", Space: "default"}
	h.mustDeploy(other)
	// Something in the namespace that is not Slipway's.
	ctx := context.Background()
	if _, err := h.cl.Clientset.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hand-made", Labels: map[string]string{LabelAppID: appID}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A new server (nothing in memory) removes the app found by its labels.
	if err := newRuntimeOn(t, h).Remove(ctx, appID); err != nil {
		t.Fatal(err)
	}
	for _, o := range [][2]string{{"deployments", "hello--web"}, {"deployments", "hello--worker"}, {"services", "hello"}, {"secrets", "hello--v1"}, {"jobs", "hello--release--v1"}} {
		if h.exists(o[0], ns, o[1]) {
			t.Errorf("%s %s is left", o[0], o[1])
		}
	}
	for _, o := range [][2]string{{"deployments", "other--web"}, {"services", "other"}, {"secrets", "other--v1"}, {"secrets", "hand-made"}} {
		if !h.exists(o[0], ns, o[1]) {
			t.Errorf("%s %s was deleted", o[0], o[1])
		}
	}
	if !h.exists("namespaces", "", ns) {
		t.Error("the namespace was deleted")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(h.dynos()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("pods left after Remove: %v", h.dynos())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := h.rt.Remove(ctx, appID); err != nil {
		t.Errorf("removing a removed app: %v", err)
	}
	if err := h.rt.Remove(ctx, "never-seen"); err != nil {
		t.Errorf("removing an unknown app: %v", err)
	}
}

// A refused API call fails the release with a message naming the
// verb and the resource; a namespaced service account that may not read
// namespaces still deploys into an existing one.
func TestRBAC_ForbiddenNamesVerbAndResource(t *testing.T) {
	tests := []struct {
		verb, resource string
		gr             schema.GroupResource
	}{
		{"create", "deployments", schema.GroupResource{Group: "apps", Resource: "deployments"}},
		{"update", "deployments", schema.GroupResource{Group: "apps", Resource: "deployments"}},
		{"create", "secrets", schema.GroupResource{Resource: "secrets"}},
		{"create", "services", schema.GroupResource{Resource: "services"}},
		{"list", "pods", schema.GroupResource{Resource: "pods"}},
		{"create", "namespaces", schema.GroupResource{Resource: "namespaces"}},
	}
	for _, tt := range tests {
		t.Run(tt.verb+" "+tt.resource, func(t *testing.T) {
			h := newHarness(t, nil)
			if tt.verb == "update" {
				h.mustDeploy(release(1, "hello:v1", nil, web(1)))
			}
			h.cl.Clientset.PrependReactor(tt.verb, tt.resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(tt.gr, "", errSA(tt.verb, tt.resource))
			})
			_, err := h.deploy(release(2, "hello:v2", nil, web(1)))
			wantError(t, err, slipway.EUnprocessable, "Kubernetes refused to "+tt.verb+" "+tt.resource,
				`lacks the RBAC permission to "`+tt.verb+`" "`+tt.resource+`"`, "runtime/kube/README.md")
		})
	}
}

func errSA(verb, resource string) error {
	return &forbiddenReason{msg: `User "system:serviceaccount:slipway:slipway" cannot ` + verb + ` resource "` + resource + `"`}
}

type forbiddenReason struct{ msg string }

func (f *forbiddenReason) Error() string { return f.msg }

func TestRBAC_NamespacedServiceAccount(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Namespace = func(string) string { return "apps" } })
	ctx := context.Background()
	if _, err := h.cl.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "apps"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	forbid := func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == "" { // cluster-scoped or all namespaces
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: a.GetResource().Resource}, "", errSA(a.GetVerb(), a.GetResource().Resource))
		}
		return false, nil, nil
	}
	h.cl.Clientset.PrependReactor("*", "*", forbid)
	h.mustDeploy(release(1, "hello:v1", nil, web(1)))
	h.waitPods(1)
	// A new server finds the app in the namespace of the default space,
	// without listing across namespaces.
	other, err := New(Config{Client: h.cl.Clientset, Namespace: func(string) string { return "apps" }, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if ds, err := other.Dynos(ctx, appID); err != nil || len(ds) != 1 {
		t.Errorf("dynos from a namespaced server: %v %v", ds, err)
	}
	if err := other.Remove(ctx, appID); err != nil || h.exists("deployments", "apps", "hello--web") {
		t.Errorf("remove from a namespaced server: %v", err)
	}
}

// The release phase runs once per release as a Job, before the rollout; a
// failure changes nothing else.
func TestReleasePhase(t *testing.T) {
	h := newHarness(t, nil)
	d := release(1, "hello:v1", map[string]string{"DB": "x"}, web(1))
	d.Slug.ProcessTypes["release"] = "bin/migrate"
	rec := h.mustDeploy(d)
	job, err := h.cl.Clientset.BatchV1().Jobs(ns).Get(context.Background(), "hello--release--v1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := job.Spec.Template.Spec.Containers[0]
	if strings.Join(c.Command, " ") != "/bin/sh -c bin/migrate" || c.Image != "hello:v1" || c.EnvFrom[0].SecretRef.Name != "hello--v1" ||
		job.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever || *job.Spec.BackoffLimit != 0 || *job.Spec.ActiveDeadlineSeconds != 600 {
		t.Errorf("job %+v", job.Spec)
	}
	lines := rec.lines()
	if !strings.Contains(lines, "release phase: running bin/migrate") || !strings.Contains(lines, "release phase finished") ||
		strings.Index(lines, "release phase finished") > strings.Index(lines, "rolling out v1") {
		t.Errorf("events:\n%s", lines)
	}
	// Not again for the running release (scaling, server restart).
	d.Formations = []slipway.Formation{web(2)}
	if rec := h.mustDeploy(d); strings.Contains(rec.lines(), "release phase") {
		t.Errorf("the release phase ran again:\n%s", rec.lines())
	}
	// A failing release command fails the release before anything changes.
	d2 := release(2, "hello:v2", nil, web(2))
	d2.Slug.ProcessTypes["release"] = "bin/migrate; exit 1"
	_, err = h.deploy(d2)
	wantError(t, err, slipway.EUnprocessable, "Release phase failed: the release command exited with status 1")
	if img := h.deployment(ns, "hello--web").Spec.Template.Spec.Containers[0].Image; img != "hello:v1" || h.exists("secrets", ns, "hello--v2") {
		t.Errorf("a failed release phase changed the app: image %s", img)
	}
}
