package slug

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway/slipway"
)

// logLines collects a build's log.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func dataURI(b []byte) string {
	return "data:application/gzip;base64," + base64.StdEncoding.EncodeToString(b)
}

func TestBuild_DataURI(t *testing.T) {
	archive := tarGz(t, []entry{procfile, exe("bin/server", "#!/bin/sh\n")})
	sum := sha(archive)
	tests := []struct {
		name     string
		url      string
		checksum string
		wantCode string
		wantMsg  string
	}{
		{name: "no checksum", url: dataURI(archive)},
		{name: "matching checksum", url: dataURI(archive), checksum: sum},
		{name: "uppercase checksum", url: dataURI(archive), checksum: "SHA256:" + strings.ToUpper(sum[7:])},
		{name: "checksum mismatch", url: dataURI(archive), checksum: sha([]byte("other")), wantCode: slipway.EUnprocessable, wantMsg: "but the build expected " + sha([]byte("other"))},
		{name: "md5 checksum", url: dataURI(archive), checksum: "md5:d41d8cd98f00b204e9800998ecf8427e", wantCode: slipway.EUnprocessable, wantMsg: "malformed"},
		{name: "short checksum", url: dataURI(archive), checksum: "sha256:abc", wantCode: slipway.EUnprocessable, wantMsg: "malformed"},
		{name: "checksum without algorithm", url: dataURI(archive), checksum: sum[7:], wantCode: slipway.EUnprocessable, wantMsg: "malformed"},
		{name: "non-hex checksum", url: dataURI(archive), checksum: "sha256:" + strings.Repeat("z", 64), wantCode: slipway.EUnprocessable, wantMsg: "malformed"},
		{name: "bad base64", url: "data:application/gzip;base64,@@@@", wantCode: slipway.EUnprocessable, wantMsg: "not valid base64"},
		{name: "not base64", url: "data:text/plain,hello", wantCode: slipway.EUnprocessable, wantMsg: "not base64-encoded"},
		{name: "not an archive", url: "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("hello")), wantCode: slipway.EUnprocessable, wantMsg: "not a .tar.gz or .zip"},
		{name: "too large", url: dataURI(make([]byte, 2<<20)), wantCode: slipway.ETooLarge, wantMsg: "larger than"},
		{name: "ftp", url: "ftp://user:s3cret@example.com/a.tgz", wantCode: slipway.EUnprocessable, wantMsg: "must start with"},
		{name: "file", url: "file:///etc/passwd", wantCode: slipway.EUnprocessable, wantMsg: "must start with"},
		{name: "empty", url: "  ", wantCode: slipway.EUnprocessable, wantMsg: "must start with"},
		{name: "relative", url: "archive.tgz", wantCode: slipway.EUnprocessable, wantMsg: "must start with"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "slug")
			var log logLines
			b := &Builder{MaxSize: 1 << 20}
			s, err := b.Build(context.Background(), slipway.BuildSource{URL: tt.url, Checksum: tt.checksum}, dir, log.logf)
			t.Logf("log:\n%s", &log)
			if strings.Contains(log.String(), "base64,") {
				t.Errorf("the log shows the data URI's payload")
			}
			if strings.Contains(fmt.Sprint(err), "s3cret") {
				t.Errorf("the error shows a credential from the URL: %v", err)
			}
			if tt.wantCode != "" {
				if code := slipway.ErrorCode(err); code != tt.wantCode {
					t.Fatalf("code %q (%v), want %q", code, err, tt.wantCode)
				}
				if msg := slipway.ErrorMessage(err); !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("message %q does not contain %q", msg, tt.wantMsg)
				}
				assertGone(t, dir)
				assertOnlyDir(t, parent, dir)
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			want := map[string]string{"web": "./bin/server", "worker": "./bin/worker --queue=default"}
			if !maps.Equal(s.ProcessTypes, want) || s.Size != int64(len(archive)) || s.Checksum != sum || s.Dir != dir || s.Image != "" {
				t.Errorf("slug = %+v, want process types %v, size %d, checksum %s, dir %s", s, want, len(archive), sum, dir)
			}
			for _, line := range []string{"Fetching inline archive (" + fmt.Sprint(len(archive)) + " bytes", "Checksum " + sum, "Unpacked 2 files", "Process types: web, worker"} {
				if !strings.Contains(log.String(), line) {
					t.Errorf("log lacks %q", line)
				}
			}
			if fi, err := os.Stat(filepath.Join(dir, "bin/server")); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("bin/server: %v, %v", fi, err)
			}
		})
	}
}

// TestBuild_InlineFile builds from an archive the API has already decoded
// to a file: verified and unpacked like a data: URI, and left in place.
func TestBuild_InlineFile(t *testing.T) {
	archive := tarGz(t, []entry{procfile, exe("bin/server", "#!/bin/sh\n")})
	file := filepath.Join(t.TempDir(), "inline")
	if err := os.WriteFile(file, archive, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, checksum, wantCode string
		max                      int64
	}{
		{name: "no checksum"},
		{name: "matching checksum", checksum: sha(archive)},
		{name: "checksum mismatch", checksum: sha([]byte("other")), wantCode: slipway.EUnprocessable},
		{name: "over the limit", max: int64(len(archive)) - 1, wantCode: slipway.ETooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "slug")
			var log logLines
			s, err := (&Builder{MaxSize: tt.max}).Build(context.Background(), slipway.BuildSource{URL: "data:", Checksum: tt.checksum, File: file}, dir, log.logf)
			if code := slipway.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("code %q (%v), want %q", code, err, tt.wantCode)
			}
			if err == nil && (s.Checksum != sha(archive) || s.Size != int64(len(archive)) || s.ProcessTypes["web"] != "./bin/server") {
				t.Errorf("slug = %+v", s)
			}
			if _, err := os.Stat(file); err != nil {
				t.Errorf("Build removed the inline file: %v", err)
			}
		})
	}
}

func TestBuild_DirMustBeEmpty(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep")
	os.WriteFile(keep, []byte("x"), 0o644)
	_, err := (&Builder{}).Build(context.Background(), slipway.BuildSource{URL: dataURI(tarGz(t, []entry{procfile}))}, dir, nil)
	if code := slipway.ErrorCode(err); code != slipway.EInternal {
		t.Fatalf("code %q (%v), want %q", code, err, slipway.EInternal)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("Build removed what was in the directory before: %v", err)
	}
}

// TestBuild_SlugFolderIsTheServersAlone: a slug's folder, and the slug dir
// Build creates above it (a custom --slug-dir), are 0700 whatever the
// archive says of its root, and an empty folder made beforehand is
// narrowed to 0700; the files inside keep their 0755 and 0644, which dynos
// and pods run with.
func TestBuild_SlugFolderIsTheServersAlone(t *testing.T) {
	archive := tarGz(t, []entry{
		{name: "./", typ: tar.TypeDir, mode: 0o777},
		{name: "repo-abc/", typ: tar.TypeDir, mode: 0o777},
		file("repo-abc/Procfile", "web: ./bin/server\n"),
		exe("repo-abc/bin/server", "#!/bin/sh\n"),
	})
	slugDir := filepath.Join(t.TempDir(), "shared", "slugs")
	fresh := filepath.Join(slugDir, "build-1")
	made := filepath.Join(t.TempDir(), "build-2")
	if err := os.Mkdir(made, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{fresh, made} {
		if _, err := (&Builder{}).Build(context.Background(), slipway.BuildSource{URL: dataURI(archive)}, dir, t.Logf); err != nil {
			t.Fatalf("Build into %s: %v", dir, err)
		}
	}
	for path, want := range map[string]fs.FileMode{
		filepath.Dir(slugDir):                 0o700,
		slugDir:                               0o700,
		fresh:                                 0o700,
		made:                                  0o700,
		filepath.Join(fresh, "Procfile"):      0o644,
		filepath.Join(fresh, "bin"):           0o755,
		filepath.Join(fresh, "bin", "server"): 0o755,
		filepath.Join(made, "bin", "server"):  0o755,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

func TestBuild_HTTP(t *testing.T) {
	archive := zipBytes(t, []entry{procfile, exe("bin/server", "#!/bin/sh\n")})
	big := make([]byte, 64<<10)
	var mu sync.Mutex
	var gotAuth, gotEncoding string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotAuth, gotEncoding = r.Header.Get("Authorization"), r.Header.Get("Accept-Encoding")
		mu.Unlock()
		switch r.URL.Path {
		case "/app.zip":
			w.Write(archive)
		case "/big-with-length":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			w.Write(big)
		case "/big-chunked":
			for i := 0; i < len(big); i += 1024 {
				w.Write(big[i : i+1024])
				w.(http.Flusher).Flush()
			}
		case "/slow":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		name     string
		url      string
		timeout  time.Duration
		wantCode string
		wantMsg  string
	}{
		{name: "200", url: srv.URL + "/app.zip"},
		{name: "credentials and query", url: "http://user:s3cret@" + host + "/app.zip?X-Amz-Signature=s3cret"},
		{name: "404", url: "http://user:s3cret@" + host + "/missing.zip?sig=s3cret", wantCode: slipway.EUnprocessable, wantMsg: "HTTP 404"},
		{name: "too large by Content-Length", url: srv.URL + "/big-with-length", wantCode: slipway.ETooLarge, wantMsg: "larger than 32768 bytes"},
		{name: "too large chunked", url: srv.URL + "/big-chunked", wantCode: slipway.ETooLarge, wantMsg: "larger than 32768 bytes"},
		{name: "unreachable", url: "http://127.0.0.1:1/app.zip", wantCode: slipway.EUnprocessable, wantMsg: "reachable"},
		{name: "no host", url: "http:///app.zip", wantCode: slipway.EUnprocessable, wantMsg: "has no host"},
		{name: "malformed", url: "http://user:s3cret@exa mple.com/%zz", wantCode: slipway.EUnprocessable, wantMsg: "malformed"},
		{name: "cancelled mid-download", url: srv.URL + "/slow", timeout: 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			parent := t.TempDir()
			dir := filepath.Join(parent, "slug")
			var log logLines
			b := &Builder{MaxSize: 32 << 10}
			s, err := b.Build(ctx, slipway.BuildSource{URL: tt.url}, dir, log.logf)
			t.Logf("log:\n%s\nerr: %v", &log, err)
			if strings.Contains(log.String()+fmt.Sprint(err), "s3cret") {
				t.Errorf("a credential from the URL reached the log or the error")
			}
			switch {
			case tt.timeout > 0:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v, want context.DeadlineExceeded", err)
				}
			case tt.wantCode != "":
				if code := slipway.ErrorCode(err); code != tt.wantCode {
					t.Fatalf("code %q (%v), want %q", code, err, tt.wantCode)
				}
				if msg := slipway.ErrorMessage(err); !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("message %q does not contain %q", msg, tt.wantMsg)
				}
			default:
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				if s.Checksum != sha(archive) || s.Size != int64(len(archive)) || s.ProcessTypes["web"] != "./bin/server" {
					t.Errorf("slug = %+v", s)
				}
				if !strings.Contains(log.String(), "Fetching http://"+host+"/app.zip") {
					t.Errorf("log lacks the redacted URL")
				}
				mu.Lock()
				if gotEncoding != "identity" {
					t.Errorf("Accept-Encoding = %q, want identity", gotEncoding)
				}
				if strings.Contains(tt.url, "user:") && gotAuth == "" {
					t.Errorf("URL credentials were not sent as basic auth")
				}
				mu.Unlock()
				return
			}
			assertGone(t, dir)
			assertOnlyDir(t, parent, dir)
		})
	}
}

func TestBuild_Image(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		url      string
		checksum string
		want     string // image; "" means the build must fail with EUnprocessable
	}{
		{url: "docker://registry.example.com/team/app:v1.2.3", want: "registry.example.com/team/app:v1.2.3"},
		{url: "docker://nginx", want: "nginx"},
		{url: "docker://nginx:1.27-alpine", want: "nginx:1.27-alpine"},
		{url: "docker://localhost:5000/app@" + digest, want: "localhost:5000/app@" + digest},
		{url: "docker://ghcr.io/org/app:1.0@" + digest, checksum: digest, want: "ghcr.io/org/app:1.0@" + digest},
		{url: "docker://[::1]:5000/app:v1", want: "[::1]:5000/app:v1"},
		{url: "DOCKER://quay.io/org/my_app__x.y-z:latest", want: "quay.io/org/my_app__x.y-z:latest"},
		{url: "docker://"},
		{url: "docker:// "},
		{url: "docker://nginx latest"},
		{url: "docker:nginx"},
		{url: "docker://Registry.io/UPPER/app:v1"},
		{url: "docker://app:"},
		{url: "docker://app:tag:tag"},
		{url: "docker://app@sha256:abc"},
		{url: "docker://app@" + digest[:70]},
		{url: "docker:///app"},
		{url: "docker://app/"},
		{url: "docker://-app"},
		{url: "docker://app:v1", checksum: digest},
		{url: "docker://app@" + digest, checksum: "sha256:" + strings.Repeat("cd", 32)},
		{url: "docker://" + strings.Repeat("a", 256)},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "slug")
			var log logLines
			s, err := (&Builder{}).Build(context.Background(), slipway.BuildSource{URL: tt.url, Checksum: tt.checksum}, dir, log.logf)
			if _, serr := os.Lstat(dir); serr == nil {
				t.Errorf("an image build created %s", dir)
			}
			if tt.want == "" {
				if code := slipway.ErrorCode(err); code != slipway.EUnprocessable {
					t.Fatalf("code %q (%v), want %q", code, err, slipway.EUnprocessable)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if s.Image != tt.want || s.Dir != "" || !maps.Equal(s.ProcessTypes, map[string]string{"web": ""}) {
				t.Errorf("slug = %+v, want image %s, no dir, process type web", s, tt.want)
			}
			if strings.Contains(tt.want, "@") != (s.Checksum == digest) {
				t.Errorf("checksum = %q", s.Checksum)
			}
			if !strings.Contains(log.String(), "Using image "+tt.want) {
				t.Errorf("log = %q", log.String())
			}
		})
	}
}

func TestDecodeDataURI(t *testing.T) {
	payload := []byte("\x1f\x8b binary \xff\xfe payload?>")
	std := base64.StdEncoding.EncodeToString(payload)
	tests := []struct {
		name     string
		uri      string
		max      int64
		want     string
		wantMime string
		wantCode string
	}{
		{name: "padded", uri: "data:application/gzip;base64," + std, want: string(payload), wantMime: "application/gzip"},
		{name: "unpadded", uri: "data:application/gzip;base64," + strings.TrimRight(std, "="), want: string(payload), wantMime: "application/gzip"},
		{name: "url alphabet", uri: "data:application/zip;base64," + base64.URLEncoding.EncodeToString(payload), want: string(payload), wantMime: "application/zip"},
		{name: "wrapped", uri: "data:application/gzip;base64," + std[:10] + "\r\n " + std[10:], want: string(payload), wantMime: "application/gzip"},
		{name: "percent-encoded", uri: "data:application/gzip;base64," + strings.ReplaceAll(strings.ReplaceAll(std, "+", "%2B"), "/", "%2F"), want: string(payload), wantMime: "application/gzip"},
		{name: "uppercase scheme and params", uri: "DATA:Application/X-Tar;charset=binary;BASE64," + std, want: string(payload), wantMime: "application/x-tar"},
		{name: "no type", uri: "data:;base64," + std, want: string(payload)},
		{name: "empty payload", uri: "data:application/gzip;base64,", want: "", wantMime: "application/gzip"},
		{name: "exactly max", uri: "data:a/b;base64," + std, max: int64(len(payload)), want: string(payload), wantMime: "a/b"},
		{name: "one over max", uri: "data:a/b;base64," + std, max: int64(len(payload)) - 1, wantCode: slipway.ETooLarge},
		{name: "far over max", uri: "data:a/b;base64," + strings.Repeat("A", 1<<20), max: 1000, wantCode: slipway.ETooLarge},
		{name: "bad character", uri: "data:a/b;base64,AAAA*AAA", wantCode: slipway.EUnprocessable},
		{name: "mixed alphabets", uri: "data:a/b;base64,AA+_", wantCode: slipway.EUnprocessable},
		{name: "impossible length", uri: "data:a/b;base64,A", wantCode: slipway.EUnprocessable},
		{name: "bad escape", uri: "data:a/b;base64,AA%zz", wantCode: slipway.EUnprocessable},
		{name: "not base64", uri: "data:text/plain," + std, wantCode: slipway.EUnprocessable},
		{name: "base64 not last", uri: "data:text/plain;base64;charset=x," + std, wantCode: slipway.EUnprocessable},
		{name: "no comma", uri: "data:text/plain;base64", wantCode: slipway.EUnprocessable},
		{name: "not a data URI", uri: "https://example.com/a", wantCode: slipway.EUnprocessable},
		{name: "empty", uri: "", wantCode: slipway.EUnprocessable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, mime, err := DecodeDataURI(tt.uri, tt.max)
			if code := slipway.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("code %q (%v), want %q", code, err, tt.wantCode)
			}
			if err != nil {
				return
			}
			if string(got) != tt.want || mime != tt.wantMime {
				t.Errorf("got %q, %q; want %q, %q", got, mime, tt.want, tt.wantMime)
			}
		})
	}
}

func TestSafeURL(t *testing.T) {
	tests := map[string]string{
		"https://u:p@example.com/a.tgz?sig=x#frag": "https://example.com/a.tgz?…",
		"https://example.com/a.tgz":                "https://example.com/a.tgz",
		"http://token@example.com:8080/x":          "http://example.com:8080/x",
		"http://exa mple.com/%zz":                  "the given URL",
	}
	for in, want := range tests {
		if got := safeURL(in); got != want {
			t.Errorf("safeURL(%q) = %q, want %q", in, got, want)
		}
	}
}
