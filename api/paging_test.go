package api

import (
	"strings"
	"testing"
	"time"

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

func TestParseRange_CreatedAtCursor(t *testing.T) {
	const id = "0f8c1e2a-3b4d-4e5f-8a6b-7c8d9e0f1a2b"
	tests := []struct {
		in      string
		want    slipway.Page
		wantErr bool
	}{
		{"created_at 1733000000123456..", slipway.Page{Start: "1733000000123456", Max: 200}, false},
		{"created_at ]1733000000123456." + id + "..; max=5", slipway.Page{Start: "1733000000123456", StartID: id, StartExclusive: true, Max: 5}, false},
		{"created_at 1733000000123456." + id + "..; order=desc", slipway.Page{Start: "1733000000123456", StartID: id, Desc: true, Max: 200}, false},
		{"created_at ]1733000000123456.nope..", slipway.Page{}, true},
		{"created_at ]x." + id + "..", slipway.Page{}, true},
		{"version ]7." + id + "..", slipway.Page{}, true}, // versions have no cursor
	}
	for _, tt := range tests {
		field, _, _ := strings.Cut(tt.in, " ")
		got, err := parseRange(tt.in, field)
		if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
			t.Errorf("parseRange(%q) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	// A Next-Range cursor parses back to the row it names.
	p, _ := parseRange("created_at ..; max=3", "created_at")
	next := nextRange("created_at", p, createdAtCursor(time.UnixMicro(1733000000123456), id))
	q, err := parseRange(next, "created_at")
	if err != nil || q.Start != "1733000000123456" || q.StartID != id || !q.StartExclusive || q.Max != 3 {
		t.Fatalf("Next-Range %q parses to %+v, %v", next, q, err)
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
