// Command testapp is a tiny web app that the tests run as a slug. One binary
// serves every test; the Procfile chooses its behaviour with flags:
//
//	./testapp                          serve on $PORT
//	./testapp --worker                 run until SIGTERM, never listen
//	./testapp --crash                  print a reason to stderr, exit 1
//	./testapp --crash-after=500ms      serve, then exit 1 after that long
//	./testapp --crash-if-dyno=web.2    like --crash, but only when $DYNO is web.2
//	./testapp --unhealthy              serve, but /health answers 500
//	./testapp --never-listen           run, never open the port
//	./testapp --start-delay=200ms      sleep before anything else (listening,
//	                                   crashing)
//	./testapp --release-task --once-file=PATH [--fail]
//	                                   append a line to PATH and exit 0
//	                                   (with --fail: exit 3 instead)
//
// Endpoints: GET / answers "version=<SLIPWAY_RELEASE_VERSION> dyno=<DYNO>";
// /health answers 200 (500 with --unhealthy); /env/<KEY> answers the
// variable's value or 404; /sleep?ms=N answers after N milliseconds;
// /startup answers JSON with the process's pid and the wall-clock times (Unix
// nanoseconds) at which main started and the port was listening, which the
// benchmarks use to tell the app's own start time from the runtime's.
//
// /probe/... act as a hostile tenant would, for the isolation tests: read
// (?path=), write (?path=), dial (?addr=), whoami, procs (every pid in
// /proc with the environment it can read), alloc (?mb=, touched) and fork
// (?n= sleeping children); each answers 200 with what it got or 403 with
// the error.
//
// On SIGTERM it stops accepting, lets in-flight requests finish and exits 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// allocate allocates mb MiB and touches every page, so the memory is the
// process's own.
func allocate(mb int) [][]byte {
	var keep [][]byte
	for range mb {
		b := make([]byte, 1<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		keep = append(keep, b)
	}
	return keep
}

func main() {
	mainNS := time.Now().UnixNano()
	var (
		crash       = flag.Bool("crash", false, "exit 1 at start")
		crashAfter  = flag.Duration("crash-after", 0, "exit 1 after this long")
		crashIfDyno = flag.String("crash-if-dyno", "", "exit 1 at start when $DYNO equals this")
		unhealthy   = flag.Bool("unhealthy", false, "/health answers 500")
		neverListen = flag.Bool("never-listen", false, "never open the port")
		startDelay  = flag.Duration("start-delay", 0, "sleep before listening")
		worker      = flag.Bool("worker", false, "run until SIGTERM without listening")
		releaseTask = flag.Bool("release-task", false, "append a line to --once-file and exit")
		onceFile    = flag.String("once-file", "", "file the release task appends to")
		fail        = flag.Bool("fail", false, "with --release-task: exit 3")
		failPercent = flag.Int("fail-percent", 0, "/ answers 500 to this share of requests (every request whose count mod 100 is below it)")
		allocMB     = flag.Int("alloc-mb", 0, "allocate and touch this many MiB at start, before listening")
	)
	flag.Parse()
	dyno := os.Getenv("DYNO")
	version := os.Getenv("SLIPWAY_RELEASE_VERSION")

	if *startDelay > 0 {
		time.Sleep(*startDelay)
	}
	if *crash || (*crashIfDyno != "" && *crashIfDyno == dyno) {
		fmt.Fprintf(os.Stderr, "testapp: crashing at start as asked (dyno %s)\n", dyno)
		os.Exit(1)
	}
	if *releaseTask {
		os.Exit(runReleaseTask(*onceFile, version, *fail))
	}
	held := allocate(*allocMB)
	defer runtime.KeepAlive(held)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if *crashAfter > 0 {
		go func() {
			time.Sleep(*crashAfter)
			fmt.Fprintf(os.Stderr, "testapp: crashing after %s as asked\n", *crashAfter)
			os.Exit(1)
		}()
	}
	if *worker || *neverListen {
		fmt.Printf("testapp: %s running without a port\n", dyno)
		<-ctx.Done()
		return
	}
	ln, err := net.Listen("tcp", ":"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		os.Exit(1)
	}
	listenNS := time.Now().UnixNano()
	srv := &http.Server{Handler: handler(version, dyno, *unhealthy, *failPercent, mainNS, listenNS)}
	fmt.Printf("testapp: %s v%s listening on %s\n", dyno, version, ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(os.Stderr, "testapp: shutdown: %v\n", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
	}
	fmt.Printf("testapp: %s stopped\n", dyno)
}

func handler(version, dyno string, unhealthy bool, failPercent int, mainNS, listenNS int64) http.Handler {
	hello := []byte("version=" + version + " dyno=" + dyno + "\n")
	mux := http.NewServeMux()
	var served atomic.Int64
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if int((served.Add(1)-1)%100) < failPercent {
			w.WriteHeader(http.StatusInternalServerError)
		}
		w.Write(hello)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if unhealthy {
			http.Error(w, "unhealthy as asked", http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /env/{key}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := os.LookupEnv(r.PathValue("key"))
		if !ok {
			http.Error(w, "unset", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, v)
	})
	mux.HandleFunc("GET /sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		w.Write(hello)
	})
	mux.HandleFunc("GET /startup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int64{"pid": int64(os.Getpid()), "main_ns": mainNS, "listen_ns": listenNS})
	})
	probes(mux)
	return mux
}

// probes adds the hostile-tenant endpoints (see the package comment).
func probes(mux *http.ServeMux) {
	answer := func(w http.ResponseWriter, body string, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		fmt.Fprint(w, body)
	}
	mux.HandleFunc("GET /probe/read", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		answer(w, string(b), err)
	})
	mux.HandleFunc("GET /probe/write", func(w http.ResponseWriter, r *http.Request) {
		answer(w, "written", os.WriteFile(r.URL.Query().Get("path"), []byte("tenant was here\n"), 0o644))
	})
	mux.HandleFunc("GET /probe/dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), time.Second)
		if err == nil {
			c.Close()
		}
		answer(w, "connected", err)
	})
	mux.HandleFunc("GET /probe/whoami", func(w http.ResponseWriter, r *http.Request) {
		answer(w, fmt.Sprintf("uid=%d gid=%d", os.Getuid(), os.Getgid()), nil)
	})
	mux.HandleFunc("GET /probe/procs", func(w http.ResponseWriter, r *http.Request) {
		ents, err := os.ReadDir("/proc")
		var b strings.Builder
		for _, e := range ents {
			if _, err := strconv.Atoi(e.Name()); err != nil {
				continue
			}
			env, _ := os.ReadFile("/proc/" + e.Name() + "/environ")
			fmt.Fprintf(&b, "pid %s: %s\n", e.Name(), strings.ReplaceAll(string(env), "\x00", " "))
		}
		answer(w, b.String(), err)
	})
	mux.HandleFunc("GET /probe/alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		answer(w, fmt.Sprintf("allocated %d MiB", len(allocate(mb))), nil)
	})
	mux.HandleFunc("GET /probe/fork", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		started := 0
		var err error
		for range n {
			cmd := exec.Command("/bin/sleep", "30")
			if err = cmd.Start(); err != nil {
				break
			}
			started++
			go cmd.Wait()
		}
		body := fmt.Sprintf("started %d", started)
		if err != nil {
			body += "; then: " + err.Error()
		}
		answer(w, body, nil)
	})
}

func runReleaseTask(file, version string, fail bool) int {
	if fail {
		fmt.Fprintln(os.Stderr, "testapp: release task failing as asked")
		return 3
	}
	if file == "" {
		fmt.Fprintln(os.Stderr, "testapp: --release-task needs --once-file")
		return 2
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		return 1
	}
	line := "release v" + version + " port=" + os.Getenv("PORT") + " dyno=" + os.Getenv("DYNO")
	if _, err := fmt.Fprintln(f, strings.TrimSpace(line)); err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "testapp: %v\n", err)
		return 1
	}
	fmt.Printf("testapp: release task for v%s wrote %s\n", version, file)
	return 0
}
