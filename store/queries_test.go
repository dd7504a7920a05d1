package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/slipway/slipway"
)

// TestQueries_CountsEachStatement holds Queries to what it says: one per
// statement sent to PostgreSQL, a transaction's BEGIN and COMMIT
// included, and 0 on SQLite, which it does not count.
func TestQueries_CountsEachStatement(t *testing.T) {
	ctx := context.Background()
	t.Run("postgres", func(t *testing.T) {
		db := mustOpen(t, backendDSN(t, "postgres"))
		a := mustApp(t, db, "counted")
		before := db.Queries()
		if _, err := db.AcquireLease(ctx, a.ID, "me", time.Second); err != nil { // one INSERT … ON CONFLICT
			t.Fatal(err)
		}
		if got := db.Queries() - before; got != 1 {
			t.Fatalf("AcquireLease: %d statements counted, want 1", got)
		}
		before = db.Queries()
		if _, err := db.QueueRestart(ctx, a.ID, ""); err != nil { // BEGIN, SELECT, INSERT, COMMIT
			t.Fatal(err)
		}
		if got := db.Queries() - before; got != 4 {
			t.Fatalf("QueueRestart: %d statements counted, want 4 (BEGIN, SELECT, INSERT, COMMIT)", got)
		}
		before = db.Queries()
		if _, err := db.QueueRestart(ctx, "no-such-app", ""); slipway.ErrorCode(err) != slipway.ENotFound { // BEGIN, SELECT, ROLLBACK
			t.Fatalf("err = %v, want ENotFound", err)
		}
		if got := db.Queries() - before; got != 3 {
			t.Fatalf("a refused QueueRestart: %d statements counted, want 3 (BEGIN, SELECT, ROLLBACK)", got)
		}
	})
	t.Run("sqlite", func(t *testing.T) {
		db := mustOpen(t, backendDSN(t, "sqlite"))
		mustApp(t, db, "uncounted")
		if got := db.Queries(); got != 0 {
			t.Fatalf("Queries() = %d on SQLite, want 0", got)
		}
	})
}
