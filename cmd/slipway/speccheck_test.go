package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/slipway/slipway/docs"
)

// specCheck is an http.RoundTripper that holds every JSON answer of the
// server against docs/openapi.yaml: a status the spec does not list for
// the route, or a body or header that breaks the route's schema, fails
// the test that got it, naming the route and the field. Streams (a
// release log followed, a log session) are text and pass unchecked.
type specCheck struct {
	t      testing.TB
	next   http.RoundTripper
	router routers.Router
	done   atomic.Bool // the test is over: report nothing more

	mu       sync.Mutex
	reported map[string]bool // each problem once per test, however often a loop polls
}

// newSpecCheck loads the spec as the server embeds it and routes on
// paths only (the spec's server URL is relative, the test's host is not).
func newSpecCheck(t testing.TB, next http.RoundTripper) *specCheck {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if next == nil {
		next = http.DefaultTransport
	}
	c := &specCheck{t: t, next: next, router: router}
	t.Cleanup(func() { c.done.Store(true) })
	return c
}

func (c *specCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil || c.done.Load() {
		return resp, err
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct != "application/json" {
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return resp, nil // the caller sees the short body and says so
	}
	if msg := c.check(req, resp, body); msg != "" && !c.done.Load() && c.first(req.Method+" "+msg) {
		c.t.Errorf("%s %s answered %d, which docs/openapi.yaml does not allow: %s\nbody: %.600s", req.Method, req.URL.Path, resp.StatusCode, msg, body)
	}
	return resp, nil
}

// first reports whether the problem is new to this test.
func (c *specCheck) first(problem string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reported[problem] {
		return false
	}
	if c.reported == nil {
		c.reported = map[string]bool{}
	}
	c.reported[problem] = true
	return true
}

// check returns what is wrong with the answer, "" when nothing is.
func (c *specCheck) check(req *http.Request, resp *http.Response, body []byte) string {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return "" // an unknown route: the router's own 404/405
		}
		return "the route is not in the spec: " + err.Error()
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return "route " + route.Path + ": " + strings.Join(problems(err), "; ")
	}
	return ""
}

// problems lists what a validation error found, one line per field
// ("/app/name: property \"name\" is missing"), without the schema dumps
// kin-openapi's own messages carry.
func problems(err error) []string {
	var multi openapi3.MultiError
	if errors.As(err, &multi) {
		var out []string
		for _, e := range multi {
			out = append(out, problems(e)...)
		}
		return out
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		return []string{"/" + strings.Join(se.JSONPointer(), "/") + ": " + se.Reason}
	}
	var re *openapi3filter.ResponseError
	if errors.As(err, &re) && re.Err != nil && re.Err != err {
		if p := problems(re.Err); len(p) > 0 {
			return p
		}
		return []string{re.Reason}
	}
	return []string{err.Error()}
}
