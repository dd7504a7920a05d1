package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/store"
)

func TestStore_Hooks(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a, b := mustApp(t, db, "hooks"), mustApp(t, db, "other")
		for _, h := range []*slipway.Hook{
			{AppID: a.ID, URL: "ftp://example.com/", Events: []string{slipway.EventRelease}},
			{AppID: a.ID, URL: "https://example.com/", Events: nil},
			{AppID: a.ID, URL: "https://example.com/", Events: []string{"deploy"}},
		} {
			wantCode(t, db.CreateHook(ctx, h), slipway.EUnprocessable)
		}
		h := &slipway.Hook{AppID: a.ID, URL: "https://example.com/1", Events: []string{slipway.EventRelease}, Secret: "s3cret", Active: true, CreatedBy: "admin"}
		h2 := &slipway.Hook{AppID: a.ID, URL: "https://example.com/2", Events: []string{slipway.EventBuild}, Active: true}
		for _, x := range []*slipway.Hook{h, h2} {
			if err := db.CreateHook(ctx, x); err != nil {
				t.Fatal(err)
			}
		}
		hs, err := db.ListHooks(ctx, a.ID)
		if err != nil || len(hs) != 2 || hs[0].ID != h.ID || hs[0].Secret != "s3cret" || !hs[0].Active {
			t.Fatalf("ListHooks = %+v, %v", hs, err)
		}
		if hs, _ := db.ListHooks(ctx, b.ID); len(hs) != 0 {
			t.Fatalf("another app's hooks = %+v", hs)
		}
		for _, ref := range [][2]string{{b.ID, h.ID}, {a.ID, uuid.NewString()}, {a.ID, "nope"}} {
			_, err := db.FindHook(ctx, ref[0], ref[1])
			wantCode(t, err, slipway.ENotFound)
		}
		h.Events, h.Active = []string{slipway.EventRelease, slipway.EventBuild}, false
		if err := db.UpdateHook(ctx, h); err != nil {
			t.Fatal(err)
		}
		h.URL = "gopher://x"
		wantCode(t, db.UpdateHook(ctx, h), slipway.EUnprocessable)
		got, err := db.FindHook(ctx, a.ID, h.ID)
		if err != nil || got.Active || len(got.Events) != 2 || got.URL != "https://example.com/1" || got.CreatedBy != "admin" {
			t.Fatalf("after UpdateHook: %+v, %v", got, err)
		}
		wantCode(t, db.DeleteHook(ctx, b.ID, h.ID), slipway.ENotFound)
		if err := db.DeleteHook(ctx, a.ID, h.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.DeleteHook(ctx, a.ID, h.ID), slipway.ENotFound)
	})
}

// TestStore_Outbox follows deliveries from the event to their end: only
// active hooks subscribed to the event get one, a claimed delivery is
// hidden for its lease, a failed attempt comes back at its retry time, a
// delivered or given-up one never, and every attempt is a result.
func TestStore_Outbox(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		db.Now = func() time.Time { return now }
		defer func() { db.Now = time.Now }()
		a := mustApp(t, db, "outbox")
		rel := &slipway.Hook{AppID: a.ID, URL: "https://example.com/r", Events: []string{slipway.EventRelease}, Secret: "k", Active: true}
		build := &slipway.Hook{AppID: a.ID, URL: "https://example.com/b", Events: []string{slipway.EventBuild}, Active: true}
		off := &slipway.Hook{AppID: a.ID, URL: "https://example.com/off", Events: []string{slipway.EventRelease}, Active: false}
		for _, h := range []*slipway.Hook{rel, build, off} {
			if err := db.CreateHook(ctx, h); err != nil {
				t.Fatal(err)
			}
		}
		wantCode(t, db.EmitEvent(ctx, uuid.NewString(), slipway.EventRelease, nil), slipway.ENotFound)
		if err := db.EmitEvent(ctx, a.ID, slipway.EventRelease, map[string]any{"release": map[string]any{"version": 3}}); err != nil {
			t.Fatal(err)
		}
		dels, err := db.ClaimDeliveries(ctx, 10, time.Minute)
		if err != nil || len(dels) != 1 {
			t.Fatalf("ClaimDeliveries = %+v, %v; want the release hook's one", dels, err)
		}
		d := dels[0]
		var body map[string]any
		if err := json.Unmarshal(d.Payload, &body); err != nil {
			t.Fatal(err)
		}
		if d.HookID != rel.ID || d.URL != rel.URL || d.Secret != "k" || d.Event != slipway.EventRelease || d.Attempts != 0 ||
			body["action"] != slipway.EventRelease || body["key"] != "outbox-default" || fmt.Sprint(body["release"]) != "map[version:3]" {
			t.Fatalf("delivery = %+v, payload %s", d, d.Payload)
		}
		// Claimed: hidden from every claimer until the lease runs out.
		if again, _ := db.ClaimDeliveries(ctx, 10, time.Minute); len(again) != 0 {
			t.Fatalf("claimed twice: %+v", again)
		}
		now = now.Add(2 * time.Minute)
		if again, _ := db.ClaimDeliveries(ctx, 10, time.Minute); len(again) != 1 {
			t.Fatalf("a delivery whose lease ran out was not claimed again: %+v", again)
		}
		// A failed attempt, retried in 10 s; then delivered.
		if err := db.RecordAttempt(ctx, d, &slipway.HookResult{Attempt: 1, StatusCode: 500, Error: "500 Internal Server Error", Duration: 3 * time.Millisecond}, false, now.Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if early, _ := db.ClaimDeliveries(ctx, 10, time.Minute); len(early) != 0 {
			t.Fatalf("claimed before its retry time: %+v", early)
		}
		now = now.Add(10 * time.Second)
		retry, err := db.ClaimDeliveries(ctx, 10, time.Minute)
		if err != nil || len(retry) != 1 || retry[0].Attempts != 1 {
			t.Fatalf("retry = %+v, %v", retry, err)
		}
		if err := db.RecordAttempt(ctx, retry[0], &slipway.HookResult{Attempt: 2, StatusCode: 204, RequestHeaders: map[string]string{"X-Slipway-Event": "release"}}, true, time.Time{}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Hour)
		if done, _ := db.ClaimDeliveries(ctx, 10, time.Minute); len(done) != 0 {
			t.Fatalf("a delivered event came back: %+v", done)
		}
		rs, err := db.ListHookResults(ctx, rel.ID, slipway.Page{})
		if err != nil || len(rs) != 2 || rs[0].Attempt != 1 || rs[0].StatusCode != 500 || rs[0].Error == "" || rs[0].Duration != 3*time.Millisecond ||
			rs[1].Attempt != 2 || rs[1].RequestHeaders["X-Slipway-Event"] != "release" || rs[1].DeliveryID != d.ID {
			t.Fatalf("results = %+v, %v", rs, err)
		}
		// Given up (a zero retry time): never claimed again.
		if err := db.EmitEvent(ctx, a.ID, slipway.EventBuild, nil); err != nil {
			t.Fatal(err)
		}
		gone, _ := db.ClaimDeliveries(ctx, 10, time.Minute)
		if len(gone) != 1 || gone[0].HookID != build.ID {
			t.Fatalf("build delivery = %+v", gone)
		}
		if err := db.RecordAttempt(ctx, gone[0], &slipway.HookResult{Attempt: 1, Error: "refused"}, false, time.Time{}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(24 * time.Hour)
		if left, _ := db.ClaimDeliveries(ctx, 10, time.Minute); len(left) != 0 {
			t.Fatalf("a given-up delivery came back: %+v", left)
		}
		// Deleting a hook drops its pending deliveries.
		if err := db.EmitEvent(ctx, a.ID, slipway.EventRelease, nil); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteHook(ctx, a.ID, rel.ID); err != nil {
			t.Fatal(err)
		}
		if left, _ := db.ClaimDeliveries(ctx, 10, time.Minute); len(left) != 0 {
			t.Fatalf("a deleted hook's delivery was claimed: %+v", left)
		}
	})
}

// TestStore_ClaimDeliveries_TwoServersNeverClaimOneDelivery has two
// servers (two handles on one database) claim deliveries at once until
// none are left: every delivery is claimed, and by one of them only.
func TestStore_ClaimDeliveries_TwoServersNeverClaimOneDelivery(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			dsn := backendDSN(t, backend)
			ctx := context.Background()
			one, two := mustOpen(t, dsn), mustOpen(t, dsn)
			a := mustApp(t, one, "busy")
			for i := range 4 {
				h := &slipway.Hook{AppID: a.ID, URL: fmt.Sprintf("https://example.com/%d", i), Events: []string{slipway.EventRelease}, Active: true}
				if err := one.CreateHook(ctx, h); err != nil {
					t.Fatal(err)
				}
			}
			const events = 50 // four deliveries each
			for range events {
				if err := one.EmitEvent(ctx, a.ID, slipway.EventRelease, nil); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			claimedBy := map[string]int{}
			var wg sync.WaitGroup
			for server, db := range []*store.DB{one, two} {
				for range 3 { // a few workers per server, as hook.Deliverer runs
					wg.Go(func() {
						for {
							dels, err := db.ClaimDeliveries(ctx, 7, time.Hour)
							if err != nil {
								t.Error(err)
								return
							}
							if len(dels) == 0 {
								return
							}
							mu.Lock()
							for _, d := range dels {
								if prev, ok := claimedBy[d.ID]; ok {
									t.Errorf("delivery %s claimed by server %d and again by server %d", d.ID, prev, server)
								}
								claimedBy[d.ID] = server
							}
							mu.Unlock()
						}
					})
				}
			}
			wg.Wait()
			if len(claimedBy) != 4*events {
				t.Fatalf("%d deliveries claimed, want %d", len(claimedBy), 4*events)
			}
		})
	}
}
