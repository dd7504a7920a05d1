package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// followRelease shows a release's rollout until it ends: the rollout log's
// lines as they come and, on a terminal, a bar per process type counting
// the dynos that run the release. A canary or blue-green rollout adds its
// step, weight, phase, what it waits for and its analysis figures: a live
// line below the bars on a terminal, else a line each time they change.
// It then prints a one-line summary and
// returns the release as it ended; the error says why when it did not
// succeed. With --json nothing is printed.
func (r *run) followRelease(c *client.Client, app string, rel *client.Release) (*client.Release, error) {
	started := r.env.Now()
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()

	say := func(string) {}
	var bars *rolloutBars
	var ro *rolloutPrinter
	stopWatch := func() {}
	switch {
	case r.json:
	case r.tty:
		bars = newRolloutBars(ctx, r.out, app, rel, r.color, r.env.Now)
		say = bars.println
		bars.startPolling(ctx, c, app, r.env.Poll)
		stopWatch = watchRollout(ctx, c, app, rel, r.env.Poll, bars.setRollout)
	default:
		// The log lines and the rollout's lines come from two goroutines.
		var mu sync.Mutex
		say = func(s string) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintln(r.out, "  "+s)
		}
		ro = &rolloutPrinter{say: say, app: app, now: r.env.Now}
		stopWatch = watchRollout(ctx, c, app, rel, r.env.Poll, ro.show)
	}
	err := c.FollowReleaseLog(ctx, app, rel.ID, func(line string) { say(r.logLine(line)) })
	if err != nil && r.ctx.Err() == nil {
		// The stream broke (a proxy's timeout, a server restart): the
		// release goes on, so wait for its end by asking.
		say(fmt.Sprintf("(the log stream stopped: %v; waiting for v%d to end)", err, rel.Version))
	}
	// The stream ends when the release does; WaitRelease then answers at
	// once, and otherwise waits for the end by asking.
	var final *client.Release
	if r.ctx.Err() == nil {
		final, err = c.WaitRelease(ctx, app, rel.ID)
	}
	stopWatch()
	if r.ctx.Err() != nil || err != nil {
		if bars != nil {
			bars.stop(nil, nil, nil)
		}
		if r.ctx.Err() != nil {
			return nil, &cliError{msg: fmt.Sprintf("Stopped following v%d; the release goes on on the server.", rel.Version),
				hint: fmt.Sprintf("Follow it again with: slipway releases:wait v%d -a %s", rel.Version, app)}
		}
		return nil, err
	}
	fs, ferr := c.Formations(ctx, app)
	dynos, derr := c.Dynos(ctx, app)
	if ferr != nil || derr != nil {
		fs, dynos = nil, nil
	}
	if bars != nil {
		bars.setRollout(final)
		bars.stop(final, fs, dynos)
	}
	if ro != nil {
		ro.show(final)
	}
	if r.json {
		return final, releaseOutcome(final, app)
	}
	// From creation to end, queue included: what the person waited for
	// (a release followed after the fact was not waited for just now).
	took := final.UpdatedAt.Sub(final.CreatedAt.Time)
	if took <= 0 {
		took = r.env.Now().Sub(started)
	}
	took = took.Round(100 * time.Millisecond)
	if final.Status == slipway.ReleaseSucceeded {
		counts := ""
		if c := dynoCounts(fs, dynos, final.ID); c != "" {
			counts = " (" + c + ")"
		}
		r.printf("%s Released v%d to %s in %s%s.\n", r.paint(green, "✓"), final.Version, app, took, counts)
	} else {
		r.printFailure(final.Failure)
	}
	return final, releaseOutcome(final, app)
}

// releaseOutcome is nil for a succeeded release, else an error that says
// why it did not succeed and where to look.
func releaseOutcome(rel *client.Release, app string) error {
	switch rel.Status {
	case slipway.ReleaseSucceeded:
		return nil
	case slipway.ReleaseFailed:
		reason := rel.Error
		if reason == "" && rel.Rollout != nil {
			reason = rel.Rollout.Reason
		}
		if reason == "" {
			reason = "no reason given"
		}
		return &cliError{msg: fmt.Sprintf("Release v%d of %s failed: %s", rel.Version, app, reason),
			hint: fmt.Sprintf("The app keeps running its current release. See the rollout with: slipway releases:info v%d -a %s", rel.Version, app)}
	}
	return &cliError{msg: fmt.Sprintf("Release v%d of %s ended %s: %s", rel.Version, app, rel.Status, rel.Error),
		hint: fmt.Sprintf("The runtime did not answer in time; check the dynos with: slipway ps -a %s", app)}
}

// logLine shortens a rollout log line's timestamp to the time of day on a
// terminal, and colours failures.
func (r *run) logLine(line string) string {
	if !r.tty {
		return line
	}
	if ts, rest, ok := strings.Cut(line, " "); ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			line = r.paint(dim, t.Local().Format("15:04:05")) + " " + rest
		}
	}
	if strings.Contains(line, "release_failed") || strings.Contains(line, " failed") || strings.Contains(line, " crashed") {
		return r.paint(red, line)
	}
	return line
}

// dynoCounts says how many dynos of each type run the release:
// "web 2/2, worker 1/1".
func dynoCounts(fs []client.Formation, dynos []client.Dyno, releaseID string) string {
	var parts []string
	for _, f := range fs {
		if f.Quantity == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d", f.Type, onRelease(dynos, f.Type, releaseID), f.Quantity))
	}
	return strings.Join(parts, ", ")
}

// onRelease counts the dynos of a type that run the release and are
// available: routed for web, running for the others.
func onRelease(dynos []client.Dyno, typ, releaseID string) int {
	n := 0
	for _, d := range dynos {
		if d.Type == typ && d.Release.ID == releaseID && d.State == "running" && (d.Ready || d.Type != "web") {
			n++
		}
	}
	return n
}

// rolloutBars draws a bar per process type of the dynos on a release, with
// the rollout's log lines printed above them.
type rolloutBars struct {
	p       *mpb.Progress
	app     string
	release *client.Release
	color   bool
	now     func() time.Time
	wg      sync.WaitGroup
	cancel  context.CancelFunc

	mu   sync.Mutex
	bars map[string]*mpb.Bar
	// line is the rollout's live line, added when a rollout first shows.
	line *mpb.Bar

	// roMu guards rollout apart from mu: the line's decorator reads it
	// while mpb renders, and mu is held around calls that wait for mpb.
	roMu    sync.Mutex
	rollout *client.Release
}

func newRolloutBars(ctx context.Context, w io.Writer, app string, rel *client.Release, color bool, now func() time.Time) *rolloutBars {
	cw := sizedConsole{cupwriter.New(w, false)}
	return &rolloutBars{
		p: mpb.NewWithContext(ctx, mpb.WithOutput(w), mpb.WithConsoleWriter(cw), mpb.WithWidth(40),
			mpb.WithRefreshRate(100*time.Millisecond)),
		app: app, release: rel, color: color, now: now, bars: map[string]*mpb.Bar{},
	}
}

// setRollout shows rel's rollout on the live line below the bars, adding
// the line the first time rel has one.
func (b *rolloutBars) setRollout(rel *client.Release) {
	if rel == nil || rel.Rollout == nil {
		return
	}
	b.roMu.Lock()
	b.rollout = rel
	b.roMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.line != nil {
		return
	}
	// Last in priority: the line stays below the bars of the types.
	b.line = b.p.New(0, mpb.NopStyle(), mpb.BarPriority(math.MaxInt),
		mpb.PrependDecorators(decor.Any(func(s decor.Statistics) string {
			b.roMu.Lock()
			rel := b.rollout
			b.roMu.Unlock()
			text := rolloutText(rel, b.app, b.now())
			if s.AvailableWidth > 1 {
				text = truncate(text, s.AvailableWidth-1)
			}
			return paint(b.color, phaseColor(rel.Rollout.Phase), text)
		})))
}

// sizedConsole is the terminal writer mpb uses by default, except that a
// terminal that reports no size (a pseudo-terminal nobody sized, as under
// script(1) or some CI runners) counts as 80x24 rather than hiding every bar.
type sizedConsole struct{ *cupwriter.Writer }

func (c sizedConsole) GetTermSize() (width, height int, err error) {
	width, height, err = c.Writer.GetTermSize()
	if err != nil || width <= 0 || height <= 0 {
		return cmp.Or(max(width, 0), 80), cmp.Or(max(height, 0), 24), nil
	}
	return width, height, nil
}

// println prints a line above the bars.
func (b *rolloutBars) println(s string) { fmt.Fprintln(b.p, s) }

// startPolling reads the formation and the dynos every interval until stop.
func (b *rolloutBars) startPolling(ctx context.Context, c *client.Client, app string, every time.Duration) {
	ctx, b.cancel = context.WithCancel(ctx)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			fs, err1 := c.Formations(ctx, app)
			dynos, err2 := c.Dynos(ctx, app)
			if err1 == nil && err2 == nil {
				b.update(fs, dynos)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// update sets each type's bar to its quantity and the dynos on the
// release, adding bars for types that appeared (the first release of an
// app creates its formation).
func (b *rolloutBars) update(fs []client.Formation, dynos []client.Dyno) {
	b.mu.Lock()
	defer b.mu.Unlock()
	sort.Slice(fs, func(i, j int) bool { return fs[i].Type < fs[j].Type })
	for _, f := range fs {
		bar, ok := b.bars[f.Type]
		if !ok {
			if f.Quantity == 0 {
				continue
			}
			bar = b.addBar(f.Type)
			b.bars[f.Type] = bar
		}
		bar.SetTotal(int64(f.Quantity), false)
		bar.SetCurrent(int64(onRelease(dynos, f.Type, b.release.ID)))
	}
}

func (b *rolloutBars) addBar(typ string) *mpb.Bar {
	version := b.release.Version
	// Total 0 makes the bar complete only when stop says so, not when the
	// count first reaches the quantity: a dyno may still crash after that.
	return b.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(typ, decor.WC{W: 8, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Any(func(s decor.Statistics) string {
			text := fmt.Sprintf("%d/%d on v%d", s.Current, s.Total, version)
			switch {
			case s.Completed:
				return text + " " + paint(b.color, green, "✓")
			case s.Aborted:
				return text + " " + paint(b.color, red, "✗")
			}
			return text
		})),
	)
}

// stop stops polling, settles every bar from the final state (complete
// when the release succeeded and the type is fully on it, else aborted)
// and waits for the last frame to be drawn.
func (b *rolloutBars) stop(final *client.Release, fs []client.Formation, dynos []client.Dyno) {
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
	if fs != nil {
		b.update(fs, dynos)
	}
	b.mu.Lock()
	for _, f := range fs {
		bar, ok := b.bars[f.Type]
		if !ok {
			continue
		}
		if final != nil && final.Status == slipway.ReleaseSucceeded && onRelease(dynos, f.Type, final.ID) >= f.Quantity {
			bar.SetTotal(int64(f.Quantity), true)
		}
	}
	for _, bar := range b.bars {
		bar.Abort(false) // no effect on a completed bar
	}
	if b.line != nil {
		b.line.Abort(false) // stays on the screen as it last read
	}
	b.mu.Unlock()
	b.p.Wait()
}

// watchRollout reads the release every interval and hands it to show,
// until ctx ends, the release ends, or it turns out to roll without a
// canary or blue-green rollout. stop ends the watch and waits for it.
func watchRollout(ctx context.Context, c *client.Client, app string, rel *client.Release, every time.Duration, show func(*client.Release)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			cur, err := c.Release(ctx, app, rel.ID)
			if err == nil {
				show(cur)
				if slipway.ReleaseTerminal(cur.Status) || (cur.Strategy == slipway.StrategyRolling && cur.Rollout == nil) {
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// rolloutFiguresEvery is how often, off a terminal, a rollout's line is
// printed again only because its analysis figures moved.
const rolloutFiguresEvery = 10 * time.Second

// rolloutPrinter prints a rollout's line, off a terminal, each time its step,
// weight, phase or wait changes, and at most every rolloutFiguresEvery
// when only the figures do.
type rolloutPrinter struct {
	say  func(string)
	app  string
	now  func() time.Time
	mu   sync.Mutex
	key  string
	figs string
	at   time.Time
}

func (l *rolloutPrinter) show(rel *client.Release) {
	if rel == nil || rel.Rollout == nil {
		return
	}
	now := l.now()
	key, figs := rolloutKey(rel.Rollout), figuresText(rel.Rollout.Analysis)
	l.mu.Lock()
	if key == l.key && (figs == l.figs || now.Sub(l.at) < rolloutFiguresEvery) {
		l.mu.Unlock()
		return
	}
	l.key, l.figs, l.at = key, figs, now
	l.mu.Unlock()
	l.say("rollout: " + rolloutText(rel, l.app, now))
}

// rolloutKey is what makes a rollout's line worth printing again: all but
// the figures and the countdown.
func rolloutKey(ro *client.Rollout) string {
	until := ""
	if ro.PauseUntil != nil {
		until = ro.PauseUntil.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(ro.Strategy, ro.Step, ro.Steps, ro.Weight, ro.Phase, until, ro.WaitingFor, ro.Reason, ro.PreviewURL)
}

// rolloutText says where a canary or blue-green rollout is, for people:
// "canary step 2/3: 50% on v2, paused, resumes in 1m20s; canary: 120
// requests, 0.83% errors, p99 250ms; stable: …". Steps count from 1 here.
// It is "" for a release without a rollout.
func rolloutText(rel *client.Release, app string, now time.Time) string {
	if rel == nil || rel.Rollout == nil {
		return ""
	}
	ro := rel.Rollout
	head := ro.Strategy
	if ro.Steps > 0 {
		head += fmt.Sprintf(" step %d/%d", min(ro.Step+1, ro.Steps), ro.Steps)
	}
	parts := []string{fmt.Sprintf("%d%% on v%d", ro.Weight, rel.Version), ro.Phase}
	waiting := false
	if ro.PauseUntil != nil && ro.Phase != slipway.PhaseDone && ro.Phase != slipway.PhaseAborted {
		waiting = true
		if d := ro.PauseUntil.Sub(now).Round(time.Second); d > 0 {
			parts = append(parts, "resumes in "+d.String())
		} else {
			parts = append(parts, "resumes now")
		}
	}
	if len(ro.WaitingFor) > 0 {
		waiting = true
		parts = append(parts, "waiting for checks: "+strings.Join(ro.WaitingFor, ", "))
	}
	if ro.Phase == slipway.PhasePaused && !waiting {
		parts = append(parts, fmt.Sprintf("waiting for a promote: slipway releases:promote v%d -a %s", rel.Version, app))
	}
	if ro.PreviewURL != "" && ro.Phase != slipway.PhaseDone && ro.Phase != slipway.PhaseAborted {
		parts = append(parts, "preview at "+ro.PreviewURL)
	}
	if ro.Reason != "" {
		parts = append(parts, ro.Reason)
	}
	text := head + ": " + strings.Join(parts, ", ")
	if figs := figuresText(ro.Analysis); figs != "" {
		text += "; " + figs
	}
	return text
}

// figuresText is the analysis window's figures, the new release's against
// the stable one's: "canary: 120 requests, 0.83% errors, p99 250ms;
// stable: 1080 requests, 0.1% errors, p99 180ms"; "" before any request.
func figuresText(f slipway.Figures) string {
	one := func(name string, t slipway.TrafficSummary) string {
		s := fmt.Sprintf("%s: %s, %s errors", name, plural(int(t.Requests), "request"), percent(t.ErrorRate))
		if t.P99Ms > 0 {
			s += ", p99 " + millis(t.P99Ms)
		}
		return s
	}
	if f.Canary.Requests == 0 && f.Stable.Requests == 0 {
		return ""
	}
	text := one("canary", f.Canary)
	if f.Stable.Requests > 0 {
		text += "; " + one("stable", f.Stable)
	}
	return text
}

// phaseColor is the colour of a rollout's line by its phase.
func phaseColor(phase string) string {
	switch phase {
	case slipway.PhaseDone:
		return green
	case slipway.PhaseAborted:
		return red
	case slipway.PhasePaused, slipway.PhaseAnalyzing:
		return yellow
	}
	return ""
}
