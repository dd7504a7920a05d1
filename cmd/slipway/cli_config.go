package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// configResult is config:set's and config:unset's --json output: the
// config vars now, and the release that rolls them out, if any.
type configResult struct {
	Config  map[string]string `json:"config"`
	Release *client.Release   `json:"release"`
}

func (cl *cli) configCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show an app's config vars",
		Example: `  slipway config -a hello
  slipway config -a hello --shell > .env
  slipway config -a hello --json | jq -r .DATABASE_URL`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			vars, err := c.ConfigVars(r.ctx, app)
			if err != nil {
				return err
			}
			if vars == nil {
				vars = map[string]string{}
			}
			if r.json {
				return r.printJSON(vars)
			}
			keys := sortedKeys(vars)
			if shell, _ := r.cmd.Flags().GetBool("shell"); shell {
				for _, k := range keys {
					r.printf("%s=%s\n", k, shellQuote(vars[k]))
				}
				return nil
			}
			if len(keys) == 0 {
				r.printf("%s has no config vars. Set some with: slipway config:set KEY=value -a %s\n", app, app)
				return nil
			}
			w := 0
			for _, k := range keys {
				w = max(w, len(k))
			}
			for _, k := range keys {
				r.printf("%s%s %s\n", r.paint(cyan, k+":"), strings.Repeat(" ", w-len(k)), vars[k])
			}
			return nil
		}),
	}
	cmd.Flags().Bool("shell", false, "print KEY=value lines for a shell or a .env file")
	return withJSON(withApp(cmd))
}

func (cl *cli) configGetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config:get KEY",
		Short:   "Print one config var's value",
		Example: `  slipway config:get DATABASE_URL -a hello`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			vars, err := c.ConfigVars(r.ctx, app)
			if err != nil {
				return err
			}
			v, ok := vars[args[0]]
			if !ok {
				return &cliError{msg: fmt.Sprintf("%s has no config var %s.", app, args[0]), hint: "List them with: slipway config -a " + app}
			}
			if r.json {
				return r.printJSON(map[string]string{args[0]: v})
			}
			r.printf("%s\n", v)
			return nil
		}),
	}
	return withJSON(withApp(cmd))
}

func (cl *cli) configSetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config:set KEY=VALUE…",
		Short: "Set config vars; an app with a current release gets a new release with them",
		Example: `  slipway config:set LOG_LEVEL=debug -a hello
  slipway config:set A=1 B="two words" -a hello --wait`,
		Args: args(cobra.MinimumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			change := map[string]*string{}
			for _, a := range args {
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return usagef("%q is not KEY=VALUE", a)
				}
				change[k] = &v
			}
			return r.changeConfig(change, "Set")
		}),
	}
	cmd.Flags().Bool("wait", false, "follow the rollout of the release the change makes")
	return withJSON(withApp(cmd))
}

func (cl *cli) configUnsetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config:unset KEY…",
		Short:   "Remove config vars; an app with a current release gets a new release without them",
		Example: `  slipway config:unset LOG_LEVEL OLD_FLAG -a hello`,
		Args:    args(cobra.MinimumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			change := map[string]*string{}
			for _, k := range args {
				if strings.Contains(k, "=") {
					return usagef("%q: config:unset takes keys only; to set a value use config:set", k)
				}
				change[k] = nil
			}
			return r.changeConfig(change, "Unset")
		}),
	}
	cmd.Flags().Bool("wait", false, "follow the rollout of the release the change makes")
	return withJSON(withApp(cmd))
}

// changeConfig sends a config change and reports the release it made.
func (r *run) changeConfig(change map[string]*string, verb string) error {
	app, c, err := r.appClient()
	if err != nil {
		return err
	}
	latest := func() *client.Release {
		rels, _, err := c.ReleasesPage(r.ctx, app, newestFirst(1))
		if err != nil || len(rels) == 0 {
			return nil
		}
		return &rels[0]
	}
	before := latest()
	vars, err := c.UpdateConfigVars(r.ctx, app, change)
	if err != nil {
		return err
	}
	// The server creates the release before it answers, so a newer
	// release than before is the one this change made.
	rel := latest()
	if rel != nil && (rel.Trigger != slipway.TriggerConfig || before != nil && rel.Version <= before.Version) {
		rel = nil
	}
	keys := make([]string, 0, len(change))
	for k := range change {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wait, _ := r.cmd.Flags().GetBool("wait")
	if !r.json {
		if rel != nil {
			r.printf("%s %s on %s: release v%d rolls it out.\n", verb, strings.Join(keys, ", "), r.paint(bold, app), rel.Version)
		} else {
			r.printf("%s %s on %s; it takes effect with the next release.\n", verb, strings.Join(keys, ", "), r.paint(bold, app))
		}
	}
	if wait && rel != nil {
		final, err := r.followRelease(c, app, rel)
		if final != nil {
			rel = final
		}
		if err != nil {
			if r.json {
				r.printJSON(configResult{Config: vars, Release: rel})
			}
			return err
		}
	}
	if r.json {
		if vars == nil {
			vars = map[string]string{}
		}
		return r.printJSON(configResult{Config: vars, Release: rel})
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+,=", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
