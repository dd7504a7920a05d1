package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
	"github.com/slipway/slipway/internal/isotest"
	"github.com/slipway/slipway/internal/pgtest"
)

// leakProcfile is the hostile tenant's Procfile of the security report: it
// dumps every environment it can read and serves the file system from two
// folders above its own.
const leakProcfile = `web: for f in /proc/[0-9]*/environ; do tr "\0" "\n" < $f; echo; done > leak.txt; python3 -m http.server $PORT --directory ../..` + "\n"

// TestE2E_Isolation_HostileTenant deploys, with an organization-scoped
// token, the Procfile that made a tenant admin and a probing app, next to
// another organization's app with a secret, on SQLite and on PostgreSQL.
func TestE2E_Isolation_HostileTenant(t *testing.T) {
	t.Parallel()
	isotest.Need(t)
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			if name == "postgres" {
				cfg.Database = pgtest.DSN(t)
			}
			cfg.Token = "admin-" + strings.ReplaceAll(uuid.NewString(), "-", "")
			cfg.DynoMemory, cfg.DynoPids = "64MiB", 48
			ts := startTestServer(t, cfg)
			hostileTenant(t, ts, cfg)
		})
	}
}

func hostileTenant(t *testing.T, ts *testServer, cfg serveConfig) {
	// Another organization's app, with a secret in its config.
	victim := "victim" + strings.ReplaceAll(uuid.NewString()[:6], "-", "")
	if _, err := ts.c.CreateApp(bg, victim, "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.c.UpdateConfigVars(bg, victim, map[string]*string{"VICTIM_SECRET": ptr("victim-secret-value")}); err != nil {
		t.Fatal(err)
	}
	ts.release(t, victim, client.NewRelease{Slug: ts.push(t, victim, "web: ./testapp\n")})

	// The tenant, with a token scoped to its own organization.
	org := "tenant" + strings.ReplaceAll(uuid.NewString()[:6], "-", "")
	if err := ts.c.Do(bg, "POST", "/organizations", map[string]string{"name": org}, nil); err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	if err := ts.c.Do(bg, "POST", "/tokens", map[string]string{"org": org, "description": "tenant"}, &tok); err != nil {
		t.Fatal(err)
	}
	tenant := &testServer{server: ts.server, c: client.New(ts.APIURL, tok.Token), dataDir: ts.dataDir, cfg: ts.cfg}
	leaky, prober := "leak"+org[6:], "probe"+org[6:]
	for _, app := range []string{leaky, prober} {
		if _, err := tenant.c.CreateApp(bg, app, "", org); err != nil {
			t.Fatal(err)
		}
	}
	if r := tenant.release(t, leaky, client.NewRelease{Slug: tenant.push(t, leaky, leakProcfile)}); r.Status != slipway.ReleaseSucceeded {
		t.Fatalf("leaky release = %s: %s", r.Status, r.Error)
	}
	if r := tenant.release(t, prober, client.NewRelease{Slug: tenant.push(t, prober, "web: ./testapp\n")}); r.Status != slipway.ReleaseSucceeded {
		t.Fatalf("prober release = %s: %s", r.Status, r.Error)
	}
	leakyKey, proberKey := leaky+"-default", prober+"-default"

	// What the leaking Procfile dumped holds no secret of the server or of
	// another app, and the data dir is not in what it serves.
	code, leak := ts.get(t, leakyKey, "/app/leak.txt")
	if code != 200 {
		t.Fatalf("GET /app/leak.txt = %d %q", code, leak)
	}
	for what, secret := range map[string]string{"admin token": cfg.Token, "scoped token": tok.Token, "victim's config": "victim-secret-value", "server's environment": "SLIPWAY_"} {
		if what == "server's environment" {
			leak = strings.ReplaceAll(leak, "SLIPWAY_RELEASE_VERSION", "")
		}
		if strings.Contains(leak, secret) {
			t.Errorf("the dyno read the %s:\n%s", what, leak)
		}
	}
	dataDir, _ := filepath.Abs(cfg.DataDir)
	for _, p := range []string{dataDir + "/token", dataDir + "/slipway.db", dataDir + "/slipway.db-wal", dataDir + "/slugs/"} {
		if code, body := ts.get(t, leakyKey, p); code != 404 {
			t.Errorf("GET %s through the leaky app = %d %.200q, want 404", p, code, body)
		}
	}

	// The probing app: not root nor the server's uid, its own processes
	// only, no way to the host's loopback services, the API or other dynos,
	// and nothing writable outside its folder.
	hostLn, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	_, hostPort, _ := net.SplitHostPort(hostLn.Addr().String())
	var victimAddr, proberHost string
	for _, rec := range readDynoRecords(t, cfg.DataDir) {
		if strings.HasPrefix(rec.AppKey, victim) {
			victimAddr = rec.Addr
		}
		if strings.HasPrefix(rec.AppKey, prober) {
			proberHost = rec.NetHost
		}
	}
	if victimAddr == "" || proberHost == "" {
		t.Fatalf("dynos.json lacks the victim's address or the prober's link: %v", readDynoRecords(t, cfg.DataDir))
	}
	_, apiPort, _ := net.SplitHostPort(strings.TrimPrefix(ts.APIURL, "http://"))
	probes := []struct{ path, want string }{
		{"/probe/dial?addr=127.0.0.1:5432", "refused"},
		{"/probe/dial?addr=127.0.0.1:" + apiPort, "refused"},
		{"/probe/dial?addr=" + proberHost + ":" + apiPort, ""},
		{"/probe/dial?addr=" + proberHost + ":" + hostPort, ""},
		{"/probe/dial?addr=" + victimAddr, ""},
		{"/probe/write?path=/etc/tenant", "read-only"},
		{"/probe/write?path=/usr/local/bin/tenant", "read-only"},
		{"/probe/read?path=" + dataDir + "/token", "no such file"},
	}
	for _, p := range probes {
		if code, body := ts.get(t, proberKey, p.path); code != 403 || !strings.Contains(body, p.want) {
			t.Errorf("GET %s = %d %q, want 403 (%s)", p.path, code, body, p.want)
		}
	}
	if code, body := ts.get(t, proberKey, "/probe/write?path=/app/mine.txt"); code != 200 {
		t.Errorf("writing its own folder = %d %q", code, body)
	}
	_, who := ts.get(t, proberKey, "/probe/whoami")
	if who == "uid=0 gid=0" || who == fmt.Sprintf("uid=%d gid=%d", os.Getuid(), os.Getgid()) || !strings.HasPrefix(who, "uid=2") {
		t.Errorf("the dyno runs as %q, want an unprivileged uid of its own from 200000 on", who)
	}
	if _, procs := ts.get(t, proberKey, "/probe/procs"); strings.Count(procs, "pid ") > 3 {
		t.Errorf("the dyno sees other processes:\n%s", procs)
	}

	// A dyno over its memory limit is killed and says so.
	if code, body := ts.get(t, proberKey, "/probe/alloc?mb=200"); code == 200 {
		t.Errorf("allocating 200 MiB in a 64 MiB dyno = %d %q", code, body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		ds, err := tenant.c.Dynos(bg, prober)
		if err == nil && len(ds) == 1 && strings.Contains(ds[0].AdditionalInfo, "out of memory") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dyno over its memory limit is not reported out of memory: %+v, %v", ds, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A release whose dyno runs out of memory before it is healthy fails,
	// and its error and log say so.
	if r := tenant.release(t, prober, client.NewRelease{Slug: tenant.push(t, prober, "web: ./testapp --alloc-mb=200\n")}); r.Status != slipway.ReleaseFailed || !strings.Contains(r.Error, "ran out of memory") {
		t.Errorf("a release whose dyno needs 200 MiB of a 64 MiB limit = %s %q, want failed, out of memory", r.Status, r.Error)
	} else if lg, err := tenant.c.ReleaseLog(bg, prober, r.ID); err != nil || !strings.Contains(strings.Join(lg.Lines, "\n"), "ran out of memory") {
		t.Errorf("the failed release's log does not say the dyno ran out of memory: %+v, %v", lg, err)
	}
	// Once it is back, a fork bomb stops at the dyno's pids limit; the
	// server and the other organization's app keep answering.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, _ := ts.get(t, proberKey, "/"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dyno did not come back after its out-of-memory kill")
		}
	}
	// Either the app is told no more processes, or (when the Go runtime of
	// the app itself needed a thread at that moment) the app dies of it;
	// never does it get its 500.
	code, forked := ts.get(t, proberKey, "/probe/fork?n=500")
	if code == 200 && (!strings.Contains(forked, "then:") || strings.Contains(forked, "started 500")) {
		t.Errorf("fork bomb was not stopped: %q", forked)
	}
	if code, body := ts.get(t, victim+"-default", "/"); code != 200 {
		t.Errorf("the victim app during the fork bomb = %d %q", code, body)
	}
	if _, err := ts.c.Releases(bg, victim); err != nil {
		t.Errorf("the API during the fork bomb: %v", err)
	}

}

// dynoRecord is what the isolation tests read of the local runtime's
// dynos.json: where each dyno's init runs and listens.
type dynoRecord struct {
	AppKey  string `json:"app_key"`
	Dyno    string `json:"dyno"`
	PID     int    `json:"pid"`
	Addr    string `json:"addr"`
	NetHost string `json:"net_host"`
}

func readDynoRecords(t *testing.T, dataDir string) []dynoRecord {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "runtime", "dynos.json"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []dynoRecord
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestE2E_KillNine_DynosKeepTheirPids kills `slipway serve` with SIGKILL
// and starts it again on its data dir: the dynos' inits held them, so every
// dyno keeps its pid, the router serves the app again within 1 s of the new
// server's start, and the engine's redeploy of the current release keeps
// them.
func TestE2E_KillNine_DynosKeepTheirPids(t *testing.T) {
	// Serial: it judges how soon the new server serves.
	dataDir := absDir(t, filepath.Join(t.TempDir(), "data"))
	t.Cleanup(func() {
		for _, rec := range readDynoRecordsIfAny(dataDir) {
			syscall.Kill(-rec.PID, syscall.SIGKILL)
		}
	})
	args := []string{"--data-dir", dataDir, "--lease-ttl", "2s", "--stop-grace", "2s", "--drain-timeout", "1s", "--min-uptime", "300ms"}
	s := startServerProcess(t, crashToken, args...)
	const app = "keeper"
	if _, err := s.c.CreateApp(bg, app, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Do(bg, "POST", "/apps/"+app+"/formation", map[string]any{"type": "web", "quantity": 2}, nil); err != nil {
		t.Fatal(err)
	}
	r, err := s.c.CreateRelease(bg, app, client.NewRelease{Slug: pushArchive(t, s.c, app, appSlug(t, "web: ./testapp\n"))})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = waitReleaseEvery(s.c, app, r.ID, 20*time.Millisecond, 30*time.Second); err != nil || r.Status != slipway.ReleaseSucceeded {
		t.Fatalf("v1 = %+v, %v", r, err)
	}
	pids := func() map[string]int {
		m := map[string]int{}
		for _, rec := range readDynoRecordsIfAny(dataDir) {
			m[rec.Dyno] = rec.PID
		}
		return m
	}
	before := pids()
	if len(before) != 2 {
		t.Fatalf("dynos.json before the kill = %v, want web.1 and web.2", before)
	}

	s.kill()
	for dyno, pid := range before {
		if syscall.Kill(pid, 0) != nil {
			t.Fatalf("%s (pid %d) died with the server", dyno, pid)
		}
	}
	// Within 1 s of the new process's start, not of its listening: the
	// dynos are adopted before it listens.
	s2 := startServerProcess(t, crashToken, args...)
	listened := time.Now()
	for {
		if code, body := s2.routerGet(app); code == 200 && strings.HasPrefix(body, "version=1 ") {
			break
		}
		if time.Since(s2.started) > time.Second {
			code, body := s2.routerGet(app)
			t.Fatalf("the router did not serve the app within 1s of the new server's start (it listened after %s): %d %q\n%s",
				listened.Sub(s2.started).Round(time.Millisecond), code, body, s2.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("router served the adopted dynos %s after the new server started (it listened after %s)",
		time.Since(s2.started).Round(time.Millisecond), listened.Sub(s2.started).Round(time.Millisecond))
	// The engine places the current release again: it keeps the dynos.
	waitDynos(t, &testServer{c: s2.c}, app, "two web dynos on v1", settledOn(1, map[string]int{"web": 2}))
	if after := pids(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("dyno pids changed across the restart: before %v, after %v", before, after)
	}
	for i := 0; i < 6; i++ {
		if code, body := s2.routerGet(app); code != 200 || !strings.HasPrefix(body, "version=1 ") {
			t.Fatalf("router after the restart: %d %q", code, body)
		}
	}
}

func readDynoRecordsIfAny(dataDir string) []dynoRecord {
	b, err := os.ReadFile(filepath.Join(dataDir, "runtime", "dynos.json"))
	if err != nil {
		return nil
	}
	var recs []dynoRecord
	json.Unmarshal(b, &recs)
	return recs
}
