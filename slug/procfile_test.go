package slug

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/slipway/slipway"
)

// procfileOf returns a Procfile of n process types p1…pn, and the map
// it parses to.
func procfileOf(n int) (string, map[string]string) {
	var b strings.Builder
	want := map[string]string{}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "p%d: ./run %d\n", i, i)
		want[fmt.Sprintf("p%d", i)] = fmt.Sprintf("./run %d", i)
	}
	return b.String(), want
}

func TestParseProcfile(t *testing.T) {
	fifty, fiftyWant := procfileOf(50)
	fiftyWant["release"] = "./migrate"
	fiftyOne, _ := procfileOf(51)
	tests := []struct {
		name     string
		in       string
		want     map[string]string
		wantCode string
		wantMsg  string
	}{
		{name: "one", in: "web: ./server", want: map[string]string{"web": "./server"}},
		{
			name: "comments blanks and spacing",
			in:   "# processes\n\nweb:   bundle exec puma -b 0.0.0.0:$PORT  \n  # indented comment\n\tworker :./work --queue=a:b # not a comment\nrelease: ./migrate\n\n",
			want: map[string]string{"web": "bundle exec puma -b 0.0.0.0:$PORT", "worker": "./work --queue=a:b # not a comment", "release": "./migrate"},
		},
		{name: "CRLF", in: "web: ./server\r\nworker: ./worker\r\n", want: map[string]string{"web": "./server", "worker": "./worker"}},
		{name: "byte order mark", in: "\ufeffweb: ./server\n", want: map[string]string{"web": "./server"}},
		{name: "names", in: "a-b_c9: x\n9lives: y\n" + strings.Repeat("n", 30) + ": z", want: map[string]string{"a-b_c9": "x", "9lives": "y", strings.Repeat("n", 30): "z"}},
		{name: "tab in command", in: "web: a\tb", want: map[string]string{"web": "a\tb"}},
		{name: "no colon", in: "web: ok\nworker ./worker\n", wantCode: slipway.EUnprocessable, wantMsg: "line 2 is not of the form"},
		{name: "empty name", in: ": ./server", wantCode: slipway.EUnprocessable, wantMsg: "line 1 is not of the form"},
		{name: "uppercase name", in: "Web: ./server", wantCode: slipway.EUnprocessable, wantMsg: `line 1: process type "Web" is invalid`},
		{name: "space in name", in: "my web: ./server", wantCode: slipway.EUnprocessable, wantMsg: "is invalid"},
		{name: "dot in name", in: "web.1: ./server", wantCode: slipway.EUnprocessable, wantMsg: "is invalid"},
		{name: "leading dash", in: "-web: ./server", wantCode: slipway.EUnprocessable, wantMsg: "is invalid"},
		{name: "name too long", in: strings.Repeat("n", 31) + ": x", wantCode: slipway.EUnprocessable, wantMsg: "at most 30"},
		{name: "empty command", in: "web: ./server\nworker:   \n", wantCode: slipway.EUnprocessable, wantMsg: `line 2: process type "worker" has no command`},
		{name: "duplicate", in: "web: a\n\n# c\nweb: b\n", wantCode: slipway.EUnprocessable, wantMsg: `line 4 defines process type "web" again (first on line 1)`},
		{name: "control character", in: "web: a\x00b", wantCode: slipway.EUnprocessable, wantMsg: "control character"},
		{name: "only comments", in: "# web: ./server\n\n", wantCode: slipway.EUnprocessable, wantMsg: "defines no process types"},
		{name: "empty", in: "", wantCode: slipway.EUnprocessable, wantMsg: "defines no process types"},
		{name: "50 process types and release", in: fifty + "release: ./migrate\n", want: fiftyWant},
		{name: "51 process types", in: fiftyOne, wantCode: slipway.EUnprocessable, wantMsg: "defines 51 process types; an app may have at most 50"},
		{name: "line too long", in: "web: ok\nworker: " + strings.Repeat("x", 70<<10), wantCode: slipway.EUnprocessable, wantMsg: "line 2 is longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcfile(strings.NewReader(tt.in))
			if code := slipway.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("code %q (%v), want %q", code, err, tt.wantCode)
			}
			if err != nil {
				if msg := slipway.ErrorMessage(err); !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("message %q does not contain %q", msg, tt.wantMsg)
				}
				return
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseProcfile_ReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ParseProcfile(iotest.ErrReader(boom))
	if !errors.Is(err, boom) || slipway.ErrorCode(err) != slipway.EInternal {
		t.Fatalf("err = %v, want the reader's error, uncoded", err)
	}
}
