package slipway

import (
	"strings"
	"unicode/utf8"
)

// MaxEcho is how many characters of a request's input an error message
// quotes at most.
const MaxEcho = 64

// Clip returns s when it has at most MaxEcho characters, else its first
// MaxEcho followed by "…". Error messages quote input through Clip (and %q)
// so that a megabyte sent in a path, header or field does not come back in
// the answer. A byte that is not valid UTF-8 counts as one character.
func Clip(s string) string {
	n, i := 0, 0
	for i < len(s) {
		if n == MaxEcho {
			return s[:i] + "…"
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return s
}

// Sentence returns s ending in a full stop, so that another sentence can
// follow it: s as it is when it already ends in '.', '!' or '?', else s
// with "." added. Messages of one error are joined with Sentence(first) +
// " " + next.
func Sentence(s string) string {
	s = strings.TrimRight(s, " \t\n")
	if s == "" || strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}
