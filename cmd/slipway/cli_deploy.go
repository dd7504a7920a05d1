package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// deployResult is deploy's --json output.
type deployResult struct {
	Build   *client.Build   `json:"build"`
	Release *client.Release `json:"release"`
}

func (cl *cli) deployCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy PATH_OR_URL",
		Short: "Build and release an app, following the rollout live",
		Long: `Build and release an app, then follow the rollout until it ends.

PATH_OR_URL is a folder (packed as a .tar.gz without what its .slipwayignore
names, in .gitignore syntax), a .tar.gz or .zip archive, an
http(s):// URL of an archive the server fetches, or a docker:// image. A
folder or archive is sent with its sha256 checksum, which the server checks.
The folder or archive holds a Procfile at its top (web: ./server).
A folder inside a git repository also records the commit checked out (its
sha, branch and commit time, which lead time for changes starts from).

The build's output is shown as it comes; then the release is created and its
rollout followed: on a terminal with a bar per process type of the dynos on
the new release, otherwise as plain lines. A canary or blue-green release
(see releases:strategy) also shows its step, the share of traffic on it,
what it waits for and the router's figures for it against the stable
release. The exit code is 0 only when the release succeeded; otherwise the
reason is printed and the exit code is 1.`,
		Example: `  slipway deploy . -a hello
  slipway deploy ./build/app.tar.gz -a hello -d "Fix the login page"
  slipway deploy https://ci.example.com/artifacts/app-1.4.tgz -a hello --checksum sha256:…
  slipway deploy docker://registry.example.com/team/app:1.4 -a hello --no-wait`,
		Args: args(cobra.ExactArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			if _, err := c.App(r.ctx, app); err != nil {
				return err
			}
			src, err := resolveSource(args[0])
			if err != nil {
				return err
			}
			f := r.cmd.Flags()
			if sum, _ := f.GetString("checksum"); sum != "" {
				src.Checksum = sum
			}
			version, _ := f.GetString("version")
			desc, _ := f.GetString("description")
			noWait, _ := f.GetBool("no-wait")
			say := func(format string, a ...any) {
				if !r.json {
					r.printf(format, a...)
				}
			}
			if src.Checksum != "" {
				say("Uploading %s, %s\n", src.What, src.Checksum)
			} else {
				say("Building from %s\n", src.What)
			}
			nb := client.NewBuild{URL: src.URL, Checksum: src.Checksum, Version: version}
			if src.Dir != "" {
				// Lead time for changes starts at the commit.
				if gc := headCommit(r.ctx, src.Dir); gc != nil {
					nb.SHA, nb.Branch, nb.CommitTime = gc.SHA, gc.Branch, gc.Time
				}
			}
			b, err := c.CreateBuild(r.ctx, app, nb)
			if err != nil {
				return err
			}
			say("Build %s queued.\n", short(b.ID))
			var last string
			b, err = c.WaitBuild(r.ctx, app, b.ID, func(line string) {
				last = line
				say("  %s %s\n", r.paint(dim, "|"), line)
			})
			if err != nil {
				return err
			}
			if b.Status != slipway.BuildSucceeded {
				if r.json {
					r.printJSON(deployResult{Build: b})
				}
				return &cliError{msg: fmt.Sprintf("Build %s failed: %s", short(b.ID), last),
					hint: fmt.Sprintf("See its output with: slipway builds:info %s -a %s", b.ID, app)}
			}
			say("Build %s %s.\n", short(b.ID), r.paint(green, "succeeded"))
			rel, err := c.CreateRelease(r.ctx, app, client.NewRelease{Slug: b.ID, Description: desc})
			if err != nil {
				return err
			}
			say("Releasing v%d to %s: %s\n", rel.Version, r.paint(bold, app), rel.Description)
			if noWait {
				if r.json {
					return r.printJSON(deployResult{Build: b, Release: rel})
				}
				r.printf("Release v%d is %s. Follow it with: slipway releases:wait v%d -a %s\n", rel.Version, rel.Status, rel.Version, app)
				return nil
			}
			final, err := r.followRelease(c, app, rel)
			if r.json && final != nil {
				if jerr := r.printJSON(deployResult{Build: b, Release: final}); jerr != nil {
					return jerr
				}
			}
			return err
		}),
	}
	f := cmd.Flags()
	f.StringP("description", "d", "", "the release's description (default \"Deploy <build id>\")")
	f.String("checksum", "", "sha256:<hex> of an archive given by URL, for the server to check")
	f.String("version", "", "a version label recorded on the build, such as a git tag")
	f.Bool("no-wait", false, "return once the release is queued")
	return withJSON(withApp(cmd))
}
