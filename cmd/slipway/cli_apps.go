package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway/client"
)

func (cl *cli) appsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "List apps",
		Example: `  slipway apps
  slipway apps --space prod
  slipway apps --json | jq -r '.[].key'`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			c, err := r.api()
			if err != nil {
				return err
			}
			apps, err := c.Apps(r.ctx)
			if err != nil {
				return err
			}
			space, _ := r.cmd.Flags().GetString("space")
			shown := apps[:0]
			for _, a := range apps {
				if space == "" || a.Space.Name == space {
					shown = append(shown, a)
				}
			}
			sort.Slice(shown, func(i, j int) bool { return shown[i].Key < shown[j].Key })
			if r.json {
				return r.printJSON(nonNil(shown))
			}
			if len(shown) == 0 {
				r.printf("No apps yet. Create one with: slipway apps:create NAME\n")
				return nil
			}
			rows := make([][]string, 0, len(shown))
			for _, a := range shown {
				released := "never"
				if a.ReleasedAt != nil {
					released = r.ago(*a.ReleasedAt)
				}
				rows = append(rows, []string{a.Key, a.Space.Name, a.Organization.Name, released, a.WebURL})
			}
			r.table([]string{"APP", "SPACE", "ORG", "RELEASED", "URL"}, rows, nil)
			return nil
		}),
	}
	cmd.Flags().StringP("space", "s", "", "only the apps of this space")
	return withJSON(cmd)
}

func (cl *cli) appsCreateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apps:create NAME",
		Short: "Create an app",
		Long: `Create an app. Its name is lowercase letters and digits, starting with a
letter, at most 24 characters; its key, accepted wherever an app is, is
NAME-SPACE (hello-default).`,
		Example: `  slipway apps:create hello
  slipway apps:create api -s prod -o acme -d "The public API"`,
		Args: args(cobra.ExactArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			c, err := r.api()
			if err != nil {
				return err
			}
			space, _ := r.cmd.Flags().GetString("space")
			org, _ := r.cmd.Flags().GetString("org")
			desc, _ := r.cmd.Flags().GetString("description")
			a, err := c.CreateNewApp(r.ctx, client.NewApp{Name: args[0], Space: space, Org: org, Description: desc})
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(a)
			}
			r.printf("Created %s in space %s (org %s): %s\n", r.paint(bold, a.Key), a.Space.Name, a.Organization.Name, a.WebURL)
			r.printf("Deploy a folder with a Procfile to it with: slipway deploy PATH -a %s\n", a.Key)
			return nil
		}),
	}
	cmd.Flags().StringP("space", "s", "", "space of the app (default \"default\")")
	cmd.Flags().StringP("org", "o", "", "organization of the app (default: the space's organization, \"default\" in a shared space)")
	cmd.Flags().StringP("description", "d", "", "what the app is")
	return withJSON(cmd)
}

func (cl *cli) appsInfoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apps:info [APP]",
		Short: "Show an app: where it runs, what is released, its formation",
		Example: `  slipway apps:info hello
  slipway apps:info -a hello-default --json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, err := r.appOr(args)
			if err != nil {
				return err
			}
			c, err := r.api()
			if err != nil {
				return err
			}
			a, err := c.App(r.ctx, app)
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(a)
			}
			fs, err := c.Formations(r.ctx, app)
			if err != nil {
				return err
			}
			cur, _ := findCurrent(r, c, app)
			released := "never"
			if a.ReleasedAt != nil {
				released = r.ago(*a.ReleasedAt)
			}
			current := "none"
			if cur != nil {
				current = fmt.Sprintf("v%d %s", cur.Version, cur.Description)
			}
			var scale []string
			for _, f := range fs {
				scale = append(scale, fmt.Sprintf("%s=%d", f.Type, f.Quantity))
			}
			image := ""
			if a.Image != nil {
				image = *a.Image
			}
			r.heading(a.Key)
			r.fields([][2]string{
				{"Name", a.SimpleName}, {"ID", a.ID}, {"Space", a.Space.Name}, {"Organization", a.Organization.Name}, {"Stack", a.Stack.Name},
				{"Web URL", a.WebURL}, {"Description", a.Description}, {"Current release", current},
				{"Released", released}, {"Slug", image}, {"Formation", strings.Join(scale, " ")},
				{"Maintenance", fmt.Sprint(a.Maintenance)}, {"Created", r.ago(a.CreatedAt)},
			})
			return nil
		}),
	}
	return withJSON(withApp(cmd))
}

func (cl *cli) appsDestroyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apps:destroy [APP] --confirm APP",
		Short: "Delete an app: stop its dynos and remove its records",
		Long: `Delete an app for good: every dyno stops, its routes go, and its builds,
releases and config go with it. --confirm must repeat the app's name or key.`,
		Example: `  slipway apps:destroy hello --confirm hello`,
		Args:    args(cobra.MaximumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, err := r.appOr(args)
			if err != nil {
				return err
			}
			confirm, _ := r.cmd.Flags().GetString("confirm")
			c, err := r.api()
			if err != nil {
				return err
			}
			a, err := c.App(r.ctx, app)
			if err != nil {
				return err
			}
			if confirm != a.SimpleName && confirm != a.Key && confirm != a.ID {
				return &cliError{msg: fmt.Sprintf("Not destroying %s: --confirm must repeat its name.", a.Key),
					hint: fmt.Sprintf("This deletes every build, release and dyno of the app. To go ahead, run:\n  slipway apps:destroy %s --confirm %s", a.Key, a.Key)}
			}
			if err := c.DeleteApp(r.ctx, a.ID); err != nil {
				return err
			}
			if r.json {
				return r.printJSON(a)
			}
			r.printf("Destroyed %s: its dynos are stopped and its records removed.\n", r.paint(bold, a.Key))
			return nil
		}),
	}
	cmd.Flags().String("confirm", "", "the app's name or key, to confirm")
	return withJSON(withApp(cmd))
}

// nonNil makes a nil list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
