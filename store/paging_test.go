package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/store"
)

// walk pages through a list ranged by created_at, two rows at a time,
// starting each page after the last row's time and id as Next-Range
// does, and returns the ids in the order listed.
func walk(t *testing.T, desc bool, list func(slipway.Page) ([]string, time.Time, error)) []string {
	t.Helper()
	var ids []string
	p := slipway.Page{Max: 2, Desc: desc}
	for range 20 {
		page, last, err := list(p)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, page...)
		if len(page) < p.Max {
			return ids
		}
		p.Start, p.StartID, p.StartExclusive = strconv.FormatInt(last.UnixMicro(), 10), page[len(page)-1], true
	}
	t.Fatalf("still paging after 20 pages: %v", ids)
	return nil
}

// checkWalk asks that ids hold each of want once, in created_at then id
// order (reversed for desc).
func checkWalk(t *testing.T, ids []string, want int, desc bool) {
	t.Helper()
	seen := map[string]bool{}
	for i, id := range ids {
		if seen[id] {
			t.Fatalf("%s listed twice: %v", id, ids)
		}
		seen[id] = true
		if i > 0 && (ids[i-1] < id) == desc {
			t.Fatalf("rows of one microsecond out of id order: %v", ids)
		}
	}
	if len(ids) != want {
		t.Fatalf("walked %d rows of %d: %v", len(ids), want, ids)
	}
}

// TestStore_CreatedAtPaging_RowsOfOneMicrosecond lists builds and hook
// results created in the very same microsecond, a page at a time, both
// ways: with a cursor of time and id, every row comes exactly once.
func TestStore_CreatedAtPaging_RowsOfOneMicrosecond(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Now().Truncate(time.Microsecond)
		db.Now = func() time.Time { return at }
		defer func() { db.Now = time.Now }()
		a := mustApp(t, db, "paged")
		h := &slipway.Hook{AppID: a.ID, URL: "https://hooks.example.com/", Events: []string{slipway.EventBuild}, Active: true}
		if err := db.CreateHook(ctx, h); err != nil {
			t.Fatal(err)
		}
		const n = 7
		for range n {
			b := &slipway.Build{AppID: a.ID}
			if err := db.CreateBuild(ctx, b); err != nil {
				t.Fatal(err)
			}
			if err := db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildFailed}); err != nil { // emits build
				t.Fatal(err)
			}
		}
		dels, err := db.ClaimDeliveries(ctx, 100, time.Minute)
		if err != nil || len(dels) != n {
			t.Fatalf("ClaimDeliveries = %d, %v", len(dels), err)
		}
		for _, d := range dels {
			if err := db.RecordAttempt(ctx, d, &slipway.HookResult{Attempt: 1, StatusCode: 200}, true, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, desc := range []bool{false, true} {
			builds := walk(t, desc, func(p slipway.Page) ([]string, time.Time, error) {
				bs, err := db.ListBuilds(ctx, a.ID, p)
				var ids []string
				var last time.Time
				for _, b := range bs {
					ids, last = append(ids, b.ID), b.CreatedAt
				}
				return ids, last, err
			})
			checkWalk(t, builds, n, desc)
			results := walk(t, desc, func(p slipway.Page) ([]string, time.Time, error) {
				rs, err := db.ListHookResults(ctx, h.ID, p)
				var ids []string
				var last time.Time
				for _, r := range rs {
					ids, last = append(ids, r.ID), r.CreatedAt
				}
				return ids, last, err
			})
			checkWalk(t, results, n, desc)
		}
		// A time alone still starts a page (rows from that microsecond on);
		// a cursor whose id is not one is refused.
		if bs, err := db.ListBuilds(ctx, a.ID, slipway.Page{Start: strconv.FormatInt(at.UnixMicro(), 10)}); err != nil || len(bs) != n {
			t.Fatalf("from a time: %d builds, %v", len(bs), err)
		}
		_, err = db.ListBuilds(ctx, a.ID, slipway.Page{Start: "1", StartID: "nope"})
		wantCode(t, err, slipway.EInvalid)
		_, err = db.ListHookResults(ctx, h.ID, slipway.Page{Start: "x"})
		wantCode(t, err, slipway.EInvalid)
	})
}
