// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the database named by SLIPWAY_TEST_DATABASE_URL, dropped when
// the test ends.
package pgtest

import (
	"database/sql"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// EnvVar names the PostgreSQL URL the tests use.
const EnvVar = "SLIPWAY_TEST_DATABASE_URL"

// Enabled reports whether EnvVar is set, for benchmarks, which measure
// the backends there are rather than skip.
func Enabled() bool { return os.Getenv(EnvVar) != "" }

// DSN creates a fresh schema and returns a URL that uses it. When
// SLIPWAY_TEST_DATABASE_URL is unset it skips tb, saying so, so that
// `go test` counts what PostgreSQL did not test; in CI (CI set, as
// .ci/run does) it fails tb instead, as it does wherever the database
// cannot be reached. Call it in the test or subtest that needs PostgreSQL.
func DSN(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		if os.Getenv("CI") != "" {
			tb.Fatal("CI must test the PostgreSQL backend, but " + EnvVar + " is not set")
		}
		tb.Skip(EnvVar + " is not set: the PostgreSQL backend is not tested")
	}
	schema := "t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("pgtest: create schema: %v", err)
	}
	tb.Cleanup(func() {
		if a, err := sql.Open("pgx", base); err == nil {
			a.Exec("DROP SCHEMA " + schema + " CASCADE")
			a.Close()
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}
