package kube

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
)

func (h *harness) split(s slipway.Split) (*recorder, error) {
	h.t.Helper()
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := h.rt.Split(ctx, s, rec.fn)
	return rec, err
}

func (h *harness) mustSplit(s slipway.Split) *recorder {
	h.t.Helper()
	rec, err := h.split(s)
	if err != nil {
		h.t.Fatalf("Split v%d/v%d: %v\nevents:\n%s", s.Stable.Release.Version, s.Canary.Release.Version, err, rec.lines())
	}
	return rec
}

func (h *harness) service(name string) *corev1.Service {
	h.t.Helper()
	svc, err := h.cl.Clientset.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		h.t.Fatalf("get service %s: %v", name, err)
	}
	return svc
}

// canarySplit is v1 and v2 of hello with web quantity q, at weight.
func canarySplit(q, weight int) slipway.Split {
	stable, canary := slipway.SplitCounts(q, weight)
	return slipway.Split{
		Stable:  release(1, "hello:v1", map[string]string{"A": "1"}, web(q)),
		Canary:  release(2, "hello:v2", map[string]string{"A": "2"}, web(q)),
		Stables: map[string]int{"web": stable}, Canaries: map[string]int{"web": canary}, Weight: weight,
	}
}

// versions counts the app's ready dynos by version.
func versions(ds []slipway.Dyno) map[int]int {
	out := map[int]int{}
	for _, d := range ds {
		out[d.Release.Version]++
	}
	return out
}

var normalSelector = map[string]string{LabelAppID: appID, LabelType: "web"}

func TestSplit_Canary_RunsTheCanaryBesideTheStableDeployment(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", map[string]string{"A": "1"}, web(4)))
	h.waitPods(4)
	stableBefore := h.deployment(ns, "hello--web")

	rec := h.mustSplit(canarySplit(4, 10))
	canary := h.deployment(ns, "hello--web--canary")
	if got := ptr.Deref(canary.Spec.Replicas, -1); got != 1 {
		t.Errorf("canary replicas %d, want 1", got)
	}
	for k, v := range map[string]string{LabelTrack: TrackCanary, LabelRelease: "rel-2", LabelVersion: "2", LabelType: "web", LabelAppID: appID} {
		if canary.Labels[k] != v || canary.Spec.Template.Labels[k] != v {
			t.Errorf("canary label %s: deployment %q, template %q, want %q", k, canary.Labels[k], canary.Spec.Template.Labels[k], v)
		}
	}
	if want := map[string]string{LabelAppID: appID, LabelType: "web", LabelTrack: TrackCanary}; !maps.Equal(canary.Spec.Selector.MatchLabels, want) {
		t.Errorf("canary selector %v, want %v", canary.Spec.Selector.MatchLabels, want)
	}
	if c := canary.Spec.Template.Spec.Containers[0]; c.Image != "hello:v2" || c.EnvFrom[0].SecretRef.Name != "hello--v2" {
		t.Errorf("canary container %s with %s", c.Image, c.EnvFrom[0].SecretRef.Name)
	}
	stable := h.deployment(ns, "hello--web")
	if got := ptr.Deref(stable.Spec.Replicas, -1); got != 3 {
		t.Errorf("stable replicas %d, want 3", got)
	}
	if stable.Spec.Template.Annotations[AnnotationTemplate] != stableBefore.Spec.Template.Annotations[AnnotationTemplate] || stable.Spec.Template.Labels[LabelRelease] != "rel-1" {
		t.Errorf("the split changed the stable template: %v", stable.Spec.Template.Labels)
	}
	if sel := h.service("hello").Spec.Selector; !maps.Equal(sel, normalSelector) {
		t.Errorf("service selector %v, want both tracks (%v)", sel, normalSelector)
	}
	if h.exists("services", ns, "hello--web--preview") {
		t.Error("a canary split made a preview Service")
	}
	if got := versions(h.waitPods(4)); got[1] != 3 || got[2] != 1 {
		t.Errorf("dynos by version %v, want 3 of v1 and 1 of v2", got)
	}
	// The canary is ready before the stable Deployment shrinks.
	lines := rec.lines()
	ready, shrink := strings.Index(lines, "web canary: 1/1 on v2"), strings.Index(lines, "web: scaling v1 from 4 to 3 pods")
	if ready < 0 || shrink < 0 || ready > shrink {
		t.Errorf("want the canary ready, then the stable scaled down:\n%s", lines)
	}
	if !strings.Contains(lines, "v2 runs 1 of 4 pods, so about 25% of the traffic") {
		t.Errorf("no traffic share event:\n%s", lines)
	}
	if h.rt.Traffic(appID) != nil {
		t.Error("Traffic should be nil: no router in the path")
	}

	// The next step changes the counts.
	h.mustSplit(canarySplit(4, 50))
	if c, s := ptr.Deref(h.deployment(ns, "hello--web--canary").Spec.Replicas, -1), ptr.Deref(h.deployment(ns, "hello--web").Spec.Replicas, -1); c != 2 || s != 2 {
		t.Errorf("at 50%%: canary %d, stable %d replicas; want 2 and 2", c, s)
	}
	if got := versions(h.waitPods(4)); got[1] != 2 || got[2] != 2 {
		t.Errorf("dynos by version %v, want 2 and 2", got)
	}
}

func TestSplit_DeployTheCanary_Promotes(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", map[string]string{"A": "1"}, web(4)))
	s := canarySplit(4, 50)
	h.mustSplit(s)

	rec := h.mustDeploy(s.Canary)
	if h.exists("deployments", ns, "hello--web--canary") {
		t.Error("the canary Deployment is left after the promotion")
	}
	stable := h.deployment(ns, "hello--web")
	if ptr.Deref(stable.Spec.Replicas, -1) != 4 || stable.Spec.Template.Labels[LabelRelease] != "rel-2" || stable.Spec.Template.Labels[LabelTrack] != "" {
		t.Errorf("stable after promotion: %d replicas, template %v", ptr.Deref(stable.Spec.Replicas, -1), stable.Spec.Template.Labels)
	}
	if sel := h.service("hello").Spec.Selector; !maps.Equal(sel, normalSelector) {
		t.Errorf("service selector %v", sel)
	}
	if got := versions(h.waitPods(4)); got[2] != 4 {
		t.Errorf("dynos by version %v, want 4 of v2", got)
	}
	lines := rec.lines()
	done, deleted := strings.Index(lines, "web: 4/4 on v2"), strings.Index(lines, "web canary: Deployment slipway-default/hello--web--canary deleted")
	if done < 0 || deleted < 0 || done > deleted {
		t.Errorf("want the stable Deployment on v2, then the canary deleted:\n%s", lines)
	}
	if strings.Contains(lines, "release phase") {
		t.Errorf("the promotion ran the release phase again:\n%s", lines)
	}
}

func TestSplit_DeployTheStableRelease_Aborts(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", map[string]string{"A": "1"}, web(4)))
	s := canarySplit(4, 50)
	h.mustSplit(s)
	gen := h.deployment(ns, "hello--web").Generation

	h.mustDeploy(s.Stable)
	if h.exists("deployments", ns, "hello--web--canary") {
		t.Error("the canary Deployment is left after the abort")
	}
	stable := h.deployment(ns, "hello--web")
	if ptr.Deref(stable.Spec.Replicas, -1) != 4 || stable.Spec.Template.Labels[LabelRelease] != "rel-1" || stable.Generation != gen+1 {
		t.Errorf("stable after abort: %d replicas, template %v, generation %d (was %d)", ptr.Deref(stable.Spec.Replicas, -1), stable.Spec.Template.Labels, stable.Generation, gen)
	}
	if got := versions(h.waitPods(4)); got[1] != 4 {
		t.Errorf("dynos by version %v, want 4 of v1", got)
	}
}

func TestSplit_BlueGreen_PreviewServiceThenSwitch(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", map[string]string{"A": "1"}, web(2)))
	s := canarySplit(2, 0)
	s.Stables["web"], s.Canaries["web"], s.Preview = 2, 2, true
	h.mustSplit(s)

	preview := h.service("hello--web--preview")
	if want := map[string]string{LabelAppID: appID, LabelType: "web", LabelTrack: TrackCanary}; !maps.Equal(preview.Spec.Selector, want) {
		t.Errorf("preview selector %v, want %v", preview.Spec.Selector, want)
	}
	if preview.Labels[LabelAppID] != appID || preview.Spec.Ports[0].Port != 80 {
		t.Errorf("preview service %v %v", preview.Labels, preview.Spec.Ports)
	}
	if want := map[string]string{LabelAppID: appID, LabelType: "web", LabelRelease: "rel-1"}; !maps.Equal(h.service("hello").Spec.Selector, want) {
		t.Errorf("main selector %v, want the stable pods only (%v)", h.service("hello").Spec.Selector, want)
	}
	if c, st := ptr.Deref(h.deployment(ns, "hello--web--canary").Spec.Replicas, -1), ptr.Deref(h.deployment(ns, "hello--web").Spec.Replicas, -1); c != 2 || st != 2 {
		t.Errorf("canary %d, stable %d replicas; want both full", c, st)
	}
	// The pods each Service selects.
	pods, err := h.cl.Clientset.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	selects := func(sel map[string]string) map[string]int {
		out := map[string]int{}
		for _, p := range pods.Items {
			match := true
			for k, v := range sel {
				match = match && p.Labels[k] == v
			}
			if match {
				out[p.Labels[LabelVersion]]++
			}
		}
		return out
	}
	if got := selects(preview.Spec.Selector); got["2"] != 2 || got["1"] != 0 {
		t.Errorf("the preview selects %v", got)
	}
	if got := selects(h.service("hello").Spec.Selector); got["1"] != 2 || got["2"] != 0 {
		t.Errorf("the main Service selects %v", got)
	}

	rec := h.mustDeploy(s.Canary)
	if h.exists("services", ns, "hello--web--preview") || h.exists("deployments", ns, "hello--web--canary") {
		t.Error("the preview Service or the canary Deployment is left after the switch")
	}
	if sel := h.service("hello").Spec.Selector; !maps.Equal(sel, normalSelector) {
		t.Errorf("service selector after the switch %v", sel)
	}
	if !strings.Contains(rec.lines(), "switches to the pods of v2") {
		t.Errorf("no switch event:\n%s", rec.lines())
	}
	if got := versions(h.waitPods(2)); got[2] != 2 {
		t.Errorf("dynos by version %v", got)
	}
}

func TestSplit_BlueGreen_Abort(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(2)))
	s := canarySplit(2, 0)
	s.Stables["web"], s.Canaries["web"], s.Preview = 2, 2, true
	h.mustSplit(s)
	h.mustDeploy(s.Stable)
	if h.exists("services", ns, "hello--web--preview") || h.exists("deployments", ns, "hello--web--canary") {
		t.Error("the preview Service or the canary Deployment is left after the abort")
	}
	if sel := h.service("hello").Spec.Selector; !maps.Equal(sel, normalSelector) {
		t.Errorf("service selector after the abort %v", sel)
	}
	if got := versions(h.waitPods(2)); got[1] != 2 {
		t.Errorf("dynos by version %v", got)
	}
}

func TestSplit_CanaryFails_GoesBackToTheStableRelease(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", map[string]string{"A": "1"}, web(3)))
	s := canarySplit(3, 50)
	s.Canary = release(2, "hello:crash-loop", map[string]string{"A": "2"}, web(3))
	rec, err := h.split(s)
	wantError(t, err, slipway.EUnprocessable, "web canary: the rollout of v2 failed", "crash-looping", "The split was undone: the app is back on v1.")
	if h.exists("deployments", ns, "hello--web--canary") {
		t.Error("the failed canary Deployment is left")
	}
	if got := ptr.Deref(h.deployment(ns, "hello--web").Spec.Replicas, -1); got != 3 {
		t.Errorf("stable replicas %d, want 3", got)
	}
	if h.exists("secrets", ns, "hello--v2") {
		t.Error("the failed canary's Secret is left")
	}
	if got := versions(h.waitPods(3)); got[1] != 3 {
		t.Errorf("dynos by version %v\n%s", got, rec.lines())
	}
}

// A rolling type of a canary release goes over at the first step: the
// engine gives it no stable pods.
func TestSplit_TypeWithoutStablePods(t *testing.T) {
	h := newHarness(t, nil)
	worker := slipway.Formation{Type: "worker", Quantity: 2, Command: "w"}
	h.mustDeploy(release(1, "hello:v1", nil, web(2), worker))
	s := canarySplit(2, 10)
	s.Stable.Formations = append(s.Stable.Formations, worker)
	s.Canary.Formations = append(s.Canary.Formations, worker)
	s.Stables["worker"], s.Canaries["worker"] = 0, 2
	h.mustSplit(s)
	if c, st := ptr.Deref(h.deployment(ns, "hello--worker--canary").Spec.Replicas, -1), ptr.Deref(h.deployment(ns, "hello--worker").Spec.Replicas, -1); c != 2 || st != 0 {
		t.Errorf("worker: canary %d, stable %d; want 2 and 0", c, st)
	}
	h.mustDeploy(s.Canary)
	if h.exists("deployments", ns, "hello--worker--canary") || h.exists("deployments", ns, "hello--web--canary") {
		t.Error("canary Deployments left after the promotion")
	}
	if got := versions(h.waitPods(4)); got[2] != 4 {
		t.Errorf("dynos by version %v", got)
	}
}

func TestObjectName_ShortensWithAHash(t *testing.T) {
	long := strings.Repeat("a", 63)
	cases := []string{"hello", "hello--web--canary", long, long + "--web", long + "--web--canary", long + "--web--preview", long + "--v12--slug", long + "--release--v12"}
	seen := map[string]string{}
	for _, in := range cases {
		got := objectName(in)
		if len(in) <= 63 && got != in {
			t.Errorf("objectName(%q) = %q, want it unchanged", in, got)
		}
		if len(in) > 63 {
			if len(got) != 63 || !strings.HasPrefix(got, in[:40]) {
				t.Errorf("objectName(%q) = %q (%d characters)", in, got, len(got))
			}
			if errs := validation.IsDNS1035Label(got); len(errs) > 0 {
				t.Errorf("objectName(%q) = %q: %v", in, got, errs)
			}
		}
		if objectName(in) != got {
			t.Errorf("objectName(%q) is not stable", in)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%q and %q both give %q", in, other, got)
		}
		seen[got] = in
	}
	if got := objectName(strings.Repeat("a", 51) + "-" + strings.Repeat("b", 20)); strings.Contains(got, "--") {
		t.Errorf("a cut at a - leaves %q", got)
	}
}

// Every object of an app with a 63-character name is named within 63
// characters, through a split and its end.
func TestSplit_LongAppName_NamesFit(t *testing.T) {
	h := newHarness(t, nil)
	name := "a" + strings.Repeat("-long", 12) + "-n"
	if len(name) != 63 {
		t.Fatalf("the name has %d characters", len(name))
	}
	withName := func(d slipway.Desired) slipway.Desired {
		d.App.Name = name
		d.Slug.ProcessTypes["release"] = "bin/migrate"
		return d
	}
	s := canarySplit(2, 0)
	s.Stable, s.Canary = withName(s.Stable), withName(s.Canary)
	s.Stables["web"], s.Canaries["web"], s.Preview = 2, 2, true
	h.mustDeploy(s.Stable)
	h.mustSplit(s)
	check := func() {
		t.Helper()
		for _, name := range []string{canaryName(name, "web"), previewName(name, "web"), deploymentName(name, "web"), secretName(name, 2), jobName(name, 2)} {
			if len(name) > 63 {
				t.Errorf("%q has %d characters", name, len(name))
			}
		}
		if !h.exists("deployments", ns, canaryName(name, "web")) || !h.exists("services", ns, previewName(name, "web")) || !h.exists("jobs", ns, jobName(name, 2)) {
			t.Error("the split's objects are not under their shortened names")
		}
	}
	check()
	if got := canaryName(name, "web"); !strings.HasPrefix(got, name[:40]) || got == name+"--web--canary" {
		t.Errorf("canary name %q", got)
	}
	ctx := context.Background()
	for _, list := range []func() ([]string, error){
		func() ([]string, error) {
			l, err := h.cl.Clientset.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
			var out []string
			for _, o := range l.Items {
				out = append(out, o.Name)
			}
			return out, err
		},
		func() ([]string, error) {
			l, err := h.cl.Clientset.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
			var out []string
			for _, o := range l.Items {
				out = append(out, o.Name)
			}
			return out, err
		},
		func() ([]string, error) {
			l, err := h.cl.Clientset.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			var out []string
			for _, o := range l.Items {
				out = append(out, o.Name)
			}
			return out, err
		},
	} {
		names, err := list()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if len(n) > 63 {
				t.Errorf("object %q has %d characters", n, len(n))
			}
		}
	}
	h.mustDeploy(s.Canary)
	if h.exists("deployments", ns, canaryName(name, "web")) || h.exists("services", ns, previewName(name, "web")) {
		t.Error("the split's objects are left after the switch")
	}
}

// A split whose context ends keeps the cause findable and still ends the
// split.
func TestSplit_ContextEnds_KeepsTheCauseAndGoesBack(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(2)))
	s := canarySplit(2, 50)
	s.Canary = release(2, "hello:never-ready", nil, web(2))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := h.rt.Split(ctx, s, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the deadline as the cause, got %v", err)
	}
	wantError(t, err, slipway.EUnprocessable, "The split was undone: v1 is going back to its full formation.")
	if h.exists("deployments", ns, "hello--web--canary") {
		t.Error("the canary Deployment is left")
	}
	if got := ptr.Deref(h.deployment(ns, "hello--web").Spec.Replicas, -1); got != 2 {
		t.Errorf("stable replicas %d, want 2", got)
	}
	h.waitPods(2)
}

// A Deploy that fails during a split puts the stable release back on the
// full formation and ends the split: the app is where an abort leaves it.
func TestSplit_DeployFails_EndsOnTheStableRelease(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(4)))
	s := canarySplit(4, 50)
	h.mustSplit(s)
	broken := release(3, "hello:crash-loop", nil, web(4))
	_, err := h.deploy(broken)
	wantError(t, err, slipway.EUnprocessable, "web: the rollout of v3 failed", "the app is back on v1")
	if h.exists("deployments", ns, "hello--web--canary") {
		t.Error("the canary Deployment is left")
	}
	stable := h.deployment(ns, "hello--web")
	if ptr.Deref(stable.Spec.Replicas, -1) != 4 || stable.Spec.Template.Labels[LabelRelease] != "rel-1" {
		t.Errorf("stable after the failed Deploy: %d replicas, template %v", ptr.Deref(stable.Spec.Replicas, -1), stable.Spec.Template.Labels)
	}
	if got := versions(h.waitPods(4)); got[1] != 4 {
		t.Errorf("dynos by version %v", got)
	}
}
