package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Labels the Kubernetes runtime puts on pods (runtime/kube).
const (
	labelAppID   = "slipway.io/app-id"
	labelRelease = "slipway.io/release"
	labelType    = "slipway.io/type"
)

// readyPod is when a pod was first seen Ready.
type readyPod struct {
	release  string
	created  time.Time
	seen     time.Time // when this watch saw it Ready (sub-second)
	lastTran time.Time // the Ready condition's lastTransitionTime (whole seconds)
}

// podWatch records, for every pod of the namespace, when it became Ready:
// the release's "last new pod Ready" is the latest of its pods. Pods are
// deleted by the next rollout, so they are recorded as they come.
type podWatch struct {
	kc   kubernetes.Interface
	ns   string
	mu   sync.Mutex
	pods map[string]readyPod // by pod UID
	// complete is when a Deployment was first seen rolled out on a
	// release: generation observed, every replica updated and available,
	// no other (the runtime's own test of done); by release id, the
	// latest over the release's Deployments.
	complete map[string]time.Time
}

func newKubeClient(path string) (kubernetes.Interface, error) {
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 100, 200
	return kubernetes.NewForConfig(rc)
}

// watchPods starts the watch of the namespace's pods; it runs until ctx ends.
func watchPods(ctx context.Context, kc kubernetes.Interface, ns string) (*podWatch, error) {
	w := &podWatch{kc: kc, ns: ns, pods: map[string]readyPod{}, complete: map[string]time.Time{}}
	f := informers.NewSharedInformerFactoryWithOptions(kc, 0, informers.WithNamespace(ns))
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.saw,
		UpdateFunc: func(_, obj any) { w.saw(obj) },
	}); err != nil {
		return nil, err
	}
	dinf := f.Apps().V1().Deployments().Informer()
	if _, err := dinf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.sawDeployment,
		UpdateFunc: func(_, obj any) { w.sawDeployment(obj) },
	}); err != nil {
		return nil, err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced, dinf.HasSynced) {
		return nil, fmt.Errorf("pod watch of %s did not sync", ns)
	}
	return w, nil
}

func (w *podWatch) sawDeployment(obj any) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	st := d.Status
	if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.AvailableReplicas != want || st.Replicas != want {
		return
	}
	rel := d.Spec.Template.Labels[labelRelease]
	now := time.Now()
	w.mu.Lock()
	if _, ok := w.complete[rel+"/"+d.Name]; !ok {
		w.complete[rel+"/"+d.Name] = now
		if now.After(w.complete[rel]) {
			w.complete[rel] = now
		}
	}
	w.mu.Unlock()
}

// completed is when each release's Deployments were last seen rolled out.
func (w *podWatch) completed() map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]time.Time, len(w.complete))
	for k, v := range w.complete {
		out[k] = v
	}
	return out
}

func (w *podWatch) saw(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	for _, c := range p.Status.Conditions {
		if c.Type != corev1.PodReady || c.Status != corev1.ConditionTrue {
			continue
		}
		w.mu.Lock()
		if _, ok := w.pods[string(p.UID)]; !ok {
			w.pods[string(p.UID)] = readyPod{release: p.Labels[labelRelease], created: p.CreationTimestamp.Time, seen: now, lastTran: c.LastTransitionTime.Time}
		}
		w.mu.Unlock()
	}
}

// lastReady returns, for each release, the latest time one of its pods
// created before cutoff became Ready: as this watch saw it, and as the
// pod's condition says (whole seconds).
func (w *podWatch) lastReady(cutoff time.Time) (seen, lastTran map[string]time.Time) {
	seen, lastTran = map[string]time.Time{}, map[string]time.Time{}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.pods {
		// Pods are stamped in whole seconds: a second's slack keeps the
		// release's own last pod, and the restart comes later than that.
		if p.created.After(cutoff.Add(time.Second)) {
			continue
		}
		if p.seen.After(seen[p.release]) {
			seen[p.release] = p.seen
		}
		if p.lastTran.After(lastTran[p.release]) {
			lastTran[p.release] = p.lastTran
		}
	}
	return seen, lastTran
}

// appPods lists the app's pods that are not terminating, by release id,
// and how many of them are Ready.
func (w *podWatch) appPods(ctx context.Context) (map[string][]corev1.Pod, error) {
	list, err := w.kc.CoreV1().Pods(w.ns).List(ctx, metav1.ListOptions{LabelSelector: labelAppID})
	if err != nil {
		return nil, err
	}
	out := map[string][]corev1.Pod{}
	for _, p := range list.Items {
		out[p.Labels[labelAppID]] = append(out[p.Labels[labelAppID]], p)
	}
	return out, nil
}

func podReady(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
