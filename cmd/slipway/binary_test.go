package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipway/slipway/client"
)

// binaryRun is the built slipway binary running as a child process, with
// its combined output collected line by line.
type binaryRun struct {
	t    *testing.T
	cmd  *exec.Cmd
	done chan struct{}
	code int

	mu    sync.Mutex
	lines []string
}

// startBinary runs the built slipway binary with args and exactly env
// (plus PATH and HOME, and none of the test's own SLIPWAY_* variables).
func startBinary(t *testing.T, env []string, args ...string) *binaryRun {
	t.Helper()
	cmd := exec.Command(slipwayBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b := &binaryRun{t: t, cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			b.mu.Lock()
			b.lines = append(b.lines, sc.Text())
			b.mu.Unlock()
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			b.code = ee.ExitCode()
		}
		close(b.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-b.done
	})
	return b
}

func (b *binaryRun) output() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// waitOutput waits until the output matches re and returns the submatches.
func (b *binaryRun) waitOutput(re *regexp.Regexp) []string {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := re.FindStringSubmatch(b.output()); m != nil {
			return m
		}
		select {
		case <-b.done:
			if m := re.FindStringSubmatch(b.output()); m != nil {
				return m
			}
			b.t.Fatalf("slipway exited (code %d) without printing %s:\n%s", b.code, re, b.output())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("slipway printed no %s within 30s:\n%s", re, b.output())
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (b *binaryRun) wait() int {
	b.t.Helper()
	select {
	case <-b.done:
		return b.code
	case <-time.After(30 * time.Second):
		b.t.Fatalf("slipway did not exit within 30s:\n%s", b.output())
		return -1
	}
}

// stop sends SIGTERM and returns the exit code.
func (b *binaryRun) stop() int {
	b.t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	return b.wait()
}

// runBinary runs the binary to its end and returns its exit code and
// output.
func runBinary(t *testing.T, env []string, args ...string) (int, string) {
	t.Helper()
	b := startBinary(t, env, args...)
	code := b.wait()
	return code, b.output()
}

var (
	apiLine   = regexp.MustCompile(`Slipway API on (http://[0-9.:]+), router on http://[0-9.:]+ \(apps at http://<name>-<space>\.([^:]+):`)
	tokenLine = regexp.MustCompile(`export SLIPWAY_TOKEN=(\S+)`)
	dataLine  = regexp.MustCompile(`Data in (\S+), database`)
)

// TestBinary_ServeAndCLI builds the slipway binary and drives it as a
// user does: `serve` from flags and from their SLIPWAY_* environment
// twins, the admin token printed on the first start only, `serve
// --migrate-only`, the CLI against the server, and the exit codes of a
// command line that cannot run.
func TestBinary_ServeAndCLI(t *testing.T) {
	t.Parallel()
	base := []string{"serve", "--listen", "127.0.0.1:0", "--router-listen", "127.0.0.1:0", "--dyno-isolation", "off"}

	t.Run("first start prints the token, the next does not", func(t *testing.T) {
		t.Parallel()
		data := filepath.Join(t.TempDir(), "data")
		s := startBinary(t, nil, append(base, "--data-dir", data)...)
		api := s.waitOutput(apiLine)[1]
		token := s.waitOutput(tokenLine)[1]
		saved, err := os.ReadFile(filepath.Join(data, "token"))
		if err != nil || strings.TrimSpace(string(saved)) != token {
			t.Fatalf("token file = %q, %v; printed %q", saved, err, token)
		}
		if _, err := client.New(api, token).Apps(context.Background()); err != nil {
			t.Fatalf("the printed token: %v", err)
		}
		if code := s.stop(); code != 0 {
			t.Fatalf("SIGTERM: exit %d\n%s", code, s.output())
		}
		again := startBinary(t, nil, append(base, "--data-dir", data)...)
		api = again.waitOutput(apiLine)[1]
		if _, err := client.New(api, token).Apps(context.Background()); err != nil {
			t.Fatalf("the saved token after a restart: %v", err)
		}
		if code := again.stop(); code != 0 || strings.Contains(again.output(), token) {
			t.Fatalf("second start: exit %d, and it must not print the token again:\n%s", code, again.output())
		}
	})

	t.Run("environment twins, and flags win over them", func(t *testing.T) {
		t.Parallel()
		data := filepath.Join(t.TempDir(), "from-env")
		env := []string{
			"SLIPWAY_DATA_DIR=" + data, "SLIPWAY_LISTEN=127.0.0.1:0", "SLIPWAY_ROUTER_LISTEN=127.0.0.1:0",
			"SLIPWAY_DYNO_ISOLATION=off", "SLIPWAY_TOKEN=env-token", "SLIPWAY_BASE_DOMAIN=env.test",
		}
		s := startBinary(t, env, "serve")
		m := s.waitOutput(apiLine)
		if m[2] != "env.test" {
			t.Errorf("SLIPWAY_BASE_DOMAIN=env.test: apps at %q", m[2])
		}
		if got := s.waitOutput(dataLine)[1]; got != data {
			t.Errorf("SLIPWAY_DATA_DIR=%s: data in %s", data, got)
		}
		// The CLI reads SLIPWAY_API_URL and SLIPWAY_TOKEN.
		cli := []string{"SLIPWAY_API_URL=" + m[1], "SLIPWAY_TOKEN=env-token", "SLIPWAY_CONFIG_DIR=" + t.TempDir()}
		if code, out := runBinary(t, cli, "apps:create", "twin"); code != 0 {
			t.Fatalf("apps:create: exit %d\n%s", code, out)
		}
		if code, out := runBinary(t, cli, "apps", "--json"); code != 0 || !strings.Contains(out, `"twin"`) {
			t.Fatalf("apps --json: exit %d\n%s", code, out)
		}
		if code, out := runBinary(t, []string{cli[0], "SLIPWAY_TOKEN=wrong", cli[2]}, "apps"); code != 1 || !strings.Contains(out, "Log in again") {
			t.Fatalf("apps with a wrong token: exit %d, want 1\n%s", code, out)
		}
		if strings.Contains(s.output(), "export SLIPWAY_TOKEN") {
			t.Errorf("a server given SLIPWAY_TOKEN printed a generated token:\n%s", s.output())
		}
		if code := s.stop(); code != 0 {
			t.Fatalf("SIGTERM: exit %d\n%s", code, s.output())
		}

		flagged := startBinary(t, env, "serve", "--base-domain", "flag.test")
		if got := flagged.waitOutput(apiLine)[2]; got != "flag.test" {
			t.Errorf("--base-domain flag.test with SLIPWAY_BASE_DOMAIN=env.test: apps at %q", got)
		}
		flagged.stop()
	})

	t.Run("migrate-only", func(t *testing.T) {
		t.Parallel()
		data := filepath.Join(t.TempDir(), "data")
		code, out := runBinary(t, nil, "serve", "--migrate-only", "--data-dir", data)
		if code != 0 || !strings.Contains(out, "Migrations applied to "+filepath.Join(data, "slipway.db")) || strings.Contains(out, "Slipway API on") {
			t.Fatalf("serve --migrate-only: exit %d\n%s", code, out)
		}
		if _, err := os.Stat(filepath.Join(data, "slipway.db")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(data, "token")); err == nil {
			t.Error("--migrate-only made an admin token")
		}
		// A database that cannot be reached is an error, exit 1.
		code, out = runBinary(t, nil, "serve", "--migrate-only", "--database", "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=5")
		if code != 1 || !strings.Contains(out, "Error:") {
			t.Fatalf("serve --migrate-only with no database: exit %d, want 1\n%s", code, out)
		}
	})

	t.Run("exit codes", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name string
			env  []string
			args []string
			code int
			want string
		}{
			{"help", nil, []string{"serve", "--help"}, 0, "SLIPWAY_LISTEN"},
			{"unknown flag", nil, []string{"serve", "--no-such-flag"}, 2, "unknown flag: --no-such-flag"},
			{"flag value that does not parse", nil, []string{"serve", "--surge", "many"}, 2, "--surge"},
			{"an argument", nil, []string{"serve", "10.0.0.0/8"}, 2, "--allow-private-fetch=10.0.0.0/8"},
			{"environment twin that does not parse", []string{"SLIPWAY_HEALTHY_DEADLINE=soon"}, []string{"serve", "--migrate-only", "--data-dir", t.TempDir()}, 1, `SLIPWAY_HEALTHY_DEADLINE="soon"`},
			{"unknown command", nil, []string{"no-such-command"}, 2, "unknown command"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				code, out := runBinary(t, tt.env, tt.args...)
				if code != tt.code || !strings.Contains(out, tt.want) {
					t.Fatalf("slipway %s: exit %d, want %d and %q\n%s", strings.Join(tt.args, " "), code, tt.code, tt.want, out)
				}
			})
		}
	})
}
