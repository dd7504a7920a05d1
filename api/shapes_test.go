package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/api"
)

// A shape is the JSON type of each field of an answer, as the Akkeris
// reference documents it: dotted paths reach into objects, "[]" into the
// first item of an array. Types are string, number, boolean, object,
// array, null, time (a string in the API's time format) and alternatives
// joined by "|".
type shape map[string]string

// checkShape fails unless every field of want is in v with its type.
func checkShape(t *testing.T, what string, v any, want shape) {
	t.Helper()
	for path, types := range want {
		got, ok := lookup(v, path)
		if !ok {
			t.Errorf("%s: %s is missing", what, path)
			continue
		}
		if !hasType(got, types) {
			t.Errorf("%s: %s = %#v, want %s", what, path, got, types)
		}
	}
}

// lookup follows a dotted path into a decoded JSON value: a key of an
// object, "[]" for the first item of an array, a number for that item.
func lookup(v any, path string) (any, bool) {
	for _, part := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[part]; !ok {
				return nil, false
			}
		case []any:
			i := 0
			if part != "[]" {
				n, err := strconv.Atoi(part)
				if err != nil {
					return nil, false
				}
				i = n
			}
			if i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func hasType(v any, types string) bool {
	for _, typ := range strings.Split(types, "|") {
		switch x := v.(type) {
		case nil:
			if typ == "null" {
				return true
			}
		case string:
			if typ == "string" {
				return true
			}
			if _, err := time.Parse("2006-01-02T15:04:05.000Z", x); typ == "time" && err == nil {
				return true
			}
		case float64:
			if typ == "number" {
				return true
			}
		case bool:
			if typ == "boolean" {
				return true
			}
		case map[string]any:
			if typ == "object" {
				return true
			}
		case []any:
			if typ == "array" {
				return true
			}
		}
	}
	return false
}

// call sends a request as the admin and decodes the answer, failing the
// test unless the status is want.
func (f *fixture) call(t *testing.T, method, path, body string, want int) any {
	t.Helper()
	rec := f.do(method, path, admin, body)
	if rec.Code != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, rec.Code, rec.Body, want)
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return v
}

// succeed moves a queued release through pending to succeeded, as the
// engine would.
func (f *fixture) succeed(t *testing.T, id string) {
	t.Helper()
	for _, st := range []string{slipway.ReleasePending, slipway.ReleaseSucceeded} {
		if err := f.db.SetReleaseStatus(context.Background(), id, st, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// field is the value at path in v, or the test fails.
func field(t *testing.T, v any, path string) any {
	t.Helper()
	got, ok := lookup(v, path)
	if !ok {
		t.Fatalf("%s is missing from %v", path, v)
	}
	return got
}

// appShape is an app as Apps.md shows it, less the fields DECISIONS.md
// leaves out (archived_at, buildpack_provided_description, labels,
// repo_size).
var appShape = shape{
	"id": "string", "name": "string", "simple_name": "string", "key": "string", "description": "string",
	"organization.id": "string", "organization.name": "string",
	"space.id": "string", "space.name": "string", "space.compliance": "array",
	"region.id": "string", "region.name": "string", "stack.id": "string", "stack.name": "string",
	"build_stack.id": "string", "build_stack.name": "string", "owner.id": "string", "owner.email": "string",
	"preview": "null|object", "created_at": "time", "updated_at": "time", "released_at": "time|null",
	"web_url": "string", "image": "string|null", "maintenance": "boolean", "git_url": "string", "git_branch": "string",
	"slug_size": "number",
}

func TestApp_ShapeAsAkkeris(t *testing.T) {
	f := newFixture(t)
	created := f.call(t, "POST", "/apps", `{"org":"default","name":"events","space":"default","description":"desc"}`, 201)
	got := map[string]any{
		"POST /apps":         created,
		"GET /apps/{key}":    f.call(t, "GET", "/apps/events-default", "", 200),
		"GET /apps/{id}":     f.call(t, "GET", "/apps/"+field(t, created, "id").(string), "", 200),
		"PATCH /apps/{app}":  f.call(t, "PATCH", "/apps/events-default", `{"maintenance":true,"name":"events","build_stack":"ds1"}`, 200),
		"GET /apps (first)":  field(t, f.call(t, "GET", "/apps", "", 200), "[]"),
		"DELETE /apps/{app}": f.call(t, "DELETE", "/apps/events-default", "", 200),
	}
	for what, a := range got {
		checkShape(t, what, a, appShape)
	}
	if res := field(t, got["DELETE /apps/{app}"], "result"); res != "successful" {
		t.Errorf("DELETE /apps/{app}: result %v, want successful", res)
	}
	for what, a := range got {
		if what == "GET /apps (first)" {
			continue // the list's first app is another one
		}
		m := a.(map[string]any)
		if m["name"] != "events-default" || m["key"] != "events-default" || m["simple_name"] != "events" {
			t.Errorf("%s: name %v, key %v, simple_name %v; want the key twice and the bare name", what, m["name"], m["key"], m["simple_name"])
		}
		if m["region"].(map[string]any)["name"] != "local" || m["stack"].(map[string]any)["name"] != "local" {
			t.Errorf("%s: region %v, stack %v; want both named after the runtime, local", what, m["region"], m["stack"])
		}
	}
	// The app of a slug release shows the slug's size and id.
	f.succeed(t, f.rel.ID)
	hello := f.call(t, "GET", "/apps/hello-default", "", 200)
	if field(t, hello, "image") != f.slug || field(t, hello, "released_at") == nil {
		t.Errorf("released app: image %v, released_at %v; want the slug id and a time", field(t, hello, "image"), field(t, hello, "released_at"))
	}
}

func TestRegionsAndStacks_OneEachNamedAfterTheRuntime(t *testing.T) {
	regionShape := shape{"id": "string", "name": "string", "description": "string", "country": "string", "locale": "string",
		"private_capable": "boolean", "provider.name": "string", "provider.region": "string", "provider.availability_zones": "array",
		"high_availiability": "boolean", "created_at": "time", "updated_at": "time"}
	stackShape := shape{"id": "string", "name": "string", "region.id": "string", "region.name": "string", "created_at": "time", "updated_at": "time"}
	for _, runtime := range []string{"", "local", "kubernetes"} {
		t.Run("runtime="+runtime, func(t *testing.T) {
			f := newFixture(t)
			f.srv = api.New(api.Config{Store: f.db, Engine: nopEngine{}, Runtime: stubRuntime{}, RuntimeName: runtime, Token: "admin-token"})
			name := runtime
			if name == "" {
				name = "local"
			}
			regions := f.call(t, "GET", "/regions", "", 200).([]any)
			stacks := f.call(t, "GET", "/stacks", "", 200).([]any)
			if len(regions) != 1 || len(stacks) != 1 {
				t.Fatalf("%d regions and %d stacks, want one of each", len(regions), len(stacks))
			}
			region, stack := regions[0], stacks[0]
			checkShape(t, "GET /regions", region, regionShape)
			checkShape(t, "GET /stacks", stack, stackShape)
			regionID, stackID := field(t, region, "id").(string), field(t, stack, "id").(string)
			if field(t, region, "name") != name || field(t, stack, "name") != name || field(t, stack, "region.id") != regionID {
				t.Errorf("region %v, stack %v; want both named %q, the stack in the region", region, stack, name)
			}
			for _, path := range []string{"/regions/" + name, "/regions/" + regionID} {
				checkShape(t, "GET "+path, f.call(t, "GET", path, "", 200), regionShape)
			}
			for _, path := range []string{"/stacks/" + name, "/stacks/" + stackID} {
				checkShape(t, "GET "+path, f.call(t, "GET", path, "", 200), stackShape)
			}
			f.call(t, "GET", "/regions/us-seattle", "", 404)
			f.call(t, "GET", "/stacks/ds1", "", 404)

			// Apps and spaces name the same region and stack, and a
			// second server of the same runtime gives the same ids.
			app := f.call(t, "GET", "/apps/hello-default", "", 200)
			space := f.call(t, "GET", "/spaces/default", "", 200)
			for what, v := range map[string]any{"app": app, "space": space} {
				if field(t, v, "region.id") != regionID || field(t, v, "stack.id") != stackID || field(t, v, "region.name") != name {
					t.Errorf("%s: region %v, stack %v; want %s and %s", what, field(t, v, "region"), field(t, v, "stack"), regionID, stackID)
				}
			}
			again := newFixture(t)
			again.srv = api.New(api.Config{Store: again.db, Engine: nopEngine{}, Runtime: stubRuntime{}, RuntimeName: runtime, Token: "admin-token"})
			if id := field(t, again.call(t, "GET", "/regions/"+name, "", 200), "id"); id != regionID {
				t.Errorf("region id %v on another server, want the same %s", id, regionID)
			}
		})
	}
}

func TestSpacesAndOrganizations_ShapeAsAkkeris(t *testing.T) {
	f := newFixture(t)
	spaceShape := shape{"id": "string", "name": "string", "description": "string", "compliance": "array",
		"region.id": "string", "region.name": "string", "stack.id": "string", "stack.name": "string",
		"state": "string", "created_at": "time", "updated_at": "time"}
	checkShape(t, "POST /spaces", f.call(t, "POST", "/spaces", `{"name":"perf-dev-us","description":"Performance dev","stack":"local"}`, 201), spaceShape)
	checkShape(t, "GET /spaces", field(t, f.call(t, "GET", "/spaces", "", 200), "[]"), spaceShape)
	checkShape(t, "GET /spaces/{space}", f.call(t, "GET", "/spaces/perf-dev-us", "", 200), spaceShape)

	orgShape := shape{"id": "string", "name": "string", "role": "string", "created_at": "time", "updated_at": "time"}
	created := f.call(t, "POST", "/organizations", `{"name":"myorg","description":"My organization"}`, 201)
	checkShape(t, "POST /organizations", created, orgShape)
	checkShape(t, "GET /organizations", field(t, f.call(t, "GET", "/organizations", "", 200), "[]"), orgShape)
	checkShape(t, "GET /organizations/{org}", f.call(t, "GET", "/organizations/myorg", "", 200), orgShape)
	if role := field(t, created, "role"); role != "admin" {
		t.Errorf("role %v for the admin token, want admin", role)
	}
}

// releaseShape is a release as Releases.md shows it, with Slipway's own
// fields; version is a number (the reference's "" is its mistake).
var releaseShape = shape{
	"id": "string", "app.id": "string", "app.name": "string", "created_at": "time", "updated_at": "time",
	"description": "string", "slug.id": "string", "status": "string", "state": "string",
	"user.id": "string", "user.email": "string", "version": "number", "current": "boolean",
	"trigger": "string", "output_stream_url": "string",
}

func TestReleasesAndStatuses_ShapeAsAkkeris(t *testing.T) {
	f := newFixture(t)
	got := map[string]any{
		"POST releases":    f.call(t, "POST", "/apps/hello-default/releases", `{"slug":"`+f.slug+`","description":"new release v1.0"}`, 201),
		"GET releases":     field(t, f.call(t, "GET", "/apps/hello-default/releases", "", 200), "[]"),
		"GET releases/{}":  f.call(t, "GET", "/apps/hello-default/releases/"+f.rel.ID, "", 200),
		"GET releases/v1":  f.call(t, "GET", "/apps/hello/releases/v1", "", 200),
		"GET statuses":     field(t, f.call(t, "GET", "/apps/hello-default/releases/"+f.rel.ID+"/statuses", "", 200), "release"),
		"GET releases (2)": field(t, f.call(t, "GET", "/apps/"+f.app.ID+"/releases", "", 200), "[]"),
	}
	for what, rel := range got {
		checkShape(t, what, rel, releaseShape)
		if name := field(t, rel, "app.name"); name != "hello-default" {
			t.Errorf("%s: app.name = %v, want the key hello-default (as the seed shows)", what, name)
		}
	}

	statusShape := shape{"id": "string", "state": "string", "name": "string", "context": "string", "description": "string",
		"target_url": "string", "image_url": "string", "created_at": "time", "updated_at": "time"}
	for path, typ := range releaseShape {
		statusShape["release."+path] = typ
	}
	base := "/apps/hello-default/releases/" + f.rel.ID + "/statuses"
	created := f.call(t, "POST", base, `{"state":"pending","name":"My Integration Test XYZ","context":"tests/integration-test-xyz",
		"target_url":"https://example.com/xyz/","image_url":"https://example.com/xyz/status.png","description":"Still running."}`, 201)
	id := field(t, created, "id").(string)
	list := f.call(t, "GET", base, "", 200)
	checkShape(t, "GET statuses", list, shape{"state": "string", "statuses": "array", "release": "object"})
	statuses := map[string]any{
		"POST status":    created,
		"GET status":     f.call(t, "GET", base+"/"+id, "", 200),
		"PATCH status":   f.call(t, "PATCH", base+"/"+id, `{"state":"success","description":"It passed."}`, 200),
		"GET statuses[]": field(t, list, "statuses.[]"),
	}
	for what, st := range statuses {
		checkShape(t, what, st, statusShape)
		if field(t, st, "release.id") != f.rel.ID || field(t, st, "release.app.name") != "hello-default" {
			t.Errorf("%s: release %v, want %s of hello-default", what, field(t, st, "release"), f.rel.ID)
		}
	}
}

// Every app an answer embeds is named by its key.
func TestEmbeddedApps_NamedByKey(t *testing.T) {
	f := newFixture(t)
	f.srv = api.New(api.Config{Store: f.db, Engine: nopEngine{}, Runtime: dynoRuntime{}, Token: "admin-token"})
	f.succeed(t, f.rel.ID)
	appRef := shape{"app.id": "string", "app.name": "string"}
	f.call(t, "POST", "/apps/hello/formation", `{"type":"web","quantity":1}`, 201)
	f.call(t, "POST", "/pipelines", `{"name":"shop"}`, 201)
	f.call(t, "POST", "/pipeline-couplings", `{"app":"hello-default","pipeline":"shop","stage":"development"}`, 201)
	f.call(t, "POST", "/pipeline-couplings", `{"app":"other-default","pipeline":"shop","stage":"staging"}`, 201)
	promotion := f.call(t, "POST", "/pipeline-promotions", fmt.Sprintf(`{"pipeline":{"id":"shop"},"source":{"app":{"id":%q},"release":{"id":%q}},"targets":[{"app":{"id":%q}}]}`,
		f.app.ID, f.rel.ID, f.other.ID), 201)
	answers := []struct {
		what, key string
		v         any
	}{
		{"release", "hello-default", f.call(t, "GET", "/apps/hello/releases/v1", "", 200)},
		{"build", "hello-default", f.call(t, "GET", "/apps/hello/builds/"+f.slug, "", 200)},
		{"builds", "hello-default", field(t, f.call(t, "GET", "/apps/hello/builds", "", 200), "[]")},
		{"formation", "hello-default", field(t, f.call(t, "GET", "/apps/hello/formation", "", 200), "[]")},
		{"formation/{type}", "hello-default", f.call(t, "GET", "/apps/hello/formation/web", "", 200)},
		{"dyno", "hello-default", field(t, f.call(t, "GET", "/apps/hello/dynos", "", 200), "[]")},
		{"hook", "hello-default", f.call(t, "POST", "/apps/hello/hooks", `{"url":"https://hooks.example.com/x","events":["release"]}`, 201)},
		{"hooks", "hello-default", field(t, f.call(t, "GET", "/apps/hello/hooks", "", 200), "[]")},
		{"coupling", "hello-default", field(t, f.call(t, "GET", "/pipeline-couplings", "", 200), "[]")},
		{"promotion target", "other-default", field(t, f.call(t, "GET", "/pipeline-promotions/"+field(t, promotion, "id").(string)+"/promotion-targets", "", 200), "[]")},
	}
	for _, a := range answers {
		checkShape(t, a.what, a.v, appRef)
		if name := field(t, a.v, "app.name"); name != a.key {
			t.Errorf("%s: app.name = %v, want the key %s", a.what, name, a.key)
		}
	}
}

func TestAudits_ShapeAsAkkeris(t *testing.T) {
	f := newFixture(t)
	f.call(t, "PATCH", "/apps/hello/config-vars", `{"FOO":"bar"}`, 200)
	auditShape := shape{"id": "string", "action": "string", "app.id": "string", "app.name": "string", "space.name": "string",
		"username": "string", "timestamp": "time", "created_at": "time", "detail": "string", "user.id": "string", "user.email": "string"}
	for _, query := range []string{"?app=hello&space=default", "?app=hello-default", "?app=" + f.app.ID, "?app=hello", ""} {
		audits := f.call(t, "GET", "/audits"+query, "", 200).([]any)
		if len(audits) == 0 {
			t.Fatalf("GET /audits%s: no entries", query)
		}
		a := audits[0]
		checkShape(t, "GET /audits"+query, a, auditShape)
		if field(t, a, "app.name") != "hello" || field(t, a, "space.name") != "default" || field(t, a, "app.id") != f.app.ID {
			t.Errorf("GET /audits%s: app %v, space %v; want the bare name hello and space default", query, field(t, a, "app"), field(t, a, "space"))
		}
		if field(t, a, "username") != "admin" {
			t.Errorf("GET /audits%s: username %v, want admin", query, field(t, a, "username"))
		}
	}
	if n := len(f.call(t, "GET", "/audits?app=hello&space=elsewhere", "", 200).([]any)); n != 0 {
		t.Errorf("another space's app: %d entries, want none", n)
	}
}

func TestFeaturesAndConfig_ShapeAsAkkeris(t *testing.T) {
	f := newFixture(t)
	featureShape := shape{"id": "string", "name": "string", "display_name": "string", "description": "string",
		"doc_url": "string", "state": "string", "feedback_email": "string", "enabled": "boolean"}
	list := f.call(t, "GET", "/apps/hello-default/features", "", 200)
	checkShape(t, "GET features", field(t, list, "[]"), featureShape)
	got := f.call(t, "GET", "/apps/hello-default/features/auto-release", "", 200)
	checkShape(t, "GET feature", got, featureShape)
	patched := f.call(t, "PATCH", "/apps/hello-default/features/auto-release", `{"enabled":true}`, 200)
	checkShape(t, "PATCH feature", patched, featureShape)
	if field(t, patched, "enabled") != true || field(t, patched, "id") != field(t, got, "id") || field(t, got, "doc_url") != "/features/auto-release" {
		t.Errorf("PATCH feature = %v, want it enabled, with the same id", patched)
	}

	cfg := f.call(t, "PATCH", "/apps/hello-default/config-vars", `{"FOO":"bar","BOO":"who?"}`, 200)
	if field(t, cfg, "FOO") != "bar" || field(t, cfg, "BOO") != "who?" {
		t.Errorf("PATCH config-vars = %v", cfg)
	}
	if got := f.call(t, "GET", "/apps/hello-default/config-vars", "", 200); fmt.Sprint(got) != fmt.Sprint(cfg) {
		t.Errorf("GET config-vars = %v, want %v", got, cfg)
	}

	noteShape := shape{"type": "string", "addon": "null|object", "read_only": "boolean", "required": "boolean", "description": "string"}
	notes := f.call(t, "GET", "/apps/hello-default/config-vars/notes", "", 200)
	for key, typ := range map[string]string{"FOO": "user", "BOO": "user", "PORT": "system", "SLIPWAY_RELEASE_VERSION": "system"} {
		checkShape(t, "notes."+key, field(t, notes, key), noteShape)
		if field(t, notes, key+".type") != typ || field(t, notes, key+".read_only") != (typ == "system") {
			t.Errorf("notes.%s = %v, want type %s, read-only only for system", key, field(t, notes, key), typ)
		}
	}
	if strings.Contains(fmt.Sprint(notes), "who?") {
		t.Errorf("notes show a config value: %v", notes)
	}
	// Notes are not kept: writing them is refused, not ignored.
	f.call(t, "PATCH", "/apps/hello-default/config-vars/notes", `{"FOO":{"description":"x"}}`, 405)
}
