package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway/client"
)

// buildInfo is builds:info's --json output: the build and its output.
type buildInfo struct {
	client.Build
	Lines []string `json:"lines"`
}

func (cl *cli) buildsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "builds",
		Short: "List an app's builds, newest first",
		Example: `  slipway builds -a hello
  slipway builds -a hello --all --json`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			builds, n, more, err := newest(r, func() ([]client.Build, error) { return c.Builds(r.ctx, app) },
				func(n int) ([]client.Build, string, error) {
					return c.BuildsPage(r.ctx, app, fmt.Sprintf("created_at ..; order=desc, max=%d", n))
				})
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(nonNil(builds))
			}
			if len(builds) == 0 {
				r.printf("%s has no builds yet. Deploy it with: slipway deploy PATH -a %s\n", app, app)
				return nil
			}
			rows := make([][]string, 0, len(builds))
			for _, b := range builds {
				rows = append(rows, []string{b.ID, b.Status, buildSourceText(b), b.SourceBlob.Version, r.ago(b.CreatedAt)})
			}
			r.table([]string{"ID", "STATUS", "SOURCE", "VERSION", "AGE"}, rows, func(col int, cell string) string {
				if col == 1 {
					return statusColor(cell)
				}
				return ""
			})
			if more {
				r.printf("%s\n", r.paint(dim, fmt.Sprintf("(the last %d; see them all with --all)", n)))
			}
			return nil
		}),
	}
	cmd.Flags().Bool("all", false, "list every build")
	cmd.Flags().IntP("num", "n", 10, "how many of the newest builds to list")
	return withJSON(withApp(cmd))
}

// buildSourceText says where a build came from: "upload sha256:1a2b3c4d…"
// for a pushed archive, else its URL.
func buildSourceText(b client.Build) string {
	if b.SourceBlob.URL == "data:" {
		if b.SourceBlob.Checksum != "" {
			return "upload " + truncate(b.SourceBlob.Checksum, 16)
		}
		return "upload"
	}
	return truncate(b.SourceBlob.URL, 50)
}

func (cl *cli) buildsInfoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "builds:info [BUILD]",
		Short: "Show a build and its output (default: the newest)",
		Example: `  slipway builds:info -a hello
  slipway builds:info 1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f -a hello --json`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			id := first(args)
			if id == "" || id == "latest" {
				builds, _, err := c.BuildsPage(r.ctx, app, "created_at ..; order=desc, max=1")
				if err != nil {
					return err
				}
				if len(builds) == 0 {
					return &cliError{msg: app + " has no builds yet.", hint: "Deploy it with: slipway deploy PATH -a " + app}
				}
				id = builds[0].ID
			}
			b, err := c.Build(r.ctx, app, id)
			if err != nil {
				return err
			}
			res, err := c.BuildResult(r.ctx, app, id)
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(buildInfo{Build: *b, Lines: nonNil(res.Lines)})
			}
			r.heading("Build " + b.ID)
			r.fields([][2]string{
				{"Status", r.paint(statusColor(b.Status), b.Status)}, {"Source", buildSourceText(*b)},
				{"Checksum", b.SourceBlob.Checksum}, {"Version", b.SourceBlob.Version}, {"Commit", b.SourceBlob.Commit},
				{"Branch", b.SourceBlob.Branch}, {"Repo", b.SourceBlob.Repo}, {"By", b.User.Email},
				{"Created", r.ago(b.CreatedAt)}, {"Release it with", releaseHint(b, app)},
			})
			if len(res.Lines) > 0 {
				r.printf("\n")
				r.heading("Output")
				for _, l := range res.Lines {
					r.printf("  %s\n", l)
				}
			}
			return nil
		}),
	}
	return withJSON(withApp(cmd))
}

func releaseHint(b *client.Build, app string) string {
	if b.Status != "succeeded" {
		return ""
	}
	return fmt.Sprintf("slipway releases:create %s -a %s", b.ID, app)
}
