package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPackDir_RespectsSlipwayignoreAndIsReproducible(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"Procfile": "web: ./server\n", "server": "#!/bin/sh\n", "lib/a.txt": "a", "debug.log": "x",
		"node_modules/x/index.js": "x", ".git/HEAD": "ref", ".slipwayignore": "*.log\nnode_modules/\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if name == "server" {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("lib/a.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	data, n, err := packDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(data))
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
		switch hdr.Name {
		case "server":
			if hdr.Mode&0o111 == 0 {
				t.Errorf("server lost its execute bits: %o", hdr.Mode)
			}
		case "link":
			if hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != "lib/a.txt" {
				t.Errorf("link = %+v", hdr)
			}
		}
		if hdr.Uname != "" || hdr.ModTime.Unix() != 0 {
			t.Errorf("%s carries owner %q or time %v", hdr.Name, hdr.Uname, hdr.ModTime)
		}
	}
	want := []string{"Procfile", "lib/", "lib/a.txt", "link", "server"}
	if !slices.Equal(names, want) || n != 3 {
		t.Fatalf("packed %v (%d files), want %v (3 files)", names, n, want)
	}
	again, _, _ := packDir(dir)
	if !bytes.Equal(data, again) {
		t.Fatal("packing the same folder twice gave different archives")
	}

	// No Procfile (or an ignored one): refused with what to do.
	os.WriteFile(filepath.Join(dir, ".slipwayignore"), []byte("Procfile\n"), 0o644)
	_, _, err = packDir(dir)
	var ce *cliError
	if !errors.As(err, &ce) || !strings.Contains(ce.hint, "web:") {
		t.Fatalf("ignored Procfile: %v", err)
	}
}

func TestResolveSource(t *testing.T) {
	for _, url := range []string{"docker://registry.example.com/app:1", "https://ci.example.com/app.tgz"} {
		src, err := resolveSource(url)
		if err != nil || src.URL != url || src.Checksum != "" {
			t.Errorf("%s: %+v, %v", url, src, err)
		}
	}
	archive := filepath.Join(t.TempDir(), "app.zip")
	body := []byte("PK\x03\x04rest")
	os.WriteFile(archive, body, 0o644)
	src, err := resolveSource(archive)
	sum := sha256.Sum256(body)
	if err != nil || src.URL != "data:application/zip;base64,"+base64.StdEncoding.EncodeToString(body) || src.Checksum != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatalf("archive: %+v, %v", src, err)
	}
	if _, err := resolveSource(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.(*cliError).hint, "docker://") {
		t.Fatalf("missing path: %v", err)
	}
}

func TestParseScale(t *testing.T) {
	got, err := parseScale([]string{"web=3", "worker=1:gp2", "clock=0"})
	if err != nil || len(got) != 3 || got[0]["quantity"] != 3 || got[1]["size"] != "gp2" || got[2]["quantity"] != 0 {
		t.Fatalf("parseScale = %v, %v", got, err)
	}
	for _, bad := range []string{"web", "web=", "=2", "web=-1", "web=two"} {
		if _, err := parseScale([]string{bad}); !errors.As(err, new(usageError)) {
			t.Errorf("parseScale(%q) = %v, want a usage error", bad, err)
		}
	}
}
