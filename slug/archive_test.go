package slug

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one member of a test archive. typ is a tar type flag; for zip
// archives it is mapped to the matching file mode.
type entry struct {
	name string
	typ  byte
	body string
	link string // symlink or hard link target
	mode int64  // 0 means 0644 for files, 0755 for directories
}

func file(name, body string) entry { return entry{name: name, typ: tar.TypeReg, body: body} }
func exe(name, body string) entry {
	return entry{name: name, typ: tar.TypeReg, body: body, mode: 0o755}
}
func dirEntry(name string) entry          { return entry{name: name, typ: tar.TypeDir} }
func symlinkEntry(name, to string) entry  { return entry{name: name, typ: tar.TypeSymlink, link: to} }
func hardlinkEntry(name, to string) entry { return entry{name: name, typ: tar.TypeLink, link: to} }

var procfile = file("Procfile", "web: ./bin/server\nworker: ./bin/worker --queue=default\n")

func tarBytes(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if e.typ == tar.TypeXGlobalHeader {
			if err := tw.WriteHeader(&tar.Header{Typeflag: e.typ, PAXRecords: map[string]string{"comment": e.body}}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
			if e.typ == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarGz(t testing.TB, entries []entry) []byte { return gz(t, tarBytes(t, entries)) }

func zipBytes(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		mode := fs.FileMode(e.mode)
		switch e.typ {
		case tar.TypeReg:
			if mode == 0 {
				mode = 0o644
			}
		case tar.TypeDir:
			if !strings.HasSuffix(h.Name, "/") {
				h.Name += "/"
			}
			mode = fs.ModeDir | 0o755
		case tar.TypeSymlink:
			mode = fs.ModeSymlink | 0o777
			e.body = e.link
		case tar.TypeChar:
			mode = fs.ModeDevice | fs.ModeCharDevice | 0o644
		case tar.TypeBlock:
			mode = fs.ModeDevice | 0o644
		case tar.TypeFifo:
			mode = fs.ModeNamedPipe | 0o644
		default:
			t.Fatalf("zip cannot hold tar type %q", e.typ)
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// unpackTo runs extract on data into <parent>/slug and returns both paths.
func unpackTo(t testing.TB, ctx context.Context, data []byte, lim limits) (parent, dir string, res *extracted, err error) {
	t.Helper()
	parent = t.TempDir()
	dir = filepath.Join(parent, "slug")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err = extract(ctx, bytes.NewReader(data), int64(len(data)), dir, lim, t.Logf)
	return parent, dir, res, err
}

var testLimits = limits{maxSize: 1 << 20, maxUnpacked: 1 << 20, maxFiles: 1000}

// assertOnlyDir fails unless parent holds nothing but dir (or nothing).
func assertOnlyDir(t testing.TB, parent, dir string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(dir) {
			t.Errorf("%s was written outside the slug directory", filepath.Join(parent, e.Name()))
		}
	}
}

// assertGone fails unless dir no longer exists.
func assertGone(t testing.TB, dir string) {
	t.Helper()
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		var names []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			names = append(names, p)
			return nil
		})
		t.Errorf("slug directory left behind after failure: %v", names)
	}
}
