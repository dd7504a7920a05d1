package store

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway/internal/pgtest"
)

// openBefore creates a database holding only the migrations named before
// stop, as an older server left it, and returns its DSN and a raw handle
// for seeding it. One per backend: SQLite, and PostgreSQL when
// SLIPWAY_TEST_DATABASE_URL is set.
func openBefore(t *testing.T, stop string) map[string]struct {
	dsn string
	raw *sql.DB
} {
	t.Helper()
	out := map[string]struct {
		dsn string
		raw *sql.DB
	}{}
	dsns := map[string]string{"sqlite": filepath.Join(t.TempDir(), "old.db")}
	if pg := pgtest.DSN(t); pg != "" {
		dsns["postgres"] = pg
	}
	for name, dsn := range dsns {
		driver, open, serial := "sqlite", "file:"+dsn+"?_pragma=foreign_keys(ON)", "INTEGER PRIMARY KEY AUTOINCREMENT"
		if name == "postgres" {
			driver, open, serial = "pgx", dsn, "BIGSERIAL PRIMARY KEY"
		}
		raw, err := sql.Open(driver, open)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
		raw.SetMaxOpenConns(1)
		if _, err := raw.Exec(`CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		names, _ := fs.Glob(migrationFiles, "migrations/*.sql")
		sort.Strings(names)
		for _, m := range names {
			if m >= stop {
				break
			}
			body, _ := migrationFiles.ReadFile(m)
			for _, stmt := range splitStatements(strings.ReplaceAll(string(body), "{{serial}}", serial)) {
				if _, err := raw.Exec(stmt); err != nil {
					t.Fatalf("%s: %v", m, err)
				}
			}
			if _, err := raw.Exec(`INSERT INTO schema_migrations (name, applied_at) VALUES ($1, 0)`, m); err != nil {
				t.Fatal(err)
			}
		}
		out[name] = struct {
			dsn string
			raw *sql.DB
		}{dsn, raw}
	}
	return out
}

// TestMigrate_0007_HooksThatMayBeTenantsAreScoped upgrades a database of
// 0005's schema: hooks of apps whose organization has a scoped token (and
// their pending deliveries) take the tenant's rule, other hooks keep the
// admin's, and every existing space is shared.
func TestMigrate_0007_HooksThatMayBeTenantsAreScoped(t *testing.T) {
	for backend, old := range openBefore(t, "migrations/0006") {
		t.Run(backend, func(t *testing.T) {
			for _, stmt := range []string{
				`INSERT INTO organizations (id, name, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000a1', 'default', 0, 0)`,
				`INSERT INTO organizations (id, name, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000a2', 'acme', 0, 0)`,
				`INSERT INTO spaces (id, name, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000b1', 'default', 0, 0)`,
				`INSERT INTO tokens (id, org_id, hash, created_at) VALUES ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-0000000000a2', 'h', 0)`,
				`INSERT INTO apps (id, name, org_id, space_id, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000d1', 'tenant', '00000000-0000-4000-8000-0000000000a2', '00000000-0000-4000-8000-0000000000b1', 0, 0)`,
				`INSERT INTO apps (id, name, org_id, space_id, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000d2', 'ops', '00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000b1', 0, 0)`,
				`INSERT INTO hooks (id, app_id, url, events, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-0000000000d1', 'http://t.example.com/', '["release"]', 0, 0)`,
				`INSERT INTO hooks (id, app_id, url, events, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000e2', '00000000-0000-4000-8000-0000000000d2', 'http://10.0.0.9/', '["release"]', 0, 0)`,
				`INSERT INTO hook_deliveries (id, hook_id, app_id, event, url, secret, payload, status, next_at, created_at, updated_at) VALUES ('f1', '00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-0000000000d1', 'release', 'http://t.example.com/', '', '{}', 'pending', 0, 0, 0)`,
				`INSERT INTO hook_deliveries (id, hook_id, app_id, event, url, secret, payload, status, next_at, created_at, updated_at) VALUES ('f2', '00000000-0000-4000-8000-0000000000e2', '00000000-0000-4000-8000-0000000000d2', 'release', 'http://10.0.0.9/', '', '{}', 'pending', 0, 0, 0)`,
			} {
				if _, err := old.raw.Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}
			old.raw.Close()
			ctx := context.Background()
			db, err := Open(ctx, old.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, tt := range []struct {
				app, hook string
				scoped    bool
			}{
				{"00000000-0000-4000-8000-0000000000d1", "00000000-0000-4000-8000-0000000000e1", true},  // acme has a token
				{"00000000-0000-4000-8000-0000000000d2", "00000000-0000-4000-8000-0000000000e2", false}, // default has none
			} {
				h, err := db.FindHook(ctx, tt.app, tt.hook)
				if err != nil || h.Scoped != tt.scoped || h.CreatedBy != "" {
					t.Fatalf("hook %s = %+v, %v; want scoped %v", tt.hook, h, err, tt.scoped)
				}
			}
			dels, err := db.ClaimDeliveries(ctx, 10, time.Minute)
			if err != nil || len(dels) != 2 {
				t.Fatalf("ClaimDeliveries = %d, %v", len(dels), err)
			}
			for _, d := range dels {
				if d.Scoped != (d.ID == "f1") {
					t.Fatalf("delivery %s scoped = %v", d.ID, d.Scoped)
				}
			}
			sp, err := db.FindSpace(ctx, "default")
			if err != nil || !sp.Shared() {
				t.Fatalf("default space = %+v, %v", sp, err)
			}
		})
	}
}
