package api

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/slipway/slipway"
)

// FuzzReadBuildBody holds the streaming reader of build bodies to
// encoding/json, which it replaces: a body the standard decoder refuses is
// refused, and one it accepts gives the same fields, except where the
// reader is stricter on purpose (url given twice or not UTF-8) or decodes
// the data: URI it streams.
func FuzzReadBuildBody(f *testing.F) {
	for _, s := range []string{
		`{"url":"data:;base64,QUJD","checksum":"sha256:x"}`,
		`{"checksum":"c","url":"https://example.com/a.tgz","version":"1"}`,
		`{"URL":"docker://x/y:1","message":"a \"b\" {c} [d]","author":null}`,
		`{"url":"h\u0074tp://x\/y","repo":"\ud83d\ude00\ud800x"}`,
		`{"url":"https://x/","url":"https://y/"}`,
		`{"url":5}`, `null`, `[]`, ``, `{`, `{"a":}`, `{"a":1 2}`, `{"version":tru}`,
		`{"url":"data:;base64,QU*JD"}`, ` { "url" : "x" , "sha" : "y" } `,
	} {
		f.Add(s)
	}
	spool := f.TempDir()
	s := New(Config{MaxSlug: 1 << 20, MaxBody: 4 << 10, SpoolDir: spool})
	f.Fuzz(func(t *testing.T, in string) {
		r := httptest.NewRequest("POST", "/apps/a/builds", strings.NewReader(in))
		got, file, err := s.readBuildBody(httptest.NewRecorder(), r)
		if file != "" {
			os.Remove(file)
		}
		if code := slipway.ErrorCode(err); err != nil && code != slipway.EInvalid && code != slipway.EUnprocessable && code != slipway.ETooLarge {
			t.Fatalf("%q: code %s (%v)", in, code, err)
		}
		if left, _ := os.ReadDir(spool); len(left) > 0 {
			t.Fatalf("%q: left %v in the spool dir", in, left)
		}
		var want buildBody
		stdErr := json.Unmarshal([]byte(in), &want)
		switch {
		case stdErr != nil && err == nil:
			t.Fatalf("%q: encoding/json refuses it (%v), the reader accepts %+v", in, stdErr, got)
		case stdErr != nil || len(in) > 4<<10:
		case err != nil:
			if strings.Contains(err.Error(), "url twice") || !utf8.ValidString(in) || strings.HasPrefix(strings.ToLower(want.URL), "data:") {
				return
			}
			t.Fatalf("%q: encoding/json accepts it as %+v, the reader refuses it: %v", in, want, err)
		case strings.HasPrefix(strings.ToLower(want.URL), "data:"):
			if got.URL != "data:" || file == "" {
				t.Fatalf("%q: the data: URI was not decoded: %+v", in, got)
			}
			got.URL = want.URL
			fallthrough
		default:
			if got != want {
				t.Fatalf("%q: reader %+v, encoding/json %+v", in, got, want)
			}
		}
	})
}
