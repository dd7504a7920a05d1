package store_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/store"
)

// A failed or unknown release keeps its failure, read back by FindRelease
// and ListReleases; a succeeded one has none, even when given one.
func TestStore_ReleaseFailure_RoundTrips(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "failing")
		slug := mustSlug(t, db, a.ID)
		f := &slipway.Failure{Phase: slipway.FailHealth, Dyno: "web.2", Output: []string{"starting", "db [redacted] down"},
			Health:   &slipway.HealthAnswer{Check: "GET /health", Code: 503, Body: "down"},
			Analysis: &slipway.Figures{Canary: slipway.TrafficSummary{Requests: 10, Errors: 2, ErrorRate: 0.2}}}
		end := map[string]*slipway.Failure{slipway.ReleaseSucceeded: f, slipway.ReleaseFailed: f, slipway.ReleaseUnknown: {Phase: slipway.FailDeadline, Output: []string{}}}
		want := map[int]*slipway.Failure{}
		for i, status := range []string{slipway.ReleaseSucceeded, slipway.ReleaseFailed, slipway.ReleaseUnknown} {
			r, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slug, Trigger: slipway.TriggerDeploy})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.SetReleaseStatus(ctx, r.ID, slipway.ReleasePending, ""); err != nil {
				t.Fatal(err)
			}
			if err := db.FinishRelease(ctx, r.ID, status, "why", end[status]); err != nil {
				t.Fatal(err)
			}
			if status != slipway.ReleaseSucceeded {
				want[i+1] = end[status]
			} else {
				want[i+1] = nil
			}
			got, err := db.FindRelease(ctx, a.ID, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Failure, want[i+1]) {
				t.Errorf("v%d (%s): failure = %+v, want %+v", i+1, status, got.Failure, want[i+1])
			}
		}
		err := db.ListReleases(ctx, a.ID, slipway.Page{}, func(r *slipway.Release) error {
			if !reflect.DeepEqual(r.Failure, want[r.Version]) {
				t.Errorf("listed v%d: failure = %+v, want %+v", r.Version, r.Failure, want[r.Version])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
