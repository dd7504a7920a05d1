package kube

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestIntegration runs the runtime against a real API server with real
// controllers: k8s-lab (kwok: pods get Ready without running; an image
// whose name contains "never-ready" stays Pending), kind, k3s or any
// cluster. It runs when SLIPWAY_TEST_KUBECONFIG names a kubeconfig whose
// user may create namespaces, RBAC objects and impersonate service accounts
// (an admin); see README.md. Unset, it skips, except in CI (CI set), where
// it fails; an API server it cannot reach fails it anywhere. Everything it
// creates is in one new namespace, deleted at the end.
func TestIntegration(t *testing.T) {
	path := os.Getenv("SLIPWAY_TEST_KUBECONFIG")
	if path == "" && os.Getenv("CI") != "" {
		t.Fatal("CI must run the Kubernetes integration test, but SLIPWAY_TEST_KUBECONFIG is not set " +
			"(.ci/run sets it once k8s-lab is up)")
	}
	if path == "" {
		t.Skip("SLIPWAY_TEST_KUBECONFIG is not set: skipping the Kubernetes integration test " +
			"(runtime/kube/README.md says how to run it against k8s-lab, kind, k3s or any cluster)")
	}
	// Images are never pulled on kwok. On a cluster that runs containers,
	// SLIPWAY_TEST_IMAGE must have /bin/sh and serve HTTP on $PORT (with
	// SLIPWAY_TEST_WEB_COMMAND as the web command, e.g. python:3-alpine and
	// 'exec python3 -m http.server $PORT'); without a tag, v1 and v2 are
	// appended as tags.
	image := os.Getenv("SLIPWAY_TEST_IMAGE")
	if image == "" {
		image = "registry.example.com/slipway/hello"
	}
	webCmd := os.Getenv("SLIPWAY_TEST_WEB_COMMAND")
	deadline := 15 * time.Second
	if s := os.Getenv("SLIPWAY_TEST_HEALTHY_DEADLINE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("SLIPWAY_TEST_HEALTHY_DEADLINE: %v", err)
		}
		deadline = d
	}
	admin, err := NewFromKubeconfig(path, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := admin.Discovery().ServerVersion(); err != nil {
		t.Fatalf("no API server at SLIPWAY_TEST_KUBECONFIG=%s: %v", path, err)
	}

	space := "it-" + randHex(3)
	ns := "slipway-" + space
	t.Cleanup(func() {
		if os.Getenv("SLIPWAY_TEST_KEEP") != "" {
			t.Logf("kept namespace %s", ns)
			return
		}
		admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
		admin.CoreV1().Namespaces().Delete(context.Background(), ns+"-rbac", metav1.DeleteOptions{})
	})
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	rt, err := New(Config{Client: admin, HealthyDeadline: deadline, PollInterval: 250 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	app := slipway.AppRef{ID: newUUID(), Name: "hello", Key: "hello-" + space, Space: space}
	rel := func(v int, img string, fs ...slipway.Formation) slipway.Desired {
		return slipway.Desired{
			App:        app,
			Release:    slipway.ReleaseRef{ID: newUUID(), Version: v},
			Slug:       slipway.Slug{ID: newUUID(), Image: img, ProcessTypes: map[string]string{"web": ""}},
			Config:     map[string]string{"GREETING": "v" + string(rune('0'+v))},
			Formations: fs,
		}
	}
	deploy := func(d slipway.Desired) (*recorder, error) {
		rec := &recorder{}
		start := time.Now()
		err := rt.Deploy(ctx, d, rec.fn)
		t.Logf("Deploy v%d (%s) took %s, err %v\n%s", d.Release.Version, d.Slug.Image, time.Since(start).Round(time.Millisecond), err, rec.lines())
		return rec, err
	}
	waitDynos := func(n, version int) []slipway.Dyno {
		t.Helper()
		end := time.Now().Add(2 * time.Minute)
		for {
			ds, err := rt.Dynos(ctx, app.ID)
			if err != nil {
				t.Fatal(err)
			}
			ok := len(ds) == n
			for _, d := range ds {
				ok = ok && d.Ready && d.State == slipway.DynoRunning && d.Release.Version == version
			}
			if ok {
				return ds
			}
			if time.Now().After(end) {
				t.Fatalf("want %d running dynos of v%d, have %+v", n, version, ds)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	tag := func(v string) string {
		if strings.Contains(image[strings.LastIndex(image, "/")+1:], ":") || strings.Contains(image, "@") {
			return image
		}
		return image + ":" + v
	}
	worker := slipway.Formation{Type: "worker", Quantity: 1, Command: "sleep 100000"}

	// Release v1: namespace, Deployments, Service, Secret.
	v1 := rel(1, tag("v1"), slipway.Formation{Type: "web", Quantity: 2, Healthcheck: "/", Command: webCmd}, worker)
	if _, err := deploy(v1); err != nil {
		t.Fatalf("release v1: %v", err)
	}
	waitDynos(3, 1)
	nsObj, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || nsObj.Labels[LabelManaged] != "true" {
		t.Errorf("namespace %s: %v %v", ns, err, nsObj.GetLabels())
	}
	for _, name := range []string{"hello"} {
		if _, err := admin.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}

	// Scale: the same release, more web pods, no new template.
	v1.Formations[0].Quantity = 3
	if rec, err := deploy(v1); err != nil || !rec.has(slipway.EventInfo, "scaling v1 from 2 to 3") {
		t.Fatalf("scale: %v", err)
	}
	waitDynos(4, 1)

	// Release v2: a new image and config, rolled out pod by pod.
	v2 := rel(2, tag("v2"), slipway.Formation{Type: "web", Quantity: 3, Healthcheck: "/", Command: webCmd}, worker)
	rec, err := deploy(v2)
	if err != nil {
		t.Fatalf("release v2: %v", err)
	}
	if !rec.has(slipway.EventStopped, "stopped (v1)") || !rec.has(slipway.EventDone, "web: 3/3 on v2") {
		t.Errorf("v2 events:\n%s", rec.lines())
	}
	before := waitDynos(4, 2)

	// Restart: every pod is replaced.
	if err := rt.Restart(ctx, app.ID, "", nil); err != nil {
		t.Fatalf("restart: %v", err)
	}
	after := waitDynos(4, 2)
	for _, a := range after {
		for _, b := range before {
			if a.Name == b.Name {
				t.Errorf("pod %s survived the restart", a.Name)
			}
		}
	}
	if err := rt.Restart(ctx, app.ID, after[0].Name, nil); err != nil {
		t.Fatalf("restart %s: %v", after[0].Name, err)
	}
	waitDynos(4, 2)

	// A stuck rollout fails on ProgressDeadlineExceeded and goes back to v2
	// (on a cluster that pulls images, the image does not exist: the pull
	// error fails it first). Both types run the image, so either can be
	// the one that times out first.
	stuck := rel(3, "registry.example.com/slipway/never-ready:v3", slipway.Formation{Type: "web", Quantity: 3, Healthcheck: "/", Command: webCmd}, worker)
	_, err = deploy(stuck)
	wantError(t, err, slipway.EUnprocessable, ": the rollout of v3 failed", "the app is back on v2")
	if msg := slipway.ErrorMessage(err); !strings.HasPrefix(msg, "web: ") && !strings.HasPrefix(msg, "worker: ") {
		t.Errorf("the error does not name the type that failed: %s", msg)
	}
	if msg := slipway.ErrorMessage(err); !strings.Contains(msg, "ProgressDeadlineExceeded") && !strings.Contains(msg, "cannot pull its image") {
		t.Errorf("the stuck rollout failed for another reason: %s", msg)
	}
	dep, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello--web", metav1.GetOptions{})
	if err != nil || dep.Spec.Template.Labels[LabelVersion] != "2" {
		t.Fatalf("after the failed v3: %v, template %v", err, dep.Spec.Template.Labels)
	}
	waitDynos(4, 2)

	// The release phase runs as a Job before the rollout.
	v4 := rel(4, tag("v2"), slipway.Formation{Type: "web", Quantity: 1, Healthcheck: "/", Command: webCmd})
	v4.Slug.ProcessTypes["release"] = "echo migrated"
	rec, err = deploy(v4)
	if err != nil {
		t.Fatalf("release v4 with a release phase: %v", err)
	}
	if !rec.has(slipway.EventInfo, "release phase finished") {
		t.Errorf("v4 events:\n%s", rec.lines())
	}
	waitDynos(1, 4)
	if _, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello--worker", metav1.GetOptions{}); err == nil {
		t.Error("worker is not in v4's formation but its Deployment is left")
	}

	// A restarted server (nothing in memory) finds the app by its labels.
	rt2, err := New(Config{Client: admin, HealthyDeadline: deadline, PollInterval: 250 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	if ds, err := rt2.Dynos(ctx, app.ID); err != nil || len(ds) != 1 || ds[0].Release.Version != 4 {
		t.Errorf("a new server's dynos: %+v %v", ds, err)
	}

	// A canary at 50%, then promoted: a second Deployment beside the
	// type's, both behind the app's Service; the promotion rolls the type's
	// Deployment to v5 on the full formation and deletes the canary.
	stable := v4
	stable.Formations = []slipway.Formation{{Type: "web", Quantity: 2, Healthcheck: "/", Command: webCmd}}
	v5 := rel(5, tag("v5"), slipway.Formation{Type: "web", Quantity: 2, Healthcheck: "/", Command: webCmd})
	nStable, nCanary := slipway.SplitCounts(2, 50)
	rec = &recorder{}
	start := time.Now()
	err = rt.Split(ctx, slipway.Split{Stable: stable, Canary: v5, Stables: map[string]int{"web": nStable}, Canaries: map[string]int{"web": nCanary}, Weight: 50}, rec.fn)
	t.Logf("Split v4/v5 at 50%% took %s, err %v\n%s", time.Since(start).Round(time.Millisecond), err, rec.lines())
	if err != nil {
		t.Fatalf("canary split: %v", err)
	}
	canary, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello--web--canary", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the canary Deployment: %v", err)
	}
	if canary.Status.ReadyReplicas != 1 || canary.Spec.Template.Labels[LabelVersion] != "5" || canary.Spec.Selector.MatchLabels[LabelTrack] != TrackCanary {
		t.Errorf("canary Deployment: %d ready, template %v, selector %v", canary.Status.ReadyReplicas, canary.Spec.Template.Labels, canary.Spec.Selector.MatchLabels)
	}
	if dep, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello--web", metav1.GetOptions{}); err != nil || *dep.Spec.Replicas != 1 || dep.Spec.Template.Labels[LabelVersion] != "4" {
		t.Errorf("the stable Deployment during the split: %v %v", err, dep)
	}
	if svc, err := admin.CoreV1().Services(ns).Get(ctx, "hello", metav1.GetOptions{}); err != nil || len(svc.Spec.Selector) != 2 {
		t.Errorf("the Service during a canary selects %v (%v), want app id and type only", svc.Spec.Selector, err)
	}
	if ds, err := rt.Dynos(ctx, app.ID); err != nil || len(ds) != 2 || ds[0].Release.Version+ds[1].Release.Version != 9 {
		t.Errorf("dynos during the split (want one of v4, one of v5): %+v %v", ds, err)
	}
	if _, err := deploy(v5); err != nil {
		t.Fatalf("promote v5: %v", err)
	}
	if _, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello--web--canary", metav1.GetOptions{}); err == nil {
		t.Error("the canary Deployment is left after the promotion")
	}
	if dep, err := admin.AppsV1().Deployments(ns).Get(ctx, "hello--web", metav1.GetOptions{}); err != nil || *dep.Spec.Replicas != 2 || dep.Spec.Template.Labels[LabelVersion] != "5" {
		t.Errorf("the Deployment after the promotion: %v %v", err, dep)
	}
	waitDynos(2, 5)

	// A server with only the README's Role in one namespace.
	t.Run("NamespacedServiceAccount", func(t *testing.T) { integrationRBAC(t, ctx, path, admin, ns+"-rbac", tag("v1"), deadline) })

	// Remove: Deployments, Service, Secrets, Jobs gone; the namespace stays.
	if err := rt.Remove(ctx, app.ID); err != nil {
		t.Fatalf("remove: %v", err)
	}
	sel := metav1.ListOptions{LabelSelector: LabelAppID + "=" + app.ID}
	deps, _ := admin.AppsV1().Deployments(ns).List(ctx, sel)
	secrets, _ := admin.CoreV1().Secrets(ns).List(ctx, sel)
	svcs, _ := admin.CoreV1().Services(ns).List(ctx, sel)
	jobs, _ := admin.BatchV1().Jobs(ns).List(ctx, sel)
	if len(deps.Items)+len(secrets.Items)+len(svcs.Items)+len(jobs.Items) != 0 {
		t.Errorf("left after Remove: %d deployments, %d secrets, %d services, %d jobs", len(deps.Items), len(secrets.Items), len(svcs.Items), len(jobs.Items))
	}
	if _, err := admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		t.Errorf("the namespace went with the app: %v", err)
	}
	end := time.Now().Add(time.Minute)
	for {
		ds, err := rt.Dynos(ctx, app.ID)
		if err == nil && len(ds) == 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("pods left a minute after Remove: %v %v", ds, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// integrationRBAC deploys with a client that impersonates a service
// account bound only to README.md's Role in namespace ns, then with one
// whose Role lacks services, which must fail naming the verb and resource.
func integrationRBAC(t *testing.T, ctx context.Context, path string, admin kubernetes.Interface, ns, image string, deadline time.Duration) {
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := readmeRole(t)
	bind := func(sa string, role *rbacv1.Role) kubernetes.Interface {
		role = role.DeepCopy()
		role.Name, role.Namespace = sa, ns
		if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: sa},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		rc.Impersonate.UserName = "system:serviceaccount:" + ns + ":" + sa
		kc, err := kubernetes.NewForConfig(rc)
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	d := slipway.Desired{
		App:        slipway.AppRef{ID: newUUID(), Name: "rbac", Key: "rbac-x", Space: "x"},
		Release:    slipway.ReleaseRef{ID: newUUID(), Version: 1},
		Slug:       slipway.Slug{ID: newUUID(), Image: image, ProcessTypes: map[string]string{"web": "", "release": "echo ok"}},
		Config:     map[string]string{"A": "1"},
		Formations: []slipway.Formation{{Type: "web", Quantity: 1, Command: os.Getenv("SLIPWAY_TEST_WEB_COMMAND")}},
	}
	inNS := func(string) string { return ns }

	rt, err := New(Config{Client: bind("slipway", role), Namespace: inNS, HealthyDeadline: deadline, PollInterval: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := rt.Deploy(ctx, d, nil); err != nil {
		t.Fatalf("deploy with the README's Role: %v", err)
	}
	if ds, err := rt.Dynos(ctx, d.App.ID); err != nil || len(ds) != 1 {
		t.Errorf("dynos with the README's Role: %v %v", ds, err)
	}
	if err := rt.Restart(ctx, d.App.ID, "", nil); err != nil {
		t.Errorf("restart with the README's Role: %v", err)
	}
	if err := rt.Remove(ctx, d.App.ID); err != nil {
		t.Errorf("remove with the README's Role: %v", err)
	}

	limited := role.DeepCopy()
	var rules []rbacv1.PolicyRule
	for _, r := range limited.Rules {
		var res []string
		for _, x := range r.Resources {
			if x != "services" {
				res = append(res, x)
			}
		}
		if len(res) > 0 {
			r.Resources = res
			rules = append(rules, r)
		}
	}
	limited.Rules = rules
	rt, err = New(Config{Client: bind("limited", limited), Namespace: inNS, HealthyDeadline: deadline, PollInterval: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	d.App = slipway.AppRef{ID: newUUID(), Name: "limited", Key: "limited-x", Space: "x"}
	err = rt.Deploy(ctx, d, nil)
	wantError(t, err, slipway.EUnprocessable, `Kubernetes refused to get services "limited" in namespace `+ns, `lacks the RBAC permission to "get" "services"`)
	t.Logf("without services: %v", err)
}

// readmeRole is the Role in README.md, so that the README is what is tested.
func readmeRole(t *testing.T) *rbacv1.Role {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(kind: Role\n.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no ```yaml block starting with kind: Role")
	}
	var role rbacv1.Role
	if err := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(m[1]), 4096).Decode(&role); err != nil {
		t.Fatalf("README.md's Role: %v", err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("README.md's Role has no rules")
	}
	return &role
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
