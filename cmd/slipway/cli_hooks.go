package main

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// createdHook is hooks:create's --json output: the hook and, when the CLI
// made it up, its secret, which the API never shows again.
type createdHook struct {
	client.Hook
	Secret string `json:"secret,omitempty"`
}

func (cl *cli) hooksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "hooks",
		Short:   "List an app's webhooks",
		Example: `  slipway hooks -a hello`,
		Args:    args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			app, c, err := r.appClient()
			if err != nil {
				return err
			}
			hooks, err := c.Hooks(r.ctx, app)
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(nonNil(hooks))
			}
			if len(hooks) == 0 {
				r.printf("%s has no webhooks. Add one with: slipway hooks:create URL --events release,released -a %s\n", app, app)
				return nil
			}
			rows := make([][]string, 0, len(hooks))
			for _, h := range hooks {
				active := "no"
				if h.Active {
					active = "yes"
				}
				rows = append(rows, []string{h.ID, h.URL, strings.Join(h.Events, ","), active})
			}
			r.table([]string{"ID", "URL", "EVENTS", "ACTIVE"}, rows, nil)
			return nil
		}),
	}
	return withJSON(withApp(cmd))
}

func (cl *cli) hooksCreateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hooks:create URL --events EVENT,…",
		Short: "Add a webhook that is POSTed the app's events",
		Long: `Add a webhook: Slipway POSTs JSON to URL on each of the events, signed with
the secret (x-akkeris-signature: sha1=HMAC, x-slipway-signature-256:
sha256=HMAC). Events: ` + strings.Join(slipway.HookEvents(), ", ") + `.
Without --secret a random one is made and printed once.`,
		Example: `  slipway hooks:create https://ci.example.com/slipway --events release,released,release_failed -a hello
  slipway hooks:create https://chat.example.com/hook --events released --secret s3cret --inactive -a hello`,
		Args: args(cobra.ExactArgs(1)),
		RunE: cl.runE(func(r *run, args []string) error {
			app, err := r.app()
			if err != nil {
				return err
			}
			f := r.cmd.Flags()
			events, _ := f.GetStringSlice("events")
			secret, _ := f.GetString("secret")
			inactive, _ := f.GetBool("inactive")
			if len(events) == 0 {
				return usagef("give the events with --events, among: %s", strings.Join(slipway.HookEvents(), ", "))
			}
			c, err := r.api()
			if err != nil {
				return err
			}
			made := ""
			if secret == "" {
				var b [20]byte
				rand.Read(b[:])
				secret = hex.EncodeToString(b[:])
				made = secret
			}
			active := !inactive
			h, err := c.CreateHook(r.ctx, app, client.NewHook{URL: &args[0], Events: &events, Secret: &secret, Active: &active})
			if err != nil {
				return err
			}
			if r.json {
				return r.printJSON(createdHook{Hook: *h, Secret: made})
			}
			r.printf("Added webhook %s to %s: %s on %s.\n", h.ID, r.paint(bold, app), h.URL, strings.Join(h.Events, ", "))
			if made != "" {
				r.printf("Its secret, shown only now: %s\n", made)
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringSlice("events", nil, "events to send, comma-separated")
	f.String("secret", "", "secret that signs each delivery (default: a random one, printed once)")
	f.Bool("inactive", false, "create the hook switched off")
	return withJSON(withApp(cmd))
}
