package slug

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/slipway/slipway"
)

// TestPack_RoundTrip packs an unpacked slug and builds it again.
func TestPack_RoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "Procfile"), []byte("web: ./bin/server\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bin", "server"), []byte("#!/bin/sh\n"), 0o755)
	os.Symlink("bin/server", filepath.Join(dir, "server"))
	var buf bytes.Buffer
	if _, err := Pack(&buf, dir, PackOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b")
	var b Builder
	s, err := b.Build(context.Background(), slipway.BuildSource{URL: dataURI(buf.Bytes())}, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.ProcessTypes["web"] != "./bin/server" {
		t.Fatalf("process types = %v", s.ProcessTypes)
	}
	fi, err := os.Stat(filepath.Join(out, "bin", "server"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("bin/server: %v %v", fi, err)
	}
	if l, err := os.Readlink(filepath.Join(out, "server")); err != nil || l != "bin/server" {
		t.Fatalf("symlink = %q, %v", l, err)
	}
}
