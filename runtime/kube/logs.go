package kube

import (
	"bufio"
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	slipway "github.com/slipway/slipway"
)

// logPodsEvery is how often a followed log looks for new pods of the app.
const logPodsEvery = 2 * time.Second

// Logs reads the app's pod logs through the API server (pods/log, with the
// kubelet's timestamps): the newest q.Lines lines of each pod, merged by
// time and cut to q.Lines, then, with q.Follow, a follow stream of each pod
// (pods that start later are picked up every two seconds). q.Dyno names a
// dyno as Dynos shows it (type.name), a pod, or a process type. A pod's
// logs last as long as the pod: older output is gone with it.
func (r *Runtime) Logs(ctx context.Context, appID string, q slipway.LogQuery, fn func([]slipway.LogLine) error) error {
	a, _ := r.resolve(appID)
	ns, err := r.locate(ctx, a)
	if err != nil {
		return err
	}
	if ns == "" { // never placed: no pods, no logs
		return fn(nil)
	}
	c, err := r.cacheFor(ctx, ns)
	if err != nil {
		return err
	}
	pods := logPods(c.podList(a.id), q.Dyno)
	start := metav1.NewTime(r.now())
	var first []slipway.LogLine
	newest := map[string]time.Time{} // per pod, the last line sent: follow skips up to it
	if q.Lines > 0 {
		for _, pod := range pods {
			lines, err := r.podLogs(ctx, ns, pod, &corev1.PodLogOptions{TailLines: ptr.To(int64(q.Lines))})
			if err != nil {
				r.log.Warn("reading pod logs", "app", a.id, "pod", pod.Name, "err", err)
				continue
			}
			if len(lines) > 0 {
				newest[pod.Name] = lines[len(lines)-1].Time
			}
			first = append(first, lines...)
		}
	}
	sort.SliceStable(first, func(i, j int) bool { return first[i].Time.Before(first[j].Time) })
	if len(first) > q.Lines {
		first = first[len(first)-q.Lines:]
	}
	if err := fn(first); err != nil || !q.Follow {
		return err
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer wg.Wait()
	defer cancel() // first: the followers end, then they are waited for
	out := make(chan slipway.LogLine)
	followed := map[string]bool{}
	follow := func(pods []*corev1.Pod) {
		for _, pod := range pods {
			if followed[string(pod.UID)] || pod.Status.Phase == corev1.PodPending {
				continue
			}
			followed[string(pod.UID)] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.followPod(ctx, ns, pod, start, newest[pod.Name], out)
			}()
		}
	}
	follow(pods)
	tick := time.NewTicker(logPodsEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			follow(logPods(c.podList(a.id), q.Dyno))
		case l := <-out:
			if err := fn([]slipway.LogLine{l}); err != nil {
				return err
			}
		}
	}
}

// followPod streams one pod's new lines to out (those after skip, since
// since) until the pod's container ends or ctx does.
func (r *Runtime) followPod(ctx context.Context, ns string, pod *corev1.Pod, since metav1.Time, skip time.Time, out chan<- slipway.LogLine) {
	opts := &corev1.PodLogOptions{Follow: true, Timestamps: true, Container: podContainer(pod), SinceTime: &since}
	if !skip.IsZero() {
		t := metav1.NewTime(skip)
		opts.SinceTime = &t
	}
	rc, err := r.kc.CoreV1().Pods(ns).GetLogs(pod.Name, opts).Stream(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("following pod logs", "pod", pod.Name, "err", err)
		}
		return
	}
	defer rc.Close()
	dyno := podDynoName(pod)
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := parsePodLogLine(sc.Text(), dyno)
		if !skip.IsZero() && !l.Time.After(skip) {
			continue // sent by the tail already (SinceTime has whole seconds)
		}
		select {
		case out <- l:
		case <-ctx.Done():
			return
		}
	}
}

// podLogs reads one pod's logs with opts (timestamps on, its container).
func (r *Runtime) podLogs(ctx context.Context, ns string, pod *corev1.Pod, opts *corev1.PodLogOptions) ([]slipway.LogLine, error) {
	opts.Timestamps, opts.Container = true, podContainer(pod)
	b, err := r.kc.CoreV1().Pods(ns).GetLogs(pod.Name, opts).DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	dyno := podDynoName(pod)
	text := strings.TrimSuffix(string(b), "\n")
	if text == "" {
		return nil, nil
	}
	var out []slipway.LogLine
	for _, line := range strings.Split(text, "\n") {
		out = append(out, parsePodLogLine(line, dyno))
	}
	return out, nil
}

// logPods keeps the pods whose dyno name, pod name or process type is
// dyno ("" keeps all).
func logPods(pods []*corev1.Pod, dyno string) []*corev1.Pod {
	if dyno == "" {
		return pods
	}
	var out []*corev1.Pod
	for _, pod := range pods {
		if dyno == pod.Name || dyno == podDynoName(pod) || dyno == pod.Labels[LabelType] {
			out = append(out, pod)
		}
	}
	return out
}

// podDynoName is the pod's dyno as log lines name it: type.name.
func podDynoName(pod *corev1.Pod) string {
	d := podDyno(pod)
	if strings.HasPrefix(d.Name, d.Type+".") {
		return d.Name
	}
	return d.Type + "." + d.Name
}

func podContainer(pod *corev1.Pod) string {
	if len(pod.Spec.Containers) > 0 {
		return pod.Spec.Containers[0].Name
	}
	return ""
}

// parsePodLogLine reads "<RFC 3339 time> <text>", as the kubelet stamps
// lines; a line without a time keeps the whole text and a zero time.
func parsePodLogLine(line, dyno string) slipway.LogLine {
	l := slipway.LogLine{Source: slipway.LogSourceApp, Dyno: dyno, Text: strings.TrimSuffix(line, "\r")}
	if ts, text, ok := strings.Cut(l.Text, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			l.Time, l.Text = t, text
		}
	}
	return l
}

var _ slipway.LogSource = (*Runtime)(nil)
