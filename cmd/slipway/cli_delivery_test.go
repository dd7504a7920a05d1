package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// gitCommitAll makes dir a git repository with one commit of everything
// in it, committed at when; it returns the commit's sha.
func gitCommitAll(t *testing.T, dir string, when time.Time) string {
	t.Helper()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=Dev", "-c", "user.email=dev@example.com"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE="+when.Format(time.RFC3339), "GIT_AUTHOR_DATE="+when.Format(time.RFC3339))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "trunk")
	git("add", "-A")
	git("commit", "-q", "-m", "first")
	return git("rev-parse", "HEAD")
}

// A deploy from a git checkout records its commit and commit time;
// releases:diff names config keys and never their values; delivery-metrics
// shows the app's figures and refuses a window past 365 days.
func TestCLI_ReleasesDiffAndDeliveryMetrics(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is needed to test deploys from a repository: %v", err)
	}
	t.Parallel()
	ts := startTestServer(t, testConfig(t))
	h := newCLIHarness(t, ts)
	h.ok("login", "--api", ts.APIURL, "--token", "test-token")
	h.ok("apps:create", "differ")

	dir := appDir(t, "web: ./testapp\n", nil)
	committed := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Second)
	sha := gitCommitAll(t, dir, committed)
	h.ok("deploy", dir, "-a", "differ")
	var builds []client.Build
	h.jsonOut(&builds, "builds", "-a", "differ")
	if len(builds) != 1 || builds[0].SourceBlob.Commit != sha || builds[0].SourceBlob.Branch != "trunk" ||
		builds[0].SourceBlob.CommitTime == nil || !builds[0].SourceBlob.CommitTime.Equal(committed) {
		t.Fatalf("builds = %+v, want commit %s on trunk at %s", builds, sha, committed)
	}

	const secret = "a-value-nobody-may-see"
	h.ok("config:set", "API_KEY="+secret, "-a", "differ", "--wait")
	out := h.ok("releases:diff", "v2", "-a", "differ")
	for _, want := range []string{"differ v2 against v1", "Config vars:", "+API_KEY", "Code:", "no changes"} {
		if !strings.Contains(out, want) {
			t.Errorf("releases:diff v2 lacks %q:\n%s", want, out)
		}
	}
	var d client.ReleaseDiff
	h.jsonOut(&d, "releases:diff", "v2", "v1", "-a", "differ")
	if d.Release.Version != 1 || d.Against == nil || d.Against.Version != 2 || len(d.Config.Removed) != 1 || d.Config.Removed[0] != "API_KEY" {
		t.Errorf("releases:diff v2 v1 = %+v", d)
	}
	out = h.ok("releases:diff", "v1", "-a", "differ")
	if !strings.Contains(out, "(no release before it)") || !strings.Contains(out, sha[:8]) || !strings.Contains(out, "on trunk") {
		t.Errorf("releases:diff v1:\n%s", out)
	}
	for _, args := range [][]string{{"releases:diff", "v2", "-a", "differ"}, {"releases:diff", "v1", "v2", "-a", "differ", "--json"}} {
		if out := h.ok(args...); strings.Contains(out, secret) {
			t.Fatalf("%v shows a config value:\n%s", args, out)
		}
	}
	h.fails(1, []string{"v9"}, "releases:diff", "v9", "-a", "differ")

	out = h.ok("delivery-metrics", "-a", "differ")
	for _, want := range []string{"differ, last 30d", "1 (1 succeeded, 0 failed, 0 running)", "0.03 a day", "1 measured", "0% (0 of 1 ended deployments)"} {
		if !strings.Contains(out, want) {
			t.Errorf("delivery-metrics lacks %q:\n%s", want, out)
		}
	}
	var m client.DeliveryMetrics
	h.jsonOut(&m, "delivery-metrics", "-a", "differ", "--window", "7d")
	if m.Window != "7d" || m.LeadTime.Measured != 1 || m.LeadTime.FromBuildCreated != 0 || m.LeadTime.MedianSeconds == nil || *m.LeadTime.MedianSeconds < 3*3600 {
		t.Errorf("delivery-metrics --json = %+v", m)
	}
	h.fails(1, []string{"window", "365d"}, "delivery-metrics", "-a", "differ", "--window", "400d")

	// The answers hold to docs/openapi.yaml: ts.c checks every one.
	ctx := context.Background()
	for _, c := range [][2]string{{"v1", ""}, {"v2", ""}, {"v1", "v2"}} {
		if _, err := ts.c.ReleaseDiff(ctx, "differ", c[0], c[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.c.AppDeliveryMetrics(ctx, "differ", "1h"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.c.Builds(ctx, "differ"); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.c.AppDeliveryMetrics(ctx, "differ", "1y"); slipway.ErrorCode(err) != slipway.EUnprocessable {
		t.Fatalf("window 1y: %v, want unprocessable", err)
	}
}
