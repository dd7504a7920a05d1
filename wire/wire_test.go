package wire_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// errorCodes reads the error codes the domain declares in error.go (the
// constants named E…), so that a code added there without a status here
// fails this test.
func errorCodes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "error.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !strings.HasPrefix(n.Name, "E") || !ok || lit.Kind != token.STRING {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				codes[n.Name] = v
			}
		}
	}
	if len(codes) < 10 {
		t.Fatalf("found only %d error codes in error.go: %v", len(codes), codes)
	}
	return codes
}

func TestErrorTable_EveryCodeHasItsOwnStatusBothWays(t *testing.T) {
	seen := map[int]string{}
	for name, code := range errorCodes(t) {
		status := wire.StatusCode(code)
		if status < 400 || (status == http.StatusInternalServerError && code != slipway.EInternal) {
			t.Errorf("%s (%q) has no status of its own: %d", name, code, status)
		}
		if other, ok := seen[status]; ok {
			t.Errorf("%s and %s share status %d, so the client cannot tell them apart", other, name, status)
		}
		seen[status] = name
		if back := wire.ErrorCode(status); back != code {
			t.Errorf("status %d reads back as %q, want %q (%s)", status, back, code, name)
		}
	}
	for _, tt := range []struct {
		status int
		code   string
	}{
		{405, slipway.EMethodNotAllowed},
		{501, slipway.ENotImplemented},
		{502, slipway.EInternal},
		{503, slipway.EInternal},
		{418, slipway.EInternal},
	} {
		if got := wire.ErrorCode(tt.status); got != tt.code {
			t.Errorf("ErrorCode(%d) = %q, want %q", tt.status, got, tt.code)
		}
	}
	if got := wire.StatusCode("no_such_code"); got != http.StatusInternalServerError {
		t.Errorf("an unknown code is %d, want 500", got)
	}
}

func TestTime_WritesUTCMillisecondsAndReadsRFC3339(t *testing.T) {
	zone := time.FixedZone("UTC+2", 2*60*60)
	for _, tt := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2016, 7, 19, 2, 34, 21, 602_999_999, zone), `"2016-07-19T00:34:21.602Z"`},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), `"2026-01-02T03:04:05.000Z"`},
		{time.Time{}, `"0001-01-01T00:00:00.000Z"`},
	} {
		b, err := json.Marshal(wire.TimeOf(tt.in))
		if err != nil || string(b) != tt.want {
			t.Errorf("%v: %s, %v; want %s", tt.in, b, err, tt.want)
		}
		var back wire.Time
		if err := json.Unmarshal(b, &back); err != nil || !back.Equal(tt.in.Truncate(time.Millisecond)) {
			t.Errorf("%s reads back as %v, %v", b, back, err)
		}
	}
	var a struct {
		ReleasedAt *wire.Time `json:"released_at"`
	}
	if b, _ := json.Marshal(a); string(b) != `{"released_at":null}` {
		t.Errorf("nil time: %s", b)
	}
	if wire.TimePtr(nil) != nil {
		t.Error("TimePtr(nil) is not nil")
	}
	if err := json.Unmarshal([]byte(`{"released_at":"2016-07-19T00:34:21.6+02:00"}`), &a); err != nil || a.ReleasedAt == nil || a.ReleasedAt.UTC().Hour() != 22 {
		t.Errorf("an RFC 3339 time with an offset: %v, %v", a.ReleasedAt, err)
	}
}

// TestImports_TheContractNeedsNoServer keeps the client and the wire types
// free of the server: they import the standard library, the domain and
// wire only, and the domain the standard library only.
func TestImports_TheContractNeedsNoServer(t *testing.T) {
	const module = "github.com/slipway/slipway"
	allowed := map[string][]string{
		"..":        nil,
		".":         {module},
		"../client": {module, module + "/wire"},
	}
	for dir, ok := range allowed {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", dir, err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if !strings.Contains(strings.Split(path, "/")[0], ".") {
					continue // the standard library
				}
				if !slices.Contains(ok, path) {
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
	}
}
