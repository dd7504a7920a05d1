package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
)

// TestAppendRelease_MatchesEncodingJSON keeps the fast list encoder and the
// struct shape of single releases the same.
func TestAppendRelease_MatchesEncodingJSON(t *testing.T) {
	base := slipway.Release{ID: "1b2c", AppID: "a1", AppName: "hello", AppKey: "hello-default", Version: 42, SlugID: "s1", Status: "failed",
		State: "pending", Current: true, Trigger: "deploy", UserID: "u1", CreatedAt: time.Unix(1468888461, 602e6), UpdatedAt: time.Unix(1468888462, 1e6)}
	odd := []string{"", "plain", `quote " and \ backslash`, "new\nline\ttab\r\b\f", "ctl\x00\x1f", "<html>&amp;", "bad utf8 \xff\xfe", "line\u2028sep\u2029", "héllo ✓ 🚀"}
	for i, s := range odd {
		r := base
		r.Description, r.Error, r.UserEmail = s, s, s
		if i%2 == 1 {
			r.Failure = &slipway.Failure{Phase: slipway.FailHealth, Dyno: s, ExitCode: slipway.ExitStatus(i), Output: []string{s, "<b>"},
				Health: &slipway.HealthAnswer{Check: "GET /health", Code: 500, Body: s}, Check: &slipway.FailedCheck{Context: "ci/x", TargetURL: "https://x/?a=1&b=2"}}
		}
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

// BenchmarkReleaseJSON encodes 1,000 releases with the list encoder and
// with encoding/json (as a page of the list is encoded), without HTTP or a
// store, so that its figures hold still on a busy machine.
func BenchmarkReleaseJSON(b *testing.B) {
	rels := make([]slipway.Release, 1000)
	for i := range rels {
		rels[i] = slipway.Release{ID: fmt.Sprintf("%08x-4e5f-4a6b-8c7d-%012x", i, i), AppID: "0b0c6d1e-2f30-4a41-8b52-c3d4e5f60718",
			AppName: "hello", AppKey: "hello-default", Version: i + 1, SlugID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", Status: slipway.ReleaseSucceeded,
			State: "success", Trigger: slipway.TriggerDeploy, UserID: "admin", UserEmail: "admin@slipway.local",
			Description: fmt.Sprintf("Deploy v%d of \"hello\"", i+1), CreatedAt: time.Unix(1468888461, int64(i)*1e6), UpdatedAt: time.Unix(1468888462, 602e6)}
	}
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 1<<20)
		for b.Loop() {
			buf = buf[:0]
			for i := range rels {
				buf = appendRelease(buf, &rels[i])
			}
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("encoding-json", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := encodeReleases(&buf, rels, releaseToJSON); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
}

// encodeReleases encodes rels as writeJSON does, through conv.
func encodeReleases[T any](w io.Writer, rels []slipway.Release, conv func(*slipway.Release) T) error {
	out := make([]T, 0, len(rels))
	for i := range rels {
		out = append(out, conv(&rels[i]))
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}
