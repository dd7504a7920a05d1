package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

const ns = "slipway-default"

// Namespace, one Deployment per type, Service for web, labels,
// config in a per-release Secret referenced by the template.
func TestDeploy_CreatesNamespaceDeploymentsServiceAndSecret(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Surge, c.MaxUnavailable = 2, 1; c.HealthyDeadline = 90 * time.Second })
	d := release(1, "registry.example.com/hello:v1", map[string]string{"GREETING": "hi", "PORT": "1", "SLIPWAY_X": "no"},
		slipway.Formation{Type: "web", Quantity: 2, Healthcheck: "/health"},
		slipway.Formation{Type: "worker", Quantity: 1, Command: "bin/worker --queue default"},
		slipway.Formation{Type: "release", Quantity: 1}, // the release phase: never a Deployment
	)
	rec := h.mustDeploy(d)

	nsObj, err := h.cl.Clientset.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
	if err != nil || nsObj.Labels[LabelManaged] != "true" {
		t.Fatalf("namespace %s: %v, labels %v", ns, err, nsObj.GetLabels())
	}
	if !rec.has(slipway.EventInfo, "namespace slipway-default created") {
		t.Errorf("no namespace event:\n%s", rec.lines())
	}

	dep := h.deployment(ns, "hello--web")
	wantLabels := map[string]string{LabelApp: "hello", LabelAppID: appID, LabelRelease: "rel-1", LabelVersion: "1", LabelType: "web", LabelManaged: "true", LabelSpace: "default"}
	for k, v := range wantLabels {
		if dep.Labels[k] != v || dep.Spec.Template.Labels[k] != v {
			t.Errorf("label %s: deployment %q, template %q, want %q", k, dep.Labels[k], dep.Spec.Template.Labels[k], v)
		}
	}
	if sel := dep.Spec.Selector.MatchLabels; len(sel) != 2 || sel[LabelAppID] != appID || sel[LabelType] != "web" {
		t.Errorf("selector %v", sel)
	}
	if *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %d", *dep.Spec.Replicas)
	}
	// Strategy, probe, deadline.
	ru := dep.Spec.Strategy.RollingUpdate
	if dep.Spec.Strategy.Type != "RollingUpdate" || ru.MaxSurge.IntValue() != 2 || ru.MaxUnavailable.IntValue() != 1 {
		t.Errorf("strategy %+v", dep.Spec.Strategy)
	}
	if ptr.Deref(dep.Spec.ProgressDeadlineSeconds, 0) != 90 {
		t.Errorf("progressDeadlineSeconds %v", dep.Spec.ProgressDeadlineSeconds)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.Image != "registry.example.com/hello:v1" || c.Command != nil || len(dep.Spec.Template.Spec.InitContainers) != 0 {
		t.Errorf("container: image %q command %q init %v", c.Image, c.Command, dep.Spec.Template.Spec.InitContainers)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health" || p.HTTPGet.Port.IntValue() != DefaultPort {
		t.Errorf("web probe %+v", p)
	}
	env := envOf(c)
	for k, v := range map[string]string{"PORT": "5000", "DYNO": "fieldRef:metadata.name", "SLIPWAY_RELEASE_VERSION": "1", "SLIPWAY_RELEASE_ID": "rel-1", "SLIPWAY_APP": "hello"} {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != "hello--v1" {
		t.Errorf("envFrom %+v", c.EnvFrom)
	}

	worker := h.deployment(ns, "hello--worker")
	wc := worker.Spec.Template.Spec.Containers[0]
	if wc.ReadinessProbe != nil || len(wc.Ports) != 0 || strings.Join(wc.Command, " ") != "/bin/sh -c bin/worker --queue default" {
		t.Errorf("worker container: probe %+v ports %v command %q", wc.ReadinessProbe, wc.Ports, wc.Command)
	}
	if h.exists("deployments", ns, "hello--release") {
		t.Error("the release type got a Deployment")
	}

	sec, err := h.cl.Clientset.CoreV1().Secrets(ns).Get(context.Background(), "hello--v1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(sec.Data["GREETING"]) != "hi" || len(sec.Data) != 1 || !ptr.Deref(sec.Immutable, false) || sec.Labels[LabelRelease] != "rel-1" {
		t.Errorf("secret data %v immutable %v labels %v", sec.Data, sec.Immutable, sec.Labels)
	}

	svc, err := h.cl.Clientset.CoreV1().Services(ns).Get(context.Background(), "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Selector[LabelType] != "web" || svc.Spec.Selector[LabelAppID] != appID || svc.Spec.Ports[0].Port != 80 || svc.Spec.Ports[0].TargetPort.IntValue() != DefaultPort {
		t.Errorf("service %+v", svc.Spec)
	}

	for _, want := range []string{"web: 2/2 on v1", "worker: 1/1 on v1"} {
		if !rec.has(slipway.EventDone, want) {
			t.Errorf("no done event %q:\n%s", want, rec.lines())
		}
	}
	if !rec.has(slipway.EventStarted, "started on v1") || !rec.has(slipway.EventHealthy, "is ready (v1") {
		t.Errorf("no pod events:\n%s", rec.lines())
	}
}

// Archive slugs run on the base image, downloaded by an init
// container that presents the release's token.
func TestDeploy_ArchiveSlug_InitContainerDownloadsTheSlug(t *testing.T) {
	var gotSlug, gotRelease string
	h := newHarness(t, func(c *Config) {
		c.SlugBaseImage = "heroku/heroku:24"
		c.SlugURL = func(slugID, releaseID string) (string, string) {
			gotSlug, gotRelease = slugID, releaseID
			return "http://slipway.example:5000/slugs/" + slugID + "/blob", "tok-" + releaseID
		}
	})
	d := release(3, "", nil, slipway.Formation{Type: "web", Quantity: 1, Port: 8080, Command: "bin/web"})
	d.Slug.ProcessTypes = map[string]string{"web": "bin/web"}
	h.mustDeploy(d)
	if gotSlug != "slug-3" || gotRelease != "rel-3" {
		t.Errorf("SlugURL(%q, %q)", gotSlug, gotRelease)
	}
	spec := h.deployment(ns, "hello--web").Spec.Template.Spec
	c := spec.Containers[0]
	if c.Image != "heroku/heroku:24" || c.WorkingDir != "/app" || strings.Join(c.Command, " ") != "/bin/sh -c bin/web" {
		t.Errorf("container %q in %q runs %q", c.Image, c.WorkingDir, c.Command)
	}
	if envOf(c)["PORT"] != "8080" || c.ReadinessProbe.TCPSocket == nil || c.ReadinessProbe.TCPSocket.Port.IntValue() != 8080 {
		t.Errorf("port: env %v probe %+v", envOf(c)["PORT"], c.ReadinessProbe)
	}
	if len(spec.InitContainers) != 1 {
		t.Fatalf("init containers %+v", spec.InitContainers)
	}
	ic := spec.InitContainers[0]
	if ic.Image != "heroku/heroku:24" || !strings.Contains(ic.Command[2], `Authorization: Bearer $SLIPWAY_SLUG_TOKEN`) || !strings.Contains(ic.Command[2], "tar -xzf") {
		t.Errorf("init container %+v", ic)
	}
	if env := envOf(ic); env["SLIPWAY_SLUG_TOKEN"] != "secret:hello--v3--slug/token" || env["SLIPWAY_SLUG_URL"] != "secret:hello--v3--slug/url" {
		t.Errorf("init env %v", env)
	}
	if len(spec.Volumes) != 1 || spec.Volumes[0].EmptyDir == nil || ic.VolumeMounts[0].MountPath != "/app" || c.VolumeMounts[0].MountPath != "/app" {
		t.Errorf("volumes %+v", spec.Volumes)
	}
	sec, err := h.cl.Clientset.CoreV1().Secrets(ns).Get(context.Background(), "hello--v3--slug", metav1.GetOptions{})
	if err != nil || string(sec.Data["token"]) != "tok-rel-3" {
		t.Fatalf("slug secret %v %v", sec, err)
	}
	// The token is not in the app's environment.
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != "hello--v3" {
		t.Errorf("the dyno's envFrom %+v", c.EnvFrom)
	}
}

func TestDeploy_ArchiveSlug_WithoutBaseImage(t *testing.T) {
	h := newHarness(t, nil)
	d := release(1, "", nil, web(1))
	_, err := h.deploy(d)
	wantError(t, err, slipway.EUnprocessable, "slug base image", "docker://")
	if h.exists("namespaces", "", ns) {
		t.Error("a refused desired state changed the cluster")
	}
}

// A slug download that fails crash-loops the init container: reported as
// such, and the app goes back.
func TestDeploy_ArchiveSlug_DownloadFails(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.SlugBaseImage = "base-slug-fail"
		c.SlugURL = func(s, r string) (string, string) { return "http://x/slugs/" + s + "/blob", "t" }
	})
	d := release(1, "", nil, slipway.Formation{Type: "web", Quantity: 1, Command: "bin/web"})
	_, err := h.deploy(d)
	wantError(t, err, slipway.EUnprocessable, "cannot download its slug", "exited with code 22", "401")
}

// A new release rolls out pod by pod, old pods stop, config
// comes from the new Secret; types no longer desired are deleted, quantity
// 0 scales to 0.
func TestDeploy_NewRelease_RollsOutAndCleansUp(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", map[string]string{"A": "1"}, web(3),
		slipway.Formation{Type: "worker", Quantity: 1, Command: "w"},
		slipway.Formation{Type: "clock", Quantity: 1, Command: "c"}))
	old := h.waitPods(5)

	rec := h.mustDeploy(release(2, "hello:v2", map[string]string{"A": "2"}, web(3),
		slipway.Formation{Type: "worker", Quantity: 0, Command: "w"}))
	dep := h.deployment(ns, "hello--web")
	if dep.Spec.Template.Spec.Containers[0].Image != "hello:v2" || dep.Spec.Template.Labels[LabelVersion] != "2" || dep.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name != "hello--v2" {
		t.Errorf("web template not on v2: %+v", dep.Spec.Template)
	}
	if !strings.Contains(dep.Annotations[changeCause], "v2") {
		t.Errorf("change-cause %q", dep.Annotations[changeCause])
	}
	if w := h.deployment(ns, "hello--worker"); *w.Spec.Replicas != 0 {
		t.Errorf("worker replicas %d, want 0", *w.Spec.Replicas)
	}
	if h.exists("deployments", ns, "hello--clock") {
		t.Error("clock is not in the formation any more but its Deployment is left")
	}
	if !h.exists("secrets", ns, "hello--v1") || !h.exists("secrets", ns, "hello--v2") {
		t.Error("the secrets of v1 and v2 should both be kept")
	}
	ds := h.waitPods(3)
	for _, d := range ds {
		if d.Release.Version != 2 || d.Type != "web" {
			t.Errorf("dyno %+v", d)
		}
	}
	for _, o := range old {
		if o.Type == "web" && !rec.has(slipway.EventStopped, o.Name+" stopped (v1)") {
			t.Errorf("no stopped event for %s:\n%s", o.Name, rec.lines())
		}
	}
	for _, want := range []string{"rolling out v2 to 3 pods, replacing v1 (surge 1, max unavailable 0)", "clock: no longer in the formation"} {
		if !strings.Contains(rec.lines(), want) {
			t.Errorf("no event %q:\n%s", want, rec.lines())
		}
	}
	if !rec.has(slipway.EventDone, "web: 3/3 on v2") || !rec.has(slipway.EventDone, "worker: 0/0 on v2") {
		t.Errorf("done events:\n%s", rec.lines())
	}
}

// Deploying the running release with other quantities only scales.
func TestDeploy_SameRelease_Scales(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(1)))
	first := h.waitPods(1)
	gen := h.deployment(ns, "hello--web").Generation

	rec := h.mustDeploy(release(1, "hello:v1", nil, web(3)))
	ds := h.waitPods(3)
	if ds[0].Name != first[0].Name {
		t.Errorf("scaling replaced the running pod: %v then %v", first, ds)
	}
	dep := h.deployment(ns, "hello--web")
	if dep.Generation != gen+1 || *dep.Spec.Replicas != 3 {
		t.Errorf("generation %d (was %d), replicas %d", dep.Generation, gen, *dep.Spec.Replicas)
	}
	if !rec.has(slipway.EventInfo, "web: scaling v1 from 1 to 3 pods") || !rec.has(slipway.EventDone, "web: 3/3 on v1") {
		t.Errorf("events:\n%s", rec.lines())
	}
	if strings.Count(rec.lines(), "started on v1") != 2 {
		t.Errorf("want 2 started events (the running pod is not new):\n%s", rec.lines())
	}
	rec = h.mustDeploy(release(1, "hello:v1", nil, web(3)))
	if strings.Contains(rec.lines(), "started") || h.deployment(ns, "hello--web").Generation != gen+1 {
		t.Errorf("deploying the same state again changed something:\n%s", rec.lines())
	}
}

// A rollout that never gets ready fails on ProgressDeadlineExceeded
// and the previous template comes back.
func TestDeploy_StuckRollout_RevertsToThePreviousTemplate(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", map[string]string{"A": "1"}, web(2)))
	before := h.waitPods(2)

	start := time.Now()
	rec, err := h.deploy(release(2, "hello:never-ready", map[string]string{"A": "2"}, web(2)))
	wantError(t, err, slipway.EUnprocessable, "web: the rollout of v2 failed", "ProgressDeadlineExceeded", "is still Pending (ContainerCreating)",
		"The previous pod template was put back: the app is back on v1.")
	if took := time.Since(start); took < time.Second {
		t.Errorf("failed after %s, before the 1s progress deadline", took)
	}
	dep := h.deployment(ns, "hello--web")
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "hello:v1" || dep.Spec.Template.Labels[LabelRelease] != "rel-1" {
		t.Errorf("template after revert: %s %v", img, dep.Spec.Template.Labels)
	}
	if h.exists("secrets", ns, "hello--v2") || !h.exists("secrets", ns, "hello--v1") {
		t.Error("after the revert the v2 secret should be gone and v1's kept")
	}
	after := h.waitPods(2)
	for i := range after {
		if after[i].Name != before[i].Name || after[i].Release.Version != 1 {
			t.Errorf("the v1 pods did not keep running: before %v after %v", before, after)
		}
	}
	for _, want := range []string{"putting the pod template of v1 back", "web: 2/2 on v1"} {
		if !strings.Contains(rec.lines(), want) {
			t.Errorf("no event %q:\n%s", want, rec.lines())
		}
	}
	if !rec.has(slipway.EventFailed, "ProgressDeadlineExceeded") {
		t.Errorf("no failed event:\n%s", rec.lines())
	}
}

// Pods that cannot start fail the release at once, with the reason.
func TestDeploy_FailingPods_FailFastWithTheReason(t *testing.T) {
	tests := []struct {
		name  string
		image string
		f     slipway.Formation
		parts []string
	}{
		{"crash loop", "hello:crash-loop", web(2), []string{"is crash-looping: it exited with code 1, restarted 2 times"}},
		{"image pull", "registry.example.com/hello:pull-error", web(1), []string{"cannot pull its image registry.example.com/hello:pull-error", "ImagePullBackOff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.HealthyDeadline = time.Minute })
			h.mustDeploy(release(1, "hello:v1", nil, web(2)))
			start := time.Now()
			_, err := h.deploy(release(2, tt.image, nil, tt.f))
			wantError(t, err, slipway.EUnprocessable, append(tt.parts, "web: the rollout of v2 failed: pod hello--web-", "back on v1")...)
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %s: a failing pod should not wait for the deadline", took)
			}
			if img := h.deployment(ns, "hello--web").Spec.Template.Spec.Containers[0].Image; img != "hello:v1" {
				t.Errorf("image after revert %s", img)
			}
			h.waitPods(2)
		})
	}
}

// A failing readiness probe is named with the probe and the
// kubelet's message when the deadline passes.
func TestDeploy_FailingProbe_NamesTheProbe(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, slipway.Formation{Type: "web", Quantity: 1, Healthcheck: "/health"}))
	_, err := h.deploy(release(2, "hello:unready", nil, slipway.Formation{Type: "web", Quantity: 1, Healthcheck: "/health"}))
	wantError(t, err, slipway.EUnprocessable, "is Running but not ready: its readiness probe (HTTP GET /health on port 5000) fails",
		"Readiness probe failed: HTTP probe failed with statuscode: 503", "back on v1")
}

// The first release of an app has nothing to go back to: its Deployments
// and Service are deleted.
func TestDeploy_FirstReleaseFails_DeletesWhatItCreated(t *testing.T) {
	h := newHarness(t, nil)
	_, err := h.deploy(release(1, "hello:crash-loop", map[string]string{"A": "1"}, web(1), slipway.Formation{Type: "worker", Quantity: 1, Command: "w"}))
	wantError(t, err, slipway.EUnprocessable, "is crash-looping", "There is no previous release to go back to: the new Deployments were deleted.")
	for _, o := range [][2]string{{"deployments", "hello--web"}, {"deployments", "hello--worker"}, {"services", "hello"}, {"secrets", "hello--v1"}} {
		if h.exists(o[0], ns, o[1]) {
			t.Errorf("%s %s is left after the failed first release", o[0], o[1])
		}
	}
	if !h.exists("namespaces", "", ns) {
		t.Error("the namespace must stay")
	}
}

// Only the types that changed roll back; a type added by the failed
// release is deleted.
func TestDeploy_Failure_DeletesNewTypesAndRevertsScale(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(1)))
	_, err := h.deploy(release(2, "hello:never-ready", nil, web(3), slipway.Formation{Type: "worker", Quantity: 1, Command: "w"}))
	wantError(t, err, slipway.EUnprocessable, "back on v1", "The new Deployment(s) hello--worker were deleted.")
	if h.exists("deployments", ns, "hello--worker") {
		t.Error("the worker Deployment created by the failed release is left")
	}
	if r := *h.deployment(ns, "hello--web").Spec.Replicas; r != 1 {
		t.Errorf("web replicas after revert %d, want 1", r)
	}
}

// A cause whose message has no full stop of its own (here the API
// server's) still reads as sentences once the revert adds its own.
func TestDeploy_Failure_CauseWithoutFullStop(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(1)))
	quota := "exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1"
	h.cl.Clientset.PrependReactor("create", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "hello--worker", errors.New(quota))
	})
	_, err := h.deploy(release(2, "hello:v2", nil, web(1), slipway.Formation{Type: "worker", Quantity: 1, Command: "w"}))
	wantError(t, err, slipway.EUnprocessable, "limited: pods=1. The previous pod template was put back: the app is back on v1.")
}

// A Deployment of the same name that Slipway does not own is not touched.
func TestDeploy_ForeignObject_IsRefused(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(1)))
	other := release(1, "other:v1", nil, web(1))
	other.App = slipway.AppRef{ID: "9f9f9f9f-0000-4000-8000-000000000001", Name: "hello", Key: "hello-staging", Space: "staging"}
	// Both spaces map to one namespace, as with a namespaced service account.
	h.rt.cfg.Namespace = func(string) string { return ns }
	_, err := h.deploy(other)
	wantError(t, err, slipway.EUnprocessable, "deployment hello--web in namespace slipway-default belongs to another app (hello, id "+appID+")")
	if img := h.deployment(ns, "hello--web").Spec.Template.Spec.Containers[0].Image; img != "hello:v1" {
		t.Errorf("the other app's Deployment was changed: %s", img)
	}
}

func TestDeploy_InvalidDesiredState(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name  string
		mod   func(*slipway.Desired)
		parts string
	}{
		{"two types one name", func(d *slipway.Desired) {
			d.Formations = []slipway.Formation{{Type: "a_b", Quantity: 1, Command: "x"}, {Type: "a-b", Quantity: 1, Command: "y"}}
		}, "both map to the Deployment hello--a-b"},
		{"bad healthcheck", func(d *slipway.Desired) {
			d.Formations = []slipway.Formation{{Type: "web", Quantity: 1, Healthcheck: "health"}}
		}, "healthcheck of web"},
		{"bad app name", func(d *slipway.Desired) { d.App.Name = "Hello" }, "cannot name Kubernetes objects"},
		{"long namespace", func(d *slipway.Desired) { d.App.Space = strings.Repeat("s", 60) }, "not a valid Kubernetes namespace name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := release(1, "hello:v1", nil, web(1))
			tt.mod(&d)
			_, err := h.deploy(d)
			wantError(t, err, slipway.EUnprocessable, tt.parts)
		})
	}
	if acts := h.cl.Clientset.Actions(); len(acts) != 0 {
		t.Errorf("a refused desired state made %d API calls", len(acts))
	}
}

// The engine's deadline (or shutdown) ends a rollout with an error that
// errors.Is finds, after putting the previous template back.
func TestDeploy_ContextEnds_KeepsTheCauseAndReverts(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.HealthyDeadline = time.Minute })
	h.mustDeploy(release(1, "hello:v1", nil, web(1)))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := h.rt.Deploy(ctx, release(2, "hello:never-ready", nil, web(1)), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want DeadlineExceeded in the chain, got %v", err)
	}
	if slipway.ErrorCode(err) != slipway.EUnprocessable || !strings.Contains(slipway.ErrorMessage(err), "were put back") {
		t.Errorf("error %v", err)
	}
	if img := h.deployment(ns, "hello--web").Spec.Template.Spec.Containers[0].Image; img != "hello:v1" {
		t.Errorf("image %s after a cancelled rollout, want hello:v1", img)
	}
}

// Rollbacks restore the config of the release they go back to: every
// template references its own release's Secret.
func TestDeploy_Rollback_RestoresConfig(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", map[string]string{"A": "one"}, web(1)))
	h.mustDeploy(release(2, "hello:v2", map[string]string{"A": "two"}, web(1)))
	// A rollback is a new release (v3) with v1's slug and config.
	d := release(3, "hello:v1", map[string]string{"A": "one"}, web(1))
	h.mustDeploy(d)
	c := h.deployment(ns, "hello--web").Spec.Template.Spec.Containers[0]
	sec, err := h.cl.Clientset.CoreV1().Secrets(ns).Get(context.Background(), c.EnvFrom[0].SecretRef.Name, metav1.GetOptions{})
	if err != nil || string(sec.Data["A"]) != "one" || c.Image != "hello:v1" {
		t.Errorf("after rollback: image %s secret %v %v", c.Image, sec, err)
	}
}

// Secrets and Jobs of releases older than RevisionHistory are deleted.
func TestDeploy_KeepsTheLastSecrets(t *testing.T) {
	h := newHarness(t, nil)
	for v := 1; v <= RevisionHistory+3; v++ {
		h.mustDeploy(release(v, "hello:v1", map[string]string{"V": "x"}, web(1)))
	}
	h.settle()
	last := RevisionHistory + 3
	for v := 1; v <= last; v++ {
		want := v >= last-RevisionHistory
		if got := h.exists("secrets", ns, secretName("hello", v)); got != want {
			t.Errorf("secret of v%d exists %v, want %v", v, got, want)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	cl := newHarness(t, nil).cl.Clientset
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no client", Config{}, "Client is required"},
		{"both zero", Config{Client: cl, Surge: 0, MaxUnavailable: 0}, "cannot both be 0"},
		{"negative", Config{Client: cl, Surge: -1, MaxUnavailable: 1}, "must not be negative"},
		{"base image without url", Config{Client: cl, Surge: 1, SlugBaseImage: "x"}, "go together"},
		{"ok", Config{Client: cl, Surge: 1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	rt, err := New(Config{Client: cl})
	if err != nil || rt.cfg.Surge != 1 || rt.cfg.MaxUnavailable != 0 || rt.cfg.HealthyDeadline != time.Minute || rt.cfg.Namespace("prod") != "slipway-prod" {
		t.Errorf("defaults: %v %+v", err, rt.cfg)
	}
}

func TestPodState(t *testing.T) {
	now := metav1.Now()
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	tests := []struct {
		name      string
		pod       corev1.Pod
		wantState string
		wantInfo  string
	}{
		{"ready", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{State: running}}}}, slipway.DynoRunning, ""},
		{"running not ready", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{State: running}}}}, slipway.DynoStarting, "not ready"},
		{"creating", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending,
			ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}}, slipway.DynoStarting, "ContainerCreating"},
		{"crash loop", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, RestartCount: 3}}}}, slipway.DynoCrashed, "is crash-looping, restarted 3 times"},
		{"exited", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137}}}}}}, slipway.DynoCrashed, "exited with code 137"},
		{"terminating", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}, slipway.DynoStopping, "terminating"},
		{"succeeded", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, slipway.DynoStopped, "exited"},
		{"evicted", corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "low on memory"}}, slipway.DynoCrashed, "Evicted low on memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state, info := podState(&tt.pod)
			if state != tt.wantState || info != tt.wantInfo {
				t.Errorf("podState = %q, %q; want %q, %q", state, info, tt.wantState, tt.wantInfo)
			}
		})
	}
}
