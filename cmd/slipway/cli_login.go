package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// defaultAPIURL is where `slipway serve` listens unless told otherwise.
const defaultAPIURL = "http://127.0.0.1:5000"

// credentials are what login saves: the API's URL and a token for it.
type credentials struct {
	APIURL string `json:"api_url"`
	Token  string `json:"token"`
}

// credentialsPath is $SLIPWAY_CONFIG_DIR/credentials.json, else
// credentials.json in the slipway folder of the user's config dir.
func (cl *cli) credentialsPath() (string, error) {
	if d := cl.env.Getenv("SLIPWAY_CONFIG_DIR"); d != "" {
		return filepath.Join(d, "credentials.json"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", &cliError{msg: "Cannot find your config folder: " + err.Error(), hint: "Set SLIPWAY_CONFIG_DIR to a folder for Slipway's credentials."}
	}
	return filepath.Join(d, "slipway", "credentials.json"), nil
}

// savedCredentials reads the credentials file; a missing file is no
// credentials and no error.
func (cl *cli) savedCredentials() (credentials, string, error) {
	var c credentials
	path, err := cl.credentialsPath()
	if err != nil {
		return c, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return c, path, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return c, path, &cliError{msg: fmt.Sprintf("%s is readable by others (mode %v).", path, fi.Mode().Perm()), hint: "Run: chmod 600 " + path}
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, path, &cliError{msg: fmt.Sprintf("%s is not valid JSON: %v.", path, err), hint: "Run 'slipway login' to write it again."}
	}
	return c, path, nil
}

// credentials are the saved ones with SLIPWAY_API_URL and SLIPWAY_TOKEN
// taking precedence.
func (cl *cli) credentials() (credentials, string, error) {
	c, path, err := cl.savedCredentials()
	if err != nil {
		return c, path, err
	}
	if v := cl.env.Getenv("SLIPWAY_API_URL"); v != "" {
		c.APIURL = v
	}
	if v := cl.env.Getenv("SLIPWAY_TOKEN"); v != "" {
		c.Token = v
	}
	return c, path, nil
}

// saveCredentials writes c with mode 0600 in a folder with mode 0700, by
// renaming a temporary file so that a crash never leaves half a file.
func saveCredentials(path string, c credentials) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func (cl *cli) loginCmd() *cobra.Command {
	var apiURL, token string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to a Slipway server and save its URL and token",
		Long: `Log in to a Slipway server: check the token against the API and save the
URL and token in credentials.json (mode 0600) in the slipway folder of your
config dir ($SLIPWAY_CONFIG_DIR overrides the folder). What is not given with
--api/--token or SLIPWAY_API_URL/SLIPWAY_TOKEN is asked for. The token is
the one 'slipway serve' printed when it first started (also in its data dir,
file "token").`,
		Example: `  slipway login
  slipway login --api http://127.0.0.1:5000 --token slw_…
  SLIPWAY_TOKEN=slw_… slipway login --api https://slipway.example.com`,
		Args: args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			// Unreadable saved credentials are about to be replaced.
			saved, path, err := r.savedCredentials()
			if path == "" {
				return err
			}
			in := bufio.NewReader(r.env.Stdin)
			if apiURL == "" {
				apiURL = r.env.Getenv("SLIPWAY_API_URL")
			}
			if apiURL == "" {
				def := saved.APIURL
				if def == "" {
					def = defaultAPIURL
				}
				fmt.Fprintf(r.errw, "API URL [%s]: ", def)
				line, _ := in.ReadString('\n')
				if apiURL = strings.TrimSpace(line); apiURL == "" {
					apiURL = def
				}
			}
			if !strings.HasPrefix(apiURL, "http://") && !strings.HasPrefix(apiURL, "https://") {
				return usagef("the API URL %q must start with http:// or https://", apiURL)
			}
			if token == "" {
				token = r.env.Getenv("SLIPWAY_TOKEN")
			}
			if token == "" {
				fmt.Fprint(r.errw, "Token: ")
				if f, ok := r.env.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					b, err := term.ReadPassword(int(f.Fd()))
					fmt.Fprintln(r.errw)
					if err != nil {
						return err
					}
					token = strings.TrimSpace(string(b))
				} else {
					line, _ := in.ReadString('\n')
					token = strings.TrimSpace(line)
				}
			}
			if token == "" {
				return usagef("no token given: pass --token, set SLIPWAY_TOKEN or type it when asked")
			}
			c := client.New(apiURL, token)
			c.UserAgent = "slipway-cli"
			if _, err := c.Apps(r.ctx); err != nil {
				if slipway.ErrorCode(err) == slipway.EUnauthorized {
					return &cliError{msg: fmt.Sprintf("The API at %s refused the token.", apiURL),
						hint: "Check it: 'slipway serve' prints it when it first starts, and keeps it in the file \"token\" of its data dir. Then run 'slipway login' again."}
				}
				return err
			}
			creds := credentials{APIURL: c.BaseURL, Token: token}
			if err := saveCredentials(path, creds); err != nil {
				return &cliError{msg: "Could not save the credentials: " + err.Error(), hint: "Set SLIPWAY_CONFIG_DIR to a folder you can write to."}
			}
			if r.json {
				return r.printJSON(map[string]string{"api_url": creds.APIURL, "credentials": path})
			}
			r.printf("Logged in to %s. Credentials saved in %s.\n", r.paint(bold, creds.APIURL), path)
			return nil
		}),
	}
	cmd.Flags().StringVar(&apiURL, "api", "", "URL of the Slipway API (default $SLIPWAY_API_URL, else asked)")
	cmd.Flags().StringVar(&token, "token", "", "API token (default $SLIPWAY_TOKEN, else asked without echo)")
	return withJSON(cmd)
}

func (cl *cli) logoutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "logout",
		Short:   "Forget the saved API URL and token",
		Example: `  slipway logout`,
		Args:    args(cobra.NoArgs),
		RunE: cl.runE(func(r *run, _ []string) error {
			path, err := r.credentialsPath()
			if err != nil {
				return err
			}
			err = os.Remove(path)
			removed := err == nil
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if r.json {
				return r.printJSON(map[string]any{"logged_out": removed, "credentials": path})
			}
			if removed {
				r.printf("Logged out: removed %s.\n", path)
			} else {
				r.printf("Not logged in: there was no %s.\n", path)
			}
			if r.env.Getenv("SLIPWAY_TOKEN") != "" {
				fmt.Fprintln(r.errw, "Note: SLIPWAY_TOKEN is still set in your environment; commands keep using it.")
			}
			return nil
		}),
	}
	return withJSON(cmd)
}
