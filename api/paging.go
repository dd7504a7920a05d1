package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/slipway/slipway"
)

const (
	defaultPageMax = 200
	maxPageMax     = 1000
)

// parseRange reads a Heroku-style Range header: `<field> [start]..[end]`
// then optional `; order=asc|desc` and `, max=N` parameters, where a start
// of `]v` excludes v. A start is a number; on lists by created_at it may
// also be the cursor a Next-Range gave (see createdAtCursor). An empty
// header selects the whole list, oldest first. EInvalid for anything else.
func parseRange(h, field string) (slipway.Page, error) {
	var p slipway.Page
	h = strings.TrimSpace(h)
	if h == "" {
		return p, nil
	}
	bad := func(why string) (slipway.Page, error) {
		return slipway.Page{}, slipway.Errorf(slipway.EInvalid, "Range header %q is invalid: %s; use e.g. \"%s ..; order=desc, max=20\".", slipway.Clip(h), why, field)
	}
	spec, params, _ := strings.Cut(h, ";")
	name, rng, ok := strings.Cut(strings.TrimSpace(spec), " ")
	if !ok {
		rng, name = "", strings.TrimSpace(spec)
	}
	if name != field {
		return bad(fmt.Sprintf("this list is ranged by %s", field))
	}
	rng = strings.TrimSpace(rng)
	if rng != "" {
		start, _, ok := strings.Cut(rng, "..")
		if !ok {
			return bad("the range needs \"..\"")
		}
		if strings.HasPrefix(start, "]") {
			p.StartExclusive = true
			start = start[1:]
		}
		if field == "created_at" {
			var cursor bool
			if start, p.StartID, cursor = strings.Cut(start, "."); cursor {
				if _, err := uuid.Parse(p.StartID); err != nil || len(p.StartID) != 36 {
					return bad("the start must be a number or a cursor from Next-Range")
				}
			}
		}
		if start != "" {
			if _, err := strconv.ParseInt(start, 10, 64); err != nil {
				return bad("the start must be a number")
			}
		}
		p.Start = start
	}
	p.Max = defaultPageMax
	for _, kv := range strings.Split(params, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		switch strings.TrimSpace(k) {
		case "order":
			switch strings.TrimSpace(v) {
			case "asc":
				p.Desc = false
			case "desc":
				p.Desc = true
			default:
				return bad("order must be asc or desc")
			}
		case "max":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 || n > maxPageMax {
				return bad(fmt.Sprintf("max must be between 1 and %d", maxPageMax))
			}
			p.Max = n
		default:
			return bad(fmt.Sprintf("unknown parameter %q", slipway.Clip(k)))
		}
	}
	return p, nil
}

// nextRange is the Next-Range header that continues after last.
func nextRange(field string, p slipway.Page, last string) string {
	order := "asc"
	if p.Desc {
		order = "desc"
	}
	return fmt.Sprintf("%s ]%s..; order=%s, max=%d", field, last, order, p.Max)
}

// createdAtCursor names one row of a list ordered by created_at then id:
// its time in microseconds and its id, "1733000000123456.<id>". Clients
// take it from Next-Range as it is; a bare time (rows from that
// microsecond on) is accepted too.
func createdAtCursor(t time.Time, id string) string {
	return strconv.FormatInt(t.UnixMicro(), 10) + "." + id
}

// listPage answers one page of a list ranged by created_at: it reads the
// Range header, fetches one row more than the page to learn whether
// another page follows, and sets Next-Range and 206 when one does, with
// the last row's time and id (key gives them) as the cursor. It returns
// the rows and the status to answer with, or false after it has answered
// an error itself.
func listPage[T any](s *Server, w http.ResponseWriter, r *http.Request, fetch func(slipway.Page) ([]T, error), key func(T) (time.Time, string)) ([]T, int, bool) {
	p, err := parseRange(r.Header.Get("Range"), "created_at")
	if err != nil {
		s.writeError(w, r, err)
		return nil, 0, false
	}
	q := p
	if p.Max > 0 {
		q.Max = p.Max + 1
	}
	rows, err := fetch(q)
	if err != nil {
		s.writeError(w, r, err)
		return nil, 0, false
	}
	if p.Max > 0 && len(rows) > p.Max {
		rows = rows[:p.Max]
		w.Header().Set("Next-Range", nextRange("created_at", p, createdAtCursor(key(rows[len(rows)-1]))))
		return rows, http.StatusPartialContent, true
	}
	return rows, http.StatusOK, true
}
