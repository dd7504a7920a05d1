package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/slipway/slipway/docs"
)

// loadSpec loads docs/openapi.yaml as the server embeds it.
func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	return doc
}

// TestOpenAPI_SpecIsValid checks the document against OpenAPI 3.0, and
// the house rules the validator does not know: every schema says what it
// holds (no empty {} schemas) and every object lists its required fields.
func TestOpenAPI_SpecIsValid(t *testing.T) {
	doc := loadSpec(t)
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/openapi.yaml is not valid OpenAPI: %v", err)
	}
	var check func(where string, s *openapi3.SchemaRef)
	seen := map[*openapi3.Schema]bool{}
	check = func(where string, ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil {
			t.Errorf("%s: no schema", where)
			return
		}
		s := ref.Value
		if seen[s] {
			return
		}
		seen[s] = true
		if s.Type == nil && len(s.AllOf) == 0 && len(s.OneOf) == 0 && len(s.AnyOf) == 0 {
			t.Errorf("%s: the schema has no type", where)
		}
		for _, sub := range append(append(append([]*openapi3.SchemaRef{}, s.AllOf...), s.OneOf...), s.AnyOf...) {
			check(where, sub)
		}
		if s.Items != nil {
			check(where+"[]", s.Items)
		}
		for name, p := range s.Properties {
			check(where+"."+name, p)
		}
		if s.AdditionalProperties.Schema != nil {
			check(where+".*", s.AdditionalProperties.Schema)
		}
		if s.Type.Is("object") && len(s.Properties) == 0 && s.AdditionalProperties.Schema == nil && s.AdditionalProperties.Has == nil {
			t.Errorf("%s: an object schema with neither properties nor additionalProperties", where)
		}
	}
	for name, s := range doc.Components.Schemas {
		check(name, s)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code, resp := range op.Responses.Map() {
				for ct, mt := range resp.Value.Content {
					check(method+" "+path+" "+code+" "+ct, mt.Schema)
				}
			}
			if op.RequestBody != nil {
				for ct, mt := range op.RequestBody.Value.Content {
					check(method+" "+path+" body "+ct, mt.Schema)
				}
			}
		}
	}
}

// normalize writes a route's path parameters as {}, so that a chi pattern
// and an OpenAPI path match whatever they name their parameters.
func normalize(route string) string { return param.ReplaceAllString(route, "{}") }

// TestOpenAPI_EveryRouteIsDocumented walks the router and fails for a
// route the spec lacks or a route the spec names that is not served.
func TestOpenAPI_EveryRouteIsDocumented(t *testing.T) {
	f := newFixture(t)
	served := map[string]bool{}
	for _, rt := range f.srv.Routes() {
		if strings.Contains(rt, " /ui/") {
			continue // the web UI's pages are not the API
		}
		served[normalize(rt)] = true
	}
	documented := map[string]bool{}
	for path, item := range loadSpec(t).Paths.Map() {
		for method := range item.Operations() {
			documented[normalize(method+" "+path)] = true
		}
	}
	var missing, extra []string
	for rt := range served {
		if !documented[rt] {
			missing = append(missing, rt)
		}
	}
	for rt := range documented {
		if !served[rt] {
			extra = append(extra, rt)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, rt := range missing {
		t.Errorf("served but not in docs/openapi.yaml: %s", rt)
	}
	for _, rt := range extra {
		t.Errorf("in docs/openapi.yaml but not served: %s", rt)
	}
}

// TestOpenAPI_Served checks GET /openapi.json: no token, JSON, and the
// same document as docs/openapi.yaml.
func TestOpenAPI_Served(t *testing.T) {
	f := newFixture(t)
	rec := f.do("GET", "/openapi.json", "", "")
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json = %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	served, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("the served document does not load: %v", err)
	}
	want, _ := json.Marshal(loadSpec(t))
	got, _ := json.Marshal(served)
	if string(got) != string(want) {
		t.Fatalf("GET /openapi.json differs from docs/openapi.yaml")
	}
	rec = f.do("GET", "/nowhere", admin, "")
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "/openapi.json") {
		t.Fatalf("unknown route = %d %s, want a 404 that points at /openapi.json", rec.Code, rec.Body)
	}
}
