package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipway/slipway"
)

// maxReplayBody is the largest request body the router buffers so that it
// can resend the request to another dyno when the first refuses the
// connection. Larger or chunked bodies are streamed and never retried.
const maxReplayBody = 64 << 10

// Router returns the built-in router: an http.Handler that sends a request
// with Host "<app key>.<BaseDomain>" (any port, any case) to one of the
// app's ready web dynos. It picks the dyno with the fewest requests in
// flight, starting its scan at a round-robin position (plain round robin
// when all are idle), never a starting, draining or dead dyno. When a
// connection to the chosen dyno fails before any response (refused, reset)
// it retries on another ready dyno, if the request can be replayed: no body,
// or a body of at most 64 KiB that it buffered (and, for a reset after the
// request may have been sent, only GET, HEAD, OPTIONS and TRACE). An
// unknown host gets 404, an app without a ready dyno 503; both bodies are
// plain text saying what to do. X-Forwarded-For, -Host and -Proto and
// X-Real-IP are set (incoming ones dropped); the Host header passes through
// unchanged.
//
// During a canary (a traffic split) each request first chooses a side: the
// canary release for weight percent of requests (at random, kept within a
// couple of requests of the share), else the other releases; when the
// chosen side has no ready dyno it goes to the other.
// A request with header X-Slipway-Release: <version> or cookie
// slipway-release=<version> goes to that release's dynos while it has
// ready ones, with or without a split. The least-in-flight choice and the
// retries above apply within the chosen side. Every request that reached a
// dyno (or found none) is counted for Traffic and RouterCollector.
func (r *Runtime) Router() http.Handler { return r.router }

// router is the Router's handler.
type router struct {
	rt        *Runtime
	suffix    string // "." + BaseDomain
	proxy     *httputil.ReverseProxy
	transport *http.Transport
}

func newRouter(rt *Runtime) *router {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          0, // no limit in total; per dyno below
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass encodings through untouched
	}
	rtr := &router{rt: rt, suffix: "." + rt.cfg.BaseDomain, transport: tr}
	rtr.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetXForwarded()
			pr.Out.Header.Del("X-Real-Ip") // a client's claim, like X-Forwarded-For
			if ip := pr.Out.Header.Get("X-Forwarded-For"); ip != "" {
				pr.Out.Header.Set("X-Real-Ip", ip)
			}
			// The key travels in URL.Host to dynoTransport, which swaps in
			// the chosen dyno's address.
			key, _ := rtr.appKey(pr.In.Host)
			if pr.In.Context().Value(previewRequest{}) != nil {
				key = strings.TrimSuffix(key, previewSuffix)
			}
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = key
		},
		Transport:    &dynoTransport{rtr: rtr},
		BufferPool:   newBufferPool(),
		ErrorHandler: rtr.proxyError,
		ErrorLog:     slog.NewLogLogger(rt.log.Handler(), slog.LevelWarn),
	}
	return rtr
}

func (rt *router) close() { rt.transport.CloseIdleConnections() }

// appKey returns the app key in host, "" and false when host is not under
// the base domain.
func (rt *router) appKey(host string) (string, bool) {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if len(host) <= len(rt.suffix) || !strings.HasSuffix(host, rt.suffix) {
		return "", false
	}
	key := host[:len(host)-len(rt.suffix)]
	if strings.IndexByte(key, '.') >= 0 {
		return "", false
	}
	return key, true
}

func (rt *router) appByKey(key string) *app {
	rt.rt.mu.RLock()
	a := rt.rt.hosts[key]
	rt.rt.mu.RUnlock()
	return a
}

// previewSuffix ends the key of an app's preview host, which reaches the
// new release of a blue-green rollout while it waits for its switch.
const previewSuffix = "--preview"

// resolve returns the app a request for host goes to, its key, and
// whether host is the app's preview host (only while the app has a
// blue-green preview).
func (rt *router) resolve(host string) (string, *app, bool) {
	key, ok := rt.appKey(host)
	if !ok {
		return "", nil, false
	}
	if a := rt.appByKey(key); a != nil {
		return key, a, false
	}
	base, ok := strings.CutSuffix(key, previewSuffix)
	if !ok {
		return key, nil, false
	}
	a := rt.appByKey(base)
	if a == nil {
		return key, nil, false
	}
	if sp := a.split.Load(); sp == nil || !sp.preview {
		return key, nil, false
	}
	return base, a, true
}

func (rt *router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	key, a, preview := rt.resolve(req.Host)
	if preview {
		req = req.WithContext(context.WithValue(req.Context(), previewRequest{}, true))
	}
	if a == nil {
		plainError(w, http.StatusNotFound, "No app is routed at host "+quote(req.Host)+"; apps answer at <app>-<space>."+rt.rt.cfg.BaseDomain+".\n")
		return
	}
	if len(*a.routes.Load()) == 0 {
		c := a.choose(req)
		a.noDynoAnswered(&c, 0)
		noDyno(w, key)
		return
	}
	if req.ContentLength > 0 && req.ContentLength <= maxReplayBody && req.GetBody == nil {
		body, err := io.ReadAll(io.LimitReader(req.Body, req.ContentLength))
		req.Body.Close()
		if err != nil {
			plainError(w, http.StatusBadRequest, "Could not read the request body: "+err.Error()+"\n")
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	rt.proxy.ServeHTTP(w, req)
}

func quote(s string) string { return "\"" + strings.ReplaceAll(slipway.Clip(s), "\"", "\\\"") + "\"" }

func plainError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg)
}

func noDyno(w http.ResponseWriter, key string) {
	plainError(w, http.StatusServiceUnavailable, "No web dyno of app "+key+" is ready; check `GET /apps/"+key+"/dynos`.\n")
}

// noDynoError means the app had no ready dyno left to try.
type noDynoError struct{ key string }

func (e *noDynoError) Error() string { return "no web dyno of app " + e.key + " is ready" }

func (rt *router) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	var nd *noDynoError
	switch {
	case errors.As(err, &nd):
		noDyno(w, nd.key)
	case req.Context().Err() != nil:
		// The client went away; nobody reads an answer.
		w.WriteHeader(http.StatusBadGateway)
	default:
		rt.rt.log.Warn("router: dyno did not answer", "host", req.Host, "path", req.URL.Path, "err", err)
		plainError(w, http.StatusBadGateway, "The app's dyno did not answer; try again.\n")
	}
}

// dynoTransport picks a dyno for each request, counts the request in flight
// until its response body is closed, and retries replayable requests whose
// connection failed on another dyno.
type dynoTransport struct{ rtr *router }

func (t *dynoTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	key := req.URL.Host
	a := t.rtr.appByKey(key)
	if a == nil {
		return nil, &noDynoError{key: key}
	}
	c := a.choose(req)
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	var tried [8]*dyno
	ntried := 0
	for {
		d := a.pickFor(&c, tried[:ntried])
		if d == nil {
			if ntried == 0 {
				a.noDynoAnswered(&c, time.Since(start))
			} else {
				e := tried[ntried-1].release()
				e.tracks[c.trackOf(e)].observe(classError, time.Since(start))
			}
			return nil, &noDynoError{key: key}
		}
		// req is the proxy's own outgoing copy (its URL cloned), so
		// pointing it at the dyno in place is safe.
		req.URL.Host = *d.addr.Load()
		res, err := t.rtr.transport.RoundTrip(req)
		e := d.release()
		if err == nil {
			e.tracks[c.trackOf(e)].observe(classOf(res.StatusCode), time.Since(start))
			res.Body = releaseOnClose(res.Body, d)
			return res, nil
		}
		d.inflight.Add(-1)
		if !replayable || ntried == len(tried) || req.Context().Err() != nil || !retryable(err, req.Method) {
			class := classError
			if req.Context().Err() != nil {
				class = classClosed
			}
			e.tracks[c.trackOf(e)].observe(class, time.Since(start))
			return nil, err
		}
		tried[ntried] = d
		ntried++
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				e.tracks[c.trackOf(e)].observe(classError, time.Since(start))
				return nil, err
			}
			req.Body = body
		}
	}
}

// retryable reports whether err means the request never reached the app:
// the dial failed, or (for methods that are safe to repeat) the connection
// was reset or closed before a response.
func retryable(err error, method string) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
	default:
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// pickFor returns the dyno for a request that c describes, counted in
// flight (see pick): one of the sticky release's, else one of the split's
// chosen track, else any routed dyno.
func (a *app) pickFor(c *choice, skip []*dyno) *dyno {
	if c.preview {
		return a.pick(skip, c.split.canaryVersion, false)
	}
	if c.sticky > 0 {
		if d := a.pick(skip, c.sticky, false); d != nil {
			return d
		}
	}
	if c.split != nil {
		if d := a.pick(skip, c.split.canaryVersion, !c.toCanary(a)); d != nil {
			return d
		}
	}
	return a.pick(skip, 0, false)
}

// pick returns a routed dyno not in skip with the fewest requests in flight,
// scanning from a round-robin start, and counts one more request in flight
// on it; nil when there is none. With version > 0 it only considers the
// dynos of that release version (with except, only the others). The routed
// flag is checked again after the count goes up, so a dyno taken out of
// the router meanwhile is never sent a request that its drain would not
// wait for.
func (a *app) pick(skip []*dyno, version int, except bool) *dyno {
	for range 4 {
		rs := *a.routes.Load()
		n := len(rs)
		if n == 0 {
			return nil
		}
		start := int(a.next.Add(1) % uint32(n))
		var best *dyno
		var bestIn int64
	scan:
		for i := range n {
			d := rs[(start+i)%n]
			if !d.routed.Load() {
				continue
			}
			if version > 0 && (d.release().version == version) == except {
				continue
			}
			for _, s := range skip {
				if s == d {
					continue scan
				}
			}
			if in := d.inflight.Load(); best == nil || in < bestIn {
				best, bestIn = d, in
			}
		}
		if best == nil {
			return nil
		}
		best.inflight.Add(1)
		if best.routed.Load() {
			return best
		}
		best.inflight.Add(-1)
	}
	return nil
}

// releaseOnClose wraps a response body so that closing it ends the request's
// in-flight count on d. It keeps the body writable for 101 Switching
// Protocols responses, which the proxy turns into a two-way tunnel.
func releaseOnClose(body io.ReadCloser, d *dyno) io.ReadCloser {
	if rwc, ok := body.(io.ReadWriteCloser); ok {
		return &releaseRWC{ReadWriteCloser: rwc, d: d}
	}
	return &releaseBody{ReadCloser: body, d: d}
}

type releaseBody struct {
	io.ReadCloser
	d    *dyno
	once sync.Once
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.d.inflight.Add(-1) })
	return err
}

type releaseRWC struct {
	io.ReadWriteCloser
	d    *dyno
	once sync.Once
}

func (b *releaseRWC) Close() error {
	err := b.ReadWriteCloser.Close()
	b.once.Do(func() { b.d.inflight.Add(-1) })
	return err
}

// bufferPool recycles the proxy's 32 KiB copy buffers. It pools pointers
// to arrays, which a slice converts back to without allocating, so that
// Put costs no allocation (a *[]byte would, one per request).
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 32 << 10

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) >= copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
	}
}
