package pgtest

import (
	"database/sql"
	"testing"
)

// TestDSN_ReachesTheDatabase opens the database DSN gives: a URL that is
// set but points nowhere fails here (and in every PostgreSQL test) instead
// of passing unnoticed; an unset one skips, or fails in CI.
func TestDSN_ReachesTheDatabase(t *testing.T) {
	db, err := sql.Open("pgx", DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var one int
	if err := db.QueryRow("SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 = %d, %v", one, err)
	}
}
