package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/slipway/slipway/slug"
)

// buildSource is what deploy sends as a build: a URL (docker://, http(s)://
// or a data: URI of a packed archive) and its checksum when known.
type buildSource struct {
	URL      string
	Checksum string
	// What says what was packed or referenced, for the person deploying.
	What string
	// Dir is the folder packed, "" for any other source.
	Dir string
}

// resolveSource turns deploy's argument into a build source: a docker:// or
// http(s):// URL as it is, an archive file as a data: URI, or a folder
// packed as a .tar.gz (respecting its .slipwayignore) as a data: URI.
func resolveSource(arg string) (buildSource, error) {
	switch {
	case strings.HasPrefix(arg, "docker://"):
		return buildSource{URL: arg, What: "image " + strings.TrimPrefix(arg, "docker://")}, nil
	case strings.HasPrefix(arg, "http://"), strings.HasPrefix(arg, "https://"):
		return buildSource{URL: arg, What: "archive at " + arg}, nil
	}
	fi, err := os.Stat(arg)
	if err != nil {
		return buildSource{}, &cliError{msg: fmt.Sprintf("Cannot read %s: %v.", arg, errors.Unwrap(err)),
			hint: "Give a folder with a Procfile, a .tar.gz or .zip archive, an http(s):// archive URL or a docker:// image."}
	}
	var data []byte
	var what, dir string
	if fi.IsDir() {
		dir = arg
		var files int
		if data, files, err = packDir(arg); err != nil {
			return buildSource{}, err
		}
		what = fmt.Sprintf("folder %s (%s, %s packed)", arg, plural(files, "file"), humanize.Bytes(uint64(len(data))))
	} else {
		if data, err = os.ReadFile(arg); err != nil {
			return buildSource{}, err
		}
		what = fmt.Sprintf("archive %s (%s)", arg, humanize.Bytes(uint64(len(data))))
	}
	sum := sha256.Sum256(data)
	return buildSource{
		URL:      "data:" + archiveMIME(data) + ";base64," + base64.StdEncoding.EncodeToString(data),
		Checksum: "sha256:" + hex.EncodeToString(sum[:]),
		What:     what,
		Dir:      dir,
	}, nil
}

func archiveMIME(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return "application/gzip"
	case bytes.HasPrefix(b, []byte("PK")):
		return "application/zip"
	}
	return "application/x-tar"
}

// packDir returns a .tar.gz of dir's contents without what its
// .slipwayignore names, nor .git (see slug.Pack: packing the same files
// twice gives the same checksum). The folder must hold a Procfile.
func packDir(dir string) (data []byte, files int, err error) {
	ignore, err := slug.ReadIgnoreFile(dir, ".slipwayignore")
	if err != nil {
		return nil, 0, err
	}
	if fi, err := os.Stat(filepath.Join(dir, "Procfile")); err != nil || !fi.Mode().IsRegular() || ignore.Match("Procfile", false) {
		return nil, 0, &cliError{msg: fmt.Sprintf("%s has no Procfile.", dir),
			hint: "Add a file named Procfile at its top that says how to run the app, e.g.:\n  web: ./server --port $PORT"}
	}
	var buf bytes.Buffer
	if files, err = slug.Pack(&buf, dir, slug.PackOptions{Ignore: ignore}); err != nil {
		return nil, 0, fmt.Errorf("packing %s: %w", dir, err)
	}
	return buf.Bytes(), files, nil
}
