package api_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
)

// PATCH honours Akkeris's removeHealthcheck and remove-command, single and
// batch; size is kept and shown; an unknown size is 422 naming the field.
func TestFormations_AkkerisFields(t *testing.T) {
	f := newFixture(t)
	if rec := f.do("POST", "/apps/hello/formation", admin, `{"type":"web","quantity":1,"size":"gp2","command":"./web --fast","healthcheck":"/health"}`); rec.Code != 201 {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	f.do("POST", "/apps/hello/formation", admin, `{"type":"worker","quantity":1,"command":"./work","healthcheck":"/up"}`)
	type formation struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		Size        string `json:"size"`
		Command     string `json:"command"`
		Healthcheck string `json:"healthcheck"`
	}
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		want                     map[string]formation // by type; "" fields must be empty
		wantMessage              string
	}{
		{"size kept", "GET", "/apps/hello/formation/web", "", 200,
			map[string]formation{"web": {Size: "gp2", Command: "./web --fast", Healthcheck: "/health"}}, ""},
		{"remove both, single", "PATCH", "/apps/hello/formation/web", `{"removeHealthcheck":true,"remove-command":true}`, 200,
			map[string]formation{"web": {Size: "gp2"}}, ""},
		{"false removes nothing", "PATCH", "/apps/hello/formation/worker", `{"removeHealthcheck":false,"remove-command":false}`, 200,
			map[string]formation{"worker": {Size: "standard", Command: "./work", Healthcheck: "/up"}}, ""},
		{"remove, batch, with a size", "PATCH", "/apps/hello/formation", `[{"type":"worker","size":"gp3","removeHealthcheck":true},{"type":"web","quantity":2,"remove-command":true}]`, 200,
			map[string]formation{"worker": {Size: "gp3", Command: "./work"}, "web": {Size: "gp2"}}, ""},
		{"unknown size", "PATCH", "/apps/hello/formation/web", `{"size":"huge"}`, 422, nil, `huge\" is not offered: GET /sizes`},
		{"unknown size on create", "POST", "/apps/hello/formation", `{"type":"clock","quantity":1,"size":"standard-1x"}`, 422, nil, "size"},
		{"empty size", "PATCH", "/apps/hello/formation", `[{"type":"web","size":""}]`, 422, nil, "size"},
		{"remove and set at once", "PATCH", "/apps/hello/formation/web", `{"healthcheck":"/x","removeHealthcheck":true}`, 422, nil, "removeHealthcheck"},
		{"remove-command and command", "PATCH", "/apps/hello/formation/web", `{"command":"./x","remove-command":true}`, 422, nil, "remove-command"},
		{"remove-command not a bool", "PATCH", "/apps/hello/formation/web", `{"remove-command":"yes"}`, 400, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			rec := f.do(tt.method, tt.path, admin, tt.body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s: %d %s", tt.method, tt.path, rec.Code, rec.Body)
			}
			if tt.wantStatus >= 400 {
				if !strings.Contains(rec.Body.String(), tt.wantMessage) {
					t.Errorf("message %s, want %q", rec.Body, tt.wantMessage)
				}
				if after := f.dump(); after != before {
					t.Errorf("a refused request changed the store")
				}
				return
			}
			var got []formation
			if b := strings.TrimSpace(rec.Body.String()); strings.HasPrefix(b, "{") {
				var one formation
				json.Unmarshal([]byte(b), &one)
				got = []formation{one}
			} else {
				json.Unmarshal([]byte(b), &got)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %s", rec.Body)
			}
			for _, g := range got {
				w := tt.want[g.Type]
				if g.Size != w.Size || g.Command != w.Command || g.Healthcheck != w.Healthcheck || len(g.ID) != 36 {
					t.Errorf("%s = %+v, want %+v", g.Type, g, w)
				}
			}
		})
	}
	// The id is the same on every answer.
	var a, b struct{ ID string }
	json.Unmarshal(f.do("GET", "/apps/hello/formation/web", admin, "").Body.Bytes(), &a)
	json.Unmarshal(f.do("GET", "/apps/hello-default/formation/web", admin, "").Body.Bytes(), &b)
	if a.ID == "" || a.ID != b.ID {
		t.Errorf("formation ids %q, %q", a.ID, b.ID)
	}
}

// GET /sizes lists the sizes, shaped as Formations.md shows them.
func TestSizes(t *testing.T) {
	f := newFixture(t)
	rec := f.do("GET", "/sizes", admin, "")
	var got []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Resources   struct {
			Requests map[string]string `json:"requests"`
			Limits   map[string]string `json:"limits"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != 200 || err != nil || len(got) != len(slipway.Sizes()) {
		t.Fatalf("GET /sizes: %d %s", rec.Code, rec.Body)
	}
	byName := map[string]int{}
	for i, s := range got {
		byName[s.Name] = i
	}
	gp2 := got[byName["gp2"]]
	if gp2.Resources.Limits["memory"] != "512Mi" || gp2.Resources.Requests["memory"] != "512Mi" || gp2.Resources.Limits["cpu"] != "500m" || gp2.Description == "" {
		t.Errorf("gp2 = %+v", gp2)
	}
	if std := got[byName["standard"]]; std.Name != "standard" || std.Resources.Limits["memory"] != "" || std.Resources.Limits["cpu"] != "" {
		t.Errorf("standard without server limits = %+v; want memory and cpu \"\"", std)
	}
	// A server with dyno limits shows them as the standard size's.
	limited := api.New(api.Config{Store: f.db, Engine: nopEngine{}, Runtime: stubRuntime{}, Token: "admin-token", MaxSlug: 1 << 20, SpoolDir: t.TempDir(),
		DefaultSize: slipway.Size{MemoryBytes: 512 << 20, MilliCPU: 1000}})
	req := httptest.NewRequest("GET", "/sizes", nil)
	req.Header.Set("Authorization", admin)
	w := httptest.NewRecorder()
	limited.ServeHTTP(w, req)
	if !strings.Contains(w.Body.String(), `{"name":"standard","description":"The server's default dyno limits.","resources":{"requests":{"memory":"512Mi","cpu":"1000m"},"limits":{"memory":"512Mi","cpu":"1000m"}}}`) {
		t.Errorf("GET /sizes with 512 MiB and 1 CPU per dyno: %s", w.Body)
	}
	if rec := f.do("GET", "/sizes", "", ""); rec.Code != 401 {
		t.Errorf("without a token: %d", rec.Code)
	}
}

// PUT /apps/{app}/builds/{id} refuses, with a 422 that says what to do,
// a build there is nothing to rebuild from, and a running build with 409.
func TestRebuild_Refused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	newBuild := func(url, status string, slug *slipway.Slug) string {
		b := &slipway.Build{AppID: f.app.ID, SourceURL: url}
		if err := f.db.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
		if status != slipway.BuildQueued {
			if err := f.db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: status, Slug: slug}); err != nil {
				t.Fatal(err)
			}
		}
		return b.ID
	}
	collected := newBuild("data:", slipway.BuildSucceeded, &slipway.Slug{ProcessTypes: map[string]string{"web": "./web"}, Dir: filepath.Join(t.TempDir(), "gone")})
	failed := newBuild("data:", slipway.BuildFailed, nil)
	running := newBuild("docker://registry.example.com/app:1", slipway.BuildQueued, nil)
	tests := []struct {
		name, id    string
		wantStatus  int
		wantMessage string
	}{
		{"slug garbage-collected", collected, 422, "garbage-collected"},
		{"failed inline build", failed, 422, "push the build again"},
		{"no source recorded", f.slug, 422, "no source to rebuild from"},
		{"still running", running, 409, "still queued"},
		{"unknown", "0b6f3b5e-8d1c-4d5e-9a55-3c1b2a4d5e6f", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			rec := f.do("PUT", "/apps/hello/builds/"+tt.id, admin, "")
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantMessage) {
				t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
			}
			if f.dump() != before {
				t.Error("a refused rebuild changed the store")
			}
		})
	}
}
