package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/client"
)

// logLineRE is the documented line of a log session.
var logLineRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z logs-default\[(app|slipway|release)\.[a-z0-9.]+\]: `)

// readLogURL reads a session's URL as an Akkeris client does: no token.
func readLogURL(t *testing.T, hc *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return resp.StatusCode, b.String()
}

// An app whose dyno prints a line: its log session shows that line, the
// dyno's own output and the release events, without a token; a tailing
// session follows a new release; wrong and expired secrets are 404; a
// token of another organization cannot open one; slipway logs prints it.
func TestE2E_LogSessions(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.LogSessionTTL = 3 * time.Second
	ts := startTestServer(t, cfg)
	if _, err := ts.c.CreateApp(bg, "logs", "", ""); err != nil {
		t.Fatal(err)
	}
	build := ts.push(t, "logs", "web: echo 'hello from the logs test' && exec ./testapp\n")
	ts.release(t, "logs", client.NewRelease{Slug: build})

	s, err := ts.c.CreateLogSession(bg, "logs", 100, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.LogplexURL, ts.APIURL+"/log-sessions/"+s.ID+"?secret=") {
		t.Fatalf("logplex_url %q, want %s/log-sessions/%s?secret=…", s.LogplexURL, ts.APIURL, s.ID)
	}
	code, body := readLogURL(t, http.DefaultClient, s.LogplexURL)
	if code != 200 {
		t.Fatalf("GET the log URL = %d %s", code, body)
	}
	for _, want := range []string{
		"logs-default[app.web.1]: hello from the logs test\n",
		"logs-default[app.web.1]: testapp: web.1 v1 listening",
		"logs-default[slipway.web.1]: web.1 v1 (release ",
		"logs-default[release.v1]: ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("log session lacks %q:\n%s", want, body)
		}
	}
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if !logLineRE.MatchString(l) {
			t.Errorf("line %q is not <time> <app-key>[<source>.<dyno>]: <text>", l)
		}
	}

	t.Run("tail follows a new release", func(t *testing.T) {
		s, err := ts.c.CreateLogSession(bg, "logs", 1, true, "")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(bg, time.Minute)
		defer cancel()
		lines := make(chan string, 1000)
		done := make(chan error, 1)
		go func() { done <- ts.c.StreamLogs(ctx, s.LogplexURL, func(l string) { lines <- l }) }()
		first := <-lines // the tail: one line
		if !logLineRE.MatchString(first) {
			t.Fatalf("first line %q", first)
		}
		ts.release(t, "logs", client.NewRelease{Slug: build})
		var listening, event bool
		for !listening || !event {
			select {
			case l := <-lines:
				listening = listening || strings.Contains(l, "]: testapp: web.") && strings.Contains(l, " v2 listening")
				event = event || strings.Contains(l, "logs-default[release.v2]: ")
			case err := <-done:
				t.Fatalf("the tailing stream ended (%v) before v2's lines came", err)
			case <-ctx.Done():
				t.Fatalf("no v2 dyno output (%v) or release event (%v) within a minute", listening, event)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stream ended with %v", err)
		}
	})

	t.Run("wrong or expired secrets are 404", func(t *testing.T) {
		s, err := ts.c.CreateLogSession(bg, "logs", 5, false, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{s.LogplexURL[:len(s.LogplexURL)-3] + "xyz", strings.Split(s.LogplexURL, "?")[0]} {
			if code, body := readLogURL(t, http.DefaultClient, u); code != 404 || !strings.Contains(body, "create a new one") {
				t.Errorf("GET with a wrong secret = %d %s, want 404", code, body)
			}
		}
		// The TTL is 3s here: the URL stops opening.
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := readLogURL(t, http.DefaultClient, s.LogplexURL)
			if code == 404 && strings.Contains(body, "has expired") {
				break
			}
			if code != 200 || time.Now().After(deadline) {
				t.Fatalf("GET of a session past its TTL = %d %s", code, body)
			}
			time.Sleep(200 * time.Millisecond) // polling for the expiry, not waiting for work
		}
	})

	t.Run("a scoped token opens sessions of its organization's apps only", func(t *testing.T) {
		if err := ts.c.Do(bg, "POST", "/organizations", map[string]string{"name": "acme"}, nil); err != nil {
			t.Fatal(err)
		}
		var tok struct{ Token string }
		if err := ts.c.Do(bg, "POST", "/tokens", map[string]string{"org": "acme"}, &tok); err != nil {
			t.Fatal(err)
		}
		tenant := client.New(ts.APIURL, tok.Token)
		if _, err := tenant.CreateLogSession(bg, "logs-default", 10, false, ""); !isCode(err, "not_found") {
			t.Errorf("scoped token on another organization's app: %v, want not_found", err)
		}
		if _, err := tenant.CreateApp(bg, "mine", "", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := tenant.CreateLogSession(bg, "mine", 10, false, ""); err != nil {
			t.Errorf("scoped token on its own app: %v", err)
		}
	})

	t.Run("slipway logs", func(t *testing.T) {
		h := newCLIHarness(t, ts)
		h.ok("login", "--api", ts.APIURL, "--token", "test-token")
		out := h.ok("logs", "-a", "logs", "--num", "200", "--dyno", "web")
		if !strings.Contains(out, "logs-default[app.web.1]: hello from the logs test\n") {
			t.Errorf("slipway logs:\n%s", out)
		}
		var l struct{ Time, App, Source, Dyno, Text string }
		for _, line := range strings.Split(strings.TrimSpace(h.ok("logs", "-a", "logs", "--num", "1", "--dyno", "web.1", "--json")), "\n") {
			if err := json.Unmarshal([]byte(line), &l); err != nil || l.App != "logs-default" || l.Dyno != "web.1" || l.Source == "" || l.Time == "" {
				t.Errorf("slipway logs --json line %q: %+v %v", line, l, err)
			}
		}
		h.fails(1, []string{`App "nope" was not found`, "slipway apps"}, "logs", "-a", "nope")
		h.fails(2, []string{"--num must be from 1 to 10000"}, "logs", "-a", "logs", "--num", "0")
		h.fails(1, []string{"dyno must name a dyno"}, "logs", "-a", "logs", "--dyno", "web 1")
	})
}

func isCode(err error, code string) bool {
	var se *slipway.Error
	return errors.As(err, &se) && se.Code == code
}

// TestE2E_ServeTLS: with --tls-cert and --tls-key the API, and so the log
// URL, is HTTPS, for a client that trusts the certificate; one flag
// without the other, or a key that is not the certificate's, stops the
// server at start with a clear error.
func TestE2E_ServeTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, pool := selfSigned(t)
	cfg := testConfig(t)
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	ts := startTestServer(t, cfg)
	if !strings.HasPrefix(ts.APIURL, "https://127.0.0.1:") {
		t.Fatalf("API URL %s, want https", ts.APIURL)
	}
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c := client.New(ts.APIURL, "test-token")
	c.HTTP = trusting
	if _, err := c.CreateApp(bg, "logs", "", ""); err != nil {
		t.Fatal(err)
	}
	s, err := c.CreateLogSession(bg, "logs", 10, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.LogplexURL, "https://") {
		t.Errorf("logplex_url %q, want https", s.LogplexURL)
	}
	if code, body := readLogURL(t, trusting, s.LogplexURL); code != 200 {
		t.Errorf("GET the log URL over HTTPS = %d %s", code, body)
	}
	// A client that does not trust the certificate is refused by TLS.
	if _, err := http.Get(ts.APIURL + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("plain client: %v, want a certificate error", err)
	}

	otherCert, otherKey, _ := selfSigned(t)
	for _, tt := range []struct {
		cert, key, want string
	}{
		{certFile, "", "--tls-cert and --tls-key go together"},
		{"", keyFile, "--tls-cert and --tls-key go together"},
		{certFile, otherKey, "the key the certificate's own"},
		{filepath.Join(t.TempDir(), "missing.pem"), keyFile, "missing.pem"},
		{otherCert, keyFile, "--tls-cert"},
	} {
		cfg := testConfig(t)
		cfg.TLSCert, cfg.TLSKey = tt.cert, tt.key
		srv, err := startServer(bg, cfg, testWriter{t})
		if err == nil {
			srv.Close()
			t.Errorf("cert %q key %q: the server started", tt.cert, tt.key)
		} else if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("cert %q key %q: %v, want %q", tt.cert, tt.key, err, tt.want)
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "slipway test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
