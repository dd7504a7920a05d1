package api

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
)

// TestAppendRelease_MatchesEncodingJSON keeps the fast list encoder and the
// struct shape of single releases the same.
func TestAppendRelease_MatchesEncodingJSON(t *testing.T) {
	base := slipway.Release{ID: "1b2c", AppID: "a1", AppName: "hello", Version: 42, SlugID: "s1", Status: "failed",
		State: "pending", Current: true, Trigger: "deploy", UserID: "u1", CreatedAt: time.Unix(1468888461, 602e6), UpdatedAt: time.Unix(1468888462, 1e6)}
	odd := []string{"", "plain", `quote " and \ backslash`, "new\nline\ttab\r\b\f", "ctl\x00\x1f", "<html>&amp;", "bad utf8 \xff\xfe", "line\u2028sep\u2029", "héllo ✓ 🚀"}
	for _, s := range odd {
		r := base
		r.Description, r.Error, r.UserEmail = s, s, s
		want := marshal(t, releaseToJSON(&r))
		if got := appendRelease(nil, &r); string(got) != want {
			t.Errorf("for %q:\n got %s\nwant %s", s, got, want)
		}
	}
}

// marshal encodes v as writeJSON does (no HTML escaping), without the
// trailing newline.
func marshal(t *testing.T, v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00", "\xff", "\u2028", "<>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := slipway.Release{Description: s}
		want := marshal(t, releaseToJSON(&r))
		if got := appendRelease(nil, &r); string(got) != want {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}
