// Package kube is Slipway's Kubernetes runtime: it carries out releases on a
// cluster through client-go, with the same contract as the local runtime
// (slipway.Runtime).
//
// What it creates, all labelled slipway.io/managed=true, slipway.io/app
// (app name), slipway.io/app-id, and where it applies slipway.io/release
// (release id), slipway.io/version and slipway.io/type (process type):
//
//   - a Namespace per space (Config.Namespace, default "slipway-<space>"),
//     created when missing; never deleted;
//   - a Deployment "<app>--<type>" per formation type (selector app-id and
//     type), RollingUpdate with Config.Surge and Config.MaxUnavailable,
//     progressDeadlineSeconds from Config.HealthyDeadline, a readiness probe
//     (HTTP GET of the formation's healthcheck, else TCP on its port; types
//     other than web without a port or healthcheck get none);
//   - a Service "<app>" for the web type (port 80 to the web port);
//   - a Secret "<app>--v<version>" per release with the config vars,
//     referenced by envFrom, so a template of an earlier release (auto-revert,
//     `kubectl rollout undo`) brings its own config back; after a release
//     vN the secrets of vN-RevisionHistory to vN are kept, older ones
//     deleted;
//   - for archive slugs, a Secret "<app>--v<version>--slug" with the token
//     the init container presents to download the slug;
//   - a Job "<app>--release--v<version>" when the slug has a release process
//     type: the release phase runs once per release, before the rollout.
//
// Deploy applies every Deployment, then follows the Deployments and the
// app's pods through shared informers (one list and one watch per resource
// and namespace, not per app; see watch.go) until every Deployment has
// observed its new generation and has updatedReplicas == availableReplicas
// == replicas == the formation's quantity. It fails as soon as a pod of the
// new template cannot pull its image, cannot create its container or
// crash-loops, or when a Deployment reports ProgressDeadlineExceeded or
// ReplicaFailure; it then puts the previous pod template and replica count
// of every Deployment back (Deployments it created are deleted) and says so
// in its error. Formation types that are no longer desired are deleted only
// after a success.
//
// Split (split.go) runs a canary or blue-green release: a second
// Deployment "<app>--<type>--canary" beside each type's Deployment, both
// behind the app's Service, so the canary's share of traffic is its share
// of the pods; for blue-green a preview Service "<app>--web--preview"
// selects the canary pods while the app's Service selects the stable
// release's. Deploy ends a split. Every object name longer than 63
// characters is shortened the same way (objectName).
//
// Progress: each step is one slipway.ProgressEvent whose Message is a
// complete log line, such as "hello--web-6f7d9c-x8k2p started on v7",
// "hello--web-6f7d9c-x8k2p is ready (v7)" or "web: 3/3 on v7". Dyno names are
// pod names.
//
// Permissions: every call the runtime makes is listed in README.md as an
// RBAC Role. A Forbidden answer becomes an EUnprocessable error whose message
// names the verb and the resource that were refused.
package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/runtime/progress"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Labels and annotations the runtime sets. A type's Deployment selects
// by LabelAppID and LabelType only, so its selector never changes; a
// canary Deployment adds LabelTrack, and during a blue-green split the
// app's Service adds LabelRelease (see Split).
const (
	LabelManaged = "slipway.io/managed" // "true" on everything Slipway created, namespaces included
	LabelApp     = "slipway.io/app"     // the app's name
	LabelAppID   = "slipway.io/app-id"  // the app's id: what Remove and Dynos select on
	LabelSpace   = "slipway.io/space"   // the app's space
	LabelType    = "slipway.io/type"    // the formation (process) type
	LabelRelease = "slipway.io/release" // the release id
	LabelVersion = "slipway.io/version" // the release version, e.g. "7"
	// LabelTrack is "canary" on the canary Deployment of a split and its
	// pods (see Split); pods of the stable Deployment have none, so that a
	// split never changes their template.
	LabelTrack = "slipway.io/track"

	// AnnotationTemplate is a hash of the pod template as Slipway built it;
	// pods inherit it, which tells the pods of a new template from the old.
	AnnotationTemplate = "slipway.io/template"
	// AnnotationRestartedAt is the annotation `kubectl rollout restart` sets
	// on the pod template; Restart sets it too, and Deploy keeps it.
	AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
)

// TrackCanary is the LabelTrack of the canary release's Deployment and
// pods during a split.
const TrackCanary = "canary"

// DefaultPort is the port a dyno listens on (its $PORT) when its formation
// has port 0.
const DefaultPort = 5000

// RevisionHistory is how many earlier releases keep their ReplicaSets,
// Secrets and release-phase Jobs, so that `kubectl rollout undo` within that
// range still finds its config.
const RevisionHistory = 5

// Config is the Kubernetes runtime's cluster, rollout strategy and slug
// settings. Zero fields take the defaults documented on each field.
type Config struct {
	// Client talks to the cluster. Required; see NewFromKubeconfig.
	Client kubernetes.Interface
	// Namespace maps a space to its namespace. Default "slipway-" + space.
	// Return the same namespace for every space to run with a service
	// account that may use only one namespace (apps of different spaces
	// then must have different names there: a Deployment, Service or Secret
	// of another app is never taken over, the release fails instead).
	Namespace func(space string) string

	// SlugBaseImage runs archive slugs: an init container of this image
	// downloads the slug into /app (with curl or wget, and tar) and the
	// dyno runs its command with /bin/sh in /app. Without it, only docker://
	// builds can be released.
	SlugBaseImage string
	// SlugURL returns where a pod of the release downloads the slug (a
	// gzip-compressed tar of the slug's files, such as the server's
	// GET /slugs/{id}/blob) and the token it presents as
	// "Authorization: Bearer <token>" ("" sends none). The token is kept in
	// the release's "--slug" Secret, never in the Deployment. Required with
	// SlugBaseImage.
	SlugURL func(slugID, releaseID string) (url, token string)

	// HealthyDeadline becomes progressDeadlineSeconds: how long a rollout
	// may go without progress (a new pod becoming available) before it
	// fails. Default 60s; rounded up to whole seconds.
	HealthyDeadline time.Duration
	// Surge is the Deployments' maxSurge. Default 1 when both Surge and
	// MaxUnavailable are 0.
	Surge int
	// MaxUnavailable is the Deployments' maxUnavailable. Default 0: the
	// number of ready pods never drops during a rollout.
	MaxUnavailable int
	// ReleasePhaseTimeout bounds the release-phase Job (its
	// activeDeadlineSeconds). Default 10m.
	ReleasePhaseTimeout time.Duration
	// PollInterval is how often a rollout or release phase looks again at
	// the informers' cache when no event came, so that its no-progress
	// guard fires; it makes no API call. Default 1s.
	PollInterval time.Duration

	// Logger receives what happens outside a rollout's progress events.
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock of restartedAt annotations and of the no-progress
	// guard. Default time.Now.
	Now func() time.Time
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Namespace == nil {
		c.Namespace = func(space string) string { return "slipway-" + space }
	}
	if c.HealthyDeadline == 0 {
		c.HealthyDeadline = 60 * time.Second
	}
	if c.Surge == 0 && c.MaxUnavailable == 0 {
		c.Surge = 1
	}
	if c.ReleasePhaseTimeout == 0 {
		c.ReleasePhaseTimeout = 10 * time.Minute
	}
	if c.PollInterval == 0 {
		c.PollInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate returns an error (no code: this is server configuration) naming
// the first field that is missing, out of range or inconsistent with
// another. Zero fields pass (they mean "default"), except Surge and
// MaxUnavailable both 0, so a server can reject --surge=0
// --max-unavailable=0 by calling Validate before New.
func (c Config) Validate() error {
	if c.Client == nil {
		return errors.New("kubernetes runtime: Client is required")
	}
	if c.HealthyDeadline < 0 || c.ReleasePhaseTimeout < 0 || c.PollInterval < 0 {
		return errors.New("kubernetes runtime: HealthyDeadline, ReleasePhaseTimeout and PollInterval must not be negative")
	}
	if c.HealthyDeadline > math.MaxInt32*time.Second {
		return fmt.Errorf("kubernetes runtime: HealthyDeadline %s is too long", c.HealthyDeadline)
	}
	if c.Surge < 0 || c.MaxUnavailable < 0 {
		return fmt.Errorf("kubernetes runtime: surge (%d) and max unavailable (%d) must not be negative", c.Surge, c.MaxUnavailable)
	}
	if c.Surge == 0 && c.MaxUnavailable == 0 {
		return errors.New("kubernetes runtime: surge and max unavailable cannot both be 0: a rollout could never start a new pod")
	}
	if (c.SlugBaseImage == "") != (c.SlugURL == nil) {
		return errors.New("kubernetes runtime: SlugBaseImage and SlugURL go together: set both to run archive slugs, or neither")
	}
	if strings.ContainsAny(c.SlugBaseImage, " \t\n") {
		return fmt.Errorf("kubernetes runtime: SlugBaseImage %q is not an image reference", c.SlugBaseImage)
	}
	return nil
}

// Runtime runs apps as Deployments on a Kubernetes cluster. It implements
// slipway.Runtime; create it with New and stop its informers with Close.
type Runtime struct {
	cfg Config
	kc  kubernetes.Interface
	log *slog.Logger
	now func() time.Time

	mu   sync.Mutex
	apps map[string]*app // by app id
	keys map[string]*app // by app key ("<name>-<space>")
	// caches are the informers of each namespace in use (watch.go).
	caches map[string]*nsCache
	closed bool

	// Clean-ups that run after a Deploy returned (collectLater): Close
	// cancels them with stopCollect and waits for them on collecting.
	stopCollect   context.Context
	cancelCollect context.CancelFunc
	collecting    sync.WaitGroup
}

// app is what the runtime remembers of an app between calls. Everything
// else lives in the cluster, so a new server finds the app again by its
// labels (see locate).
type app struct {
	id string
	// lock serializes Deploy (and the clean-up it leaves running after it
	// returns), Split, Restart and Remove of the app (a channel so that
	// waiting for it honours the caller's context).
	lock chan struct{}
	// ns and ref are set by a Deploy (ns also by locate); guarded by
	// Runtime.mu.
	ns  string
	ref slipway.AppRef
	// absentUntil: locate found nothing of the app in the cluster at
	// this time less absentTTL, so asking again before it is over is not
	// worth two cluster-wide lists. Guarded by Runtime.mu.
	absentUntil time.Time
}

// absentTTL is how long locate remembers that an app has nothing in the
// cluster. Only apps another server deployed in that window show late
// (their dynos, restart, remove): this server's own Deploy sets ns.
const absentTTL = 5 * time.Second

var _ slipway.Runtime = (*Runtime)(nil)

// New returns a runtime for cfg (defaults filled, then validated). It does
// not contact the cluster: the informers of a namespace start when the
// namespace is first used. Errors carry no code.
func New(cfg Config) (*Runtime, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Runtime{cfg: cfg, kc: cfg.Client, log: cfg.Logger, now: cfg.Now, apps: map[string]*app{}, keys: map[string]*app{}, caches: map[string]*nsCache{}}
	r.stopCollect, r.cancelCollect = context.WithCancel(context.Background())
	return r, nil
}

// ClientOptions shape the client NewFromKubeconfig makes.
type ClientOptions struct {
	// QPS and Burst bound the client's requests a second (a token bucket
	// of Burst refilled at QPS); 0 means DefaultQPS, DefaultBurst.
	QPS   float32
	Burst int
	// Wrap, when not nil, wraps the client's transport: every request to
	// the API server goes through it (the server counts them with it).
	Wrap func(http.RoundTripper) http.RoundTripper
}

// The client's default rate: a release makes about 12 requests (make
// scale), so 50 a second carries some 250 releases a minute per server;
// client-go's own default (5 QPS) would throttle parallel releases.
const (
	DefaultQPS   = 50
	DefaultBurst = 100
)

// NewFromKubeconfig returns a client for the cluster of the kubeconfig at
// path; path "" means the files listed in $KUBECONFIG, and without that the
// in-cluster configuration of a pod's service account. (~/.kube/config is
// not read unless named: a server should not pick up a person's
// credentials by accident.) Errors carry no code.
func NewFromKubeconfig(path string, opts ClientOptions) (kubernetes.Interface, error) {
	var (
		rc  *rest.Config
		err error
	)
	switch {
	case path != "":
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{}).ClientConfig()
	case os.Getenv("KUBECONFIG") != "":
		rules := &clientcmd.ClientConfigLoadingRules{Precedence: filepathList(os.Getenv("KUBECONFIG"))}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	default:
		rc, err = rest.InClusterConfig()
		if errors.Is(err, rest.ErrNotInCluster) {
			err = errors.New("no kubeconfig given (--kubeconfig or KUBECONFIG) and not running in a pod")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes runtime: loading the cluster configuration: %w", err)
	}
	rc.QPS, rc.Burst = opts.QPS, opts.Burst
	if rc.QPS <= 0 {
		rc.QPS = DefaultQPS
	}
	if rc.Burst <= 0 {
		rc.Burst = DefaultBurst
	}
	rc.UserAgent = "slipway"
	if opts.Wrap != nil {
		rc.Wrap(opts.Wrap)
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes runtime: %w", err)
	}
	return kc, nil
}

func filepathList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, string(os.PathListSeparator)) {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// appFor returns the app with this id, created if new.
func (r *Runtime) appFor(id string) *app {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.apps[id]
	if a == nil {
		a = &app{id: id, lock: make(chan struct{}, 1)}
		r.apps[id] = a
	}
	return a
}

// acquire takes a's lock (a channel of one slot: whoever fills it holds
// the app until release empties it), waiting for as long as another
// Deploy (or its clean-up), Split or Restart of the app holds it, or
// returns ctx's cause when ctx ends first. It serializes this server's
// work on one app only; between servers the engine's lease does.
func (a *app) acquire(ctx context.Context) error {
	select {
	case a.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (a *app) release() { <-a.lock }

// remember records where a deployed app lives.
func (r *Runtime) remember(a *app, ref slipway.AppRef, ns string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a.ns, a.ref = ns, ref
	if ref.Key != "" {
		r.keys[strings.ToLower(ref.Key)] = a
	}
}

// forget drops what the runtime remembers of a removed app.
func (r *Runtime) forget(a *app) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a.ns, a.ref = "", slipway.AppRef{}
	for k, v := range r.keys {
		if v == a {
			delete(r.keys, k)
		}
	}
}

// resolve returns the app for an id or key, and its namespace if known.
func (r *Runtime) resolve(idOrKey string) (*app, string) {
	r.mu.Lock()
	a := r.keys[strings.ToLower(idOrKey)]
	if a == nil {
		a = r.apps[idOrKey]
	}
	var ns string
	if a != nil {
		ns = a.ns
	}
	r.mu.Unlock()
	if a == nil {
		a = r.appFor(idOrKey)
	}
	return a, ns
}

// locate finds the namespace of an app this server has not deployed since
// it started: by its app-id label across all namespaces, or, when the
// service account may not list cluster-wide, in the namespaces this server
// knows plus the default space's. "" when the app has nothing in the
// cluster.
func (r *Runtime) locate(ctx context.Context, a *app) (string, error) {
	r.mu.Lock()
	ns, absent := a.ns, time.Now().Before(a.absentUntil)
	r.mu.Unlock()
	if ns != "" {
		return ns, nil
	}
	if absent || !isLabelValue(a.id) {
		return "", nil // never deployed: Deploy refuses such ids
	}
	notFound := func() (string, error) {
		r.mu.Lock()
		a.absentUntil = time.Now().Add(absentTTL)
		r.mu.Unlock()
		return "", nil
	}
	sel := metav1.ListOptions{LabelSelector: LabelAppID + "=" + a.id}
	found := func(ns string) string {
		r.mu.Lock()
		if a.ns == "" {
			a.ns = ns
		}
		r.mu.Unlock()
		return ns
	}
	// The namespaces already watched first: a restarted server finds most
	// apps there without a call.
	if ns := r.cachedNamespace(a.id); ns != "" {
		return found(ns), nil
	}
	list, err := r.kc.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, sel)
	if err == nil {
		if len(list.Items) > 0 {
			return found(list.Items[0].Namespace), nil
		}
		secrets, err := r.kc.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, sel)
		if err == nil && len(secrets.Items) > 0 {
			return found(secrets.Items[0].Namespace), nil
		}
		if err == nil {
			return notFound()
		}
		if !isForbidden(err) {
			return "", r.apiError(ctx, err, "list", "secrets", "", "")
		}
	} else if !isForbidden(err) {
		return "", r.apiError(ctx, err, "list", "deployments", "", "")
	}
	for _, ns := range r.candidateNamespaces() {
		list, err := r.kc.AppsV1().Deployments(ns).List(ctx, sel)
		if err != nil {
			if isForbidden(err) || isNotFound(err) {
				continue
			}
			return "", r.apiError(ctx, err, "list", "deployments", ns, "")
		}
		if len(list.Items) > 0 {
			return found(ns), nil
		}
	}
	return notFound()
}

// cachedNamespace is the namespace of a synced cache holding a Deployment
// of the app, "" if none does.
func (r *Runtime) cachedNamespace(appID string) string {
	r.mu.Lock()
	caches := make([]*nsCache, 0, len(r.caches))
	for _, c := range r.caches {
		caches = append(caches, c)
	}
	r.mu.Unlock()
	sort.Slice(caches, func(i, j int) bool { return caches[i].ns < caches[j].ns })
	for _, c := range caches {
		select {
		case <-c.synced:
			if len(c.deployments(appID)) > 0 {
				return c.ns
			}
		default:
		}
	}
	return ""
}

// candidateNamespaces lists the namespaces of known apps and of the
// "default" space, sorted, without duplicates.
func (r *Runtime) candidateNamespaces() []string {
	set := map[string]bool{r.cfg.Namespace("default"): true}
	r.mu.Lock()
	for _, a := range r.apps {
		if a.ns != "" {
			set[a.ns] = true
		}
	}
	r.mu.Unlock()
	out := make([]string, 0, len(set))
	for ns := range set {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

func isLabelValue(s string) bool { return s != "" && len(validation.IsValidLabelValue(s)) == 0 }

// reporter delivers an operation's progress events (package progress).
type reporter = progress.Reporter

var newReporter = progress.New
