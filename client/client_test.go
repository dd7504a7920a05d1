package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
)

func TestClient_ReleasesPage_SendsRangeAndReadsNextRange(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apps/hello-default/releases" || r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("User-Agent") != "slipway-cli" {
			t.Errorf("request %s %v", r.URL.Path, r.Header)
		}
		if r.Header.Get("Range") == "" {
			w.Write([]byte(`[{"version":1},{"version":2}]`))
			return
		}
		w.Header().Set("Next-Range", "version ]2..; order=desc, max=2")
		w.WriteHeader(http.StatusPartialContent)
		w.Write([]byte(`[{"version":3},{"version":2}]`))
	}))
	defer srv.Close()
	c := New(srv.URL+"/", "tok")
	c.UserAgent = "slipway-cli"
	rels, next, err := c.ReleasesPage(context.Background(), "hello-default", "version ..; order=desc, max=2")
	if err != nil || len(rels) != 2 || rels[0].Version != 3 || next != "version ]2..; order=desc, max=2" {
		t.Fatalf("page = %+v %q %v", rels, next, err)
	}
	rels, next, err = c.ReleasesPage(context.Background(), "hello-default", "")
	if err != nil || len(rels) != 2 || next != "" {
		t.Fatalf("whole list = %+v %q %v", rels, next, err)
	}
}

func TestClient_ErrorsCarryTheServersCodeAndMessage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/apps":
			w.WriteHeader(422)
			w.Write([]byte(`{"id":"unprocessable_entity","message":"App name \"X\" is invalid."}`))
		default:
			w.WriteHeader(502)
			w.Write([]byte("<html>bad gateway</html>"))
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "tok")
	_, err := c.CreateNewApp(context.Background(), NewApp{Name: "X"})
	if slipway.ErrorCode(err) != slipway.EUnprocessable || slipway.ErrorMessage(err) != `App name "X" is invalid.` {
		t.Fatalf("422: %v", err)
	}
	_, err = c.Pipelines(context.Background())
	if slipway.ErrorCode(err) != slipway.EInternal || !strings.Contains(err.Error(), "502") {
		t.Fatalf("502: %v", err)
	}
}

func TestClient_FollowReleaseLog_OutlivesTheClientTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("follow") != "true" {
			t.Errorf("query %q", r.URL.RawQuery)
		}
		for _, l := range []string{"one", "two", "three"} {
			io.WriteString(w, l+"\n")
			w.(http.Flusher).Flush()
			time.Sleep(60 * time.Millisecond)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "tok")
	c.HTTP.Timeout = 50 * time.Millisecond
	var lines []string
	if err := c.FollowReleaseLog(context.Background(), "a", "v1", func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(lines, ",") != "one,two,three" {
		t.Fatalf("lines = %q", lines)
	}
}

func TestClient_CreatePipelinePromotion_Body(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/pipeline-promotions" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(201)
		w.Write([]byte(`{"id":"p1","status":"pending"}`))
	}))
	defer srv.Close()
	c := New(srv.URL, "tok")
	p, err := c.CreatePipelinePromotion(context.Background(), NewPipelinePromotion{
		Pipeline: IDRef{"pl"}, Source: AppRelease{App: IDRef{"src"}}, Targets: []AppRelease{{App: IDRef{"dst"}}},
	})
	if err != nil || p.ID != "p1" {
		t.Fatalf("promotion = %+v, %v", p, err)
	}
	b, _ := json.Marshal(got)
	if string(b) != `{"pipeline":{"id":"pl"},"source":{"app":{"id":"src"}},"targets":[{"app":{"id":"dst"}}]}` {
		t.Fatalf("body = %s", b)
	}
}
