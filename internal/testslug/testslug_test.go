package testslug

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTestAppSlug_UnpacksToARunnableApp(t *testing.T) {
	b := TestAppSlug(t, "web: ./testapp\n")
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	got := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Mode
		if h.Name == "Procfile" {
			body, _ := io.ReadAll(tr)
			if string(body) != "web: ./testapp\n" {
				t.Errorf("Procfile = %q", body)
			}
		}
	}
	if want := (map[string]int64{"Procfile": 0o644, "testapp": 0o755}); !reflect.DeepEqual(got, want) {
		t.Errorf("entries = %v, want %v", got, want)
	}
	uri := DataURI(b)
	enc, ok := strings.CutPrefix(uri, "data:application/gzip;base64,")
	if dec, err := base64.StdEncoding.DecodeString(enc); !ok || err != nil || !bytes.Equal(dec, b) {
		t.Errorf("DataURI does not round-trip: %v", err)
	}
}

func TestZip(t *testing.T) {
	b := Zip(t, map[string]File{"bin/run": {Body: []byte("#!/bin/sh\n"), Mode: 0o755}, "Procfile": {Body: []byte("web: bin/run\n")}})
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range zr.File {
		got[f.Name] = f.Mode().String()
	}
	if want := (map[string]string{"Procfile": "-rw-r--r--", "bin/run": "-rwxr-xr-x"}); !reflect.DeepEqual(got, want) {
		t.Errorf("entries = %v, want %v", got, want)
	}
}

func TestUnpackedSlug(t *testing.T) {
	s := UnpackedSlug(t, "# comment\nweb: ./testapp\n\nworker: ./testapp --worker\nrelease: ./testapp --release-task --once-file=/tmp/x\n")
	want := map[string]string{"web": "./testapp", "worker": "./testapp --worker", "release": "./testapp --release-task --once-file=/tmp/x"}
	if !reflect.DeepEqual(s.ProcessTypes, want) {
		t.Errorf("process types = %v, want %v", s.ProcessTypes, want)
	}
	if len(s.ID) != 36 || s.Image != "" || s.Size == 0 {
		t.Errorf("slug = %+v", s)
	}
	if fi, err := os.Stat(s.Dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("slug folder: %v, %v; want mode 0700, as stored slugs have", fi, err)
	}
	once := filepath.Join(t.TempDir(), "once")
	cmd := exec.Command("./testapp", "--release-task", "--once-file="+once)
	cmd.Dir = s.Dir
	cmd.Env = []string{"SLIPWAY_RELEASE_VERSION=3"}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testapp: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(once); string(b) != "release v3 port= dyno=\n" {
		t.Errorf("once file = %q", b)
	}
}
