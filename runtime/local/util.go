package local

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/slipway/slipway/runtime/progress"
)

// reporter delivers an operation's progress events (package progress).
type reporter = progress.Reporter

var newReporter = progress.New

// tailLines is how many output lines of a process are kept for messages.
const tailLines = 20

// maxLine bounds one kept line; longer lines are cut.
const maxLine = 512

// tail keeps the last output lines of a process.
type tail struct {
	mu     sync.Mutex
	lines_ [tailLines]string
	n      int // lines seen
}

func (t *tail) add(line string) {
	t.mu.Lock()
	t.lines_[t.n%tailLines] = line
	t.n++
	t.mu.Unlock()
}

// lines returns the lines kept, oldest first.
func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := min(t.n, tailLines)
	out := make([]string, 0, n)
	for i := n; i >= 1; i-- {
		out = append(out, t.lines_[(t.n-i)%tailLines])
	}
	return out
}

// last returns the last non-blank line, "" if none.
func (t *tail) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := 1; i <= min(t.n, tailLines); i++ {
		if l := t.lines_[(t.n-i)%tailLines]; len(bytes.TrimSpace([]byte(l))) > 0 {
			return l
		}
	}
	return ""
}

// copyOutput copies r to w and hands every line (cut at maxLine, without
// its newline) to onLine, including a last unterminated one.
func copyOutput(w io.Writer, r io.Reader, onLine func(string)) {
	buf := make([]byte, 32*1024)
	var partial []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			w.Write(chunk) // a log write error must not stop the process
			for len(chunk) > 0 {
				i := bytes.IndexByte(chunk, '\n')
				if i < 0 {
					if room := maxLine - len(partial); room > 0 {
						partial = append(partial, chunk[:min(room, len(chunk))]...)
					}
					break
				}
				if room := maxLine - len(partial); room > 0 {
					partial = append(partial, chunk[:min(room, i)]...)
				}
				onLine(string(bytes.TrimRight(partial, "\r")))
				partial = partial[:0]
				chunk = chunk[i+1:]
			}
		}
		if err != nil {
			if len(partial) > 0 {
				onLine(string(partial))
			}
			return
		}
	}
}

// portAllocator hands out loopback ports from [min, max], never one that
// another dyno of this runtime holds, and only after binding it once to
// check nobody else does.
type portAllocator struct {
	mu       sync.Mutex
	min, max int
	used     map[int]bool
}

func (p *portAllocator) take() (int, error) {
	for range 200 {
		port := p.min + rand.IntN(p.max-p.min+1)
		p.mu.Lock()
		taken := p.used[port]
		if !taken {
			p.used[port] = true
		}
		p.mu.Unlock()
		if taken {
			continue
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			p.free(port)
			continue
		}
		ln.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port between %d and %d", p.min, p.max)
}

// reserve marks port as held (by an adopted dyno).
func (p *portAllocator) reserve(port int) {
	if port == 0 {
		return
	}
	p.mu.Lock()
	p.used[port] = true
	p.mu.Unlock()
}

func (p *portAllocator) free(port int) {
	p.mu.Lock()
	delete(p.used, port)
	p.mu.Unlock()
}

// fmtMS prints a short duration in milliseconds with one decimal.
func fmtMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
}
