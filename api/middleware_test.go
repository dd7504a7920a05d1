package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
)

// failingStore panics in Ping (GET /healthz) and fails FindToken with an
// error that has no code (any scoped token).
type failingStore struct{ slipway.Store }

func (failingStore) Ping(context.Context) error { panic("the store fell over") }

func (failingStore) FindToken(context.Context, string) (*slipway.Token, error) {
	return nil, errors.New("connection reset by peer")
}

// Every answer carries a fresh random X-Request-Id (a client's own is not
// taken); a panic and an uncoded error are both a 500 in the usual error
// body that quotes that id and nothing of the cause; /metrics counts each
// answer by method, route pattern and the status sent.
func TestMiddleware_RequestIDRecoverAndStatus(t *testing.T) {
	f := newFixture(t)
	f.srv = api.New(api.Config{Store: failingStore{f.db}, Engine: nopEngine{}, Runtime: stubRuntime{}, Token: "admin-token"})
	hexID := regexp.MustCompile(`^[0-9a-f]{16}$`)
	seen := map[string]bool{}
	for _, tt := range []struct {
		name, method, path, auth string
	}{
		{"a panic", "GET", "/healthz", ""},
		{"an uncoded store error", "GET", "/apps", "Bearer some-scoped-token"},
	} {
		rec := f.do(tt.method, tt.path, tt.auth, "")
		id := rec.Header().Get("X-Request-Id")
		if rec.Code != 500 || !hexID.MatchString(id) || seen[id] {
			t.Fatalf("%s: %d with request id %q (seen before: %v), want 500 and a new 16-hex-digit id", tt.name, rec.Code, id, seen[id])
		}
		seen[id] = true
		var body api.ErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: body %q: %v", tt.name, rec.Body, err)
		}
		if want := (api.ErrorBody{ID: slipway.EInternal, Message: "Internal error; quote request id " + id + " when you report it."}); body != want {
			t.Errorf("%s: body = %+v, want %+v", tt.name, body, want)
		}
	}

	// A client's X-Request-Id is not taken as the request's id.
	req := httptest.NewRequest("GET", "/nowhere", nil)
	req.Header.Set("X-Request-Id", "client-chosen")
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if id := rec.Header().Get("X-Request-Id"); !hexID.MatchString(id) || strings.Contains(rec.Body.String(), "client-chosen") {
		t.Errorf("with a client's X-Request-Id: answered id %q, body %s", id, rec.Body)
	}

	f.do("POST", "/apps", admin, `{"name":"counted"}`)
	body := f.do("GET", "/metrics", "", "").Body.String()
	for _, want := range []string{
		`slipway_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`slipway_http_requests_total{code="500",method="GET",route="/apps"} 1`,
		`slipway_http_requests_total{code="201",method="POST",route="/apps"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
}
