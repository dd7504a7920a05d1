package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slipway/slipway/wire"
)

// SGR colour codes; paint applies one only when colour is on.
const (
	bold    = "1"
	dim     = "2"
	red     = "31"
	green   = "32"
	yellow  = "33"
	magenta = "35"
	cyan    = "36"
)

func paint(on bool, code, s string) string {
	if !on || code == "" || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (r *run) paint(code, s string) string { return paint(r.color, code, s) }

// statusColor is the colour of a release, build, check or dyno status.
func statusColor(status string) string {
	switch status {
	case "succeeded", "success", "running", "up":
		return green
	case "failed", "failure", "error", "crashed":
		return red
	case "queued", "pending", "starting", "stopping":
		return yellow
	case "unknown":
		return magenta
	}
	return ""
}

// printJSON writes v indented, for scripts and people alike.
func (r *run) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(r.out, "%s\n", b)
	return err
}

// printf writes to stdout.
func (r *run) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

// table prints rows under upper-case headers in aligned columns. style, if
// not nil, gives a cell's colour; it is applied after padding so that
// escape codes never upset the alignment.
func (r *run) table(headers []string, rows [][]string, style func(col int, cell string) string) {
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	line := func(cells []string, cellStyle func(int, string) string) {
		var b strings.Builder
		for i, c := range cells {
			last := i == len(cells)-1
			pad := ""
			if !last {
				pad = strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2)
			}
			code := ""
			if cellStyle != nil {
				code = cellStyle(i, c)
			}
			b.WriteString(r.paint(code, c) + pad)
		}
		fmt.Fprintln(r.out, strings.TrimRight(b.String(), " "))
	}
	line(headers, func(int, string) string { return bold })
	for _, row := range rows {
		line(row, style)
	}
}

// fields prints "key: value" lines with the values aligned; empty values
// are left out, and do not widen the keys' column.
func (r *run) fields(kv [][2]string) {
	w := 0
	for _, f := range kv {
		if f[1] != "" {
			w = max(w, len(f[0]))
		}
	}
	for _, f := range kv {
		if f[1] == "" {
			continue
		}
		fmt.Fprintf(r.out, "%s%s %s\n", r.paint(bold, f[0]+":"), strings.Repeat(" ", w-len(f[0])), f[1])
	}
}

// heading prints "=== title".
func (r *run) heading(title string) { fmt.Fprintln(r.out, r.paint(bold, "=== "+title)) }

// ago says how long ago an API time was, coarsely: "12s ago", "5m ago",
// "3h ago", "2d ago"; "" for the zero time.
func (r *run) ago(t wire.Time) string {
	if t.IsZero() {
		return ""
	}
	d := r.env.Now().Sub(t.Time)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// short is the first 8 characters of an id, as people quote them.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// truncate cuts s to n runes with an ellipsis, for table cells.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)
	return string(rs[:n-1]) + "…"
}

// plural is "1 dyno" or "2 dynos".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
