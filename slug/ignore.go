package slug

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// Ignore is a list of patterns in .gitignore syntax, as a .slipwayignore
// holds them: "name" at any depth, "/name" or "dir/name" from the top
// only, "dir/" folders only, "**" for any number of folders at the start,
// the end or the middle ("a/**/b"), "!pattern" takes a path back, and "#"
// starts a comment. The last pattern that matches decides. A path inside a
// folder that matches is left out with its folder, and no later "!" takes
// it back (as with git).
//
// The matching is go-git's (plumbing/format/gitignore), which is
// maintained and tells folders from files, as "dir/" patterns need.
type Ignore struct {
	m gitignore.Matcher
}

// ParseIgnore reads patterns from text, one a line. Blank lines and lines
// whose first non-blank character is "#" are skipped; leading blanks and
// a CR before the line end are not part of a pattern; trailing spaces are
// not either, unless escaped ("\ ").
func ParseIgnore(text string) *Ignore {
	return &Ignore{m: gitignore.NewMatcher(parsePatterns(text))}
}

func parsePatterns(text string) []gitignore.Pattern {
	var ps []gitignore.Pattern
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimLeft(strings.TrimRight(line, "\r"), " \t")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, nil))
	}
	return ps
}

// ReadIgnoreFile reads the patterns of the file name at dir's top (such
// as ".slipwayignore") and adds two of its own, which no "!" takes back:
// the file itself and ".git" at the top are left out. A missing file
// leaves out only those two.
func ReadIgnoreFile(dir, name string) (*Ignore, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	// The matcher tries the last pattern first: these two always win.
	ps := append(parsePatterns(string(b)), gitignore.ParsePattern("/.git", nil), gitignore.ParsePattern("/"+name, nil))
	return &Ignore{m: gitignore.NewMatcher(ps)}, nil
}

// Match reports whether rel, a slash-separated path relative to the top,
// is left out; isDir says whether it is a folder. A nil Ignore leaves out
// nothing.
func (ig *Ignore) Match(rel string, isDir bool) bool {
	if ig == nil || rel == "" || rel == "." {
		return false
	}
	return ig.m.Match(strings.Split(rel, "/"), isDir)
}
