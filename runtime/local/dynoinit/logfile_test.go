package dynoinit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogWriter_StampsLinesAndRotates(t *testing.T) {
	dir := t.TempDir()
	open := func(name string, flag int) *os.File {
		f, err := os.OpenFile(filepath.Join(dir, name), flag|os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	at := time.Date(2026, 11, 30, 6, 13, 54, 123456000, time.UTC)
	w := &LogWriter{Log: open("web.1.log", os.O_APPEND), Prev: open("web.1.log.1", 0), Max: 200, Now: func() time.Time { return at }}
	w.Write([]byte("one\r\ntw"))
	w.Write([]byte("o\nthree"))
	w.Flush()
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	want := "2026-11-30T06:13:54.123456Z app one\n2026-11-30T06:13:54.123456Z app two\n2026-11-30T06:13:54.123456Z app three\n"
	if got := read("web.1.log"); got != want {
		t.Fatalf("log = %q, want %q", got, want)
	}
	if tm, src, text := ParseLogLine(strings.SplitN(want, "\n", 2)[0]); !tm.Equal(at) || src != SourceApp || text != "one" {
		t.Errorf("ParseLogLine = %v %q %q", tm, src, text)
	}
	if _, src, text := ParseLogLine("an old line"); src != SourceApp || text != "an old line" {
		t.Errorf("ParseLogLine of an unstamped line = %q %q", src, text)
	}
	// Past 200 bytes the file moves to .1 and starts afresh: never more
	// than two generations, each about Max.
	for range 20 {
		w.Write([]byte("0123456789\n"))
	}
	log, prev := read("web.1.log"), read("web.1.log.1")
	if len(prev) < 200 || len(prev) > 200+len(want) || len(log) >= 200 {
		t.Errorf("after rotation: log %d bytes, log.1 %d bytes; want log.1 ~200, log under 200", len(log), len(prev))
	}
	if strings.Count(prev+log, "0123456789") < 5 || !strings.HasSuffix(log, " app 0123456789\n") {
		t.Errorf("rotation lost the newest lines: log.1 %q, log %q", prev, log)
	}
	// A line longer than MaxLogLine is cut into several.
	w.Write([]byte(strings.Repeat("x", MaxLogLine+5) + "\n"))
	if got := read("web.1.log"); !strings.HasSuffix(got, " app xxxxx\n") {
		t.Errorf("long line not cut: ends %q", got[max(0, len(got)-40):])
	}
}
