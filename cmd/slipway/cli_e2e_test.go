package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/internal/testslug"
)

// cliHarness runs the CLI in-process, as `slipway ARGS…` would, against
// one test server, with its own config dir and environment.
type cliHarness struct {
	t   *testing.T
	ts  *testServer
	env map[string]string
}

func newCLIHarness(t *testing.T, ts *testServer) *cliHarness {
	return &cliHarness{t: t, ts: ts, env: map[string]string{"SLIPWAY_CONFIG_DIR": t.TempDir()}}
}

func (h *cliHarness) getenv(k string) string { return h.env[k] }

func (h *cliHarness) cliEnv(stdin string) cliEnv {
	return cliEnv{Getenv: h.getenv, Stdin: strings.NewReader(stdin), Now: time.Now, Poll: 50 * time.Millisecond}
}

type cliResult struct {
	stdout, stderr string
	code           int
}

// runIn runs the CLI with stdin and returns what it printed and its exit code.
func (h *cliHarness) runIn(stdin string, args ...string) cliResult {
	h.t.Helper()
	root := newCLIRoot(h.cliEnv(stdin))
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := execute(ctx, root, h.getenv)
	h.t.Logf("$ slipway %s  → exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
	return cliResult{out.String(), errb.String(), code}
}

func (h *cliHarness) run(args ...string) cliResult {
	h.t.Helper()
	return h.runIn("", args...)
}

// ok runs the CLI, fails the test unless it exits 0, and returns stdout.
func (h *cliHarness) ok(args ...string) string {
	h.t.Helper()
	res := h.run(args...)
	if res.code != 0 {
		h.t.Fatalf("slipway %s: exit %d\n%s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res.stdout
}

// fails runs the CLI and fails the test unless it exits with code and
// stderr holds every one of want.
func (h *cliHarness) fails(code int, want []string, args ...string) cliResult {
	h.t.Helper()
	res := h.run(args...)
	if res.code != code {
		h.t.Fatalf("slipway %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, code, res.stdout, res.stderr)
	}
	for _, w := range want {
		if !strings.Contains(res.stderr, w) {
			h.t.Fatalf("slipway %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, res.stderr)
		}
	}
	return res
}

// jsonOut runs the CLI with --json, expecting exit code 0, and decodes stdout into v.
func (h *cliHarness) jsonOut(v any, args ...string) {
	h.t.Helper()
	out := h.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		h.t.Fatalf("slipway %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// runTTY runs the CLI with stdout and stderr on a pseudo-terminal of
// 120x40 and returns everything the terminal received.
func (h *cliHarness) runTTY(args ...string) (string, int) {
	h.t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		h.t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		h.t.Fatal(err)
	}
	var screen bytes.Buffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&screen, ptmx) // ends with EIO once the terminal side closes
		close(copied)
	}()
	root := newCLIRoot(h.cliEnv(""))
	root.SetOut(tty)
	root.SetErr(tty)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := execute(ctx, root, h.getenv)
	tty.Close()
	<-copied
	h.t.Logf("$ slipway %s (on a terminal) → exit %d\n%q", strings.Join(args, " "), code, screen.String())
	return screen.String(), code
}

// appDir writes the test app and a Procfile into a fresh folder, as a
// developer's checkout would hold them.
func appDir(t *testing.T, procfile string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	bin := testslug.TestAppBinary(t)
	// A hard link, not a copy: writing an executable while other tests
	// fork can make their exec fail with "text file busy".
	if err := os.Link(bin, filepath.Join(dir, "testapp")); err != nil {
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "testapp"), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"Procfile": procfile}
	for k, v := range extra {
		files[k] = v
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCLI runs the CLI's commands against one real server: logging in,
// apps, deploys that succeed and fail, releases, rollback, scaling and
// config, on and off a terminal, pipelines and hooks. The subtests share
// the server and run in order: pipelines promotes the release that the
// terminal deploy made.
func TestCLI(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	h := newCLIHarness(t, ts)
	h.ok("login", "--api", ts.APIURL, "--token", "test-token")

	t.Run("login", func(t *testing.T) {
		h := newCLIHarness(t, ts)
		h.fails(1, []string{"not logged in", "slipway login"}, "apps")
		h.fails(1, []string{"refused the token", "slipway login"}, "login", "--api", ts.APIURL, "--token", "wrong")
		h.fails(2, []string{"must start with http"}, "login", "--api", "127.0.0.1:1", "--token", "x")
		// Asked on stdin when not given.
		res := h.runIn(ts.APIURL+"\ntest-token\n", "login")
		if res.code != 0 || !strings.Contains(res.stdout, "Logged in to "+ts.APIURL) || !strings.Contains(res.stderr, "Token:") {
			t.Fatalf("login from stdin: %+v", res)
		}
		h.ok("login", "--api", ts.APIURL, "--token", "test-token")
		path := filepath.Join(h.env["SLIPWAY_CONFIG_DIR"], "credentials.json")
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("credentials file: %v, %v", fi, err)
		}
		var creds credentials
		b, _ := os.ReadFile(path)
		if json.Unmarshal(b, &creds) != nil || creds.APIURL != ts.APIURL || creds.Token != "test-token" {
			t.Fatalf("credentials = %s", b)
		}
		// The environment overrides the saved token: a wrong one is a 401
		// that says to log in again.
		h.env["SLIPWAY_TOKEN"] = "wrong"
		h.fails(1, []string{"token is not valid", "Log in again"}, "apps")
		delete(h.env, "SLIPWAY_TOKEN")
	})

	t.Run("workflow", func(t *testing.T) {
		h.t = t
		h.ok("apps:create", "hello")
		h.fails(1, []string{"App name \"Hello\" is invalid"}, "apps:create", "Hello")
		h.fails(1, nil, "apps:create", "hello")
		var apps []client.App
		h.jsonOut(&apps, "apps")
		if len(apps) != 1 || apps[0].Key != "hello-default" || apps[0].Name != "hello-default" || apps[0].SimpleName != "hello" {
			t.Fatalf("apps --json = %+v", apps)
		}
		// apps:info heads with the key and shows the bare name apart.
		appInfo := h.ok("apps:info", "hello")
		for _, re := range []string{`(?m)^.*hello-default`, `(?m)^\s*Name:?\s+hello\s*$`, `(?m)^\s*Stack:?\s+local\s*$`} {
			if !regexp.MustCompile(re).MatchString(appInfo) {
				t.Fatalf("apps:info lacks %s:\n%s", re, appInfo)
			}
		}

		// A folder deploy, without a terminal: plain lines, no escapes.
		dir := appDir(t, "web: TAG=one ./testapp\n", map[string]string{
			".slipwayignore": "*.log\n/secret/\n", "debug.log": "noise", "secret/key": "k", "notes/keep.txt": "kept",
		})
		out := h.ok("deploy", dir, "-a", "hello")
		for _, want := range []string{"Uploading folder", "3 files", "sha256:", "Process types: web", "Releasing v1 to hello", "web.1", "Release v1 succeeded", "Released v1 to hello", "(web 1/1)"} {
			if !strings.Contains(out, want) {
				t.Fatalf("deploy output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "\x1b[") {
			t.Fatalf("escape codes without a terminal:\n%q", out)
		}
		if code, body := ts.get(t, "hello-default", "/env/TAG"); code != 200 || body != "one" {
			t.Fatalf("router after deploy: %d %q", code, body)
		}
		var builds []client.Build
		h.jsonOut(&builds, "builds", "-a", "hello")
		if len(builds) != 1 || !strings.Contains(out, builds[0].SourceBlob.Checksum) || builds[0].Status != "succeeded" {
			t.Fatalf("builds = %+v", builds)
		}
		var info buildInfo
		h.jsonOut(&info, "builds:info", "-a", "hello")
		if info.ID != builds[0].ID || len(info.Lines) == 0 {
			t.Fatalf("builds:info = %+v", info)
		}

		// config:set makes a release.
		out = h.ok("config:set", "GREETING=hi there", "-a", "hello", "--wait")
		if !strings.Contains(out, "Set GREETING on hello: release v2 rolls it out.") || !strings.Contains(out, "Released v2") {
			t.Fatalf("config:set:\n%s", out)
		}
		var vars map[string]string
		h.jsonOut(&vars, "config", "-a", "hello")
		if vars["GREETING"] != "hi there" {
			t.Fatalf("config = %v", vars)
		}
		if got := h.ok("config:get", "GREETING", "-a", "hello"); got != "hi there\n" {
			t.Fatalf("config:get = %q", got)
		}
		h.fails(1, []string{"reserved"}, "config:set", "PORT=1", "-a", "hello")

		// A release that crashes fails: exit 1 and the reason.
		bad := appDir(t, "web: ./testapp --crash\n", nil)
		res := h.fails(1, []string{"Release v3 of hello failed:", "crashing at start", "releases:info v3"}, "deploy", bad, "-a", "hello")
		if !strings.Contains(res.stdout, "release_failed") {
			t.Fatalf("failed deploy did not show the rollout:\n%s", res.stdout)
		}

		table := h.ok("releases", "-a", "hello")
		for _, re := range []string{
			`(?m)^VERSION\s+STATUS\s+STATE\s+CURRENT\s+DESCRIPTION\s+AGE$`,
			`(?m)^v3\s+failed\s+success\s+Deploy \S+\s+(just now|\ds ago)$`,
			`(?m)^v2\s+succeeded\s+success\s+\*\s+Set GREETING config vars`,
			`(?m)^v1\s+succeeded\s+success\s+Deploy `,
		} {
			if !regexp.MustCompile(re).MatchString(table) {
				t.Fatalf("releases table does not match %s:\n%s", re, table)
			}
		}
		if strings.Index(table, "v3") > strings.Index(table, "v1") {
			t.Fatalf("releases not newest first:\n%s", table)
		}

		// Rollback goes to the succeeded release before the current one.
		out = h.ok("releases:rollback", "-a", "hello")
		if !strings.Contains(out, "Rolling back hello to v1") || !strings.Contains(out, "Released v4") {
			t.Fatalf("rollback:\n%s", out)
		}
		var rels []client.Release
		h.jsonOut(&rels, "releases", "-a", "hello", "-n", "2")
		if len(rels) != 2 || rels[0].Version != 4 || rels[1].Version != 3 || !rels[0].Current || rels[0].Trigger != "rollback" || rels[0].Description != "Rollback to v1" {
			t.Fatalf("releases --json -n 2 = %+v", rels)
		}
		h.jsonOut(&rels, "releases", "-a", "hello", "--all")
		if len(rels) != 4 || rels[3].Version != 1 {
			t.Fatalf("releases --all = %+v", rels)
		}
		if _, body := ts.get(t, "hello-default", "/env/TAG"); body != "one" {
			t.Fatalf("router after rollback: %q", body)
		}
		var rel client.Release
		h.jsonOut(&rel, "releases:info", "v3", "-a", "hello")
		if rel.Status != "failed" || !strings.Contains(rel.Error, "crash") {
			t.Fatalf("releases:info v3 = %+v", rel)
		}
		h.jsonOut(&rel, "releases:info", "previous", "-a", "hello")
		if rel.Version != 2 {
			t.Fatalf("releases:info previous = v%d, want v2", rel.Version)
		}
		if out := h.ok("releases:info", "3", "-a", "hello"); !strings.Contains(out, "Rollout log") || !strings.Contains(out, "release_failed") {
			t.Fatalf("releases:info text:\n%s", out)
		}
		h.fails(1, []string{"Release v3 of hello failed"}, "releases:wait", "v3", "-a", "hello")
		h.ok("releases:wait", "v4", "-a", "hello")
		h.fails(1, []string{"not found"}, "releases:info", "v99", "-a", "hello")
		var sts client.ReleaseStatuses
		h.jsonOut(&sts, "releases:statuses", "-a", "hello")
		if sts.State != "success" || sts.Release.Version != 4 || sts.Statuses == nil {
			t.Fatalf("releases:statuses = %+v", sts)
		}

		// Scaling, with the app from the environment.
		h.env["SLIPWAY_APP"] = "hello"
		defer delete(h.env, "SLIPWAY_APP")
		var fs []client.Formation
		h.jsonOut(&fs, "ps:scale", "web=2")
		if len(fs) != 1 || fs[0].Type != "web" || fs[0].Quantity != 2 {
			t.Fatalf("ps:scale = %+v", fs)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			var dynos []client.Dyno
			h.jsonOut(&dynos, "ps")
			if onRelease(dynos, "web", rels[0].ID) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("dynos after scaling: %+v", dynos)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if out := h.ok("ps"); !regexp.MustCompile(`(?m)^web\.2\s+running\s+yes\s+v4`).MatchString(out) {
			t.Fatalf("ps:\n%s", out)
		}
		h.ok("ps:scale", "web=1")

		// Rolling back to v1 took its config back too.
		vars = nil
		h.jsonOut(&vars, "config")
		if _, ok := vars["GREETING"]; ok {
			t.Fatalf("config after rollback = %v", vars)
		}
		h.ok("config:set", "A=1", "B=2")
		var unset configResult
		h.jsonOut(&unset, "config:unset", "A", "--wait")
		if _, ok := unset.Config["A"]; ok || unset.Config["B"] != "2" || unset.Release == nil || unset.Release.Version != 6 || unset.Release.Status != "succeeded" {
			t.Fatalf("config:unset = %+v", unset)
		}

		// A build released again by id, and a failed release's JSON.
		h.jsonOut(&rel, "releases:create", builds[0].ID, "-d", "Again")
		if rel.Version != 7 || rel.Status != "succeeded" || rel.Description != "Again" || rel.Slug.ID != builds[0].ID {
			t.Fatalf("releases:create = %+v", rel)
		}
		res = h.run("releases:wait", "v3", "--json")
		if err := json.Unmarshal([]byte(res.stdout), &rel); err != nil || res.code != 1 || rel.Status != "failed" || !strings.Contains(res.stderr, "failed") {
			t.Fatalf("releases:wait v3 --json: %+v (%v)", res, err)
		}
		if out := h.ok("ps:restart"); !strings.Contains(out, "Restarting every dyno of hello") {
			t.Fatalf("ps:restart: %s", out)
		}
		if out := h.ok("ps:restart", "web"); !strings.Contains(out, "Restarting every web dyno of hello") {
			t.Fatalf("ps:restart web: %s", out)
		}
		var one []client.Dyno
		h.jsonOut(&one, "ps")
		if len(one) == 0 {
			t.Fatal("ps: no dynos")
		}
		if out := h.ok("ps:restart", "web."+one[0].Name); !strings.Contains(out, "Restarting web."+one[0].Name+" of hello") {
			t.Fatalf("ps:restart web.%s: %s", one[0].Name, out)
		}
		h.fails(1, []string{"clock"}, "ps:restart", "clock")

		// Usage errors exit 2 and point at --help.
		h.fails(2, []string{"TYPE=QUANTITY", "slipway ps:scale --help"}, "ps:scale", "web=two")
		h.fails(2, []string{"unknown flag: --bogus"}, "releases", "--bogus")
		h.fails(2, []string{"unknown command"}, "bogus")
		h.fails(2, []string{"accepts 1 arg"}, "deploy")
		delete(h.env, "SLIPWAY_APP")
		h.fails(2, []string{"no app given", "SLIPWAY_APP"}, "releases")
		h.fails(1, []string{"not found"}, "releases", "-a", "nope")
		h.fails(1, []string{"no Procfile"}, "deploy", t.TempDir(), "-a", "hello")

		h.fails(1, []string{"--confirm hello-default"}, "apps:destroy", "hello")
		h.ok("apps:destroy", "hello", "--confirm", "hello")
		h.jsonOut(&apps, "apps")
		if len(apps) != 0 {
			t.Fatalf("apps after destroy = %+v", apps)
		}
	})

	// The same rollout with and without a terminal: two dynos replaced
	// one by one, each taking a moment to start.
	h.t = t
	h.ok("apps:create", "tty")
	h.ok("ps:scale", "web=2", "-a", "tty")
	slow := appDir(t, "web: ./testapp --start-delay=400ms\n", nil)

	t.Run("deploy without a terminal", func(t *testing.T) {
		h.t = t
		out := h.ok("deploy", slow, "-a", "tty")
		if strings.Contains(out, "\x1b[") || !strings.Contains(out, "web: 2/2 on v1") || !strings.Contains(out, "Released v1 to tty") {
			t.Fatalf("plain deploy:\n%s", out)
		}
	})

	t.Run("deploy on a terminal", func(t *testing.T) {
		h.t = t
		screen, code := h.runTTY("deploy", slow, "-a", "tty")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, screen)
		}
		// Bars redrawn in place (cursor up, erase), counting up, in colour.
		for _, want := range []string{"\x1b[1A\x1b[J", "0/2 on v2", "1/2 on v2", "2/2 on v2", "web ", "\x1b[32m✓\x1b[0m Released v2 to tty"} {
			if !strings.Contains(screen, want) {
				t.Fatalf("terminal output lacks %q:\n%q", want, screen)
			}
		}
		if !strings.Contains(screen, "[==") {
			t.Fatalf("no progress bar drawn:\n%q", screen)
		}
		h.env["NO_COLOR"] = "1"
		screen, code = h.runTTY("releases", "-a", "tty")
		delete(h.env, "NO_COLOR")
		if code != 0 || strings.Contains(screen, "\x1b[") || !strings.Contains(screen, "v2") {
			t.Fatalf("NO_COLOR on a terminal: exit %d %q", code, screen)
		}
	})

	t.Run("pipelines and hooks", func(t *testing.T) {
		h.t = t
		h.ok("apps:create", "stage")
		h.ok("pipelines:create", "shop")
		h.ok("pipelines:add", "tty", "-p", "shop", "-s", "development", "--checks", "ci/tests")
		h.ok("pipelines:add", "-a", "stage", "-p", "shop", "-s", "staging")
		var ps []client.Pipeline
		h.jsonOut(&ps, "pipelines")
		if len(ps) != 1 || ps[0].Name != "shop" {
			t.Fatalf("pipelines = %+v", ps)
		}
		if out := h.ok("pipelines:info", "shop"); !regexp.MustCompile(`(?m)^development\s+tty-default\s+ci/tests$`).MatchString(out) {
			t.Fatalf("pipelines:info:\n%s", out)
		}
		h.ok("apps:create", "lone")
		h.fails(1, []string{"not in a pipeline"}, "pipelines:promote", "-a", "lone")
		// The required check is not reported yet: 409 naming it.
		h.fails(1, []string{"ci/tests"}, "pipelines:promote", "-a", "tty")
		cur, err := ts.c.Release(bg, "tty", "v2")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.c.CreateReleaseStatus(bg, "tty", cur.ID, client.ReleaseStatus{State: "success", Name: "unit tests", Context: "ci/tests"}); err != nil {
			t.Fatal(err)
		}
		var promo promotionResult
		h.jsonOut(&promo, "pipelines:promote", "-a", "tty")
		if len(promo.Targets) != 1 || promo.Targets[0].Status != "succeeded" {
			t.Fatalf("promotion = %+v", promo)
		}
		var rels []client.Release
		h.jsonOut(&rels, "releases", "-a", "stage")
		if len(rels) != 1 || rels[0].Trigger != "promotion" || rels[0].Slug.ID != cur.Slug.ID || !rels[0].Current {
			t.Fatalf("stage releases = %+v", rels)
		}

		var hook createdHook
		h.jsonOut(&hook, "hooks:create", "http://127.0.0.1:9/hook", "--events", "release,released", "-a", "stage")
		if hook.ID == "" || len(hook.Secret) != 40 || !hook.Active || strings.Join(hook.Events, ",") != "release,released" {
			t.Fatalf("hooks:create = %+v", hook)
		}
		if out := h.ok("hooks", "-a", "stage"); !strings.Contains(out, hook.ID) || !strings.Contains(out, "release,released") {
			t.Fatalf("hooks:\n%s", out)
		}
		h.fails(2, []string{"--events"}, "hooks:create", "http://127.0.0.1:9/x", "-a", "stage")
		h.fails(1, []string{"url"}, "hooks:create", "ftp://x", "--events", "release", "-a", "stage")
	})

	t.Run("logout", func(t *testing.T) {
		h.t = t
		if out := h.ok("logout"); !strings.Contains(out, "Logged out") {
			t.Fatalf("logout: %s", out)
		}
		h.fails(1, []string{"not logged in"}, "ps", "-a", "tty")
		if out := h.ok("logout"); !strings.Contains(out, "Not logged in") {
			t.Fatalf("second logout: %s", out)
		}
	})
}

// TestCLI_ReleaseStrategy runs releases:strategy and the release actions
// against a real server: the strategy round trip through GET and PUT
// /apps/{app}/release-strategy, bad input named by its field (by the CLI,
// and by the server's 422 for a client that does not check first), and
// an action on a release that is not rolling out answered with the 409.
func TestCLI_ReleaseStrategy(t *testing.T) {
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	h := newCLIHarness(t, ts)
	h.ok("login", "--api", ts.APIURL, "--token", "test-token")
	h.ok("apps:create", "strat")

	var s slipway.Strategy
	h.jsonOut(&s, "releases:strategy", "-a", "strat")
	if s.Type != slipway.StrategyRolling || s.Gated() {
		t.Fatalf("default strategy = %+v", s)
	}
	if out := h.ok("releases:strategy", "-a", "strat"); !strings.Contains(out, "rolling: each release replaces the dynos one by one") {
		t.Fatalf("default strategy text:\n%s", out)
	}

	out := h.ok("releases:strategy", "-a", "strat", "--canary", "10,50,100", "--pause", "2m", "--checks", "ci/smoke",
		"--analysis-error-rate", "0.01", "--analysis-p99", "800ms", "--analysis-min-requests", "50")
	if !strings.Contains(out, "Set the release strategy of strat to canary") || !strings.Contains(out, "10% for 2m → 50% for 2m → 100%") {
		t.Fatalf("set canary:\n%s", out)
	}
	h.jsonOut(&s, "releases:strategy", "-a", "strat")
	want := slipway.Strategy{Type: "canary", Steps: []slipway.CanaryStep{{Weight: 10, Pause: "2m"}, {Weight: 50, Pause: "2m"}, {Weight: 100}},
		Analysis:       &slipway.Analysis{MaxErrorRate: 0.01, MaxP99Ms: 800, MinRequests: 50, Interval: slipway.Duration(15 * time.Second)},
		RequiredChecks: []string{"ci/smoke"}}
	if got, _ := json.Marshal(s); string(got) != string(must(json.Marshal(want))) {
		t.Fatalf("stored canary = %s, want %s", got, must(json.Marshal(want)))
	}

	h.ok("releases:strategy", "-a", "strat", "--set", `{"type":"blue-green","preview":true,"scale_down_delay":"5m","types":{"worker":{"type":"rolling"}}}`)
	h.jsonOut(&s, "releases:strategy", "-a", "strat")
	if s.Type != slipway.StrategyBlueGreen || !s.Preview || time.Duration(s.ScaleDownDelay) != 5*time.Minute || s.Types["worker"].Type != "rolling" {
		t.Fatalf("stored blue-green = %+v", s)
	}

	// Bad input names the field and changes nothing.
	h.fails(1, []string{"steps[1].weight", "Nothing was changed"}, "releases:strategy", "-a", "strat", "--canary", "50,10")
	h.fails(1, []string{"required_checks[0]"}, "releases:strategy", "-a", "strat", "--set", `{"type":"canary","steps":[{"weight":100}],"required_checks":["x"]}`)
	code, body := ts.raw(t, "PUT", "/apps/strat/release-strategy", "Bearer test-token", `{"type":"canary","steps":[{"weight":0}]}`)
	if code != 422 || !strings.Contains(body, "steps[0].weight") {
		t.Fatalf("PUT a zero weight: %d %s", code, body)
	}
	code, body = ts.raw(t, "PUT", "/apps/strat/release-strategy", "Bearer test-token", `{"type":"sideways"}`)
	if code != 422 || !strings.Contains(body, "type") {
		t.Fatalf("PUT an unknown type: %d %s", code, body)
	}
	h.jsonOut(&s, "releases:strategy", "-a", "strat")
	if s.Type != slipway.StrategyBlueGreen {
		t.Fatalf("a refused strategy changed the stored one: %+v", s)
	}

	// A rolling release is not steerable: the 409, and what to look at.
	h.ok("releases:strategy", "-a", "strat", "--rolling")
	h.ok("deploy", appDir(t, "web: ./testapp\n", nil), "-a", "strat")
	h.fails(1, []string{"strat has no release rolling out", "releases:strategy -a strat"}, "releases:promote", "-a", "strat")
	res := h.fails(1, []string{"slipway releases:info v1 -a strat"}, "releases:promote", "v1", "--full", "-a", "strat")
	if _, err := ts.c.PromoteRelease(bg, "strat", "v1", true); slipway.ErrorCode(err) != slipway.EConflict || !strings.Contains(res.stderr, slipway.ErrorMessage(err)) {
		t.Fatalf("promote v1: %v; the CLI printed:\n%s", err, res.stderr)
	}
	for _, action := range []string{"releases:abort", "releases:pause", "releases:resume"} {
		h.fails(1, []string{"releases:info v1"}, action, "v1", "-a", "strat")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestCLI_HelpHasExamples checks that every client command documents
// itself with an example and offers --json.
func TestCLI_HelpHasExamples(t *testing.T) {
	root := newCLIRoot(cliEnv{Getenv: func(string) string { return "" }, Stdin: strings.NewReader(""), Now: time.Now})
	for _, c := range root.Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Example == "" {
			t.Errorf("%s has no Example", c.Name())
		}
		if c.Flags().Lookup("json") == nil {
			t.Errorf("%s has no --json", c.Name())
		}
	}
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"deploy", "--help"})
	if code := execute(context.Background(), root, func(string) string { return "" }); code != 0 || !strings.Contains(out.String(), "slipway deploy . -a hello") {
		t.Fatalf("deploy --help: exit %d\n%s", code, out.String())
	}
}
