package kube

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	slipway "github.com/slipway/slipway"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// releasePhase runs the slug's release command as the Job p.job, once per
// release, and waits for it before any Deployment changes. A Job of the
// release that completed is not run again (a server restart deploys the
// release again); one that failed is replaced. The output (its last lines,
// when pods/log may be read) becomes info events. A failure changes
// nothing else: EUnprocessable "Release phase failed: ...".
func (r *Runtime) releasePhase(ctx context.Context, p *plan, rep *reporter) error {
	api := r.kc.BatchV1().Jobs(p.ns)
	name := p.job.Name
	cmd := strings.Join(p.job.Spec.Template.Spec.Containers[0].Command[2:], " ")
	cur, err := api.Get(ctx, name, metav1.GetOptions{})
	switch {
	case isNotFound(err):
		cur = nil
	case err != nil:
		return r.apiError(ctx, err, "get", "jobs", p.ns, name)
	default:
		if err := ownedBy(cur.Labels, p, "jobs", name); err != nil {
			return err
		}
		done, _ := jobFinished(cur)
		switch {
		case cur.Labels[LabelRelease] == p.release.ID && done == batchv1.JobComplete:
			rep.Emit(slipway.EventInfo, "", "release", "release phase: already ran for v%d", p.release.Version)
			return nil
		case cur.Labels[LabelRelease] == p.release.ID && done == "":
			rep.Emit(slipway.EventInfo, "", "release", "release phase: waiting for the Job %s/%s that is already running", p.ns, name)
		default:
			err := api.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
			if err != nil && !isNotFound(err) {
				return r.apiError(ctx, err, "delete", "jobs", p.ns, name)
			}
			cur = nil
		}
	}
	start := r.now()
	var uid types.UID // the Job to wait for
	if cur != nil {
		uid = cur.UID
	} else {
		rep.Emit(slipway.EventInfo, "", "release", "release phase: running %s (Job %s/%s)", cmd, p.ns, name)
		for attempt := 0; ; attempt++ {
			var made *batchv1.Job
			made, err = api.Create(ctx, p.job, metav1.CreateOptions{})
			if err == nil {
				uid = made.UID
			}
			if !isAlreadyExists(err) || attempt == 20 {
				break
			}
			// the failed Job we deleted is still going away
			if err := sleep(ctx, r.cfg.PollInterval); err != nil {
				return fmt.Errorf("the release phase was cancelled: %w", err)
			}
		}
		if err != nil {
			return r.apiError(ctx, err, "create", "jobs", p.ns, name)
		}
	}

	// The Job and its pods come from the namespace's informers (watch.go);
	// each change of the app's objects wakes this loop.
	c, err := r.cacheFor(ctx, p.ns)
	if err != nil {
		return err
	}
	wake, unsubscribe := c.subscribe(p.app.ID)
	defer unsubscribe()
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	for {
		job := c.job(name)
		if job == nil || job.UID != uid {
			// The cache has not seen the new Job yet, or still holds the
			// failed one it replaces: ask the API server.
			job, err = api.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return r.apiError(ctx, err, "get", "jobs", p.ns, name)
			}
		}
		var pods []corev1.Pod
		for _, pod := range c.podList(p.app.ID) {
			if pod.Labels[LabelType] == "release" && pod.Labels[LabelRelease] == p.release.ID {
				pods = append(pods, *pod.DeepCopy())
			}
		}
		done, why := jobFinished(job)
		if done != "" {
			// The Job's watch may be ahead of the pods': read the pods
			// that ran it (their exit code, their logs) as they are now.
			list, err := r.kc.CoreV1().Pods(p.ns).List(ctx, metav1.ListOptions{LabelSelector: fmt.Sprintf("%s=%s,%s=release,%s=%s", LabelAppID, p.app.ID, LabelType, LabelRelease, p.release.ID)})
			if err != nil {
				return r.apiError(ctx, err, "list", "pods", p.ns, "")
			}
			pods = list.Items
		}
		switch done {
		case batchv1.JobComplete:
			r.jobOutput(ctx, p.ns, pods, rep)
			rep.Emit(slipway.EventInfo, "", "release", "release phase finished in %s", fmtDur(r.now().Sub(start).Round(100*time.Millisecond)))
			return nil
		case batchv1.JobFailed:
			out := r.jobOutput(ctx, p.ns, pods, rep)
			last := ""
			for _, l := range out {
				if strings.TrimSpace(l) != "" {
					last = l
				}
			}
			return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s", withLast("Release phase failed: the release command "+jobFailure(job, why, pods, r.cfg.ReleasePhaseTimeout), last)),
				jobFailureData(pods, out))
		}
		for i := range pods {
			if problem := podFailure(&pods[i]); problem != "" {
				// A pod that cannot start never ends the Job by itself.
				api.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationBackground)})
				f := r.podFailureData(ctx, p.ns, &pods[i])
				f.Phase = slipway.FailReleasePhase
				return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "Release phase failed: pod %s %s.", pods[i].Name, problem), f)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the release was cancelled during its release phase: %w", context.Cause(ctx))
		case <-c.failed:
			r.dropCache(c)
			return c.err
		case <-wake:
		case <-tick.C:
		}
	}
}

// jobFinished returns JobComplete or JobFailed (with the condition's reason
// and message) once the Job has ended, "" before.
func jobFinished(job *batchv1.Job) (batchv1.JobConditionType, string) {
	for _, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type, c.Reason
		}
	}
	return "", ""
}

// jobFailure says how the release command ended, as a clause.
func jobFailure(job *batchv1.Job, reason string, pods []corev1.Pod, timeout time.Duration) string {
	if reason == batchv1.JobReasonDeadlineExceeded {
		return fmt.Sprintf("did not finish within %s and was stopped", fmtDur(timeout))
	}
	for _, pod := range pods {
		for _, cs := range pod.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
				s := "exited with status " + strconv.Itoa(int(t.ExitCode))
				if t.Reason != "" && t.Reason != "Error" {
					s += " (" + t.Reason + ")"
				}
				return s
			}
		}
	}
	if reason != "" {
		return "failed (" + reason + ")"
	}
	return "failed"
}

// jobFailureData is a failed release phase as a release's failure: the
// pod that ran it, its exit code (or what killed it) and out, its last
// output lines.
func jobFailureData(pods []corev1.Pod, out []string) *slipway.Failure {
	f := &slipway.Failure{Phase: slipway.FailReleasePhase, Output: out}
	for _, pod := range pods {
		for _, cs := range pod.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
				f.Dyno = pod.Name
				switch {
				case t.Reason == "OOMKilled" || t.Reason == "DeadlineExceeded":
					f.Signal = t.Reason
				case t.Signal != 0:
					f.Signal = unix.SignalName(syscall.Signal(t.Signal))
				default:
					f.ExitCode = slipway.ExitStatus(int(t.ExitCode))
				}
				return f
			}
		}
		f.Dyno = pod.Name
	}
	return f
}

func withLast(msg, last string) string {
	if last != "" {
		return msg + ": " + last
	}
	return msg + "."
}

// jobOutput reports the last lines of the release pods' output as info
// events and returns them (the last MaxFailureOutput); none when logs may
// not be read.
func (r *Runtime) jobOutput(ctx context.Context, ns string, pods []corev1.Pod, rep *reporter) []string {
	var out []string
	// Logs come from the node's kubelet through the API server; a node that
	// does not answer must not hold up the release.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, pod := range pods {
		b, err := r.kc.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "release", TailLines: ptr.To(int64(20))}).DoRaw(ctx)
		if err != nil {
			r.log.Debug("kubernetes runtime: release phase output", "pod", pod.Name, "err", err)
			continue
		}
		for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			if len(line) > 512 {
				line = line[:512]
			}
			out = append(out, line)
			rep.Emit(slipway.EventInfo, pod.Name, "release", "%s: %s", pod.Name, line)
		}
	}
	return slipway.TailLines(out)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
