package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// cliEnv is what the CLI takes from the process around it. main passes the
// real one; tests pass their own, so that no test reads or changes the
// user's environment or config folder.
type cliEnv struct {
	// Getenv reads an environment variable: SLIPWAY_API_URL, SLIPWAY_TOKEN,
	// SLIPWAY_APP, SLIPWAY_CONFIG_DIR, NO_COLOR, TERM.
	Getenv func(string) string
	// Stdin is where login reads the API URL and token it was not given.
	Stdin io.Reader
	// Now is the clock of ages such as "5m ago".
	Now func() time.Time
	// Poll is how often a rollout's dynos are read for the progress bars,
	// and a promotion's targets for their outcome.
	Poll time.Duration
}

func osCLIEnv() cliEnv {
	return cliEnv{Getenv: os.Getenv, Stdin: os.Stdin, Now: time.Now, Poll: 250 * time.Millisecond}
}

// cli builds the client commands; every command reaches the server only
// through the client package.
type cli struct {
	env cliEnv
}

// newCLIRoot returns the root command with every client command; main adds
// `serve` to it.
func newCLIRoot(env cliEnv) *cobra.Command {
	cl := &cli{env: env}
	root := &cobra.Command{
		Use:   "slipway",
		Short: "Slipway: release controller for Heroku/Akkeris-style apps",
		Long: `Slipway builds, releases and rolls out apps. The same binary is the
server (slipway serve) and the client: log in once with slipway login, then
deploy with slipway deploy. Every client command takes --json for scripts;
-a/--app defaults to $SLIPWAY_APP. Exit codes: 0 ok, 1 error, 2 usage.`,
		Example: `  slipway login --api http://127.0.0.1:5000
  slipway apps:create hello
  slipway deploy . -a hello
  slipway releases -a hello`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	groups := []struct{ id, title string }{
		{"auth", "Logging in:"}, {"apps", "Apps:"}, {"deploy", "Builds and releases:"},
		{"dynos", "Dynos and config:"}, {"pipelines", "Pipelines and webhooks:"},
	}
	for _, g := range groups {
		root.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
	}
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("auth", cl.loginCmd(), cl.logoutCmd())
	add("apps", cl.appsCmd(), cl.appsCreateCmd(), cl.appsInfoCmd(), cl.appsDestroyCmd())
	add("deploy", cl.deployCmd(), cl.buildsCmd(), cl.buildsInfoCmd(),
		cl.releasesCmd(), cl.releasesInfoCmd(), cl.releasesCreateCmd(), cl.releasesRollbackCmd(),
		cl.releasesStatusesCmd(), cl.releasesWaitCmd(), cl.releasesStrategyCmd(),
		cl.releasesPromoteCmd(), cl.releasesAbortCmd(), cl.releasesPauseCmd(), cl.releasesResumeCmd())
	add("deploy", cl.releasesDiffCmd(), cl.deliveryMetricsCmd())
	add("dynos", cl.psCmd(), cl.psScaleCmd(), cl.psRestartCmd(), cl.logsCmd(),
		cl.configCmd(), cl.configGetCmd(), cl.configSetCmd(), cl.configUnsetCmd())
	add("pipelines", cl.pipelinesCmd(), cl.pipelinesInfoCmd(), cl.pipelinesCreateCmd(), cl.pipelinesAddCmd(),
		cl.pipelinesPromoteCmd(), cl.hooksCmd(), cl.hooksCreateCmd())
	return root
}

// execute runs root and prints its error, if any, to root's stderr with
// what to do next. It returns the process's exit code: 0 ok, 1 error, 2
// usage.
func execute(ctx context.Context, root *cobra.Command, getenv func(string) string) int {
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	w := root.ErrOrStderr()
	msg, hint, code := describeError(err)
	if code == 2 && cmd != nil {
		hint = strings.TrimSpace(hint + "\nSee '" + cmd.CommandPath() + " --help'.")
	}
	prefix := "Error:"
	if isTerminal(w) && colorAllowed(getenv) {
		prefix = paint(true, red, prefix)
	}
	fmt.Fprintln(w, prefix, msg)
	if hint != "" {
		fmt.Fprintln(w, hint)
	}
	return code
}

// usageError is a command line that cannot be run as given (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// cliError is an error with the next step for the person at the terminal.
type cliError struct {
	msg, hint string
}

func (e *cliError) Error() string { return e.msg }

// failure is an error whose message the command already printed (such as
// a failed release's summary); execute prints it again on stderr, where
// scripts look for it.
type failure struct{ msg string }

func (e *failure) Error() string { return e.msg }

// describeError turns err into a message, a hint and an exit code.
func describeError(err error) (msg, hint string, code int) {
	var ue usageError
	var ce *cliError
	var se *slipway.Error
	var ne *url.Error
	switch {
	case errors.As(err, &ue):
		return ue.Error(), "", 2
	case strings.HasPrefix(err.Error(), "unknown command "):
		return err.Error(), "", 2
	case errors.As(err, &ce):
		return ce.msg, ce.hint, 1
	case errors.As(err, &se):
		switch se.Code {
		case slipway.EUnauthorized:
			return se.Message, "Log in again with 'slipway login' (or set SLIPWAY_TOKEN to a valid token).", 1
		case slipway.EForbidden:
			return se.Message, "Your token is not allowed to do this; ask whoever runs the server.", 1
		}
		return se.Message, "", 1
	case errors.Is(err, context.Canceled):
		return "Interrupted.", "", 1
	case errors.As(err, &ne):
		return err.Error(), "Is the server running? Check the API URL with 'slipway login --api URL' or SLIPWAY_API_URL.", 1
	}
	return err.Error(), "", 1
}

// run is one invocation of a command: its streams, output mode and flags.
type run struct {
	*cli
	cmd       *cobra.Command
	ctx       context.Context
	out, errw io.Writer
	// json is --json: print the API's objects, nothing else, on stdout.
	json bool
	// tty is whether stdout is a terminal: progress bars and colour.
	tty   bool
	color bool
}

// runE adapts fn to a cobra RunE with a *run for the invocation.
func (cl *cli) runE(fn func(r *run, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		r := &run{cli: cl, cmd: cmd, ctx: cmd.Context(), out: cmd.OutOrStdout(), errw: cmd.ErrOrStderr()}
		if r.ctx == nil {
			r.ctx = context.Background()
		}
		r.json, _ = cmd.Flags().GetBool("json")
		r.tty = isTerminal(r.out)
		r.color = r.tty && colorAllowed(cl.env.Getenv)
		return fn(r, args)
	}
}

// withJSON adds --json to cmd.
func withJSON(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().Bool("json", false, "print JSON for scripts instead of text")
	return cmd
}

// withApp adds -a/--app to cmd.
func withApp(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().StringP("app", "a", "", "app name or key such as hello-default (default $SLIPWAY_APP)")
	return cmd
}

// args wraps a cobra argument check so that its error is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// app returns the -a flag, else $SLIPWAY_APP.
func (r *run) app() (string, error) {
	if a, _ := r.cmd.Flags().GetString("app"); a != "" {
		return a, nil
	}
	if a := r.env.Getenv("SLIPWAY_APP"); a != "" {
		return a, nil
	}
	return "", usagef("no app given: add -a APP or set SLIPWAY_APP")
}

// appOr is the app from a positional argument if there is one, else app().
func (r *run) appOr(args []string) (string, error) {
	flag, _ := r.cmd.Flags().GetString("app")
	if len(args) > 0 {
		if flag != "" && flag != args[0] {
			return "", usagef("the app is given twice, as %s and -a %s", args[0], flag)
		}
		return args[0], nil
	}
	return r.app()
}

// newest reads the --all and --num flags and returns the newest n items
// (one page) or, with --all, every item newest first; more says whether
// older items were left out.
func newest[T any](r *run, all func() ([]T, error), page func(n int) ([]T, string, error)) (items []T, n int, more bool, err error) {
	everything, _ := r.cmd.Flags().GetBool("all")
	n, _ = r.cmd.Flags().GetInt("num")
	if n < 1 || n > 1000 {
		return nil, n, false, usagef("--num must be between 1 and 1000")
	}
	if everything {
		if items, err = all(); err != nil {
			return nil, n, false, err
		}
		slices.Reverse(items)
		return items, n, false, nil
	}
	items, next, err := page(n)
	return items, n, next != "", err
}

// appClient is app() and api() together, as most commands need both.
func (r *run) appClient() (string, *client.Client, error) {
	app, err := r.app()
	if err != nil {
		return "", nil, err
	}
	c, err := r.api()
	return app, c, err
}

// api returns a client for the logged-in server.
func (r *run) api() (*client.Client, error) {
	creds, _, err := r.credentials()
	if err != nil {
		return nil, err
	}
	if creds.APIURL == "" || creds.Token == "" {
		return nil, &cliError{msg: "You are not logged in.", hint: "Run 'slipway login' (or set SLIPWAY_API_URL and SLIPWAY_TOKEN)."}
	}
	c := client.New(creds.APIURL, creds.Token)
	c.UserAgent = "slipway-cli"
	return c, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// colorAllowed honours NO_COLOR (https://no-color.org) and TERM=dumb.
func colorAllowed(getenv func(string) string) bool {
	return getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}
