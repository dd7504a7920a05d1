package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway/client"
)

func (cl *cli) psCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List an app's dynos: state, readiness and release",
		Example: `  slipway ps -a hello
  slipway ps -a hello --json | jq '[.[] | select(.ready)] | length'`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			dynos, err := c.Dynos(r.ctx, app)
			if err != nil {
				return err
			}
			sort.Slice(dynos, func(i, j int) bool { return dynoLess(dynoName(dynos[i]), dynoName(dynos[j])) })
			if r.json {
				return r.printJSON(nonNil(dynos))
			}
			if len(dynos) == 0 {
				r.printf("%s has no dynos. Release a build (slipway deploy PATH -a %s) or scale up (slipway ps:scale web=1 -a %s).\n", app, app, app)
				return nil
			}
			rows := make([][]string, 0, len(dynos))
			for _, d := range dynos {
				ready := "no"
				if d.Ready {
					ready = "yes"
				}
				state := d.State
				if d.AdditionalInfo != "" {
					state += " (" + truncate(d.AdditionalInfo, 40) + ")"
				}
				rows = append(rows, []string{dynoName(d), state, ready, fmt.Sprintf("v%d", d.Release.Version), r.ago(d.UpdatedAt), truncate(d.Command, 40)})
			}
			r.table([]string{"DYNO", "STATE", "READY", "RELEASE", "SINCE", "COMMAND"}, rows, func(col int, cell string) string {
				if col == 1 {
					s, _, _ := strings.Cut(cell, " ")
					return statusColor(s)
				}
				return ""
			})
			return nil
		}),
	}
	return withJSON(withApp(cmd))
}

// dynoName is how a dyno is named to people and to ps:restart: its type,
// a dot and its name within the type (web.1), as Akkeris clients print it.
func dynoName(d client.Dyno) string { return d.Type + "." + d.Name }

// dynoLess orders web.2 before web.10 (and names that are not numbers,
// such as Kubernetes pods', by name).
func dynoLess(a, b string) bool {
	ta, na, _ := strings.Cut(a, ".")
	tb, nb, _ := strings.Cut(b, ".")
	if ta != tb {
		return ta < tb
	}
	ia, errA := strconv.Atoi(na)
	ib, errB := strconv.Atoi(nb)
	if errA != nil || errB != nil {
		return na < nb
	}
	return ia < ib
}

// parseScale reads TYPE=N or TYPE=N:SIZE arguments.
func parseScale(args []string) ([]map[string]any, error) {
	var out []map[string]any
	for _, a := range args {
		typ, rest, ok := strings.Cut(a, "=")
		qty, size, _ := strings.Cut(rest, ":")
		n, err := strconv.Atoi(qty)
		if !ok || typ == "" || err != nil || n < 0 {
			return nil, usagef("%q is not TYPE=QUANTITY (such as web=2 or worker=1:gp2)", a)
		}
		ch := map[string]any{"type": typ, "quantity": n}
		if size != "" {
			ch["size"] = size
		}
		out = append(out, ch)
	}
	return out, nil
}

func (cl *cli) psScaleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ps:scale [TYPE=QUANTITY[:SIZE]…]",
		Short: "Scale process types (all at once); without arguments show the formation",
		Long: `Set how many dynos of each process type run, in one change; the current
release is scaled at once. SIZE is one of the server's dyno sizes (GET /sizes:
standard, gp1, gp2, gp3, gp4). Without arguments, show the formation.`,
		Example: `  slipway ps:scale web=3 worker=1 -a hello
  slipway ps:scale web=2:gp2 -a hello
  slipway ps:scale web=0 -a hello
  slipway ps:scale -a hello`,
		RunE: cl.runE(func(r *run, args []string) error {
			changes, err := parseScale(args)
			if err != nil {
				return err
			}
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			var fs []client.Formation
			if len(changes) == 0 {
				fs, err = c.Formations(r.ctx, app)
			} else {
				fs, err = c.UpdateFormations(r.ctx, app, changes)
			}
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(nonNil(fs))
			}
			if len(changes) > 0 {
				var done []string
				for _, f := range fs {
					done = append(done, fmt.Sprintf("%s=%d", f.Type, f.Quantity))
				}
				r.printf("Scaled %s to %s. Watch the dynos with: slipway ps -a %s\n", r.paint(bold, app), strings.Join(done, " "), app)
				return nil
			}
			if len(fs) == 0 {
				r.printf("%s has no formation yet; its first release makes one from the Procfile.\n", app)
				return nil
			}
			rows := make([][]string, 0, len(fs))
			for _, f := range fs {
				rows = append(rows, []string{f.Type, strconv.Itoa(f.Quantity), f.Size, f.Healthcheck, truncate(f.Command, 40)})
			}
			r.table([]string{"TYPE", "QUANTITY", "SIZE", "HEALTHCHECK", "COMMAND"}, rows, nil)
			return nil
		}),
	}
	return withJSON(withApp(cmd))
}

func (cl *cli) psRestartCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ps:restart [TYPE | TYPE.NAME]",
		Short: "Restart every dyno, rolling, or those of one type, or the one named",
		Long: `Restart dynos with fresh processes of the same release, one by one so the
app keeps serving: every dyno, every dyno of a process type (web), or one
dyno (web.2, as slipway ps names it, or its id).`,
		Example: `  slipway ps:restart -a hello
  slipway ps:restart web -a hello
  slipway ps:restart web.2 -a hello`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			dyno := first(args)
			if err := c.RestartDynos(r.ctx, app, dyno); err != nil {
				return err
			}
			if r.json {
				return r.printJSON(map[string]string{"app": app, "dyno": dyno, "status": "restarting"})
			}
			what := "every dyno of " + app + ", one by one"
			if dyno != "" && !strings.Contains(dyno, ".") && len(dyno) <= 30 {
				what = "every " + dyno + " dyno of " + app + ", one by one"
			} else if dyno != "" {
				what = dyno + " of " + app
			}
			r.printf("Restarting %s. Watch with: slipway ps -a %s\n", what, app)
			return nil
		}),
	}
	return withJSON(withApp(cmd))
}
