package kube

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	slipway "github.com/slipway/slipway"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
)

// Dynos lists the app's pods (not those of its release phase) as dynos,
// by type, then age, then name: Name is the pod's name, ID its uid, State
// from the pod's phase and container states (starting, running, crashed,
// stopping, stopped), Ready from its Ready condition, Release from its
// labels, AdditionalInfo the reason when it is not running plus restarts
// and node. An app with nothing in the cluster has none; that is not an
// error. They come from the namespace's informers (watch.go), not a call
// per request. Errors: EUnprocessable when the pods may not be listed or
// watched.
func (r *Runtime) Dynos(ctx context.Context, appID string) ([]slipway.Dyno, error) {
	a, _ := r.resolve(appID)
	ns, err := r.locate(ctx, a)
	if err != nil || ns == "" {
		return []slipway.Dyno{}, err
	}
	c, err := r.cacheFor(ctx, ns)
	if err != nil {
		return nil, err
	}
	pods := c.podList(a.id)
	items := make([]*corev1.Pod, 0, len(pods))
	for _, pod := range pods {
		if pod.Labels[LabelType] != "release" {
			items = append(items, pod)
		}
	}
	sort.Slice(items, func(i, j int) bool {
		if ti, tj := items[i].Labels[LabelType], items[j].Labels[LabelType]; ti != tj {
			return ti < tj
		}
		return podLess(items[i], items[j])
	})
	out := make([]slipway.Dyno, 0, len(items))
	for _, pod := range items {
		out = append(out, podDyno(pod))
	}
	return out, nil
}

// podDyno describes a pod as a dyno.
func podDyno(pod *corev1.Pod) slipway.Dyno {
	state, info := podState(pod)
	version, _ := strconv.Atoi(pod.Labels[LabelVersion])
	d := slipway.Dyno{
		ID:        string(pod.UID),
		Name:      pod.Name,
		Instance:  podInstance(pod.Name),
		Type:      pod.Labels[LabelType],
		State:     state,
		Ready:     podReady(pod),
		Release:   slipway.ReleaseRef{ID: pod.Labels[LabelRelease], Version: version},
		CreatedAt: pod.CreationTimestamp.UTC(),
		UpdatedAt: pod.CreationTimestamp.UTC(),
	}
	for _, c := range pod.Status.Conditions {
		if c.LastTransitionTime.After(d.UpdatedAt) {
			d.UpdatedAt = c.LastTransitionTime.UTC()
		}
	}
	if len(pod.Spec.Containers) > 0 {
		c := pod.Spec.Containers[0]
		if len(c.Command) == 3 && c.Command[0] == "/bin/sh" && c.Command[1] == "-c" {
			d.Command = c.Command[2]
		} else {
			d.Command = strings.Join(append(append([]string(nil), c.Command...), c.Args...), " ")
		}
	}
	var notes []string
	if info != "" {
		notes = append(notes, info)
	}
	restarts := int32(0)
	for _, cs := range pod.Status.ContainerStatuses {
		restarts += cs.RestartCount
	}
	if restarts > 0 {
		notes = append(notes, fmt.Sprintf("%d restarts", restarts))
	}
	if pod.Spec.NodeName != "" {
		notes = append(notes, "node "+pod.Spec.NodeName)
	}
	d.AdditionalInfo = strings.Join(notes, "; ")
	return d
}

// podInstance is a pod's name within its type: what its Deployment's
// ReplicaSet adds to the Deployment's name (the pod-template hash and a
// random suffix, "7d9f8c5b4-x2k4q"), so that clients print web.7d9f8c5b4-x2k4q
// as Akkeris clients do. A name of another form is its own instance.
func podInstance(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return name
	}
	j := strings.LastIndexByte(name[:i], '-')
	if j < 0 {
		return name
	}
	return name[j+1:]
}

// podState maps a pod to a dyno state and, when it is not running, why.
func podState(pod *corev1.Pod) (state, info string) {
	switch {
	case pod.DeletionTimestamp != nil:
		return slipway.DynoStopping, "terminating"
	case pod.Status.Phase == corev1.PodSucceeded:
		return slipway.DynoStopped, "exited"
	case pod.Status.Phase == corev1.PodFailed:
		return slipway.DynoCrashed, strings.TrimSpace(pod.Status.Reason + " " + pod.Status.Message)
	}
	if p := podFailure(pod); p != "" {
		return slipway.DynoCrashed, p
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil {
			return slipway.DynoCrashed, fmt.Sprintf("exited with code %d", t.ExitCode)
		}
	}
	if pod.Status.Phase == corev1.PodRunning && podReady(pod) {
		return slipway.DynoRunning, ""
	}
	if w := waitingReason(pod); w != "" {
		return slipway.DynoStarting, w
	}
	if pod.Status.Phase == corev1.PodRunning {
		return slipway.DynoStarting, "not ready"
	}
	return slipway.DynoStarting, string(pod.Status.Phase)
}

// Restart replaces the app's pods with fresh ones of the same template:
// dyno "" restarts every Deployment with pods, a formation type restarts
// its Deployments (both by setting the restartedAt annotation on the pod
// template: a rolling update with the Deploy rules, reverted if it fails),
// and "type.instance", a pod name or uid deletes that pod and waits until
// its replacement is ready (see slipway.Dyno.Selected). Errors: ENotFound
// for an app with nothing in the cluster or a target that selects no dyno;
// otherwise as Deploy.
func (r *Runtime) Restart(ctx context.Context, appID, dyno string, progress slipway.ProgressFunc) error {
	a, _ := r.resolve(appID)
	ns, err := r.locate(ctx, a)
	if err != nil {
		return err
	}
	if ns == "" {
		return slipway.Errorf(slipway.ENotFound, "App %s has no dynos: it has not been released yet.", appID)
	}
	if err := a.acquire(ctx); err != nil {
		return err
	}
	defer a.release()
	rep := newReporter(progress, r.log, a.id)
	c, err := r.cacheFor(ctx, ns)
	if err != nil {
		return err
	}
	// The Deployments from the API server, not the cache: Restart writes
	// to them next, and a release that just ended may not have reached the
	// cache yet.
	list, err := r.kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: LabelAppID + "=" + a.id})
	if err != nil {
		return r.apiError(ctx, err, "list", "deployments", ns, "")
	}
	deps := make([]*appsv1.Deployment, len(list.Items))
	for i := range list.Items {
		deps[i] = &list.Items[i]
	}
	if len(deps) == 0 {
		return slipway.Errorf(slipway.ENotFound, "App %s has no dynos: it has not been released yet.", appID)
	}
	pods := c.podList(a.id)
	var restart []*appsv1.Deployment
	for _, dep := range deps {
		if dyno == "" && ptr.Deref(dep.Spec.Replicas, 1) > 0 || dyno == dep.Labels[LabelType] {
			restart = append(restart, dep)
		}
	}
	if dyno != "" && len(restart) == 0 {
		for _, pod := range pods {
			if d := podDyno(pod); !d.Selected(dyno) || pod.Labels[LabelType] == "release" {
				continue
			}
			for _, dep := range deps {
				if dep.Labels[LabelType] == pod.Labels[LabelType] && dep.Spec.Template.Labels[LabelTrack] == pod.Labels[LabelTrack] {
					return r.restartPod(ctx, ns, dep, pod, pods, rep)
				}
			}
		}
		return slipway.Errorf(slipway.ENotFound, "App %s has no dyno %q.", appID, dyno)
	}

	at := r.now().UTC().Format(time.RFC3339Nano)
	api := r.kc.AppsV1().Deployments(ns)
	var changes []*change
	p := &plan{ns: ns, app: slipway.AppRef{ID: a.id}}
	for _, dep := range restart {
		typ := dep.Labels[LabelType]
		ch := &change{typ: typ, name: dep.Name}
		var applied *appsv1.Deployment
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := api.Get(ctx, dep.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			ch.prev = cur.DeepCopy()
			if cur.Spec.Template.Annotations == nil {
				cur.Spec.Template.Annotations = map[string]string{}
			}
			cur.Spec.Template.Annotations[AnnotationRestartedAt] = at
			applied, err = api.Update(ctx, cur, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			err = r.apiError(ctx, err, "update", "deployments", ns, dep.Name)
			if ch.prev != nil && applied != nil {
				changes = append(changes, ch)
			}
			return r.revert(ctx, p, changes, false, nil, func() {}, err, rep)
		}
		ch.target = newTarget(typ, applied, pods)
		changes = append(changes, ch)
		rep.Emit(slipway.EventInfo, "", typ, "%s: restarting %s of v%s (surge %s, max unavailable %s)", typ, nPods(ch.target.want), ch.target.version,
			strategyValue(applied, true), strategyValue(applied, false))
	}
	targets := make([]*target, len(changes))
	for i, ch := range changes {
		targets[i] = ch.target
	}
	if err := r.await(ctx, ns, a.id, targets, rep); err != nil {
		return r.revert(ctx, p, changes, false, nil, func() {}, err, rep)
	}
	return nil
}

func strategyValue(dep *appsv1.Deployment, surge bool) string {
	ru := dep.Spec.Strategy.RollingUpdate
	if ru == nil {
		return "default"
	}
	v := ru.MaxUnavailable
	if surge {
		v = ru.MaxSurge
	}
	if v == nil {
		return "default"
	}
	return v.String()
}

// restartPod deletes one pod and waits until its Deployment runs as many
// ready pods as it wants without it. A replacement that does not get ready
// within HealthyDeadline fails the restart; there is nothing to revert.
func (r *Runtime) restartPod(ctx context.Context, ns string, dep *appsv1.Deployment, pod *corev1.Pod, pods []*corev1.Pod, rep *reporter) error {
	typ := dep.Labels[LabelType]
	t := newTarget(typ, dep, pods)
	t.exclude, t.strict = pod.Name, true
	delete(t.known, pod.Name)
	delete(t.ready, pod.Name)
	t.old[pod.Name] = pod.Labels[LabelVersion]
	if err := r.kc.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil && !isNotFound(err) {
		return r.apiError(ctx, err, "delete", "pods", ns, pod.Name)
	}
	rep.Emit(slipway.EventInfo, pod.Name, typ, "%s: restarting %s (v%s); its Deployment replaces it", typ, pod.Name, pod.Labels[LabelVersion])
	if err := r.await(ctx, ns, dep.Labels[LabelAppID], []*target{t}, rep); err != nil {
		return wrapCause(err, fmt.Sprintf("Restarting %s failed: %s The other pods kept running.", pod.Name, causeMessage(err)))
	}
	return nil
}

// Remove deletes what the runtime created for the app: its Deployments
// (their ReplicaSets and pods go with them), Service, Secrets and release
// Jobs, selected by the app-id and managed labels. It never deletes the
// namespace. Removing an app with nothing in the cluster is not an error.
// It waits for a running Deploy of the app. Errors: EUnprocessable when a
// delete is refused (naming the verb and resource).
func (r *Runtime) Remove(ctx context.Context, appID string) error {
	a, _ := r.resolve(appID)
	if err := a.acquire(ctx); err != nil {
		return err
	}
	defer a.release()
	ns, err := r.locate(ctx, a)
	if err != nil || ns == "" {
		return err
	}
	sel := metav1.ListOptions{LabelSelector: LabelAppID + "=" + a.id + "," + LabelManaged + "=true"}
	bg := metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)}
	del := func(resource string, names []string, fn func(string) error) error {
		for _, n := range names {
			if err := fn(n); err != nil && !isNotFound(err) {
				return r.apiError(ctx, err, "delete", resource, ns, n)
			}
		}
		return nil
	}
	deps, err := r.kc.AppsV1().Deployments(ns).List(ctx, sel)
	if err != nil {
		return r.apiError(ctx, err, "list", "deployments", ns, "")
	}
	var names []string
	for _, o := range deps.Items {
		names = append(names, o.Name)
	}
	if err := del("deployments", names, func(n string) error { return r.kc.AppsV1().Deployments(ns).Delete(ctx, n, bg) }); err != nil {
		return err
	}
	svcs, err := r.kc.CoreV1().Services(ns).List(ctx, sel)
	if err != nil {
		return r.apiError(ctx, err, "list", "services", ns, "")
	}
	names = names[:0]
	for _, o := range svcs.Items {
		names = append(names, o.Name)
	}
	if err := del("services", names, func(n string) error { return r.kc.CoreV1().Services(ns).Delete(ctx, n, metav1.DeleteOptions{}) }); err != nil {
		return err
	}
	jobs, err := r.kc.BatchV1().Jobs(ns).List(ctx, sel)
	if err != nil {
		return r.apiError(ctx, err, "list", "jobs", ns, "")
	}
	names = names[:0]
	for _, o := range jobs.Items {
		names = append(names, o.Name)
	}
	if err := del("jobs", names, func(n string) error { return r.kc.BatchV1().Jobs(ns).Delete(ctx, n, bg) }); err != nil {
		return err
	}
	secrets, err := r.kc.CoreV1().Secrets(ns).List(ctx, sel)
	if err != nil {
		return r.apiError(ctx, err, "list", "secrets", ns, "")
	}
	names = names[:0]
	for _, o := range secrets.Items {
		names = append(names, o.Name)
	}
	if err := del("secrets", names, func(n string) error { return r.kc.CoreV1().Secrets(ns).Delete(ctx, n, metav1.DeleteOptions{}) }); err != nil {
		return err
	}
	r.forget(a)
	return nil
}
