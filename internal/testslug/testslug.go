// Package testslug builds slugs from internal/testapp for the tests of every
// package that needs a real app: as archives (tar.gz, zip, data: URIs) for
// tests that go through a build, and as unpacked directories for runtime
// tests that don't.
package testslug

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	slipway "github.com/slipway/slipway"
)

// TestAppImportPath is the package TestAppBinary builds.
const TestAppImportPath = "github.com/slipway/slipway/internal/testapp"

// binaryCache holds the one build of the test app per test process. It is
// package-level mutable state on purpose, and only in this test helper: every
// test of a package shares the binary, so it is built once (a second or two)
// rather than once per test. The directory lives in os.TempDir and is not
// removed when the process exits (no hook runs then); it holds one small
// binary.
var binaryCache struct {
	once sync.Once
	path string
	err  error
}

// TestAppBinary builds internal/testapp once per test process (go build -o
// into a directory from os.MkdirTemp) and returns the binary's path. A build
// failure fails tb; later calls fail the same way without building again.
func TestAppBinary(tb testing.TB) string {
	tb.Helper()
	binaryCache.once.Do(func() {
		dir, err := os.MkdirTemp("", "slipway-testapp-")
		if err != nil {
			binaryCache.err = err
			return
		}
		out := filepath.Join(dir, "testapp")
		gobin := "go"
		if p, err := exec.LookPath("go"); err == nil {
			gobin = p
		} else if root := os.Getenv("GOROOT"); root != "" {
			gobin = filepath.Join(root, "bin", "go")
		}
		// Without symbols and DWARF: a third smaller, which every build
		// of a test slug decompresses and unpacks.
		cmd := exec.Command(gobin, "build", "-ldflags=-s -w", "-o", out, TestAppImportPath)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			binaryCache.err = fmt.Errorf("go build %s: %v\n%s", TestAppImportPath, err, b)
			return
		}
		binaryCache.path = out
	})
	if binaryCache.err != nil {
		tb.Fatalf("testslug: %v", binaryCache.err)
	}
	return binaryCache.path
}

// File is one entry of an archive built by TarGz or Zip.
type File struct {
	Body []byte
	Mode fs.FileMode // permission bits; 0 means 0644
}

func sortedNames(files map[string]File) []string {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// TarGz returns a gzip-compressed tar archive of files (path → file), in
// path order, with parent directories implied.
func TarGz(tb testing.TB, files map[string]File) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range sortedNames(files) {
		f := files[name]
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: name, Mode: int64(mode), Size: int64(len(f.Body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			tb.Fatalf("testslug: tar %s: %v", name, err)
		}
		if _, err := tw.Write(f.Body); err != nil {
			tb.Fatalf("testslug: tar %s: %v", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatalf("testslug: tar: %v", err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatalf("testslug: gzip: %v", err)
	}
	return buf.Bytes()
}

// Zip returns a zip archive of files (path → file), in path order.
func Zip(tb testing.TB, files map[string]File) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range sortedNames(files) {
		f := files[name]
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate}
		hdr.SetMode(mode)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			tb.Fatalf("testslug: zip %s: %v", name, err)
		}
		if _, err := w.Write(f.Body); err != nil {
			tb.Fatalf("testslug: zip %s: %v", name, err)
		}
	}
	if err := zw.Close(); err != nil {
		tb.Fatalf("testslug: zip: %v", err)
	}
	return buf.Bytes()
}

// appMember is the first gzip member of every TestAppSlug: the tar entry
// of the test app binary, compressed once per test process. Compressing
// the binary is what a slug costs (about 30 s under -race on a busy 2-core
// machine at the default level); the Procfile is a second member.
var appMember struct {
	once sync.Once
	gz   []byte
}

// TestAppSlug returns a tar.gz slug holding the test app binary as
// "testapp" (mode 0755) and a Procfile with the given text, such as
// "web: ./testapp\nworker: ./testapp --worker\n". It is a gzip file of two
// members (the binary's entry, compressed once per process, then the
// Procfile's entry and the end of the archive), which gzip readers,
// Go's and tar's, read as one stream.
func TestAppSlug(tb testing.TB, procfile string) []byte {
	tb.Helper()
	bin := TestAppBinary(tb)
	appMember.once.Do(func() {
		body, err := os.ReadFile(bin)
		if err != nil {
			tb.Fatalf("testslug: %v", err)
		}
		var entry bytes.Buffer
		tw := tar.NewWriter(&entry)
		if err := tw.WriteHeader(&tar.Header{Name: "testapp", Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
			tb.Fatalf("testslug: tar testapp: %v", err)
		}
		if _, err := tw.Write(body); err != nil {
			tb.Fatalf("testslug: tar testapp: %v", err)
		}
		if err := tw.Flush(); err != nil { // pads the entry; no end-of-archive yet
			tb.Fatalf("testslug: tar testapp: %v", err)
		}
		appMember.gz = gzipBytes(tb, entry.Bytes(), gzip.BestSpeed)
	})
	if appMember.gz == nil {
		tb.Fatal("testslug: the test app's archive entry could not be made (see the first test that asked)")
	}
	var rest bytes.Buffer
	tw := tar.NewWriter(&rest)
	if err := tw.WriteHeader(&tar.Header{Name: "Procfile", Mode: 0o644, Size: int64(len(procfile)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		tb.Fatalf("testslug: tar Procfile: %v", err)
	}
	if _, err := io.WriteString(tw, procfile); err != nil {
		tb.Fatalf("testslug: tar Procfile: %v", err)
	}
	if err := tw.Close(); err != nil {
		tb.Fatalf("testslug: tar: %v", err)
	}
	return append(append([]byte(nil), appMember.gz...), gzipBytes(tb, rest.Bytes(), gzip.DefaultCompression)...)
}

func gzipBytes(tb testing.TB, b []byte, level int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		tb.Fatalf("testslug: gzip: %v", err)
	}
	if _, err := gz.Write(b); err != nil {
		tb.Fatalf("testslug: gzip: %v", err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatalf("testslug: gzip: %v", err)
	}
	return buf.Bytes()
}

// DataURI returns b as a "data:application/gzip;base64,…" URI, a build
// source that needs no HTTP server.
func DataURI(b []byte) string {
	return "data:application/gzip;base64," + base64.StdEncoding.EncodeToString(b)
}

// UnpackedSlug writes the test app binary and a Procfile with the given text
// into a fresh tb.TempDir() and returns a slug for it, with a random id and
// the Procfile's process types, for runtime tests that skip the build. The
// folder has mode 0700, as the slugs builds store have. The
// binary is hard-linked when possible: copying it would open an executable
// for writing while other tests fork, which can make their exec fail with
// "text file busy".
func UnpackedSlug(tb testing.TB, procfile string) slipway.Slug {
	tb.Helper()
	bin := TestAppBinary(tb)
	dir := tb.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		tb.Fatalf("testslug: %v", err)
	}
	dst := filepath.Join(dir, "testapp")
	if err := os.Link(bin, dst); err != nil {
		if err := copyFile(bin, dst, 0o755); err != nil {
			tb.Fatalf("testslug: %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "Procfile"), []byte(procfile), 0o644); err != nil {
		tb.Fatalf("testslug: %v", err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		tb.Fatalf("testslug: %v", err)
	}
	return slipway.Slug{
		ID:           NewID(),
		ProcessTypes: ParseProcfile(procfile),
		Size:         fi.Size(),
		Dir:          dir,
		CreatedAt:    time.Now(),
	}
}

// ParseProcfile parses "type: command" lines the simple way: blank lines and
// lines starting with # are skipped, as are lines without a colon.
func ParseProcfile(text string) map[string]string {
	types := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		types[strings.TrimSpace(name)] = strings.TrimSpace(cmd)
	}
	return types
}

// NewID returns a random UUID (version 4) string.
func NewID() string { return uuid.NewString() }

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
