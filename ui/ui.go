// Package ui is Slipway's web dashboard: server-rendered pages under /ui/
// of the API's listener, with a few lines of JavaScript for the live
// rollout (server-sent events). Every page and action asks the API itself,
// in this process, with the signed-in user's token (see inProcess): the
// dashboard sees and may do exactly what that token may over the API, and
// shows the API's own error messages.
package ui

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/wire"
)

//go:embed templates static
var files embed.FS

// Prefix is the path the dashboard is served under.
const Prefix = "/ui/"

// Config holds the dashboard's dependencies and settings.
type Config struct {
	// API is the API's handler; the dashboard sends it every request.
	API http.Handler
	// SessionTTL is how long a sign-in lasts (default 12 h).
	SessionTTL time.Duration
	// MaxSessions bounds the sessions held in memory (default 10,000);
	// past it the oldest is signed out.
	MaxSessions int
	// Poll is how often a live rollout re-reads its release besides each
	// new line of its log (default 1 s).
	Poll   time.Duration
	Logger *slog.Logger
	Now    func() time.Time
}

// UI serves the dashboard.
type UI struct {
	cfg     Config
	handler http.Handler
	pages   map[string]*template.Template
	static  http.Handler

	mu       sync.Mutex
	sessions map[string]*session

	// diffs remembers what each release changed, by release id.
	diffs summaryCache
}

// session is one signed-in browser. The token stays here, on the server:
// the browser holds only the session's random id, in an HttpOnly cookie.
type session struct {
	token   string
	csrf    string
	who     string
	expires time.Time
	flash   string
}

const (
	sessionCookie = "slipway_session"
	loginCookie   = "slipway_login"
)

// New returns the dashboard.
func New(cfg Config) *UI {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 10000
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	u := &UI{cfg: cfg, sessions: map[string]*session{}, pages: map[string]*template.Template{}, diffs: summaryCache{max: summaryCacheSize}}
	for _, p := range []string{"login", "apps", "app", "release", "pipelines", "confirm", "error"} {
		u.pages[p] = template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/parts.html", "templates/"+p+".html"))
	}
	sub, _ := fs.Sub(files, "static")
	u.static = http.StripPrefix(Prefix+"static/", http.FileServer(http.FS(sub)))
	u.handler = u.routes()
	return u
}

// ServeHTTP serves the paths under Prefix.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.handler.ServeHTTP(w, r) }

// Wrap serves the dashboard under Prefix and the API everywhere else; a
// browser's GET / (one that accepts text/html) is sent to the dashboard,
// while API clients keep getting the API's JSON.
func Wrap(api http.Handler, u *UI) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && acceptsHTML(r):
			http.Redirect(w, r, Prefix, http.StatusFound)
		case r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, Prefix):
			u.ServeHTTP(w, r)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// acceptsHTML reports whether the request's Accept names text/html, as
// browsers' do and API clients' do not.
func acceptsHTML(r *http.Request) bool {
	for _, a := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, _ := strings.Cut(strings.TrimSpace(a), ";"); strings.EqualFold(strings.TrimSpace(mt), "text/html") {
			return true
		}
	}
	return false
}

func (u *UI) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(securityHeaders)
	r.Route("/ui", func(r chi.Router) {
		r.Handle("/static/*", u.static)
		r.Get("/login", u.loginPage)
		r.Post("/login", u.login)
		r.Group(func(r chi.Router) {
			r.Use(u.signedIn)
			r.Post("/logout", u.logout)
			r.Get("/", u.appsPage)
			r.Get("/apps/{app}", u.appPage)
			r.Get("/apps/{app}/events", u.events)
			r.Get("/apps/{app}/changes", u.changes)
			r.Get("/apps/{app}/releases/{release}", u.releasePage)
			r.Get("/apps/{app}/confirm/{action}", u.confirmPage)
			r.Post("/apps/{app}/do/{action}", u.doAction)
			r.Get("/pipelines", u.pipelinesPage)
			r.Get("/pipelines/{pipeline}/confirm/promote", u.confirmPromote)
			r.Post("/pipelines/{pipeline}/do/promote", u.promote)
		})
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			u.renderError(w, r, nil, slipway.Errorf(slipway.ENotFound, "The dashboard has no page %s.", slipway.Clip(r.URL.Path)))
		})
	})
	return r
}

// securityHeaders keeps the pages out of frames and caches and lets them
// run only the dashboard's own script and style.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if !strings.HasPrefix(r.URL.Path, Prefix+"static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// client is an API client that acts as the session's token, in process.
func (u *UI) client(s *session) *client.Client {
	c := client.New("http://slipway.in-process", s.token)
	c.HTTP = &http.Client{Transport: inProcess{u.cfg.API}}
	c.UserAgent = "slipway-dashboard"
	return c
}

type ctxKey int

const keySession ctxKey = iota

func currentSession(r *http.Request) *session {
	s, _ := r.Context().Value(keySession).(*session)
	return s
}

// signedIn finds the request's session, sending a browser without one to
// the sign-in page (and a live-rollout stream a 401), and checks the CSRF
// token of every POST.
func (u *UI) signedIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := u.lookup(r)
		if s == nil {
			if r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, "/events") {
				http.Error(w, "Your session has ended; sign in again.", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) != 1 {
				u.renderError(w, r, s, slipway.Errorf(slipway.EForbidden, "The form has expired or did not come from this dashboard; reload the page and try again."))
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keySession, s)))
	})
}

func (u *UI) lookup(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.sessions[c.Value]
	if s == nil {
		return nil
	}
	if u.cfg.Now().After(s.expires) {
		delete(u.sessions, c.Value)
		return nil
	}
	return s
}

func randomID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (u *UI) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// loginPage asks for a token. The form carries a random value that must
// match a cookie set with it, so that another site cannot sign a browser
// in with a token of its own.
func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	if u.lookup(r) != nil {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	u.renderLogin(w, r, http.StatusOK, "")
}

func (u *UI) renderLogin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	nonce := randomID()
	u.setCookie(w, r, loginCookie, nonce, 600)
	u.render(w, status, "login", page{Title: "Sign in", CSRF: nonce, Error: msg})
}

func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	c, err := r.Cookie(loginCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(c.Value)) != 1 {
		u.renderLogin(w, r, http.StatusForbidden, "The sign-in form has expired; try again.")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		u.renderLogin(w, r, http.StatusUnprocessableEntity, "Enter an API token: the one `slipway serve` printed, or one from POST /tokens.")
		return
	}
	s := &session{token: token, csrf: randomID(), expires: u.cfg.Now().Add(u.cfg.SessionTTL)}
	var orgs []wire.Organization
	if err := u.client(s).Do(r.Context(), "GET", "/organizations", nil, &orgs); err != nil {
		u.renderLogin(w, r, statusOf(err), messageOf(err))
		return
	}
	s.who = "admin"
	if len(orgs) == 1 && orgs[0].Role != "admin" {
		s.who = "organization " + orgs[0].Name
	}
	id := randomID()
	u.mu.Lock()
	now := u.cfg.Now()
	for k, old := range u.sessions {
		if now.After(old.expires) {
			delete(u.sessions, k)
		}
	}
	for len(u.sessions) >= u.cfg.MaxSessions {
		oldest := ""
		for k, old := range u.sessions {
			if oldest == "" || old.expires.Before(u.sessions[oldest].expires) {
				oldest = k
			}
		}
		delete(u.sessions, oldest)
	}
	u.sessions[id] = s
	u.mu.Unlock()
	u.setCookie(w, r, loginCookie, "", -1)
	u.setCookie(w, r, sessionCookie, id, int(u.cfg.SessionTTL/time.Second))
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		u.mu.Lock()
		delete(u.sessions, c.Value)
		u.mu.Unlock()
	}
	u.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}

// setFlash keeps a message for the next page the session sees.
func (u *UI) setFlash(s *session, msg string) {
	u.mu.Lock()
	s.flash = msg
	u.mu.Unlock()
}

func (u *UI) takeFlash(s *session) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := s.flash
	s.flash = ""
	return f
}

// page is what every template gets.
type page struct {
	Title  string
	Nav    string
	Who    string
	CSRF   string
	Flash  string
	Error  string
	Signed bool
	Data   any
}

func (u *UI) newPage(r *http.Request, title, nav string, data any) page {
	s := currentSession(r)
	return page{Title: title, Nav: nav, Who: s.who, CSRF: s.csrf, Flash: u.takeFlash(s), Signed: true, Data: data}
}

func (u *UI) render(w http.ResponseWriter, status int, name string, p page) {
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		u.cfg.Logger.Error("dashboard: render", "page", name, "err", err)
		http.Error(w, "The dashboard could not render this page.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderError shows an error page with the API's message and status.
func (u *UI) renderError(w http.ResponseWriter, r *http.Request, s *session, err error) {
	if s == nil {
		s = currentSession(r)
	}
	p := page{Title: "Error", Error: messageOf(err)}
	if s != nil {
		p.Who, p.CSRF, p.Signed = s.who, s.csrf, true
	}
	u.render(w, statusOf(err), "error", p)
}

// statusOf is the HTTP status of an error the API answered (its code's).
func statusOf(err error) int {
	var e *slipway.Error
	if errors.As(err, &e) {
		return wire.StatusCode(e.Code)
	}
	return http.StatusInternalServerError
}

// messageOf is the API's message for an error it answered.
func messageOf(err error) string {
	var e *slipway.Error
	if errors.As(err, &e) {
		return e.Message
	}
	if errors.Is(err, context.Canceled) {
		return "The request was cancelled."
	}
	return "The dashboard could not reach the API: " + err.Error()
}
