package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// StatusCode returns the HTTP status for an error code, from the one
// table in package wire that the client reads too.
func StatusCode(code string) int { return wire.StatusCode(code) }

// ErrorBody is the JSON body of every error answer.
type ErrorBody = wire.ErrorBody

// writeError answers with err's code and message; an uncoded error is
// logged with the request id and answered with an opaque 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := slipway.ErrorCode(err)
	if code == slipway.EInternal {
		s.log.Error("internal error", "request_id", requestID(r), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	msg := slipway.ErrorMessage(err)
	if code == slipway.EInternal {
		msg = "Internal error; quote request id " + requestID(r) + " when you report it."
	}
	writeJSON(w, StatusCode(code), ErrorBody{ID: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decode reads a JSON body of at most limit bytes into v. An empty body,
// bad JSON, a body that is not UTF-8 or a wrong type is EInvalid, an
// oversize body ETooLarge.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body := &utf8Reader{r: http.MaxBytesReader(w, r.Body, limit)}
	dec := json.NewDecoder(body)
	dec.UseNumber()
	err := dec.Decode(v)
	trailing := false
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return nil
		}
		trailing = true
	}
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return slipway.Errorf(slipway.ETooLarge, "The body is larger than %d bytes.", limit)
	case body.bad != nil:
		// Checked before anything else: the decoder may have stopped at a
		// syntax error after the bad bytes were read. encoding/json itself
		// would put U+FFFD in their place and store something other than
		// what was sent.
		return slipway.Errorf(slipway.EInvalid, "The body is not valid UTF-8 (at byte %d); JSON must be sent as UTF-8.", body.bad.offset)
	case trailing:
		return slipway.Errorf(slipway.EInvalid, "The body must hold one JSON value and nothing after it.")
	case errors.Is(err, io.EOF):
		return slipway.Errorf(slipway.EInvalid, "The body is empty; send a JSON object.")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return slipway.Errorf(slipway.EInvalid, "The body is not valid JSON: %s.", strings.TrimPrefix(err.Error(), "json: "))
	case errors.As(err, &te):
		what := "The body"
		if te.Field != "" {
			what = "Field " + slipway.Clip(te.Field)
		}
		if n, ok := strings.CutPrefix(te.Value, "number "); ok && isWhole(n) && kindName(te.Type.Kind()) == "a whole number" {
			return slipway.Errorf(slipway.EInvalid, "%s is out of range: %s.", what, slipway.Clip(n))
		}
		return slipway.Errorf(slipway.EInvalid, "%s must be %s, not %s.", what, kindName(te.Type.Kind()), valueName(te.Value))
	}
	return slipway.Errorf(slipway.EInvalid, "The body could not be read as JSON: %s.", slipway.Clip(strings.TrimPrefix(err.Error(), "json: ")))
}

// kindName names the JSON a Go kind is decoded from.
func kindName(k reflect.Kind) string {
	switch k {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map, reflect.Pointer, reflect.Interface:
		return "an object"
	}
	return "a " + k.String()
}

// valueName names the JSON value of a type error as encoding/json reports
// it ("string", "number 1.5", …); a number is shown itself, at most a
// short prefix of it.
func valueName(v string) string {
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return slipway.Clip(n)
	}
	switch v {
	case "string":
		return "a string"
	case "number":
		return "a number"
	case "bool":
		return "true or false"
	case "array", "object":
		return "an " + v
	}
	return slipway.Clip(v)
}

// isWhole reports whether a JSON number has no fraction and no exponent.
func isWhole(n string) bool { return !strings.ContainsAny(n, ".eE") }

// utf8Reader passes r through and fails at the first byte that is not
// valid UTF-8 (a rune cut off by the end of the input included), and on
// every Read after it: the JSON decoder may look past a complete value
// and leave an error of that Read for the next. JSON text is UTF-8
// (RFC 8259).
type utf8Reader struct {
	r    io.Reader
	off  int64  // bytes read before the current Read
	tail []byte // the start of a rune the last Read cut off
	bad  *invalidUTF8Error
}

type invalidUTF8Error struct{ offset int64 }

func (e *invalidUTF8Error) Error() string { return fmt.Sprintf("invalid UTF-8 at byte %d", e.offset) }

func (u *utf8Reader) Read(p []byte) (int, error) {
	if u.bad != nil {
		return 0, u.bad
	}
	n, err := u.r.Read(p)
	b := p[:n]
	i := 0
	if len(u.tail) > 0 && n > 0 {
		// Complete the rune the last Read ended in with this one's bytes.
		start := u.off - int64(len(u.tail))
		k := min(utf8.UTFMax-len(u.tail), n)
		buf := append(u.tail, b[:k]...)
		if !utf8.FullRune(buf) {
			u.tail, u.off = buf, u.off+int64(n)
			return n, u.atEOF(err)
		}
		if r, size := utf8.DecodeRune(buf); r == utf8.RuneError && size <= 1 {
			u.bad = &invalidUTF8Error{offset: start}
			return 0, u.bad
		} else {
			i = size - len(u.tail)
		}
		u.tail = u.tail[:0]
	}
	for i < n {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		if !utf8.FullRune(b[i:]) {
			u.tail = append(u.tail[:0], b[i:]...)
			break
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			u.bad = &invalidUTF8Error{offset: u.off + int64(i)}
			return i, u.bad
		}
		i += size
	}
	u.off += int64(n)
	return n, u.atEOF(err)
}

// atEOF turns the end of the input inside a rune into an error.
func (u *utf8Reader) atEOF(err error) error {
	if err == io.EOF && len(u.tail) > 0 {
		u.bad = &invalidUTF8Error{offset: u.off - int64(len(u.tail))}
		return u.bad
	}
	return err
}
