package api_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
)

// TestHookResults_AkkerisShapes: each delivery attempt is a result with
// Webhooks.md's fields (and Slipway's own), readable one by one; the
// hook's secret appears in none of it.
func TestHookResults_AkkerisShapes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const secret = "hook-secret-that-never-shows"
	hb := f.want("POST", "/apps/hello/hooks", `{"url":"https://example.com/hook","events":["release","build"],"secret":"`+secret+`"}`, 201)
	h := wantShape(t, "hook", hb, map[string]string{"id": "string", "url": "string", "events": "array", "active": "boolean", "created_at": "string", "updated_at": "string"})
	if _, ok := lookup(h, "secret"); ok {
		t.Errorf("the hook shows its secret: %s", hb)
	}
	hookID := h.(map[string]any)["id"].(string)
	if err := f.db.EmitEvent(ctx, f.app.ID, slipway.EventRelease, map[string]any{"release": map[string]any{"version": 7}}); err != nil {
		t.Fatal(err)
	}
	dels, err := f.db.ClaimDeliveries(ctx, 10, time.Minute)
	if err != nil || len(dels) != 1 {
		t.Fatalf("deliveries = %+v, %v", dels, err)
	}
	sent := map[string]string{"Content-Type": "application/json", "X-Akkeris-Event": "release", "X-Akkeris-Delivery": dels[0].ID, "X-Akkeris-Signature": "sha1=00"}
	if err := f.db.RecordAttempt(ctx, dels[0], &slipway.HookResult{Attempt: 1, StatusCode: 503, Error: "the hook answered 503", RequestHeaders: sent,
		ResponseHeaders: map[string]string{"Retry-After": "1"}}, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.db.RecordAttempt(ctx, dels[0], &slipway.HookResult{Attempt: 2, StatusCode: 200, RequestHeaders: sent,
		ResponseHeaders: map[string]string{"Content-Length": "0"}}, true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	resultShape := map[string]string{"id": "string", "created_at": "string", "hook.id": "string", "hook.events": "array",
		"last_attempt.request.method": "string", "last_attempt.request.url": "string", "last_attempt.request.headers": "object",
		"last_attempt.request.body": "object", "last_attempt.response.code": "number", "last_attempt.response.headers": "object",
		"last_attempt.status": "string", "last_attempt.updated_at": "string", "num_attempts": "number", "status": "string",
		// Slipway's own
		"delivery.id": "string", "event": "string", "attempt": "number", "request.headers": "object", "response.code": "number",
		"duration_ms": "number", "error": "string"}
	lb := f.want("GET", "/apps/hello/hooks/"+hookID+"/results", ``, 200)
	list := wantShape(t, "results", lb, map[string]string{"0": "object", "1": "object"})
	if strings.Contains(string(lb), secret) {
		t.Fatalf("the secret is in the results: %s", lb)
	}
	for i, want := range []struct {
		code   float64
		status string
		header string
	}{{503, "failed", "Retry-After"}, {200, "succeeded", "Content-Length"}} {
		item, _ := lookup(list, strconv.Itoa(i))
		b, _ := json.Marshal(item)
		wantShape(t, "result", b, resultShape)
		got := map[string]any{}
		for _, p := range []string{"last_attempt.response.code", "status", "last_attempt.status", "last_attempt.request.url", "last_attempt.request.body.action",
			"last_attempt.request.body.release.version", "hook.id", "hook.events.1", "num_attempts", "last_attempt.request.headers.X-Akkeris-Event"} {
			got[p], _ = lookup(item, p)
		}
		if got["last_attempt.response.code"] != want.code || got["status"] != want.status || got["last_attempt.status"] != want.status ||
			got["last_attempt.request.url"] != "https://example.com/hook" || got["last_attempt.request.body.action"] != "release" ||
			got["last_attempt.request.body.release.version"] != 7.0 || got["hook.id"] != hookID || got["hook.events.1"] != "build" ||
			got["num_attempts"] != float64(i+1) || got["last_attempt.request.headers.X-Akkeris-Event"] != "release" {
			t.Errorf("result %d = %v", i, got)
		}
		if _, ok := lookup(item, "last_attempt.response.headers."+want.header); !ok {
			t.Errorf("result %d: no response header %s in %s", i, want.header, b)
		}
		// One result by id: the same object.
		id := item.(map[string]any)["id"].(string)
		one := f.want("GET", "/apps/hello/hooks/"+hookID+"/results/"+id, ``, 200)
		if string(one) != string(b)+"\n" && string(one) != string(b) {
			var a, c any
			json.Unmarshal(one, &a)
			json.Unmarshal(b, &c)
			ab, _ := json.Marshal(a)
			cb, _ := json.Marshal(c)
			if string(ab) != string(cb) {
				t.Errorf("result %s = %s, want %s", id, one, b)
			}
		}
	}
	f.want("GET", "/apps/hello/hooks/"+hookID+"/results/c5b5896f-7896-4a11-80f0-dbb0e6c00ac5", ``, 404)
	f.want("GET", "/apps/hello/hooks/"+hookID+"/results/not-an-id", ``, 404)
	// A result is reached through its own hook and app only.
	ob := f.want("POST", "/apps/other/hooks", `{"url":"https://example.com/o","events":["release"]}`, 201)
	var o struct{ ID string }
	json.Unmarshal(ob, &o)
	first, _ := lookup(list, "0.id")
	f.want("GET", "/apps/other/hooks/"+o.ID+"/results/"+first.(string), ``, 404)
	f.want("GET", "/apps/other/hooks/"+hookID+"/results/"+first.(string), ``, 404)
}
