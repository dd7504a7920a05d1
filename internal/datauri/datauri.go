// Package datauri decodes RFC 2397 data: URIs with a base64 payload as a
// stream: an archive pushed inline is written out as it is read, so a
// build of 200 MB costs the server a few buffers, not the archive twice.
package datauri

import (
	"bufio"
	"encoding/base64"
	"io"
	"strings"

	"github.com/slipway/slipway"
)

// MaxHeader is the longest "data:<type>;…;base64," header accepted, in bytes.
const MaxHeader = 1024

// chunk is how many base64 characters are decoded at a time (a multiple of 4).
const chunk = 32 << 10

// ReadError is a failure of the reader Decode reads from (a body cut off
// or over its limit), kept apart from the URI's own faults.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return "datauri: read: " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// WriteError is a failure of the writer Decode writes to (a full disk).
type WriteError struct{ Err error }

func (e *WriteError) Error() string { return "datauri: write: " + e.Err.Error() }
func (e *WriteError) Unwrap() error { return e.Err }

// Decode reads a data URI of the form data:<mime>[;param…];base64,<payload>
// from r to its end and writes the decoded payload to w, holding no more
// than a few small buffers. It returns the lowercased media type ("" when
// the URI gives none) and the number of bytes written. The payload may be
// wrapped with whitespace, percent-encoded, unpadded or in the URL-safe
// alphabet (but not in both alphabets). max limits the decoded size in
// bytes; max <= 0 means no limit. w never receives more than max bytes.
//
// Errors: EUnprocessable when the input is not a data URI, its header is
// longer than MaxHeader, it is not base64-encoded or its payload is not
// valid base64; ETooLarge when the payload decodes to more than max bytes;
// *ReadError and *WriteError (uncoded) when r or w fails. After an error w
// holds part of the payload: the caller discards it.
func Decode(r io.Reader, w io.Writer, max int64) (mime string, n int64, err error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, chunk)
	}
	mime, err = header(br)
	if err != nil {
		return "", 0, err
	}
	d := &decoder{w: w, max: max, in: make([]byte, chunk), out: make([]byte, 0, chunk), dst: make([]byte, chunk/4*3)}
	for {
		m, rerr := br.Read(d.in)
		if err := d.feed(d.in[:m]); err != nil {
			return "", d.n, err
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", d.n, &ReadError{rerr}
		}
	}
	if err := d.finish(); err != nil {
		return "", d.n, err
	}
	return mime, d.n, nil
}

// header reads "data:<meta>," and returns the media type.
func header(br *bufio.Reader) (string, error) {
	var h []byte
	comma := false
	for !comma {
		c, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", &ReadError{err}
		}
		switch {
		case len(h) < 5:
			h = append(h, c)
			if len(h) == 5 && !strings.EqualFold(string(h), "data:") {
				return "", notDataURI()
			}
		case c == ',':
			comma = true
		case len(h) >= 5+MaxHeader:
			return "", slipway.Errorf(slipway.EUnprocessable, "The data URI's header (before the comma) is longer than %d bytes; use data:<type>;base64,<payload>.", MaxHeader)
		default:
			h = append(h, c)
		}
	}
	if len(h) < 5 {
		return "", notDataURI()
	}
	if !comma {
		return "", slipway.Errorf(slipway.EUnprocessable, "The data URI has no comma before its payload; use data:<type>;base64,<payload>.")
	}
	params := strings.Split(string(h[5:]), ";")
	if len(params) < 2 || !strings.EqualFold(strings.TrimSpace(params[len(params)-1]), "base64") {
		return "", slipway.Errorf(slipway.EUnprocessable, "The data URI is not base64-encoded; use data:<type>;base64,<payload>.")
	}
	return strings.ToLower(strings.TrimSpace(params[0])), nil
}

func notDataURI() error {
	return slipway.Errorf(slipway.EUnprocessable, "The source is not a data: URI; use data:<type>;base64,<payload>.")
}

// Alphabets a payload may use.
const (
	alphaUnknown = iota
	alphaStd     // + and /
	alphaURL     // - and _
)

// decoder turns payload bytes into decoded bytes: percent-escapes are
// undone, whitespace dropped, the URL-safe alphabet mapped onto the
// standard one, padding checked; full chunks of base64 are decoded and
// written as they fill.
type decoder struct {
	w       io.Writer
	max     int64
	n       int64  // bytes written
	pos     int64  // payload characters seen, for error messages
	pct     int    // 0, or 1–2 after a '%' and that many hex digits
	pctVal  byte   // the escaped byte being read
	alpha   int    // which alphabet the payload uses
	padded  bool   // an '=' was seen: only padding and whitespace may follow
	in, dst []byte // read and decode buffers
	out     []byte // base64 characters waiting to be decoded
}

func (d *decoder) feed(p []byte) error {
	for _, c := range p {
		if d.pct > 0 {
			v, ok := unhex(c)
			if !ok {
				return badEscape()
			}
			d.pctVal = d.pctVal<<4 | v
			if d.pct++; d.pct < 3 {
				continue
			}
			d.pct = 0
			c = d.pctVal
		} else if c == '%' {
			d.pct, d.pctVal = 1, 0
			continue
		}
		if err := d.char(c); err != nil {
			return err
		}
	}
	return nil
}

// char takes one payload character, after percent-decoding.
func (d *decoder) char(c byte) error {
	switch c {
	case ' ', '\t', '\r', '\n':
		return nil
	}
	if d.padded && c != '=' {
		return d.corrupt()
	}
	switch {
	case c == '=':
		d.padded = true
		d.pos++
		return nil
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
	case c == '+' || c == '/':
		if d.alpha == alphaURL {
			return d.corrupt()
		}
		d.alpha = alphaStd
	case c == '-' || c == '_':
		if d.alpha == alphaStd {
			return d.corrupt()
		}
		d.alpha = alphaURL
		if c == '-' {
			c = '+'
		} else {
			c = '/'
		}
	default:
		return d.corrupt()
	}
	d.pos++
	d.out = append(d.out, c)
	if len(d.out) == cap(d.out) {
		return d.flush(len(d.out))
	}
	return nil
}

// flush decodes and writes the first k waiting characters.
func (d *decoder) flush(k int) error {
	m, err := base64.RawStdEncoding.Decode(d.dst, d.out[:k])
	if err != nil {
		return d.corrupt()
	}
	if d.max > 0 && d.n+int64(m) > d.max {
		return slipway.Errorf(slipway.ETooLarge, "The inline archive is larger than %d bytes; make it smaller or fetch it from a URL.", d.max)
	}
	if _, err := d.w.Write(d.dst[:m]); err != nil {
		return &WriteError{err}
	}
	d.n += int64(m)
	d.out = d.out[:copy(d.out, d.out[k:])]
	return nil
}

// finish decodes what is left at the end of the payload.
func (d *decoder) finish() error {
	if d.pct > 0 {
		return badEscape()
	}
	if len(d.out)%4 == 1 {
		return slipway.Errorf(slipway.EUnprocessable, "The data URI's payload is not valid base64 (its length is impossible); encode the archive with base64.")
	}
	return d.flush(len(d.out))
}

func (d *decoder) corrupt() error {
	return slipway.Errorf(slipway.EUnprocessable, "The data URI's payload is not valid base64 (at character %d); encode the archive with base64.", d.pos)
}

func badEscape() error {
	return slipway.Errorf(slipway.EUnprocessable, "The data URI's payload has a malformed %%-escape; send plain base64.")
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
