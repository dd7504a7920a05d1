package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"

	slipway "github.com/slipway/slipway"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
)

// slugDir is where an archive slug is unpacked in a pod; the dyno's
// working directory.
const slugDir = "/app"

// changeCause is the Deployment annotation `kubectl rollout history` shows.
const changeCause = "kubernetes.io/change-cause"

// plan is a desired state resolved into the objects Deploy applies.
type plan struct {
	ns         string
	app        slipway.AppRef
	release    slipway.ReleaseRef
	types      []*typePlan
	secret     *corev1.Secret
	slugSecret *corev1.Secret  // nil for image slugs
	service    *corev1.Service // nil without a web type
	job        *batchv1.Job    // the release phase; nil without one
}

// typePlan is one formation type: its Deployment as Slipway wants it.
type typePlan struct {
	typ        string
	track      string // "" for the type's Deployment, TrackCanary for a split's canary
	deployment *appsv1.Deployment
}

// plan checks d and builds the objects for it; nothing is applied when it
// fails. Every problem is EUnprocessable.
func (r *Runtime) plan(d *slipway.Desired) (*plan, error) {
	bad := func(format string, args ...any) (*plan, error) {
		return nil, slipway.Errorf(slipway.EUnprocessable, format, args...)
	}
	if !isLabelValue(d.App.ID) {
		return bad("The app id %q cannot be used as a Kubernetes label value.", d.App.ID)
	}
	if errs := validation.IsDNS1035Label(d.App.Name); len(errs) > 0 {
		return bad("The app name %q cannot name Kubernetes objects: %s.", d.App.Name, strings.Join(errs, "; "))
	}
	if d.App.Space != "" && !isLabelValue(d.App.Space) {
		return bad("The space name %q cannot be used as a Kubernetes label value.", d.App.Space)
	}
	ns := r.cfg.Namespace(d.App.Space)
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return bad("The namespace %q for space %q is not a valid Kubernetes namespace name: %s.", ns, d.App.Space, strings.Join(errs, "; "))
	}
	if !isLabelValue(d.Release.ID) {
		return bad("The release id %q cannot be used as a Kubernetes label value.", d.Release.ID)
	}
	image := d.Slug.Image
	if image == "" {
		if r.cfg.SlugBaseImage == "" {
			return bad("Slug %s is an archive, and this server runs archive slugs on Kubernetes only when it has a slug base image (--slug-base-image); release a docker:// build instead.", d.Slug.ID)
		}
		image = r.cfg.SlugBaseImage
	}
	p := &plan{ns: ns, app: d.App, release: d.Release}
	p.secret = r.configSecret(p, d.Config)
	if d.Slug.Image == "" {
		url, token := r.cfg.SlugURL(d.Slug.ID, d.Release.ID)
		if url == "" {
			return bad("There is no URL to download slug %s from.", d.Slug.ID)
		}
		p.slugSecret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: slugSecretName(d.App.Name, d.Release.Version), Namespace: ns, Labels: releaseLabels(p)},
			Type:       corev1.SecretTypeOpaque,
			Immutable:  ptr.To(true),
			Data:       map[string][]byte{"url": []byte(url), "token": []byte(token)},
		}
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	seen := map[string]string{}
	for _, f := range d.Formations {
		if f.Type == "release" {
			continue // the release phase, never a Deployment
		}
		name := deploymentName(d.App.Name, f.Type)
		cname := containerName(f.Type)
		if errs := validation.IsDNS1123Label(cname); len(errs) > 0 || !isLabelValue(f.Type) {
			return bad("Process type %q cannot be used on Kubernetes: use lowercase letters, digits, - and _, starting with a letter.", f.Type)
		}
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return bad("Process type %q of app %s gives the invalid Deployment name %q: %s.", f.Type, d.App.Name, name, strings.Join(errs, "; "))
		}
		if other, dup := seen[name]; dup {
			return bad("Process types %q and %q both map to the Deployment %s; rename one.", other, f.Type, name)
		}
		seen[name] = f.Type
		tp := &typePlan{typ: f.Type, deployment: r.deployment(p, d, f, image)}
		p.types = append(p.types, tp)
		if f.Type == "web" {
			p.service = service(p, portOf(f))
		}
	}
	sort.Slice(p.types, func(i, j int) bool { return p.types[i].typ < p.types[j].typ })
	if cmd := strings.TrimSpace(d.Slug.ProcessTypes["release"]); cmd != "" {
		p.job = r.releaseJob(p, d, cmd, image)
	}
	return p, nil
}

// maxNameLen is the longest name every object kind takes: a DNS-1123
// label, as Services, and Jobs (whose name becomes a pod label) require.
const maxNameLen = validation.DNS1123LabelMaxLength

// objectName is the name of every object the runtime creates: name
// itself when it fits in 63 characters, else its first characters, a "-"
// and 10 hex digits of its SHA-256, 63 in all. Different long names keep
// different names, and the same long name always gives the same one.
func objectName(name string) string {
	if len(name) <= maxNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := hex.EncodeToString(sum[:5])
	prefix := strings.TrimRight(name[:maxNameLen-len(suffix)-1], "-")
	return prefix + "-" + suffix
}

// deploymentName is "<app>--<type>", with _ (not allowed in names) as -.
func deploymentName(app, typ string) string { return objectName(app + "--" + containerName(typ)) }

// canaryName is the Deployment of the canary release of a type during a
// split: "<app>--<type>--canary".
func canaryName(app, typ string) string {
	return objectName(app + "--" + containerName(typ) + "--canary")
}

// previewName is the Service of a blue-green preview: "<app>--<type>--preview".
func previewName(app, typ string) string {
	return objectName(app + "--" + containerName(typ) + "--preview")
}

// serviceName is the app's Service: "<app>" (an app name is at most 63
// characters already).
func serviceName(app string) string { return objectName(app) }

func containerName(typ string) string { return strings.ReplaceAll(typ, "_", "-") }

func secretName(app string, version int) string {
	return objectName(app + "--v" + strconv.Itoa(version))
}

func slugSecretName(app string, version int) string {
	return objectName(app + "--v" + strconv.Itoa(version) + "--slug")
}

func jobName(app string, version int) string {
	return objectName(app + "--release--v" + strconv.Itoa(version))
}

func portOf(f slipway.Formation) int32 {
	if f.Port == 0 {
		return DefaultPort
	}
	return int32(f.Port)
}

// appLabels are the labels of everything of the app.
func appLabels(ref slipway.AppRef) map[string]string {
	l := map[string]string{LabelManaged: "true", LabelApp: ref.Name, LabelAppID: ref.ID}
	if ref.Space != "" {
		l[LabelSpace] = ref.Space
	}
	return l
}

// releaseLabels add the release to appLabels.
func releaseLabels(p *plan) map[string]string {
	l := appLabels(p.app)
	l[LabelRelease] = p.release.ID
	l[LabelVersion] = strconv.Itoa(p.release.Version)
	return l
}

// selector is what a type's Deployment and Service select pods by; it never
// changes for the life of the Deployment.
func selector(appID, typ string) map[string]string {
	return map[string]string{LabelAppID: appID, LabelType: typ}
}

func (r *Runtime) configSecret(p *plan, config map[string]string) *corev1.Secret {
	data := make(map[string][]byte, len(config))
	for k, v := range config {
		if !slipway.ReservedConfigKey(k) {
			data[k] = []byte(v)
		}
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secretName(p.app.Name, p.release.Version), Namespace: p.ns, Labels: releaseLabels(p)},
		Type:       corev1.SecretTypeOpaque,
		Immutable:  ptr.To(true),
		Data:       data,
	}
}

// podSpec is the pod of one formation type (or of the release phase, with
// port 0 and no probe): the container, the release's environment and, for
// archive slugs, the init container that downloads the slug.
func (r *Runtime) podSpec(p *plan, d *slipway.Desired, name, command, image string, port int32, probe *corev1.Probe) corev1.PodSpec {
	env := []corev1.EnvVar{
		{Name: "DYNO", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "SLIPWAY_APP", Value: p.app.Name},
		{Name: "SLIPWAY_RELEASE_ID", Value: p.release.ID},
		{Name: "SLIPWAY_RELEASE_VERSION", Value: strconv.Itoa(p.release.Version)},
	}
	if port != 0 {
		env = append([]corev1.EnvVar{{Name: "PORT", Value: strconv.Itoa(int(port))}}, env...)
	}
	c := corev1.Container{
		Name:    name,
		Image:   image,
		Env:     env,
		EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: p.secret.Name}}}},
	}
	if strings.TrimSpace(command) != "" {
		c.Command = []string{"/bin/sh", "-c", command}
	}
	if port != 0 {
		c.Ports = []corev1.ContainerPort{{Name: "port", ContainerPort: port, Protocol: corev1.ProtocolTCP}}
	}
	c.ReadinessProbe = probe
	spec := corev1.PodSpec{
		Containers: []corev1.Container{c},
		// Apps get neither the API token nor the service environment
		// variables of every Service in the namespace: only their config.
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
	}
	if d.Slug.Image == "" {
		spec.Volumes = []corev1.Volume{{Name: "slug", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		mount := []corev1.VolumeMount{{Name: "slug", MountPath: slugDir}}
		spec.Containers[0].WorkingDir = slugDir
		spec.Containers[0].VolumeMounts = mount
		fromSlugSecret := func(key string) *corev1.EnvVarSource {
			return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: p.slugSecret.Name}, Key: key}}
		}
		spec.InitContainers = []corev1.Container{{
			Name:         "slug",
			Image:        r.cfg.SlugBaseImage,
			Command:      []string{"/bin/sh", "-c", fetchScript},
			Env:          []corev1.EnvVar{{Name: "SLIPWAY_SLUG_URL", ValueFrom: fromSlugSecret("url")}, {Name: "SLIPWAY_SLUG_TOKEN", ValueFrom: fromSlugSecret("token")}},
			VolumeMounts: mount,
		}}
	}
	return spec
}

// fetchScript downloads the slug (a .tar.gz) into /app with curl, or wget
// where the image has no curl, sending the token as a bearer token.
const fetchScript = `set -eu
f=/app/.slug.tar.gz
if command -v curl >/dev/null 2>&1; then
  if [ -n "$SLIPWAY_SLUG_TOKEN" ]; then curl -fsSL --retry 3 -H "Authorization: Bearer $SLIPWAY_SLUG_TOKEN" -o "$f" "$SLIPWAY_SLUG_URL"
  else curl -fsSL --retry 3 -o "$f" "$SLIPWAY_SLUG_URL"; fi
else
  if [ -n "$SLIPWAY_SLUG_TOKEN" ]; then wget -q --header "Authorization: Bearer $SLIPWAY_SLUG_TOKEN" -O "$f" "$SLIPWAY_SLUG_URL"
  else wget -q -O "$f" "$SLIPWAY_SLUG_URL"; fi
fi
tar -xzf "$f" -C /app
rm -f "$f"
`

// deployment is the Deployment of one formation type.
func (r *Runtime) deployment(p *plan, d *slipway.Desired, f slipway.Formation, image string) *appsv1.Deployment {
	port := int32(0)
	var probe *corev1.Probe
	if f.Type == "web" || f.Port != 0 || f.Healthcheck != "" {
		port = portOf(f)
		probe = &corev1.Probe{PeriodSeconds: 5, TimeoutSeconds: 2, FailureThreshold: 3, SuccessThreshold: 1}
		if f.Healthcheck != "" {
			probe.HTTPGet = &corev1.HTTPGetAction{Path: f.Healthcheck, Port: intstr.FromInt32(port)}
		} else {
			probe.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromInt32(port)}
		}
	}
	labels := releaseLabels(p)
	labels[LabelType] = f.Type
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       r.podSpec(p, d, containerName(f.Type), f.Command, image, port, probe),
	}
	tmpl.Spec.Containers[0].Resources = sizeResources(f.Size)
	tmpl.Annotations = map[string]string{AnnotationTemplate: templateHash(&tmpl)}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name: deploymentName(p.app.Name, f.Type), Namespace: p.ns, Labels: maps.Clone(labels),
			Annotations: map[string]string{changeCause: fmt.Sprintf("slipway release v%d (%s)", p.release.Version, p.release.ID)},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(f.Quantity)),
			Selector: &metav1.LabelSelector{MatchLabels: selector(p.app.ID, f.Type)},
			Template: tmpl,
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxSurge:       ptr.To(intstr.FromInt(r.cfg.Surge)),
					MaxUnavailable: ptr.To(intstr.FromInt(r.cfg.MaxUnavailable)),
				},
			},
			ProgressDeadlineSeconds: ptr.To(r.progressDeadlineSeconds()),
			RevisionHistoryLimit:    ptr.To(int32(RevisionHistory)),
		},
	}
}

func (r *Runtime) progressDeadlineSeconds() int32 {
	s := (r.cfg.HealthyDeadline + 999_999_999) / 1_000_000_000 // whole seconds, rounded up
	return max(1, int32(s))
}

// templateHash identifies a pod template as Slipway built it (before the
// API server adds its defaults): equal desired states give equal hashes.
func templateHash(t *corev1.PodTemplateSpec) string {
	b, err := json.Marshal(t)
	if err != nil {
		panic(err) // a PodTemplateSpec always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// templateID tells pods of one template (and one restart of it) from
// another: pods carry their template's annotations.
func templateID(annotations map[string]string) string {
	return annotations[AnnotationTemplate] + "|" + annotations[AnnotationRestartedAt]
}

// service is the app's Service: port 80 to the web dynos' port.
func service(p *plan, port int32) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: serviceName(p.app.Name), Namespace: p.ns, Labels: appLabels(p.app)},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector(p.app.ID, "web"),
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP}},
		},
	}
}

// releaseJob runs the release phase: the slug's release command once, with
// the release's config, no retries.
func (r *Runtime) releaseJob(p *plan, d *slipway.Desired, command, image string) *batchv1.Job {
	labels := releaseLabels(p)
	labels[LabelType] = "release"
	spec := r.podSpec(p, d, "release", command, image, 0, nil)
	spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: jobName(p.app.Name, p.release.Version), Namespace: p.ns, Labels: maps.Clone(labels)},
		Spec: batchv1.JobSpec{
			BackoffLimit:          ptr.To(int32(0)),
			ActiveDeadlineSeconds: ptr.To(int64((r.cfg.ReleasePhaseTimeout + 999_999_999) / 1_000_000_000)),
			Template:              corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

// sizeResources are the container's resource requests and limits for a
// formation size (see slipway.Sizes): memory requested and limited alike,
// so a dyno gets what its size promises and no more; CPU requested and
// limited to the size's share. The default size sets none (the cluster's
// defaults apply, as before sizes), and so leaves the template as it was.
func sizeResources(size string) corev1.ResourceRequirements {
	s, ok := slipway.FindSize(size)
	if !ok || s.MemoryBytes == 0 && s.MilliCPU == 0 {
		return corev1.ResourceRequirements{}
	}
	rl := corev1.ResourceList{}
	if s.MemoryBytes > 0 {
		rl[corev1.ResourceMemory] = *resource.NewQuantity(s.MemoryBytes, resource.BinarySI)
	}
	if s.MilliCPU > 0 {
		rl[corev1.ResourceCPU] = *resource.NewMilliQuantity(s.MilliCPU, resource.DecimalSI)
	}
	return corev1.ResourceRequirements{Requests: rl, Limits: rl.DeepCopy()}
}
