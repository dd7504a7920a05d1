package api

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// appendRelease appends r as JSON, exactly as encoding/json writes
// releaseToJSON(r), a wire.Release (a test holds them equal); listing
// thousands of releases spends most of its time here, so it skips
// reflection.
func appendRelease(b []byte, r *slipway.Release) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"app":{"id":`...)
	b = appendString(b, r.AppID)
	b = append(b, `,"name":`...)
	b = appendString(b, r.AppKey)
	b = append(b, `},"created_at":`...)
	b = wire.AppendTime(b, r.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = wire.AppendTime(b, r.UpdatedAt)
	b = append(b, `,"description":`...)
	b = appendString(b, r.Description)
	b = append(b, `,"slug":{"id":`...)
	b = appendString(b, r.SlugID)
	b = append(b, `},"status":`...)
	b = appendString(b, r.Status)
	b = append(b, `,"state":`...)
	b = appendString(b, r.State)
	b = append(b, `,"user":{"id":`...)
	b = appendString(b, r.UserID)
	b = append(b, `,"email":`...)
	b = appendString(b, r.UserEmail)
	b = append(b, `},"version":`...)
	b = strconv.AppendInt(b, int64(r.Version), 10)
	b = append(b, `,"current":`...)
	b = strconv.AppendBool(b, r.Current)
	b = append(b, `,"trigger":`...)
	b = appendString(b, r.Trigger)
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, r.Error)
	}
	b = append(b, `,"failure":`...)
	b = appendFailure(b, r.Failure)
	b = append(b, `,"output_stream_url":`...)
	b = appendString(b, "/apps/"+r.AppID+"/releases/"+r.ID+"/log")
	if name := strategyName(r); name != "" {
		b = append(b, `,"strategy":`...)
		b = appendString(b, name)
	}
	return append(b, '}')
}

// appendFailure appends f as encoding/json writes it with HTML escaping
// off; failures are few, so it takes the slow road.
func appendFailure(b []byte, f *slipway.Failure) []byte {
	if f == nil {
		return append(b, "null"...)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return append(b, "null"...)
	}
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json does with
// HTML escaping off.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
