package store_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/store"
)

// The history delivery metrics read: each release's times, a rollback's
// target version and the build's commit time (or creation); the release
// current when another was made; and the release event's one-line diff.
func TestStore_DeliveryHistoryAndDiffSummary(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
		now := t0
		db.Now = func() time.Time { return now }
		defer func() { db.Now = time.Now }()
		at := func(h int) { now = t0.Add(time.Duration(h) * time.Hour) }
		a := mustApp(t, db, "histapp")
		if err := db.CreateHook(ctx, &slipway.Hook{AppID: a.ID, URL: "https://example.com/h", Events: []string{slipway.EventRelease}, Secret: "k", Active: true}); err != nil {
			t.Fatal(err)
		}
		build := func(commit time.Time) string {
			b := &slipway.Build{AppID: a.ID, CommitTime: commit}
			if err := db.CreateBuild(ctx, b); err != nil {
				t.Fatal(err)
			}
			if err := db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{ProcessTypes: map[string]string{"web": "./web"}}}); err != nil {
				t.Fatal(err)
			}
			return b.ID
		}
		release := func(nr slipway.NewRelease, status string) *slipway.Release {
			nr.AppID = a.ID
			r, err := db.CreateRelease(ctx, nr)
			if err != nil {
				t.Fatal(err)
			}
			at(int(now.Sub(t0)/time.Hour) + 1)
			db.SetReleaseStatus(ctx, r.ID, slipway.ReleasePending, "")
			if err := db.SetReleaseStatus(ctx, r.ID, status, ""); err != nil {
				t.Fatal(err)
			}
			return r
		}
		b1 := build(t0.Add(-time.Hour))
		at(1)
		release(slipway.NewRelease{SlugID: b1, Trigger: slipway.TriggerDeploy}, slipway.ReleaseSucceeded) // v1: 1 → 2
		at(3)
		b2 := build(time.Time{})
		const secret = "never-in-a-payload"
		release(slipway.NewRelease{ConfigChange: map[string]*string{"TOKEN": ptr(secret)}, Trigger: slipway.TriggerConfig}, slipway.ReleaseSucceeded) // v2: 3 → 4
		at(5)
		v3 := release(slipway.NewRelease{SlugID: b2, Trigger: slipway.TriggerDeploy}, slipway.ReleaseFailed) // v3: 5 → 6
		at(7)
		release(slipway.NewRelease{RollbackTo: "v1", Trigger: slipway.TriggerRollback}, slipway.ReleaseSucceeded) // v4: 7 → 8

		recs, err := db.DeliveryHistory(ctx, []string{a.ID}, t0.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		type rec struct {
			V, Rollback     int
			Trigger, Status string
			Created, Ended  int
			Commit, Built   int
		}
		hours := func(x time.Time) int {
			if x.IsZero() {
				return -99
			}
			return int(x.Sub(t0) / time.Hour)
		}
		var got []rec
		for _, r := range recs {
			got = append(got, rec{r.Version, r.RollbackOf, r.Trigger, r.Status, hours(r.CreatedAt), hours(r.EndedAt), hours(r.CommitTime), hours(r.BuildCreatedAt)})
		}
		want := []rec{
			{2, 0, "config", "succeeded", 3, 4, -1, 0},
			{3, 0, "deploy", "failed", 5, 6, -99, 3},
			{4, 1, "rollback", "succeeded", 7, 8, -1, 0},
		}
		if len(got) != len(want) {
			t.Fatalf("history = %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("history[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
		if all, err := db.DeliveryHistory(ctx, nil, t0); err != nil || len(all) < 4 {
			t.Errorf("every app's history = %d records, %v", len(all), err)
		}
		if none, err := db.DeliveryHistory(ctx, []string{}, t0); err != nil || len(none) != 0 {
			t.Errorf("no app's history = %v, %v", none, err)
		}

		// v3 was made while v2 was current; v1 while none was.
		if cur, err := db.ReleaseCurrentAt(ctx, v3); err != nil || cur.Version != 2 {
			t.Errorf("current when v3 was made = %+v, %v", cur, err)
		}
		v1, _ := db.FindRelease(ctx, a.ID, "v1")
		if _, err := db.ReleaseCurrentAt(ctx, v1); slipway.ErrorCode(err) != slipway.ENotFound {
			t.Errorf("current when v1 was made: %v, want ENotFound", err)
		}

		now = now.Add(time.Hour)
		dels, err := db.ClaimDeliveries(ctx, 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		summaries := map[float64]string{}
		for _, d := range dels {
			if strings.Contains(string(d.Payload), secret) {
				t.Fatalf("payload holds a config value: %s", d.Payload)
			}
			var p struct {
				Release struct {
					Version     float64 `json:"version"`
					DiffSummary string  `json:"diff_summary"`
				} `json:"release"`
			}
			json.Unmarshal(d.Payload, &p)
			summaries[p.Release.Version] = p.Release.DiffSummary
		}
		for v, want := range map[float64]string{
			1: "v1 (first release): code none → " + b1[:8] + "; process types +web",
			2: "v2 against v1: config +TOKEN",
			3: "v3 against v2: code " + b1[:8] + " → " + b2[:8],
			4: "v4 against v2: rollback to v1; config -TOKEN",
		} {
			if summaries[v] != want {
				t.Errorf("v%v diff_summary = %q, want %q", v, summaries[v], want)
			}
		}
	})
}
