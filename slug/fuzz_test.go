package slug

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/slipway/slipway"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/. The archive seeds there
// are written by TestWriteFuzzCorpus when SLUG_WRITE_FUZZ_CORPUS=1.

func FuzzParseProcfile(f *testing.F) {
	for _, s := range []string{
		"web: ./server\nworker: ./worker\n",
		"# c\r\n\r\nweb: a:b\r\n",
		"\ufeffweb: x",
		"web: a\nweb: b",
		"Web: x",
		": x",
		"web:",
		"web: a\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		procs, err := ParseProcfile(strings.NewReader(s))
		if err != nil {
			if code := slipway.ErrorCode(err); code != slipway.EUnprocessable {
				t.Fatalf("code %q (%v), want %q", code, err, slipway.EUnprocessable)
			}
			return
		}
		if len(procs) == 0 {
			t.Fatal("no error and no process types")
		}
		for name, cmd := range procs {
			if !processTypeRE.MatchString(name) {
				t.Errorf("invalid process type %q accepted", name)
			}
			if cmd == "" || cmd != strings.TrimSpace(cmd) || strings.ContainsAny(cmd, "\r\n\x00") {
				t.Errorf("process type %q has command %q", name, cmd)
			}
		}
	})
}

func FuzzDecodeDataURI(f *testing.F) {
	f.Add("data:application/gzip;base64,H4sIAAAAAAAAAwMAAAAAAAAAAAA=", int64(0))
	f.Add("data:;base64,QUJD", int64(2))
	f.Add("data:a/b;charset=x;base64,QU JD%3D\n", int64(10))
	f.Add("data:text/plain,hello", int64(0))
	f.Add("data:a/b;base64,-_-_", int64(-1))
	f.Fuzz(func(t *testing.T, s string, max int64) {
		b, _, err := DecodeDataURI(s, max)
		if err != nil {
			if code := slipway.ErrorCode(err); code != slipway.EUnprocessable && code != slipway.ETooLarge {
				t.Fatalf("code %q (%v)", code, err)
			}
		} else if max > 0 && int64(len(b)) > max {
			t.Fatalf("decoded %d bytes, max %d", len(b), max)
		}
		// Whatever s is, its own base64 encoding decodes back to it.
		got, _, err := DecodeDataURI("data:a/b;base64,"+base64.StdEncoding.EncodeToString([]byte(s)), 0)
		if err != nil || string(got) != s {
			t.Fatalf("round trip of %q: %q, %v", s, got, err)
		}
	})
}

// fuzzArchives are the FuzzUnpack seeds: good archives, and hostile ones
// from the unit tests.
func fuzzArchives(t testing.TB) map[string][]byte {
	good := []entry{procfile, exe("bin/server", "#!/bin/sh\n"), symlinkEntry("bin/run", "server"), hardlinkEntry("bin/s2", "bin/server")}
	return map[string][]byte{
		"good-tar-gz":        tarGz(t, good),
		"good-tar":           tarBytes(t, good),
		"good-zip":           zipBytes(t, good[:3]),
		"top-folder":         tarGz(t, []entry{file("r/Procfile", "web: x"), symlinkEntry("r/a", "Procfile"), file("__MACOSX/r/._a", "")}),
		"escape-after-strip": tarGz(t, []entry{file("r/Procfile", "web: x"), symlinkEntry("r/a", "../r/Procfile")}),
		"dotdot":             tarGz(t, []entry{procfile, file("a/../../evil", "x")}),
		"write-through":      zipBytes(t, []entry{procfile, symlinkEntry("l", ".."), file("l/evil", "x")}),
		"chain":              tarGz(t, []entry{procfile, symlinkEntry("c", "b/../x"), symlinkEntry("b", ".")}),
		"hardlink-out":       tarGz(t, []entry{procfile, hardlinkEntry("h", "../x")}),
		"device":             tarGz(t, []entry{procfile, {name: "null", typ: tar.TypeChar}}),
		"latin1-name":        gz(t, gnuTar(t, []entry{procfile, file("caf\xe9", "x")})),
		"control-name":       zipBytes(t, []entry{procfile, file("a\x1b[2Jb", "x"), symlinkEntry("l", "a\u0085")}),
		"unicode-name":       zipBytes(t, []entry{procfile, file("café ✓", "x")}),
	}
}

func FuzzUnpack(f *testing.F) {
	for _, b := range fuzzArchives(f) {
		f.Add(b)
	}
	// Small limits keep each run cheap; the limits themselves are tested
	// by TestUnpack_Limits.
	lim := limits{maxSize: 1 << 20, maxUnpacked: 256 << 10, maxFiles: 100}
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		parent, err := os.MkdirTemp(base, "")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(parent)
		dir := filepath.Join(parent, "slug")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_, err = extract(context.Background(), bytes.NewReader(data), int64(len(data)), dir, lim, func(string, ...any) {})
		ents, rerr := os.ReadDir(parent)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if code := slipway.ErrorCode(err); code != slipway.EUnprocessable && code != slipway.ETooLarge {
				t.Errorf("code %q (%v), want %s or %s", code, err, slipway.EUnprocessable, slipway.ETooLarge)
			}
			if len(ents) != 0 {
				t.Fatalf("after a failure %s still holds %v", parent, ents)
			}
			return
		}
		if len(ents) != 1 || ents[0].Name() != "slug" {
			t.Fatalf("%s holds %v, want only slug", parent, ents)
		}
		real, err := filepath.EvalSymlinks(dir) // TempDir may sit under a symlink
		if err != nil {
			t.Fatal(err)
		}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if rel, _ := filepath.Rel(dir, p); !utf8.ValidString(rel) || strings.ContainsFunc(rel, unicode.IsControl) {
				t.Errorf("unpacked the name %q", rel)
			}
			fi, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			m := fi.Mode()
			switch {
			case m.IsDir():
				if m.Perm() != 0o755 || m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
					t.Errorf("%s: mode %v", p, m)
				}
			case m.IsRegular():
				if m != 0o755 && m != 0o644 {
					t.Errorf("%s: mode %v", p, m)
				}
			case m&fs.ModeSymlink != 0:
				if to, ok := followLink(real, filepath.Join(real, strings.TrimPrefix(p, dir))); !ok {
					t.Errorf("symlink %s resolves to %s, outside %s", p, to, real)
				}
			default:
				t.Errorf("%s: unexpected mode %v", p, m)
			}
			return nil
		})
	})
}

// followLink follows the symlink at link (a path under root, a directory
// without symlinks in its path) with os.Readlink, component by component,
// as the kernel would, and reports where it leads and whether it stays
// inside root all along. Unlike filepath.EvalSymlinks it goes on past a
// component that does not exist, taking it as a plain name, so a dangling
// link that points outside is caught too; and a ".." that climbs above
// root counts as leaving it even when the path comes back in, since the
// slug directory is renamed later.
func followLink(root, link string) (string, bool) {
	inside := func(p string) bool { return p == root || strings.HasPrefix(p, root+"/") }
	target, err := os.Readlink(link)
	if err != nil {
		return err.Error(), false
	}
	cur := filepath.Dir(link)
	todo := strings.Split(target, "/")
	if strings.HasPrefix(target, "/") {
		cur = "/"
	}
	for hops := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
		default:
			next := filepath.Join(cur, c)
			fi, err := os.Lstat(next)
			if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				cur = next
				break
			}
			if hops++; hops > 40 {
				return next + " (a loop, which the kernel refuses to follow)", true
			}
			t, err := os.Readlink(next)
			if err != nil {
				return err.Error(), false
			}
			if strings.HasPrefix(t, "/") {
				cur = "/"
			}
			todo = append(strings.Split(t, "/"), todo...)
		}
		if !inside(cur) {
			return cur, false
		}
	}
	return cur, true
}

// TestFollowLink holds the fuzz target's containment check against
// links that the kernel alone cannot judge: dangling ones.
func TestFollowLink(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	links := []struct {
		name, target string
		inside       bool
	}{
		{"in", "d", true},
		{"in-dangling", "d/missing/file", true},
		{"out-dangling", "../elsewhere/missing", false},
		{"out-and-back", "../" + filepath.Base(root) + "/d", false},
		{"absolute-dangling", "/nonexistent/x", false},
		{"dot", ".", true},
		{"via-dot", "dot/../missing", false}, // dot is root, so this climbs out
	}
	for _, tt := range links {
		if err := os.Symlink(tt.target, filepath.Join(root, tt.name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range links {
		if to, ok := followLink(root, filepath.Join(root, tt.name)); ok != tt.inside {
			t.Errorf("%s -> %s leads to %s: inside = %v, want %v", tt.name, tt.target, to, ok, tt.inside)
		}
	}
}

// TestWriteFuzzCorpus writes the seed corpora under testdata/fuzz when
// SLUG_WRITE_FUZZ_CORPUS=1; it is how the committed files were made.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SLUG_WRITE_FUZZ_CORPUS") != "1" {
		t.Skip("set SLUG_WRITE_FUZZ_CORPUS=1 to rewrite testdata/fuzz")
	}
	write := func(target, name string, values ...string) {
		d := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "go test fuzz v1\n" + strings.Join(values, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, b := range fuzzArchives(t) {
		write("FuzzUnpack", name, "[]byte("+strconv.Quote(string(b))+")")
	}
	write("FuzzParseProcfile", "crlf-comments", "string("+strconv.Quote("# app\r\nweb: ./server -p $PORT\r\n\r\nworker: ./w\r\n")+")")
	write("FuzzParseProcfile", "duplicate", "string("+strconv.Quote("web: a\nweb: b\n")+")")
	write("FuzzDecodeDataURI", "wrapped", "string("+strconv.Quote("data:application/zip;base64,UEsF\r\nBgAAAAAAAAAAAAAAAAAAAAAAAA==")+")", fmt.Sprintf("int64(%d)", 100))
	write("FuzzDecodeDataURI", "oversize", "string("+strconv.Quote("data:a/b;base64,QUJDREVG")+")", "int64(3)")
}
