package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	slipway "github.com/slipway/slipway"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// change is what Deploy did to one object, so that it can be undone.
type change struct {
	typ  string
	name string
	// prev is the Deployment as it was before; nil when Deploy created it.
	prev *appsv1.Deployment
	// target is the rollout to wait for.
	target *target
}

// Deploy converges the app to d: namespace, release Secret(s), Service,
// the release phase (once per release), then one Deployment per formation
// type, and waits until every one has rolled out (see the package comment).
// Deploying the running release with other quantities scales it: the pod
// template does not change, so only the replica counts do.
//
// Once every Deployment has rolled out, Deploy deletes those of types no
// longer in the formation (dropRemoved) and returns; the Secrets and Jobs
// of releases older than RevisionHistory are deleted after it returned, in
// the background, with the app's lock held until that is done
// (collectLater).
//
// Deploy ends a split (see Split), on the canary's release to promote it
// or on the stable one to abort: each type's Deployment rolls to d on the
// full formation (from the stable release, or just scaled back) while the
// canary Deployments keep serving, so no pod is missing at any time; then
// the canary Deployments and the preview Service are deleted and the
// app's Service selects every web pod again. In a blue-green split the
// Service selects d's pods from the start (the canary's are all ready:
// that is the switch) and every web pod once the canary's have gone. A
// failure then puts the stable release back on the full formation and
// ends the split too. If the split cannot be ended after a rollout that
// succeeded (a refused delete), Deploy returns that EUnprocessable error
// with d running on the full formation, and the next Deploy tries again.
//
// Errors: EUnprocessable for a desired state Kubernetes cannot run, an
// object of the same name that belongs to another app, a refused API call
// (naming the verb and resource), a failed release phase (nothing changed),
// or a failed rollout (after auto-revert; the message says why and which
// version the app is back on); the context's error (wrapped, errors.Is
// finds it) when ctx ends first, also after putting the previous templates
// back.
func (r *Runtime) Deploy(ctx context.Context, d slipway.Desired, progress slipway.ProgressFunc) error {
	p, err := r.plan(&d)
	if err != nil {
		return err
	}
	a := r.appFor(d.App.ID)
	if err := a.acquire(ctx); err != nil {
		return err
	}
	held := true // false once the clean-up after a success holds the lock
	defer func() {
		if held {
			a.release()
		}
	}()
	rep := newReporter(progress, r.log, d.App.ID)

	if err := r.ensureNamespace(ctx, p.ns, rep); err != nil {
		return err
	}
	r.remember(a, d.App, p.ns)
	c, err := r.cacheFor(ctx, p.ns)
	if err != nil {
		return err
	}
	running := false // is d.Release already what the app runs?
	for _, dep := range c.deployments(d.App.ID) {
		running = running || dep.Spec.Template.Labels[LabelRelease] == d.Release.ID
	}
	// Objects of another app under our names are refused before anything
	// is changed.
	for _, tp := range p.types {
		if err := r.checkOwner(ctx, p, "deployments", tp.deployment.Name); err != nil {
			return err
		}
	}

	undoSecrets, err := r.applySecrets(ctx, p)
	if err != nil {
		return err
	}
	if p.job != nil && !running {
		if err := r.releasePhase(ctx, p, rep); err != nil {
			undoSecrets()
			return err
		}
	}

	// A split (see Split) ends here: the type's Deployments roll to d on
	// the full formation while the canary Deployments keep running, and
	// only then are those deleted.
	canaries := canaryDeployments(c, d.App.ID)
	var normal *corev1.Service // the Service as it is outside a split
	if p.service != nil {
		normal = p.service.DeepCopy()
		if len(canaries) > 0 {
			if err := r.pinService(ctx, p, rep); err != nil {
				undoSecrets()
				return err
			}
		}
	}

	before := c.podList(d.App.ID)
	var (
		changes    []*change
		svcCreated bool
		svcPrev    *corev1.Service
	)
	fail := func(cause error) error {
		err := r.revert(ctx, p, changes, svcCreated, svcPrev, undoSecrets, cause, rep)
		if len(canaries) > 0 {
			// The revert put the type's Deployments back on their
			// template at the full quantity: the split's stable release.
			dctx, cancel := r.detached(ctx)
			defer cancel()
			if end := r.endSplit(dctx, p, canaries, normal, rep); end != nil {
				err = wrapCause(cause, slipway.Message(err)+" Ending the split failed too: "+slipway.Sentence(slipway.Message(end)))
			}
		}
		return err
	}
	if p.service != nil {
		if svcPrev, svcCreated, err = r.applyService(ctx, p.service); err != nil {
			return fail(err)
		}
	}
	for _, tp := range p.types {
		ch, err := r.applyDeployment(ctx, tp, before, rep)
		if ch != nil {
			if ch.prev != nil && len(canaries) > 0 {
				// Undoing a change during a split goes back to the stable
				// release on the full formation, not to the split's count.
				ch.prev.Spec.Replicas = tp.deployment.Spec.Replicas
			}
			changes = append(changes, ch)
		}
		if err != nil {
			return fail(err)
		}
	}
	targets := make([]*target, len(changes))
	for i, ch := range changes {
		targets[i] = ch.target
	}
	if err := r.await(ctx, p.ns, d.App.ID, targets, rep); err != nil {
		return fail(err)
	}
	if len(canaries) > 0 || svcPrev != nil && svcPrev.Spec.Selector[LabelRelease] != "" {
		if err := r.endSplit(ctx, p, canaries, normal, rep); err != nil {
			return err
		}
	}
	r.dropRemoved(ctx, p, targets, rep)
	held = !r.collectLater(ctx, a, p)
	return nil
}

// applySecrets applies the Secrets of p (see applySecret); undo deletes
// those it created, for a release that then fails. Nothing is left behind
// when it fails.
func (r *Runtime) applySecrets(ctx context.Context, p *plan) (undo func(), err error) {
	var created []string
	undo = func() {
		dctx, cancel := r.detached(ctx)
		defer cancel()
		for _, name := range created {
			if err := r.kc.CoreV1().Secrets(p.ns).Delete(dctx, name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
				r.log.Warn("kubernetes runtime: deleting the secret of a failed release", "namespace", p.ns, "secret", name, "err", err)
			}
		}
	}
	for _, s := range []*corev1.Secret{p.secret, p.slugSecret} {
		if s == nil {
			continue
		}
		made, err := r.applySecret(ctx, s)
		if made {
			created = append(created, s.Name)
		}
		if err != nil {
			undo()
			return nil, err
		}
	}
	return undo, nil
}

// detached returns a context for clean-up after ctx may have ended: the
// same values, its own bound.
func (r *Runtime) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), r.cfg.HealthyDeadline+30*time.Second)
}

// ensureNamespace creates the namespace, labelled as Slipway's, unless it
// exists. A service account that may not read namespaces is assumed to work
// in one that exists (a namespaced installation); if it does not, the first
// object created in it fails with a message that says so.
func (r *Runtime) ensureNamespace(ctx context.Context, ns string, rep *reporter) error {
	return r.retryBusy(ctx, func() error { return r.ensureNamespaceOnce(ctx, ns, rep) })
}

func (r *Runtime) ensureNamespaceOnce(ctx context.Context, ns string, rep *reporter) error {
	_, err := r.kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case err == nil:
		return nil
	case isForbidden(err):
		return nil
	case !isNotFound(err):
		return r.apiError(ctx, err, "get", "namespaces", "", ns)
	}
	_, err = r.kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{LabelManaged: "true"}},
	}, metav1.CreateOptions{})
	if err != nil && !isAlreadyExists(err) {
		return r.apiError(ctx, err, "create", "namespaces", "", ns)
	}
	if err == nil {
		rep.Emit(slipway.EventInfo, "", "", "namespace %s created", ns)
	}
	return nil
}

// checkOwner refuses an existing object of the name that is not the app's.
func (r *Runtime) checkOwner(ctx context.Context, p *plan, resource, name string) error {
	return r.retryBusy(ctx, func() error { return r.checkOwnerOnce(ctx, p, resource, name) })
}

func (r *Runtime) checkOwnerOnce(ctx context.Context, p *plan, resource, name string) error {
	var (
		labels map[string]string
		err    error
	)
	switch resource {
	case "deployments":
		var o *appsv1.Deployment
		if o, err = r.kc.AppsV1().Deployments(p.ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			labels = o.Labels
		}
	case "services":
		var o *corev1.Service
		if o, err = r.kc.CoreV1().Services(p.ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			labels = o.Labels
		}
	}
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return r.apiError(ctx, err, "get", resource, p.ns, name)
	}
	return ownedBy(labels, p, resource, name)
}

func ownedBy(labels map[string]string, p *plan, resource, name string) error {
	if labels[LabelAppID] == p.app.ID {
		return nil
	}
	owner := "something that is not Slipway's"
	if id := labels[LabelAppID]; id != "" {
		owner = fmt.Sprintf("another app (%s, id %s)", labels[LabelApp], id)
	}
	return slipway.Errorf(slipway.EUnprocessable, "The %s %s in namespace %s belongs to %s; Slipway will not take it over. Rename the app or remove that object.", strings.TrimSuffix(resource, "s"), name, p.ns, owner)
}

// applySecret creates s unless the release's Secret exists with the same
// data (Secrets are immutable: a different one is replaced). made reports
// whether s did not exist before.
func (r *Runtime) applySecret(ctx context.Context, s *corev1.Secret) (made bool, err error) {
	err = r.retryBusy(ctx, func() error {
		var err error
		made, err = r.applySecretOnce(ctx, s)
		return err
	})
	return made, err
}

func (r *Runtime) applySecretOnce(ctx context.Context, s *corev1.Secret) (made bool, err error) {
	api := r.kc.CoreV1().Secrets(s.Namespace)
	cur, err := api.Get(ctx, s.Name, metav1.GetOptions{})
	switch {
	case isNotFound(err):
		if _, err := api.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return false, r.apiError(ctx, err, "create", "secrets", s.Namespace, s.Name)
		}
		return true, nil
	case err != nil:
		return false, r.apiError(ctx, err, "get", "secrets", s.Namespace, s.Name)
	}
	if cur.Labels[LabelAppID] != s.Labels[LabelAppID] {
		return false, ownedBy(cur.Labels, &plan{ns: s.Namespace, app: slipway.AppRef{ID: s.Labels[LabelAppID]}}, "secrets", s.Name)
	}
	if cur.Labels[LabelRelease] == s.Labels[LabelRelease] && secretDataEqual(cur.Data, s.Data) {
		return false, nil
	}
	// Same name, other release or data (a version number reused after the
	// app was deleted and created again): replace it.
	if err := api.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
		return false, r.apiError(ctx, err, "delete", "secrets", s.Namespace, s.Name)
	}
	if _, err := api.Create(ctx, s, metav1.CreateOptions{}); err != nil {
		return false, r.apiError(ctx, err, "create", "secrets", s.Namespace, s.Name)
	}
	return false, nil
}

func secretDataEqual(a, b map[string][]byte) bool {
	return maps.EqualFunc(a, b, bytes.Equal)
}

// applyService creates or updates the app's Service; prev is the Service
// as it was before (nil when created).
func (r *Runtime) applyService(ctx context.Context, want *corev1.Service) (prev *corev1.Service, made bool, err error) {
	// What the first read of the Service found is what a revert goes
	// back to: a write that timed out may still have happened.
	seen := &first[corev1.Service]{}
	err = r.retryBusy(ctx, func() error { return r.applyServiceOnce(ctx, want, seen) })
	return seen.prev, seen.absent, err
}

// first is what the first successful read of a retried apply found: the
// object as it was (a copy), or that there was none. Later attempts
// leave it alone, so a write of an attempt that timed out but happened
// is not mistaken for what was there before.
type first[T any] struct {
	read   bool
	prev   *T
	absent bool
}

// saw records the object read (nil: not found) if nothing was recorded.
func (f *first[T]) saw(cur *T) {
	if f.read {
		return
	}
	f.read, f.prev, f.absent = true, cur, cur == nil
}

func (r *Runtime) applyServiceOnce(ctx context.Context, want *corev1.Service, seen *first[corev1.Service]) error {
	api := r.kc.CoreV1().Services(want.Namespace)
	p := &plan{ns: want.Namespace, app: slipway.AppRef{ID: want.Labels[LabelAppID]}}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := api.Get(ctx, want.Name, metav1.GetOptions{})
		if isNotFound(err) {
			seen.saw(nil)
			if _, err := api.Create(ctx, want, metav1.CreateOptions{}); err != nil {
				return r.apiError(ctx, err, "create", "services", want.Namespace, want.Name)
			}
			return nil
		}
		if err != nil {
			return r.apiError(ctx, err, "get", "services", want.Namespace, want.Name)
		}
		if err := ownedBy(cur.Labels, p, "services", want.Name); err != nil {
			return err
		}
		seen.saw(cur.DeepCopy())
		if maps.Equal(cur.Spec.Selector, want.Spec.Selector) && reflect.DeepEqual(cur.Spec.Ports, want.Spec.Ports) {
			return nil
		}
		cur.Spec.Selector = want.Spec.Selector
		cur.Spec.Ports = want.Spec.Ports
		maps.Copy(cur.Labels, want.Labels)
		_, err = api.Update(ctx, cur, metav1.UpdateOptions{})
		if err != nil && !isConflict(err) {
			return r.apiError(ctx, err, "update", "services", want.Namespace, want.Name)
		}
		return err
	})
	if isConflict(err) {
		err = r.apiError(ctx, err, "update", "services", want.Namespace, want.Name)
	}
	return err
}

// applyDeployment creates or updates the Deployment of tp. It keeps the
// restartedAt annotation of the running template, so that deploying the
// same release again does not restart it. pods are the app's pods before
// the change (those are not reported as started).
func (r *Runtime) applyDeployment(ctx context.Context, tp *typePlan, pods []*corev1.Pod, rep *reporter) (ch *change, err error) {
	seen := &first[appsv1.Deployment]{} // what a revert goes back to, as for a Service
	err = r.retryBusy(ctx, func() error {
		var err error
		ch, err = r.applyDeploymentOnce(ctx, tp, pods, rep, seen)
		return err
	})
	return ch, err
}

func (r *Runtime) applyDeploymentOnce(ctx context.Context, tp *typePlan, pods []*corev1.Pod, rep *reporter, seen *first[appsv1.Deployment]) (*change, error) {
	want := tp.deployment
	api := r.kc.AppsV1().Deployments(want.Namespace)
	ch := &change{typ: tp.typ, name: want.Name}
	var applied *appsv1.Deployment
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ch.prev = nil
		cur, err := api.Get(ctx, want.Name, metav1.GetOptions{})
		if isNotFound(err) {
			seen.saw(nil)
			applied, err = api.Create(ctx, want, metav1.CreateOptions{})
			if err != nil {
				return r.apiError(ctx, err, "create", "deployments", want.Namespace, want.Name)
			}
			return nil
		}
		if err != nil {
			return r.apiError(ctx, err, "get", "deployments", want.Namespace, want.Name)
		}
		if !apiequality.Semantic.DeepEqual(cur.Spec.Selector, want.Spec.Selector) {
			return slipway.Errorf(slipway.EUnprocessable, "The Deployment %s in namespace %s selects pods by %v, not by app id and type; delete it so that Slipway can create it again.", want.Name, want.Namespace, cur.Spec.Selector)
		}
		seen.saw(cur.DeepCopy())
		ch.prev = seen.prev
		next := cur.DeepCopy()
		if next.Labels == nil {
			next.Labels = map[string]string{}
		}
		maps.Copy(next.Labels, want.Labels)
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		tmpl := *want.Spec.Template.DeepCopy()
		if at := cur.Spec.Template.Annotations[AnnotationRestartedAt]; at != "" {
			tmpl.Annotations[AnnotationRestartedAt] = at
		}
		if templateID(cur.Spec.Template.Annotations) != templateID(tmpl.Annotations) {
			maps.Copy(next.Annotations, want.Annotations) // change-cause: only for a new template
		}
		next.Spec.Replicas = want.Spec.Replicas
		next.Spec.Template = tmpl
		next.Spec.Strategy = want.Spec.Strategy
		next.Spec.ProgressDeadlineSeconds = want.Spec.ProgressDeadlineSeconds
		next.Spec.RevisionHistoryLimit = want.Spec.RevisionHistoryLimit
		applied, err = api.Update(ctx, next, metav1.UpdateOptions{})
		if err != nil && !isConflict(err) {
			return r.apiError(ctx, err, "update", "deployments", want.Namespace, want.Name)
		}
		return err
	})
	if isConflict(err) {
		err = r.apiError(ctx, err, "update", "deployments", want.Namespace, want.Name)
	}
	if err != nil {
		if ch.prev == nil && applied == nil {
			return nil, err
		}
		return ch, err
	}
	ch.target = newTarget(tp.typ, applied, pods)
	switch {
	case ch.prev == nil:
		rep.Emit(slipway.EventInfo, "", tp.typ, "%s: rolling out v%s to %s (Deployment %s/%s created)", ch.target.what(), ch.target.version, nPods(ch.target.want), want.Namespace, want.Name)
	case templateID(ch.prev.Spec.Template.Annotations) != ch.target.tmplID:
		rep.Emit(slipway.EventInfo, "", tp.typ, "%s: rolling out v%s to %s, replacing v%s (surge %d, max unavailable %d)",
			ch.target.what(), ch.target.version, nPods(ch.target.want), ch.prev.Spec.Template.Labels[LabelVersion], r.cfg.Surge, r.cfg.MaxUnavailable)
	case ptr.Deref(ch.prev.Spec.Replicas, 1) != ch.target.want:
		rep.Emit(slipway.EventInfo, "", tp.typ, "%s: scaling v%s from %d to %s", ch.target.what(), ch.target.version, ptr.Deref(ch.prev.Spec.Replicas, 1), nPods(ch.target.want))
	}
	return ch, nil
}

// revert puts back what Deploy changed after cause made it fail, waits
// (while ctx lasts) for the previous templates to be running again, and
// returns the error to report.
func (r *Runtime) revert(ctx context.Context, p *plan, changes []*change, svcCreated bool, svcPrev *corev1.Service, undoSecrets func(), cause error, rep *reporter) error {
	msg := slipway.Sentence(causeMessage(cause))
	rep.Emit(slipway.EventFailed, "", "", "%s", msg)
	if len(changes) == 0 && !svcCreated && svcPrev == nil {
		undoSecrets()
		return cause // nothing had changed yet
	}
	dctx, cancel := r.detached(ctx)
	defer cancel()
	versions := map[string]bool{}
	var (
		targets []*target
		errs    []string
		deleted []string
	)
	var pods []*corev1.Pod
	if c, err := r.cacheFor(dctx, p.ns); err == nil {
		pods = c.podList(p.app.ID)
	}
	api := r.kc.AppsV1().Deployments(p.ns)
	for _, ch := range changes {
		if ch.prev == nil {
			err := api.Delete(dctx, ch.name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
			if err != nil && !isNotFound(err) {
				errs = append(errs, causeMessage(r.apiError(dctx, err, "delete", "deployments", p.ns, ch.name)))
			} else {
				deleted = append(deleted, ch.name)
			}
			continue
		}
		v := ch.prev.Spec.Template.Labels[LabelVersion]
		versions[v] = true
		rep.Emit(slipway.EventInfo, "", ch.typ, "%s: putting the pod template of v%s back", ch.typ, v)
		var applied *appsv1.Deployment
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := api.Get(dctx, ch.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Spec.Template = ch.prev.Spec.Template
			cur.Spec.Replicas = ch.prev.Spec.Replicas
			if cause, ok := ch.prev.Annotations[changeCause]; ok && cur.Annotations != nil {
				cur.Annotations[changeCause] = cause
			}
			applied, err = api.Update(dctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			errs = append(errs, causeMessage(r.apiError(dctx, err, "update", "deployments", p.ns, ch.name)))
			continue
		}
		targets = append(targets, newTarget(ch.typ, applied, pods))
	}
	svcAPI := r.kc.CoreV1().Services(p.ns)
	switch {
	case svcCreated:
		if err := svcAPI.Delete(dctx, p.service.Name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
			errs = append(errs, causeMessage(r.apiError(dctx, err, "delete", "services", p.ns, p.service.Name)))
		}
	case svcPrev != nil && !reflect.DeepEqual(svcPrev.Spec.Ports, p.service.Spec.Ports):
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := svcAPI.Get(dctx, svcPrev.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Spec.Ports = svcPrev.Spec.Ports
			_, err = svcAPI.Update(dctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			errs = append(errs, causeMessage(r.apiError(dctx, err, "update", "services", p.ns, svcPrev.Name)))
		}
	}
	undoSecrets()

	vs := sortedVersions(versions)
	var out string
	switch {
	case len(errs) > 0:
		for i := range errs {
			errs[i] = slipway.Sentence(errs[i])
		}
		out = msg + " Reverting failed too: " + strings.Join(errs, " ")
	case len(vs) == 0:
		out = msg + " There is no previous release to go back to: the new Deployments were deleted."
	case ctx.Err() != nil:
		out = msg + fmt.Sprintf(" The pod templates of %s were put back.", strings.Join(vs, ", "))
	default:
		if err := r.await(dctx, p.ns, p.app.ID, targets, rep); err != nil {
			out = msg + fmt.Sprintf(" The pod templates of %s were put back, but they have not rolled out again yet: %s", strings.Join(vs, ", "), slipway.Sentence(causeMessage(err)))
		} else {
			out = msg + fmt.Sprintf(" The previous pod template was put back: the app is back on %s.", strings.Join(vs, ", "))
		}
	}
	if len(deleted) > 0 && len(vs) > 0 {
		out += fmt.Sprintf(" The new Deployment(s) %s were deleted.", strings.Join(deleted, ", "))
	}
	return wrapCause(cause, out)
}

// nPods is "1 pod", "3 pods".
func nPods(n int32) string {
	if n == 1 {
		return "1 pod"
	}
	return strconv.Itoa(int(n)) + " pods"
}

// sortedVersions returns "v6", "v7"... in version order.
func sortedVersions(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for v := range set {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.Atoi(out[i])
		b, _ := strconv.Atoi(out[j])
		return a < b
	})
	for i, v := range out {
		out[i] = "v" + v
	}
	return out
}

// dropRemoved runs after a successful rollout, before Deploy returns,
// because it changes what runs and what serves: it deletes the Deployments
// of types no longer desired (each reported in the release's log) and the
// app's Service when there is no web type any more. Failures are logged:
// the release has succeeded, and the next one tries again.
//
// The app's Deployments come from the informer's cache when it has seen
// every target at the generation this Deploy wrote, as await has just
// read them: one watch delivers a namespace's Deployments in the order
// they were written, so a cache that has seen this Deploy's writes has
// seen every Deployment created before it, and under the app's lock (and
// the engine's lease between servers) no Deploy, Split or Restart of the
// app creates one meanwhile. Otherwise (no target, or await had to ask
// the API server for one) a List: a Deployment to delete must not be
// missed because its creation is still on its way to the cache.
func (r *Runtime) dropRemoved(ctx context.Context, p *plan, targets []*target, rep *reporter) {
	keep := map[string]bool{}
	for _, tp := range p.types {
		keep[tp.deployment.Name] = true
	}
	var deps []*appsv1.Deployment // read only
	if c, err := r.cacheFor(ctx, p.ns); err == nil && seenAll(c, p.app.ID, targets) {
		deps = c.deployments(p.app.ID)
	} else {
		list, err := r.kc.AppsV1().Deployments(p.ns).List(ctx, metav1.ListOptions{LabelSelector: LabelAppID + "=" + p.app.ID})
		r.warnCleanup(p, err, "list deployments")
		if err == nil {
			for i := range list.Items {
				deps = append(deps, &list.Items[i])
			}
		}
	}
	for _, dep := range deps {
		if keep[dep.Name] {
			continue
		}
		typ := dep.Labels[LabelType]
		err := r.kc.AppsV1().Deployments(p.ns).Delete(ctx, dep.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
		r.warnCleanup(p, err, "delete deployment "+dep.Name)
		if err == nil {
			rep.Emit(slipway.EventStopped, "", typ, "%s: no longer in the formation; Deployment %s deleted", typ, dep.Name)
		}
	}
	// Not left to collect: another server may hold the app next, and
	// deploy a web type (and so this Service) before collect would run.
	if p.service == nil {
		svc, err := r.kc.CoreV1().Services(p.ns).Get(ctx, serviceName(p.app.Name), metav1.GetOptions{})
		if err == nil && svc.Labels[LabelAppID] == p.app.ID {
			r.warnCleanup(p, r.kc.CoreV1().Services(p.ns).Delete(ctx, svc.Name, metav1.DeleteOptions{}), "delete service")
		} else {
			r.warnCleanup(p, err, "get service")
		}
	}
}

// seenAll reports whether the cache holds the Deployment of every target
// (at least one) as observed at the generation the rollout waited for.
func seenAll(c *nsCache, appID string, ts []*target) bool {
	for _, t := range ts {
		dep := c.deployment(appID, t.name)
		if dep == nil || dep.Generation < t.gen || dep.Status.ObservedGeneration < t.gen {
			return false
		}
	}
	return len(ts) > 0
}

// warnCleanup logs a failed call of a clean-up after a release; a missing
// object is no failure, nor is a call cancelled (by Close): the next
// release's clean-up does it.
func (r *Runtime) warnCleanup(p *plan, err error, what string) {
	if err != nil && !isNotFound(err) && !errors.Is(err, context.Canceled) {
		r.log.Warn("kubernetes runtime: clean-up after a release", "app", p.app.ID, "what", what, "err", err)
	}
}

// collectLater runs collect after Deploy has returned, so that the
// release is recorded as succeeded without waiting for the API calls of
// pure tidying (at the client's QPS, behind those of every other release
// in flight). The goroutine takes over the app's lock from Deploy and
// releases it when done, so the next Deploy, Restart or Remove of the app
// on this server starts after it; its context keeps ctx's values, has its
// own bound (detached) and ends when the runtime is closed (Close waits
// for it). It reports false, and runs nothing, once the runtime is
// closed: the caller keeps the lock. Losing a collection (a crash, Close)
// is harmless: the next release's collect deletes every version below its own
// minus RevisionHistory, not just the one that fell out of the window.
func (r *Runtime) collectLater(ctx context.Context, a *app, p *plan) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.collecting.Add(1)
	go func() {
		defer r.collecting.Done()
		defer a.release()
		cctx, cancel := r.detached(ctx)
		defer cancel()
		defer context.AfterFunc(r.stopCollect, cancel)()
		r.collect(cctx, p)
	}()
	return true
}

// collect deletes the Secrets and release Jobs of versions below the
// release's minus RevisionHistory (it keeps vN-5 to vN), whichever release
// left them. Failures are logged; it stops when ctx ends.
func (r *Runtime) collect(ctx context.Context, p *plan) {
	oldest := p.release.Version - RevisionHistory
	if oldest <= 1 {
		return // versions start at 1: nothing is that old
	}
	sel := metav1.ListOptions{LabelSelector: LabelAppID + "=" + p.app.ID}
	old := func(l map[string]string) bool {
		v, err := strconv.Atoi(l[LabelVersion])
		return err == nil && v < oldest
	}
	secrets, err := r.kc.CoreV1().Secrets(p.ns).List(ctx, sel)
	r.warnCleanup(p, err, "list secrets")
	if err == nil {
		for _, s := range secrets.Items {
			if ctx.Err() != nil {
				return
			}
			if old(s.Labels) {
				r.warnCleanup(p, r.kc.CoreV1().Secrets(p.ns).Delete(ctx, s.Name, metav1.DeleteOptions{}), "delete secret "+s.Name)
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	jobs, err := r.kc.BatchV1().Jobs(p.ns).List(ctx, sel)
	r.warnCleanup(p, err, "list jobs")
	if err == nil {
		for _, j := range jobs.Items {
			if ctx.Err() != nil {
				return
			}
			if old(j.Labels) {
				r.warnCleanup(p, r.kc.BatchV1().Jobs(p.ns).Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}), "delete job "+j.Name)
			}
		}
	}
}
