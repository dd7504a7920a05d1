package slug

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/datauri"
	"github.com/slipway/slipway/internal/egress"
)

// imageRefRE is the docker reference grammar of distribution/reference:
// [domain[:port]/]path[/path…][:tag][@algorithm:hex]. Compiled once, never
// written.
var imageRefRE = regexp.MustCompile(`^` +
	// optional registry host: DNS name or [IPv6], optional port, then "/"
	`(?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?/)?` +
	// repository path components
	`[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*` +
	// tag
	`(?::[\w][\w.-]{0,127})?` +
	// digest
	`(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?` +
	`$`)

// buildImage records a docker:// source without fetching anything.
func buildImage(u, checksum string, logf func(string, ...any)) (*slipway.Slug, error) {
	if len(u) <= len("docker://") || !strings.EqualFold(u[:len("docker://")], "docker://") {
		return nil, slipway.Errorf(slipway.EUnprocessable, "The image source must be docker://registry/repo:tag or docker://registry/repo@sha256:<digest>.")
	}
	ref := u[len("docker://"):]
	name, _, _ := strings.Cut(ref, "@")
	if len(name) > 255 || !imageRefRE.MatchString(ref) {
		return nil, slipway.Errorf(slipway.EUnprocessable, "Image reference %q is malformed; use registry/repo:tag or registry/repo@sha256:<digest> with a lowercase repository name.", clip(ref, 80))
	}
	_, digest, pinned := strings.Cut(ref, "@")
	if digest != "" && strings.HasPrefix(digest, "sha256:") && len(digest) != len("sha256:")+64 {
		return nil, slipway.Errorf(slipway.EUnprocessable, "Image reference %q has a sha256 digest that is not 64 hex digits.", clip(ref, 80))
	}
	sum := ""
	if pinned {
		sum = strings.ToLower(digest)
	}
	if checksum != "" && !strings.EqualFold(checksum, sum) {
		return nil, slipway.Errorf(slipway.EUnprocessable, "A checksum for an image must equal its @sha256: digest; pin the image as docker://%s@%s or leave the checksum out.", name, clip(checksum, 80))
	}
	logf("Using image %s", ref)
	logf("Process types: web (the image's default command)")
	return &slipway.Slug{ProcessTypes: map[string]string{"web": ""}, Checksum: sum, Image: ref}, nil
}

// parseChecksum returns the lowercase hex of a "sha256:<64 hex>" checksum.
func parseChecksum(s string) (string, error) {
	algo, h, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || !strings.EqualFold(algo, "sha256") || len(h) != 64 {
		return "", slipway.Errorf(slipway.EUnprocessable, "Checksum %q is malformed; give it as sha256: followed by 64 hex digits.", clip(s, 80))
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", slipway.Errorf(slipway.EUnprocessable, "Checksum %q is malformed; give it as sha256: followed by 64 hex digits.", clip(s, 80))
	}
	return strings.ToLower(h), nil
}

// archive is a fetched archive: readable at any offset (zip needs that),
// with its size and sha256.
type archive struct {
	r     io.ReaderAt
	size  int64
	sum   string // lowercase hex
	close func()
}

// fetch opens the archive of src: the file an inline build was already
// decoded to, a data: URI decoded into a temporary file, or an http(s)
// URL downloaded into one.
func fetch(ctx context.Context, client *http.Client, src slipway.BuildSource, u string, max int64, logf func(string, ...any)) (*archive, error) {
	if src.File != "" {
		return openInline(src.File, max, logf)
	}
	if strings.HasPrefix(strings.ToLower(u), "data:") {
		return decodeInline(u, max, logf)
	}
	return download(ctx, client, u, max, logf)
}

// openInline opens the file the API decoded an inline archive to, hashing
// it as it is read once.
func openInline(path string, max int64, logf func(string, ...any)) (*archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("slug: open inline archive: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("slug: read inline archive: %w", err)
	}
	if max > 0 && n > max {
		f.Close()
		return nil, tooLargeArchive(max)
	}
	logf("Fetching inline archive (%d bytes)", n)
	return &archive{r: f, size: n, sum: sumHex(h), close: func() { f.Close() }}, nil
}

// decodeInline decodes a data: URI into a temporary file, hashing it on
// the way, so the archive is not held in memory a second time.
func decodeInline(u string, max int64, logf func(string, ...any)) (*archive, error) {
	f, err := os.CreateTemp("", "slipway-archive-*")
	if err != nil {
		return nil, fmt.Errorf("slug: spool inline archive: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	h := sha256.New()
	mime, n, err := datauri.Decode(strings.NewReader(u), io.MultiWriter(f, h), max)
	if err != nil {
		cleanup()
		return nil, err
	}
	if mime == "" {
		mime = "no type"
	}
	logf("Fetching inline archive (%d bytes, %s)", n, mime)
	return &archive{r: f, size: n, sum: sumHex(h), close: cleanup}, nil
}

// download streams an http(s) URL into a temporary file, hashing it and
// stopping past max bytes.
func download(ctx context.Context, client *http.Client, raw string, max int64, logf func(string, ...any)) (*archive, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error repeats the URL, credentials and all.
		return nil, slipway.Errorf(slipway.EUnprocessable, "The source URL is malformed; use http(s)://host/path/to/archive.tar.gz.")
	}
	shown := clip(safeURL(raw), 80)
	if u.Host == "" {
		return nil, slipway.Errorf(slipway.EUnprocessable, "The source URL %s has no host; use http(s)://host/path/to/archive.tar.gz.", clip(shown, 80))
	}
	logf("Fetching %s", shown)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, slipway.Errorf(slipway.EUnprocessable, "The source URL %s is malformed; use http(s)://host/path/to/archive.tar.gz.", shown)
	}
	// Ask for the bytes as stored: with the transport's transparent gzip
	// decoding a .tar.gz served with Content-Encoding: gzip would arrive as
	// a tar whose checksum no longer matches.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, stopped(ctx.Err())
		}
		var refused *egress.RefusedError
		if errors.As(err, &refused) {
			return nil, slipway.Errorf(slipway.EUnprocessable, "Fetching %s was refused: %v.", shown, refused)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, query string included
		}
		return nil, slipway.Errorf(slipway.EUnprocessable, "Fetching %s failed (%v); check that the URL is reachable from the Slipway server.", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, slipway.Errorf(slipway.EUnprocessable, "Fetching %s returned HTTP %s; check the URL and that the server lets Slipway download it.", shown, resp.Status)
	}
	if resp.ContentLength > max {
		return nil, tooLargeArchive(max)
	}

	f, err := os.CreateTemp("", "slipway-archive-*")
	if err != nil {
		return nil, fmt.Errorf("slug: spool download: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	h := sha256.New()
	n, err := spool(io.MultiWriter(f, h), &ctxReader{ctx: ctx, r: resp.Body}, max)
	if err != nil {
		cleanup()
		var se *slipway.Error
		switch {
		case ctx.Err() != nil:
			return nil, stopped(ctx.Err())
		case errors.As(err, &se):
			return nil, err
		case errors.Is(err, errWrite):
			return nil, fmt.Errorf("slug: spool download: %w", err)
		}
		return nil, slipway.Errorf(slipway.EUnprocessable, "The download of %s broke off after %d bytes (%v); try the build again.", shown, n, err)
	}
	logf("Fetched %d bytes", n)
	return &archive{r: f, size: n, sum: sumHex(h), close: cleanup}, nil
}

var errWrite = errors.New("write failed")

// spool copies at most max bytes from r to w, failing with ETooLarge when r
// holds more. Write errors wrap errWrite so they are not blamed on the source.
func spool(w io.Writer, r io.Reader, max int64) (int64, error) {
	var n int64
	buf := make([]byte, 64<<10)
	lr := io.LimitReader(r, max+1)
	for {
		m, rerr := lr.Read(buf)
		if m > 0 {
			n += int64(m)
			if n > max {
				return n, tooLargeArchive(max)
			}
			if _, err := w.Write(buf[:m]); err != nil {
				return n, fmt.Errorf("%w: %v", errWrite, err)
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

func sumHex(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

func tooLargeArchive(max int64) error {
	return slipway.Errorf(slipway.ETooLarge, "The archive is larger than %d bytes; make it smaller or ask the operator to raise the limit.", max)
}

// safeURL is raw fit for logs and messages: no user info, no query string
// (pre-signed URLs carry their credentials there), no fragment.
func safeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "the given URL"
	}
	u.User = nil
	u.Fragment, u.RawFragment = "", ""
	q := u.RawQuery != "" || u.ForceQuery
	u.RawQuery, u.ForceQuery = "", false
	s := u.String()
	if q {
		s += "?…"
	}
	return s
}

// DecodeDataURI decodes an RFC 2397 data URI of the form
// data:<mime>[;param…];base64,<payload> and returns the payload and the
// lowercased media type ("" when the URI gives none). The payload may be
// wrapped with whitespace, percent-encoded, unpadded or in the URL-safe
// alphabet. max limits the decoded size in bytes; max <= 0 means no limit.
// It holds the payload in memory: builds decode into a file instead.
//
// Errors: EUnprocessable when s is not a data URI, is not base64-encoded or
// its payload is not valid base64; ETooLarge when the payload decodes to
// more than max bytes (checked as it decodes, so nothing larger than max
// is allocated).
func DecodeDataURI(s string, max int64) ([]byte, string, error) {
	var b bytes.Buffer
	mime, _, err := datauri.Decode(strings.NewReader(s), &b, max)
	if err != nil {
		return nil, "", err
	}
	return b.Bytes(), mime, nil
}

// ctxReader fails reads once ctx is done, so a slow download or a long
// unpack stops soon after cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
