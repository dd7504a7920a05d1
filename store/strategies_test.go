package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/store"
)

func TestStore_Strategy_RecordedPerRelease(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "strat")
		slug := mustSlug(t, db, a.ID)
		if s, err := db.AppStrategy(ctx, a.ID); err != nil || s.Type != slipway.StrategyRolling {
			t.Fatalf("default strategy = %+v, %v", s, err)
		}
		bad := slipway.Strategy{Type: slipway.StrategyCanary}
		wantCode(t, db.SetAppStrategy(ctx, a.ID, &bad), slipway.EUnprocessable)
		canary := slipway.Strategy{Type: slipway.StrategyCanary, Steps: []slipway.CanaryStep{{Weight: 25, Pause: "1m"}}}
		if err := db.SetAppStrategy(ctx, a.ID, &canary); err != nil {
			t.Fatal(err)
		}
		deploy, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slug, Trigger: slipway.TriggerDeploy})
		if err != nil {
			t.Fatal(err)
		}
		rollback, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slug, Trigger: slipway.TriggerRollback})
		if err != nil {
			t.Fatal(err)
		}
		// The app's strategy changes after the releases were made.
		if err := db.SetAppStrategy(ctx, a.ID, &slipway.Strategy{}); err != nil {
			t.Fatal(err)
		}
		got, _ := db.FindRelease(ctx, a.ID, deploy.ID)
		if got.Strategy.Type != slipway.StrategyCanary || len(got.Strategy.Steps) != 1 || got.Strategy.Steps[0].Weight != 25 {
			t.Fatalf("deploy recorded %+v, want the canary it was made with", got.Strategy)
		}
		if got, _ := db.FindRelease(ctx, a.ID, rollback.ID); got.Strategy.Type != slipway.StrategyRolling {
			t.Fatalf("rollback recorded %+v, want rolling (rollbacks roll by default)", got.Strategy)
		}
		var listed []string
		db.ListReleases(ctx, a.ID, slipway.Page{}, func(r *slipway.Release) error {
			listed = append(listed, r.Strategy.Type)
			return nil
		})
		if !slices.Equal(listed, []string{"canary", "rolling"}) {
			t.Fatalf("listed strategies %v", listed)
		}
	})
}

func TestStore_Rollout_StateAndActions(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "roll")
		r, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: mustSlug(t, db, a.ID), Trigger: slipway.TriggerDeploy})
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.Rollout(ctx, r.ID)
		wantCode(t, err, slipway.ENotFound)
		_, err = db.UpdateRollout(ctx, r.ID, func(*slipway.Rollout) error { return nil })
		wantCode(t, err, slipway.ENotFound)

		until := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
		engine := &slipway.Rollout{ReleaseID: r.ID, Strategy: "canary", Step: 1, Steps: 3, Weight: 50, Phase: slipway.PhasePaused, PauseUntil: &until, Placed: true}
		if err := db.SaveRollout(ctx, engine); err != nil {
			t.Fatal(err)
		}
		read := *engine // what the engine planned from
		// A user asks to promote after the engine read the state...
		if _, err := db.UpdateRollout(ctx, r.ID, func(st *slipway.Rollout) error { st.Request = slipway.RequestPromote; return nil }); err != nil {
			t.Fatal(err)
		}
		// ...and the engine's save of its own plan keeps the request.
		read.WaitingFor = []string{"ci/smoke"}
		if err := db.SaveRollout(ctx, &read); err != nil {
			t.Fatal(err)
		}
		got, err := db.Rollout(ctx, r.ID)
		if err != nil || got.Request != slipway.RequestPromote || len(got.WaitingFor) != 1 || !got.PauseUntil.Equal(until) || got.Step != 1 {
			t.Fatalf("rollout = %+v, %v; want the engine's state with the user's promote", got, err)
		}
		// A save from the state just read carries the request out.
		got.Request = ""
		if err := db.SaveRollout(ctx, got); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.Rollout(ctx, r.ID); got.Request != "" {
			t.Fatalf("request = %q after the engine carried it out", got.Request)
		}

		// A blue-green switch's scale-down makes the app have work.
		wantCode(t, errOf(db.PendingScaleDown(ctx, a.ID)), slipway.ENotFound)
		if _, err := db.UpdateRollout(ctx, r.ID, func(st *slipway.Rollout) error { st.ScaleDownAt = &until; return nil }); err != nil {
			t.Fatal(err)
		}
		if p, err := db.PendingScaleDown(ctx, a.ID); err != nil || p.ReleaseID != r.ID || !p.ScaleDownAt.Equal(until) {
			t.Fatalf("pending scale-down = %+v, %v", p, err)
		}
		if err := db.SetReleaseStatus(ctx, r.ID, slipway.ReleasePending, ""); err != nil {
			t.Fatal(err)
		}
		if err := db.SetReleaseStatus(ctx, r.ID, slipway.ReleaseSucceeded, ""); err != nil {
			t.Fatal(err)
		}
		if ids, _ := db.AppsWithWork(ctx); !slices.Contains(ids, a.ID) {
			t.Fatalf("apps with work %v lack the app with a scale-down", ids)
		}
	})
}

func errOf[T any](_ T, err error) error { return err }
