package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// newestFirst is the Range of a page of releases, newest first.
func newestFirst(max int) string { return fmt.Sprintf("version ..; order=desc, max=%d", max) }

// scanReleases calls fn with the app's releases, newest first, a page at
// a time, until fn returns true or the releases run out.
func scanReleases(r *run, c *client.Client, app string, fn func(client.Release) bool) error {
	for rng := newestFirst(50); rng != ""; {
		rels, next, err := c.ReleasesPage(r.ctx, app, rng)
		if err != nil {
			return err
		}
		for _, rel := range rels {
			if fn(rel) {
				return nil
			}
		}
		rng = next
	}
	return nil
}

// findCurrent returns the app's current release, nil when it has none.
func findCurrent(r *run, c *client.Client, app string) (*client.Release, error) {
	var cur *client.Release
	err := scanReleases(r, c, app, func(rel client.Release) bool {
		if rel.Current {
			cur = &rel
		}
		return cur != nil
	})
	return cur, err
}

// findPrevious returns the newest succeeded release older than the
// current one: what a rollback goes back to.
func findPrevious(r *run, c *client.Client, app string) (*client.Release, error) {
	var cur, prev *client.Release
	err := scanReleases(r, c, app, func(rel client.Release) bool {
		switch {
		case cur == nil && rel.Current:
			cur = &rel
		case cur != nil && rel.Status == slipway.ReleaseSucceeded:
			prev = &rel
		}
		return prev != nil
	})
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, &cliError{msg: app + " has no current release, so there is nothing before it.", hint: "List its releases with: slipway releases -a " + app}
	}
	if prev == nil {
		return nil, &cliError{msg: fmt.Sprintf("%s has no succeeded release before v%d.", app, cur.Version), hint: "List its releases with: slipway releases --all -a " + app}
	}
	return prev, nil
}

var versionRE = regexp.MustCompile(`^[vV]?[0-9]+$`)

// resolveRelease finds a release by what a person types: "" or "latest"
// for the newest, "current", "previous" (the succeeded one before
// current), vN or N, or an id.
func resolveRelease(r *run, c *client.Client, app, which string) (*client.Release, error) {
	switch strings.ToLower(which) {
	case "", "latest":
		rels, _, err := c.ReleasesPage(r.ctx, app, newestFirst(1))
		if err != nil {
			return nil, err
		}
		if len(rels) == 0 {
			return nil, &cliError{msg: app + " has no releases yet.", hint: "Deploy it with: slipway deploy PATH -a " + app}
		}
		return &rels[0], nil
	case "current":
		cur, err := findCurrent(r, c, app)
		if err == nil && cur == nil {
			err = &cliError{msg: app + " has no current release.", hint: "List its releases with: slipway releases -a " + app}
		}
		return cur, err
	case "previous":
		return findPrevious(r, c, app)
	}
	if versionRE.MatchString(which) {
		which = "v" + strings.TrimLeft(which, "vV")
	}
	return c.Release(r.ctx, app, which)
}

func (cl *cli) releasesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases",
		Short: "List an app's releases, newest first",
		Long: `List an app's releases, newest first: the last 10 unless --all or --num.
STATUS says whether it was deployed (queued, pending, succeeded, failed,
unknown); STATE is the combined state of its status checks; * marks the
current release, the one the app runs.`,
		Example: `  slipway releases -a hello
  slipway releases -a hello --all
  slipway releases -a hello --json | jq '.[] | select(.current)'`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			rels, n, more, err := newest(r, func() ([]client.Release, error) { return c.Releases(r.ctx, app) },
				func(n int) ([]client.Release, string, error) { return c.ReleasesPage(r.ctx, app, newestFirst(n)) })
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(nonNil(rels))
			}
			if len(rels) == 0 {
				r.printf("%s has no releases yet. Deploy it with: slipway deploy PATH -a %s\n", app, app)
				return nil
			}
			rows := make([][]string, 0, len(rels))
			for _, rel := range rels {
				cur := ""
				if rel.Current {
					cur = "*"
				}
				rows = append(rows, []string{fmt.Sprintf("v%d", rel.Version), rel.Status, rel.State, cur, truncate(rel.Description, 60), r.ago(rel.CreatedAt)})
			}
			r.table([]string{"VERSION", "STATUS", "STATE", "CURRENT", "DESCRIPTION", "AGE"}, rows, func(col int, cell string) string {
				switch col {
				case 1, 2:
					return statusColor(cell)
				case 3:
					return green
				}
				return ""
			})
			if more {
				r.printf("%s\n", r.paint(dim, fmt.Sprintf("(the last %d; see them all with --all)", n)))
			}
			return nil
		}),
	}
	cmd.Flags().Bool("all", false, "list every release")
	cmd.Flags().IntP("num", "n", 10, "how many of the newest releases to list")
	return withJSON(withApp(cmd))
}

func (cl *cli) releasesInfoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases:info [vN|ID|current|previous]",
		Short: "Show a release and its rollout log (default: the newest)",
		Example: `  slipway releases:info -a hello
  slipway releases:info v3 -a hello
  slipway releases:info previous -a hello --json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			rel, err := resolveRelease(r, c, app, first(args))
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(rel)
			}
			log, err := c.ReleaseLog(r.ctx, app, rel.ID)
			if err != nil {
				return err
			}
			status := r.paint(statusColor(rel.Status), rel.Status)
			if rel.Error != "" {
				status += ": " + rel.Error
			}
			current := "no"
			if rel.Current {
				current = r.paint(green, "yes")
			}
			r.heading(fmt.Sprintf("%s v%d", app, rel.Version))
			r.fields([][2]string{
				{"Version", fmt.Sprintf("v%d", rel.Version)}, {"Status", status}, {"State", r.paint(statusColor(rel.State), rel.State)},
				{"Current", current}, {"Strategy", rel.Strategy}, {"Rollout", rolloutText(rel, app, r.env.Now())},
				{"Description", rel.Description}, {"Trigger", rel.Trigger}, {"Slug", rel.Slug.ID},
				{"By", rel.User.Email}, {"Created", fmt.Sprintf("%s (%s)", rel.CreatedAt.Local().Format("2006-01-02 15:04:05"), r.ago(rel.CreatedAt))},
				{"ID", rel.ID},
			})
			r.printFailure(rel.Failure)
			if len(log.Lines) > 0 {
				r.printf("\n")
				r.heading("Rollout log")
				for _, l := range log.Lines {
					r.printf("  %s\n", l)
				}
			}
			return nil
		}),
	}
	return withJSON(withApp(cmd))
}

func (cl *cli) releasesCreateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases:create BUILD",
		Short: "Release a build (its id, or \"latest\") and follow the rollout",
		Example: `  slipway releases:create latest -a hello
  slipway releases:create 1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f -a hello -d "Hotfix"`,
		Args: args(cobra.ExactArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			desc, _ := r.cmd.Flags().GetString("description")
			return r.releaseAndFollow(client.NewRelease{Slug: args[0], Description: desc}, "")
		}),
	}
	cmd.Flags().StringP("description", "d", "", "the release's description (default \"Deploy <build id>\")")
	cmd.Flags().Bool("no-wait", false, "return once the release is queued")
	return withJSON(withApp(cmd))
}

func (cl *cli) releasesRollbackCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases:rollback [vN|ID]",
		Short: "Roll back to an earlier release's slug and config (default: the previous succeeded one)",
		Long: `Roll back: create a new release with an earlier release's slug and config
vars, and follow its rollout. Without an argument it goes back to the newest
succeeded release before the current one.`,
		Example: `  slipway releases:rollback -a hello
  slipway releases:rollback v3 -a hello`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			which := first(args)
			if which == "" {
				which = "previous"
			}
			target, err := resolveRelease(r, c, app, which)
			if err != nil {
				return err
			}
			desc, _ := r.cmd.Flags().GetString("description")
			return r.releaseAndFollow(client.NewRelease{Release: target.ID, Description: desc},
				fmt.Sprintf("Rolling back %s to v%d (%s).\n", app, target.Version, target.Description))
		}),
	}
	cmd.Flags().StringP("description", "d", "", "the release's description (default \"Rollback to vN\")")
	cmd.Flags().Bool("no-wait", false, "return once the release is queued")
	return withJSON(withApp(cmd))
}

// releaseAndFollow creates a release, says so, and follows its rollout
// unless --no-wait.
func (r *run) releaseAndFollow(nr client.NewRelease, intro string) error {
	app, c, err := r.appClient()
	if err != nil {
		return err
	}
	rel, err := c.CreateRelease(r.ctx, app, nr)
	if err != nil {
		return err
	}
	if !r.json {
		r.printf("%sReleasing v%d to %s: %s\n", intro, rel.Version, r.paint(bold, app), rel.Description)
	}
	if noWait, _ := r.cmd.Flags().GetBool("no-wait"); noWait {
		if r.json {
			return r.printJSON(rel)
		}
		r.printf("Release v%d is %s. Follow it with: slipway releases:wait v%d -a %s\n", rel.Version, rel.Status, rel.Version, app)
		return nil
	}
	final, err := r.followRelease(c, app, rel)
	if r.json && final != nil {
		if jerr := r.printJSON(final); jerr != nil {
			return jerr
		}
	}
	return err
}

func (cl *cli) releasesStatusesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases:statuses [vN|ID]",
		Short: "List the status checks reported on a release (default: the newest)",
		Example: `  slipway releases:statuses -a hello
  slipway releases:statuses v4 -a hello --json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			rel, err := resolveRelease(r, c, app, first(args))
			if err != nil {
				return err
			}
			sts, err := c.ReleaseStatuses(r.ctx, app, rel.ID)
			if err != nil {
				return err
			}
			if r.json {
				sts.Statuses = nonNil(sts.Statuses)
				return r.printJSON(sts)
			}
			r.printf("v%d of %s: combined state %s\n", rel.Version, app, r.paint(statusColor(sts.State), sts.State))
			if len(sts.Statuses) == 0 {
				r.printf("No checks reported on it yet.\n")
				return nil
			}
			rows := make([][]string, 0, len(sts.Statuses))
			for _, s := range sts.Statuses {
				rows = append(rows, []string{s.Context, s.State, s.Name, truncate(s.Description, 40), s.TargetURL})
			}
			r.table([]string{"CONTEXT", "STATE", "NAME", "DESCRIPTION", "URL"}, rows, func(col int, cell string) string {
				if col == 1 {
					return statusColor(cell)
				}
				return ""
			})
			return nil
		}),
	}
	return withJSON(withApp(cmd))
}

func (cl *cli) releasesWaitCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "releases:wait [vN|ID]",
		Short: "Follow a release until it ends (default: the newest); the exit code says how",
		Long: `Follow a release's rollout until it ends, as deploy does, with a canary's or
blue-green release's step, traffic share, wait and figures. The exit code is
0 when it succeeded and 1 when it failed (an aborted canary included) or its
outcome is unknown.`,
		Example: `  slipway releases:wait v5 -a hello
  slipway releases:wait -a hello && echo released`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			rel, err := resolveRelease(r, c, app, first(args))
			if err != nil {
				return err
			}
			if !r.json {
				r.printf("Following v%d of %s (%s): %s\n", rel.Version, r.paint(bold, app), rel.Status, rel.Description)
			}
			final, err := r.followRelease(c, app, rel)
			if r.json && final != nil {
				if jerr := r.printJSON(final); jerr != nil {
					return jerr
				}
			}
			return err
		}),
	}
	return withJSON(withApp(cmd))
}

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// failureFields are a release's failure as releases:info shows it: the
// phase and dyno, how the process ended, the health check's last answer,
// the failed check, the analysis figures and who aborted.
func failureFields(f *slipway.Failure) [][2]string {
	phase := f.Phase
	if f.Dyno != "" {
		phase += " (" + f.Dyno + ")"
	}
	exit := f.Signal
	if f.ExitCode != nil {
		exit = fmt.Sprintf("exit code %d", *f.ExitCode)
	}
	health := ""
	if h := f.Health; h != nil {
		health = h.Check
		switch {
		case h.Code != 0:
			health += fmt.Sprintf(" answered %d", h.Code)
			if body := strings.TrimSpace(h.Body); body != "" {
				first, _, _ := strings.Cut(body, "\n")
				health += ": " + strconv.Quote(first)
			}
		case h.Error != "":
			health += ": " + h.Error
		}
	}
	check := ""
	if c := f.Check; c != nil {
		check = c.Context + " reported " + c.State
		if c.TargetURL != "" {
			check += " (" + c.TargetURL + ")"
		}
	}
	analysis := ""
	if a := f.Analysis; a != nil {
		analysis = fmt.Sprintf("new release: %d requests, %d errors (%.2f%%), p99 %g ms; stable: %d requests, %.2f%% errors",
			a.Canary.Requests, a.Canary.Errors, a.Canary.ErrorRate*100, a.Canary.P99Ms, a.Stable.Requests, a.Stable.ErrorRate*100)
	}
	return [][2]string{{"Failed in", phase}, {"Exit", exit}, {"Health check", health}, {"Check", check},
		{"Analysis", analysis}, {"Aborted by", f.AbortedBy}}
}

// printFailure shows why a release failed: its failure's fields, then the
// failing process's last output lines (config values already redacted
// by the server). Nothing for nil.
func (r *run) printFailure(f *slipway.Failure) {
	if f == nil {
		return
	}
	r.printf("\n")
	r.heading("Why it failed")
	r.fields(failureFields(f))
	if len(f.Output) > 0 {
		who := "the process"
		if f.Dyno != "" {
			who = f.Dyno
		}
		r.printf("\n")
		r.heading("Last output of " + who)
		for _, l := range f.Output {
			r.printf("  %s\n", l)
		}
	}
}
