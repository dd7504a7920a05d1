package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
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
		Pipeline: IDRef{ID: "pl"}, Source: AppRelease{App: SourceApp{ID: "src"}}, Targets: []Target{{App: IDRef{ID: "dst"}}},
	})
	if err != nil || p.ID != "p1" {
		t.Fatalf("promotion = %+v, %v", p, err)
	}
	b, _ := json.Marshal(got)
	if string(b) != `{"pipeline":{"id":"pl"},"source":{"app":{"id":"src"}},"targets":[{"app":{"id":"dst"}}]}` {
		t.Fatalf("body = %s", b)
	}
}

// An answer without an error body (a proxy's, or a server's before the
// API answered) gets the code of its status from the table the server
// answers with, 405 and 501 included.
func TestClient_ErrorWithoutABody_TakesTheCodeOfItsStatus(t *testing.T) {
	for _, tt := range []struct {
		status int
		code   string
	}{
		{400, slipway.EInvalid}, {401, slipway.EUnauthorized}, {403, slipway.EForbidden}, {404, slipway.ENotFound},
		{405, slipway.EMethodNotAllowed}, {409, slipway.EConflict}, {413, slipway.ETooLarge}, {422, slipway.EUnprocessable},
		{500, slipway.EInternal}, {501, slipway.ENotImplemented}, {502, slipway.EInternal},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tt.status)
			w.Write([]byte("not JSON"))
		}))
		_, err := New(srv.URL, "tok").Apps(context.Background())
		srv.Close()
		if slipway.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), "GET /apps answered "+strconv.Itoa(tt.status)) {
			t.Errorf("%d: %v, want code %s", tt.status, err, tt.code)
		}
	}
}

// Requests send the fields that are set and nothing else: a status
// update that names only its state leaves the others (and the context,
// which cannot change) out, and a hook sends what the CLI gave.
func TestClient_RequestBodies_SendOnlyWhatIsSet(t *testing.T) {
	bodies := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies[r.Method+" "+r.URL.Path] = string(b)
		w.Write([]byte(`{"id":"x"}`))
	}))
	defer srv.Close()
	c := New(srv.URL, "tok")
	if _, err := c.UpdateReleaseStatus(bg, "a", "v1", "s1", ReleaseStatus{State: "error"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateReleaseStatus(bg, "a", "v1", ReleaseStatus{State: "pending", Name: "unit tests", Context: "ci/tests", TargetURL: "https://ci/1"}); err != nil {
		t.Fatal(err)
	}
	url, events, active := "https://h.example/x", []string{"release"}, false
	if _, err := c.CreateHook(bg, "a", NewHook{URL: &url, Events: &events, Active: &active}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreatePipeline(bg, "shop", ""); err != nil {
		t.Fatal(err)
	}
	if err := c.SetFeature(bg, "a", "auto-release", false); err != nil {
		t.Fatal(err)
	}
	for req, want := range map[string]string{
		"PATCH /apps/a/releases/v1/statuses/s1": `{"state":"error"}`,
		"POST /apps/a/releases/v1/statuses":     `{"state":"pending","name":"unit tests","context":"ci/tests","target_url":"https://ci/1"}`,
		"POST /apps/a/hooks":                    `{"url":"https://h.example/x","events":["release"],"active":false}`,
		"POST /pipelines":                       `{"name":"shop"}`,
		"PATCH /apps/a/features/auto-release":   `{"enabled":false}`,
	} {
		if got := bodies[req]; got != want {
			t.Errorf("%s sent %s, want %s", req, got, want)
		}
	}
}

var bg = context.Background()

// The stages come as Akkeris's map of each stage to the next; earlier
// servers answered a list. Both read as the stages in order.
func TestClient_PipelineStages_ReadsTheMapAndTheList(t *testing.T) {
	for _, body := range []string{
		`{"staging":"production","review":"development","production":null,"development":"staging"}`,
		`["review","development","staging","production"]`,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
		got, err := New(srv.URL, "tok").PipelineStages(context.Background())
		srv.Close()
		if err != nil || strings.Join(got, ",") != "review,development,staging,production" {
			t.Errorf("%s: stages = %v, %v", body, got, err)
		}
	}
	if _, err := parseStages([]byte(`{"a":"b","b":"a"}`)); err == nil {
		t.Error("a loop of stages was read")
	}
}
