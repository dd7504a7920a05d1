package slipway_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slipway/slipway"
)

func TestClip(t *testing.T) {
	long := strings.Repeat("é", slipway.MaxEcho+1)
	tests := []struct{ in, want string }{
		{"", ""},
		{"hello", "hello"},
		{strings.Repeat("a", slipway.MaxEcho), strings.Repeat("a", slipway.MaxEcho)},
		{strings.Repeat("a", 1<<20), strings.Repeat("a", slipway.MaxEcho) + "…"},
		{long, long[:2*slipway.MaxEcho] + "…"}, // cut between runes, never inside one
		{strings.Repeat("\xff", slipway.MaxEcho+5), strings.Repeat("\xff", slipway.MaxEcho) + "…"},
	}
	for _, tt := range tests {
		if got := slipway.Clip(tt.in); got != tt.want {
			t.Errorf("Clip(%.20q…) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := slipway.Clip(long); !utf8.ValidString(got) {
		t.Errorf("Clip of valid UTF-8 gave invalid UTF-8 %q", got)
	}
}

func TestSentence(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"web.1 crashed", "web.1 crashed."},
		{"web.1 crashed.", "web.1 crashed."},
		{"is the controller running?", "is the controller running?"},
		{"last line: boom\n", "last line: boom."},
		{`exited (status 1)`, `exited (status 1).`},
	}
	for _, tt := range tests {
		if got := slipway.Sentence(tt.in); got != tt.want {
			t.Errorf("Sentence(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
