package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
)

// logRuntime is a runtime whose dynos printed two lines each, around the
// release's log lines; with Follow it then sends one more and waits.
type logRuntime struct {
	stubRuntime
	at   time.Time
	seen chan slipway.LogQuery
	// followed, when set, hears when the follow line has been handed
	// over (the handler writes it before it reads anything else).
	followed chan struct{}
}

func (rt logRuntime) Logs(ctx context.Context, appID string, q slipway.LogQuery, fn func([]slipway.LogLine) error) error {
	rt.seen <- q
	if q.Lines == 3 { // a runtime that cannot read its logs
		return errors.New("the cluster does not answer")
	}
	lines := []slipway.LogLine{
		{Time: rt.at.Add(-time.Hour), Source: "app", Dyno: "web.1", Text: "booting"},
		{Time: rt.at.Add(time.Hour), Source: "app", Dyno: "web.1", Text: "listening"},
	}
	if len(lines) > q.Lines {
		lines = lines[len(lines)-q.Lines:]
	}
	if err := fn(lines); err != nil || !q.Follow {
		return err
	}
	if err := fn([]slipway.LogLine{{Time: rt.at.Add(2 * time.Hour), Source: "app", Dyno: "web.1", Text: "a request"}}); err != nil {
		return err
	}
	if rt.followed != nil {
		rt.followed <- struct{}{}
	}
	<-ctx.Done()
	return nil
}

// session creates a log session and returns the path and query of its URL.
func (f *fixture) session(srv *api.Server, auth, body string) string {
	f.t.Helper()
	req := httptest.NewRequest("POST", "/apps/hello/log-sessions", strings.NewReader(body))
	req.Header.Set("Authorization", auth)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	if rec.Code != 201 {
		f.t.Fatalf("POST log-sessions %s = %d %s", body, rec.Code, rec.Body)
	}
	var s struct {
		ID         string `json:"id"`
		LogplexURL string `json:"logplex_url"`
		CreatedAt  string `json:"created_at"`
		UpdatedAt  string `json:"updated_at"`
	}
	json.Unmarshal(rec.Body.Bytes(), &s)
	u, err := url.Parse(s.LogplexURL)
	if err != nil || s.ID == "" || s.CreatedAt == "" || s.UpdatedAt == "" || u.Scheme != "http" || u.Path != "/log-sessions/"+s.ID || u.Query().Get("secret") == "" {
		f.t.Fatalf("log session %s: %v", rec.Body, err)
	}
	return u.RequestURI()
}

func TestLogSession_BadRequests(t *testing.T) {
	f := newFixture(t)
	acme := f.scopedToken("acme")
	before := f.dump()
	for _, tt := range []struct {
		name, auth, body string
		want             int
		msg              string
	}{
		{"lines zero", admin, `{"lines":0}`, 422, "lines must be a whole number from 1 to 10000"},
		{"lines too many", admin, `{"lines":10001}`, 422, "lines must be"},
		{"lines fraction", admin, `{"lines":1.5}`, 422, "lines must be"},
		{"lines a string", admin, `{"lines":"10"}`, 400, "Field lines must be a whole number"},
		{"tail a string", admin, `{"tail":"yes"}`, 400, "Field tail must be true or false"},
		{"bad dyno", admin, `{"dyno":"web 1"}`, 422, "dyno must name a dyno"},
		{"not an object", admin, `[1]`, 400, ""},
		{"no token", "", `{}`, 401, ""},
		{"other organization", acme, `{}`, 404, `App \"hello\" was not found`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do("POST", "/apps/hello/log-sessions", tt.auth, tt.body)
			if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.msg) {
				t.Errorf("%s = %d %s, want %d with %q", tt.body, rec.Code, rec.Body, tt.want, tt.msg)
			}
		})
	}
	if f.dump() != before {
		t.Error("a refused log session changed the store")
	}
	// Akkeris clients send lines and tail; both may be left out.
	for _, body := range []string{`{"lines":10,"tail":true}`, `{}`, `{"lines":null,"tail":false,"dyno":"web.1"}`, `{"lines":10000}`} {
		f.session(f.srv, admin, body)
	}
}

func TestLogSession_StreamsDynoOutputAndReleaseEvents(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.db.AppendReleaseLog(ctx, f.rel.ID, "web.1 is healthy")
	at := time.Now()
	rt := logRuntime{at: at, seen: make(chan slipway.LogQuery, 4), followed: make(chan struct{}, 1)}
	srv := api.New(api.Config{Store: f.db, Engine: nopEngine{}, Runtime: rt, Token: "admin-token"})

	// Without tail: the newest lines of both, merged by time, then the end.
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", f.session(srv, admin, `{"lines":2}`), nil))
	lines := strings.Split(strings.TrimSuffix(rec.Body.String(), "\n"), "\n")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") || len(lines) != 2 {
		t.Fatalf("stream = %d %q", rec.Code, rec.Body)
	}
	if q := <-rt.seen; q.Lines != 2 || q.Dyno != "" || q.Follow {
		t.Errorf("runtime asked for %+v, want 2 lines, no follow", q)
	}
	wantEnds := []string{" hello-default[release.v1]: web.1 is healthy", " hello-default[app.web.1]: listening"}
	for i, l := range lines {
		ts, _, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339, ts); err != nil || !strings.HasSuffix(l, wantEnds[i]) {
			t.Errorf("line %d = %q, want <time>%s", i, l, wantEnds[i])
		}
	}

	// One dyno or type: its output only, no release events.
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", f.session(srv, admin, `{"lines":5,"dyno":"web"}`), nil))
	if q := <-rt.seen; q.Dyno != "web" || rec.Code != 200 || strings.Contains(rec.Body.String(), "[release.") || strings.Count(rec.Body.String(), "[app.web.1]") != 2 {
		t.Errorf("session of web (runtime asked for %+v) = %d %q, want web.1's two lines only", q, rec.Code, rec.Body)
	}

	// A runtime that fails: the release events still come.
	rec = httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", f.session(srv, admin, `{"lines":3}`), nil))
	<-rt.seen
	if got := rec.Body.String(); rec.Code != 200 || !strings.HasSuffix(got, " hello-default[release.v1]: web.1 is healthy\n") || strings.Contains(got, "[app.") {
		t.Errorf("session on a failing runtime = %d %q, want the release events", rec.Code, got)
	}

	// With tail, no token: the tail, then new lines, until the client goes.
	rctx, cancel := context.WithCancel(ctx)
	rec = httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		srv.ServeHTTP(rec, httptest.NewRequest("GET", f.session(srv, admin, `{"lines":1,"tail":true}`), nil).WithContext(rctx))
		close(done)
	}()
	if q := <-rt.seen; q.Lines != 1 || !q.Follow {
		t.Errorf("runtime asked for %+v, want 1 line and follow", q)
	}
	select {
	case <-rt.followed:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not take the new line")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end when its client went away")
	}
	if got := rec.Body.String(); !strings.Contains(got, "[app.web.1]: listening\n") || !strings.HasSuffix(got, "[app.web.1]: a request\n") || strings.Contains(got, "booting") {
		t.Errorf("tailing stream = %q", got)
	}

	// A wrong secret, another session's id, a changed payload: 404.
	path := f.session(srv, admin, `{}`)
	u, _ := url.Parse(path)
	secret := u.Query().Get("secret")
	payload, mac, _ := strings.Cut(secret, ".")
	for _, bad := range []string{
		u.Path,
		u.Path + "?secret=" + payload,
		u.Path + "?secret=" + payload + ".AAAA" + mac[4:],
		"/log-sessions/00000000-0000-4000-8000-000000000000?secret=" + secret,
		u.Path + "?secret=e30." + mac, // {} signed by nobody
	} {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", bad, nil))
		if rec.Code != 404 || !strings.Contains(rec.Body.String(), "create a new one") {
			t.Errorf("GET %s = %d %s, want 404", bad, rec.Code, rec.Body)
		}
	}
	// Another server's key does not open it.
	other := api.New(api.Config{Store: f.db, Engine: nopEngine{}, Runtime: rt, Token: "admin-token"})
	rec = httptest.NewRecorder()
	other.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	if rec.Code != 404 {
		t.Errorf("another server's session = %d, want 404", rec.Code)
	}
}
