package api

import (
	"strings"
	"testing"

	"github.com/slipway/slipway"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		in      string
		want    slipway.Page
		wantErr bool
	}{
		{"", slipway.Page{}, false},
		{"version ..", slipway.Page{Max: 200}, false},
		{"version ..; order=desc, max=20", slipway.Page{Desc: true, Max: 20}, false},
		{"version 5..; max=10", slipway.Page{Start: "5", Max: 10}, false},
		{"version ]5..; order=asc, max=10", slipway.Page{Start: "5", StartExclusive: true, Max: 10}, false},
		{"version", slipway.Page{Max: 200}, false},
		{"id ..", slipway.Page{}, true},
		{"version abc..", slipway.Page{}, true},
		{"version 5", slipway.Page{}, true},
		{"version ..; max=0", slipway.Page{}, true},
		{"version ..; max=1001", slipway.Page{}, true},
		{"version ..; order=up", slipway.Page{}, true},
		{"version ..; limit=5", slipway.Page{}, true},
	}
	for _, tt := range tests {
		got, err := parseRange(tt.in, "version")
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("parseRange(%q) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err != nil && slipway.ErrorCode(err) != slipway.EInvalid {
			t.Errorf("parseRange(%q): code %s, want bad_request", tt.in, slipway.ErrorCode(err))
		}
	}
}

// FuzzParseRange: any header parses or is a 400, and a parsed page is
// within bounds and reproduces itself through its Next-Range.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"version ..; order=desc, max=20", "version ]5..", "version 1..9; max=3", "x", "version ..;;,,", "version \x00.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		p, err := parseRange(h, "version")
		if err != nil {
			if slipway.ErrorCode(err) != slipway.EInvalid {
				t.Fatalf("%q: %v", h, err)
			}
			return
		}
		if strings.TrimSpace(h) == "" {
			return
		}
		if p.Max < 1 || p.Max > maxPageMax {
			t.Fatalf("%q: max %d", h, p.Max)
		}
		next := nextRange("version", p, "7")
		q, err := parseRange(next, "version")
		if err != nil || q.Start != "7" || !q.StartExclusive || q.Desc != p.Desc || q.Max != p.Max {
			t.Fatalf("%q: Next-Range %q parses to %+v, %v", h, next, q, err)
		}
	})
}
