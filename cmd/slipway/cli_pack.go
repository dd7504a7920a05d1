package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// buildSource is what deploy sends as a build: a URL (docker://, http(s)://
// or a data: URI of a packed archive) and its checksum when known.
type buildSource struct {
	URL      string
	Checksum string
	// What says what was packed or referenced, for the person deploying.
	What string
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
	var what string
	if fi.IsDir() {
		var files int
		if data, files, err = packDir(arg); err != nil {
			return buildSource{}, err
		}
		what = fmt.Sprintf("folder %s (%s, %s packed)", arg, plural(files, "file"), humanBytes(int64(len(data))))
	} else {
		if data, err = os.ReadFile(arg); err != nil {
			return buildSource{}, err
		}
		what = fmt.Sprintf("archive %s (%s)", arg, humanBytes(int64(len(data))))
	}
	sum := sha256.Sum256(data)
	return buildSource{
		URL:      "data:" + archiveMIME(data) + ";base64," + base64.StdEncoding.EncodeToString(data),
		Checksum: "sha256:" + hex.EncodeToString(sum[:]),
		What:     what,
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
// .slipwayignore names, nor .git. Entries carry their permission bits but
// no owner or time, so packing the same files twice gives the same
// checksum. The folder must hold a Procfile.
func packDir(dir string) (data []byte, files int, err error) {
	var rules []ignoreRule
	if b, err := os.ReadFile(filepath.Join(dir, ".slipwayignore")); err == nil {
		rules = parseIgnore(string(b))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, err
	}
	if fi, err := os.Stat(filepath.Join(dir, "Procfile")); err != nil || !fi.Mode().IsRegular() || isIgnored(rules, "Procfile", false) {
		return nil, 0, &cliError{msg: fmt.Sprintf("%s has no Procfile.", dir),
			hint: "Add a file named Procfile at its top that says how to run the app, e.g.:\n  web: ./server --port $PORT"}
	}
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == ".git" || rel == ".slipwayignore" || isIgnored(rules, rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.IsDir(), fi.Mode().IsRegular():
		default:
			return nil // sockets, pipes and devices have no place in a slug
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = time.Unix(0, 0), time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.Copy(tw, f); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		files++
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("packing %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return nil, 0, err
	}
	if err := gz.Close(); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), files, nil
}

// ignoreRule is one line of a .slipwayignore, which reads like a
// .gitignore: "name" anywhere, "/name" or "dir/name" from the top only,
// "dir/" folders only, "!pattern" takes a path back, "#" a comment, and the
// wildcards of path.Match plus a leading "**/" and a trailing "/**".
type ignoreRule struct {
	pattern  string
	negate   bool
	dirOnly  bool
	anchored bool
}

func parseIgnore(text string) []ignoreRule {
	var rules []ignoreRule
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var r ignoreRule
		if strings.HasPrefix(line, "!") {
			r.negate, line = true, line[1:]
		}
		line = strings.TrimSuffix(line, "/**")
		if strings.HasSuffix(line, "/") {
			r.dirOnly, line = true, strings.TrimRight(line, "/")
		}
		if strings.HasPrefix(line, "**/") {
			line = strings.TrimPrefix(line, "**/")
		} else if strings.Contains(line, "/") {
			r.anchored, line = true, strings.TrimPrefix(line, "/")
		}
		if line == "" {
			continue
		}
		r.pattern = line
		rules = append(rules, r)
	}
	return rules
}

// isIgnored applies the rules in order to a slash-separated path relative
// to the folder's top; the last rule that matches decides.
func isIgnored(rules []ignoreRule, rel string, isDir bool) bool {
	ignored := false
	for _, r := range rules {
		if r.dirOnly && !isDir {
			continue
		}
		if r.matches(rel) {
			ignored = !r.negate
		}
	}
	return ignored
}

func (r ignoreRule) matches(rel string) bool {
	if r.anchored {
		ok, _ := path.Match(r.pattern, rel)
		return ok
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		if ok, _ := path.Match(r.pattern, strings.Join(parts[i:], "/")); ok {
			return true
		}
	}
	return false
}

// humanBytes is 4.1 MB, 512 kB or 80 B.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
