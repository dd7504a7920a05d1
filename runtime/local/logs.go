package local

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	slipway "github.com/slipway/slipway"
	"github.com/slipway/slipway/runtime/local/dynoinit"
)

// logPoll is how often a followed log looks for new output.
const logPoll = 200 * time.Millisecond

// logChunk bounds one read of a log file.
const logChunk = 64 << 10

// Logs reads the dynos' log files (DataDir/logs/<app id>/<dyno>.log and the
// older generation .log.1): the newest q.Lines lines across them, then,
// with q.Follow, what is appended, polling every 200ms. q.Dyno names one
// dyno (web.1) or, without a dot, every dyno of a type (web). Files of
// dynos that no longer run are read too: they are the app's recent past.
func (r *Runtime) Logs(ctx context.Context, appID string, q slipway.LogQuery, fn func([]slipway.LogLine) error) error {
	if appID == "" || appID != filepath.Base(appID) || strings.HasPrefix(appID, ".") {
		return fn(nil)
	}
	dir := filepath.Join(r.cfg.DataDir, "logs", appID)
	files := map[string]*logFile{}
	var first []slipway.LogLine
	for _, name := range logNames(dir, q.Dyno) {
		f := &logFile{dyno: name, path: filepath.Join(dir, name+".log")}
		files[name] = f
		first = append(first, f.tail(q.Lines)...)
	}
	sort.SliceStable(first, func(i, j int) bool { return first[i].Time.Before(first[j].Time) })
	if len(first) > q.Lines {
		first = first[len(first)-q.Lines:]
	}
	if err := fn(first); err != nil || !q.Follow {
		return err
	}
	t := time.NewTicker(logPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, name := range logNames(dir, q.Dyno) {
			if files[name] == nil { // a dyno that started since: all of it is new
				files[name] = &logFile{dyno: name, path: filepath.Join(dir, name+".log")}
			}
		}
		var lines []slipway.LogLine
		for _, f := range files {
			lines = append(lines, f.next()...)
		}
		if len(lines) == 0 {
			continue
		}
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
		if err := fn(lines); err != nil {
			return err
		}
	}
}

// logNames lists the dynos with a log file in dir, filtered by dyno (a
// name, a type, or "" for all).
func logNames(dir, dyno string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok || e.IsDir() {
			continue
		}
		typ, _, _ := strings.Cut(name, ".")
		if dyno == "" || name == dyno || (!strings.Contains(dyno, ".") && typ == dyno) {
			out = append(out, name)
		}
	}
	return out
}

// logFile is one dyno's log as a reader follows it.
type logFile struct {
	dyno string
	path string
	off  int64 // bytes of path read, up to the end of the last whole line
}

// tail returns the file's last n whole lines (reaching into .log.1 when
// the file has fewer) and sets off to the end of the last one.
func (f *logFile) tail(n int) []slipway.LogLine {
	lines, end := lastLines(f.path, -1, n)
	f.off = end
	if len(lines) < n {
		older, _ := lastLines(f.path+".1", -1, n-len(lines))
		lines = append(older, lines...)
	}
	return f.parse(lines)
}

// next returns the whole lines written since the last call. A file
// shorter than off was rotated: the rest of what was read is in .log.1.
func (f *logFile) next() []slipway.LogLine {
	fi, err := os.Stat(f.path)
	if err != nil {
		return nil
	}
	var lines []string
	if fi.Size() < f.off {
		lines, _ = readLines(f.path+".1", f.off)
		f.off = 0
	}
	more, off := readLines(f.path, f.off)
	f.off = off
	return f.parse(append(lines, more...))
}

func (f *logFile) parse(lines []string) []slipway.LogLine {
	out := make([]slipway.LogLine, 0, len(lines))
	for _, l := range lines {
		t, src, text := dynoinit.ParseLogLine(l)
		out = append(out, slipway.LogLine{Time: t, Source: src, Dyno: f.dyno, Text: text})
	}
	return out
}

// readLines returns the whole lines of path from off on, and the offset
// after the last of them.
func readLines(path string, off int64) ([]string, int64) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, off
	}
	defer fh.Close()
	var out []string
	buf := make([]byte, logChunk+dynoinit.MaxLogLine+64)
	for {
		n, err := fh.ReadAt(buf, off)
		last := bytes.LastIndexByte(buf[:n], '\n')
		if last < 0 && n == len(buf) { // a line longer than any the init writes: skip it
			off += int64(n)
			continue
		}
		if last < 0 {
			return out, off
		}
		out = append(out, strings.Split(string(buf[:last]), "\n")...)
		off += int64(last + 1)
		if err != nil { // io.EOF: all read
			return out, off
		}
	}
}

// lastLines returns the last n whole lines of path before end (-1: its
// size), reading back from the end, and the offset after the last of them.
func lastLines(path string, end int64, n int) ([]string, int64) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0
	}
	defer fh.Close()
	if end < 0 {
		fi, err := fh.Stat()
		if err != nil {
			return nil, 0
		}
		end = fi.Size()
	}
	var buf []byte
	pos, count := end, 0
	for pos > 0 && count <= n {
		size := min(int64(logChunk), pos)
		pos -= size
		b := make([]byte, size)
		if _, err := fh.ReadAt(b, pos); err != nil && err != io.EOF {
			return nil, 0
		}
		count += bytes.Count(b, []byte{'\n'})
		buf = append(b, buf...)
	}
	last := bytes.LastIndexByte(buf, '\n')
	if last < 0 {
		return nil, pos
	}
	complete := pos + int64(last+1)
	lines := strings.Split(string(buf[:last]), "\n")
	if pos > 0 {
		lines = lines[1:] // cut by the chunk: the whole line is older still
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, complete
}

var _ slipway.LogSource = (*Runtime)(nil)
