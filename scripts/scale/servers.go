package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipway/slipway/client"
)

// token is the admin token of the servers (SLIPWAY_TOKEN).
const token = "scale-token"

// server is one `slipway serve` child process.
type server struct {
	name   string
	cmd    *exec.Cmd
	url    string
	holder string // its server id, as app_leases names it
	c      *client.Client
	log    *os.File
	done   chan struct{}
	killed time.Time // when SIGKILL was sent

	mu      sync.Mutex
	last    sample // the last scrape that answered
	scrapes int    // scrapes that answered
	peakRSS float64
	peakGo  float64
}

// sample is what one scrape of /metrics says.
type sample struct {
	at         time.Time
	kubeReqs   float64 // slipway_kubernetes_requests_total, all labels
	dbQueries  float64 // slipway_db_queries_total
	succeeded  float64 // slipway_release_duration_seconds_count{status="succeeded"}
	finished   float64 // the same, any status
	rss        float64 // process_resident_memory_bytes
	goroutines float64 // go_goroutines
	scrapes    int     // scrapes of this server that answered, this one included
}

var listenRE = regexp.MustCompile(`Slipway API on (http://\S+),`)

// startServer starts `slipway serve` on the shared schema and slug dir
// and waits until its API answers.
func startServer(ctx context.Context, cfg config, name, dsn string) (*server, error) {
	dir := filepath.Join(cfg.WorkDir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(cfg.WorkDir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(cfg.Binary, "serve", "--runtime", "kubernetes", "--kubeconfig", cfg.Kubeconfig,
		"--database", dsn, "--data-dir", dir, "--slug-dir", filepath.Join(cfg.WorkDir, "slugs"),
		"--listen", "127.0.0.1:0", "--router-listen", "127.0.0.1:0", "--lease-ttl", cfg.LeaseTTL.String(),
		"--healthy-deadline", "5m", "--max-dynos-per-org", strconv.Itoa(cfg.Apps*3+100), "--log-level", "debug")
	cmd.Env = append(os.Environ(), "SLIPWAY_TOKEN="+token)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		io.Copy(logf, out)
	}()
	go func() { cmd.Wait(); close(s.done) }()
	select {
	case s.url = <-urls:
	case <-s.done:
		return nil, fmt.Errorf("%s exited at start; see %s", name, logf.Name())
	case <-time.After(60 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s did not start within 60s; see %s", name, logf.Name())
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	s.c = client.New(s.url, token)
	id, err := os.ReadFile(filepath.Join(dir, "server-id"))
	if err != nil {
		s.stop()
		return nil, err
	}
	s.holder = strings.TrimSpace(string(id))
	return s, nil
}

// alive reports whether the process still runs.
func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to go.
func (s *server) kill() {
	s.killed = time.Now()
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop ends the server with SIGTERM (SIGKILL after 15s).
func (s *server) stop() {
	if !s.alive() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
	s.log.Close()
}

// scrape reads /metrics once and keeps it as the last sample.
func (s *server) scrape(ctx context.Context) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return sample{}, fmt.Errorf("%s /metrics: %s", s.name, resp.Status)
	}
	smp := sample{at: time.Now()}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		switch {
		case strings.HasPrefix(name, "slipway_kubernetes_requests_total"):
			smp.kubeReqs += v
		case name == "slipway_db_queries_total":
			smp.dbQueries = v
		case strings.HasPrefix(name, "slipway_release_duration_seconds_count"):
			smp.finished += v
			if strings.Contains(name, `status="succeeded"`) {
				smp.succeeded += v
			}
		case name == "process_resident_memory_bytes":
			smp.rss = v
		case name == "go_goroutines":
			smp.goroutines = v
		}
	}
	if err := sc.Err(); err != nil {
		return sample{}, err
	}
	s.mu.Lock()
	s.scrapes++
	smp.scrapes = s.scrapes
	s.last = smp
	s.peakRSS = max(s.peakRSS, smp.rss)
	s.peakGo = max(s.peakGo, smp.goroutines)
	s.mu.Unlock()
	return smp, nil
}

// lastSample is the last scrape that answered.
func (s *server) lastSample() sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// scrapeEvery scrapes the live servers every d until ctx ends, so that a
// killed server's last figures are at most d old.
func scrapeEvery(ctx context.Context, d time.Duration, servers []*server) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, s := range servers {
				if s.alive() {
					s.scrape(ctx)
				}
			}
		}
	}
}
