package kube

import (
	"context"
	"slices"
	"testing"

	slipway "github.com/slipway/slipway"
)

// Every namespaced call the runtime makes in a full life cycle (release
// phase, release, scale, failed release with revert, canary and blue-green
// splits with their end and a failed split, restarts, dynos, logs, remove) is allowed by the Role in README.md; cluster-scoped calls are
// the namespace get/create and the cross-namespace lists the README lists
// for the ClusterRole.
func TestRBAC_ReadmeRoleCoversEveryCall(t *testing.T) {
	role := readmeRole(t)
	h := newHarness(t, nil)
	ctx := context.Background()
	d := release(1, "hello:v1", map[string]string{"A": "1"}, web(2), slipway.Formation{Type: "worker", Quantity: 1, Command: "w"})
	d.Slug.ProcessTypes["release"] = "bin/migrate"
	h.mustDeploy(d)
	d.Formations[0].Quantity = 3
	h.mustDeploy(d)
	if _, err := h.deploy(release(2, "hello:crash-loop", nil, web(1))); err == nil {
		t.Fatal("the crash-looping release succeeded")
	}
	// A canary promoted (with a failed step first), then a blue-green
	// preview aborted.
	canary := release(4, "hello:v4", nil, web(3))
	canary.Slug.ProcessTypes["release"] = "bin/migrate"
	broken := canary
	broken.Slug.Image = "hello:crash-loop"
	if _, err := h.split(slipway.Split{Stable: d, Canary: broken, Stables: map[string]int{"web": 2}, Canaries: map[string]int{"web": 1}, Weight: 10}); err == nil {
		t.Fatal("the crash-looping canary succeeded")
	}
	h.mustSplit(slipway.Split{Stable: d, Canary: canary, Stables: map[string]int{"web": 2, "worker": 0}, Canaries: map[string]int{"web": 1}, Weight: 10})
	h.mustDeploy(canary)
	green := release(5, "hello:v5", nil, web(3))
	h.mustSplit(slipway.Split{Stable: canary, Canary: green, Stables: map[string]int{"web": 3}, Canaries: map[string]int{"web": 3}, Preview: true})
	h.mustDeploy(canary)
	h.mustDeploy(release(3, "hello:v3", nil, web(1)))
	ds := h.waitPods(1)
	if err := h.rt.Restart(ctx, appID, "", nil); err != nil {
		t.Fatal(err)
	}
	ds = h.waitPods(1)
	if err := h.rt.Restart(ctx, appID, ds[0].Name, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Logs(ctx, appID, slipway.LogQuery{Lines: 10}, func([]slipway.LogLine) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := newRuntimeOn(t, h).Remove(ctx, appID); err != nil {
		t.Fatal(err)
	}

	clusterWide := map[string]bool{"get namespaces": true, "create namespaces": true, "list deployments": true, "list secrets": true}
	seen := map[string]bool{}
	for _, a := range h.cl.Clientset.Actions() {
		res := a.GetResource().Resource
		if a.GetSubresource() != "" {
			res += "/" + a.GetSubresource()
		}
		call := a.GetVerb() + " " + res
		if seen[call+a.GetNamespace()] {
			continue
		}
		seen[call+a.GetNamespace()] = true
		if a.GetNamespace() == "" {
			if !clusterWide[call] {
				t.Errorf("cluster-scoped call %q is not in README.md's ClusterRole extras", call)
			}
			continue
		}
		allowed := false
		for _, r := range role.Rules {
			allowed = allowed || slices.Contains(r.Resources, res) && slices.Contains(r.Verbs, a.GetVerb()) &&
				slices.Contains(r.APIGroups, a.GetResource().Group)
		}
		if !allowed {
			t.Errorf("README.md's Role does not allow %q (API group %q)", call, a.GetResource().Group)
		}
	}
	t.Logf("calls: %v", len(seen))
}
