package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway"
)

func (cl *cli) logsCmd() *cobra.Command {
	var num int
	var tail bool
	var dyno string
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show an app's logs: its dynos' output and its release events",
		Long: `Show the newest lines of an app's logs, oldest first: what its dynos
printed and what its releases did, one line each as
  <time> <app>[<source>.<dyno>]: <text>
(source app for output, slipway for the runtime's notes about a dyno,
release for release events, whose dyno is the version). --dyno shows one
dyno's or process type's output only. With --tail, keep following new
lines until interrupted. --json prints each line as an object
{time, app, source, dyno, text}, one a line.`,
		Example: `  slipway logs -a hello
  slipway logs -a hello --tail --num 10
  slipway logs -a hello --dyno web.1
  slipway logs -a hello --json | jq -r 'select(.source == "app") | .text'`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			if num < 1 || num > 10000 {
				return usagef("--num must be from 1 to 10000, not %d", num)
			}
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			s, err := c.CreateLogSession(r.ctx, app, num, tail, dyno)
			var se *slipway.Error
			if errors.As(err, &se) && se.Code == slipway.ENotFound {
				return &cliError{msg: se.Message, hint: "List the apps you can see with 'slipway apps'."}
			}
			if err != nil {
				return err
			}
			emit := func(line string) { fmt.Fprintln(r.out, line) }
			if r.json {
				emit = func(line string) {
					b, _ := json.Marshal(parseLogLine(line))
					fmt.Fprintf(r.out, "%s\n", b)
				}
			}
			err = c.StreamLogs(r.ctx, s.LogplexURL, emit)
			switch {
			case errors.As(err, &se) && se.Code == slipway.ENotFound:
				return &cliError{msg: "The log session expired before it could be opened.", hint: "Run the command again; if it keeps failing, check that this machine's clock and the server's agree."}
			case err != nil && !errors.As(err, &se):
				return &cliError{msg: err.Error(), hint: "The server answers log URLs at the address you reached it on: check that it is reachable from here (for HTTPS with a certificate of your own, point SSL_CERT_FILE at it)."}
			}
			return err
		}),
	}
	cmd.Flags().IntVarP(&num, "num", "n", 100, "how many of the newest lines to show first (1 to 10000)")
	cmd.Flags().BoolVarP(&tail, "tail", "t", false, "keep following new lines until interrupted")
	cmd.Flags().StringVarP(&dyno, "dyno", "d", "", "only this dyno (web.1) or process type (web)")
	return withJSON(withApp(cmd))
}

// logLine is a log line as --json prints it, one object a line.
type logLine struct {
	Time   string `json:"time"`
	App    string `json:"app"`
	Source string `json:"source"`
	Dyno   string `json:"dyno"`
	Text   string `json:"text"`
}

var logLineFormat = regexp.MustCompile(`^(\S+) ([^\s\[]+)\[([a-z]+)\.([^\]]*)\]: (.*)$`)

// parseLogLine reads "<time> <app>[<source>.<dyno>]: <text>"; a line of
// another shape is all text.
func parseLogLine(line string) logLine {
	m := logLineFormat.FindStringSubmatch(line)
	if m == nil {
		return logLine{Text: line}
	}
	return logLine{Time: m[1], App: m[2], Source: m[3], Dyno: m[4], Text: m[5]}
}
