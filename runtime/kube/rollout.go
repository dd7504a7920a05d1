package kube

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	slipway "github.com/slipway/slipway"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// target is one Deployment's rollout as Deploy or Restart waits for it.
type target struct {
	typ     string
	track   string // LabelTrack of its pods: "" for a type's Deployment, "canary" for a canary's
	name    string
	version string // release version of the template rolled out
	want    int32  // replicas
	gen     int64  // the Deployment's generation after the change
	tmplID  string // templateID of the template rolled out
	// exclude is a pod being replaced by Restart: it counts as old.
	exclude string
	// strict drops the slack of the no-progress guard: used when no
	// progressDeadlineSeconds applies (a pod replaced by Restart).
	strict bool
	// start is when await began to follow the rollout.
	start time.Time
	// completeAt is when the Deployment first said it was complete while
	// the cached pods did not yet.
	completeAt time.Time

	known    map[string]bool   // pods of the template reported started, or there before
	ready    map[string]bool   // pods of the template reported ready
	old      map[string]string // pods of other templates still there: name → version
	stopping map[string]bool   // old pods reported stopping
	status   string            // the last status seen, to tell progress
	since    time.Time         // when status last changed
	done     bool
}

// podsLag bounds how long a rollout whose Deployment is complete waits for
// the pods' watch to show the same.
const podsLag = 5 * time.Second

// newTarget is the rollout of dep as just applied; pods are the app's pods
// before the change.
func newTarget(typ string, dep *appsv1.Deployment, pods []*corev1.Pod) *target {
	t := &target{
		typ: typ, track: dep.Spec.Template.Labels[LabelTrack], name: dep.Name, version: dep.Spec.Template.Labels[LabelVersion],
		want: ptr.Deref(dep.Spec.Replicas, 1), gen: dep.Generation, tmplID: templateID(dep.Spec.Template.Annotations),
		known: map[string]bool{}, ready: map[string]bool{}, old: map[string]string{}, stopping: map[string]bool{},
	}
	for _, pod := range pods {
		if pod.Labels[LabelType] != typ || pod.Labels[LabelTrack] != t.track || pod.DeletionTimestamp != nil {
			continue
		}
		if templateID(pod.Annotations) == t.tmplID {
			t.known[pod.Name] = true
			t.ready[pod.Name] = podReady(pod)
		} else {
			t.old[pod.Name] = pod.Labels[LabelVersion]
		}
	}
	return t
}

// await waits until every target has rolled out, reporting each pod that
// starts, becomes ready or stops. It reads the app's Deployments and pods
// from the namespace's informers (see watch.go) and looks again on each
// change of one of them, and every PollInterval for the no-progress guard.
// It fails on the first target that cannot finish (see step).
func (r *Runtime) await(ctx context.Context, ns, appID string, ts []*target, rep *reporter) error {
	if len(ts) == 0 {
		return nil
	}
	c, err := r.cacheFor(ctx, ns)
	if err != nil {
		return err
	}
	wake, unsubscribe := c.subscribe(appID)
	defer unsubscribe()
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	start := r.now()
	for _, t := range ts {
		t.start, t.since = start, start
	}
	for {
		// A type's pods by track: during a split the canary Deployment's
		// pods are neither new nor old pods of the type's Deployment.
		byType := map[string][]*corev1.Pod{}
		for _, pod := range c.podList(appID) {
			k := trackKey(pod.Labels[LabelType], pod.Labels[LabelTrack])
			byType[k] = append(byType[k], pod)
		}
		pending := 0
		for _, t := range ts {
			if t.done {
				continue
			}
			dep, err := r.rolloutDeployment(ctx, c, appID, t)
			if err != nil {
				return err
			}
			if err := r.step(ctx, ns, t, dep, byType[trackKey(t.typ, t.track)], rep); err != nil {
				return err
			}
			if !t.done {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the rollout was cancelled before it finished: %w", context.Cause(ctx))
		case <-c.failed:
			r.dropCache(c)
			return c.err
		case <-wake:
		case <-tick.C:
		}
	}
}

func trackKey(typ, track string) string { return typ + "/" + track }

// what names the target in messages: "web", or "web canary".
func (t *target) what() string {
	if t.track != "" {
		return t.typ + " " + t.track
	}
	return t.typ
}

// rolloutDeployment is the target's Deployment from the cache or, when the
// cache has not seen it yet (just created) or has dropped it, from the API
// server; nil when it does not exist.
func (r *Runtime) rolloutDeployment(ctx context.Context, c *nsCache, appID string, t *target) (*appsv1.Deployment, error) {
	if dep := c.deployment(appID, t.name); dep != nil {
		return dep, nil
	}
	dep, err := r.kc.AppsV1().Deployments(c.ns).Get(ctx, t.name, metav1.GetOptions{})
	switch {
	case isNotFound(err):
		return nil, nil
	case err != nil:
		return nil, r.apiError(ctx, err, "get", "deployments", c.ns, t.name)
	case dep.Labels[LabelAppID] != appID:
		return nil, nil
	}
	return dep, nil
}

// step looks at one target once. It reports what changed, marks the target
// done when the Deployment has observed its generation and runs want
// updated, available pods and no other, and fails when:
//   - a pod of the new template cannot pull its image, cannot create its
//     container or crash-loops (no need to wait for the deadline);
//   - the Deployment reports ReplicaFailure (a quota, an admission webhook)
//     or ProgressDeadlineExceeded;
//   - nothing changed for HealthyDeadline plus a slack (the controller is
//     not running, or Restart's replacement pod never gets ready).
func (r *Runtime) step(ctx context.Context, ns string, t *target, dep *appsv1.Deployment, pods []*corev1.Pod, rep *reporter) error {
	if dep == nil {
		return slipway.Errorf(slipway.EUnprocessable, "%s: the Deployment %s/%s was deleted during the rollout of v%s.", t.what(), ns, t.name, t.version)
	}
	present := map[string]bool{}
	readyNew := int32(0)
	liveOld := 0            // pods of other templates, not terminating
	var fresh []*corev1.Pod // pods of the new template, not terminating
	for _, pod := range pods {
		present[pod.Name] = true
		if pod.Name == t.exclude || templateID(pod.Annotations) != t.tmplID {
			if _, ok := t.old[pod.Name]; !ok {
				t.old[pod.Name] = pod.Labels[LabelVersion]
			}
			if pod.DeletionTimestamp == nil {
				liveOld++
			}
			if pod.DeletionTimestamp != nil && !t.stopping[pod.Name] {
				t.stopping[pod.Name] = true
				rep.Emit(slipway.EventInfo, pod.Name, t.typ, "%s is stopping (v%s)", pod.Name, pod.Labels[LabelVersion])
			}
			continue
		}
		if pod.DeletionTimestamp != nil {
			continue
		}
		fresh = append(fresh, pod)
		if !t.known[pod.Name] {
			t.known[pod.Name] = true
			rep.Emit(slipway.EventStarted, pod.Name, t.typ, "%s started on v%s", pod.Name, t.version)
		}
		if podReady(pod) {
			readyNew++
			if !t.ready[pod.Name] {
				t.ready[pod.Name] = true
				rep.Emit(slipway.EventHealthy, pod.Name, t.typ, "%s is ready (v%s%s)", pod.Name, t.version, readyAfter(pod))
			}
		}
		if problem := podFailure(pod); problem != "" {
			rep.Emit(slipway.EventFailed, pod.Name, t.typ, "%s %s", pod.Name, problem)
			return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s: the rollout of v%s failed: pod %s %s.", t.what(), t.version, pod.Name, problem),
				r.podFailureData(ctx, ns, pod))
		}
	}
	for name, v := range t.old {
		if !present[name] {
			delete(t.old, name)
			delete(t.stopping, name)
			rep.Emit(slipway.EventStopped, name, t.typ, "%s stopped (v%s)", name, v)
		}
	}

	st := dep.Status
	want := ptr.Deref(dep.Spec.Replicas, 1)
	observed := st.ObservedGeneration >= dep.Generation && st.ObservedGeneration >= t.gen
	status := fmt.Sprintf("%d %d %d %d %d %d %d", st.ObservedGeneration, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas, readyNew, len(present))
	now := r.now()
	if status != t.status {
		t.status, t.since = status, now
	}
	// A Deployment that runs what it should is done, even while a condition
	// from the rollout it replaced (ProgressDeadlineExceeded of a reverted
	// template) has not been updated yet.
	complete := observed && st.Replicas == want && st.UpdatedReplicas == want && st.AvailableReplicas == want
	if t.exclude != "" {
		complete = complete && readyNew >= want
	}
	if complete && (readyNew < want || liveOld > 0) {
		// The Deployment's status and the pods come from two watches, in
		// no set order: wait until the pods say so too, so that every pod
		// started and stopped is reported and the app's dynos read right
		// after show the new pods. Not for ever: a pod of the type that
		// the Deployment does not own would hold the release.
		if t.completeAt.IsZero() {
			t.completeAt = now
		}
		complete = now.Sub(t.completeAt) > podsLag
	}
	if complete {
		t.done = true
		rep.Emit(slipway.EventDone, "", t.typ, "%s: %d/%d on v%s", t.what(), st.AvailableReplicas, want, t.version)
		return nil
	}
	if observed {
		// A ProgressDeadlineExceeded that comes sooner than the deadline
		// after the change is a verdict on the template this rollout
		// replaced, not on this one: after a revert to pods that are still
		// available, the deployment controller measures from its last
		// progress, long ago, and says so in the step before it finds the
		// Deployment complete.
		deadline := time.Duration(ptr.Deref(dep.Spec.ProgressDeadlineSeconds, 600)) * time.Second
		for _, c := range st.Conditions {
			switch {
			case c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue:
				return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s: the rollout of v%s failed: Kubernetes cannot create its pods (%s: %s).", t.what(), t.version, c.Reason, c.Message),
					&slipway.Failure{Phase: slipway.FailStart})
			case c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" &&
				now.Sub(t.start) >= deadline:
				return r.stuck(ctx, ns, t, dep, fresh, fmt.Sprintf("no progress within the deadline of %s (ProgressDeadlineExceeded)", fmtDur(deadline)))
			}
		}
	}
	limit := r.cfg.HealthyDeadline
	if !t.strict {
		limit += max(30*time.Second, limit/2)
	}
	if now.Sub(t.since) > limit {
		if !observed {
			return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s: the rollout of v%s failed: Kubernetes did not pick up the change of Deployment %s/%s within %s; is the deployment controller running?", t.what(), t.version, ns, t.name, fmtDur(limit)),
				&slipway.Failure{Phase: slipway.FailStart})
		}
		return r.stuck(ctx, ns, t, dep, fresh, "no progress for "+fmtDur(limit))
	}
	return nil
}

// stuck is the error of a rollout that stopped making progress: why, and
// what its new pods are doing.
func (r *Runtime) stuck(ctx context.Context, ns string, t *target, dep *appsv1.Deployment, fresh []*corev1.Pod, why string) error {
	var notes []string
	var f *slipway.Failure // of the first pod that is not ready
	for _, pod := range fresh {
		if podReady(pod) {
			continue
		}
		note, pf := r.describePod(ctx, ns, dep, pod)
		notes = append(notes, note)
		if f == nil {
			f = pf
		}
		if len(notes) == 2 {
			break
		}
	}
	if f == nil {
		f = &slipway.Failure{Phase: slipway.FailStart}
	}
	if len(notes) == 0 {
		ready := 0
		for _, ok := range t.ready {
			if ok {
				ready++
			}
		}
		notes = append(notes, fmt.Sprintf("%d of %s of v%s available", dep.Status.AvailableReplicas, nPods(t.want), t.version))
		for _, c := range dep.Status.Conditions {
			if c.Type == appsv1.DeploymentProgressing && c.Message != "" {
				notes = append(notes, c.Message)
			}
		}
	}
	return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s: the rollout of v%s failed: %s: %s.", t.what(), t.version, why, strings.Join(notes, "; ")), f)
}

// describePod says why a pod is not ready, and as a release's failure.
func (r *Runtime) describePod(ctx context.Context, ns string, dep *appsv1.Deployment, pod *corev1.Pod) (string, *slipway.Failure) {
	if problem := podFailure(pod); problem != "" {
		return "pod " + pod.Name + " " + problem, r.podFailureData(ctx, ns, pod)
	}
	start := &slipway.Failure{Phase: slipway.FailStart, Dyno: pod.Name}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return fmt.Sprintf("pod %s cannot be scheduled (%s: %s)", pod.Name, c.Reason, c.Message), start
		}
	}
	if pod.Status.Phase == corev1.PodPending || pod.Status.Phase == "" {
		s := "pod " + pod.Name + " is still Pending"
		if w := waitingReason(pod); w != "" {
			s += " (" + w + ")"
		}
		return s, start
	}
	s := fmt.Sprintf("pod %s is %s but not ready", pod.Name, pod.Status.Phase)
	h := &slipway.HealthAnswer{Check: probeText(dep)}
	if h.Check != "" {
		s += ": its readiness probe (" + h.Check + ") fails"
	}
	if ev := r.lastEvent(ctx, ns, pod.Name, "Unhealthy"); ev != "" {
		s += " (" + ev + ")"
		h.Error = ev
		if m := probeCodeRE.FindStringSubmatch(ev); m != nil {
			h.Code, _ = strconv.Atoi(m[1])
		}
	}
	return s, &slipway.Failure{Phase: slipway.FailHealth, Dyno: pod.Name, Health: h, Output: r.podOutput(ctx, ns, pod, false)}
}

// probeCodeRE finds the status code in the kubelet's message of an HTTP
// probe that failed ("HTTP probe failed with statuscode: 503").
var probeCodeRE = regexp.MustCompile(`statuscode: (\d{3})`)

// podFailureData is a pod that podFailure finds failing, as a release's
// failure: crash (with the exit code or signal of its last run and the
// output of that run) for a crash loop, start for anything else.
func (r *Runtime) podFailureData(ctx context.Context, ns string, pod *corev1.Pod) *slipway.Failure {
	f := &slipway.Failure{Phase: slipway.FailStart, Dyno: pod.Name}
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w == nil || w.Reason != "CrashLoopBackOff" {
			continue
		}
		f.Phase = slipway.FailCrash
		if term := cs.LastTerminationState.Terminated; term != nil {
			switch {
			case term.Reason == "OOMKilled":
				f.Signal = term.Reason
			case term.Signal != 0:
				f.Signal = unix.SignalName(syscall.Signal(term.Signal))
			default:
				f.ExitCode = slipway.ExitStatus(int(term.ExitCode))
			}
			if m := strings.TrimSpace(term.Message); m != "" {
				f.Output = strings.Split(m, "\n")
			}
		}
		if out := r.podOutput(ctx, ns, pod, true); len(out) > 0 {
			f.Output = out
		}
		break
	}
	return f
}

// podOutput is the last lines of the pod's first container's output (of
// its previous run, for a container that restarted); none when logs may
// not be read. A node that does not answer must not hold up the release.
func (r *Runtime) podOutput(ctx context.Context, ns string, pod *corev1.Pod, previous bool) []string {
	if len(pod.Spec.Containers) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := r.kc.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: pod.Spec.Containers[0].Name,
		Previous: previous, TailLines: ptr.To(int64(slipway.MaxFailureOutput))}).DoRaw(ctx)
	if err != nil {
		r.log.Debug("kubernetes runtime: pod output", "pod", pod.Name, "err", err)
		return nil
	}
	return outputLines(string(b))
}

// outputLines splits a log's text into its last lines, each cut at 512
// bytes.
func outputLines(s string) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if len(line) > 512 {
			line = strings.ToValidUTF8(line[:512], "")
		}
		out = append(out, line)
	}
	return slipway.TailLines(out)
}

// lastEvent is the message of the newest event of the pod with the reason,
// "" when there is none or events may not be read.
func (r *Runtime) lastEvent(ctx context.Context, ns, pod, reason string) string {
	list, err := r.kc.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		return ""
	}
	var (
		msg  string
		last time.Time
	)
	for _, ev := range list.Items {
		if ev.InvolvedObject.Name != pod || ev.Reason != reason {
			continue
		}
		at := ev.LastTimestamp.Time
		if at.IsZero() {
			at = ev.EventTime.Time
		}
		if msg == "" || at.After(last) {
			msg, last = strings.TrimSpace(ev.Message), at
		}
	}
	return msg
}

func probeText(dep *appsv1.Deployment) string {
	if len(dep.Spec.Template.Spec.Containers) == 0 {
		return ""
	}
	p := dep.Spec.Template.Spec.Containers[0].ReadinessProbe
	switch {
	case p == nil:
		return ""
	case p.HTTPGet != nil:
		return fmt.Sprintf("HTTP GET %s on port %s", p.HTTPGet.Path, p.HTTPGet.Port.String())
	case p.TCPSocket != nil:
		return "TCP connect to port " + p.TCPSocket.Port.String()
	}
	return ""
}

// podFailure says why a pod will not become ready without a new release,
// as a clause ("cannot pull its image ..."); "" when nothing says so yet.
func podFailure(pod *corev1.Pod) string {
	for _, cs := range pod.Status.InitContainerStatuses {
		if p := containerFailure(cs); p != "" {
			return "cannot download its slug: the init container " + p
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if p := containerFailure(cs); p != "" {
			return p
		}
	}
	return ""
}

func containerFailure(cs corev1.ContainerStatus) string {
	w := cs.State.Waiting
	if w == nil {
		return ""
	}
	detail := w.Reason
	if w.Message != "" {
		detail += ": " + w.Message
	}
	switch w.Reason {
	case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
		return fmt.Sprintf("cannot pull its image %s (%s)", cs.Image, detail)
	case "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
		return fmt.Sprintf("cannot create its container (%s)", detail)
	case "CrashLoopBackOff":
		s := "is crash-looping"
		if term := cs.LastTerminationState.Terminated; term != nil {
			s += ": it exited with code " + strconv.Itoa(int(term.ExitCode))
			if term.Reason != "" && term.Reason != "Error" {
				s += " (" + term.Reason + ")"
			}
			if m := strings.TrimSpace(term.Message); m != "" {
				s += ": " + lastLine(m)
			}
		}
		return s + fmt.Sprintf(", restarted %d times", cs.RestartCount)
	}
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 300 {
		l = l[:300] + "…"
	}
	return l
}

// waitingReason is the first waiting reason of the pod's containers
// (ContainerCreating, PodInitializing...).
func waitingReason(pod *corev1.Pod) string {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
				return cs.State.Waiting.Reason
			}
		}
	}
	return ""
}

func podReady(pod *corev1.Pod) bool {
	if pod.DeletionTimestamp != nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyAfter is ", 3.2s after start" when the pod says when it became
// ready, "" otherwise.
func readyAfter(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && !c.LastTransitionTime.IsZero() && !pod.CreationTimestamp.IsZero() {
			if d := c.LastTransitionTime.Sub(pod.CreationTimestamp.Time); d >= 0 {
				return ", " + fmtDur(d.Round(100*time.Millisecond)) + " after start"
			}
		}
	}
	return ""
}

// podLess orders pods by creation, then name.
func podLess(a, b *corev1.Pod) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// fmtDur prints d the way people write it: 300ms, 60s, 90s, 10m, 1.5s.
func fmtDur(d time.Duration) string {
	switch {
	case d >= 2*time.Minute && d%time.Minute == 0 && d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d >= time.Second && d%time.Second == 0 && d < time.Hour:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Second && d%time.Millisecond == 0:
		return strconv.Itoa(int(d/time.Millisecond)) + "ms"
	}
	return d.String()
}
