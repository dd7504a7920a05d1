package store_test

import (
	"context"
	"testing"

	"github.com/slipway/slipway"
)

func BenchmarkListReleases10k(b *testing.B) {
	for name, db := range openBackends(b) {
		ctx := context.Background()
		a := mustApp(b, db, "bench")
		slug := mustSlug(b, db, a.ID)
		for i := 0; i < 10000; i++ {
			if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slug, Trigger: slipway.TriggerDeploy}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				n := 0
				db.ListReleases(ctx, a.ID, slipway.Page{}, func(*slipway.Release) error { n++; return nil })
				if n != 10000 {
					b.Fatal(n)
				}
			}
		})
	}
}
