package slug

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/slipway/slipway"
)

// processTypeRE is the shape of a formation type. Compiled once, never
// written.
var processTypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,29}$`)

// maxProcfileLine is the longest Procfile line accepted, in bytes.
const maxProcfileLine = 64 << 10

// ParseProcfile reads a Procfile: one `name: command` per line, where name
// is a process type (lowercase letters, digits, dashes and underscores,
// starting with a letter or digit, at most 30 characters) and command is
// run by a shell as written. Blank lines and lines starting with # are
// skipped, surrounding whitespace and CRLF line endings are ignored, as is
// a UTF-8 byte order mark. It returns process type → command.
//
// Errors: EUnprocessable naming the line number for a line without a
// colon, an invalid process type, an empty command, a control character, a
// process type defined twice or a line longer than 64 KiB, and for a
// Procfile that defines no process types or more than
// slipway.MaxFormationTypes (release not counted: it is no formation). A
// failing r returns its error uncoded.
func ParseProcfile(r io.Reader) (map[string]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxProcfileLine)
	procs := map[string]string{}
	defined := map[string]int{}
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			return nil, slipway.Errorf(slipway.EUnprocessable, "Procfile line %d contains a control character; remove it.", n)
		}
		name, cmd, ok := strings.Cut(line, ":")
		name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
		if !ok || name == "" {
			return nil, slipway.Errorf(slipway.EUnprocessable, "Procfile line %d is not of the form `name: command`; fix it or start it with # to make it a comment.", n)
		}
		if !processTypeRE.MatchString(name) {
			return nil, slipway.Errorf(slipway.EUnprocessable, "Procfile line %d: process type %q is invalid; use lowercase letters, digits, dashes and underscores, at most 30 characters.", n, clip(name, 40))
		}
		if cmd == "" {
			return nil, slipway.Errorf(slipway.EUnprocessable, "Procfile line %d: process type %q has no command; add one after the colon.", n, name)
		}
		if first, dup := defined[name]; dup {
			return nil, slipway.Errorf(slipway.EUnprocessable, "Procfile line %d defines process type %q again (first on line %d); remove one of them.", n, name, first)
		}
		defined[name] = n
		procs[name] = cmd
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, slipway.Errorf(slipway.EUnprocessable, "Procfile line %d is longer than %d bytes; shorten it.", n+1, maxProcfileLine)
		}
		return nil, fmt.Errorf("slug: read Procfile: %w", err)
	}
	if len(procs) == 0 {
		return nil, slipway.Errorf(slipway.EUnprocessable, "The Procfile defines no process types; add a line such as `web: ./server`.")
	}
	// Every process type but release becomes a formation of the app.
	n = len(procs)
	if _, ok := procs["release"]; ok {
		n--
	}
	if n > slipway.MaxFormationTypes {
		return nil, slipway.Errorf(slipway.EUnprocessable, "The Procfile defines %d process types; an app may have at most %d. Merge or remove some.", n, slipway.MaxFormationTypes)
	}
	return procs, nil
}
