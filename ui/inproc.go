package ui

import (
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/go-chi/chi/v5"
)

// inProcess is an http.RoundTripper that serves each request with the API's
// own handler in this process: the dashboard asks the API exactly what a
// client would (same routes, same authorization, same store queries, same
// error messages) without a network hop or a second listener. Answers are
// streamed through a pipe, so a following request (a release log with
// ?follow=true) delivers each line as the handler flushes it.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	// The dashboard's own route context must not reach the API's router,
	// which would take the request for one of a mounted sub-router.
	req = req.WithContext(context.WithValue(req.Context(), chi.RouteCtxKey, (*chi.Context)(nil)))
	pr, pw := io.Pipe()
	rw := &pipeWriter{header: http.Header{}, body: pw, ready: make(chan struct{}), req: req}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				// http.ErrAbortHandler: the handler cut the answer short on
				// purpose; the reader sees a broken body, as over a network.
				rw.start(http.StatusInternalServerError)
				pw.CloseWithError(io.ErrUnexpectedEOF)
				return
			}
			rw.start(http.StatusOK)
			pw.Close()
		}()
		t.h.ServeHTTP(rw, req)
	}()
	select {
	case <-rw.ready:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{
		Status: http.StatusText(rw.status), StatusCode: rw.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rw.sent, Body: pr, ContentLength: -1, Request: req,
	}, nil
}

// pipeWriter is the http.ResponseWriter of an in-process request.
type pipeWriter struct {
	header http.Header
	sent   http.Header // the header as it was when the status was written
	body   *io.PipeWriter
	req    *http.Request
	once   sync.Once
	ready  chan struct{}
	status int
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) start(code int) {
	w.once.Do(func() {
		w.status = code
		w.sent = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) WriteHeader(code int) { w.start(code) }

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.start(http.StatusOK)
	return w.body.Write(p)
}

// Flush is a no-op: every Write already reaches the reader.
func (w *pipeWriter) Flush() {}
