// Package slug turns a build source into a slug: it fetches an archive
// (inline data: URI or http(s) URL), verifies its sha256 checksum, unpacks it
// into a directory and reads the Procfile at its root. docker:// sources are
// only checked for shape and recorded; nothing is fetched for them.
//
// Unpacking treats every archive as hostile. An entry is refused when its
// path is absolute or climbs out with "..", when it would be written through
// a symlink or under a file, when it is a device, fifo or socket, when it is
// a symlink that resolves (directly or through other symlinks in the
// archive) to an absolute path or outside the slug, or when it is a hard link
// to anything but a regular file written earlier. Writes go through an
// [os.Root] opened on the slug directory as a second line of defence. The
// compressed size, the unpacked size and the number of entries are limited,
// file modes are reduced to 0755 or 0644, and when a build fails everything
// it wrote is removed. The slug's own folder (and any parent Build creates)
// is 0700: a stored slug is the server's alone (isolated dynos see theirs
// through an overlay, pods download theirs from the server).
//
// Many archives wrap their content in one folder (GitHub tarballs unpack to
// "repo-sha/…", "Compress folder" zips to "folder/…"). When the root of the
// unpacked archive has no Procfile but exactly one top-level directory,
// holding a Procfile, that directory becomes the root: its content is moved
// up and the folder removed. macOS metadata ("__MACOSX", ".DS_Store") beside
// the folder does not count as a second top-level entry; it stays in place.
package slug

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/egress"
)

// Defaults for a zero Builder field.
const (
	DefaultMaxSize     = 200 << 20        // compressed archive bytes
	DefaultMaxUnpacked = 1 << 30          // bytes of all unpacked files together
	DefaultMaxFiles    = 100000           // entries of any kind: files, directories, links
	DefaultHTTPTimeout = 10 * time.Minute // whole download, headers to last byte
)

// Builder makes slugs from docker://, data:, http:// and https:// sources.
// The zero value is ready to use with the defaults above; a Builder is safe
// for concurrent use as long as its fields are not changed.
type Builder struct {
	// MaxSize limits the archive as fetched or decoded (compressed), in
	// bytes; 0 means DefaultMaxSize. Over it a build fails with ETooLarge.
	MaxSize int64
	// MaxUnpacked limits the total size of the unpacked files, in bytes; 0
	// means DefaultMaxUnpacked. It is what stops zip and gzip bombs.
	MaxUnpacked int64
	// MaxFiles limits the number of entries an archive unpacks to
	// (directories and links included); 0 means DefaultMaxFiles.
	MaxFiles int
	// HTTPClient fetches http(s) sources; nil means a client with
	// DefaultHTTPTimeout. It follows redirects as the client is configured to.
	HTTPClient *http.Client
	// ScopedHTTPClient fetches the http(s) sources of scoped builds
	// (BuildSource.Scoped); nil means a client with DefaultHTTPTimeout
	// that connects to public addresses only (egress.Policy{}). Give it
	// a transport of its own, never one shared with HTTPClient.
	ScopedHTTPClient *http.Client
}

var _ slipway.Builder = (*Builder)(nil)

// limits are a Builder's limits with the defaults filled in.
type limits struct {
	maxSize     int64
	maxUnpacked int64
	maxFiles    int
}

func (b *Builder) limits() limits {
	l := limits{maxSize: b.MaxSize, maxUnpacked: b.MaxUnpacked, maxFiles: b.MaxFiles}
	if l.maxSize <= 0 {
		l.maxSize = DefaultMaxSize
	}
	if l.maxUnpacked <= 0 {
		l.maxUnpacked = DefaultMaxUnpacked
	}
	if l.maxFiles <= 0 {
		l.maxFiles = DefaultMaxFiles
	}
	return l
}

func (b *Builder) httpClient(scoped bool) *http.Client {
	switch {
	case scoped && b.ScopedHTTPClient != nil:
		return b.ScopedHTTPClient
	case scoped:
		return egress.Policy{}.Client(DefaultHTTPTimeout)
	case b.HTTPClient != nil:
		return b.HTTPClient
	}
	return &http.Client{Timeout: DefaultHTTPTimeout}
}

// Build fetches src, verifies it and unpacks it into dir, logging each step
// through logf (which may be nil). dir must not exist or be empty; for
// archive sources it is created (with any missing parents) or narrowed to
// mode 0700, and for docker:// sources left alone. On failure everything
// written under dir is removed, dir included.
//
// For docker://<reference> it only checks the reference's shape and returns
// a slug with Image set, Dir "" and the one process type "web" whose empty
// command means "the image's default command". src.Checksum, if given, must
// then equal the reference's @sha256: digest.
//
// An http(s) source of a scoped build (src.Scoped) is fetched with
// ScopedHTTPClient, which refuses to connect to non-public addresses.
// An archive is never held in memory: a data: URI is decoded into a
// temporary file, and src.File (an inline archive the API has decoded
// already) is read from where it is; Build leaves src.File in place.
//
// Errors: EUnprocessable for a malformed URL, reference or checksum, an
// unsupported scheme, a failed or refused download, a checksum mismatch, a file that is
// not a .tar.gz, .tar or .zip archive, a hostile or corrupt archive, or a
// missing or malformed Procfile; ETooLarge when the archive, its unpacked
// size or its number of entries exceeds the Builder's limits. A cancelled
// ctx returns an error wrapping ctx.Err(); file system failures are uncoded
// (EInternal).
func (b *Builder) Build(ctx context.Context, src slipway.BuildSource, dir string, logf func(format string, args ...any)) (*slipway.Slug, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := ctx.Err(); err != nil {
		return nil, stopped(err)
	}
	u := strings.TrimSpace(src.URL)
	scheme, _, _ := strings.Cut(u, ":")
	switch strings.ToLower(scheme) {
	case "docker":
		return buildImage(u, src.Checksum, logf)
	case "data", "http", "https":
	default:
		// Not echoed: an unknown URL may carry credentials we cannot strip.
		return nil, slipway.Errorf(slipway.EUnprocessable, "The source URL must start with docker://, data:, http:// or https://.")
	}

	var want string
	if src.Checksum != "" {
		var err error
		if want, err = parseChecksum(src.Checksum); err != nil {
			return nil, err
		}
	}

	lim := b.limits()
	a, err := fetch(ctx, b.httpClient(src.Scoped), src, u, lim.maxSize, logf)
	if err != nil {
		return nil, err
	}
	defer a.close()
	if want != "" && want != a.sum {
		return nil, slipway.Errorf(slipway.EUnprocessable, "The archive's checksum is sha256:%s but the build expected sha256:%s; check that the URL and the checksum belong to the same archive.", a.sum, want)
	}
	if want != "" {
		logf("Checksum sha256:%s (as expected)", a.sum)
	} else {
		logf("Checksum sha256:%s", a.sum)
	}

	if err := prepareDir(dir); err != nil {
		return nil, err
	}
	res, err := extract(ctx, a.r, a.size, dir, lim, logf)
	if err != nil {
		return nil, err // extract has removed dir
	}
	return &slipway.Slug{
		ProcessTypes: res.procs,
		Size:         a.size,
		Checksum:     "sha256:" + a.sum,
		Dir:          dir,
	}, nil
}

// prepareDir creates dir, or checks that it is an empty directory, so that
// removing it after a failure removes only what the build wrote. dir, and
// the parents it creates (the slug dir itself, the first time), get mode
// 0700, so no other uid (an isolated dyno's included) reads a stored slug.
// The files inside keep 0755 or 0644: a dyno reads its own slug through
// its overlay, whose root is its own, and pods unpack the blob with them.
func prepareDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("slug: no directory to unpack into")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case os.IsNotExist(err):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("slug: create %s: %w", dir, err)
		}
	case err != nil:
		return fmt.Errorf("slug: read %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("slug: %s is not empty; each build needs a fresh directory", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("slug: %s: %w", dir, err)
	}
	return nil
}

// processList is the log form of process types: sorted, comma-separated.
func processList(procs map[string]string) string {
	names := make([]string, 0, len(procs))
	for n := range procs {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// stopped wraps a context error so callers can test it with errors.Is.
func stopped(err error) error {
	return fmt.Errorf("slug: the build was stopped: %w", err)
}

// clip shortens a user-supplied string for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
