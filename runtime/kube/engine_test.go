package kube_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/engine"
	"github.com/slipway/slipway/runtime/kube"
	"github.com/slipway/slipway/runtime/kube/kubefake"
	"github.com/slipway/slipway/store"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The release engine drives the Kubernetes runtime as it drives the local
// one: statuses, release log, current release, scaling and app deletion.
func TestEngine_WithKubernetesRuntime(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cl := kubefake.New(2 * time.Millisecond)
	defer cl.Close()
	rt, err := kube.New(kube.Config{Client: cl.Clientset, HealthyDeadline: time.Second, PollInterval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	eng := engine.New(engine.Config{Store: db, Runtime: rt, ReleaseDeadline: time.Minute, Sweep: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- eng.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	a := &slipway.App{Name: "hello", OrgName: "default", SpaceName: "default"}
	if err := db.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	build := func(image string) string {
		b := &slipway.Build{AppID: a.ID}
		if err := db.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
		err := db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{Image: image, ProcessTypes: map[string]string{"web": ""}}})
		if err != nil {
			t.Fatal(err)
		}
		return b.ID
	}
	releaseAndWait := func(slug string) (*slipway.Release, string) {
		r, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slug, Trigger: slipway.TriggerDeploy})
		if err != nil {
			t.Fatal(err)
		}
		eng.Kick(a.ID)
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, err := db.FindRelease(ctx, a.ID, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if slipway.ReleaseTerminal(got.Status) {
				lines, _ := db.ReleaseLog(ctx, r.ID, 0)
				var log []string
				for _, l := range lines {
					log = append(log, l.Line)
				}
				return got, strings.Join(log, "\n")
			}
			if time.Now().After(deadline) {
				t.Fatalf("release v%d still %s", got.Version, got.Status)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	r1, log := releaseAndWait(build("hello:v1"))
	if r1.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v1 %s: %s\n%s", r1.Status, r1.Error, log)
	}
	for _, want := range []string{"Release v1 started", "started on v1", "web: 1/1 on v1", "Release v1 succeeded."} {
		if !strings.Contains(log, want) {
			t.Errorf("v1 log lacks %q:\n%s", want, log)
		}
	}

	r2, log := releaseAndWait(build("hello:never-ready"))
	if r2.Status != slipway.ReleaseFailed || !strings.Contains(r2.Error, "ProgressDeadlineExceeded") || !strings.Contains(r2.Error, "the app is back on v1") {
		t.Fatalf("v2 %s: %q\n%s", r2.Status, r2.Error, log)
	}
	if !strings.Contains(log, "release_failed: ") {
		t.Errorf("v2 log:\n%s", log)
	}
	if cur, err := db.CurrentRelease(ctx, a.ID); err != nil || cur.Version != 1 {
		t.Errorf("current release after the failed v2: %v %v", cur, err)
	}

	// Scaling: the formation changes, the engine converges the current release.
	three := 3
	if _, err := db.UpsertFormations(ctx, a.ID, []slipway.FormationChange{{Type: "web", Quantity: &three}}); err != nil {
		t.Fatal(err)
	}
	eng.Converge(a.ID)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := rt.Dynos(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		ready := 0
		for _, d := range ds {
			if d.Ready && d.Release.Version == 1 {
				ready++
			}
		}
		if ready == 3 && len(ds) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after scaling to 3: %+v", ds)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A canary: v3 runs beside v1 at 50% until its check passes, then the
	// engine promotes it through Deploy, which ends the split.
	strategy := &slipway.Strategy{Type: slipway.StrategyCanary, RequiredChecks: []string{"ci/smoke"},
		Steps: []slipway.CanaryStep{{Weight: 50, Pause: slipway.PauseUntilChecks}, {Weight: 100}}}
	if err := strategy.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAppStrategy(ctx, a.ID, strategy); err != nil {
		t.Fatal(err)
	}
	r3, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: build("hello:v3"), Trigger: slipway.TriggerDeploy})
	if err != nil {
		t.Fatal(err)
	}
	eng.Kick(a.ID)
	deadline = time.Now().Add(20 * time.Second)
	for {
		st, err := db.Rollout(ctx, r3.ID)
		if err == nil && st.Phase == slipway.PhasePaused && st.Placed {
			break
		}
		if time.Now().After(deadline) {
			lines, _ := db.ReleaseLog(ctx, r3.ID, 0)
			t.Fatalf("the canary did not pause at 50%%: %+v %v\n%v", st, err, lines)
		}
		time.Sleep(5 * time.Millisecond)
	}
	canary, err := cl.Clientset.AppsV1().Deployments("slipway-default").Get(ctx, "hello--web--canary", metav1.GetOptions{})
	if err != nil || *canary.Spec.Replicas != 2 {
		t.Fatalf("the canary Deployment at 50%%: %v %v", err, canary)
	}
	if err := db.CreateReleaseStatus(ctx, &slipway.ReleaseStatus{ReleaseID: r3.ID, State: "success", Context: "ci/smoke", Name: "smoke"}); err != nil {
		t.Fatal(err)
	}
	eng.Kick(a.ID)
	deadline = time.Now().Add(20 * time.Second)
	for {
		got, err := db.FindRelease(ctx, a.ID, r3.ID)
		if err != nil {
			t.Fatal(err)
		}
		if slipway.ReleaseTerminal(got.Status) {
			if got.Status != slipway.ReleaseSucceeded {
				lines, _ := db.ReleaseLog(ctx, r3.ID, 0)
				t.Fatalf("v3 %s: %s\n%v", got.Status, got.Error, lines)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("v3 still %s", got.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := cl.Clientset.AppsV1().Deployments("slipway-default").Get(ctx, "hello--web--canary", metav1.GetOptions{}); err == nil {
		t.Error("the canary Deployment is left after the promotion")
	}
	if dep, err := cl.Clientset.AppsV1().Deployments("slipway-default").Get(ctx, "hello--web", metav1.GetOptions{}); err != nil || *dep.Spec.Replicas != 3 || dep.Spec.Template.Labels[kube.LabelVersion] != "3" {
		t.Errorf("after the promotion: %v %v", err, dep)
	}

	if err := eng.RemoveApp(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	deps, err := cl.Clientset.AppsV1().Deployments("slipway-default").List(ctx, metav1.ListOptions{LabelSelector: kube.LabelAppID + "=" + a.ID})
	if err != nil || len(deps.Items) != 0 {
		t.Errorf("deployments after RemoveApp: %v %v", deps, err)
	}
}
