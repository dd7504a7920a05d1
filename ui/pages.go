package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/wire"
)

// timelineLength is how many releases an app's page shows, newest first.
// Each row says what its release changed; a page works out at most
// diffsPerPage summaries it has not seen before and leaves the rest to
// the browser, which asks for them after the page has loaded.
const (
	timelineLength = 20
	diffsPerPage   = 5
)

var funcs = template.FuncMap{
	"when": func(t wire.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"whenp": func(t *wire.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"path": url.PathEscape,
	"join": strings.Join,
	"pct": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%.0f%%", 100**v)
	},
	"secs": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return (time.Duration(*v * float64(time.Second))).Round(time.Second).String()
	},
	"f1":  func(v float64) string { return fmt.Sprintf("%.1f", v) },
	"inc": func(i int) int { return i + 1 },
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"rate": func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) },
	"ratio": func(v *float64) float64 {
		if v == nil {
			return 0
		}
		return 100 * *v
	},
}

// duration is how long a release took, for the ones that ended.
func duration(r *wire.Release) string {
	if !slipway.ReleaseTerminal(r.Status) {
		return "running"
	}
	d := r.UpdatedAt.Sub(r.CreatedAt.Time)
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// author names who created a release: the user's email, else the token.
func author(r *wire.Release) string {
	if r.User.Email != "" {
		return r.User.Email
	}
	if r.User.ID == "" {
		return "—"
	}
	if r.User.ID == adminUserID {
		return "admin"
	}
	return "token " + r.User.ID[:min(8, len(r.User.ID))]
}

// adminUserID is who the admin token acts as in release records (the
// API's adminUser).
const adminUserID = "00000000-0000-4000-8000-000000000001"

// releaseRow is one release of an app's timeline.
type releaseRow struct {
	wire.Release
	Duration, Author string
	// Diff is the one-line summary of what the release changed; Cause
	// the one-line failure cause of a failed release.
	Diff, Cause string
	// DiffPending: the summary is left for the browser to ask for.
	DiffPending bool
	// CanRollBack: a succeeded release that is not the current one.
	CanRollBack bool
}

func rowOf(r wire.Release) releaseRow {
	return releaseRow{Release: r, Duration: duration(&r), Author: author(&r), Cause: cause(r.Failure),
		CanRollBack: !r.Current && r.Status == slipway.ReleaseSucceeded}
}

// cause is a failure in one line: "crash of web.1 (exit 3)".
func cause(f *slipway.Failure) string {
	if f == nil {
		return ""
	}
	s := f.Phase
	if f.Dyno != "" {
		s += " of " + f.Dyno
	}
	var how []string
	if f.ExitCode != nil {
		how = append(how, fmt.Sprintf("exit %d", *f.ExitCode))
	}
	if f.Signal != "" {
		how = append(how, f.Signal)
	}
	if f.Health != nil {
		if f.Health.Code != 0 {
			how = append(how, fmt.Sprintf("%s answered %d", f.Health.Check, f.Health.Code))
		} else if f.Health.Error != "" {
			how = append(how, f.Health.Check+": "+f.Health.Error)
		}
	}
	if f.Check != nil {
		how = append(how, f.Check.Context+" "+f.Check.State)
	}
	if f.AbortedBy != "" {
		how = append(how, "by "+f.AbortedBy)
	}
	if len(how) > 0 {
		s += " (" + strings.Join(how, ", ") + ")"
	}
	return s
}

// latestReleases is the newest n releases of an app.
func latestReleases(ctx context.Context, c *client.Client, app string, n int) ([]wire.Release, error) {
	rels, _, err := c.ReleasesPage(ctx, app, fmt.Sprintf("version ..; order=desc, max=%d", n))
	return rels, err
}

type appRow struct {
	App    wire.App
	Latest *wire.Release
	Dynos  string
	Err    string
}

func (u *UI) appsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := u.client(currentSession(r))
	apps, err := c.Apps(ctx)
	if err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	rows := make([]appRow, 0, len(apps))
	for _, a := range apps {
		row := appRow{App: a}
		rels, err := latestReleases(ctx, c, a.Key, 1)
		if err == nil && len(rels) > 0 {
			row.Latest = &rels[0]
		}
		fs, err2 := c.Formations(ctx, a.Key)
		if err == nil {
			err = err2
		}
		if err != nil {
			row.Err = messageOf(err)
		}
		row.Dynos = dynoCounts(fs)
		rows = append(rows, row)
	}
	u.render(w, http.StatusOK, "apps", u.newPage(r, "Apps", "apps", rows))
}

// dynoCounts is "web 2 · worker 1", the quantity of each process type.
func dynoCounts(fs []wire.Formation) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%s %d", f.Type, f.Quantity))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " · ")
}

// rolloutView is the live part of an app's or a release's page.
type rolloutView struct {
	App     string
	Release *wire.Release
	// Terminal: the release has ended; the stream stops following it.
	Terminal bool
	Types    []typeProgress
	Log      []string
	// Actions are the rollout actions (promote, abort, pause, resume) a
	// canary or blue-green release that is rolling out offers.
	Actions []string
	CSRF    string

	// What loadRollout read, for the page that shows it too.
	formations []wire.Formation
	dynos      []wire.Dyno
	log        []string
}

// typeProgress is how far a release's rollout is for one process type:
// its dynos running, and ready, against the formation's quantity.
type typeProgress struct {
	Type                 string
	Running, Ready, Want int
}

// loadRollout reads the release (rel, or the app's newest when "") with
// its dynos and the end of its log.
func loadRollout(ctx context.Context, c *client.Client, app, rel string) (rolloutView, error) {
	if rel == "" {
		rels, err := latestReleases(ctx, c, app, 1)
		if err != nil || len(rels) == 0 {
			return rolloutView{App: app}, err
		}
		return rolloutOf(ctx, c, app, &rels[0])
	}
	r, err := c.Release(ctx, app, rel)
	if err != nil {
		return rolloutView{App: app}, err
	}
	return rolloutOf(ctx, c, app, r)
}

// rolloutOf reads the dynos and the log of a release the caller has.
func rolloutOf(ctx context.Context, c *client.Client, app string, rel *wire.Release) (rolloutView, error) {
	v := rolloutView{App: app, Release: rel}
	v.Terminal = slipway.ReleaseTerminal(v.Release.Status)
	if rel.Strategy != "" && rel.Rollout == nil && !v.Terminal {
		// A list of releases leaves rollouts out; the release itself has it.
		full, err := c.Release(ctx, app, rel.ID)
		if err != nil {
			return v, err
		}
		v.Release, v.Terminal = full, slipway.ReleaseTerminal(full.Status)
	}
	fs, err := c.Formations(ctx, app)
	if err != nil {
		return v, err
	}
	dynos, err := c.Dynos(ctx, app)
	if err != nil {
		return v, err
	}
	for _, f := range fs {
		p := typeProgress{Type: f.Type, Want: f.Quantity}
		if ro := v.Release.Rollout; ro != nil && ro.Strategy == slipway.StrategyCanary && !v.Terminal {
			// The canary's share of the type's dynos at this step.
			_, p.Want = slipway.SplitCounts(f.Quantity, ro.Weight)
		}
		for _, d := range dynos {
			if d.Type == f.Type && d.Release.Version == v.Release.Version {
				p.Running++
				if d.Ready {
					p.Ready++
				}
			}
		}
		v.Types = append(v.Types, p)
	}
	lg, err := c.ReleaseLog(ctx, app, v.Release.ID)
	if err != nil {
		return v, err
	}
	v.formations, v.dynos, v.log = fs, dynos, lg.Lines
	v.Log = lg.Lines[max(0, len(lg.Lines)-12):]
	if v.Release.Rollout != nil && !v.Terminal {
		v.Actions = []string{client.ActionPromote, client.ActionPause, client.ActionResume, client.ActionAbort}
	}
	return v, nil
}

type hookView struct {
	Hook    wire.Hook
	Results []wire.HookResult
	Err     string
}

// timelineView is an app's newest releases.
type timelineView struct {
	App  string
	Rows []releaseRow
	// More: the app has older releases than these.
	More bool
}

// loadTimeline reads the app's newest releases with what each changed,
// working out at most budget summaries the UI has not seen yet (the rest
// are marked pending).
func (u *UI) loadTimeline(ctx context.Context, c *client.Client, app string, budget int) (timelineView, error) {
	v := timelineView{App: app}
	rels, next, err := c.ReleasesPage(ctx, app, fmt.Sprintf("version ..; order=desc, max=%d", timelineLength))
	if err != nil {
		return v, err
	}
	v.More = next != ""
	for _, rel := range rels {
		row := rowOf(rel)
		var ok bool
		if row.Diff, ok = u.diffs.get(rel.ID); !ok {
			if budget <= 0 {
				row.DiffPending = true
			} else {
				budget--
				if row.Diff, err = u.diffSummary(ctx, c, app, rel.ID); err != nil {
					return v, err
				}
			}
		}
		v.Rows = append(v.Rows, row)
	}
	return v, nil
}

// diffSummary is what release id changed against the release that was
// current when it was created, in one line ("" when the API cannot say).
// That never changes, so it is remembered.
func (u *UI) diffSummary(ctx context.Context, c *client.Client, app, id string) (string, error) {
	d, err := c.ReleaseDiff(ctx, app, id, "")
	if err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return "", nil
	}
	u.diffs.put(id, d.Summary)
	return d.Summary, nil
}

// changes answers the browser's question for an app's timeline: what
// each release changed, by version, for the rows the page left pending.
func (u *UI) changes(w http.ResponseWriter, r *http.Request) {
	c := u.client(currentSession(r))
	tv, err := u.loadTimeline(r.Context(), c, chi.URLParam(r, "app"), timelineLength)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(statusOf(err))
		json.NewEncoder(w).Encode(map[string]string{"message": messageOf(err)})
		return
	}
	out := make(map[string]string, len(tv.Rows))
	for _, row := range tv.Rows {
		out[strconv.Itoa(row.Version)] = row.Diff
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

type appView struct {
	App        *wire.App
	Rollout    rolloutView
	Timeline   timelineView
	Formations []wire.Formation
	Dynos      []wire.Dyno
	ConfigKeys []string
	Hooks      []hookView
	Coupling   *wire.PipelineCoupling
	Metrics    *metricsView
	// Events is the URL of the live rollout's stream.
	Events string
}

// metricsView is an app's delivery metrics over 30 days, with what the
// page's small charts draw.
type metricsView struct {
	wire.DeliveryMetrics
	// The deployments bar: succeeded, failed and running as shares of
	// 100 (SVG widths), and where each starts.
	OK, Bad, Run       float64
	BadStart, RunStart float64
	Err                string
}

func metricsOf(m *wire.DeliveryMetrics) *metricsView {
	v := &metricsView{DeliveryMetrics: *m}
	if d := m.Deployments; d.Total > 0 {
		t := float64(d.Total)
		v.OK, v.Bad, v.Run = 100*float64(d.Succeeded)/t, 100*float64(d.Failed)/t, 100*float64(d.Running)/t
		v.BadStart, v.RunStart = v.OK, v.OK+v.Bad
	}
	return v
}

func (u *UI) appPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s := currentSession(r)
	c := u.client(s)
	a, err := c.App(ctx, chi.URLParam(r, "app"))
	if err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	v := appView{App: a}
	fail := func(err error) { u.renderError(w, r, nil, err) }
	if v.Timeline, err = u.loadTimeline(ctx, c, a.Key, diffsPerPage); err != nil {
		fail(err)
		return
	}
	// The newest release is the timeline's first.
	if len(v.Timeline.Rows) > 0 {
		v.Rollout, err = rolloutOf(ctx, c, a.Key, &v.Timeline.Rows[0].Release)
	} else {
		v.Rollout = rolloutView{App: a.Key}
	}
	if err != nil {
		fail(err)
		return
	}
	v.Rollout.CSRF = s.csrf
	// Formations and dynos as the rollout read them (none before the
	// first release).
	v.Formations, v.Dynos = v.Rollout.formations, v.Rollout.dynos
	if v.Rollout.Release == nil {
		if v.Formations, err = c.Formations(ctx, a.Key); err != nil {
			fail(err)
			return
		}
		if v.Dynos, err = c.Dynos(ctx, a.Key); err != nil {
			fail(err)
			return
		}
	}
	sort.Slice(v.Dynos, func(i, j int) bool {
		if v.Dynos[i].Type != v.Dynos[j].Type {
			return v.Dynos[i].Type < v.Dynos[j].Type
		}
		return v.Dynos[i].Name < v.Dynos[j].Name
	})
	// Only the keys are shown: values are secrets and never reach a page.
	vars, err := c.ConfigVars(ctx, a.Key)
	if err != nil {
		fail(err)
		return
	}
	for k := range vars {
		v.ConfigKeys = append(v.ConfigKeys, k)
	}
	clear(vars)
	sort.Strings(v.ConfigKeys)
	hooks, err := c.Hooks(ctx, a.Key)
	if err != nil {
		fail(err)
		return
	}
	for _, h := range hooks {
		hv := hookView{Hook: h}
		hv.Results, err = hookResults(ctx, c, a.Key, h.ID, 5)
		if err != nil {
			hv.Err = messageOf(err)
		}
		v.Hooks = append(v.Hooks, hv)
	}
	if cp, err := c.AppPipelineCoupling(ctx, a.Key); err == nil {
		v.Coupling = cp
	}
	if m, err := c.AppDeliveryMetrics(ctx, a.Key, "30d"); err == nil {
		v.Metrics = metricsOf(m)
	} else {
		v.Metrics = &metricsView{Err: messageOf(err)}
	}
	v.Events = u.eventsURL(a.Key, "", &v.Rollout, &v.Timeline)
	u.render(w, http.StatusOK, "app", u.newPage(r, a.Key, "apps", v))
}

// hookResults is a hook's newest n deliveries.
func hookResults(ctx context.Context, c *client.Client, app, hook string, n int) ([]wire.HookResult, error) {
	resp, err := c.Send(ctx, "GET", "/apps/"+url.PathEscape(app)+"/hooks/"+url.PathEscape(hook)+"/results", nil,
		http.Header{"Range": {fmt.Sprintf("created_at ..; order=desc, max=%d", n)}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []wire.HookResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

type releaseView struct {
	Events   string
	App      *wire.App
	Release  releaseRow
	Diff     *wire.ReleaseDiff
	DiffErr  string
	Rollout  rolloutView
	Log      []string
	Statuses *wire.ReleaseStatuses
}

func (u *UI) releasePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s := currentSession(r)
	c := u.client(s)
	a, err := c.App(ctx, chi.URLParam(r, "app"))
	if err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	rel, err := c.Release(ctx, a.Key, chi.URLParam(r, "release"))
	if err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	v := releaseView{App: a, Release: rowOf(*rel)}
	if v.Rollout, err = rolloutOf(ctx, c, a.Key, rel); err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	v.Rollout.CSRF = s.csrf
	v.Log = v.Rollout.log
	if v.Diff, err = c.ReleaseDiff(ctx, a.Key, rel.ID, r.URL.Query().Get("against")); err != nil {
		v.Diff, v.DiffErr = nil, messageOf(err)
	}
	if v.Statuses, err = c.ReleaseStatuses(ctx, a.Key, rel.ID); err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	v.Events = u.eventsURL(a.Key, rel.ID, &v.Rollout, nil)
	u.render(w, http.StatusOK, "release", u.newPage(r, fmt.Sprintf("%s v%d", a.Key, rel.Version), "apps", v))
}

// stageView is one stage of a pipeline and the apps coupled to it.
type stageView struct {
	Name string
	Apps []stageApp
}

// stageApp is an app of a pipeline stage with the release on it and, when
// a next stage has apps, whether its release may be promoted there.
type stageApp struct {
	Coupling wire.PipelineCoupling
	Release  *wire.Release
	Checks   []checkState
	// Targets are the apps of the next stage; Refused says why the API
	// would refuse the promotion now ("" when it would not).
	Targets []string
	Refused string
}

type checkState struct{ Context, State string }

type pipelineView struct {
	Pipeline wire.Pipeline
	Stages   []stageView
}

func (u *UI) pipelinesPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := u.client(currentSession(r))
	ps, err := c.Pipelines(ctx)
	if err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	stages, err := c.PipelineStages(ctx)
	if err != nil {
		u.renderError(w, r, nil, err)
		return
	}
	var out []pipelineView
	for _, p := range ps {
		pv, err := loadPipeline(ctx, c, p, stages)
		if err != nil {
			u.renderError(w, r, nil, err)
			return
		}
		out = append(out, pv)
	}
	u.render(w, http.StatusOK, "pipelines", u.newPage(r, "Pipelines", "pipelines", out))
}

// currentRelease is the app's current release: the newest that is, among
// its last few, else its newest; nil before any.
func currentRelease(ctx context.Context, c *client.Client, app string) (*wire.Release, error) {
	rels, err := latestReleases(ctx, c, app, 10)
	if err != nil || len(rels) == 0 {
		return nil, err
	}
	for i := range rels {
		if rels[i].Current {
			return &rels[i], nil
		}
	}
	return &rels[0], nil
}

func loadPipeline(ctx context.Context, c *client.Client, p wire.Pipeline, stages []string) (pipelineView, error) {
	pv := pipelineView{Pipeline: p}
	cs, err := c.PipelineCouplingsOf(ctx, p.ID)
	if err != nil {
		return pv, err
	}
	byStage := map[string][]stageApp{}
	for _, cp := range cs {
		sa := stageApp{Coupling: cp}
		if sa.Release, err = currentRelease(ctx, c, cp.App.ID); err != nil {
			return pv, err
		}
		if sa.Release != nil && len(cp.RequiredStatusChecks.Contexts) > 0 {
			st, err := c.ReleaseStatuses(ctx, cp.App.ID, sa.Release.ID)
			if err != nil {
				return pv, err
			}
			var waiting []string
			for _, want := range cp.RequiredStatusChecks.Contexts {
				state := "missing"
				for _, got := range st.Statuses {
					if got.Context == want {
						state = got.State
					}
				}
				sa.Checks = append(sa.Checks, checkState{Context: want, State: state})
				if state != "success" {
					waiting = append(waiting, want+" is "+state)
				}
			}
			if len(waiting) > 0 {
				sa.Refused = fmt.Sprintf("Release v%d cannot be promoted until its required status checks succeed: %s.", sa.Release.Version, strings.Join(waiting, ", "))
			}
		}
		if sa.Release == nil {
			sa.Refused = "The app has no release to promote."
		}
		byStage[cp.Stage] = append(byStage[cp.Stage], sa)
	}
	for i, st := range stages {
		sv := stageView{Name: st, Apps: byStage[st]}
		var next []string
		if i+1 < len(stages) {
			for _, t := range byStage[stages[i+1]] {
				next = append(next, t.Coupling.App.Name)
			}
		}
		for j := range sv.Apps {
			sv.Apps[j].Targets = next
		}
		pv.Stages = append(pv.Stages, sv)
	}
	return pv, nil
}

// fragment renders one of the live parts of a page ("rollout",
// "timeline").
func (u *UI) fragment(name string, data any) (string, error) {
	var b bytes.Buffer
	err := u.pages["app"].ExecuteTemplate(&b, name, data)
	return b.String(), err
}

// digest names a fragment's content in a few bytes.
func digest(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return strconv.FormatUint(h.Sum64(), 36)
}

// eventsURL is the live stream of a page, naming the digests of the
// fragments the page holds, so that the stream sends each only once it
// differs (replacing the same content would move a reader's focus and
// re-announce it).
func (u *UI) eventsURL(app, release string, rv *rolloutView, tv *timelineView) string {
	q := url.Values{}
	if release != "" {
		q.Set("release", release)
	}
	if html, err := u.fragment("rollout", rv); err == nil {
		q.Set("rollout", digest(html))
	}
	if tv != nil {
		if html, err := u.fragment("timeline", tv); err == nil {
			q.Set("timeline", digest(html))
		}
	}
	return appURL(app) + "/events?" + q.Encode()
}
