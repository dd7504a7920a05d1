package dynoinit

import (
	"bytes"
	"io"
	"os"
	"strings"
	"time"
)

// The dyno log file holds one line per line of output, each stamped with
// the time it was read and its source:
//
//	2026-11-30T06:13:54.123456Z app listening on 5000
//	2026-11-30T06:13:53.998001Z slipway web.1 v3 (release …) starting on port 20001: ./web
//
// "app" lines are what the command printed; "slipway" lines are the
// server's and the init's notes about the dyno. A file holds at most
// Spec.LogMaxBytes (plus one line); past that the init moves its content to
// the one older generation, <name>.log.1, and starts the file afresh.

// LogTimeLayout is the fixed-width time at the start of each log line.
const LogTimeLayout = "2006-01-02T15:04:05.000000Z"

// Sources of log lines.
const (
	SourceApp     = "app"
	SourceSlipway = "slipway"
)

// MaxLogLine bounds one line of output in the log; a longer line is cut
// into several.
const MaxLogLine = 16 << 10

// DefaultLogMaxBytes is the size at which a dyno's log file is rotated
// when Spec.LogMaxBytes is 0.
const DefaultLogMaxBytes = 2 << 20

// FormatLogLine is one line of the log file, with its newline.
func FormatLogLine(t time.Time, source, text string) string {
	return t.UTC().Format(LogTimeLayout) + " " + source + " " + text + "\n"
}

// ParseLogLine reads a line of the log file (without its newline). A line
// that does not start with a time and a source (written before the log
// had them) is output of the app with a zero time.
func ParseLogLine(line string) (t time.Time, source, text string) {
	ts, rest, ok := strings.Cut(line, " ")
	if ok {
		src, txt, _ := strings.Cut(rest, " ")
		if src == SourceApp || src == SourceSlipway {
			if tm, err := time.Parse(LogTimeLayout, ts); err == nil {
				return tm, src, txt
			}
		}
	}
	return time.Time{}, SourceApp, line
}

// LogWriter writes a command's output to the dyno's log file, a stamped
// line at a time, and rotates the file when it grows past Max.
type LogWriter struct {
	Log  *os.File // opened O_RDWR|O_APPEND: rotation reads it back
	Prev *os.File // the older generation; nil never rotates
	Max  int64    // 0 means DefaultLogMaxBytes
	Now  func() time.Time

	partial []byte
	size    int64 // bytes this writer believes the file holds; checked before rotating
}

// Write stamps each complete line of p and appends it to the log; the
// rest waits for its newline (or Flush).
func (w *LogWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.partial = append(w.partial, p...)
			for len(w.partial) >= MaxLogLine {
				w.line(w.partial[:MaxLogLine])
				w.partial = append(w.partial[:0], w.partial[MaxLogLine:]...)
			}
			break
		}
		w.partial = append(w.partial, p[:i]...)
		for len(w.partial) > MaxLogLine {
			w.line(w.partial[:MaxLogLine])
			w.partial = append(w.partial[:0], w.partial[MaxLogLine:]...)
		}
		w.line(bytes.TrimRight(w.partial, "\r"))
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Flush writes a last line that has no newline.
func (w *LogWriter) Flush() {
	if len(w.partial) > 0 {
		w.line(w.partial)
		w.partial = w.partial[:0]
	}
}

// Note writes one line of the given source.
func (w *LogWriter) Note(source, text string) {
	w.write(FormatLogLine(w.now(), source, text))
}

func (w *LogWriter) line(text []byte) { w.write(FormatLogLine(w.now(), SourceApp, string(text))) }

func (w *LogWriter) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *LogWriter) write(s string) {
	n, _ := w.Log.WriteString(s) // a log write error must not stop the dyno
	w.size += int64(n)
	max := w.Max
	if max <= 0 {
		max = DefaultLogMaxBytes
	}
	if w.Prev == nil || w.size < max {
		return
	}
	// Others append to the file too (the server's notes, and the other
	// process of the same dyno name during a rollout): its real size
	// decides.
	if fi, err := w.Log.Stat(); err == nil {
		w.size = fi.Size()
	}
	if w.size >= max {
		Rotate(w.Log, w.Prev)
		w.size = 0
	}
}

// Rotate moves log's content into prev (replacing what prev held) and
// empties log. Readers that find log shorter than they had read it look
// for the rest in prev.
func Rotate(log, prev *os.File) error {
	fi, err := log.Stat()
	if err != nil {
		return err
	}
	if err := prev.Truncate(0); err != nil {
		return err
	}
	if _, err := io.Copy(io.NewOffsetWriter(prev, 0), io.NewSectionReader(log, 0, fi.Size())); err != nil {
		return err
	}
	return log.Truncate(0)
}
