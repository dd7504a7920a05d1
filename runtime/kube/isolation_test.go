package kube

import (
	"context"
	"sort"
	"strings"
	"testing"

	slipway "github.com/slipway/slipway"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// secretRefs lists every Secret a pod spec can read: envFrom, env
// valueFrom, secret and projected volumes, image pull secrets, in init and
// app containers alike.
func secretRefs(spec corev1.PodSpec) []string {
	var out []string
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				out = append(out, e.SecretRef.Name)
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			out = append(out, v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					out = append(out, s.Secret.Name)
				}
			}
		}
	}
	for _, s := range spec.ImagePullSecrets {
		out = append(out, s.Name)
	}
	sort.Strings(out)
	return out
}

// Two apps in one namespace (the strictest setting: Config.Namespace maps
// every space to it), both with archive slugs and a release phase: every
// Deployment template, Job and pod of each reads only Secrets of its own
// app and release (its config and its slug token, minted for its own slug
// and release), no service account token, and no value of the other's
// config.
func TestDeploy_PodsGetOnlyTheirAppsSecrets(t *testing.T) {
	const shared = "tenants"
	h := newHarness(t, func(c *Config) {
		c.Namespace = func(string) string { return shared }
		c.SlugBaseImage = "heroku/heroku:24"
		c.SlugURL = func(slugID, releaseID string) (string, string) {
			return "http://slipway.example:5000/slugs/" + slugID + "/blob?release=" + releaseID, "token-for:" + slugID + "/" + releaseID
		}
	})
	world := slipway.AppRef{ID: "9d3e7a51-0b4c-4c1e-8f2a-3b5c7d9e1f20", Name: "world", Key: "world-other", Space: "other"}
	archive := func(app slipway.AppRef, v int, secret string) slipway.Desired {
		d := release(v, "", map[string]string{"DATABASE_URL": secret},
			slipway.Formation{Type: "web", Quantity: 1, Command: "bin/web"}, slipway.Formation{Type: "worker", Quantity: 1, Command: "bin/worker"})
		d.App = app
		d.Release.ID = app.Name + "-rel-" + d.Release.ID
		d.Slug.ID = app.Name + "-slug"
		d.Slug.ProcessTypes = map[string]string{"web": "bin/web", "worker": "bin/worker", "release": "bin/migrate"}
		return d
	}
	apps := map[string]slipway.Desired{
		appID:    archive(appRef(), 1, "postgres://hello-secret"),
		world.ID: archive(world, 1, "postgres://world-secret"),
	}
	for _, d := range apps {
		h.mustDeploy(d)
	}
	h.mustDeploy(archive(appRef(), 2, "postgres://hello-secret-2")) // an older release's Secrets stay around

	ctx := context.Background()
	secrets, err := h.cl.Clientset.CoreV1().Secrets(shared).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secretOf := map[string]corev1.Secret{}
	for _, s := range secrets.Items {
		secretOf[s.Name] = s
	}
	// check holds one pod spec, labelled with its app and release, to the rule.
	check := func(what string, labels map[string]string, spec corev1.PodSpec) {
		t.Helper()
		id, rel := labels[LabelAppID], labels[LabelRelease]
		d, ok := apps[id]
		if !ok || rel == "" {
			t.Errorf("%s: labels %v name no app or release of this test", what, labels)
			return
		}
		refs := secretRefs(spec)
		if len(refs) == 0 {
			t.Errorf("%s reads no Secret", what)
		}
		for _, name := range refs {
			s, ok := secretOf[name]
			if !ok {
				t.Errorf("%s reads the Secret %s, which does not exist", what, name)
				continue
			}
			if s.Labels[LabelAppID] != id || s.Labels[LabelRelease] != rel {
				t.Errorf("%s (app %s, release %s) reads the Secret %s of app %s, release %s", what, id, rel, name, s.Labels[LabelAppID], s.Labels[LabelRelease])
			}
			if tok, ok := s.Data["token"]; ok && string(tok) != "token-for:"+d.Slug.ID+"/"+rel {
				t.Errorf("%s downloads its slug with the token %q, not one for its own slug and release", what, tok)
			}
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s mounts a service account token, with which it could read other Secrets", what)
		}
		for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
			for _, e := range c.Env {
				for _, other := range apps {
					if other.App.ID != id && strings.Contains(e.Value, other.Config["DATABASE_URL"]) {
						t.Errorf("%s has %s=%q, the other app's config", what, e.Name, e.Value)
					}
				}
			}
		}
	}
	deps, err := h.cl.Clientset.AppsV1().Deployments(shared).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := h.cl.Clientset.BatchV1().Jobs(shared).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pods, err := h.cl.Clientset.CoreV1().Pods(shared).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != 4 || len(jobs.Items) != 3 || len(pods.Items) < 4 {
		t.Fatalf("%d Deployments, %d Jobs, %d pods; want 4, 3 and at least 4", len(deps.Items), len(jobs.Items), len(pods.Items))
	}
	for _, dep := range deps.Items {
		check("Deployment "+dep.Name, dep.Spec.Template.Labels, dep.Spec.Template.Spec)
	}
	for _, job := range jobs.Items {
		check("Job "+job.Name, job.Spec.Template.Labels, job.Spec.Template.Spec)
	}
	for _, pod := range pods.Items {
		check("pod "+pod.Name, pod.Labels, pod.Spec)
	}
}

// An app of another space whose objects would take the same names in a
// shared namespace cannot take over the first app's Secret: its release is
// refused and the first app's config is unchanged.
func TestDeploy_SecretOfAnotherApp_IsNotTakenOver(t *testing.T) {
	const shared = "tenants"
	h := newHarness(t, func(c *Config) { c.Namespace = func(string) string { return shared } })
	h.mustDeploy(release(1, "hello:v1", map[string]string{"DATABASE_URL": "postgres://hello-secret"}, web(1)))
	// "hello" of space "other": a cron type only, so no Deployment name
	// collides, but its config Secret would be hello--v1 too.
	twin := release(1, "hello:evil", map[string]string{"DATABASE_URL": "postgres://evil"}, slipway.Formation{Type: "cron", Quantity: 1, Command: "x"})
	twin.App = slipway.AppRef{ID: "5a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", Name: "hello", Key: "hello-other", Space: "other"}
	_, err := h.deploy(twin)
	wantError(t, err, slipway.EUnprocessable, "secret hello--v1 in namespace tenants belongs to another app")
	s, err := h.cl.Clientset.CoreV1().Secrets(shared).Get(context.Background(), "hello--v1", metav1.GetOptions{})
	if err != nil || string(s.Data["DATABASE_URL"]) != "postgres://hello-secret" || s.Labels[LabelAppID] != appID {
		t.Fatalf("hello--v1 after the twin's release: %v, data %q, app %s", err, s.Data, s.Labels[LabelAppID])
	}
	if h.exists("deployments", shared, "hello--cron") {
		t.Error("the twin's Deployment was created")
	}
}
