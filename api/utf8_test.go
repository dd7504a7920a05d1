package api

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"
)

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

// FuzzUTF8Reader holds the streaming check against utf8.Valid, however
// the input is split into reads.
func FuzzUTF8Reader(f *testing.F) {
	for _, s := range []string{"", "a", "café", "\xe2\x82\xac", "\xe2\x82", "\xff", "\xed\xa0\x80", "\xc0\xaf", "𝄞x", "x\xf0\x9d\x84"} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		u := &utf8Reader{r: &chunkReader{b: data, n: int(chunk%7) + 1}}
		got, err := io.ReadAll(u)
		var bad *invalidUTF8Error
		switch {
		case utf8.Valid(data):
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("valid %q: read %q, %v", data, got, err)
			}
		case !errors.As(err, &bad):
			t.Fatalf("invalid %q: read %q, %v", data, got, err)
		case bad.offset != firstInvalid(data):
			t.Fatalf("invalid %q: reported at byte %d, want %d", data, bad.offset, firstInvalid(data))
		}
	})
}

// firstInvalid is where the first sequence that is not UTF-8 starts.
func firstInvalid(b []byte) int64 {
	i := 0
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		i += size
	}
	return int64(i)
}
