package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/store"
)

// finish takes a release through pending to status.
func finish(t *testing.T, db *store.DB, r *slipway.Release, status, reason string) {
	t.Helper()
	ctx := context.Background()
	if err := db.SetReleaseStatus(ctx, r.ID, slipway.ReleasePending, ""); err != nil {
		t.Fatal(err)
	}
	if err := db.SetReleaseStatus(ctx, r.ID, status, reason); err != nil {
		t.Fatal(err)
	}
}

// couple couples app to the pipeline at stage.
func couple(t *testing.T, db *store.DB, pipelineID string, app *slipway.App, stage string, checks ...string) *slipway.Coupling {
	t.Helper()
	c := &slipway.Coupling{PipelineID: pipelineID, AppID: app.ID, Stage: stage, RequiredChecks: checks}
	if err := db.CreateCoupling(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStore_Pipelines_CouplingsAndTheDownstreamRule(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		p := &slipway.Pipeline{Name: "shop"}
		if err := db.CreatePipeline(ctx, p); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.CreatePipeline(ctx, &slipway.Pipeline{Name: "shop"}), slipway.EConflict)
		wantCode(t, db.CreatePipeline(ctx, &slipway.Pipeline{Name: "Bad Name"}), slipway.EUnprocessable)
		for _, ref := range []string{p.ID, "shop"} {
			if got, err := db.FindPipeline(ctx, ref); err != nil || got.ID != p.ID || got.Name != "shop" {
				t.Fatalf("FindPipeline(%s) = %+v, %v", ref, got, err)
			}
		}
		_, err := db.FindPipeline(ctx, "nope")
		wantCode(t, err, slipway.ENotFound)
		if ps, err := db.ListPipelines(ctx); err != nil || len(ps) != 1 {
			t.Fatalf("ListPipelines = %+v, %v", ps, err)
		}

		dev, stg, prod := mustApp(t, db, "dev"), mustApp(t, db, "stg"), mustApp(t, db, "prod")
		// Coupled out of stage order; listed in it.
		cp := couple(t, db, p.ID, prod, "production")
		cd := couple(t, db, p.ID, dev, "development", "ci/tests")
		couple(t, db, p.ID, stg, "staging")
		if cd.PipelineName != "shop" || cd.AppKey != "dev-default" || fmt.Sprint(cd.RequiredChecks) != "[ci/tests]" {
			t.Fatalf("coupling = %+v", cd)
		}
		review := mustApp(t, db, "rev")
		for _, c := range []*slipway.Coupling{
			{PipelineID: p.ID, AppID: review.ID, Stage: "qa"},                                           // no such stage
			{PipelineID: p.ID, AppID: review.ID, Stage: "review", RequiredChecks: []string{"ci/tests"}}, // no checks on review
			{PipelineID: p.ID, AppID: review.ID, Stage: "staging", RequiredChecks: []string{"x"}},       // not a context
		} {
			wantCode(t, db.CreateCoupling(ctx, c), slipway.EUnprocessable)
		}
		wantCode(t, db.CreateCoupling(ctx, &slipway.Coupling{PipelineID: p.ID, AppID: dev.ID, Stage: "staging"}), slipway.EConflict)
		cs, err := db.ListCouplings(ctx, p.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		var stages []string
		for _, c := range cs {
			stages = append(stages, c.Stage)
		}
		if strings.Join(stages, " ") != "development staging production" {
			t.Fatalf("couplings by stage = %v", stages)
		}
		if cs, err := db.ListCouplings(ctx, "", stg.ID); err != nil || len(cs) != 1 || cs[0].Stage != "staging" {
			t.Fatalf("couplings of stg = %+v, %v", cs, err)
		}

		// Required checks: validated, replaced, read back.
		_, err = db.UpdateCouplingChecks(ctx, cd.ID, []string{"no"})
		wantCode(t, err, slipway.EUnprocessable)
		if c, err := db.UpdateCouplingChecks(ctx, cd.ID, []string{"ci/lint1", "ci/tests"}); err != nil || len(c.RequiredChecks) != 2 {
			t.Fatalf("UpdateCouplingChecks = %+v, %v", c, err)
		}
		if c, err := db.FindCoupling(ctx, cd.ID); err != nil || fmt.Sprint(c.RequiredChecks) != "[ci/lint1 ci/tests]" {
			t.Fatalf("FindCoupling = %+v, %v", c, err)
		}
		for _, id := range []string{"nope", uuid.NewString()} {
			_, err := db.FindCoupling(ctx, id)
			wantCode(t, err, slipway.ENotFound)
		}

		// Downstream apps take promotions, not slug releases; the first
		// stage with apps takes both.
		_, err = db.CreateRelease(ctx, slipway.NewRelease{AppID: stg.ID, SlugID: mustSlug(t, db, stg.ID), Trigger: slipway.TriggerDeploy})
		wantCode(t, err, slipway.EUnprocessable)
		if !strings.Contains(slipway.ErrorMessage(err), "pipeline-promotions") {
			t.Fatalf("refusal says what to do instead: %v", err)
		}
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: dev.ID, SlugID: mustSlug(t, db, dev.ID), Trigger: slipway.TriggerDeploy}); err != nil {
			t.Fatal(err)
		}

		// Uncoupled, prod is an app like any other.
		if err := db.DeleteCoupling(ctx, cp.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.DeleteCoupling(ctx, cp.ID), slipway.ENotFound)
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: prod.ID, SlugID: mustSlug(t, db, prod.ID), Trigger: slipway.TriggerDeploy}); err != nil {
			t.Fatal(err)
		}
		// Deleting the pipeline deletes its couplings.
		if err := db.DeletePipeline(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.DeletePipeline(ctx, p.ID), slipway.ENotFound)
		if cs, err := db.ListCouplings(ctx, "", ""); err != nil || len(cs) != 0 {
			t.Fatalf("couplings after the pipeline's deletion = %+v, %v", cs, err)
		}
	})
}

func TestStore_Promotions(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		p := &slipway.Pipeline{Name: "flow"}
		if err := db.CreatePipeline(ctx, p); err != nil {
			t.Fatal(err)
		}
		dev, stg1, stg2, prod := mustApp(t, db, "pdev"), mustApp(t, db, "pstg1"), mustApp(t, db, "pstg2"), mustApp(t, db, "pprod")
		couple(t, db, p.ID, dev, "development", "ci/tests")
		couple(t, db, p.ID, stg1, "staging")
		couple(t, db, p.ID, stg2, "staging")
		couple(t, db, p.ID, prod, "production")
		other := mustApp(t, db, "loner")
		// Each app has its own config; the promoted release keeps it.
		for _, a := range []*slipway.App{dev, stg1, stg2} {
			if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, ConfigChange: map[string]*string{"WHO": ptr(a.Name)}}); err != nil {
				t.Fatal(err)
			}
		}
		slug := mustSlug(t, db, dev.ID)
		v1, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: dev.ID, SlugID: slug, Trigger: slipway.TriggerDeploy})
		if err != nil {
			t.Fatal(err)
		}
		promote := func(np slipway.NewPromotion) (*slipway.Promotion, error) {
			if np.Pipeline == "" {
				np.Pipeline = "flow"
			}
			return db.CreatePromotion(ctx, np)
		}

		// Refusals, each before anything is written.
		_, err = promote(slipway.NewPromotion{SourceApp: dev.ID})
		wantCode(t, err, slipway.EUnprocessable) // dev has no current release yet
		_, err = promote(slipway.NewPromotion{SourceApp: dev.ID, Release: "v1"})
		wantCode(t, err, slipway.EUnprocessable) // v1 is queued, not succeeded
		finish(t, db, v1, slipway.ReleaseSucceeded, "")
		_, err = promote(slipway.NewPromotion{SourceApp: dev.ID})
		wantCode(t, err, slipway.EConflict) // ci/tests has not reported
		if !strings.Contains(slipway.ErrorMessage(err), "ci/tests (missing)") {
			t.Fatalf("required checks: %v", err)
		}
		if err := db.CreateReleaseStatus(ctx, &slipway.ReleaseStatus{ReleaseID: v1.ID, State: slipway.StateSuccess, Name: "unit tests", Context: "ci/tests"}); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			np   slipway.NewPromotion
			code string
		}{
			{"unknown pipeline", slipway.NewPromotion{Pipeline: "nope", SourceApp: dev.ID}, slipway.ENotFound},
			{"source not coupled", slipway.NewPromotion{SourceApp: other.ID}, slipway.EUnprocessable},
			{"unknown source", slipway.NewPromotion{SourceApp: "ghost-default"}, slipway.EUnprocessable},
			{"target not coupled", slipway.NewPromotion{SourceApp: dev.ID, Targets: []string{other.ID}}, slipway.EUnprocessable},
			{"target not later", slipway.NewPromotion{SourceApp: dev.ID, Targets: []string{dev.ID}}, slipway.EUnprocessable},
			{"safe with other keys", slipway.NewPromotion{SourceApp: dev.ID, Safe: true, Targets: []string{prod.ID}}, slipway.EUnprocessable},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := promote(c.np)
				wantCode(t, err, c.code)
			})
		}
		for _, a := range []*slipway.App{stg1, stg2, prod} {
			if _, err := db.NextRelease(ctx, a.ID); slipway.ErrorCode(err) != slipway.ENotFound {
				t.Fatalf("a refused promotion queued a release on %s: %v", a.Name, err)
			}
		}

		// Without targets: every app of the next stage with apps.
		pr, err := promote(slipway.NewPromotion{SourceApp: dev.Key(), UserEmail: "ops@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		if pr.PipelineName != "flow" || pr.SourceReleaseID != v1.ID || pr.Status != slipway.ReleasePending || len(pr.Targets) != 2 {
			t.Fatalf("promotion = %+v", pr)
		}
		rels := map[string]*slipway.Release{}
		for _, tg := range pr.Targets {
			r, err := db.FindRelease(ctx, tg.AppID, tg.ReleaseID)
			if err != nil {
				t.Fatal(err)
			}
			if r.SlugID != slug || r.Trigger != slipway.TriggerPromotion || r.Status != slipway.ReleaseQueued || r.UserEmail != "ops@example.com" || r.Config["WHO"] != r.AppName {
				t.Fatalf("promoted release = %+v", r)
			}
			rels[tg.AppID] = r
		}
		if rels[stg1.ID] == nil || rels[stg2.ID] == nil {
			t.Fatalf("targets = %+v, want pstg1 and pstg2", pr.Targets)
		}
		// The promotion ends when every target does: failed if one failed.
		finish(t, db, rels[stg1.ID], slipway.ReleaseSucceeded, "")
		if got, _ := db.FindPromotion(ctx, pr.ID); got.Status != slipway.ReleasePending {
			t.Fatalf("one target left: status %s", got.Status)
		}
		finish(t, db, rels[stg2.ID], slipway.ReleaseFailed, "web.1 crashed.")
		got, err := db.FindPromotion(ctx, pr.ID)
		if err != nil || got.Status != slipway.ReleaseFailed {
			t.Fatalf("promotion = %+v, %v", got, err)
		}
		for _, tg := range got.Targets {
			if tg.AppID == stg2.ID && (tg.Status != slipway.ReleaseFailed || tg.Error != "web.1 crashed.") {
				t.Fatalf("failed target = %+v", tg)
			}
		}
		// Named targets, later than the next stage, with the same keys.
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: prod.ID, ConfigChange: map[string]*string{"WHO": ptr("pprod")}}); err != nil {
			t.Fatal(err)
		}
		if pr, err := promote(slipway.NewPromotion{SourceApp: dev.ID, Release: "v1", Safe: true, Targets: []string{prod.ID, prod.Key()}}); err != nil || len(pr.Targets) != 1 || pr.Targets[0].AppID != prod.ID {
			t.Fatalf("promotion to prod = %+v, %v", pr, err)
		}
		for _, id := range []string{"nope", uuid.NewString()} {
			_, err := db.FindPromotion(ctx, id)
			wantCode(t, err, slipway.ENotFound)
		}
	})
}
