package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

func (cl *cli) releasesStrategyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases:strategy",
		Short: "Show or set how an app's releases roll out: rolling, canary or blue-green",
		Long: `Show how an app's releases roll out, or set it with one of:

  --rolling      replace the dynos one by one (the default)
  --canary W,…   send a share of the traffic to the new release in steps of
                 weights (percent, the last usually 100), pausing after each
                 step but the last for --pause (a duration, or until-checks);
                 with --checks and no --pause each pause lasts until every
                 check context is success. --analysis-* bounds abort the
                 release when the router measures worse on the new release.
  --blue-green   start the new release beside the old on its full formation,
                 then switch all traffic at once: on releases:promote, or by
                 itself with --auto-promote; --preview serves it on a
                 preview host first; --scale-down-delay keeps the old dynos
                 running after the switch for an instant rollback.
  --set JSON     the strategy as the API takes it (@FILE reads a file, - stdin),
                 which can also set a strategy per process type.

Setting a strategy replaces the whole of it. A failed check or an analysis
breach aborts the release; see releases:promote, releases:abort,
releases:pause and releases:resume to steer one by hand.`,
		Example: `  slipway releases:strategy -a hello
  slipway releases:strategy -a hello --canary 10,50,100 --pause 2m
  slipway releases:strategy -a hello --canary 10,100 --checks ci/smoke --analysis-error-rate 0.01 --analysis-p99 800ms
  slipway releases:strategy -a hello --blue-green --preview --scale-down-delay 5m
  slipway releases:strategy -a hello --set '{"type":"canary","steps":[{"weight":20,"pause":"5m"},{"weight":100}]}'
  slipway releases:strategy -a hello --rolling`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			app, err := r.app()
			if err != nil {
				return err
			}
			s, err := strategyFromFlags(r.cmd.Flags(), r.env.Stdin)
			if err != nil {
				return err
			}
			c, err := r.api()
			if err != nil {
				return err
			}
			if s == nil {
				got, err := c.ReleaseStrategy(r.ctx, app)
				if err != nil {
					return err
				}
				if r.json {
					return r.printJSON(got)
				}
				r.printStrategy(app, *got)
				if !got.Gated() {
					r.printf("\n%s\n", r.paint(dim, "Roll out in steps with: slipway releases:strategy --canary 10,50,100 --pause 2m -a "+app))
				}
				return nil
			}
			// The server validates too; checking first names the field
			// before anything is sent.
			if err := s.Validate(); err != nil {
				return &cliError{msg: "The strategy is not valid: " + slipway.ErrorMessage(err),
					hint: "Nothing was changed. See the options with: slipway releases:strategy --help"}
			}
			got, err := c.SetReleaseStrategy(r.ctx, app, *s)
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(got)
			}
			r.printf("Set the release strategy of %s to %s; the next release follows it.\n\n", r.paint(bold, app), got.Type)
			r.printStrategy(app, *got)
			return nil
		}),
	}
	f := cmd.Flags()
	f.String("set", "", "the strategy as JSON (@FILE to read a file, - for stdin)")
	f.Bool("rolling", false, "roll releases out dyno by dyno (the default)")
	f.String("canary", "", "canary steps: traffic weights in percent, such as 10,50,100")
	f.String("pause", "", "with --canary: the pause after each step but the last, a duration such as 2m or until-checks")
	f.StringSlice("checks", nil, "with --canary or --blue-green: status check contexts that must be success, comma-separated")
	f.String("analysis-error-rate", "", "with --canary: abort above this error rate on the new release, such as 0.01 or 1%")
	f.Duration("analysis-p99", 0, "with --canary: abort above this p99 latency on the new release, such as 800ms")
	f.Int64("analysis-min-requests", 0, "with --canary: judge only once the new release has had this many requests")
	f.Duration("analysis-interval", 0, "with --canary: how often the figures are judged (default 15s)")
	f.Bool("blue-green", false, "start the new release beside the old, then switch the traffic at once")
	f.Bool("preview", false, "with --blue-green: serve the new release on a preview host before the switch")
	f.Bool("auto-promote", false, "with --blue-green: switch without waiting for releases:promote")
	f.Duration("scale-down-delay", 0, "with --blue-green: keep the old release's dynos this long after the switch")
	return withJSON(withApp(cmd))
}

// strategyFromFlags builds the strategy the flags ask for; nil when they
// ask for none, to show the current one. Flags that do not fit together
// are a usage error.
func strategyFromFlags(f *pflag.FlagSet, stdin io.Reader) (*slipway.Strategy, error) {
	var modes []string
	for _, m := range []string{"set", "rolling", "canary", "blue-green"} {
		if f.Changed(m) {
			modes = append(modes, "--"+m)
		}
	}
	if len(modes) > 1 {
		return nil, usagef("%s do not go together: choose one", strings.Join(modes, " and "))
	}
	mode := ""
	if len(modes) == 1 {
		mode = modes[0]
	}
	belongs := map[string][]string{
		"pause": {"--canary"}, "analysis-error-rate": {"--canary"}, "analysis-p99": {"--canary"},
		"analysis-min-requests": {"--canary"}, "analysis-interval": {"--canary"},
		"checks":  {"--canary", "--blue-green"},
		"preview": {"--blue-green"}, "auto-promote": {"--blue-green"}, "scale-down-delay": {"--blue-green"},
	}
	names := make([]string, 0, len(belongs))
	for n := range belongs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if f.Changed(n) && !contains(belongs[n], mode) {
			return nil, usagef("--%s goes with %s", n, strings.Join(belongs[n], " or "))
		}
	}
	checks, _ := f.GetStringSlice("checks")
	switch mode {
	case "":
		return nil, nil
	case "--rolling":
		return &slipway.Strategy{Type: slipway.StrategyRolling}, nil
	case "--set":
		v, _ := f.GetString("set")
		return strategyJSON(v, stdin)
	case "--blue-green":
		s := &slipway.Strategy{Type: slipway.StrategyBlueGreen, RequiredChecks: checks}
		s.Preview, _ = f.GetBool("preview")
		s.AutoPromote, _ = f.GetBool("auto-promote")
		d, _ := f.GetDuration("scale-down-delay")
		s.ScaleDownDelay = slipway.Duration(d)
		return s, nil
	}
	s := &slipway.Strategy{Type: slipway.StrategyCanary, RequiredChecks: checks}
	weights, _ := f.GetString("canary")
	for _, w := range strings.Split(weights, ",") {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(w), "%"))
		if err != nil {
			return nil, usagef("--canary takes traffic weights in percent such as 10,50,100, not %q", weights)
		}
		s.Steps = append(s.Steps, slipway.CanaryStep{Weight: n})
	}
	pause, _ := f.GetString("pause")
	if pause == "" && len(checks) > 0 {
		pause = slipway.PauseUntilChecks
	}
	if pause != "" && pause != slipway.PauseUntilChecks {
		if _, err := time.ParseDuration(pause); err != nil {
			return nil, usagef("--pause takes a duration such as 2m, or %s, not %q", slipway.PauseUntilChecks, pause)
		}
	}
	for i := range s.Steps[:len(s.Steps)-1] {
		s.Steps[i].Pause = pause
	}
	if a, err := analysisFromFlags(f); err != nil || a != nil {
		s.Analysis = a
		return s, err
	}
	return s, nil
}

// analysisFromFlags is the canary's analysis bounds, nil when no
// --analysis-* flag is given.
func analysisFromFlags(f *pflag.FlagSet) (*slipway.Analysis, error) {
	if !f.Changed("analysis-error-rate") && !f.Changed("analysis-p99") && !f.Changed("analysis-min-requests") && !f.Changed("analysis-interval") {
		return nil, nil
	}
	a := &slipway.Analysis{}
	if v, _ := f.GetString("analysis-error-rate"); v != "" {
		pct := strings.HasSuffix(v, "%")
		rate, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil {
			return nil, usagef("--analysis-error-rate takes a rate from 0 to 1 such as 0.01, or a percentage such as 1%%, not %q", v)
		}
		if pct {
			rate /= 100
		}
		a.MaxErrorRate = rate
	}
	p99, _ := f.GetDuration("analysis-p99")
	a.MaxP99Ms = float64(p99) / float64(time.Millisecond)
	a.MinRequests, _ = f.GetInt64("analysis-min-requests")
	iv, _ := f.GetDuration("analysis-interval")
	a.Interval = slipway.Duration(iv)
	return a, nil
}

// strategyJSON reads --set: JSON, @FILE or - for stdin. Unknown fields are
// refused, so that a misspelt one is not silently dropped.
func strategyJSON(v string, stdin io.Reader) (*slipway.Strategy, error) {
	var b []byte
	var err error
	switch {
	case v == "-":
		b, err = io.ReadAll(stdin)
	case strings.HasPrefix(v, "@"):
		b, err = os.ReadFile(v[1:])
	default:
		b = []byte(v)
	}
	if err != nil {
		return nil, &cliError{msg: "Cannot read the strategy for --set: " + err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s slipway.Strategy
	if err := dec.Decode(&s); err != nil {
		return nil, usagef("--set takes the strategy as JSON such as {\"type\":\"canary\",\"steps\":[{\"weight\":10,\"pause\":\"2m\"},{\"weight\":100}]}: %v", err)
	}
	return &s, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// printStrategy shows a strategy as sentences rather than JSON.
func (r *run) printStrategy(app string, s slipway.Strategy) {
	r.heading(app + " release strategy")
	r.fields(strategyFields(s))
	if len(s.Types) > 0 {
		types := make([]string, 0, len(s.Types))
		for t := range s.Types {
			types = append(types, t)
		}
		sort.Strings(types)
		for _, t := range types {
			r.printf("\n")
			r.heading("process type " + t)
			r.fields(strategyFields(s.Types[t]))
		}
	}
}

// strategyFields describes a strategy (without its per-type ones) as
// field and value pairs.
func strategyFields(s slipway.Strategy) [][2]string {
	typ := s.Type
	if typ == "" {
		typ = slipway.StrategyRolling
	}
	checks := strings.Join(s.RequiredChecks, ", ")
	switch typ {
	case slipway.StrategyRolling:
		return [][2]string{{"Type", "rolling: each release replaces the dynos one by one"}, {"Checks", checks}}
	case slipway.StrategyBlueGreen:
		preview := "no"
		if s.Preview {
			preview = "yes: the new release answers on a preview host before the switch"
		}
		sw := "on slipway releases:promote"
		if s.AutoPromote {
			sw = "by itself once the new release is healthy"
			if len(s.RequiredChecks) > 0 {
				sw += " and its checks are success"
			}
		}
		down := "at the switch"
		if d := time.Duration(s.ScaleDownDelay); d > 0 {
			down = shortDuration(d) + " after the switch (a rollback before then is instant)"
		}
		return [][2]string{{"Type", "blue-green: the new release starts beside the old, then all traffic switches at once"},
			{"Preview", preview}, {"Switch", sw}, {"Checks", checks}, {"Old dynos stop", down}, {"Rollbacks", rollbacksText(s)}}
	case slipway.StrategyCanary:
		steps := make([]string, 0, len(s.Steps))
		for _, st := range s.Steps {
			text := fmt.Sprintf("%d%%", st.Weight)
			switch st.Pause {
			case "":
			case slipway.PauseUntilChecks:
				text += " until checks pass"
			default:
				text += " for " + st.Pause
			}
			steps = append(steps, text)
		}
		return [][2]string{{"Type", "canary: a share of the traffic on the new release, in steps"},
			{"Steps", strings.Join(steps, " → ")}, {"Checks", checks}, {"Analysis", analysisText(s.Analysis)}, {"Rollbacks", rollbacksText(s)}}
	}
	return [][2]string{{"Type", typ}}
}

func analysisText(a *slipway.Analysis) string {
	if a == nil {
		return "none"
	}
	var bounds []string
	if a.MaxErrorRate > 0 {
		bounds = append(bounds, "errors above "+percent(a.MaxErrorRate))
	}
	if a.MaxP99Ms > 0 {
		bounds = append(bounds, "a p99 above "+millis(a.MaxP99Ms))
	}
	text := "abort on " + strings.Join(bounds, " or ")
	if iv := time.Duration(a.Interval); iv > 0 {
		text += ", judged every " + shortDuration(iv)
	}
	if a.MinRequests > 0 {
		text += fmt.Sprintf(" once the new release has %d requests", a.MinRequests)
	}
	return text
}

func rollbacksText(s slipway.Strategy) string {
	if s.Rollbacks == "strategy" {
		return "follow this strategy"
	}
	return "rolling, the fast way back"
}

// percent writes a rate of 0–1 as a percentage with at most two decimals:
// 0.0083 is "0.83%".
func percent(rate float64) string {
	s := strconv.FormatFloat(rate*100, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s + "%"
}

// shortDuration is d without the zero units Go writes: "5m", not "5m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// millis writes milliseconds as "250ms" or "2.5ms".
func millis(ms float64) string { return strconv.FormatFloat(ms, 'f', -1, 64) + "ms" }

// releaseActionCmd is one of releases:promote, :abort, :pause and :resume.
func (cl *cli) releaseActionCmd(action, short, long, example string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "releases:" + action + " [vN|ID]",
		Short:   short,
		Long:    long,
		Example: example,
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			var rel *client.Release
			if len(args) == 0 {
				rel, err = findRollingOut(r, c, app)
			} else {
				rel, err = resolveRelease(r, c, app, args[0])
			}
			if err != nil {
				return err
			}
			var after *client.Release
			switch action {
			case client.ActionPromote:
				full, _ := r.cmd.Flags().GetBool("full")
				after, err = c.PromoteRelease(r.ctx, app, rel.ID, full)
			case client.ActionAbort:
				after, err = c.AbortRelease(r.ctx, app, rel.ID)
			case client.ActionPause:
				after, err = c.PauseRelease(r.ctx, app, rel.ID)
			case client.ActionResume:
				after, err = c.ResumeRelease(r.ctx, app, rel.ID)
			}
			if slipway.ErrorCode(err) == slipway.EConflict {
				return &cliError{msg: slipway.ErrorMessage(err),
					hint: fmt.Sprintf("Only a canary or blue-green release that is rolling out can be steered. See v%d with: slipway releases:info v%d -a %s", rel.Version, rel.Version, app)}
			}
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(after)
			}
			done := map[string]string{client.ActionPromote: "Promoted", client.ActionAbort: "Aborted",
				client.ActionPause: "Paused", client.ActionResume: "Resumed"}[action]
			r.printf("%s v%d of %s.\n", done, after.Version, r.paint(bold, app))
			if line := rolloutText(after, app, r.env.Now()); line != "" {
				r.printf("  %s\n", line)
			}
			if !slipway.ReleaseTerminal(after.Status) {
				r.printf("Follow it with: slipway releases:wait v%d -a %s\n", after.Version, app)
			}
			return nil
		}),
	}
	if action == client.ActionPromote {
		cmd.Flags().Bool("full", false, "skip the remaining steps: all traffic on the release now")
	}
	return withJSON(withApp(cmd))
}

func (cl *cli) releasesPromoteCmd() *cobra.Command {
	return cl.releaseActionCmd(client.ActionPromote,
		"Move a canary to its next step, or switch a blue-green release (default: the one rolling out)",
		`Move the release that is rolling out on to its next step now, without
waiting for its pause or checks; with --full straight to all of the traffic.
A blue-green release switches the traffic to itself. Without an argument it
acts on the app's release that is rolling out (the newest pending one).`,
		`  slipway releases:promote -a hello
  slipway releases:promote v5 -a hello --full`)
}

func (cl *cli) releasesAbortCmd() *cobra.Command {
	return cl.releaseActionCmd(client.ActionAbort,
		"Send all traffic back to the stable release and fail the one rolling out",
		`Abort the release that is rolling out: all traffic goes back to the stable
release at once, and the release ends failed. Without an argument it acts on
the app's release that is rolling out (the newest pending one).`,
		`  slipway releases:abort -a hello
  slipway releases:abort v5 -a hello`)
}

func (cl *cli) releasesPauseCmd() *cobra.Command {
	return cl.releaseActionCmd(client.ActionPause,
		"Hold a release that is rolling out at its step",
		`Hold the release that is rolling out at its current step, whatever its
pause or checks say, until releases:resume or releases:promote. Without an
argument it acts on the app's release that is rolling out.`,
		`  slipway releases:pause -a hello
  slipway releases:pause v5 -a hello`)
}

func (cl *cli) releasesResumeCmd() *cobra.Command {
	return cl.releaseActionCmd(client.ActionResume,
		"Let a paused release go on with its steps",
		`Let a release held by releases:pause go on with its steps. Without an
argument it acts on the app's release that is rolling out.`,
		`  slipway releases:resume -a hello
  slipway releases:resume v5 -a hello`)
}

// findRollingOut returns the app's release that is rolling out: the newest
// pending one. Releases run in version order, so the scan stops at the
// first release that has ended.
func findRollingOut(r *run, c *client.Client, app string) (*client.Release, error) {
	var found *client.Release
	err := scanReleases(r, c, app, func(rel client.Release) bool {
		if rel.Status == slipway.ReleasePending {
			found = &rel
		}
		return found != nil || slipway.ReleaseTerminal(rel.Status)
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, &cliError{msg: app + " has no release rolling out.",
			hint: fmt.Sprintf("Only a canary or blue-green release can be steered while it rolls out (see slipway releases:strategy -a %s); name one with vN, or deploy with: slipway deploy PATH -a %s", app, app)}
	}
	return found, nil
}
