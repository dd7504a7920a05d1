// Package api serves Slipway's HTTP API: the Akkeris platform API for apps,
// builds, releases, release statuses, formations and dynos.
package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/egress"
)

// Engine is what the API asks of the release engine.
type Engine interface {
	// Kick tells the engine that the app has a new queued release.
	Kick(appID string)
	// Converge places the app's current release again (after scaling).
	Converge(appID string)
	// StartBuild runs a build in the background on its own copy of b
	// (the API answers with b meanwhile); it owns src.File (an inline
	// archive decoded while the request was read) and removes it when
	// the build ends.
	StartBuild(b *slipway.Build, src slipway.BuildSource)
	// CancelBuild stops a running build; EConflict if it is not running.
	CancelBuild(ctx context.Context, b *slipway.Build) error
	// Restart queues a rolling restart of dynos, carried out in turn with
	// the app's releases; ENotFound for an unknown dyno.
	Restart(ctx context.Context, appID, dyno string) error
	// RemoveApp stops the app's work and everything that runs for it; it
	// is called once the app's records are deleted.
	RemoveApp(ctx context.Context, appID string) error
}

// Store is what the API needs of the store: one interface per area of
// the API (each method's errors are on the slipway interface it comes
// from), and none of the engine's queues, leases or outbox.
type Store interface {
	slipway.OrganizationStore // /organizations, /spaces
	slipway.AppStore          // /apps, config vars, features
	slipway.BuildStore        // builds and slugs
	slipway.ReleaseStore      // releases and their logs
	slipway.ReleaseStatusStore
	slipway.FormationStore // formations
	slipway.TokenStore     // /tokens, and the scoped tokens auth accepts
	slipway.PipelineStore  // pipelines, couplings, promotions
	slipway.HookStore      // hooks and their results
	slipway.AuditStore     // /audits
	slipway.RolloutStore   // release strategies and rollout actions
	slipway.DeliveryStore  // release diffs and delivery metrics

	// AppsWithWork (slipway.ReleaseQueue) is a gauge of /metrics.
	AppsWithWork(ctx context.Context) ([]string, error)
	// Ping is /healthz.
	Ping(ctx context.Context) error
}

// Config holds the server's dependencies and settings.
type Config struct {
	Store   Store
	Engine  Engine
	Runtime slipway.Runtime
	// RuntimeName is the runtime dynos run on, "local" (the default) or
	// "kubernetes"; the server's one region and one stack are named so.
	RuntimeName string
	// DefaultSize holds the memory and CPU of a dyno of the default size
	// ("standard"), as GET /sizes shows them; zero for no limit.
	DefaultSize slipway.Size
	// Token is the admin token every request but /healthz and /metrics needs.
	Token string
	// MetricsToken, when set, is the token GET /metrics needs (as
	// "Authorization: Bearer <token>"); empty leaves /metrics open. Either
	// way the metrics name no app, organization or release.
	MetricsToken string
	// MaxBody limits JSON bodies (default 1 MiB); MaxSlug limits an
	// archive pushed inline as a data: URI (default 200 MiB).
	MaxBody, MaxSlug int64
	// SpoolDir is where inline archives are decoded to while their build
	// request is read, one file per build (default os.TempDir()).
	SpoolDir string
	// WebURL returns an app's public URL from its key.
	WebURL func(key string) string
	// SlugBlob writes a slug's files as a .tar.gz, for runtimes that
	// download slugs (GET /slugs/{id}/blob); nil answers 501.
	SlugBlob func(w io.Writer, s *slipway.Slug) error
	// BlobKey signs the per-release tokens that let a release's pods
	// download its slug; see SlugToken.
	BlobKey []byte
	// Egress is the rule for the URLs organization-scoped tokens give
	// (build sources, webhooks): public addresses only, plus what the
	// operator opened. A URL whose literal host breaks it is refused when
	// it is given; the fetches and deliveries are checked again when they
	// dial (slug.Builder.ScopedHTTPClient, hook.Config.ScopedClient).
	Egress   egress.Policy
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Now is the clock delivery metrics end their window at (default
	// time.Now); tests fix it.
	Now func() time.Time

	// LogKey signs log session URLs (see logs.go); servers that share it
	// serve each other's sessions. Default: a random key of this server.
	LogKey []byte
	// LogSessionTTL is how long a log session's URL may be opened after
	// it is created (DefaultLogSessionTTL); LogStreamMax bounds one
	// tailing stream (DefaultLogStreamMax).
	LogSessionTTL, LogStreamMax time.Duration
}

// Server is the HTTP API.
type Server struct {
	cfg     Config
	st      Store
	log     *slog.Logger
	handler http.Handler
	metrics *Metrics
	logKey  []byte
	spec    []byte // docs/openapi.yaml as JSON, for GET /openapi.json
}

// adminUser is who the admin token acts as in release and build records.
var adminUser = user{ID: "00000000-0000-4000-8000-000000000001", Email: ""}

// New returns the API server.
func New(cfg Config) *Server {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.MaxSlug <= 0 {
		cfg.MaxSlug = 200 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.WebURL == nil {
		cfg.WebURL = func(key string) string { return "http://" + key + ".localhost:5080/" }
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LogSessionTTL <= 0 {
		cfg.LogSessionTTL = DefaultLogSessionTTL
	}
	if cfg.LogStreamMax <= 0 {
		cfg.LogStreamMax = DefaultLogStreamMax
	}
	s := &Server{cfg: cfg, st: cfg.Store, log: cfg.Logger, metrics: newMetrics(cfg.Registry), logKey: cfg.LogKey, spec: specJSON()}
	if len(s.logKey) == 0 {
		s.logKey = make([]byte, 32)
		rand.Read(s.logKey)
	}
	s.handler = s.routes()
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Metrics returns the observer that records the engine's builds and
// releases as metrics (an engine.Observer).
func (s *Server) Metrics() *Metrics { return s.metrics }

func (s *Server) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(s.requestID, s.recoverer, s.instrument)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "No endpoint %s %s; see /openapi.json for the routes.", slipway.Clip(r.Method), slipway.Clip(r.URL.Path)))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, slipway.Errorf(slipway.EMethodNotAllowed, "Method %s is not allowed on %s.", slipway.Clip(r.Method), slipway.Clip(r.URL.Path)))
	})
	r.Get("/healthz", s.healthz)
	r.Get("/openapi.json", s.openAPI)
	// Pods download their slug with a per-release token (or the admin
	// token); the route checks it itself.
	r.Get("/slugs/{slug}/blob", s.getSlugBlob)
	// A log session's URL carries its own secret instead of a token.
	r.Get("/log-sessions/{session}", s.streamLogSession)
	r.With(s.metricsAuth).Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{}))
	r.Group(func(r chi.Router) {
		r.Use(s.auth)
		r.With(s.adminOnly).Post("/organizations", s.createOrganization)
		r.Get("/organizations", s.listOrganizations)
		r.Get("/organizations/{org}", s.getOrganization)
		r.With(s.adminOnly).Post("/spaces", s.createSpace)
		r.Get("/spaces", s.listSpaces)
		r.Get("/spaces/{space}", s.getSpace)
		r.Get("/regions", s.listRegions)
		r.Get("/regions/{region}", s.getRegion)
		r.Get("/stacks", s.listStacks)
		r.Get("/stacks/{stack}", s.getStack)

		r.Get("/sizes", s.listSizes)
		r.Post("/apps", s.createApp)
		r.Get("/apps", s.listApps)
		r.Route("/apps/{app}", func(r chi.Router) {
			r.Get("/", s.getApp)
			r.Patch("/", s.updateApp)
			r.Delete("/", s.deleteApp)
			r.Get("/features", s.listFeatures)
			r.Get("/features/{feature}", s.getFeature)
			r.Patch("/features/{feature}", s.updateFeature)
			r.Get("/config-vars", s.getConfigVars)
			r.Patch("/config-vars", s.updateConfigVars)
			r.Get("/config-vars/notes", s.getConfigVarNotes)

			r.Post("/builds", s.createBuild)
			r.Get("/builds", s.listBuilds)
			r.Get("/builds/{build}", s.getBuild)
			r.Get("/builds/{build}/result", s.getBuildResult)
			r.Delete("/builds/{build}", s.cancelBuild)
			r.Put("/builds/{build}", s.rebuildBuild)

			r.Post("/releases", s.createRelease)
			r.Get("/releases", s.listReleases)
			r.Get("/releases/{release}", s.getRelease)
			r.Get("/releases/{release}/log", s.getReleaseLog)
			r.Get("/releases/{release}/diff", s.getReleaseDiff)
			r.Get("/delivery-metrics", s.getAppDeliveryMetrics)
			r.Post("/releases/{release}/actions/{action}", s.releaseAction)
			r.Get("/release-strategy", s.getStrategy)
			r.Put("/release-strategy", s.putStrategy)
			r.Post("/releases/{release}/statuses", s.createStatus)
			r.Get("/releases/{release}/statuses", s.listStatuses)
			r.Get("/releases/{release}/statuses/{status}", s.getStatus)
			r.Patch("/releases/{release}/statuses/{status}", s.updateStatus)

			r.Get("/formation", s.listFormations)
			r.Post("/formation", s.createFormation)
			r.Patch("/formation", s.batchUpdateFormations)
			r.Get("/formation/{type}", s.getFormation)
			r.Patch("/formation/{type}", s.updateFormation)
			r.Delete("/formation/{type}", s.deleteFormation)
			r.Get("/dynos", s.listDynos)
			r.Delete("/dynos", s.restartDynos)
			r.Delete("/dynos/{dyno}", s.restartDyno)
			r.Get("/dynos/{dyno}", s.getDyno)
			r.Get("/dyno/{dyno}", s.getDyno)
			r.Get("/pipeline-couplings", s.getAppCoupling)
			r.Post("/log-sessions", s.createLogSession)
			r.Post("/hooks", s.createHook)
			r.Get("/hooks", s.listHooks)
			r.Get("/hooks/{hook}", s.getHook)
			r.Patch("/hooks/{hook}", s.updateHook)
			r.Delete("/hooks/{hook}", s.deleteHook)
			r.Get("/hooks/{hook}/results", s.listHookResults)
			r.Get("/hooks/{hook}/results/{result}", s.getHookResult)
		})
		r.Get("/slugs/{slug}", s.getSlug)

		r.Group(func(r chi.Router) {
			r.Use(s.adminOnly)
			r.Post("/tokens", s.createToken)
			r.Get("/tokens", s.listTokens)
			r.Delete("/tokens/{token}", s.deleteToken)
			r.Post("/pipelines", s.createPipeline)
			r.Get("/pipelines", s.listPipelines)
			r.Get("/pipelines/{pipeline}", s.getPipeline)
			r.Delete("/pipelines/{pipeline}", s.deletePipeline)
			r.Get("/pipelines/{pipeline}/pipeline-couplings", s.listPipelineCouplings)
			r.Get("/pipelines/{pipeline}/delivery-metrics", s.getPipelineDeliveryMetrics)
			r.Get("/pipelines/{pipeline}/statuses", s.listPipelineStatuses)
			r.Get("/pipeline-stages", s.listStages)
			r.Post("/pipeline-couplings", s.createCoupling)
			r.Get("/pipeline-couplings", s.listCouplings)
			r.Get("/pipeline-couplings/{coupling}", s.getCoupling)
			r.Patch("/pipeline-couplings/{coupling}", s.updateCoupling)
			r.Delete("/pipeline-couplings/{coupling}", s.deleteCoupling)
			r.Post("/pipeline-promotions", s.createPromotion)
			r.Get("/pipeline-promotions/{promotion}", s.getPromotion)
			r.Get("/pipeline-promotions/{promotion}/promotion-targets", s.listPromotionTargets)
		})
		r.Get("/audits", s.listAudits)
	})
	return r
}

// Routes lists every method and pattern the API serves, for tests that
// check each one is guarded.
func (s *Server) Routes() []string {
	var out []string
	chi.Walk(s.handler.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		out = append(out, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	})
	return out
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "message": "The store does not answer."})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

type ctxKey int

const keyUser ctxKey = iota

// requestID is the id that the X-Request-Id header, the log and the
// message of a 500 give the request.
func requestID(r *http.Request) string { return middleware.GetReqID(r.Context()) }

// The requestID middleware gives each request a random id, under chi's context key (so
// chi's middleware and anything that reads middleware.GetReqID see it)
// and in the X-Request-Id header of the answer. chi's own RequestID does
// not fit: its ids start with the server's hostname, which would reach
// anyone who gets a 500; it takes a client's X-Request-Id as it is,
// which would then be quoted in our messages and logs; and it does not
// answer with the header.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), middleware.RequestIDKey, id)))
	})
}

// recoverer turns a handler's panic into a logged 500 with the request
// id, in the error body every other answer has. (chi's Recoverer answers
// a bare 500 and prints the stack to stderr, outside the server's log.)
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "request_id", requestID(r), "path", r.URL.Path, "panic", v)
				s.writeError(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// principal is who a request acts as: the admin, or a token limited to
// one organization.
type principal struct {
	user
	OrgID string // "" for the admin token
}

// auth accepts "Authorization: Bearer <token>" or a bare token: the admin
// token (compared in constant time) or a scoped token (looked up by its
// SHA-256, so no secret is compared byte by byte).
func (s *Server) auth(next http.Handler) http.Handler {
	want := []byte(s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := bearer(r)
		if h == "" {
			s.writeError(w, r, slipway.Errorf(slipway.EUnauthorized, "This endpoint needs a token: send \"Authorization: Bearer <token>\" (see `slipway login`)."))
			return
		}
		var p principal
		switch {
		case len(want) > 0 && subtle.ConstantTimeCompare([]byte(h), want) == 1:
			p = principal{user: adminUser}
		case len(h) <= 256:
			t, err := s.st.FindToken(r.Context(), h)
			if err != nil {
				if slipway.ErrorCode(err) != slipway.ENotFound {
					s.writeError(w, r, err)
					return
				}
				s.writeError(w, r, slipway.Errorf(slipway.EUnauthorized, "The token is not valid; check SLIPWAY_TOKEN or log in again."))
				return
			}
			p = principal{user: user{ID: t.ID}, OrgID: t.OrgID}
		default:
			s.writeError(w, r, slipway.Errorf(slipway.EUnauthorized, "The token is not valid; check SLIPWAY_TOKEN or log in again."))
			return
		}
		ctx := context.WithValue(r.Context(), keyUser, p)
		ctx = slipway.WithActor(ctx, slipway.Actor{ID: p.ID, Email: p.Email})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// bearer is the token of "Authorization: Bearer <token>" (or of a bare
// "Authorization: <token>"), "" without one.
func bearer(r *http.Request) string {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		h = strings.TrimSpace(h[7:])
	}
	return h
}

// metricsAuth asks for Config.MetricsToken on /metrics when it is set.
func (s *Server) metricsAuth(next http.Handler) http.Handler {
	if s.cfg.MetricsToken == "" {
		return next
	}
	want := []byte(s.cfg.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(bearer(r)), want) != 1 {
			s.writeError(w, r, slipway.Errorf(slipway.EUnauthorized, "/metrics needs the metrics token of this server (--metrics-token): send \"Authorization: Bearer <token>\"."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminOnly refuses scoped tokens: these routes reach across organizations.
func (s *Server) adminOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if currentPrincipal(r).OrgID != "" {
			s.writeError(w, r, slipway.Errorf(slipway.EForbidden, "This endpoint needs the admin token; the token used is limited to one organization."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func currentPrincipal(r *http.Request) principal {
	p, _ := r.Context().Value(keyUser).(principal)
	return p
}

func currentUser(r *http.Request) user { return currentPrincipal(r).user }

// allowed reports whether the request may see things of the organization.
func allowed(r *http.Request, orgID string) bool {
	p := currentPrincipal(r)
	return p.OrgID == "" || p.OrgID == orgID
}

// scoped reports whether the request's token is limited to one organization.
func scoped(r *http.Request) bool { return currentPrincipal(r).OrgID != "" }

// checkScopedURL refuses (EUnprocessable), for a scoped token, a URL whose
// literal host is an address or name its connections may not reach; what
// names the things that would connect ("builds", "webhooks").
func (s *Server) checkScopedURL(r *http.Request, raw, what string) error {
	if !scoped(r) {
		return nil
	}
	var re *egress.RefusedError
	if !errors.As(s.cfg.Egress.CheckURL(raw), &re) {
		return nil
	}
	host := re.Host // a zone or a *.localhost name can be long
	if len(host) > 80 {
		host = strings.ToValidUTF8(host[:80], "") + "…"
	}
	return slipway.Errorf(slipway.EUnprocessable, "url points at %s, which is %s; %s of a token limited to one organization may reach only public addresses.", host, re.Reason, what)
}

// instrument counts each request in slipway_http_requests_total by
// method, route pattern and status code (promhttp records the status).
// The route is read after the handler ran, when chi has matched it.
func (s *Server) instrument(next http.Handler) http.Handler {
	return promhttp.InstrumentHandlerCounter(s.metrics.requests, next,
		promhttp.WithLabelFromRequest("method", func(r *http.Request) string { return methodLabel(r.Method) }),
		promhttp.WithLabelFromCtx("route", routeLabel))
}

// routeLabel is the route pattern chi matched, "unmatched" for none: never
// the path itself, which would name apps on /metrics.
func routeLabel(ctx context.Context) string {
	if rc := chi.RouteContext(ctx); rc != nil {
		if route := rc.RoutePattern(); route != "" {
			return route
		}
	}
	return "unmatched"
}

// methodLabel is the method as a metrics label: one of the methods the API
// knows, else "other", so that a client cannot add series (or text) to
// /metrics by inventing methods. (promhttp's own method label would say
// "get" and "unknown"; dashboards know "GET" and "other".)
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
