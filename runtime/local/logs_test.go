package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/testslug"
)

// A worker that prints a numbered line every 20ms: the tail, the dyno
// filter and follow read its log, also across a rotation.
func TestLogs_TailFilterFollow(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.LogMaxBytes = 2 << 10 })
	slug := testslug.UnpackedSlug(t, procfile)
	ticker := slipway.Formation{Type: "ticker", Quantity: 1, Command: `i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.02; done`}
	fds := slipway.Formation{Type: "fds", Quantity: 1, Command: `ls -l /proc/self/fd; exec sleep 600`}
	f.mustDeploy(f.desired(1, slug, web(1), ticker, fds))
	ctx := context.Background()
	read := func(q slipway.LogQuery) []slipway.LogLine {
		t.Helper()
		var out []slipway.LogLine
		if err := f.rt.Logs(ctx, f.app.ID, q, func(ls []slipway.LogLine) error { out = append(out, ls...); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// Wait for a rotation: the ticker fills 2 KiB in about a second.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if fi, err := os.Stat(filepath.Join(f.rt.cfg.DataDir, "logs", f.app.ID, "ticker.1.log.1")); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ticker.1's log was not rotated within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	lines := read(slipway.LogQuery{Lines: 5, Dyno: "ticker.1"})
	if len(lines) != 5 {
		t.Fatalf("5 lines of ticker.1 = %+v", lines)
	}
	prev := 0
	for _, l := range lines {
		var n int
		if _, err := fmt.Sscanf(l.Text, "tick %d", &n); err != nil || l.Dyno != "ticker.1" || l.Source != slipway.LogSourceApp || l.Time.IsZero() {
			t.Fatalf("line %+v, want a stamped tick of ticker.1", l)
		}
		if prev != 0 && n != prev+1 {
			t.Errorf("ticks %d then %d, want consecutive", prev, n)
		}
		prev = n
	}
	// 200 lines reach into the rotated file (2 KiB holds about 45) and
	// stay consecutive.
	cur, _ := os.ReadFile(filepath.Join(f.rt.cfg.DataDir, "logs", f.app.ID, "ticker.1.log"))
	many := read(slipway.LogQuery{Lines: 200, Dyno: "ticker"})
	if len(many) <= strings.Count(string(cur), "\n") {
		t.Fatalf("200 lines of ticker = %d lines, no more than the current file's %d", len(many), strings.Count(string(cur), "\n"))
	}
	for i := 1; i < len(many); i++ {
		var a, b int
		fmt.Sscanf(many[i-1].Text, "tick %d", &a)
		if _, err := fmt.Sscanf(many[i].Text, "tick %d", &b); err != nil || b != a+1 {
			t.Fatalf("line %d %q after %q: not consecutive across the rotation", i, many[i].Text, many[i-1].Text)
		}
	}
	// Every dyno: web.1's header line (the runtime's note) and its output.
	all := read(slipway.LogQuery{Lines: 100000})
	var header, listening bool
	for _, l := range all {
		header = header || l.Dyno == "web.1" && l.Source == slipway.LogSourceSlipway && strings.Contains(l.Text, "web.1 v1 (release")
		listening = listening || l.Dyno == "web.1" && l.Source == slipway.LogSourceApp && strings.Contains(l.Text, "listening")
	}
	if !header || !listening {
		t.Errorf("all dynos: web.1 header %v, output %v; want both", header, listening)
	}
	// The command holds none of the init's files (log, log.1, status).
	var open []string
	for _, l := range read(slipway.LogQuery{Lines: 100, Dyno: "fds.1"}) {
		if l.Source == slipway.LogSourceApp {
			open = append(open, l.Text)
		}
	}
	if fds := strings.Join(open, "\n"); !strings.Contains(fds, " 0 -> ") || strings.Contains(fds, ".log") || strings.Contains(fds, "/status") {
		t.Errorf("a dyno's command has these files open:\n%s\nwant none of the init's", fds)
	}
	// Follow sends new ticks, consecutive, until the context ends.
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var followed []int
	enough := errors.New("enough")
	err := f.rt.Logs(fctx, f.app.ID, slipway.LogQuery{Lines: 1, Dyno: "ticker.1", Follow: true}, func(ls []slipway.LogLine) error {
		for _, l := range ls {
			var n int
			fmt.Sscanf(l.Text, "tick %d", &n)
			followed = append(followed, n)
		}
		if len(followed) >= 100 { // past at least one more rotation
			return enough
		}
		return nil
	})
	if !errors.Is(err, enough) {
		t.Fatalf("follow ended with %v after %d lines", err, len(followed))
	}
	for i := 1; i < len(followed); i++ {
		if followed[i] != followed[i-1]+1 {
			t.Fatalf("followed ticks %v: not consecutive at %d", followed[max(0, i-3):i+1], i)
		}
	}
	// An unknown dyno or app has no lines; a path in the app id reads nothing.
	for _, q := range []struct{ app, dyno string }{{f.app.ID, "web.9"}, {"no-such-app", ""}, {"../" + filepath.Base(f.rt.cfg.DataDir), ""}} {
		var n int
		f.rt.Logs(ctx, q.app, slipway.LogQuery{Lines: 10, Dyno: q.dyno}, func(ls []slipway.LogLine) error { n += len(ls); return nil })
		if n != 0 {
			t.Errorf("app %q dyno %q: %d lines, want none", q.app, q.dyno, n)
		}
	}
	// Removing the app removes its logs.
	if err := f.rt.Remove(ctx, f.app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(f.rt.cfg.DataDir, "logs", f.app.ID)); !os.IsNotExist(err) {
		t.Errorf("logs of a removed app: %v, want gone", err)
	}
}
