package ui

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/wire"
)

// confirmView is the confirmation step of an action: the question, and a
// form that posts the action with its fields and the CSRF token.
type confirmView struct {
	Question string
	Detail   string
	Button   string
	Post     string
	Back     string
	Fields   []field
}

type field struct{ Name, Value string }

// action is one thing the dashboard does through the API.
type action struct {
	// confirm describes the action for the confirmation page.
	confirm func(app string, f url.Values) (confirmView, error)
	// do carries it out; it returns the message shown after it and the
	// page to go back to.
	do func(ctx context.Context, c *client.Client, app string, f url.Values) (msg, back string, err error)
}

func appURL(app string) string { return Prefix + "apps/" + url.PathEscape(app) }

func releaseURL(app, rel string) string {
	return appURL(app) + "/releases/" + url.PathEscape(rel)
}

// actions are the app actions, by name; each calls the API route a
// client would.
var actions = map[string]action{
	"rollback": {
		confirm: func(app string, f url.Values) (confirmView, error) {
			rel := f.Get("release")
			if rel == "" {
				return confirmView{}, slipway.Errorf(slipway.EInvalid, "Choose the release to roll back to.")
			}
			return confirmView{Question: fmt.Sprintf("Roll back %s to %s?", app, rel),
				Detail: "A new release is created with that release's build and config vars, and rolled out as any release is.",
				Button: "Roll back to " + rel, Fields: []field{{"release", rel}}}, nil
		},
		do: func(ctx context.Context, c *client.Client, app string, f url.Values) (string, string, error) {
			rel, err := c.CreateRelease(ctx, app, client.NewRelease{Release: f.Get("release")})
			if err != nil {
				return "", "", err
			}
			return fmt.Sprintf("Rolling back to %s: release v%d is %s.", f.Get("release"), rel.Version, rel.Status), appURL(app), nil
		},
	},
	"restart": {
		confirm: func(app string, f url.Values) (confirmView, error) {
			what := "every dyno of " + app
			if d := f.Get("dyno"); d != "" {
				what = d + " of " + app
			}
			return confirmView{Question: "Restart " + what + "?",
				Detail: "Dynos are replaced one at a time, each after its replacement is healthy.",
				Button: "Restart", Fields: []field{{"dyno", f.Get("dyno")}}}, nil
		},
		do: func(ctx context.Context, c *client.Client, app string, f url.Values) (string, string, error) {
			if err := c.RestartDynos(ctx, app, f.Get("dyno")); err != nil {
				return "", "", err
			}
			return "Restart queued.", appURL(app), nil
		},
	},
	"scale": {
		confirm: func(app string, f url.Values) (confirmView, error) {
			q, err := quantity(f)
			if err != nil {
				return confirmView{}, err
			}
			return confirmView{Question: fmt.Sprintf("Scale %s of %s to %d?", f.Get("type"), app, q),
				Button: "Scale", Fields: []field{{"type", f.Get("type")}, {"quantity", strconv.Itoa(q)}}}, nil
		},
		do: func(ctx context.Context, c *client.Client, app string, f url.Values) (string, string, error) {
			q, err := quantity(f)
			if err != nil {
				return "", "", err
			}
			var out wire.Formation
			if err := c.Do(ctx, "PATCH", "/apps/"+url.PathEscape(app)+"/formation/"+url.PathEscape(f.Get("type")), wire.FormationChange{Quantity: &q}, &out); err != nil {
				return "", "", err
			}
			return fmt.Sprintf("%s is scaled to %d.", out.Type, out.Quantity), appURL(app), nil
		},
	},
	client.ActionPromote: rolloutAction(client.ActionPromote, "Promote", "Move the rollout to its next step."),
	client.ActionPause:   rolloutAction(client.ActionPause, "Pause", "Hold the rollout at its step until it is resumed or promoted."),
	client.ActionResume:  rolloutAction(client.ActionResume, "Resume", "Let the paused rollout go on with its steps."),
	client.ActionAbort:   rolloutAction(client.ActionAbort, "Abort", "Send all traffic back to the stable release at once; the release ends failed."),
}

// rolloutAction is promote, pause, resume or abort of a rolling-out release.
func rolloutAction(name, verb, detail string) action {
	return action{
		confirm: func(app string, f url.Values) (confirmView, error) {
			rel := f.Get("release")
			if rel == "" {
				return confirmView{}, slipway.Errorf(slipway.EInvalid, "Choose the release to %s.", name)
			}
			return confirmView{Question: fmt.Sprintf("%s the rollout of %s %s?", verb, app, rel), Detail: detail,
				Button: verb, Fields: []field{{"release", rel}}}, nil
		},
		do: func(ctx context.Context, c *client.Client, app string, f url.Values) (string, string, error) {
			var body any
			if name == client.ActionPromote && f.Get("full") == "true" {
				body = wire.ReleaseAction{Full: true}
			}
			var rel wire.Release
			err := c.Do(ctx, "POST", "/apps/"+url.PathEscape(app)+"/releases/"+url.PathEscape(f.Get("release"))+"/actions/"+name, body, &rel)
			if err != nil {
				return "", "", err
			}
			return fmt.Sprintf("%s: release v%d is %s.", verb, rel.Version, rel.Status), releaseURL(app, f.Get("release")), nil
		},
	}
}

func quantity(f url.Values) (int, error) {
	q, err := strconv.Atoi(strings.TrimSpace(f.Get("quantity")))
	if err != nil {
		return 0, slipway.Errorf(slipway.EUnprocessable, "quantity must be a whole number, not %q.", slipway.Clip(f.Get("quantity")))
	}
	if f.Get("type") == "" {
		return 0, slipway.Errorf(slipway.EUnprocessable, "Choose the process type to scale.")
	}
	return q, nil
}

func (u *UI) confirmPage(w http.ResponseWriter, r *http.Request) {
	app, name := chi.URLParam(r, "app"), chi.URLParam(r, "action")
	a, ok := actions[name]
	if !ok {
		u.renderError(w, r, nil, slipway.Errorf(slipway.ENotFound, "The dashboard has no action %q.", slipway.Clip(name)))
		return
	}
	v, err := a.confirm(app, r.URL.Query())
	if err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	u.renderConfirm(w, r, http.StatusOK, app, name, v, "")
}

func (u *UI) renderConfirm(w http.ResponseWriter, r *http.Request, status int, app, name string, v confirmView, msg string) {
	v.Post = appURL(app) + "/do/" + url.PathEscape(name)
	v.Back = appURL(app)
	p := u.newPage(r, v.Question, "apps", v)
	p.Error = msg
	u.render(w, status, "confirm", p)
}

// doAction carries out a confirmed action; on a refusal it shows the
// confirmation again with the API's message.
func (u *UI) doAction(w http.ResponseWriter, r *http.Request) {
	app, name := chi.URLParam(r, "app"), chi.URLParam(r, "action")
	a, ok := actions[name]
	if !ok {
		u.renderError(w, r, nil, slipway.Errorf(slipway.ENotFound, "The dashboard has no action %q.", slipway.Clip(name)))
		return
	}
	s := currentSession(r)
	msg, back, err := a.do(r.Context(), u.client(s), app, r.PostForm)
	if err != nil {
		v, cerr := a.confirm(app, r.PostForm)
		if cerr != nil {
			u.renderError(w, r, nil, cerr)
			return
		}
		u.renderConfirm(w, r, statusOf(err), app, name, v, messageOf(err))
		return
	}
	u.setFlash(s, msg)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// promotionConfirm describes promoting an app's release in a pipeline.
func promotionConfirm(ctx context.Context, c *client.Client, pipeline, app string) (confirmView, *stageApp, error) {
	p, err := c.Pipeline(ctx, pipeline)
	if err != nil {
		return confirmView{}, nil, err
	}
	stages, err := c.PipelineStages(ctx)
	if err != nil {
		return confirmView{}, nil, err
	}
	pv, err := loadPipeline(ctx, c, *p, stages)
	if err != nil {
		return confirmView{}, nil, err
	}
	for _, st := range pv.Stages {
		for i := range st.Apps {
			sa := &st.Apps[i]
			if sa.Coupling.App.ID != app && sa.Coupling.App.Name != app {
				continue
			}
			q := fmt.Sprintf("Promote %s's release to %s?", sa.Coupling.App.Name, strings.Join(sa.Targets, ", "))
			if sa.Release != nil {
				q = fmt.Sprintf("Promote v%d of %s to %s?", sa.Release.Version, sa.Coupling.App.Name, strings.Join(sa.Targets, ", "))
			}
			v := confirmView{Question: q, Button: "Promote", Fields: []field{{"app", sa.Coupling.App.ID}},
				Detail: "Each app of the next stage gets a release of this build with its own config vars.",
				Post:   Prefix + "pipelines/" + url.PathEscape(p.ID) + "/do/promote", Back: Prefix + "pipelines"}
			return v, sa, nil
		}
	}
	return confirmView{}, nil, slipway.Errorf(slipway.ENotFound, "App %s is not coupled to pipeline %s.", slipway.Clip(app), p.Name)
}

func (u *UI) confirmPromote(w http.ResponseWriter, r *http.Request) {
	c := u.client(currentSession(r))
	v, sa, err := promotionConfirm(r.Context(), c, chi.URLParam(r, "pipeline"), r.URL.Query().Get("app"))
	if err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	p := u.newPage(r, v.Question, "pipelines", v)
	p.Error = sa.Refused
	u.render(w, http.StatusOK, "confirm", p)
}

func (u *UI) promote(w http.ResponseWriter, r *http.Request) {
	s := currentSession(r)
	c := u.client(s)
	pipeline, app := chi.URLParam(r, "pipeline"), r.PostForm.Get("app")
	pr, err := c.CreatePipelinePromotion(r.Context(), client.NewPipelinePromotion{
		Pipeline: wire.IDRef{ID: pipeline}, Source: wire.AppRelease{App: wire.SourceApp{ID: app}}})
	if err != nil {
		v, _, cerr := promotionConfirm(r.Context(), c, pipeline, app)
		if cerr != nil {
			u.renderError(w, r, nil, err)
			return
		}
		p := u.newPage(r, v.Question, "pipelines", v)
		p.Error = messageOf(err)
		u.render(w, statusOf(err), "confirm", p)
		return
	}
	var parts []string
	for _, t := range pr.Targets {
		part := t.App.Name + ": " + t.Status
		if t.ErrorMessage != "" {
			part += " (" + t.ErrorMessage + ")"
		}
		parts = append(parts, part)
	}
	u.setFlash(s, fmt.Sprintf("Promoted %s (promotion %s): %s.", pr.Source.App.Name, pr.Status, strings.Join(parts, "; ")))
	http.Redirect(w, r, Prefix+"pipelines", http.StatusSeeOther)
}

// events streams an app's live rollout as server-sent events: a "rollout"
// event carries the section's new HTML each time it changes. It follows
// the release log of the release that is rolling out (each new line is a
// change) and re-reads the release every Config.Poll besides, for what
// changes without a line (a canary's pause running out, a new release).
// With ?release= it follows that release and ends with an "end" event
// when the release has ended; without, it follows the app's newest
// release, whichever that is, until the browser leaves.
func (u *UI) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s := currentSession(r)
	c := u.client(s)
	app, fixed := chi.URLParam(r, "app"), r.URL.Query().Get("release")
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The browser sees the stream open now, though the page may be up to
	// date and nothing be sent until the rollout changes.
	w.Write([]byte(": live\n\n"))
	if flusher != nil {
		flusher.Flush()
	}
	send := func(event, data string) bool {
		var b bytes.Buffer
		b.WriteString("event: " + event + "\n")
		for _, line := range strings.Split(data, "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
		if _, err := w.Write(b.Bytes()); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	changed := make(chan struct{}, 1)
	poke := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	followed := ""
	stopFollow := func() {}
	defer func() { stopFollow() }()
	tick := u.cfg.Poll
	// The digests of what the browser holds: the page's, then each sent.
	last, lastTimeline := r.URL.Query().Get("rollout"), r.URL.Query().Get("timeline")
	for {
		v, err := loadRollout(ctx, c, app, fixed)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			send("failure", messageOf(err))
			return
		}
		v.CSRF = s.csrf
		html, err := u.fragment("rollout", &v)
		if err != nil {
			u.cfg.Logger.Error("dashboard: render rollout", "err", err)
			return
		}
		if d := digest(html); d != last {
			if !send("rollout", html) {
				return
			}
			last = d
		}
		if fixed == "" {
			// An app's page: its timeline changes with the rollout.
			tv, err := u.loadTimeline(ctx, c, app, diffsPerPage)
			if err != nil {
				return
			}
			html, err := u.fragment("timeline", &tv)
			if err != nil {
				u.cfg.Logger.Error("dashboard: render timeline", "err", err)
				return
			}
			if d := digest(html); d != lastTimeline {
				if !send("timeline", html) {
					return
				}
				lastTimeline = d
			}
		}
		if v.Release != nil && !v.Terminal && v.Release.ID != followed {
			stopFollow()
			fctx, cancel := context.WithCancel(ctx)
			stopFollow, followed = cancel, v.Release.ID
			go func(id string) {
				c.FollowReleaseLog(fctx, app, id, func(string) { poke() })
				poke()
			}(v.Release.ID)
		}
		if fixed != "" && v.Terminal {
			send("end", v.Release.Status)
			return
		}
		t := time.NewTimer(tick)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}
