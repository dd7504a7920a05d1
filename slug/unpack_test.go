package slug

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway/slipway"
)

func TestUnpack_Good(t *testing.T) {
	base := []entry{
		procfile,
		dirEntry("bin/"),
		exe("bin/server", "#!/bin/sh\necho server\n"),
		{name: "bin/setuid", typ: tar.TypeReg, body: "x", mode: 0o4755},
		{name: "bin/sticky", typ: tar.TypeReg, body: "x", mode: 0o1666},
		file("./README.md", "hello"),
		file("deep/er/still/file.txt", "deep"),
		symlinkEntry("bin/run", "server"),
		symlinkEntry("deep/er/up", "../../bin"),
		symlinkEntry("self", "."),
		dirEntry("./"),
		dirEntry("bin/"),  // listed twice
		dirEntry("deep/"), // after it was made as a parent
	}
	wantModes := map[string]os.FileMode{
		"Procfile":   0o644,
		"bin":        os.ModeDir | 0o755,
		"bin/server": 0o755,
		"bin/setuid": 0o755,
		"bin/sticky": 0o644,
		"README.md":  0o644,
		"deep/er":    os.ModeDir | 0o755,
	}
	wantProcs := map[string]string{"web": "./bin/server", "worker": "./bin/worker --queue=default"}
	tests := []struct {
		name string
		data []byte
	}{
		{"tar.gz", tarGz(t, base)},
		{"tar", tarBytes(t, base)},
		{"zip", zipBytes(t, base)},
		{"tar.gz with hard link", tarGz(t, append(base[:len(base):len(base)], hardlinkEntry("bin/server2", "bin/server")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, dir, res, err := unpackTo(t, context.Background(), tt.data, testLimits)
			if err != nil {
				t.Fatalf("extract: %v", err)
			}
			assertOnlyDir(t, parent, dir)
			if !maps.Equal(res.procs, wantProcs) {
				t.Errorf("process types %v, want %v", res.procs, wantProcs)
			}
			for name, want := range wantModes {
				fi, err := os.Lstat(filepath.Join(dir, name))
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if got := fi.Mode(); got != want {
					t.Errorf("%s: mode %v, want %v", name, got, want)
				}
			}
			if b, err := os.ReadFile(filepath.Join(dir, "bin/run")); err != nil || !strings.Contains(string(b), "echo server") {
				t.Errorf("bin/run through its symlink: %q, %v", b, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "deep/er/still/file.txt")); string(b) != "deep" {
				t.Errorf("deep/er/still/file.txt = %q", b)
			}
			if res.top != "" {
				t.Errorf("stripped %q, want nothing stripped", res.top)
			}
		})
	}
}

func TestUnpack_SingleTopFolder(t *testing.T) {
	gh := []entry{
		{name: "pax_global_header", typ: tar.TypeXGlobalHeader, body: "0123abcd"},
		dirEntry("repo-0123abcd/"),
		file("repo-0123abcd/Procfile", "web: ./server\n"),
		exe("repo-0123abcd/server", "#!/bin/sh\n"),
		file("repo-0123abcd/repo-0123abcd/nested", "same name as the folder"),
		symlinkEntry("repo-0123abcd/link", "server"),
	}
	finder := []entry{
		file("app/Procfile", "web: ./server\n"),
		exe("app/server", "#!/bin/sh\n"),
		file("__MACOSX/app/._server", "resource fork"),
		file(".DS_Store", "junk"),
	}
	tests := []struct {
		name      string
		data      []byte
		wantTop   string
		wantFiles []string // must exist under dir
		wantNot   []string // must not exist under dir
	}{
		{"github tarball", tarGz(t, gh), "repo-0123abcd", []string{"Procfile", "server", "repo-0123abcd/nested", "link"}, []string{"pax_global_header"}},
		{"github zip", zipBytes(t, gh[1:]), "repo-0123abcd", []string{"Procfile", "server", "repo-0123abcd/nested"}, nil},
		{"finder zip with __MACOSX", zipBytes(t, finder), "app", []string{"Procfile", "server", "__MACOSX/app/._server", ".DS_Store"}, []string{"app"}},
		{"procfile at root wins", tarGz(t, []entry{file("Procfile", "web: a"), file("sub/Procfile", "web: b")}), "", []string{"Procfile", "sub/Procfile"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir, res, err := unpackTo(t, context.Background(), tt.data, testLimits)
			if err != nil {
				t.Fatalf("extract: %v", err)
			}
			if res.top != tt.wantTop {
				t.Errorf("top = %q, want %q", res.top, tt.wantTop)
			}
			for _, f := range tt.wantFiles {
				if _, err := os.Lstat(filepath.Join(dir, f)); err != nil {
					t.Errorf("want %s: %v", f, err)
				}
			}
			for _, f := range tt.wantNot {
				if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s should not exist", f)
				}
			}
			if fi, err := os.Stat(filepath.Join(dir, "server")); err == nil && fi.Mode().Perm() != 0o755 {
				t.Errorf("server mode %v, want 0755", fi.Mode())
			}
		})
	}
}

func TestUnpack_NoProcfile(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string // in the message
	}{
		{"none at all", tarGz(t, []entry{file("server", "x")}), "no Procfile at its root"},
		{"two folders", tarGz(t, []entry{file("a/Procfile", "web: x"), file("b/Procfile", "web: y")}), "no Procfile at its root"},
		{"procfile is a symlink", tarGz(t, []entry{file("real", "web: x"), symlinkEntry("Procfile", "real")}), "regular file"},
		{"procfile is a directory", tarGz(t, []entry{file("Procfile/web", "x")}), "regular file"},
		{"empty procfile", tarGz(t, []entry{file("Procfile", "# nothing\n")}), "no process types"},
		{"bad procfile", tarGz(t, []entry{file("Procfile", "web ./server\n")}), "line 1"},
		{"empty archive", tarGz(t, nil), "no Procfile"},
		{"empty zip", zipBytes(t, nil), "no Procfile"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, dir, _, err := unpackTo(t, context.Background(), tt.data, testLimits)
			if code := slipway.ErrorCode(err); code != slipway.EUnprocessable {
				t.Fatalf("code %q (%v), want %q", code, err, slipway.EUnprocessable)
			}
			if msg := slipway.ErrorMessage(err); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
			assertGone(t, dir)
			assertOnlyDir(t, parent, dir)
		})
	}
}

func TestUnpack_Hostile(t *testing.T) {
	// outside is a directory beside the slug that hostile links aim at; it
	// must stay empty.
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	tests := []struct {
		name    string
		entries func(parent string) []entry
		only    string // "tar.gz" or "zip" when the other cannot express it
	}{
		{"dot-dot", func(string) []entry { return []entry{procfile, file("../evil", "x")} }, ""},
		{"absolute", func(p string) []entry { return []entry{procfile, file(p+"/evil", "x")} }, ""},
		{"absolute outside", func(string) []entry { return []entry{procfile, file(outside+"/evil", "x")} }, ""},
		{"dot-dot in the middle", func(string) []entry { return []entry{procfile, file("a/../../evil", "x")} }, ""},
		{"deep dot-dot", func(string) []entry { return []entry{procfile, file("a/b/../../../evil", "x")} }, ""},
		{"symlink to /etc/passwd", func(string) []entry { return []entry{procfile, symlinkEntry("passwd", "/etc/passwd")} }, ""},
		{"symlink up and out", func(string) []entry { return []entry{procfile, symlinkEntry("sub/x", "../../x")} }, ""},
		{"symlink to parent then write through", func(string) []entry {
			return []entry{procfile, symlinkEntry("link", ".."), file("link/evil", "x")}
		}, ""},
		{"symlink to outside dir then write through", func(string) []entry {
			return []entry{procfile, symlinkEntry("link", outside), file("link/evil", "x")}
		}, ""},
		{"symlink inside then write through", func(string) []entry {
			return []entry{procfile, dirEntry("sub/"), symlinkEntry("link", "sub"), file("link/evil", "x")}
		}, ""},
		{"symlink to root then write through", func(string) []entry {
			return []entry{procfile, symlinkEntry("sub/up", ".."), file("sub/up/evil", "x")}
		}, ""},
		{"symlink then file of the same name", func(string) []entry {
			return []entry{procfile, symlinkEntry("x", "Procfile"), file("x", "overwrite")}
		}, ""},
		{"symlink chain escapes", func(string) []entry {
			return []entry{procfile, symlinkEntry("b", "."), symlinkEntry("c", "b/../x")}
		}, ""},
		{"symlink chain escapes when its link comes later", func(string) []entry {
			return []entry{procfile, symlinkEntry("c", "b/../etc"), symlinkEntry("b", ".")}
		}, ""},
		{"symlink loop", func(string) []entry {
			return []entry{procfile, symlinkEntry("a", "b"), symlinkEntry("b", "a")}
		}, ""},
		{"symlink escapes once the top folder is stripped", func(string) []entry {
			return []entry{file("top/Procfile", "web: x"), symlinkEntry("top/p", "../top/Procfile")}
		}, ""},
		{"directory over a file", func(string) []entry { return []entry{procfile, file("f", "x"), dirEntry("f/")} }, ""},
		{"directory over a symlink", func(string) []entry { return []entry{procfile, symlinkEntry("l", "."), dirEntry("l/")} }, ""},
		{"file named like the root", func(string) []entry { return []entry{procfile, file(".", "x")} }, "tar.gz"},
		{"file under a file", func(string) []entry { return []entry{procfile, file("f", "x"), file("f/g", "y")} }, ""},
		{"duplicate file", func(string) []entry { return []entry{procfile, file("Procfile", "web: evil")} }, ""},
		{"backslash", func(string) []entry { return []entry{procfile, file(`..\evil`, "x")} }, ""},
		{"nul byte in a name", func(string) []entry { return []entry{procfile, file("a\x00b", "x")} }, "zip"},
		{"nul byte in a symlink", func(string) []entry { return []entry{procfile, symlinkEntry("x", "a\x00b")} }, "zip"},
		{"hard link outside", func(string) []entry { return []entry{procfile, hardlinkEntry("h", "../victim")} }, "tar.gz"},
		{"hard link absolute", func(string) []entry { return []entry{procfile, hardlinkEntry("h", victim)} }, "tar.gz"},
		{"hard link to missing entry", func(string) []entry { return []entry{procfile, hardlinkEntry("h", "nothing")} }, "tar.gz"},
		{"hard link to a symlink", func(string) []entry {
			return []entry{procfile, symlinkEntry("s", "Procfile"), hardlinkEntry("h", "s")}
		}, "tar.gz"},
		{"hard link to a directory", func(string) []entry { return []entry{procfile, dirEntry("d/"), hardlinkEntry("h", "d")} }, "tar.gz"},
		{"char device", func(string) []entry { return []entry{procfile, {name: "null", typ: tar.TypeChar}} }, ""},
		{"block device", func(string) []entry { return []entry{procfile, {name: "sda", typ: tar.TypeBlock}} }, ""},
		{"fifo", func(string) []entry { return []entry{procfile, {name: "pipe", typ: tar.TypeFifo}} }, ""},
	}
	for _, tt := range tests {
		for _, format := range []string{"tar.gz", "zip"} {
			if tt.only != "" && tt.only != format {
				continue
			}
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				if err := os.WriteFile(victim, []byte("victim"), 0o644); err != nil {
					t.Fatal(err)
				}
				parent := t.TempDir()
				entries := tt.entries(parent)
				var data []byte
				if format == "zip" {
					data = zipBytes(t, entries)
				} else {
					data = tarGz(t, entries)
				}
				dir := filepath.Join(parent, "slug")
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				_, err := extract(context.Background(), bytes.NewReader(data), int64(len(data)), dir, testLimits, t.Logf)
				if code := slipway.ErrorCode(err); code != slipway.EUnprocessable {
					t.Fatalf("code %q (%v), want %q", code, err, slipway.EUnprocessable)
				}
				t.Logf("error: %s", slipway.ErrorMessage(err))
				assertGone(t, dir)
				assertOnlyDir(t, parent, dir)
				ents, _ := os.ReadDir(outside)
				if len(ents) != 1 {
					t.Errorf("%s holds %d entries, want only victim", outside, len(ents))
				}
				if b, _ := os.ReadFile(victim); string(b) != "victim" {
					t.Errorf("victim was changed to %q", b)
				}
				if _, err := os.Lstat("/evil"); err == nil {
					t.Errorf("/evil exists")
				}
			})
		}
	}
}

func TestUnpack_Limits(t *testing.T) {
	zeros := strings.Repeat("\x00", 10<<20)
	small := limits{maxSize: 1 << 20, maxUnpacked: 1 << 20, maxFiles: 10}
	many := []entry{procfile}
	for i := range 20 {
		many = append(many, file(fmt.Sprintf("f%02d", i), "x"))
	}
	chunks := []entry{procfile}
	for i := range 8 {
		chunks = append(chunks, file(fmt.Sprintf("chunk%d", i), strings.Repeat("a", 200<<10)))
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"gzip bomb", tarGz(t, []entry{procfile, file("zeros", zeros)}), slipway.ETooLarge},
		{"zip bomb", zipBytes(t, []entry{procfile, file("zeros", zeros)}), slipway.ETooLarge},
		{"many chunks tar.gz", tarGz(t, chunks), slipway.ETooLarge},
		{"many chunks zip", zipBytes(t, chunks), slipway.ETooLarge},
		{"zip bomb with lying sizes", lyingZip(t, 10<<20, 100), ""},
		{"zip bomb declaring 0 bytes", lyingZip(t, 10<<20, 0), ""},
		{"too many files tar.gz", tarGz(t, many), slipway.ETooLarge},
		{"too many files zip", zipBytes(t, many), slipway.ETooLarge},
		{"too many implicit directories", tarGz(t, []entry{procfile, file("a/b/c/d/e/f/g/h/i/j/k/file", "x")}), slipway.ETooLarge},
		{"header bomb", gz(t, bytes.Repeat(paxHeaderBlock(t), 64)), slipway.ETooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Logf("archive: %d bytes", len(tt.data))
			parent, dir, _, err := unpackTo(t, context.Background(), tt.data, small)
			code := slipway.ErrorCode(err)
			switch {
			case err == nil:
				t.Fatal("extract succeeded, want an error")
			case tt.want == "" && code != slipway.ETooLarge && code != slipway.EUnprocessable:
				t.Fatalf("code %q (%v), want %s or %s", code, err, slipway.ETooLarge, slipway.EUnprocessable)
			case tt.want != "" && code != tt.want:
				t.Fatalf("code %q (%v), want %q", code, err, tt.want)
			}
			t.Logf("error: %s", slipway.ErrorMessage(err))
			assertGone(t, dir)
			assertOnlyDir(t, parent, dir)
		})
	}
}

// lyingZip is a zip whose one entry inflates to n zero bytes but declares
// a size of declared.
func lyingZip(t *testing.T, n int, declared uint64) []byte {
	t.Helper()
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(make([]byte, n))
	fw.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "Procfile", Method: zip.Store, UncompressedSize64: 11, CompressedSize64: 11, CRC32: crc32.ChecksumIEEE([]byte("web: ./run\n"))})
	w.Write([]byte("web: ./run\n"))
	w, err := zw.CreateRaw(&zip.FileHeader{
		Name: "zeros", Method: zip.Deflate,
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: declared,
		CRC32: crc32.ChecksumIEEE(make([]byte, n)),
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(comp.Bytes())
	zw.Close()
	return buf.Bytes()
}

// paxHeaderBlock is a tar PAX extended header ('x') carrying ~512 KiB of
// records that applies to no entry: repeated, it decompresses to a lot of
// tar stream without a single file.
func paxHeaderBlock(t *testing.T) []byte {
	t.Helper()
	val := strings.Repeat("a", 512<<10)
	rec := fmt.Sprintf(" comment=%s\n", val)
	rec = fmt.Sprintf("%d%s", len(rec)+6, rec) // the length counts its own 6 digits
	if !strings.HasPrefix(rec, fmt.Sprint(len(rec))+" ") {
		t.Fatalf("bad PAX record length")
	}
	// archive/tar will not write a bare 'x' header: write a regular file
	// header and turn it into one.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "x", Typeflag: tar.TypeReg, Size: int64(len(rec)), Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(rec))
	tw.Flush()
	b := buf.Bytes()
	b[156] = tar.TypeXHeader
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b[:512] {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b // no end-of-archive blocks
}

func TestUnpack_NotAnArchive(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"text", []byte("hello, world")},
		{"empty", nil},
		{"truncated gzip", tarGz(t, []entry{procfile})[:20]},
		{"gzip of text", gz(t, []byte("not a tar"))},
		{"truncated zip", zipBytes(t, []entry{procfile})[:30]},
		{"bad gzip checksum", corrupt(tarGz(t, []entry{procfile, file("data", strings.Repeat("x", 4096))}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, dir, _, err := unpackTo(t, context.Background(), tt.data, testLimits)
			if code := slipway.ErrorCode(err); code != slipway.EUnprocessable {
				t.Fatalf("code %q (%v), want %q", code, err, slipway.EUnprocessable)
			}
			t.Logf("error: %s", slipway.ErrorMessage(err))
			assertGone(t, dir)
			assertOnlyDir(t, parent, dir)
		})
	}
}

func corrupt(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)-8] ^= 0xff // the gzip trailer's CRC
	return c
}

func TestUnpack_Cancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, data := range [][]byte{tarGz(t, []entry{procfile}), zipBytes(t, []entry{procfile})} {
		parent, dir, _, err := unpackTo(t, ctx, data, testLimits)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		assertGone(t, dir)
		assertOnlyDir(t, parent, dir)
	}
}

// Names that are not UTF-8 or hold control characters are refused with
// the name escaped, in tar and zip archives alike; other Unicode is kept.
func TestUnpack_NamesMustBeUTF8WithoutControlCharacters(t *testing.T) {
	long := strings.Repeat("a", 100) + "\n"
	tests := []struct {
		name    string
		entries []entry
		want    string // the message; "" for an archive that unpacks
	}{
		{"latin-1", []entry{procfile, file("caf\xe9.txt", "x")}, `Entry "caf\xe9.txt" has a name that is not valid UTF-8 (byte 0xe9 at 3)`},
		{"cut-off rune", []entry{procfile, file("a\xe2\x82", "x")}, `Entry "a\xe2\x82" has a name that is not valid UTF-8 (byte 0xe2 at 1)`},
		{"newline", []entry{procfile, file("a\nb", "x")}, `Entry "a\nb" has the control character U+000A at byte 1 of its name; rename it.`},
		{"terminal escape", []entry{procfile, file("\x1b[31mred", "x")}, `Entry "\x1b[31mred" has the control character U+001B at byte 0`},
		{"C1 control", []entry{procfile, file("a\u0085b", "x")}, `Entry "a\u0085b" has the control character U+0085 at byte 1`},
		{"DEL", []entry{procfile, file("a\x7f", "x")}, `Entry "a\x7f" has the control character U+007F at byte 1`},
		{"in a folder's name", []entry{procfile, file("d\x01/f", "x")}, `Entry "d\x01/f" has the control character U+0001 at byte 1`},
		{"a folder", []entry{procfile, dirEntry("d\t/")}, `has the control character U+0009 at byte 1`},
		{"a symlink", []entry{procfile, symlinkEntry("l\r", "Procfile")}, `Entry "l\r" has the control character U+000D`},
		{"a symlink's target", []entry{procfile, symlinkEntry("l", "caf\xe9")}, `Symlink "l" points to "caf\xe9", which is not valid UTF-8 or holds a control character`},
		{"long name", []entry{procfile, file(long, "x")}, `Entry "` + strings.Repeat("a", 64) + `…" has the control character U+000A at byte 100`},
		{"unicode is fine", []entry{procfile, file("café ✓/日本語.txt", "x"), symlinkEntry("ü", "café ✓/日本語.txt")}, ""},
	}
	for _, tt := range tests {
		for _, format := range []string{"tar.gz", "zip"} {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				var data []byte
				if format == "zip" {
					data = zipBytes(t, tt.entries)
				} else {
					data = gz(t, gnuTar(t, tt.entries))
				}
				parent, dir, _, err := unpackTo(t, context.Background(), data, testLimits)
				if tt.want == "" {
					if err != nil {
						t.Fatal(err)
					}
					if b, err := os.ReadFile(filepath.Join(dir, "ü")); err != nil || string(b) != "x" {
						t.Errorf("ü: %q, %v", b, err)
					}
					return
				}
				if code := slipway.ErrorCode(err); code != slipway.EUnprocessable {
					t.Fatalf("code %q (%v), want %q", code, err, slipway.EUnprocessable)
				}
				if msg := slipway.ErrorMessage(err); !strings.Contains(msg, tt.want) {
					t.Errorf("message %q does not contain %q", msg, tt.want)
				}
				assertGone(t, dir)
				assertOnlyDir(t, parent, dir)
			})
		}
	}
	// The build fails with that message.
	var log logLines
	_, err := (&Builder{}).Build(context.Background(), slipway.BuildSource{URL: dataURI(gz(t, gnuTar(t, []entry{procfile, file("x\x1b]0;owned\x07", "")})))}, filepath.Join(t.TempDir(), "slug"), log.logf)
	if msg := slipway.ErrorMessage(err); slipway.ErrorCode(err) != slipway.EUnprocessable || !strings.Contains(msg, `Entry "x\x1b]0;owned\a" has the control character U+001B`) {
		t.Errorf("build: %v", err)
	}
}

// gnuTar is tarBytes in the GNU format, whose names may hold any bytes
// (PAX records must be UTF-8).
func gnuTar(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644, Format: tar.FormatGNU}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
