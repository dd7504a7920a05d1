package slug

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/slipway/slipway"
)

const (
	maxPathLen     = 4095    // bytes in an entry name or symlink target, as PATH_MAX
	maxNameLen     = 255     // bytes in one path component, as NAME_MAX
	maxSymlinkHops = 40      // symlinks followed while resolving one, as Linux
	maxProcfile    = 1 << 20 // bytes in a Procfile
	// tarOverhead is how much of a tar stream may go to headers, padding
	// and PAX records per entry on top of the file data; the stream as a
	// whole is capped so headers alone cannot be a decompression bomb.
	tarOverhead = 4 << 10
)

// extracted is what an unpacked archive holds.
type extracted struct {
	procs   map[string]string
	files   int   // regular files and hard links
	bytes   int64 // their total size
	entries int   // everything created, directories and links included
	top     string
}

// extract unpacks the archive in r (size bytes) into dir, which must exist
// and be empty, moves a single top-level folder up when it holds the
// Procfile, checks every symlink once the tree is complete and parses the
// Procfile. On any error it removes dir.
func extract(ctx context.Context, r io.ReaderAt, size int64, dir string, lim limits, logf func(string, ...any)) (res *extracted, err error) {
	defer func() {
		if err != nil {
			if rerr := os.RemoveAll(dir); rerr != nil {
				err = fmt.Errorf("%w (and removing %s failed: %v)", err, dir, rerr)
			}
		}
	}()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("slug: open %s: %w", dir, err)
	}
	defer root.Close()

	u := &unpacker{
		ctx:  ctx,
		root: root,
		lim:  lim,
		seen: make(map[string]entryKind),
		dirs: make(map[string]bool),
		buf:  make([]byte, 64<<10),
	}
	head := make([]byte, 512)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("slug: read archive: %w", err)
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		err = u.untar(io.NewSectionReader(r, 0, size), true)
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		err = u.unzip(r, size)
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		err = u.untar(io.NewSectionReader(r, 0, size), false)
	default:
		err = slipway.Errorf(slipway.EUnprocessable, "The source is not a .tar.gz or .zip archive (nor a plain .tar); create it with tar -czf or zip -r.")
	}
	if err != nil {
		return nil, err
	}

	res = &extracted{files: u.files, bytes: u.bytes, entries: u.entries}
	if res.top, err = u.stripTopFolder(); err != nil {
		return nil, err
	}
	for _, l := range u.links {
		if err := u.checkSymlink(l); err != nil {
			return nil, err
		}
	}
	logf("Unpacked %d files (%d bytes)", res.files, res.bytes)
	if res.top != "" {
		logf("Using the archive's only folder %s/ as the root, as it holds the Procfile", res.top)
	}
	if res.procs, err = readProcfile(root); err != nil {
		return nil, err
	}
	logf("Process types: %s", processList(res.procs))
	return res, nil
}

type entryKind int

const (
	kindNone entryKind = iota
	kindDir
	kindFile
	kindSymlink
)

// unpacker writes one archive's entries under root. It is used by one
// goroutine and thrown away.
type unpacker struct {
	ctx     context.Context
	root    *os.Root
	lim     limits
	seen    map[string]entryKind // every path written, cleaned
	dirs    map[string]bool      // paths known to be real directories
	links   []string             // symlinks written, checked once all is unpacked
	entries int
	files   int
	bytes   int64
	buf     []byte
}

// untar unpacks a tar stream, gunzipping it first when gz is set.
func (u *unpacker) untar(src io.Reader, gz bool) error {
	var r io.Reader = &ctxReader{ctx: u.ctx, r: src}
	if gz {
		zr, err := gzip.NewReader(r)
		if err != nil {
			if u.ctx.Err() != nil {
				return stopped(u.ctx.Err())
			}
			return slipway.Errorf(slipway.EUnprocessable, "The archive is not a valid gzip stream (%v); create it with tar -czf.", err)
		}
		defer zr.Close()
		r = zr
	}
	capped := &capReader{r: r, left: satAdd(u.lim.maxUnpacked, satMul(int64(u.lim.maxFiles), tarOverhead)), max: u.lim.maxUnpacked}
	tr := tar.NewReader(capped)
	for {
		if err := u.ctx.Err(); err != nil {
			return stopped(err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return u.readErr(err, "")
		}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader:
			// pax_global_header, e.g. the commit id in GitHub tarballs.
			continue
		case tar.TypeReg, tar.TypeGNUSparse:
			err = u.file(hdr.Name, hdr.Size, hdr.Mode&0o111 != 0, tr)
		case tar.TypeDir:
			err = u.dir(hdr.Name)
		case tar.TypeSymlink:
			err = u.symlink(hdr.Name, hdr.Linkname)
		case tar.TypeLink:
			err = u.hardlink(hdr.Name, hdr.Linkname)
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			err = slipway.Errorf(slipway.EUnprocessable, "Entry %q is a device or fifo; a slug may hold only files, directories and links, so remove it from the archive.", slipway.Clip(hdr.Name))
		default:
			err = slipway.Errorf(slipway.EUnprocessable, "Entry %q has tar type %q, which a slug cannot hold; re-create the archive with plain files, directories and links.", slipway.Clip(hdr.Name), string(hdr.Typeflag))
		}
		if err != nil {
			return err
		}
	}
	if gz {
		// Read to the end of the gzip member so its CRC is checked; junk
		// after a complete member (gzip.ErrHeader) is tolerated as tar does.
		if _, err := io.CopyBuffer(io.Discard, capped, u.buf); err != nil && !errors.Is(err, gzip.ErrHeader) {
			return u.readErr(err, "")
		}
	}
	return nil
}

// unzip unpacks a zip archive.
func (u *unpacker) unzip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are checked below
		return slipway.Errorf(slipway.EUnprocessable, "The zip archive is corrupt (%v); re-create it with zip -r.", err)
	}
	if len(zr.File) > u.lim.maxFiles {
		return tooManyEntries(u.lim.maxFiles)
	}
	// Fail before writing anything when the declared sizes are already too
	// much; the real sizes are counted while copying, as these may lie.
	var total uint64
	for _, f := range zr.File {
		total += min(f.UncompressedSize64, math.MaxInt64/2)
		if total > uint64(u.lim.maxUnpacked) {
			return tooLargeUnpacked(u.lim.maxUnpacked)
		}
	}
	for _, f := range zr.File {
		if err := u.ctx.Err(); err != nil {
			return stopped(err)
		}
		mode := f.Mode()
		switch {
		case mode.IsDir():
			err = u.dir(f.Name)
		case mode&fs.ModeSymlink != 0:
			var target string
			if target, err = u.zipSymlinkTarget(f); err == nil {
				err = u.symlink(f.Name, target)
			}
		case mode.Type() == 0:
			err = u.zipFile(f)
		default:
			err = slipway.Errorf(slipway.EUnprocessable, "Entry %q is a device, fifo or socket; a slug may hold only files, directories and links, so remove it from the archive.", slipway.Clip(f.Name))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (u *unpacker) zipOpen(f *zip.File) (io.ReadCloser, error) {
	rc, err := f.Open()
	if errors.Is(err, zip.ErrAlgorithm) {
		return nil, slipway.Errorf(slipway.EUnprocessable, "Entry %q uses a compression method Slipway cannot read; re-create the zip with deflate (zip -r).", slipway.Clip(f.Name))
	}
	if err != nil {
		return nil, u.readErr(err, f.Name)
	}
	return rc, nil
}

func (u *unpacker) zipFile(f *zip.File) error {
	rc, err := u.zipOpen(f)
	if err != nil {
		return err
	}
	defer rc.Close()
	return u.file(f.Name, int64(min(f.UncompressedSize64, math.MaxInt64)), f.Mode()&0o111 != 0, rc)
}

func (u *unpacker) zipSymlinkTarget(f *zip.File) (string, error) {
	rc, err := u.zipOpen(f)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(&ctxReader{ctx: u.ctx, r: rc}, maxPathLen+1))
	if err != nil {
		return "", u.readErr(err, f.Name)
	}
	return string(b), nil
}

// clean turns an entry name into a path relative to the root, "" for the
// root itself, refusing names that are absolute or climb out, and names
// that are not UTF-8 or hold control characters (a newline or an escape
// sequence in a file name misleads whoever reads a listing or a log).
func clean(raw string) (string, error) {
	name := slipway.Clip(raw)
	switch {
	case strings.ContainsRune(raw, 0):
		return "", slipway.Errorf(slipway.EUnprocessable, "Entry %q has a NUL byte in its name; re-create the archive.", name)
	case !utf8.ValidString(raw):
		i := invalidUTF8At(raw)
		return "", slipway.Errorf(slipway.EUnprocessable, "Entry %q has a name that is not valid UTF-8 (byte %#x at %d); rename it, or re-create the archive with UTF-8 file names.", name, raw[i], i)
	case strings.ContainsFunc(raw, unicode.IsControl):
		i := strings.IndexFunc(raw, unicode.IsControl)
		c, _ := utf8.DecodeRuneInString(raw[i:])
		return "", slipway.Errorf(slipway.EUnprocessable, "Entry %q has the control character %U at byte %d of its name; rename it.", name, c, i)
	case strings.Contains(raw, `\`):
		return "", slipway.Errorf(slipway.EUnprocessable, "Entry %q has a backslash in its name; re-create the archive with a tool that separates paths with /.", name)
	case strings.HasPrefix(raw, "/"):
		return "", slipway.Errorf(slipway.EUnprocessable, "Entry %q has an absolute path; archives must hold paths relative to their root.", name)
	}
	c := path.Clean(raw)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", slipway.Errorf(slipway.EUnprocessable, "Entry %q points outside the archive with ..; remove it from the archive.", name)
	}
	if c == "." {
		return "", nil
	}
	if len(c) > maxPathLen {
		return "", slipway.Errorf(slipway.EUnprocessable, "Entry %q has a path longer than %d bytes; shorten it.", name, maxPathLen)
	}
	for _, p := range strings.Split(c, "/") {
		if len(p) > maxNameLen {
			return "", slipway.Errorf(slipway.EUnprocessable, "Entry %q has a name longer than %d bytes; shorten it.", name, maxNameLen)
		}
	}
	return c, nil
}

// invalidUTF8At is the index of the first byte of s that is not part of
// valid UTF-8.
func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}

// cleanEntry is clean for an entry that cannot be the root.
func cleanEntry(raw string) (string, error) {
	c, err := clean(raw)
	if err == nil && c == "" {
		err = slipway.Errorf(slipway.EUnprocessable, "Entry %q names the archive's root, which only a directory can; re-create the archive.", slipway.Clip(raw))
	}
	return c, err
}

// add counts one more entry against MaxFiles.
func (u *unpacker) add() error {
	if u.entries >= u.lim.maxFiles {
		return tooManyEntries(u.lim.maxFiles)
	}
	u.entries++
	return nil
}

// parents makes sure every parent of name is a real directory inside the
// root, creating missing ones. It never follows a symlink: a parent that is
// one (or is a file) fails the entry, so an archive cannot write through a
// link it placed earlier.
func (u *unpacker) parents(name string) error {
	dir := path.Dir(name)
	if dir == "." || u.dirs[dir] {
		return nil
	}
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		p := dir[:i]
		if u.dirs[p] {
			continue
		}
		fi, err := u.root.Lstat(p)
		switch {
		case err == nil && fi.IsDir():
			u.dirs[p] = true
		case err == nil && fi.Mode()&fs.ModeSymlink != 0:
			return slipway.Errorf(slipway.EUnprocessable, "Entry %q would be written through the symlink %q; archives may not place entries inside a symlinked directory.", slipway.Clip(name), slipway.Clip(p))
		case err == nil:
			return slipway.Errorf(slipway.EUnprocessable, "Entry %q lies under %q, which is not a directory; re-create the archive.", slipway.Clip(name), slipway.Clip(p))
		case errors.Is(err, fs.ErrNotExist):
			if err := u.mkdir(p); err != nil {
				return err
			}
		default:
			return u.fsErr(err, p)
		}
	}
	return nil
}

func (u *unpacker) mkdir(p string) error {
	if err := u.add(); err != nil {
		return err
	}
	if err := u.root.Mkdir(p, 0o755); err != nil {
		return u.fsErr(err, p)
	}
	if err := u.root.Chmod(p, 0o755); err != nil { // whatever the umask
		return u.fsErr(err, p)
	}
	u.seen[p] = kindDir
	u.dirs[p] = true
	return nil
}

func (u *unpacker) dir(raw string) error {
	name, err := clean(raw)
	if err != nil || name == "" {
		return err
	}
	if u.dirs[name] {
		return nil // listed again, or created earlier as a parent
	}
	if err := u.parents(name); err != nil {
		return err
	}
	fi, err := u.root.Lstat(name)
	switch {
	case err == nil && fi.IsDir():
		u.dirs[name] = true
		return nil
	case err == nil:
		return duplicate(name)
	case !errors.Is(err, fs.ErrNotExist):
		return u.fsErr(err, name)
	}
	return u.mkdir(name)
}

// file writes a regular file of the given declared size from r. Modes are
// 0755 when any execute bit was set, else 0644; setuid, setgid and sticky
// bits are dropped.
func (u *unpacker) file(raw string, size int64, exec bool, r io.Reader) error {
	name, err := cleanEntry(raw)
	if err != nil {
		return err
	}
	if size < 0 {
		return slipway.Errorf(slipway.EUnprocessable, "Entry %q has a negative size; re-create the archive.", slipway.Clip(name))
	}
	if size > u.lim.maxUnpacked-u.bytes {
		return tooLargeUnpacked(u.lim.maxUnpacked)
	}
	if err := u.parents(name); err != nil {
		return err
	}
	if err := u.add(); err != nil {
		return err
	}
	mode := fs.FileMode(0o644)
	if exec {
		mode = 0o755
	}
	// O_EXCL: never open (and so never follow) anything already there.
	f, err := u.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return duplicate(name)
	}
	if err != nil {
		return u.fsErr(err, name)
	}
	u.seen[name] = kindFile
	u.files++
	werr := u.copy(f, r, name)
	if werr == nil {
		werr = f.Chmod(mode) // whatever the umask
		if werr != nil {
			werr = u.fsErr(werr, name)
		}
	}
	if err := f.Close(); err != nil && werr == nil {
		werr = u.fsErr(err, name)
	}
	return werr
}

// copy copies r to w, counting every byte against MaxUnpacked whatever the
// archive declared.
func (u *unpacker) copy(w io.Writer, r io.Reader, name string) error {
	r = &ctxReader{ctx: u.ctx, r: r}
	for {
		n, rerr := r.Read(u.buf)
		if n > 0 {
			u.bytes += int64(n)
			if u.bytes > u.lim.maxUnpacked {
				return tooLargeUnpacked(u.lim.maxUnpacked)
			}
			if _, err := w.Write(u.buf[:n]); err != nil {
				return u.fsErr(err, name)
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return u.readErr(rerr, name)
		}
	}
}

// symlink writes a symlink after a first, lexical check of its target;
// checkSymlink resolves it against the finished tree.
func (u *unpacker) symlink(raw, target string) error {
	name, err := cleanEntry(raw)
	if err != nil {
		return err
	}
	if err := checkTarget(name, target); err != nil {
		return err
	}
	if err := u.parents(name); err != nil {
		return err
	}
	if err := u.add(); err != nil {
		return err
	}
	if err := u.root.Symlink(target, name); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return duplicate(name)
		}
		return u.fsErr(err, name)
	}
	u.seen[name] = kindSymlink
	u.links = append(u.links, name)
	return nil
}

// checkTarget refuses symlink targets that are empty, absolute, or that
// climb out of the root when read relative to the link's directory.
func checkTarget(name, target string) error {
	switch {
	case target == "" || len(target) > maxPathLen || strings.ContainsRune(target, 0):
		return slipway.Errorf(slipway.EUnprocessable, "Symlink %q has an empty or malformed target; re-create the archive.", slipway.Clip(name))
	case !utf8.ValidString(target) || strings.ContainsFunc(target, unicode.IsControl):
		return slipway.Errorf(slipway.EUnprocessable, "Symlink %q points to %q, which is not valid UTF-8 or holds a control character; re-create the link.", slipway.Clip(name), slipway.Clip(target))
	case strings.HasPrefix(target, "/"):
		return slipway.Errorf(slipway.EUnprocessable, "Symlink %q points to the absolute path %q; use a relative target inside the archive.", slipway.Clip(name), slipway.Clip(target))
	}
	if t := path.Join(path.Dir(name), target); t == ".." || strings.HasPrefix(t, "../") {
		return escapingLink(name, target)
	}
	return nil
}

func escapingLink(name, target string) error {
	return slipway.Errorf(slipway.EUnprocessable, "Symlink %q points to %q, outside the archive; make it point inside the archive or remove it.", slipway.Clip(name), slipway.Clip(target))
}

// hardlink links name to an earlier regular file of the archive. Tar gives
// hard link targets relative to the archive's root.
func (u *unpacker) hardlink(raw, target string) error {
	name, err := cleanEntry(raw)
	if err != nil {
		return err
	}
	t, err := clean(target)
	if err != nil || t == "" || u.seen[t] != kindFile {
		return slipway.Errorf(slipway.EUnprocessable, "Hard link %q points to %q, which is not a regular file earlier in the archive; re-create the archive without it.", slipway.Clip(name), slipway.Clip(target))
	}
	if err := u.parents(name); err != nil {
		return err
	}
	if err := u.add(); err != nil {
		return err
	}
	if err := u.root.Link(t, name); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return duplicate(name)
		}
		return u.fsErr(err, name)
	}
	u.seen[name] = kindFile
	u.files++
	return nil
}

// checkSymlink resolves the symlink at link component by component against
// the unpacked tree, following other symlinks, and fails if that ever
// leaves the root or takes too many hops. Components that do not exist are
// taken as they are written; the kernel would not resolve through them.
func (u *unpacker) checkSymlink(link string) error {
	target, err := u.root.Readlink(link)
	if err != nil {
		return u.fsErr(err, link)
	}
	var stack []string
	if d := path.Dir(link); d != "." {
		stack = strings.Split(d, "/")
	}
	todo := strings.Split(target, "/")
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return escapingLink(link, target)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, c)
		p := strings.Join(stack, "/")
		fi, err := u.root.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		if hops++; hops > maxSymlinkHops {
			return slipway.Errorf(slipway.EUnprocessable, "Symlink %q is part of a loop or a chain of more than %d links; fix or remove it.", slipway.Clip(link), maxSymlinkHops)
		}
		t, err := u.root.Readlink(p)
		if err != nil {
			return u.fsErr(err, p)
		}
		if strings.HasPrefix(t, "/") {
			return escapingLink(link, target)
		}
		stack = stack[:len(stack)-1]
		todo = append(strings.Split(t, "/"), todo...)
	}
	return nil
}

// junk is macOS metadata that Finder puts beside a zipped folder.
func junk(name string) bool { return name == "__MACOSX" || name == ".DS_Store" }

// stripTopFolder moves the content of the root's only directory up when the
// root has no Procfile and that directory has one. It returns the folder's
// name, or "" when it left the tree as it was.
func (u *unpacker) stripTopFolder() (string, error) {
	if _, err := u.root.Lstat("Procfile"); !errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	top := ""
	names, err := u.readDir(".")
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if junk(n) {
			continue
		}
		if top != "" {
			return "", nil
		}
		top = n
	}
	if top == "" {
		return "", nil
	}
	if fi, err := u.root.Lstat(top); err != nil || !fi.IsDir() {
		return "", nil
	}
	if fi, err := u.root.Lstat(top + "/Procfile"); err != nil || !fi.Mode().IsRegular() {
		return "", nil
	}
	children, err := u.readDir(top)
	if err != nil {
		return "", err
	}
	taken := map[string]bool{}
	for _, n := range names {
		taken[n] = true
	}
	for _, c := range children {
		if c != top && taken[c] {
			return "", nil // would collide with __MACOSX or .DS_Store
		}
		taken[c] = true
	}
	tmp := ".slipway-root"
	for i := 0; taken[tmp]; i++ {
		tmp = fmt.Sprintf(".slipway-root-%d", i)
	}
	if err := u.root.Rename(top, tmp); err != nil {
		return "", u.fsErr(err, top)
	}
	for _, c := range children {
		if err := u.root.Rename(tmp+"/"+c, c); err != nil {
			return "", u.fsErr(err, c)
		}
	}
	if err := u.root.Remove(tmp); err != nil {
		return "", u.fsErr(err, top)
	}
	for i, l := range u.links {
		if rest, ok := strings.CutPrefix(l, top+"/"); ok {
			u.links[i] = rest
		}
	}
	return top, nil
}

func (u *unpacker) readDir(p string) ([]string, error) {
	f, err := u.root.Open(p)
	if err != nil {
		return nil, u.fsErr(err, p)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, u.fsErr(err, p)
	}
	return names, nil
}

// readProcfile parses the Procfile at the root, which must be a regular file.
func readProcfile(root *os.Root) (map[string]string, error) {
	fi, err := root.Lstat("Procfile")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, slipway.Errorf(slipway.EUnprocessable, "The archive has no Procfile at its root; add one with a line such as `web: ./server`.")
	case err != nil:
		return nil, fmt.Errorf("slug: read Procfile: %w", err)
	case !fi.Mode().IsRegular():
		return nil, slipway.Errorf(slipway.EUnprocessable, "The Procfile at the archive's root must be a regular file, not a symlink or directory.")
	case fi.Size() > maxProcfile:
		return nil, slipway.Errorf(slipway.EUnprocessable, "The Procfile is larger than %d bytes; keep it to one line per process type.", maxProcfile)
	}
	f, err := root.Open("Procfile")
	if err != nil {
		return nil, fmt.Errorf("slug: read Procfile: %w", err)
	}
	defer f.Close()
	return ParseProcfile(io.LimitReader(f, maxProcfile))
}

// readErr classifies an error reading the archive: a stop, a limit, or a
// corrupt archive.
func (u *unpacker) readErr(err error, name string) error {
	var se *slipway.Error
	switch {
	case u.ctx.Err() != nil:
		return stopped(u.ctx.Err())
	case errors.As(err, &se):
		return err
	case name != "":
		return slipway.Errorf(slipway.EUnprocessable, "The archive is corrupt at entry %q (%v); re-create it.", slipway.Clip(name), err)
	}
	return slipway.Errorf(slipway.EUnprocessable, "The archive is corrupt (%v); re-create it.", err)
}

// fsErr reports a failure of the local file system; it is the server's
// problem, not the archive's, so it carries no code.
func (u *unpacker) fsErr(err error, name string) error {
	if u.ctx.Err() != nil {
		return stopped(u.ctx.Err())
	}
	return fmt.Errorf("slug: unpack %s: %w", name, err)
}

func duplicate(name string) error {
	return slipway.Errorf(slipway.EUnprocessable, "The archive has two entries named %q; remove one of them.", slipway.Clip(name))
}

func tooLargeUnpacked(max int64) error {
	return slipway.Errorf(slipway.ETooLarge, "The archive unpacks to more than %d bytes; make the slug smaller or ask the operator to raise the limit.", max)
}

func tooManyEntries(max int) error {
	return slipway.Errorf(slipway.ETooLarge, "The archive holds more than %d files and directories; make the slug smaller or ask the operator to raise the limit.", max)
}

// capReader fails with ETooLarge once more than left bytes were read.
type capReader struct {
	r    io.Reader
	left int64
	max  int64 // reported in the error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Only an error if there is more to read.
		var one [1]byte
		if n, err := c.r.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, tooLargeUnpacked(c.max)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a != 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}
