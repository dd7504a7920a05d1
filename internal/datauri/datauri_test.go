package datauri

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/slipway/slipway"
)

// reference decodes a data URI held whole in memory with the standard
// library: it is what Decode replaced, and what FuzzDecode holds it to.
func reference(s string, max int64) ([]byte, string, error) {
	if len(s) < 5 || !strings.EqualFold(s[:5], "data:") {
		return nil, "", slipway.Errorf(slipway.EUnprocessable, "not a data URI")
	}
	meta, payload, ok := strings.Cut(s[5:], ",")
	if !ok {
		return nil, "", slipway.Errorf(slipway.EUnprocessable, "no comma")
	}
	params := strings.Split(meta, ";")
	if len(params) < 2 || !strings.EqualFold(strings.TrimSpace(params[len(params)-1]), "base64") {
		return nil, "", slipway.Errorf(slipway.EUnprocessable, "not base64")
	}
	mime := strings.ToLower(strings.TrimSpace(params[0]))
	if strings.Contains(payload, "%") {
		p, err := url.PathUnescape(payload)
		if err != nil {
			return nil, "", slipway.Errorf(slipway.EUnprocessable, "bad escape")
		}
		payload = p
	}
	payload = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, payload)
	payload = strings.TrimRight(payload, "=")
	enc := base64.RawStdEncoding
	if strings.ContainsAny(payload, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(payload)
	if err != nil {
		return nil, "", slipway.Errorf(slipway.EUnprocessable, "bad base64")
	}
	if max > 0 && int64(len(b)) > max {
		return nil, "", slipway.Errorf(slipway.ETooLarge, "too large")
	}
	return b, mime, nil
}

func decodeString(s string, max int64, r func(io.Reader) io.Reader) ([]byte, string, error) {
	var out bytes.Buffer
	mime, n, err := Decode(r(strings.NewReader(s)), &out, max)
	if err == nil && n != int64(out.Len()) {
		return nil, "", errors.New("the count is not what was written")
	}
	return out.Bytes(), mime, err
}

func TestDecode(t *testing.T) {
	payload := []byte("\x1f\x8b binary \xff\xfe payload?>")
	std := base64.StdEncoding.EncodeToString(payload)
	long := bytes.Repeat([]byte("0123456789abcdef\xff\xfe\xfd"), 10000) // several chunks
	longStd := base64.StdEncoding.EncodeToString(long)
	tests := []struct {
		name     string
		uri      string
		max      int64
		want     string
		wantMime string
		wantCode string
		wantMsg  string
	}{
		{name: "padded", uri: "data:application/gzip;base64," + std, want: string(payload), wantMime: "application/gzip"},
		{name: "unpadded", uri: "data:application/gzip;base64," + strings.TrimRight(std, "="), want: string(payload), wantMime: "application/gzip"},
		{name: "url alphabet", uri: "data:application/zip;base64," + base64.URLEncoding.EncodeToString(payload), want: string(payload), wantMime: "application/zip"},
		{name: "wrapped", uri: "data:application/gzip;base64," + std[:10] + "\r\n " + std[10:], want: string(payload), wantMime: "application/gzip"},
		{name: "percent-encoded", uri: "data:application/gzip;base64," + strings.ReplaceAll(strings.ReplaceAll(std, "+", "%2B"), "/", "%2F"), want: string(payload), wantMime: "application/gzip"},
		{name: "escaped padding and newline", uri: "data:a/b;base64," + strings.TrimRight(std, "=") + "%0A%3D", want: string(payload), wantMime: "a/b"},
		{name: "uppercase scheme and params", uri: "DATA:Application/X-Tar;charset=binary;BASE64," + std, want: string(payload), wantMime: "application/x-tar"},
		{name: "no type", uri: "data:;base64," + std, want: string(payload)},
		{name: "empty payload", uri: "data:application/gzip;base64,", want: "", wantMime: "application/gzip"},
		{name: "several chunks", uri: "data:a/b;base64," + longStd, want: string(long), wantMime: "a/b"},
		{name: "several chunks, wrapped", uri: "data:a/b;base64," + wrap(longStd, 76), want: string(long), wantMime: "a/b"},
		{name: "exactly max", uri: "data:a/b;base64," + std, max: int64(len(payload)), want: string(payload), wantMime: "a/b"},
		{name: "one over max", uri: "data:a/b;base64," + std, max: int64(len(payload)) - 1, wantCode: slipway.ETooLarge, wantMsg: "larger than"},
		{name: "far over max", uri: "data:a/b;base64," + strings.Repeat("A", 1<<20), max: 1000, wantCode: slipway.ETooLarge},
		{name: "bad character", uri: "data:a/b;base64,AAAA*AAA", wantCode: slipway.EUnprocessable, wantMsg: "at character 4"},
		{name: "bad character far in", uri: "data:a/b;base64," + longStd + "*", wantCode: slipway.EUnprocessable, wantMsg: "not valid base64"},
		{name: "mixed alphabets", uri: "data:a/b;base64,AA+_", wantCode: slipway.EUnprocessable},
		{name: "data after padding", uri: "data:a/b;base64,QQ==QQ", wantCode: slipway.EUnprocessable},
		{name: "impossible length", uri: "data:a/b;base64,A", wantCode: slipway.EUnprocessable, wantMsg: "impossible"},
		{name: "bad escape", uri: "data:a/b;base64,AA%zz", wantCode: slipway.EUnprocessable, wantMsg: "%-escape"},
		{name: "cut escape", uri: "data:a/b;base64,AAAA%4", wantCode: slipway.EUnprocessable, wantMsg: "%-escape"},
		{name: "not base64", uri: "data:text/plain," + std, wantCode: slipway.EUnprocessable, wantMsg: "not base64-encoded"},
		{name: "base64 not last", uri: "data:text/plain;base64;charset=x," + std, wantCode: slipway.EUnprocessable},
		{name: "no comma", uri: "data:text/plain;base64", wantCode: slipway.EUnprocessable, wantMsg: "no comma"},
		{name: "header too long", uri: "data:a/b;x=" + strings.Repeat("y", MaxHeader) + ";base64,QUJD", wantCode: slipway.EUnprocessable, wantMsg: "longer than"},
		{name: "not a data URI", uri: "https://example.com/a", wantCode: slipway.EUnprocessable, wantMsg: "not a data: URI"},
		{name: "short", uri: "dat", wantCode: slipway.EUnprocessable, wantMsg: "not a data: URI"},
		{name: "empty", uri: "", wantCode: slipway.EUnprocessable},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":       func(r io.Reader) io.Reader { return r },
		"byte a time": iotest.OneByteReader,
	}
	for _, tt := range tests {
		for rname, rd := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				got, mime, err := decodeString(tt.uri, tt.max, rd)
				if code := slipway.ErrorCode(err); code != tt.wantCode {
					t.Fatalf("code %q (%v), want %q", code, err, tt.wantCode)
				}
				if err != nil {
					if !strings.Contains(slipway.ErrorMessage(err), tt.wantMsg) {
						t.Errorf("message %q lacks %q", slipway.ErrorMessage(err), tt.wantMsg)
					}
					if tt.max > 0 && int64(len(got)) > tt.max {
						t.Errorf("wrote %d bytes past the max of %d", len(got), tt.max)
					}
					return
				}
				if string(got) != tt.want || mime != tt.wantMime {
					t.Errorf("got %d bytes, %q; want %d bytes, %q", len(got), mime, len(tt.want), tt.wantMime)
				}
			})
		}
	}
}

func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\r\n")
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

func TestDecode_ReaderAndWriterFailures(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data:a/b;base64,QUJD"), iotest.ErrReader(boom))
	_, _, err := Decode(r, io.Discard, 0)
	var re *ReadError
	if !errors.As(err, &re) || !errors.Is(err, boom) || slipway.ErrorCode(err) != slipway.EInternal {
		t.Errorf("failing reader: %v, want a *ReadError wrapping it, uncoded", err)
	}
	_, _, err = Decode(strings.NewReader("data:a/b;base64,QUJD"), failingWriter{boom}, 0)
	var we *WriteError
	if !errors.As(err, &we) || !errors.Is(err, boom) || slipway.ErrorCode(err) != slipway.EInternal {
		t.Errorf("failing writer: %v, want a *WriteError wrapping it, uncoded", err)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// base64Source is a data URI of n zero bytes, made as it is read.
type base64Source struct {
	head     io.Reader
	left     int64 // base64 characters still to give
	finished bool
}

func (s *base64Source) Read(p []byte) (int, error) {
	if n, err := s.head.Read(p); n > 0 || err != io.EOF {
		return n, err
	}
	if s.left == 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > s.left {
		n = s.left
	}
	for i := range p[:n] {
		p[i] = 'A'
	}
	s.left -= n
	return int(n), nil
}

// TestDecode_MemoryStaysFlat decodes 64 MiB and checks that Decode
// allocated a few buffers' worth, not anything like the payload.
func TestDecode_MemoryStaysFlat(t *testing.T) {
	const size = 64 << 20
	src := &base64Source{head: strings.NewReader("data:application/gzip;base64,"), left: size / 3 * 4}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, n, err := Decode(src, io.Discard, 0)
	runtime.ReadMemStats(&after)
	if err != nil || n != size/3*3 {
		t.Fatalf("decoded %d bytes, %v", n, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("decoding %d MiB allocated %d KiB; want under 1 MiB", size>>20, alloc>>10)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("data:application/gzip;base64,H4sIAAAAAAAAAwMAAAAAAAAAAAA=", int64(0))
	f.Add("data:;base64,QUJD", int64(2))
	f.Add("data:a/b;charset=x;base64,QU JD%3D\n", int64(10))
	f.Add("data:text/plain,hello", int64(0))
	f.Add("data:a/b;base64,-_-_", int64(-1))
	f.Add("data:a/b;base64,QQ%3d=%0a", int64(0))
	f.Add("data:a/b;base64,AA+_", int64(0))
	f.Fuzz(func(t *testing.T, s string, max int64) {
		want, wantMime, wantErr := reference(s, max)
		got, mime, err := decodeString(s, max, func(r io.Reader) io.Reader { return r })
		if code := slipway.ErrorCode(err); err != nil && code != slipway.EUnprocessable && code != slipway.ETooLarge {
			t.Fatalf("code %q (%v)", code, err)
		}
		if max > 0 && int64(len(got)) > max {
			t.Fatalf("wrote %d bytes, max %d", len(got), max)
		}
		header, _, _ := strings.Cut(s, ",")
		if len(header) > 5+MaxHeader {
			return // the reference has no header limit
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("Decode: %v; reference: %v", err, wantErr)
		}
		if err == nil && (!bytes.Equal(got, want) || mime != wantMime) {
			t.Fatalf("Decode = %q %q; reference = %q %q", got, mime, want, wantMime)
		}
		// Which error comes first may differ for a payload both too large
		// and malformed; otherwise the code is the same.
		if err != nil && slipway.ErrorCode(err) != slipway.ErrorCode(wantErr) && slipway.ErrorCode(wantErr) != slipway.ETooLarge && slipway.ErrorCode(err) != slipway.ETooLarge {
			t.Fatalf("Decode: %v; reference: %v", err, wantErr)
		}
	})
}
