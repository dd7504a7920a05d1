package api_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/slipway/slipway"
)

// jsonType is the JSON type of a decoded value, as the reference pages
// name them.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "?"
}

// wantShape checks that body has every field of want with its JSON type,
// and returns the decoded body.
func wantShape(t *testing.T, what string, body []byte, want map[string]string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	for path, typ := range want {
		got, ok := lookup(v, path)
		if !ok {
			t.Errorf("%s: no %s in %s", what, path, body)
			continue
		}
		if jsonType(got) != typ {
			t.Errorf("%s: %s is %s (%v), want %s", what, path, jsonType(got), got, typ)
		}
	}
	return v
}

func (f *fixture) want(method, path, body string, code int) []byte {
	f.t.Helper()
	rec := f.do(method, path, admin, body)
	if rec.Code != code {
		f.t.Fatalf("%s %s = %d %s, want %d", method, path, rec.Code, rec.Body, code)
	}
	return rec.Body.Bytes()
}

var (
	pipelineShape = map[string]string{"id": "string", "name": "string", "created_at": "string", "updated_at": "string"}
	couplingShape = map[string]string{"id": "string", "app.id": "string", "app.name": "string", "pipeline.id": "string",
		"stage": "string", "required_status_checks.contexts": "array", "created_at": "string", "updated_at": "string"}
	promotionShape = map[string]string{"id": "string", "pipeline.id": "string", "source.app.id": "string", "source.app.name": "string",
		"source.release.id": "string", "status": "string", "created_at": "string", "updated_at": "string", "targets": "array"}
	targetShape = map[string]string{"id": "string", "app.id": "string", "app.name": "string", "release.id": "string", "status": "string",
		"error_message": "string", "pipeline_promotion.id": "string"}
)

// TestPipelines_AkkerisShapes holds every pipeline route of Pipelines.md
// that Slipway serves to the reference's field names and nesting, with the
// types and codes of API.md.
func TestPipelines_AkkerisShapes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	wantShape(t, "create pipeline", f.want("POST", "/pipelines", `{"name":"shop"}`, 201), pipelineShape)
	wantShape(t, "list pipelines", f.want("GET", "/pipelines", ``, 200), map[string]string{"0.id": "string", "0.name": "string", "0.created_at": "string", "0.updated_at": "string"})
	p := wantShape(t, "get pipeline", f.want("GET", "/pipelines/shop", ``, 200), pipelineShape)
	pipelineID, _ := lookup(p, "id")

	// Stages: the map of each stage to the next.
	if got := strings.TrimSpace(string(f.want("GET", "/pipeline-stages", ``, 200))); got != `{"development":"staging","production":null,"review":"development","staging":"production"}` {
		t.Errorf("pipeline-stages = %s", got)
	}

	// Couplings: the app's one coupling is an object; an app without one is 404.
	body := f.want("GET", "/apps/hello/pipeline-couplings", ``, 404)
	if !strings.Contains(string(body), "not coupled") {
		t.Errorf("uncoupled app: %s", body)
	}
	c := wantShape(t, "create coupling", f.want("POST", "/pipeline-couplings", `{"app":"hello","pipeline":"shop","stage":"development","required_status_checks":{"contexts":["ci/tests","qa/signoff"]}}`, 201), couplingShape)
	f.want("POST", "/pipeline-couplings", `{"app":"other-default","pipeline":"shop","stage":"staging"}`, 201)
	byApp := wantShape(t, "coupling by app", f.want("GET", "/apps/hello-default/pipeline-couplings", ``, 200), couplingShape)
	if name, _ := lookup(byApp, "app.name"); name != "hello-default" {
		t.Errorf("coupling app.name = %v, want the app key", name)
	}
	if pid, _ := lookup(byApp, "pipeline.id"); pid != pipelineID {
		t.Errorf("coupling pipeline.id = %v, want %v", pid, pipelineID)
	}
	couplingID, _ := lookup(c, "id")
	for _, path := range []string{"/pipeline-couplings", "/pipelines/shop/pipeline-couplings"} {
		list := wantShape(t, path, f.want("GET", path, ``, 200), map[string]string{"0": "object", "1": "object"})
		for i := range 2 {
			item, _ := lookup(list, strconv.Itoa(i))
			b, _ := json.Marshal(item)
			wantShape(t, path, b, couplingShape)
		}
	}
	wantShape(t, "get coupling", f.want("GET", "/pipeline-couplings/"+couplingID.(string), ``, 200), couplingShape)
	up := wantShape(t, "update coupling", f.want("PATCH", "/pipeline-couplings/"+couplingID.(string), `{"required_status_checks":{"contexts":["ci/tests"]}}`, 200), couplingShape)
	if ctxs, _ := lookup(up, "required_status_checks.contexts"); len(ctxs.([]any)) != 1 {
		t.Errorf("updated contexts = %v", ctxs)
	}
	// An uncoupled stage's checks are [] (never null).
	other := wantShape(t, "other's coupling", f.want("GET", "/apps/other/pipeline-couplings", ``, 200), couplingShape)
	if ctxs, _ := lookup(other, "required_status_checks.contexts"); ctxs == nil {
		t.Errorf("contexts = null")
	}

	// Statuses: the contexts posted on the pipeline's releases (with the
	// name they were given) and those its couplings require.
	f.want("PATCH", "/pipeline-couplings/"+couplingID.(string), `{"required_status_checks":{"contexts":["ci/tests","qa/signoff"]}}`, 200)
	st := f.want("GET", "/pipelines/shop/statuses", ``, 200)
	wantShape(t, "statuses", st, map[string]string{"0.context": "string", "0.name": "string", "1.context": "string", "1.name": "string"})
	if strings.TrimSpace(string(st)) != `[{"context":"ci/tests","name":"unit tests"},{"context":"qa/signoff","name":"qa/signoff"}]` {
		t.Errorf("statuses = %s", st)
	}
	f.want("GET", "/pipelines/nope/statuses", ``, 404)

	// Promotion: Pipelines.md's request (the release under source.app, as
	// its table has it) and the 201 answer with its source and targets.
	if err := f.db.SetReleaseStatus(ctx, f.rel.ID, slipway.ReleasePending, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetReleaseStatus(ctx, f.rel.ID, slipway.ReleaseSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	for _, ctxName := range []string{"ci/tests", "qa/signoff"} {
		s := &slipway.ReleaseStatus{ReleaseID: f.rel.ID, State: "success", Name: "check", Context: ctxName}
		if ctxName == "ci/tests" {
			f.want("PATCH", "/apps/hello/releases/"+f.rel.ID+"/statuses/"+f.status.ID, `{"state":"success"}`, 200)
			continue
		}
		if err := f.db.CreateReleaseStatus(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	req := `{"pipeline":{"id":"` + pipelineID.(string) + `"},"source":{"app":{"id":"` + f.app.ID + `","release":{"id":"` + f.rel.ID + `"}}},"targets":[{"app":{"id":"` + f.other.ID + `"}}]}`
	pr := wantShape(t, "create promotion", f.want("POST", "/pipeline-promotions", req, 201), promotionShape)
	if n, _ := lookup(pr, "source.app.name"); n != "hello-default" {
		t.Errorf("source.app.name = %v, want the app key", n)
	}
	if r, _ := lookup(pr, "source.release.id"); r != f.rel.ID {
		t.Errorf("source.release.id = %v, want %s", r, f.rel.ID)
	}
	tgt, _ := lookup(pr, "targets.0")
	tb, _ := json.Marshal(tgt)
	wantShape(t, "promotion's target", tb, targetShape)
	if n, _ := lookup(tgt, "app.name"); n != "other-default" {
		t.Errorf("target app.name = %v, want the app key", n)
	}
	promotionID, _ := lookup(pr, "id")
	if id, _ := lookup(tgt, "pipeline_promotion.id"); id != promotionID {
		t.Errorf("target pipeline_promotion.id = %v, want %v", id, promotionID)
	}
	wantShape(t, "get promotion", f.want("GET", "/pipeline-promotions/"+promotionID.(string), ``, 200), promotionShape)
	ts := wantShape(t, "promotion targets", f.want("GET", "/pipeline-promotions/"+promotionID.(string)+"/promotion-targets", ``, 200), map[string]string{"0": "object"})
	tgt, _ = lookup(ts, "0")
	tb, _ = json.Marshal(tgt)
	wantShape(t, "promotion-targets", tb, targetShape)

	// Today's request (source.release) is still read; the two places
	// naming different releases is a 422.
	f.want("POST", "/pipeline-promotions", `{"pipeline":{"id":"shop"},"source":{"app":{"id":"hello"},"release":{"id":"`+f.rel.ID+`"}},"targets":[{"app":{"id":"other"}}]}`, 201)
	f.want("POST", "/pipeline-promotions", `{"pipeline":{"id":"shop"},"source":{"app":{"id":"hello","release":{"id":"v1"}},"release":{"id":"`+f.rel.ID+`"}},"targets":[{"app":{"id":"other"}}]}`, 422)
}
