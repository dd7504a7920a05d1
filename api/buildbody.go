package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/datauri"
)

// buildBody is the body of POST /apps/{app}/builds.
type buildBody struct {
	URL      string `json:"url"`
	Checksum string `json:"checksum"`
	Repo     string `json:"repo"`
	SHA      string `json:"sha"`
	Branch   string `json:"branch"`
	Version  string `json:"version"`
	Org      string `json:"org"`
	Author   string `json:"author"`
	Message  string `json:"message"`
	// CommitTime is RFC 3339; it becomes source_blob.commit_time.
	CommitTime string `json:"commit_time"`
}

// maxFieldName bounds a JSON field name of a build body.
const maxFieldName = 1024

// readBuildBody reads a build request without holding it in memory: the
// body of an inline build is the archive itself, base64-encoded in the url
// field. It walks the JSON object as it arrives; a url that is a data: URI
// is decoded straight into a new file in the spool dir, and the other
// fields (small, at most MaxBody bytes together) are decoded with the
// rules of every other body. It returns the body, with URL "data:" and the
// file's path for an inline build; the caller owns the file.
//
// Errors: EInvalid for a body that is not JSON or gives url twice;
// ETooLarge past the slug limit; EUnprocessable for a data: URI that is
// not valid base64 (see datauri.Decode). Nothing is left on disk then.
func (s *Server) readBuildBody(w http.ResponseWriter, r *http.Request) (body buildBody, file string, err error) {
	// base64 grows an archive by 4/3; leave room for the other fields.
	limit := s.cfg.MaxSlug/3*4 + 64<<10
	// JSON is UTF-8 (RFC 8259): a byte that is not, even inside the url's
	// data: URI (ASCII when valid), makes the body a 400 like any other.
	br := bufio.NewReaderSize(&utf8Reader{r: http.MaxBytesReader(w, r.Body, limit)}, 64<<10)
	defer func() {
		if err != nil {
			if file != "" {
				os.Remove(file)
				file = ""
			}
			err = s.buildBodyError(err)
		}
	}()
	j := &jsonWalker{br: br}
	if c, err := j.peek(); err != nil || c != '{' {
		// Not an object: the ordinary decoder says what is wrong with it.
		return body, "", decode(w, &http.Request{Body: io.NopCloser(br)}, s.cfg.MaxBody, &body)
	}
	j.br.ReadByte()
	var rest bytes.Buffer // the other fields, as a JSON object
	rest.WriteByte('{')
	budget := s.cfg.MaxBody
	seenURL, streamed := false, false
	c, err := j.next()
	for more := c != '}'; err == nil && more; {
		if c != '"' {
			return body, file, j.syntax("expected a field name")
		}
		var key string
		if key, err = j.key(); err != nil {
			return body, file, err
		}
		if !utf8.ValidString(key) {
			return body, file, notUTF8()
		}
		if c, err = j.next(); err != nil {
			return body, file, err
		}
		if c != ':' {
			return body, file, j.syntax("expected : after a field name")
		}
		if c, err = j.next(); err != nil {
			return body, file, err
		}
		isURL := strings.EqualFold(key, "url")
		if isURL && seenURL {
			return body, file, slipway.Errorf(slipway.EInvalid, "The body gives url twice; give it once.")
		}
		seenURL = seenURL || isURL
		if isURL && c == '"' {
			if body.URL, file, err = s.readURL(j); err != nil {
				return body, file, err
			}
			streamed = true
		} else {
			raw, err := j.value(c, &budget, s.cfg.MaxBody)
			if err != nil {
				return body, file, err
			}
			if !utf8.Valid(raw) {
				return body, file, notUTF8()
			}
			if rest.Len() > 1 {
				rest.WriteByte(',')
			}
			name, _ := json.Marshal(key)
			rest.Write(name)
			rest.WriteByte(':')
			rest.Write(raw)
		}
		if c, err = j.next(); err != nil {
			return body, file, err
		}
		switch c {
		case ',':
			c, err = j.next()
		case '}':
			more = false
		default:
			return body, file, j.syntax("expected , or } after a field")
		}
	}
	if err != nil {
		return body, file, err
	}
	if _, err := j.peek(); err == nil {
		return body, file, slipway.Errorf(slipway.EInvalid, "The body must hold one JSON value and nothing after it.")
	} else if err != io.EOF {
		return body, file, err
	}
	rest.WriteByte('}')
	url := body.URL
	if err := strictUnmarshal(rest.Bytes(), &body); err != nil {
		return body, file, err
	}
	if streamed {
		body.URL = url
	}
	return body, file, nil
}

// readURL reads the url string of a build body (its opening quote read):
// a data: URI is decoded into a file of the spool dir as it arrives; any
// other URL is only an address and is read whole, up to MaxBody bytes.
func (s *Server) readURL(j *jsonWalker) (url, file string, err error) {
	sr := &jsonString{br: j.br}
	head := make([]byte, len("data:"))
	n, err := io.ReadFull(sr, head)
	if err == nil && strings.EqualFold(string(head), "data:") {
		f, err := os.CreateTemp(s.cfg.SpoolDir, "inline-build-*")
		if err != nil {
			return "", "", fmt.Errorf("spool inline build: %w", err)
		}
		_, _, err = datauri.Decode(io.MultiReader(bytes.NewReader(head), sr), f, s.cfg.MaxSlug)
		if slipway.ErrorCode(err) == slipway.ETooLarge {
			err = s.tooLargeBuild()
		}
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("spool inline build: %w", cerr)
		}
		if err != nil {
			os.Remove(f.Name())
			return "", "", err
		}
		return "data:", f.Name(), nil
	}
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return "", "", err
	}
	tail, err := io.ReadAll(io.LimitReader(sr, s.cfg.MaxBody))
	if err != nil {
		return "", "", err
	}
	if !sr.done {
		return "", "", slipway.Errorf(slipway.ETooLarge, "url is longer than %d bytes; only a data: URI may be larger.", s.cfg.MaxBody)
	}
	url = string(head[:n]) + string(tail)
	if !utf8.ValidString(url) {
		return "", "", slipway.Errorf(slipway.EInvalid, "url is not valid UTF-8.")
	}
	return url, "", nil
}

func (s *Server) tooLargeBuild() error {
	return slipway.Errorf(slipway.ETooLarge, "The build is larger than the %d MiB slug limit; make the archive smaller or serve it over https.", s.cfg.MaxSlug>>20)
}

// buildBodyError words a failure to read a build body for the person who
// sent it.
func (s *Server) buildBodyError(err error) error {
	var mbe *http.MaxBytesError
	var js *jsonSyntaxError
	var bad *invalidUTF8Error
	var re *datauri.ReadError
	switch {
	case errors.As(err, &mbe):
		return s.tooLargeBuild()
	case errors.As(err, &bad):
		return notUTF8()
	case errors.As(err, &js):
		return slipway.Errorf(slipway.EInvalid, "The body is not valid JSON: %s.", js.msg)
	case errors.As(err, &re):
		return slipway.Errorf(slipway.EInvalid, "The body broke off before its end (%v); send it again.", re.Err)
	}
	return err
}

// jsonSyntaxError is a body that is not JSON.
type jsonSyntaxError struct{ msg string }

func (e *jsonSyntaxError) Error() string { return "json: " + e.msg }

// errJSONEnd is the end of the body in the middle of a JSON value.
var errJSONEnd = &jsonSyntaxError{"unexpected end of JSON input"}

// jsonWalker reads a JSON object token by token from a buffered body.
type jsonWalker struct {
	br *bufio.Reader
}

func (j *jsonWalker) syntax(msg string) error { return &jsonSyntaxError{msg} }

// peek returns the next byte that is not white space, without taking it.
func (j *jsonWalker) peek() (byte, error) {
	for {
		c, err := j.br.ReadByte()
		if err != nil {
			return 0, err
		}
		if !isSpace(c) {
			j.br.UnreadByte()
			return c, nil
		}
	}
}

// next takes the next byte that is not white space; the body must not
// end before it.
func (j *jsonWalker) next() (byte, error) {
	c, err := j.peek()
	if err == io.EOF {
		return 0, errJSONEnd
	}
	if err == nil {
		j.br.ReadByte()
	}
	return c, err
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// key reads a field name (its opening quote read).
func (j *jsonWalker) key() (string, error) {
	sr := &jsonString{br: j.br}
	b, err := io.ReadAll(io.LimitReader(sr, maxFieldName+1))
	if err != nil {
		return "", err
	}
	if !sr.done {
		return "", slipway.Errorf(slipway.EInvalid, "A field name of the body is longer than %d bytes.", maxFieldName)
	}
	return string(b), nil
}

// value reads a JSON value whose first byte is c, as it is, taking its
// size from budget (max in all): the decoder checks it later, so here
// only its end is found.
func (j *jsonWalker) value(c byte, budget *int64, max int64) ([]byte, error) {
	out := []byte{c}
	add := func(b byte) error {
		if int64(len(out)) >= *budget {
			return slipway.Errorf(slipway.ETooLarge, "The fields of the body other than url are larger than %d bytes together.", max)
		}
		out = append(out, b)
		return nil
	}
	depth, inString, escaped := 0, c == '"', false
	switch c {
	case '{', '[':
		depth = 1
	case '"':
	default:
		// A number or a literal ends before a delimiter.
		for {
			b, err := j.br.ReadByte()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			if isSpace(b) || b == ',' || b == '}' || b == ']' {
				j.br.UnreadByte()
				break
			}
			if err := add(b); err != nil {
				return nil, err
			}
		}
		*budget -= int64(len(out))
		return out, nil
	}
	for depth > 0 || inString {
		b, err := j.br.ReadByte()
		if err == io.EOF {
			return nil, errJSONEnd
		}
		if err != nil {
			return nil, err
		}
		if err := add(b); err != nil {
			return nil, err
		}
		switch {
		case escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
		case inString:
		case b == '{' || b == '[':
			depth++
		case b == '}' || b == ']':
			depth--
		}
	}
	*budget -= int64(len(out))
	return out, nil
}

// jsonString reads the content of a JSON string (its opening quote read)
// with its escapes undone, up to its closing quote.
type jsonString struct {
	br   *bufio.Reader
	pend []byte // decoded bytes of an escape not yet given out
	done bool   // the closing quote was read
}

func (s *jsonString) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(s.pend) > 0 {
			k := copy(p[n:], s.pend)
			s.pend, n = s.pend[k:], n+k
			continue
		}
		if s.done {
			break
		}
		// The common case: a run of plain bytes already buffered.
		if b := s.br.Buffered(); b > 0 {
			chunk, _ := s.br.Peek(min(b, len(p)-n))
			i := 0
			for i < len(chunk) && chunk[i] >= 0x20 && chunk[i] != '"' && chunk[i] != '\\' {
				i++
			}
			if i > 0 {
				copy(p[n:], chunk[:i])
				s.br.Discard(i)
				n += i
				continue
			}
		}
		c, err := s.br.ReadByte()
		if err == io.EOF {
			return n, errJSONEnd
		}
		if err != nil {
			return n, err
		}
		switch {
		case c == '"':
			s.done = true
		case c == '\\':
			if err := s.escape(); err != nil {
				return n, err
			}
		case c < 0x20:
			return n, &jsonSyntaxError{"invalid control character in a string"}
		default:
			p[n] = c
			n++
		}
	}
	if n == 0 && s.done {
		return 0, io.EOF
	}
	return n, nil
}

// escape decodes the escape after a backslash into s.pend; a lone UTF-16
// surrogate becomes U+FFFD, as encoding/json does.
func (s *jsonString) escape() error {
	c, err := s.br.ReadByte()
	if err != nil {
		if err == io.EOF {
			return errJSONEnd
		}
		return err
	}
	switch c {
	case '"', '\\', '/':
		s.pend = append(s.pend[:0], c)
	case 'b':
		s.pend = append(s.pend[:0], '\b')
	case 'f':
		s.pend = append(s.pend[:0], '\f')
	case 'n':
		s.pend = append(s.pend[:0], '\n')
	case 'r':
		s.pend = append(s.pend[:0], '\r')
	case 't':
		s.pend = append(s.pend[:0], '\t')
	case 'u':
		r, err := s.hex4()
		if err != nil {
			return err
		}
		s.pend = s.pend[:0]
		if utf16.IsSurrogate(r) {
			// A pair, or U+FFFD for a lone half (then what follows).
			next, err := s.br.Peek(2)
			if err != nil || next[0] != '\\' || next[1] != 'u' {
				r = utf8.RuneError
			} else {
				s.br.Discard(2)
				lo, err := s.hex4()
				if err != nil {
					return err
				}
				if r = utf16.DecodeRune(r, lo); r == utf8.RuneError {
					s.pend = utf8.AppendRune(s.pend, utf8.RuneError)
					if r = lo; utf16.IsSurrogate(lo) {
						r = utf8.RuneError
					}
				}
			}
		}
		s.pend = utf8.AppendRune(s.pend, r)
	default:
		return &jsonSyntaxError{fmt.Sprintf("invalid escape \\%c in a string", c)}
	}
	return nil
}

func (s *jsonString) hex4() (rune, error) {
	var r rune
	for range 4 {
		c, err := s.br.ReadByte()
		if err == io.EOF {
			return 0, errJSONEnd
		}
		if err != nil {
			return 0, err
		}
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, &jsonSyntaxError{"invalid \\u escape in a string"}
		}
	}
	return r, nil
}

// notUTF8 is the answer to a build body with a field name or value that
// is not UTF-8, as for any other body.
func notUTF8() error {
	return slipway.Errorf(slipway.EInvalid, "The body is not valid UTF-8; JSON must be sent as UTF-8.")
}
