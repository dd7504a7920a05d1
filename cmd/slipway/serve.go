package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
	"github.com/slipway/slipway/engine"
	"github.com/slipway/slipway/hook"
	"github.com/slipway/slipway/internal/egress"
	"github.com/slipway/slipway/runtime/kube"
	"github.com/slipway/slipway/runtime/local"
	"github.com/slipway/slipway/slug"
	"github.com/slipway/slipway/store"
	"github.com/slipway/slipway/ui"
)

// serveConfig is everything `slipway serve` can be told.
type serveConfig struct {
	Listen          string
	RouterListen    string
	DataDir         string
	SlugDir         string
	Database        string
	Runtime         string
	Kubeconfig      string
	SlugBaseImage   string
	PublicURL       string
	BaseDomain      string
	ReleaseDeadline time.Duration
	HealthyDeadline time.Duration
	DrainTimeout    time.Duration
	StopGrace       time.Duration
	MinUptime       time.Duration
	ReleasePhase    time.Duration
	Surge           int
	MaxUnavailable  int
	MaxSlugSize     int64
	HookRetryBase   time.Duration
	LeaseTTL        time.Duration
	DBMaxConns      int
	KubeQPS         float32
	KubeBurst       int
	MigrateOnly     bool
	LogLevel        string
	// Dyno isolation on the local runtime (see local.Isolation).
	DynoIsolation    string // auto (on when root), on or off
	RequireIsolation bool
	DynoUIDRange     string
	DynoSubnet       string
	DynoEgress       bool
	DynoMemory       string
	DynoCPU          float64
	DynoPids         int64
	// MetricsToken, when set, is the bearer token GET /metrics needs.
	MetricsToken string
	// TLSCert and TLSKey (PEM files, both or neither) serve the API over
	// HTTPS.
	TLSCert, TLSKey string
	// LogSessionTTL is how long a log session's URL may be opened; 0 is
	// api.DefaultLogSessionTTL (tests shorten it).
	LogSessionTTL time.Duration
	// Token is the admin token; empty reads or creates DataDir/token.
	Token string
	// UI serves the web dashboard under /ui/ of the API's listener.
	UI bool

	// AllowPrivateFetch widens where builds and webhooks of
	// organization-scoped tokens may connect (public addresses only by
	// default).
	AllowPrivateFetch egress.Policy
	// Limits a tenant cannot exceed.
	MaxConcurrentBuilds int // builds run at once; more wait, queued
	MaxDynosPerApp      int // sum of an app's formation quantities
	MaxDynosPerOrg      int // sum over every app of an organization
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "slipway-data")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "slipway-data")
	}
	return "slipway-data"
}

func newServeCmd() *cobra.Command {
	cmd, _ := newServeCmdConfig()
	return cmd
}

// newServeCmdConfig returns the serve command and the config its flags
// fill in when it is parsed (tests read the defaults from it).
func newServeCmdConfig() (*cobra.Command, *serveConfig) {
	c := &serveConfig{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Slipway server: API, release engine, local runtime and router",
		Long: `Run the Slipway server. With no flags it needs nothing else: a SQLite
database and slugs under the data directory, dynos as local processes, and
the router on 127.0.0.1:5080. Every flag has an environment twin, e.g.
--listen and SLIPWAY_LISTEN.`,
		Example: `  slipway serve
  SLIPWAY_TOKEN=secret slipway serve --listen 127.0.0.1:5000 --data-dir ./data
  slipway serve --database postgres://slipway@db.internal/slipway`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				// Most often the value of --allow-private-fetch given
				// without "=": the flag alone means "all".
				return usagef("serve takes no arguments, not %q; to open prefixes to scoped tokens write --allow-private-fetch=%s", args[0], args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags()); err != nil {
				return err
			}
			c.Token = os.Getenv("SLIPWAY_TOKEN")
			if c.MigrateOnly {
				return migrateOnly(cmd.Context(), *c, cmd.OutOrStdout())
			}
			srv, err := startServer(cmd.Context(), *c, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			<-cmd.Context().Done()
			fmt.Fprintln(cmd.OutOrStdout(), "Shutting down: stopping dynos.")
			return srv.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Listen, "listen", "127.0.0.1:5000", "address of the API")
	f.StringVar(&c.RouterListen, "router-listen", "127.0.0.1:5080", "address of the router that serves the apps")
	f.StringVar(&c.DataDir, "data-dir", defaultDataDir(), "folder for the database, slugs, dyno logs and the token")
	f.StringVar(&c.Database, "database", "", "SQLite file path or postgres:// URL (default: slipway.db in the data dir)")
	f.StringVar(&c.SlugDir, "slug-dir", "", "where builds are unpacked (default: slugs in the data dir; share it between servers on one database)")
	f.StringVar(&c.Runtime, "runtime", "local", "where dynos run: local (processes on this machine) or kubernetes")
	f.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default $KUBECONFIG, else in-cluster)")
	f.StringVar(&c.SlugBaseImage, "slug-base-image", "", "kubernetes: image that runs archive slugs (needs sh, tar and curl or wget)")
	f.StringVar(&c.PublicURL, "public-url", "", "kubernetes: the API's URL as pods reach it, for slug downloads (default the listen address)")
	f.StringVar(&c.BaseDomain, "base-domain", "localhost", "apps answer at <name>-<space>.<base domain> on the router")
	f.DurationVar(&c.ReleaseDeadline, "release-deadline", 10*time.Minute, "past this a release's outcome is unknown")
	f.DurationVar(&c.HealthyDeadline, "healthy-deadline", 60*time.Second, "time a new dyno has to pass its health check")
	f.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "time an old dyno has to finish its requests")
	f.DurationVar(&c.StopGrace, "stop-grace", 10*time.Second, "time between SIGTERM and SIGKILL")
	f.DurationVar(&c.MinUptime, "min-uptime", 2*time.Second, "how long a non-web dyno must stay up to count as healthy")
	f.DurationVar(&c.ReleasePhase, "release-phase-timeout", 10*time.Minute, "how long the Procfile's release command may run")
	f.IntVar(&c.Surge, "surge", 1, "dynos per type started above the quantity during a rollout")
	f.IntVar(&c.MaxUnavailable, "max-unavailable", 0, "ready dynos per type a rollout may take away")
	f.Int64Var(&c.MaxSlugSize, "max-slug-size", 200<<20, "largest build archive in bytes")
	f.IntVar(&c.MaxConcurrentBuilds, "max-concurrent-builds", engine.DefaultMaxConcurrentBuilds, "builds this server runs at once; more wait, queued")
	f.IntVar(&c.MaxDynosPerApp, "max-dynos-per-app", slipway.DefaultMaxDynosPerApp, "most dynos an app's formations may ask for in all")
	f.IntVar(&c.MaxDynosPerOrg, "max-dynos-per-org", slipway.DefaultMaxDynosPerOrg, "most dynos the apps of one organization may ask for in all")
	f.DurationVar(&c.HookRetryBase, "hook-retry-base", time.Second, "wait before retrying a failed webhook delivery; doubles each time")
	f.DurationVar(&c.LeaseTTL, "lease-ttl", 15*time.Second, "with several servers on one database: how long a dead server keeps an app's releases")
	f.IntVar(&c.DBMaxConns, "db-max-conns", store.DefaultMaxConns, "PostgreSQL: most connections this server opens (all servers together must stay under the database's max_connections; 0: the default)")
	f.Float32Var(&c.KubeQPS, "kube-qps", kube.DefaultQPS, "kubernetes: requests a second this server may send the API server, sustained (0: the default)")
	f.IntVar(&c.KubeBurst, "kube-burst", kube.DefaultBurst, "kubernetes: requests this server may send at once above --kube-qps (0: the default)")
	f.VarPF(&c.AllowPrivateFetch, "allow-private-fetch", "", "let builds and webhooks of organization-scoped tokens reach non-public addresses: the flag alone opens all, --allow-private-fetch=10.20.0.0/16,… opens those prefixes (default: public addresses only)").NoOptDefVal = "all"
	f.BoolVar(&c.MigrateOnly, "migrate-only", false, "apply database migrations and exit (for deploy pipelines)")
	f.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&c.DynoIsolation, "dyno-isolation", "auto", "local runtime: run each dyno in its own namespaces, uid, network and cgroup: auto (when root), on or off")
	f.BoolVar(&c.RequireIsolation, "require-isolation", false, "refuse to start unless dynos are isolated (for servers that give scoped tokens to untrusted tenants)")
	f.StringVar(&c.DynoUIDRange, "dyno-uid-range", defaultUIDRange, "uids handed to apps' dynos, one per app")
	f.StringVar(&c.DynoSubnet, "dyno-subnet", "10.213.0.0/16", "subnet of the dynos' own addresses (a /30 link each); used by nothing else")
	f.BoolVar(&c.DynoEgress, "dyno-egress", false, "let dynos open connections off this machine (NAT); loopback and private ranges stay closed")
	f.StringVar(&c.DynoMemory, "dyno-memory", defaultDynoMemory, "memory limit of each dyno (0 for none)")
	f.Float64Var(&c.DynoCPU, "dyno-cpu", 1, "CPU share of each dyno, in cores (0 for no limit)")
	f.Int64Var(&c.DynoPids, "dyno-pids", 256, "most processes and threads in one dyno (0 for no limit)")
	f.StringVar(&c.TLSCert, "tls-cert", "", "serve the API over HTTPS with this certificate (PEM, chain included); needs --tls-key")
	f.StringVar(&c.TLSKey, "tls-key", "", "the private key (PEM) of --tls-cert")
	f.BoolVar(&c.UI, "ui", true, "serve the web dashboard under /ui/ of the API's address (--ui=false turns it off)")
	f.StringVar(&c.MetricsToken, "metrics-token", "", "bearer token GET /metrics needs (default: none; prefer SLIPWAY_METRICS_TOKEN, as flags show in ps)")
	return cmd, c
}

// applyEnv sets every flag not given on the command line from its
// environment twin: --release-deadline reads SLIPWAY_RELEASE_DEADLINE.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil {
			return
		}
		name := "SLIPWAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %v", name, v, e)
			}
		}
	})
	return err
}

// server is a running Slipway: API, engine, runtime and router.
type server struct {
	APIURL, RouterURL string
	Token             string
	db                *store.DB
	closeRT           func() error
	api, router       *http.Server
	cancel            context.CancelFunc
	engineDone        chan error
	hooksDone         chan error
}

// startServer opens the store, starts the runtime, the engine and both
// listeners, and returns once they accept connections.
func startServer(ctx context.Context, c serveConfig, out io.Writer) (*server, error) {
	level := slog.LevelInfo
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
	tlsConfig, err := loadTLS(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, err
	}
	if err := checkLimits(c); err != nil {
		return nil, err
	}
	if err := checkDataDir(c.DataDir); err != nil {
		return nil, err
	}
	token, created, err := loadToken(c.DataDir, c.Token)
	if err != nil {
		return nil, err
	}
	holder, err := serverID(c.DataDir)
	if err != nil {
		return nil, err
	}
	if c.Database == "" {
		c.Database = filepath.Join(c.DataDir, "slipway.db")
	}
	if c.SlugDir == "" {
		c.SlugDir = filepath.Join(c.DataDir, "slugs")
	}
	spoolDir, err := emptySpoolDir(c.DataDir)
	if err != nil {
		return nil, err
	}
	// closers undo what was opened so far when a later step fails.
	var closers []func() error
	fail := func(err error) (*server, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		return nil, err
	}
	db, err := store.Open(ctx, c.Database)
	if err != nil {
		return nil, err
	}
	closers = append(closers, db.Close)
	db.SetMaxConns(c.DBMaxConns)
	db.Limits = slipway.DynoLimits{PerApp: c.MaxDynosPerApp, PerOrg: c.MaxDynosPerOrg}
	apiLn, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fail(fmt.Errorf("API listener: %w (is another slipway running? use --listen)", err))
	}
	closers = append(closers, apiLn.Close)
	routerLn, err := net.Listen("tcp", c.RouterListen)
	if err != nil {
		return fail(fmt.Errorf("router listener: %w (use --router-listen)", err))
	}
	closers = append(closers, routerLn.Close)
	apiURL := "http://" + apiLn.Addr().String()
	if tlsConfig != nil {
		apiURL = "https://" + apiLn.Addr().String()
	}
	if c.PublicURL == "" {
		c.PublicURL = apiURL
	}
	blobKey := sha256.Sum256([]byte("slug-blob:" + token))
	logKey := sha256.Sum256([]byte("log-session:" + token)) // servers sharing the token serve each other's log sessions
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db.Postgres() {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "slipway_db_queries_total", Help: "Statements sent to PostgreSQL, BEGIN and COMMIT included.",
		}, func() float64 { return float64(db.Queries()) }))
	}
	rt, routes, closeRT, err := newRuntime(c, db, logger, blobKey[:], reg)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, closeRT)
	routerPort := routerLn.Addr().(*net.TCPAddr).Port
	var defaultSize slipway.Size
	if lrt, ok := rt.(*local.Runtime); ok {
		reg.MustRegister(lrt.RouterCollector())
		defaultSize = lrt.DefaultSize()
	}
	baseDomain := strings.ToLower(strings.Trim(c.BaseDomain, "."))
	// The engine needs the API's metrics observer and the API needs the
	// engine: the API is created first, with a lateEngine that the engine
	// is put in once it exists, and the engine is then given a.Metrics().
	var eng *engine.Engine
	engineRef := &lateEngine{}
	a := api.New(api.Config{
		Store: db, Engine: engineRef, Runtime: rt, RuntimeName: c.Runtime, DefaultSize: defaultSize, Token: token, MetricsToken: c.MetricsToken, MaxSlug: c.MaxSlugSize, SpoolDir: spoolDir, Logger: logger, Registry: reg,
		WebURL:   func(key string) string { return fmt.Sprintf("http://%s.%s:%d/", key, baseDomain, routerPort) },
		SlugBlob: slugBlob, BlobKey: blobKey[:],
		Egress: c.AllowPrivateFetch, LogKey: logKey[:], LogSessionTTL: c.LogSessionTTL,
	})
	a.RegisterGauges()
	var apiHandler http.Handler = a
	if c.UI {
		apiHandler = ui.Wrap(a, ui.New(ui.Config{API: a, Logger: logger}))
	}
	// Builds and hooks of scoped tokens connect through transports of
	// their own, which refuse non-public addresses as they dial.
	scopedFetch := c.AllowPrivateFetch.Client(slug.DefaultHTTPTimeout)
	eng = engine.New(engine.Config{
		Store: db, Runtime: rt, Builder: &slug.Builder{MaxSize: c.MaxSlugSize, ScopedHTTPClient: scopedFetch}, SlugDir: c.SlugDir, MaxConcurrentBuilds: c.MaxConcurrentBuilds,
		ReleaseDeadline: c.ReleaseDeadline, LeaseTTL: c.LeaseTTL, Holder: holder, Events: a.Metrics(), Logger: logger,
	})
	engineRef.Engine = eng
	ectx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &server{
		APIURL: apiURL, RouterURL: "http://" + routerLn.Addr().String(), Token: token,
		db: db, closeRT: closeRT, cancel: cancel, engineDone: make(chan error, 1), hooksDone: make(chan error, 1),
		api:    &http.Server{Handler: apiHandler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)},
		router: &http.Server{Handler: routes, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)},
	}
	deliverer := hook.New(hook.Config{Outbox: db, RetryBase: c.HookRetryBase, Logger: logger, ScopedClient: c.AllowPrivateFetch.Client(10 * time.Second)})
	go func() { s.engineDone <- eng.Run(ectx) }()
	go func() { s.hooksDone <- deliverer.Run(ectx) }()
	if tlsConfig != nil {
		s.api.TLSConfig = tlsConfig
		go s.api.ServeTLS(apiLn, "", "")
	} else {
		go s.api.Serve(apiLn)
	}
	go s.router.Serve(routerLn)
	fmt.Fprintf(out, "Slipway API on %s, router on %s (apps at http://<name>-<space>.%s:%d/)\n", s.APIURL, s.RouterURL, baseDomain, routerPort)
	fmt.Fprintf(out, "Data in %s, database %s\n", c.DataDir, redactDSN(c.Database))
	if c.UI {
		fmt.Fprintf(out, "Dashboard on %s/ui/ (sign in with an API token)\n", s.APIURL)
	}
	if created {
		fmt.Fprintf(out, "Generated the admin token (saved in %s; shown only this once):\n  export SLIPWAY_TOKEN=%s\n", filepath.Join(c.DataDir, "token"), token)
	}
	return s, nil
}

// Close stops the listeners, the engine and every dyno.
func (s *server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.api.Shutdown(ctx)
	s.cancel()
	err := errors.Join(<-s.engineDone, <-s.hooksDone)
	s.router.Shutdown(ctx)
	return errors.Join(err, s.closeRT(), s.db.Close())
}

// newRuntime builds the runtime --runtime names, the handler the router
// listener serves, and what stops the runtime; it registers the runtime's
// own series in reg.
func newRuntime(c serveConfig, db *store.DB, logger *slog.Logger, blobKey []byte, reg *prometheus.Registry) (slipway.Runtime, http.Handler, func() error, error) {
	switch c.Runtime {
	case "local", "":
		iso, err := isolation(c, db, logger)
		if err != nil {
			return nil, nil, nil, err
		}
		cfg := local.Config{
			DataDir: filepath.Join(c.DataDir, "runtime"), HealthyDeadline: c.HealthyDeadline, DrainTimeout: c.DrainTimeout,
			StopGrace: c.StopGrace, MinUptime: c.MinUptime, ReleasePhaseTimeout: c.ReleasePhase, Surge: c.Surge,
			MaxUnavailable: c.MaxUnavailable, BaseDomain: c.BaseDomain, Logger: logger, Isolation: iso,
		}
		if err := cfg.Validate(); err != nil {
			return nil, nil, nil, err
		}
		rt, err := local.New(cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		return rt, rt.Router(), rt.Close, nil
	case "kubernetes":
		requests := prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_kubernetes_requests_total", Help: "Requests to the Kubernetes API server, by method and status code (0: no answer).",
		}, []string{"method", "code"})
		client, err := kube.NewFromKubeconfig(c.Kubeconfig, kube.ClientOptions{QPS: c.KubeQPS, Burst: c.KubeBurst, Wrap: countRequests(requests)})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("kubernetes: %w (set --kubeconfig or KUBECONFIG)", err)
		}
		public := strings.TrimRight(c.PublicURL, "/")
		cfg := kube.Config{
			Client: client, SlugBaseImage: c.SlugBaseImage, HealthyDeadline: c.HealthyDeadline, Surge: c.Surge,
			MaxUnavailable: c.MaxUnavailable, ReleasePhaseTimeout: c.ReleasePhase, Logger: logger,
		}
		if c.SlugBaseImage != "" { // archive slugs are downloaded from this server
			cfg.SlugURL = func(slugID, releaseID string) (string, string) {
				return public + "/slugs/" + slugID + "/blob?release=" + releaseID, api.SlugToken(blobKey, slugID, releaseID)
			}
		}
		if err := cfg.Validate(); err != nil {
			return nil, nil, nil, err
		}
		rt, err := kube.New(cfg)
		if err != nil {
			return nil, nil, nil, err
		}
		reg.MustRegister(requests)
		routes := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Apps run on Kubernetes: reach them through their Service (or your ingress), not this router.", http.StatusNotFound)
		})
		return rt, routes, rt.Close, nil
	}
	return nil, nil, nil, fmt.Errorf("--runtime %q: use local or kubernetes", c.Runtime)
}

// countRequests wraps a transport so that requests counts every request
// through it, by method and status code (0 when no answer came).
func countRequests(requests *prometheus.CounterVec) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(r)
			code := 0
			if err == nil {
				code = resp.StatusCode
			}
			requests.WithLabelValues(r.Method, strconv.Itoa(code)).Inc()
			return resp, err
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// checkLimits refuses the scale settings that cannot work (0 leaves
// each at its default).
func checkLimits(c serveConfig) error {
	switch {
	case c.DBMaxConns < 0:
		return fmt.Errorf("--db-max-conns %d: must not be negative (0 is the default, %d)", c.DBMaxConns, store.DefaultMaxConns)
	case c.KubeQPS < 0:
		return fmt.Errorf("--kube-qps %g: must not be negative (0 is the default, %d a second)", c.KubeQPS, kube.DefaultQPS)
	case c.KubeBurst < 0:
		return fmt.Errorf("--kube-burst %d: must not be negative (0 is the default, %d)", c.KubeBurst, kube.DefaultBurst)
	case c.LeaseTTL < 0 || c.LeaseTTL > 0 && c.LeaseTTL < time.Second:
		return fmt.Errorf("--lease-ttl %s: must be at least 1s (a server renews its leases every fifth of it)", c.LeaseTTL)
	}
	return nil
}

// migrateOnly applies the migrations (store.Open does) and exits.
func migrateOnly(ctx context.Context, c serveConfig, out io.Writer) error {
	if c.Database == "" {
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		c.Database = filepath.Join(c.DataDir, "slipway.db")
	}
	db, err := store.Open(ctx, c.Database)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Migrations applied to %s.\n", redactDSN(c.Database))
	return db.Close()
}

// emptySpoolDir returns the folder of the data dir where the API decodes
// inline archives while it reads their build requests, emptied of what a
// previous run left (its unfinished builds are failed at start).
func emptySpoolDir(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "spool")
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("spool dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("spool dir: %w", err)
	}
	return dir, nil
}

// loadTLS reads --tls-cert and --tls-key: nil for neither, an error for
// one without the other or files that do not make a key pair.
func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, errors.New("--tls-cert and --tls-key go together: give both (the certificate and its private key, PEM files) to serve the API over HTTPS, or neither for HTTP")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %v (both must be PEM files, the key the certificate's own)", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// lateEngine lets the API be built before the engine it calls.
type lateEngine struct{ *engine.Engine }

// checkDataDir creates the data dir with mode 0700, or refuses one that
// others can read: it holds the token, the database and config vars.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("data dir %s is open to other users (mode %v); it holds the token and the database: run chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// loadToken returns the admin token: given (from SLIPWAY_TOKEN), else read
// from dataDir/token, else generated and saved there with mode 0600.
func loadToken(dataDir, given string) (token string, created bool, err error) {
	if given != "" {
		return given, false, nil
	}
	path := filepath.Join(dataDir, "token")
	if b, err := os.ReadFile(path); err == nil {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("%s is readable by others (mode %v); run chmod 600 %s", path, fi.Mode().Perm(), path)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
	}
	if token, err = slipway.NewTokenSecret(); err != nil {
		return "", false, err
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("save token: %w", err)
	}
	return token, true, nil
}

// slugBlob writes a slug's files as a .tar.gz for GET /slugs/{id}/blob.
func slugBlob(w io.Writer, s *slipway.Slug) error {
	_, err := slug.Pack(w, s.Dir, slug.PackOptions{})
	return err
}

// Defaults of --dyno-uid-range and --dyno-memory (also for a serveConfig
// that leaves them empty).
const (
	defaultUIDRange   = "200000-299999"
	defaultDynoMemory = "512MiB"
)

// isolation turns the --dyno-* flags into the local runtime's isolation:
// on as root unless --dyno-isolation=off; without root, a warning (or, with
// --require-isolation, a refusal).
func isolation(c serveConfig, db *store.DB, logger *slog.Logger) (local.Isolation, error) {
	root := os.Geteuid() == 0 && goruntime.GOOS == "linux"
	mode := c.DynoIsolation
	if mode == "" {
		mode = "auto"
	}
	on := mode == "on" || (mode == "auto" && root)
	unavailable := ""
	if mode == "auto" && on {
		// auto falls back (loudly) where root lacks what isolation needs,
		// such as a container without cgroups; on insists.
		if err := local.CheckIsolation(); err != nil {
			on, unavailable = false, err.Error()
		}
	}
	switch {
	case mode != "auto" && mode != "on" && mode != "off":
		return local.Isolation{}, fmt.Errorf("--dyno-isolation %q: use auto, on or off", mode)
	case on && !root:
		return local.Isolation{}, errors.New("--dyno-isolation=on needs the server to run as root on Linux")
	case !on && c.RequireIsolation:
		msg := "--require-isolation: dynos cannot be isolated here (the server must run as root on Linux, with --dyno-isolation auto or on); or use --runtime kubernetes"
		if unavailable != "" {
			msg += " (" + unavailable + ")"
		}
		return local.Isolation{}, errors.New(msg)
	case !on:
		who := "this user"
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
		why := ""
		if unavailable != "" {
			why = " (isolation is not available here: " + unavailable + ")"
		}
		logger.Warn("dynos run unisolated as " + who + why + ": they can read what the server can. Scoped tokens for untrusted tenants need root (dyno isolation) or the Kubernetes runtime; --require-isolation refuses to start without it.")
		return local.Isolation{}, nil
	}
	if c.DynoUIDRange == "" {
		c.DynoUIDRange = defaultUIDRange
	}
	if c.DynoMemory == "" {
		c.DynoMemory = defaultDynoMemory
	}
	lo, hi, err := parseUIDRange(c.DynoUIDRange)
	if err != nil {
		return local.Isolation{}, err
	}
	mem, err := parseBytes(c.DynoMemory)
	if err != nil {
		return local.Isolation{}, fmt.Errorf("--dyno-memory %q: %v (e.g. 512MiB, 1GiB or 0)", c.DynoMemory, err)
	}
	if c.DynoCPU < 0 || c.DynoPids < 0 {
		return local.Isolation{}, errors.New("--dyno-cpu and --dyno-pids must not be negative")
	}
	return local.Isolation{
		Enabled: true, Subnet: c.DynoSubnet, Egress: c.DynoEgress, MemoryBytes: mem, CPU: c.DynoCPU, Pids: c.DynoPids,
		AppUID: func(appID string) (int, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return db.AppUID(ctx, appID, lo, hi)
		},
	}, nil
}

// parseUIDRange reads "200000-299999"; the range must leave out root and
// the system's own users.
func parseUIDRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1000 || hi < lo || hi > 1<<31-2 {
		return 0, 0, fmt.Errorf("--dyno-uid-range %q: use FIRST-LAST with 1000 <= FIRST <= LAST, such as 200000-299999", s)
	}
	return lo, hi, nil
}

// parseBytes reads a size such as 512MiB or 1GB; "0" is no limit.
func parseBytes(s string) (int64, error) {
	if strings.TrimSpace(s) == "0" {
		return 0, nil
	}
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, err
	}
	if n < 16<<20 {
		return 0, errors.New("at least 16MiB")
	}
	return int64(n), nil
}
