package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway/client"
)

func (cl *cli) releasesDiffCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases:diff vN [vM]",
		Short: "Show what changed between two releases (config keys, code, process types, formation)",
		Long: `Show what changed in a release: with one release, against the release that
was current when it was made; with two, from the first to the second.

Config vars are named by key only, never by value. Code is the slug's build,
with its commit and branch when the build gave them. Formation changes are
those of the app's formation as it was when each release was made.`,
		Example: `  slipway releases:diff v7 -a hello
  slipway releases:diff v3 v7 -a hello
  slipway releases:diff current -a hello --json`,
		Args: args(cobra.RangeArgs(1, 2)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			to, against := args[0], ""
			if len(args) == 2 {
				to, against = args[1], args[0]
			}
			rel, err := resolveRelease(r, c, app, to)
			if err != nil {
				return err
			}
			if against != "" {
				from, err := resolveRelease(r, c, app, against)
				if err != nil {
					return err
				}
				against = from.ID
			}
			d, err := c.ReleaseDiff(r.ctx, app, rel.ID, against)
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(d)
			}
			r.printDiff(app, d)
			return nil
		}),
	}
	return withJSON(withApp(cmd))
}

func (r *run) printDiff(app string, d *client.ReleaseDiff) {
	title := fmt.Sprintf("%s v%d", app, d.Release.Version)
	if d.Against != nil {
		title += fmt.Sprintf(" against v%d", d.Against.Version)
	} else {
		title += " (no release before it)"
	}
	r.heading(title)
	keys := func(k client.KeyChanges) string {
		var parts []string
		for _, x := range k.Added {
			parts = append(parts, r.paint(green, "+"+x))
		}
		for _, x := range k.Removed {
			parts = append(parts, r.paint(red, "-"+x))
		}
		for _, x := range k.Changed {
			parts = append(parts, r.paint(yellow, "~"+x))
		}
		if len(parts) == 0 {
			return "no changes"
		}
		return strings.Join(parts, " ")
	}
	slug := func(s client.DiffSlug) string {
		out := short(s.ID)
		if s.Commit != "" {
			out += " (commit " + short(s.Commit)
			if s.Branch != "" {
				out += " on " + s.Branch
			}
			out += ")"
		}
		return out
	}
	code := "no changes"
	if d.Slug.Changed {
		from := "none"
		if d.Slug.From != nil {
			from = slug(*d.Slug.From)
		}
		code = from + " → " + slug(d.Slug.To)
	}
	formation := "not recorded for both releases"
	if d.Formation != nil {
		var parts []string
		for _, f := range d.Formation {
			switch f.Change {
			case "added":
				parts = append(parts, r.paint(green, "+"+f.Type))
			case "removed":
				parts = append(parts, r.paint(red, "-"+f.Type))
			default:
				var fields []string
				for _, c := range f.Fields {
					if c.Field == "command" {
						fields = append(fields, "command changed")
					} else {
						fields = append(fields, fmt.Sprintf("%s %q → %q", c.Field, c.From, c.To))
					}
				}
				parts = append(parts, r.paint(yellow, "~"+f.Type)+" ("+strings.Join(fields, ", ")+")")
			}
		}
		formation = "no changes"
		if len(parts) > 0 {
			formation = strings.Join(parts, "; ")
		}
	}
	strategy := d.Strategy.To
	if d.Strategy.Changed {
		strategy = d.Strategy.From + " → " + d.Strategy.To
	}
	rollback := ""
	if d.RollbackOf != nil {
		rollback = fmt.Sprintf("v%d", d.RollbackOf.Version)
	}
	r.fields([][2]string{
		{"Rollback to", rollback}, {"Code", code}, {"Config vars", keys(d.Config)}, {"Process types", keys(d.ProcessTypes)},
		{"Formation", formation}, {"Strategy", strategy},
	})
}

func (cl *cli) deliveryMetricsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delivery-metrics",
		Short: "Show an app's or a pipeline's delivery metrics (deployment frequency, lead time, change failure rate, time to restore)",
		Long: `Show delivery metrics over a window (30 days unless --window): succeeded
deployments per day, lead time for changes (commit to deployment succeeded),
change failure rate and time to restore. With --pipeline, of the deployments
to the pipeline's production-stage apps. See docs/delivery-metrics.md for the
definitions.`,
		Example: `  slipway delivery-metrics -a hello
  slipway delivery-metrics -a hello --window 7d
  slipway delivery-metrics --pipeline shop --json`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			f := r.cmd.Flags()
			window, _ := f.GetString("window")
			pipeline, _ := f.GetString("pipeline")
			var m *client.DeliveryMetrics
			var what string
			if pipeline != "" {
				c, err := r.api()
				if err != nil {
					return err
				}
				if m, err = c.PipelineDeliveryMetrics(r.ctx, pipeline, window); err != nil {
					return err
				}
				what = "pipeline " + pipeline
			} else {
				app, c, err := r.appClient()
				if err != nil {
					return err
				}
				if m, err = c.AppDeliveryMetrics(r.ctx, app, window); err != nil {
					return err
				}
				what = app
			}
			if r.json {
				return r.printJSON(m)
			}
			r.printDeliveryMetrics(what, m)
			return nil
		}),
	}
	cmd.Flags().String("window", "30d", "how far back: a number of days or hours such as 30d or 12h, at most 365d")
	cmd.Flags().String("pipeline", "", "a pipeline (its production-stage apps) instead of an app")
	return withJSON(withApp(cmd))
}

func (r *run) printDeliveryMetrics(what string, m *client.DeliveryMetrics) {
	dur := func(s *float64) string {
		if s == nil {
			return "n/a"
		}
		return (time.Duration(*s) * time.Second).Round(time.Second).String()
	}
	r.heading(fmt.Sprintf("%s, last %s", what, m.Window))
	d := m.Deployments
	lead := fmt.Sprintf("median %s, p90 %s (%d measured", dur(m.LeadTime.MedianSeconds), dur(m.LeadTime.P90Seconds), m.LeadTime.Measured)
	if n := m.LeadTime.FromBuildCreated; n > 0 {
		lead += fmt.Sprintf(", %d from the build's creation: no commit time", n)
	}
	cfr := "n/a"
	if m.ChangeFailureRate.Rate != nil {
		cfr = fmt.Sprintf("%.0f%% (%d of %d ended deployments)", *m.ChangeFailureRate.Rate*100, m.ChangeFailureRate.Failures, m.ChangeFailureRate.Ended)
	}
	r.fields([][2]string{
		{"Deployments", fmt.Sprintf("%d (%d succeeded, %d failed, %d running)", d.Total, d.Succeeded, d.Failed, d.Running)},
		{"Deployment frequency", fmt.Sprintf("%.2f a day", m.DeploymentFrequency.PerDay)},
		{"Lead time", lead + ")"},
		{"Change failure rate", cfr},
		{"Time to restore", fmt.Sprintf("median %s (%d restored, %d not yet)", dur(m.TimeToRestore.MedianSeconds), m.TimeToRestore.Restored, m.TimeToRestore.Unrestored)},
	})
}
