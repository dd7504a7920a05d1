package kube

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	slipway "github.com/slipway/slipway"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// A split on Kubernetes, without a traffic manager (the way Argo Rollouts
// runs a canary with no mesh or ingress):
//
//   - each type's Deployment "<app>--<type>" keeps running the stable
//     release, scaled to s.Stables[type]; its pod template is not touched,
//     so its pods are not restarted;
//   - the canary release runs in a second Deployment
//     "<app>--<type>--canary" with s.Canaries[type] replicas, its pods
//     labelled slipway.io/track=canary and selected by app id, type and
//     track (so it never selects the stable pods);
//   - canary: the app's Service selects by app id and type as always, so
//     it balances over the pods of both releases and the canary's share of
//     the traffic is its share of the ready pods (SplitCounts makes that
//     follow the weight); no router is in the path, so Traffic has no
//     figures and a canary's evidence is the status-check gate;
//   - blue-green (s.Preview): both releases run on their full formations;
//     the app's Service also selects by the stable release's
//     slipway.io/release label, so it keeps serving the stable pods only,
//     and a preview Service "<app>--web--preview" selects the canary pods;
//   - Deploy ends a split (see Deploy and endSplit).
//
// Names longer than 63 characters are shortened by objectName.

var _ slipway.Splitter = (*Runtime)(nil)

// Split converges the app to s (see slipway.Splitter and the comment
// above): the Services first (a blue-green split's Service selects the
// stable pods before any canary pod can be ready), then every Deployment
// that grows (canary Deployments are created), waiting until their pods
// are ready, then every Deployment that shrinks, waiting again. So the
// number of ready pods of a type never drops below its quantity. The
// canary release's release phase runs once, before its first pod.
//
// The share of traffic follows the pod counts, not s.Weight: with 3 web
// pods a weight of 10 puts 1 of 3 pods, about 33% of the requests, on
// the canary.
//
// On failure the app goes back to s.Stable on its full formations (the
// canary Deployments and the preview Service are deleted, the Service
// selects as before the split). Errors: EUnprocessable as Deploy's, for
// two releases that are not of one app, and for a failed split (saying
// why and that the app is back on the stable release); the context's
// error (wrapped) when ctx ends first, also after going back.
func (r *Runtime) Split(ctx context.Context, s slipway.Split, progress slipway.ProgressFunc) error {
	sp, err := r.plan(&s.Stable)
	if err != nil {
		return err
	}
	cp, err := r.plan(&s.Canary)
	if err != nil {
		return err
	}
	if s.Stable.App.ID != s.Canary.App.ID || sp.ns != cp.ns || s.Stable.Release.ID == s.Canary.Release.ID {
		return slipway.Errorf(slipway.EUnprocessable, "A split runs two releases of one app: v%d of %s and v%d of %s are not.", s.Stable.Release.Version, s.Stable.App.Name, s.Canary.Release.Version, s.Canary.App.Name)
	}
	a := r.appFor(s.Canary.App.ID)
	if err := a.acquire(ctx); err != nil {
		return err
	}
	defer a.release()
	rep := newReporter(progress, r.log, s.Canary.App.ID)
	if err := r.ensureNamespace(ctx, cp.ns, rep); err != nil {
		return err
	}
	r.remember(a, s.Canary.App, cp.ns)
	c, err := r.cacheFor(ctx, cp.ns)
	if err != nil {
		return err
	}

	// What the split wants of each Deployment. The plans are the releases'
	// as Deploy would apply them, on the split's counts.
	var stables, canaries []*typePlan
	for _, tp := range sp.types {
		tp.deployment.Spec.Replicas = ptr.To(int32(s.Stables[tp.typ]))
		stables = append(stables, tp)
	}
	for _, tp := range cp.types {
		canaries = append(canaries, canaryPlan(cp, tp, s.Canaries[tp.typ]))
	}
	for _, tp := range append(append([]*typePlan(nil), stables...), canaries...) {
		if err := r.checkOwner(ctx, cp, "deployments", tp.deployment.Name); err != nil {
			return err
		}
	}
	var preview *corev1.Service
	if s.Preview && cp.service != nil {
		preview = previewService(cp)
		if err := r.checkOwner(ctx, cp, "services", preview.Name); err != nil {
			return err
		}
	}

	undoSecrets := func() {}
	for _, p := range []*plan{sp, cp} {
		undo, err := r.applySecrets(ctx, p)
		if err != nil {
			undoSecrets()
			return err
		}
		if p == cp {
			undoSecrets = undo
		}
	}
	running := false // does a Deployment run the canary release already (a later step)?
	for _, dep := range c.deployments(cp.app.ID) {
		running = running || dep.Spec.Template.Labels[LabelRelease] == cp.release.ID
	}
	if cp.job != nil && !running {
		if err := r.releasePhase(ctx, cp, rep); err != nil {
			undoSecrets()
			return err
		}
	}
	fail := func(cause error) error {
		if !running {
			undoSecrets()
		}
		return r.splitFailed(ctx, &s, cause, rep)
	}

	// The Services. The app's Service is the stable release's (its port);
	// in a blue-green split it selects the stable release's pods only.
	svc := sp.service
	if svc == nil {
		svc = cp.service
	}
	if svc != nil {
		main := svc.DeepCopy()
		if preview != nil {
			main.Spec.Selector[LabelRelease] = sp.release.ID
		}
		prev, _, err := r.applyService(ctx, main)
		if err != nil {
			return fail(err)
		}
		if preview != nil {
			if prev == nil || prev.Spec.Selector[LabelRelease] != sp.release.ID {
				rep.Emit(slipway.EventInfo, "", "web", "web: the Service %s/%s selects the pods of v%d only", main.Namespace, main.Name, sp.release.Version)
			}
			_, made, err := r.applyService(ctx, preview)
			if err != nil {
				return fail(err)
			}
			if made {
				rep.Emit(slipway.EventInfo, "", "web", "web: v%d gets the preview Service %s/%s", cp.release.Version, preview.Namespace, preview.Name)
			}
		} else if prev != nil && prev.Spec.Selector[LabelRelease] != "" {
			if err := r.deletePreview(ctx, cp); err != nil {
				return fail(err)
			}
		}
	}

	// Grow, wait, shrink, wait.
	var grow, shrink []*typePlan
	var drop []*appsv1.Deployment // canary Deployments of types that run no canary pod
	for _, tp := range append(append([]*typePlan(nil), stables...), canaries...) {
		want := ptr.Deref(tp.deployment.Spec.Replicas, 0)
		cur := c.deployment(cp.app.ID, tp.deployment.Name)
		switch {
		case tp.track == TrackCanary && want == 0:
			if cur != nil {
				drop = append(drop, cur)
			}
		case cur == nil || want >= ptr.Deref(cur.Spec.Replicas, 1):
			grow = append(grow, tp)
		default:
			shrink = append(shrink, tp)
		}
	}
	wanted := map[string]bool{}
	for _, tp := range canaries {
		wanted[tp.deployment.Name] = true
	}
	for _, dep := range canaryDeployments(c, cp.app.ID) {
		if !wanted[dep.Name] {
			drop = append(drop, dep)
		}
	}
	for _, phase := range [][]*typePlan{grow, shrink} {
		before := c.podList(cp.app.ID)
		var targets []*target
		for _, tp := range phase {
			ch, err := r.applyDeployment(ctx, tp, before, rep)
			if err != nil {
				return fail(err)
			}
			targets = append(targets, ch.target)
		}
		if err := r.await(ctx, cp.ns, cp.app.ID, targets, rep); err != nil {
			return fail(err)
		}
	}
	if err := r.deleteCanaries(ctx, cp, drop, rep); err != nil {
		return fail(err)
	}

	if preview != nil {
		rep.Emit(slipway.EventInfo, "", "web", "web: v%d runs beside v%d for a preview; the app's Service still serves v%d", cp.release.Version, sp.release.Version, sp.release.Version)
		return nil
	}
	if n, total := s.Canaries["web"], s.Canaries["web"]+s.Stables["web"]; svc != nil && total > 0 {
		rep.Emit(slipway.EventInfo, "", "web", "web: v%d runs %d of %d pods, so about %d%% of the traffic (the Service balances over the pods of both releases)",
			cp.release.Version, n, total, (n*100+total/2)/total)
	}
	return nil
}

// Traffic returns nil: no router of Slipway's is in the path of an app on
// Kubernetes, so there are no per-release figures (see Split).
func (r *Runtime) Traffic(appID string) map[string]slipway.Traffic { return nil }

// splitFailed takes the app back to s.Stable on its full formations after
// cause made a split fail, and returns the error to report.
func (r *Runtime) splitFailed(ctx context.Context, s *slipway.Split, cause error, rep *reporter) error {
	msg := slipway.Sentence(causeMessage(cause))
	rep.Emit(slipway.EventFailed, "", "", "%s", msg)
	dctx, cancel := r.detached(ctx)
	defer cancel()
	p, err := r.plan(&s.Stable) // a fresh plan: the full quantities
	if err != nil {
		return wrapCause(cause, msg+" Going back failed too: "+slipway.Sentence(slipway.Message(err)))
	}
	var (
		targets []*target
		errs    []string
	)
	c, err := r.cacheFor(dctx, p.ns)
	if err != nil {
		return wrapCause(cause, msg+" Going back failed too: "+slipway.Sentence(slipway.Message(err)))
	}
	pods := c.podList(p.app.ID)
	for _, tp := range p.types {
		ch, err := r.applyDeployment(dctx, tp, pods, rep)
		if err != nil {
			errs = append(errs, slipway.Sentence(causeMessage(err)))
			continue
		}
		targets = append(targets, ch.target)
	}
	if len(errs) == 0 && ctx.Err() == nil {
		// The canary keeps its pods until the stable ones are back.
		if err := r.await(dctx, p.ns, p.app.ID, targets, rep); err != nil {
			errs = append(errs, slipway.Sentence(causeMessage(err)))
		}
	}
	var canaries []*appsv1.Deployment
	for _, f := range s.Canary.Formations {
		name := canaryName(p.app.Name, f.Type)
		if dep := c.deployment(p.app.ID, name); dep != nil {
			canaries = append(canaries, dep)
		} else {
			// Perhaps created a moment ago: delete by name.
			canaries = append(canaries, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{LabelType: f.Type}}})
		}
	}
	if err := r.endSplit(dctx, p, canaries, p.service, rep); err != nil {
		errs = append(errs, slipway.Sentence(causeMessage(err)))
	}
	if len(errs) > 0 {
		return wrapCause(cause, msg+" Going back to v"+fmt.Sprint(s.Stable.Release.Version)+" failed too: "+strings.Join(errs, " "))
	}
	if ctx.Err() != nil {
		return wrapCause(cause, fmt.Sprintf("%s The split was undone: v%d is going back to its full formation.", msg, s.Stable.Release.Version))
	}
	return wrapCause(cause, fmt.Sprintf("%s The split was undone: the app is back on v%d.", msg, s.Stable.Release.Version))
}

// endSplit deletes the canary Deployments of a split and the preview
// Service, then sets the app's Service (normal, nil without a web type)
// back to selecting by app id and type; it runs once the type's
// Deployments carry the full formation (Deploy, or a failed Split). A
// Service that selected one release only is changed after the canary pods
// have gone, so that it never sends traffic to the release that lost.
// Errors: EUnprocessable when a call is refused or the canary pods do not
// go within HealthyDeadline.
func (r *Runtime) endSplit(ctx context.Context, p *plan, canaries []*appsv1.Deployment, normal *corev1.Service, rep *reporter) error {
	if err := r.deleteCanaries(ctx, p, canaries, rep); err != nil {
		return err
	}
	if normal == nil {
		return nil
	}
	if err := r.deletePreview(ctx, p); err != nil {
		return err
	}
	cur, err := r.kc.CoreV1().Services(p.ns).Get(ctx, normal.Name, metav1.GetOptions{})
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return r.apiError(ctx, err, "get", "services", p.ns, normal.Name)
	case maps.Equal(cur.Spec.Selector, normal.Spec.Selector):
		return nil
	}
	if err := r.awaitCanaryPodsGone(ctx, p.ns, p.app.ID); err != nil {
		return err
	}
	if _, _, err := r.applyService(ctx, normal); err != nil {
		return err
	}
	rep.Emit(slipway.EventInfo, "", "web", "web: the Service %s/%s selects every web pod again", p.ns, normal.Name)
	return nil
}

// deleteCanaries deletes canary Deployments (their pods go with them).
func (r *Runtime) deleteCanaries(ctx context.Context, p *plan, deps []*appsv1.Deployment, rep *reporter) error {
	api := r.kc.AppsV1().Deployments(p.ns)
	for _, dep := range deps {
		err := api.Delete(ctx, dep.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return r.apiError(ctx, err, "delete", "deployments", p.ns, dep.Name)
		}
		typ := dep.Labels[LabelType]
		rep.Emit(slipway.EventStopped, "", typ, "%s canary: Deployment %s/%s deleted", typ, p.ns, dep.Name)
	}
	return nil
}

// awaitCanaryPodsGone waits until no canary pod of the app is left that
// is not terminating (terminating pods are no Service's endpoints).
func (r *Runtime) awaitCanaryPodsGone(ctx context.Context, ns, appID string) error {
	c, err := r.cacheFor(ctx, ns)
	if err != nil {
		return err
	}
	wake, unsubscribe := c.subscribe(appID)
	defer unsubscribe()
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	limit := time.NewTimer(r.cfg.HealthyDeadline)
	defer limit.Stop()
	for {
		var live []string
		for _, pod := range c.podList(appID) {
			if pod.Labels[LabelTrack] == TrackCanary && pod.DeletionTimestamp == nil {
				live = append(live, pod.Name)
			}
		}
		if len(live) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the split was cancelled before its canary pods had stopped: %w", context.Cause(ctx))
		case <-c.failed:
			r.dropCache(c)
			return c.err
		case <-limit.C:
			return slipway.Errorf(slipway.EUnprocessable, "The canary Deployments were deleted, but their pods %s were still running %s later, so the app's Service still selects one release only.", strings.Join(live, ", "), fmtDur(r.cfg.HealthyDeadline))
		case <-wake:
		case <-tick.C:
		}
	}
}

// deletePreview deletes the app's preview Service, if any.
func (r *Runtime) deletePreview(ctx context.Context, p *plan) error {
	name := previewName(p.app.Name, "web")
	err := r.kc.CoreV1().Services(p.ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !isNotFound(err) {
		return r.apiError(ctx, err, "delete", "services", p.ns, name)
	}
	return nil
}

// pinService makes the app's Service select p's release only while a
// Deploy ends a blue-green split: it selects the stable release's pods
// during the split, and this is the switch (the canary's pods are all
// ready by then). endSplit lets it select every pod of the type again.
func (r *Runtime) pinService(ctx context.Context, p *plan, rep *reporter) error {
	cur, err := r.kc.CoreV1().Services(p.ns).Get(ctx, p.service.Name, metav1.GetOptions{})
	switch {
	case isNotFound(err):
		return nil
	case err != nil:
		return r.apiError(ctx, err, "get", "services", p.ns, p.service.Name)
	}
	if id := cur.Spec.Selector[LabelRelease]; id != "" {
		p.service.Spec.Selector[LabelRelease] = p.release.ID
		if id != p.release.ID {
			rep.Emit(slipway.EventInfo, "", "web", "web: the Service %s/%s switches to the pods of v%d", p.ns, p.service.Name, p.release.Version)
		}
	}
	return nil
}

// canaryDeployments are the app's cached canary Deployments; read only.
func canaryDeployments(c *nsCache, appID string) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, dep := range c.deployments(appID) {
		if dep.Labels[LabelTrack] == TrackCanary {
			out = append(out, dep)
		}
	}
	return out
}

// canaryPlan is tp's Deployment as the canary of a split with n pods: its
// own name, the track label on it and on its pods, and a selector that
// includes the track, so that it never selects the stable pods. (The
// type's Deployment selects by app id and type, and so matches the canary
// pods too; the Deployment and ReplicaSet controllers only count pods
// whose owner reference is theirs, so neither takes the other's pods.)
func canaryPlan(p *plan, tp *typePlan, n int) *typePlan {
	dep := tp.deployment.DeepCopy()
	dep.Name = canaryName(p.app.Name, tp.typ)
	dep.Labels[LabelTrack] = TrackCanary
	dep.Spec.Template.Labels[LabelTrack] = TrackCanary
	dep.Spec.Selector = &metav1.LabelSelector{MatchLabels: canarySelector(p.app.ID, tp.typ)}
	dep.Spec.Template.Annotations = nil
	dep.Spec.Template.Annotations = map[string]string{AnnotationTemplate: templateHash(&dep.Spec.Template)}
	dep.Spec.Replicas = ptr.To(int32(n))
	return &typePlan{typ: tp.typ, track: TrackCanary, deployment: dep}
}

// canarySelector is what a canary Deployment and the preview Service
// select pods by.
func canarySelector(appID, typ string) map[string]string {
	s := selector(appID, typ)
	s[LabelTrack] = TrackCanary
	return s
}

// previewService is the preview Service of a blue-green split: the web
// port of p's release, on the canary pods only.
func previewService(p *plan) *corev1.Service {
	svc := p.service.DeepCopy()
	svc.Name = previewName(p.app.Name, "web")
	svc.Spec.Selector = canarySelector(p.app.ID, "web")
	return svc
}
