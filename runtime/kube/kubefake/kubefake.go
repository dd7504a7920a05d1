// Package kubefake is a Kubernetes cluster in memory, for tests of the
// kube runtime and of what is built on it (engine and API tests that run
// with `--runtime kubernetes`): client-go's fake clientset, made to keep
// metadata.generation, resourceVersion conflicts and the status of
// Deployments as an API server does, plus one goroutine that plays the
// deployment controller (rolling updates with maxSurge and maxUnavailable,
// progressDeadlineSeconds), the Job controller, the garbage collector and a
// kubelet.
//
// Like k8s-lab's kwok, no container runs; what a pod does depends on its
// container image name:
//
//	contains "never-ready"  stays Pending (ContainerCreating): a stuck rollout
//	contains "crash-loop"   Running, its container in CrashLoopBackOff (exit code 1)
//	contains "pull-error"   Pending, ImagePullBackOff
//	contains "unready"      Running but never Ready, with an Unhealthy event
//	anything else           Running and Ready one tick after it is created
//
// An init container whose image contains "slug-fail" crash-loops (exit code
// 22, as curl -f does on an HTTP error). A Job's pod succeeds one tick after
// it is created, or fails with exit code 1 when its command contains
// "exit 1".
package kubefake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// Node is the name of the one node pods are scheduled on.
const Node = "fake-node-0"

var (
	deploymentsGVR = appsv1.SchemeGroupVersion.WithResource("deployments")
	deploymentGVK  = appsv1.SchemeGroupVersion.WithKind("Deployment")
	podsGVR        = corev1.SchemeGroupVersion.WithResource("pods")
	podGVK         = corev1.SchemeGroupVersion.WithKind("Pod")
	jobsGVR        = batchv1.SchemeGroupVersion.WithResource("jobs")
	jobGVK         = batchv1.SchemeGroupVersion.WithKind("Job")
	eventsGVR      = corev1.SchemeGroupVersion.WithResource("events")
)

// Cluster is a fake clientset with controllers running behind it. Tests
// talk to the cluster through Clientset (which records actions and takes
// reactors, e.g. to refuse a verb); the controllers write through the
// tracker underneath, so reactors a test adds do not affect them.
type Cluster struct {
	Clientset *fake.Clientset

	// mu makes every read-modify-write of a Deployment atomic, between the
	// clientset's update reactor and the controller.
	mu      sync.Mutex
	rv      int64
	tracker k8stesting.ObjectTracker
	now     func() time.Time
	tick    time.Duration

	// controller state
	progress map[types.NamespacedName]*progressState
	age      map[types.UID]int // ticks since a pod was created
	events   map[types.UID]bool

	cancel context.CancelFunc
	done   chan struct{}
}

// progressState is what the deployment controller remembers of a rollout,
// for progressDeadlineSeconds.
type progressState struct {
	gen      int64
	hash     string
	status   string
	last     time.Time
	exceeded bool
}

// New returns a running cluster holding objects; Close stops it. tick is
// how often the controllers run (0 means 10ms).
func New(tick time.Duration, objects ...runtime.Object) *Cluster {
	if tick <= 0 {
		tick = 10 * time.Millisecond
	}
	cs := fake.NewClientset(objects...)
	c := &Cluster{
		Clientset: cs, tracker: cs.Tracker(), now: time.Now, tick: tick,
		progress: map[types.NamespacedName]*progressState{}, age: map[types.UID]int{}, events: map[types.UID]bool{},
		done: make(chan struct{}),
	}
	cs.PrependReactor("update", "deployments", c.updateDeployment)
	cs.PrependReactor("create", "deployments", c.createDeployment)
	cs.PrependReactor("create", "*", stampNew)
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	return c
}

// Close stops the controllers and waits for them.
func (c *Cluster) Close() {
	c.cancel()
	<-c.done
}

// stampNew gives a created object a uid and creation time, as the API
// server does; the default reactor then stores it.
func stampNew(action k8stesting.Action) (bool, runtime.Object, error) {
	ca, ok := action.(k8stesting.CreateAction)
	if !ok || ca.GetSubresource() != "" {
		return false, nil, nil
	}
	if m, err := meta.Accessor(ca.GetObject()); err == nil {
		if m.GetUID() == "" {
			m.SetUID(types.UID(newUID()))
		}
		if ts := m.GetCreationTimestamp(); ts.IsZero() {
			m.SetCreationTimestamp(metav1.Now())
		}
		if m.GetName() == "" && m.GetGenerateName() != "" {
			m.SetName(m.GetGenerateName() + randSuffix())
		}
	}
	return false, nil, nil
}

func (c *Cluster) createDeployment(action k8stesting.Action) (bool, runtime.Object, error) {
	d := action.(k8stesting.CreateAction).GetObject().(*appsv1.Deployment)
	c.mu.Lock()
	defer c.mu.Unlock()
	d.Generation = 1
	d.Status = appsv1.DeploymentStatus{}
	c.rv++
	d.ResourceVersion = strconv.FormatInt(c.rv, 10)
	return false, nil, nil
}

// updateDeployment does what the API server does on an update: refuse a
// stale resourceVersion, keep the status (only the status subresource
// changes it), and bump the generation when the spec changed.
func (c *Cluster) updateDeployment(action k8stesting.Action) (bool, runtime.Object, error) {
	ua := action.(k8stesting.UpdateAction)
	if ua.GetSubresource() != "" {
		return false, nil, nil
	}
	d := ua.GetObject().(*appsv1.Deployment).DeepCopy()
	c.mu.Lock()
	defer c.mu.Unlock()
	o, err := c.tracker.Get(deploymentsGVR, ua.GetNamespace(), d.Name)
	if err != nil {
		return true, nil, err
	}
	cur := o.(*appsv1.Deployment)
	if d.ResourceVersion != "" && d.ResourceVersion != cur.ResourceVersion {
		return true, nil, apierrors.NewConflict(deploymentsGVR.GroupResource(), d.Name, fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	d.Status = cur.Status
	d.Generation = cur.Generation
	if !apiequality.Semantic.DeepEqual(d.Spec, cur.Spec) {
		d.Generation++
	}
	d.UID, d.CreationTimestamp = cur.UID, cur.CreationTimestamp
	c.rv++
	d.ResourceVersion = strconv.FormatInt(c.rv, 10)
	if err := c.tracker.Update(deploymentsGVR, d, ua.GetNamespace()); err != nil {
		return true, nil, err
	}
	return true, d.DeepCopy(), nil
}

func (c *Cluster) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.step()
	}
}

// step runs every controller once.
func (c *Cluster) step() {
	pods := c.listPods()
	deps := map[string]bool{}
	jobs := map[string]bool{}
	if o, err := c.tracker.List(deploymentsGVR, deploymentGVK, ""); err == nil {
		for i := range o.(*appsv1.DeploymentList).Items {
			d := &o.(*appsv1.DeploymentList).Items[i]
			deps[d.Namespace+"/"+d.Name] = true
			c.syncDeployment(d, pods)
		}
	}
	if o, err := c.tracker.List(jobsGVR, jobGVK, ""); err == nil {
		for i := range o.(*batchv1.JobList).Items {
			j := &o.(*batchv1.JobList).Items[i]
			jobs[j.Namespace+"/"+j.Name] = true
			c.syncJob(j, pods)
		}
	}
	// garbage collector: pods whose owner is gone
	for _, p := range pods {
		for _, ref := range p.OwnerReferences {
			key := p.Namespace + "/" + ref.Name
			if ref.Kind == "Deployment" && !deps[key] || ref.Kind == "Job" && !jobs[key] {
				c.deletePod(p)
			}
		}
	}
	// kubelet
	for _, p := range c.listPods() {
		c.kubelet(p)
	}
}

func (c *Cluster) listPods() []*corev1.Pod {
	o, err := c.tracker.List(podsGVR, podGVK, "")
	if err != nil {
		return nil
	}
	list := o.(*corev1.PodList).Items
	out := make([]*corev1.Pod, len(list))
	for i := range list {
		out[i] = &list[i]
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreationTimestamp.Equal(&out[j].CreationTimestamp) {
			return out[i].CreationTimestamp.Before(&out[j].CreationTimestamp)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func ownedBy(p *corev1.Pod, kind, name string) bool {
	for _, ref := range p.OwnerReferences {
		if ref.Kind == kind && ref.Name == name {
			return true
		}
	}
	return false
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// TemplateHash is the fake's pod-template-hash of a template.
func TemplateHash(t *corev1.PodTemplateSpec) string {
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:5])
}

func scaled(v *intstr.IntOrString, total int32, roundUp bool) int32 {
	if v == nil {
		return int32(math.Ceil(float64(total) * 0.25)) // the API's default 25%
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(v, int(total), roundUp)
	if err != nil {
		return 0
	}
	return int32(n)
}

// syncDeployment is the deployment controller for one Deployment: one
// step of a rolling update, then the status.
func (c *Cluster) syncDeployment(d *appsv1.Deployment, all []*corev1.Pod) {
	hash := TemplateHash(&d.Spec.Template)
	want := ptr.Deref(d.Spec.Replicas, 1)
	var surge, unavailable int32 = 1, 0
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		surge = scaled(ru.MaxSurge, want, true)
		unavailable = scaled(ru.MaxUnavailable, want, false)
	}
	var fresh, old []*corev1.Pod
	for _, p := range all {
		if p.Namespace != d.Namespace || !ownedBy(p, "Deployment", d.Name) {
			continue
		}
		if p.Labels["pod-template-hash"] == hash {
			fresh = append(fresh, p)
		} else {
			old = append(old, p)
		}
	}
	countReady := func(ps []*corev1.Pod) int32 {
		n := int32(0)
		for _, p := range ps {
			if ready(p) {
				n++
			}
		}
		return n
	}
	// scale the new template down, the newest first
	for int32(len(fresh)) > want {
		c.deletePod(fresh[len(fresh)-1])
		fresh = fresh[:len(fresh)-1]
	}
	// take old pods away while enough stay ready: the not ready ones first
	sort.SliceStable(old, func(i, j int) bool { return !ready(old[i]) && ready(old[j]) })
	readyNow := countReady(fresh) + countReady(old)
	var keep []*corev1.Pod
	for _, p := range old {
		switch {
		case !ready(p) && int32(len(fresh)) > 0:
			c.deletePod(p)
		case ready(p) && readyNow-1 >= want-unavailable:
			c.deletePod(p)
			readyNow--
		default:
			keep = append(keep, p)
		}
	}
	old = keep
	// start new pods within the surge
	room := want + surge - int32(len(fresh)+len(old))
	for n := min(want-int32(len(fresh)), room); n > 0; n-- {
		fresh = append(fresh, c.createPod(d, hash))
	}

	st := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            int32(len(fresh) + len(old)),
		UpdatedReplicas:     int32(len(fresh)),
		ReadyReplicas:       countReady(fresh) + countReady(old),
		AvailableReplicas:   countReady(fresh) + countReady(old),
		UnavailableReplicas: max(0, want-countReady(fresh)-countReady(old)),
	}
	key := types.NamespacedName{Namespace: d.Namespace, Name: d.Name}
	ps := c.progress[key]
	now := c.now()
	if ps == nil || ps.gen != d.Generation || ps.hash != hash {
		ps = &progressState{gen: d.Generation, hash: hash, last: now}
		c.progress[key] = ps
	}
	fp := fmt.Sprint(st.Replicas, st.UpdatedReplicas, st.AvailableReplicas)
	if fp != ps.status {
		ps.status, ps.last = fp, now
	}
	complete := st.UpdatedReplicas == want && st.Replicas == want && st.AvailableReplicas == want
	deadline := time.Duration(ptr.Deref(d.Spec.ProgressDeadlineSeconds, 600)) * time.Second
	progressing := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated",
		Message: fmt.Sprintf("ReplicaSet %q is progressing.", d.Name+"-"+hash)}
	switch {
	case complete:
		progressing.Reason = "NewReplicaSetAvailable"
		progressing.Message = fmt.Sprintf("ReplicaSet %q has successfully progressed.", d.Name+"-"+hash)
	case ps.exceeded || now.Sub(ps.last) > deadline:
		ps.exceeded = true
		progressing.Status, progressing.Reason = corev1.ConditionFalse, "ProgressDeadlineExceeded"
		progressing.Message = fmt.Sprintf("ReplicaSet %q has timed out progressing.", d.Name+"-"+hash)
	}
	available := appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"}
	if st.AvailableReplicas < want-unavailable {
		available.Status, available.Reason = corev1.ConditionFalse, "MinimumReplicasUnavailable"
	}
	st.Conditions = []appsv1.DeploymentCondition{available, progressing}

	c.mu.Lock()
	defer c.mu.Unlock()
	o, err := c.tracker.Get(deploymentsGVR, d.Namespace, d.Name)
	if err != nil {
		return
	}
	cur := o.(*appsv1.Deployment)
	if cur.Generation != d.Generation || apiequality.Semantic.DeepEqual(cur.Status, st) {
		return // changed meanwhile: next tick
	}
	cur.Status = st
	c.rv++
	cur.ResourceVersion = strconv.FormatInt(c.rv, 10)
	c.tracker.Update(deploymentsGVR, cur, d.Namespace)
}

func (c *Cluster) createPod(d *appsv1.Deployment, hash string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        d.Name + "-" + hash[:8] + "-" + randSuffix(),
			Namespace:   d.Namespace,
			Labels:      map[string]string{"pod-template-hash": hash},
			Annotations: map[string]string{},
			UID:         types.UID(newUID()),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
				Controller: ptr.To(true)}},
			CreationTimestamp: metav1.NewTime(c.now()),
		},
		Spec: *d.Spec.Template.Spec.DeepCopy(),
	}
	for k, v := range d.Spec.Template.Labels {
		p.Labels[k] = v
	}
	for k, v := range d.Spec.Template.Annotations {
		p.Annotations[k] = v
	}
	p.Spec.NodeName = Node
	p.Status = pendingStatus(p, c.now())
	c.tracker.Create(podsGVR, p, p.Namespace)
	return p
}

func (c *Cluster) deletePod(p *corev1.Pod) {
	c.tracker.Delete(podsGVR, p.Namespace, p.Name)
	delete(c.age, p.UID)
	delete(c.events, p.UID)
}

// syncJob is the Job controller: one pod, then Complete or Failed.
func (c *Cluster) syncJob(j *batchv1.Job, all []*corev1.Pod) {
	for _, cond := range j.Status.Conditions {
		if (cond.Type == batchv1.JobComplete || cond.Type == batchv1.JobFailed) && cond.Status == corev1.ConditionTrue {
			return
		}
	}
	var pod *corev1.Pod
	for _, p := range all {
		if p.Namespace == j.Namespace && ownedBy(p, "Job", j.Name) {
			pod = p
		}
	}
	now := metav1.NewTime(c.now())
	if pod == nil {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: j.Name + "-" + randSuffix(), Namespace: j.Namespace,
				Labels: map[string]string{"batch.kubernetes.io/job-name": j.Name}, Annotations: map[string]string{},
				UID:               types.UID(newUID()),
				OwnerReferences:   []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID, Controller: ptr.To(true)}},
				CreationTimestamp: now,
			},
			Spec: *j.Spec.Template.Spec.DeepCopy(),
		}
		for k, v := range j.Spec.Template.Labels {
			p.Labels[k] = v
		}
		p.Spec.NodeName = Node
		p.Status = pendingStatus(p, now.Time)
		c.tracker.Create(podsGVR, p, p.Namespace)
		j.Status.Active = 1
		j.Status.StartTime = &now
	} else {
		switch pod.Status.Phase {
		case corev1.PodSucceeded:
			j.Status.Active, j.Status.Succeeded = 0, 1
			j.Status.CompletionTime = &now
			j.Status.Conditions = append(j.Status.Conditions,
				batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
				batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now})
		case corev1.PodFailed:
			j.Status.Active, j.Status.Failed = 0, 1
			j.Status.Conditions = append(j.Status.Conditions,
				batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded, LastTransitionTime: now},
				batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonBackoffLimitExceeded,
					Message: "Job has reached the specified backoff limit", LastTransitionTime: now})
		default:
			return
		}
	}
	c.tracker.Update(jobsGVR, j, j.Namespace)
}

func pendingStatus(p *corev1.Pod, now time.Time) corev1.PodStatus {
	t := metav1.NewTime(now)
	st := corev1.PodStatus{
		Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: t},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: t},
		},
	}
	for _, c := range p.Spec.InitContainers {
		st.InitContainerStatuses = append(st.InitContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}})
	}
	for _, c := range p.Spec.Containers {
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}})
	}
	return st
}

// kubelet moves a pod one tick on, as its image says (see the package
// comment).
func (c *Cluster) kubelet(p *corev1.Pod) {
	c.age[p.UID]++
	if c.age[p.UID] != 2 {
		return // the status is set once, one tick after the pod appeared
	}
	now := metav1.NewTime(c.now())
	if len(p.Spec.Containers) == 0 {
		return
	}
	image := p.Spec.Containers[0].Image
	setReady := func(ok bool) {
		for i := range p.Status.Conditions {
			if p.Status.Conditions[i].Type == corev1.PodReady {
				p.Status.Conditions[i].Status = corev1.ConditionFalse
				if ok {
					p.Status.Conditions[i].Status = corev1.ConditionTrue
				}
				p.Status.Conditions[i].LastTransitionTime = now
			}
		}
	}
	containers := func(state corev1.ContainerState, last corev1.ContainerState, restarts int32, isReady bool) {
		for i := range p.Status.ContainerStatuses {
			cs := &p.Status.ContainerStatuses[i]
			cs.State, cs.LastTerminationState, cs.RestartCount, cs.Ready = state, last, restarts, isReady
			cs.Started = ptr.To(state.Running != nil)
		}
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
	initDone := func() {
		for i := range p.Status.InitContainerStatuses {
			p.Status.InitContainerStatuses[i].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}
			p.Status.InitContainerStatuses[i].Ready = true
		}
	}
	isJob := false
	for _, ref := range p.OwnerReferences {
		isJob = isJob || ref.Kind == "Job"
	}
	for _, ic := range p.Spec.InitContainers {
		if strings.Contains(ic.Image, "slug-fail") {
			for i := range p.Status.InitContainerStatuses {
				p.Status.InitContainerStatuses[i].State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
					Message: "back-off 10s restarting failed container=" + ic.Name + " pod=" + p.Name}}
				p.Status.InitContainerStatuses[i].LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 22, Reason: "Error",
					Message: "curl: (22) The requested URL returned error: 401"}}
				p.Status.InitContainerStatuses[i].RestartCount = 2
			}
			c.tracker.Update(podsGVR, p, p.Namespace)
			return
		}
	}
	switch {
	case isJob:
		initDone()
		code := int32(0)
		p.Status.Phase = corev1.PodSucceeded
		if strings.Contains(strings.Join(p.Spec.Containers[0].Command, " "), "exit 1") {
			code, p.Status.Phase = 1, corev1.PodFailed
		}
		containers(corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: map[bool]string{true: "Completed", false: "Error"}[code == 0]}}, corev1.ContainerState{}, 0, false)
	case strings.Contains(image, "never-ready"):
		return
	case strings.Contains(image, "pull-error"):
		containers(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: fmt.Sprintf("Back-off pulling image %q", image)}}, corev1.ContainerState{}, 0, false)
	case strings.Contains(image, "crash-loop"):
		initDone()
		p.Status.Phase = corev1.PodRunning
		containers(corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s restarting failed container"}},
			corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}, 2, false)
	case strings.Contains(image, "unready"):
		initDone()
		p.Status.Phase = corev1.PodRunning
		containers(running, corev1.ContainerState{}, 0, false)
		if !c.events[p.UID] {
			c.events[p.UID] = true
			c.tracker.Create(eventsGVR, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: p.Name + "." + randSuffix(), Namespace: p.Namespace},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
				Reason:         "Unhealthy", Type: corev1.EventTypeWarning,
				Message:        "Readiness probe failed: HTTP probe failed with statuscode: 503",
				FirstTimestamp: now, LastTimestamp: now, Count: 1,
			}, p.Namespace)
		}
	default:
		initDone()
		p.Status.Phase = corev1.PodRunning
		containers(running, corev1.ContainerState{}, 0, true)
		setReady(true)
	}
	c.tracker.Update(podsGVR, p, p.Namespace)
}

func newUID() string { return uuid.NewString() }

// randSuffix is five characters as Kubernetes appends to generated names.
func randSuffix() string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	var b [5]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}
