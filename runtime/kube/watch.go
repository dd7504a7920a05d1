package kube

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// What the runtime reads from the cluster over and over (the app's
// Deployments, pods and release Jobs) comes from one set of shared
// informers per namespace: a list when the namespace is first used, then
// one watch per resource, however many apps live there. A rollout waits on
// the events of its app instead of listing every PollInterval, and Dynos
// answers from memory, so the API server's load grows with what changes,
// not with the number of apps times the number of readers.
//
// The informers select objects with an app-id label only, so a namespace
// shared with other workloads does not fill the cache with theirs. They
// start on first use (Deploy, or Dynos/Restart/Remove once locate found
// the namespace) and stop on Close. Writes and the reads before a write
// (Get then Update) still go to the API server: a cache may be a few
// milliseconds behind, and a write must start from the latest object.

// indexAppID indexes cached objects by their app-id label.
const indexAppID = "app-id"

// nsCache is the informers of one namespace and the rollouts waiting on
// their events.
type nsCache struct {
	ns      string
	factory informers.SharedInformerFactory
	deps    cache.SharedIndexInformer
	pods    cache.SharedIndexInformer
	jobs    cache.SharedIndexInformer
	stop    chan struct{}

	// synced is closed once every informer has listed; failed is closed
	// (err set) when an informer's list or watch was refused before or
	// after that, or a list failed before it: the cache is then dropped
	// and the next user starts a new one.
	synced   chan struct{}
	failed   chan struct{}
	failOnce sync.Once
	err      error

	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{} // app id → waiters
}

// cacheFor returns the namespace's cache once it has listed everything,
// starting it on first use. Errors: EUnprocessable when a list or watch is
// refused or fails (naming the verb and resource); the context's error when
// ctx ends first.
func (r *Runtime) cacheFor(ctx context.Context, ns string) (*nsCache, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("kubernetes runtime: closed")
	}
	c := r.caches[ns]
	if c == nil {
		c = r.startCache(ns)
		r.caches[ns] = c
	}
	r.mu.Unlock()

	// WaitForCacheSync checks every 100ms; a first release should not wait
	// that long for an empty namespace.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.synced:
			return c, nil
		case <-c.failed:
			r.dropCache(c)
			return nil, r.apiErrorFrom(ctx, c)
		case <-ctx.Done():
			return nil, r.apiError(ctx, ctx.Err(), "list", "pods", ns, "")
		case <-tick.C:
			if c.deps.HasSynced() && c.pods.HasSynced() && c.jobs.HasSynced() {
				c.markSynced()
			}
		}
	}
}

func (c *nsCache) markSynced() {
	select {
	case <-c.synced:
	default:
		close(c.synced)
	}
}

// startCache creates and starts the informers of ns; r.mu is held.
func (r *Runtime) startCache(ns string) *nsCache {
	c := &nsCache{
		ns: ns, stop: make(chan struct{}), synced: make(chan struct{}), failed: make(chan struct{}),
		subs: map[string]map[chan struct{}]struct{}{},
	}
	c.factory = informers.NewSharedInformerFactoryWithOptions(r.kc, 0,
		informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelAppID }),
		informers.WithTransform(stripManagedFields))
	c.deps = c.factory.Apps().V1().Deployments().Informer()
	c.pods = c.factory.Core().V1().Pods().Informer()
	c.jobs = c.factory.Batch().V1().Jobs().Informer()
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.notify(obj) },
		UpdateFunc: func(_, obj any) { c.notify(obj) },
		DeleteFunc: func(obj any) { c.notify(obj) },
	}
	for _, inf := range []struct {
		informer cache.SharedIndexInformer
		resource string
	}{{c.deps, "deployments"}, {c.pods, "pods"}, {c.jobs, "jobs"}} {
		// Neither can fail before the informer starts.
		_ = inf.informer.AddIndexers(cache.Indexers{indexAppID: byAppID})
		_, _ = inf.informer.AddEventHandler(handler)
		resource := inf.resource
		_ = inf.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, _ *cache.Reflector, err error) {
			r.watchError(c, resource, err)
		})
	}
	c.factory.Start(c.stop)
	return c
}

// watchError decides what an informer's failed list or watch means. Before
// the first sync any failure fails the callers waiting for it (as a failed
// List did before the runtime watched); afterwards only a refusal does
// (the service account lacks list or watch: the cache would go stale), and
// anything else is retried by the informer with backoff.
func (r *Runtime) watchError(c *nsCache, resource string, err error) {
	if errors.Is(err, context.Canceled) {
		return // Close
	}
	select {
	case <-c.synced:
		if !isForbidden(err) {
			r.log.Debug("kubernetes runtime: watch failed; retrying", "namespace", c.ns, "resource", resource, "err", err)
			return
		}
	default:
	}
	verb := "watch"
	if strings.Contains(err.Error(), "failed to list") {
		verb = "list"
	}
	c.failOnce.Do(func() {
		c.err = r.apiError(context.Background(), err, verb, resource, c.ns, "")
		r.log.Warn("kubernetes runtime: cannot watch the namespace", "namespace", c.ns, "err", c.err)
		close(c.failed)
	})
}

// apiErrorFrom is the error of a failed cache.
func (r *Runtime) apiErrorFrom(ctx context.Context, c *nsCache) error {
	if ctx.Err() != nil {
		return r.apiError(ctx, ctx.Err(), "list", "pods", c.ns, "")
	}
	return c.err
}

// dropCache stops a failed cache so that the next caller starts afresh.
func (r *Runtime) dropCache(c *nsCache) {
	r.mu.Lock()
	if r.caches[c.ns] == c {
		delete(r.caches, c.ns)
	} else {
		c = nil // already dropped
	}
	r.mu.Unlock()
	if c != nil {
		close(c.stop)
		go c.factory.Shutdown()
	}
}

// Close stops the informers and the clean-ups still running after a
// release (see collectLater): it cancels them and waits until they have
// returned, so no goroutine of the runtime outlives it (what they did not
// delete, the next release's clean-up does). Calls after Close that need
// the cluster's state fail. It returns nil; the error is there for the
// server's closers.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	caches := r.caches
	r.caches = map[string]*nsCache{}
	r.mu.Unlock()
	r.cancelCollect()
	r.collecting.Wait()
	for _, c := range caches {
		close(c.stop)
	}
	for _, c := range caches {
		c.factory.Shutdown()
	}
	return nil
}

// subscribe returns a channel that receives after any change to a cached
// object of the app, and the function that ends the subscription.
func (c *nsCache) subscribe(appID string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.subs[appID] == nil {
		c.subs[appID] = map[chan struct{}]struct{}{}
	}
	c.subs[appID][ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		delete(c.subs[appID], ch)
		if len(c.subs[appID]) == 0 {
			delete(c.subs, appID)
		}
		c.mu.Unlock()
	}
}

func (c *nsCache) notify(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	id := m.GetLabels()[LabelAppID]
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.subs[id] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
}

// deployments returns the app's cached Deployments by name. They are
// shared with the cache: read them, never change them.
func (c *nsCache) deployments(appID string) []*appsv1.Deployment {
	objs, _ := c.deps.GetIndexer().ByIndex(indexAppID, appID)
	out := make([]*appsv1.Deployment, 0, len(objs))
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// deployment returns the app's cached Deployment of the name, nil if none.
func (c *nsCache) deployment(appID, name string) *appsv1.Deployment {
	obj, ok, _ := c.deps.GetIndexer().GetByKey(c.ns + "/" + name)
	if d, _ := obj.(*appsv1.Deployment); ok && d != nil && d.Labels[LabelAppID] == appID {
		return d
	}
	return nil
}

// podList returns the app's cached pods by creation, then name; read
// only.
func (c *nsCache) podList(appID string) []*corev1.Pod {
	objs, _ := c.pods.GetIndexer().ByIndex(indexAppID, appID)
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return podLess(out[i], out[j]) })
	return out
}

// job returns the cached Job of the name, nil if none.
func (c *nsCache) job(name string) *batchv1.Job {
	obj, ok, _ := c.jobs.GetIndexer().GetByKey(c.ns + "/" + name)
	if j, _ := obj.(*batchv1.Job); ok && j != nil {
		return j
	}
	return nil
}

// podValues copies cached pods into a slice of values (for code that
// keeps them).
func podValues(pods []*corev1.Pod) []corev1.Pod {
	out := make([]corev1.Pod, len(pods))
	for i, p := range pods {
		out[i] = *p.DeepCopy()
	}
	return out
}

func byAppID(obj any) ([]string, error) {
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, nil
	}
	if id := m.GetLabels()[LabelAppID]; id != "" {
		return []string{id}, nil
	}
	return nil, nil
}

// stripManagedFields drops what the runtime never reads (server-side apply
// bookkeeping, often the largest part of an object) before it is cached.
// It strips a copy: the object may be shared with whoever sent it
// (client-go's fake clientset hands a new watch the objects it stores).
func stripManagedFields(obj any) (any, error) {
	m, err := meta.Accessor(obj)
	if err != nil || len(m.GetManagedFields()) == 0 {
		return obj, nil
	}
	o, ok := obj.(runtime.Object)
	if !ok {
		return obj, nil
	}
	o = o.DeepCopyObject()
	if m, err := meta.Accessor(o); err == nil {
		m.SetManagedFields(nil)
	}
	return o, nil
}
