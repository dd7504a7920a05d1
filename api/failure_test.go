package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/slipway/slipway"
)

// A failed release answers its failure in GET and in the list (the fast
// encoder); other releases answer "failure": null.
func TestReleases_Failure(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.db.SetReleaseStatus(ctx, f.rel.ID, slipway.ReleasePending, ""); err != nil {
		t.Fatal(err)
	}
	fl := &slipway.Failure{Phase: slipway.FailCrash, Dyno: "web.1", ExitCode: slipway.ExitStatus(1), Output: []string{"password [redacted]", "<html> & bye"}}
	if err := f.db.FinishRelease(ctx, f.rel.ID, slipway.ReleaseFailed, "web.1 exited with status 1 before it was healthy.", fl); err != nil {
		t.Fatal(err)
	}
	v2, err := f.db.CreateRelease(ctx, slipway.NewRelease{AppID: f.app.ID, SlugID: f.slug, Trigger: slipway.TriggerDeploy})
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		Version int                        `json:"version"`
		Failure map[string]json.RawMessage `json:"failure"`
	}
	check := func(name string, got answer, wantFailure bool) {
		t.Helper()
		switch {
		case !wantFailure && got.Failure != nil:
			t.Errorf("%s v%d: failure = %v, want null", name, got.Version, got.Failure)
		case wantFailure && (string(got.Failure["phase"]) != `"crash"` || string(got.Failure["exit_code"]) != "1" ||
			string(got.Failure["output"]) != `["password [redacted]","<html> & bye"]` || string(got.Failure["health"]) != "null"):
			t.Errorf("%s v%d: failure = %s", name, got.Version, got.Failure)
		}
	}
	for _, id := range []string{f.rel.ID, v2.ID} {
		rec := f.do(http.MethodGet, "/apps/hello-default/releases/"+id, admin, "")
		var got answer
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil {
			t.Fatalf("GET release: %d %s", rec.Code, rec.Body)
		}
		check("GET", got, id == f.rel.ID)
	}
	rec := f.do(http.MethodGet, "/apps/hello-default/releases", admin, "")
	var list []answer
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &list) != nil || len(list) != 2 {
		t.Fatalf("GET releases: %d %s", rec.Code, rec.Body)
	}
	for _, got := range list {
		check("list", got, got.Version == 1)
	}
}
