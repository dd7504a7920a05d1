package kube

import corev1 "k8s.io/api/core/v1"

// CountDynos counts the app pods (not release-phase pods) of every
// namespace this server watches, by dyno state, from the informer
// caches: no API call. Namespaces whose cache has not synced yet are left
// out.
func (r *Runtime) CountDynos() map[string]int {
	r.mu.Lock()
	caches := make([]*nsCache, 0, len(r.caches))
	for _, c := range r.caches {
		caches = append(caches, c)
	}
	r.mu.Unlock()
	counts := map[string]int{}
	for _, c := range caches {
		select {
		case <-c.synced:
		default:
			continue
		}
		for _, o := range c.pods.GetStore().List() {
			pod, ok := o.(*corev1.Pod)
			if !ok || pod.Labels[LabelAppID] == "" || pod.Labels[LabelType] == "release" {
				continue
			}
			state, _ := podState(pod)
			counts[state]++
		}
	}
	return counts
}
