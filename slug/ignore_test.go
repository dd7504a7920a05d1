package slug

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestIgnore_Match(t *testing.T) {
	ig := ParseIgnore(`
# comment
*.log
/build/
tmp/
docs/*.md
!docs/keep.md
**/cache
vendor/**
a/**/z.txt
src/**/generated/
**/*.tmp
!important.tmp
  indented.txt
crlf.txt` + "\r\n" + `trailing.txt   
`)
	tests := []struct {
		path  string
		isDir bool
		want  bool
	}{
		{"app.log", false, true},
		{"logs/deep/app.log", false, true},
		{"build", true, true},
		{"build/out.bin", false, true},
		{"src/build", true, false}, // anchored to the top
		{"build", false, false},    // folders only
		{"tmp", true, true},
		{"src/tmp", true, true},
		{"tmp", false, false}, // folders only, at any depth
		{"src/tmp", false, false},
		{"tmp/x.txt", false, true}, // inside a folder that is left out
		{"docs/readme.md", false, true},
		{"docs/keep.md", false, false},
		{"docs/sub/readme.md", false, false},
		{"a/b/cache", true, true},
		{"cache", true, true},
		{"vendor", true, true},
		{"vendor/x/y.go", false, true},
		{"Procfile", false, false},
		{"server", false, false},

		// "**" in the middle: zero or more folders.
		{"a/z.txt", false, true},
		{"a/b/z.txt", false, true},
		{"a/b/c/d/z.txt", false, true},
		{"b/a/z.txt", false, false}, // a pattern with a slash starts at the top
		{"a/b/z.txt.bak", false, false},
		{"src/generated", true, true},
		{"src/x/y/generated", true, true},
		{"src/x/generated", false, false}, // a file: the pattern names folders
		{"lib/generated", true, false},

		// A leading "**/" and a negation that takes a name back anywhere.
		{"x.tmp", false, true},
		{"deep/down/y.tmp", false, true},
		{"important.tmp", false, false},
		{"deep/important.tmp", false, false},

		// Leading blanks and a CR at the line end are not part of the
		// pattern; trailing spaces are not either.
		{"indented.txt", false, true},
		{"crlf.txt", false, true},
		{"trailing.txt", false, true},
	}
	for _, tt := range tests {
		if got := ig.Match(tt.path, tt.isDir); got != tt.want {
			t.Errorf("Match(%q, dir=%v) = %v, want %v", tt.path, tt.isDir, got, tt.want)
		}
	}
	var none *Ignore
	if none.Match("anything", false) {
		t.Error("a nil Ignore left a path out")
	}
}

// ReadIgnoreFile always leaves out .git and the ignore file itself at the
// top, whatever the file says; a missing file leaves out only those.
func TestReadIgnoreFile(t *testing.T) {
	dir := t.TempDir()
	ig, err := ReadIgnoreFile(dir, ".slipwayignore")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{".git": true, ".slipwayignore": true, "sub/.git": false, "app.log": false} {
		if got := ig.Match(path, path != "app.log"); got != want {
			t.Errorf("without a file: Match(%q) = %v, want %v", path, got, want)
		}
	}
	os.WriteFile(filepath.Join(dir, ".slipwayignore"), []byte("*.log\n!.git\n!.slipwayignore\n"), 0o644)
	if ig, err = ReadIgnoreFile(dir, ".slipwayignore"); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{".git": true, ".slipwayignore": true, "app.log": true} {
		if got := ig.Match(path, path == ".git"); got != want {
			t.Errorf("Match(%q) = %v, want %v", path, got, want)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "unreadable"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIgnoreFile(dir, "unreadable"); err == nil {
		t.Error("a folder where the ignore file should be was read as no patterns")
	}
}

// Pack with an Ignore leaves out what it matches: mid-path "**", folders
// only at any depth (the file "build" stays, the folder out/build goes),
// negations, and a folder left out with everything in it (a "!" for
// a file inside does not take it back, as with git).
func TestPack_Ignore(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		"Procfile", "app/main.py", "app/debug.log", "app/x/__pycache__/m.pyc", "app/__pycache__/n.pyc",
		"node_modules/left.js", "node_modules/keep.js", "build", "out/build/bin", "keep.log", ".git/HEAD",
		"sub/.git", "assets/a/b/big.psd", "assets/small.psd",
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, ".slipwayignore"), []byte(`*.log
!keep.log
app/**/__pycache__/
node_modules/
!node_modules/keep.js
build/
assets/**/b/
`), 0o644)
	ig, err := ReadIgnoreFile(dir, ".slipwayignore")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := Pack(&buf, dir, PackOptions{Ignore: ig})
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	want := []string{"Procfile", "app/", "app/main.py", "app/x/", "assets/", "assets/a/", "assets/small.psd",
		"build", "keep.log", "out/", "sub/", "sub/.git"}
	if !slices.Equal(names, want) || n != 6 {
		t.Fatalf("packed %q (%d files)\nwant   %q (6 files)", names, n, want)
	}
}
