package store

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/pgtest"
)

// legacyDB is a database as a server from before goose left it.
type legacyDB struct {
	dsn      string
	raw      *sql.DB // for seeding it
	postgres bool
}

// legacyBackends are the backends the upgrade tests start from.
var legacyBackends = []string{"sqlite", "postgres"}

// openLegacy creates a database of backend ("sqlite", or "postgres",
// which skips t when SLIPWAY_TEST_DATABASE_URL is unset: see pgtest.DSN)
// migrated to version upTo by the runner Slipway had before goose, from
// the migration files of that time (testdata/legacy-migrations): the same
// bookkeeping (schema_migrations, by file name), the same templating and
// splitting.
func openLegacy(t *testing.T, backend string, upTo int) legacyDB {
	t.Helper()
	postgres := backend == "postgres"
	dsn := filepath.Join(t.TempDir(), "old.db")
	driver, open := "sqlite", "file:"+dsn+"?_pragma=foreign_keys(ON)"
	if postgres {
		dsn = pgtest.DSN(t)
		driver, open = "pgx", dsn
	}
	raw, err := sql.Open(driver, open)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.SetMaxOpenConns(1)
	if err := legacyMigrate(raw, postgres, upTo); err != nil {
		t.Fatalf("%s: %v", backend, err)
	}
	return legacyDB{dsn, raw, postgres}
}

// legacyMigrate is the migration runner from before goose, as it was
// (minus its advisory lock), applying the files up to version upTo.
func legacyMigrate(db *sql.DB, postgres bool, upTo int) error {
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return err
	}
	legacy := os.DirFS("testdata/legacy-migrations")
	names, err := fs.Glob(legacy, "*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, base := range names {
		if v, err := goose.NumericComponent(base); err != nil || v > int64(upTo) {
			continue
		}
		body, err := fs.ReadFile(legacy, base)
		if err != nil {
			return err
		}
		serial := "INTEGER PRIMARY KEY AUTOINCREMENT"
		if postgres {
			serial = "BIGSERIAL PRIMARY KEY"
		}
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		for _, stmt := range legacySplit(strings.ReplaceAll(string(body), "{{serial}}", serial)) {
			if _, err := tx.Exec(stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("%s: %w", base, err)
			}
		}
		// The runner recorded the embedded path, "migrations/<file>".
		if _, err := tx.Exec(`INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`, "migrations/"+base, time.Now().UnixMicro()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// legacySplit is the old runner's statement splitter: semicolons at line
// ends, comment lines dropped.
func legacySplit(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if s := strings.TrimSpace(cur.String()); s != ";" {
				out = append(out, strings.TrimSuffix(s, ";"))
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// schemaOf describes every table's columns and every index, leaving out
// the migration bookkeeping, in a form that two databases with the same
// schema print alike.
func schemaOf(t *testing.T, db *DB) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	query := func(q string, args ...any) [][]string {
		t.Helper()
		rows, err := db.r.QueryContext(ctx, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var out [][]string
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			row := make([]string, len(cols))
			for i, v := range vals {
				row[i] = v.String
			}
			out = append(out, row)
		}
		return out
	}
	skip := map[string]bool{versionTable: true, legacyTable: true, "sqlite_sequence": true}
	if db.postgres {
		var schema string
		db.r.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema)
		for _, r := range query(`SELECT table_name, column_name, data_type, is_nullable, COALESCE(column_default, '') FROM information_schema.columns
			WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`) {
			if !skip[r[0]] {
				lines = append(lines, strings.Join(r, " "))
			}
		}
		for _, r := range query(`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname`) {
			if !skip[r[0]] {
				lines = append(lines, strings.ReplaceAll(strings.Join(r, " "), schema+".", ""))
			}
		}
		for _, r := range query(`SELECT tc.table_name, tc.constraint_type, kcu.column_name FROM information_schema.table_constraints tc
			JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema
			WHERE tc.table_schema = current_schema() ORDER BY tc.table_name, tc.constraint_type, kcu.column_name`) {
			if !skip[r[0]] {
				lines = append(lines, strings.Join(r, " "))
			}
		}
		return strings.Join(lines, "\n")
	}
	for _, tbl := range query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`) {
		if skip[tbl[0]] {
			continue
		}
		for _, r := range query(`SELECT name, type, "notnull", COALESCE(dflt_value, ''), pk FROM pragma_table_info($1)`, tbl[0]) {
			lines = append(lines, tbl[0]+" "+strings.Join(r, " "))
		}
		for _, r := range query(`SELECT "table", "from", "to", on_delete FROM pragma_foreign_key_list($1) ORDER BY "from"`, tbl[0]) {
			lines = append(lines, tbl[0]+" fk "+strings.Join(r, " "))
		}
		for _, idx := range query(`SELECT name, "unique" FROM pragma_index_list($1) ORDER BY name`, tbl[0]) {
			var cols []string
			for _, c := range query(`SELECT name FROM pragma_index_info($1) ORDER BY seqno`, idx[0]) {
				cols = append(cols, c[0])
			}
			lines = append(lines, fmt.Sprintf("%s index %s unique=%s (%s)", tbl[0], idx[0], idx[1], strings.Join(cols, ", ")))
		}
		var autoinc int
		db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = $1 AND sql LIKE '%AUTOINCREMENT%'`, tbl[0]).Scan(&autoinc)
		lines = append(lines, fmt.Sprintf("%s autoincrement=%d", tbl[0], autoinc))
	}
	return strings.Join(lines, "\n")
}

// gooseVersion is the highest version goose has recorded.
func gooseVersion(t *testing.T, db *DB) int64 {
	t.Helper()
	var v int64
	if err := db.r.QueryRow(`SELECT MAX(version_id) FROM ` + versionTable).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// latestVersion is the highest version among the embedded migrations.
func latestVersion(t *testing.T) int64 {
	names, _ := fs.Glob(migrationFiles, "migrations/*.sql")
	var latest int64
	for _, n := range names {
		v, err := goose.NumericComponent(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		latest = max(latest, v)
	}
	return latest
}

// TestMigrate_LegacyDatabaseUpgradesInPlace opens, with goose, databases
// the runner before goose migrated to 0007 and to 0008, its last: goose
// takes over their bookkeeping without applying those migrations again,
// applies what came later, keeps every row, and leaves the schema exactly
// as a fresh database's.
func TestMigrate_LegacyDatabaseUpgradesInPlace(t *testing.T) {
	for _, upTo := range []int{7, 8} {
		for _, backend := range legacyBackends {
			t.Run(fmt.Sprintf("%s/from_%04d", backend, upTo), func(t *testing.T) { upgradeInPlace(t, openLegacy(t, backend, upTo)) })
		}
	}
}

func upgradeInPlace(t *testing.T, old legacyDB) {
	ctx := context.Background()
	for _, stmt := range []string{
		`INSERT INTO organizations (id, name, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000a1', 'default', 0, 0)`,
		`INSERT INTO spaces (id, name, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000b1', 'default', 0, 0)`,
		`INSERT INTO apps (id, name, org_id, space_id, release_seq, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000d1', 'old', '00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-0000000000b1', 1, 0, 0)`,
		`INSERT INTO builds (id, app_id, status, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-0000000000d1', 'succeeded', 0, 0)`,
		`INSERT INTO slugs (id, app_id, process_types, created_at) VALUES ('00000000-0000-4000-8000-0000000000e1', '00000000-0000-4000-8000-0000000000d1', '{"web":"./web"}', 0)`,
		`INSERT INTO releases (id, app_id, version, slug_id, status, trigger_kind, created_at, updated_at) VALUES ('00000000-0000-4000-8000-0000000000f1', '00000000-0000-4000-8000-0000000000d1', 1, '00000000-0000-4000-8000-0000000000e1', 'succeeded', 'deploy', 0, 0)`,
		`INSERT INTO release_logs (release_id, at, line) VALUES ('00000000-0000-4000-8000-0000000000f1', 0, 'Release v1 succeeded.')`,
		`INSERT INTO audits (id, app_id, app_key, action, created_at) VALUES ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-0000000000d1', 'old-default', 'app.create', 0)`,
	} {
		if _, err := old.raw.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	old.raw.Close()
	db, err := Open(ctx, old.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, want := gooseVersion(t, db), latestVersion(t); got != want {
		t.Fatalf("goose version = %d, want %d", got, want)
	}
	// Every version is recorded once: those of the old runner were
	// adopted, not run again.
	var n, distinct int
	db.r.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version_id) FROM `+versionTable).Scan(&n, &distinct)
	if n != distinct {
		t.Fatalf("goose recorded %d rows for %d versions", n, distinct)
	}
	// The old rows are there, and the sequences go on after them.
	r, err := db.FindRelease(ctx, "00000000-0000-4000-8000-0000000000d1", "v1")
	if err != nil || r.Status != slipway.ReleaseSucceeded {
		t.Fatalf("old release = %+v, %v", r, err)
	}
	if err := db.AppendReleaseLog(ctx, r.ID, "and one more line"); err != nil {
		t.Fatal(err)
	}
	lines, err := db.ReleaseLog(ctx, r.ID, 0)
	if err != nil || len(lines) != 2 || lines[0].Seq >= lines[1].Seq {
		t.Fatalf("log = %+v, %v", lines, err)
	}
	v2, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: r.AppID, SlugID: r.SlugID, Trigger: slipway.TriggerDeploy})
	if err != nil || v2.Version != 2 {
		t.Fatalf("new release = %+v, %v", v2, err)
	}

	fresh := openFresh(t, old.postgres)
	if got, want := schemaOf(t, db), schemaOf(t, fresh); got != want {
		t.Fatalf("the upgraded schema differs from a fresh one:\nupgraded:\n%s\n\nfresh:\n%s", got, want)
	}

	// Opening it again changes nothing.
	db.Close()
	again, err := Open(ctx, old.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got, want := gooseVersion(t, again), latestVersion(t); got != want {
		t.Fatalf("goose version after reopening = %d, want %d", got, want)
	}
}

// openFresh opens a new, empty database of the backend with the current
// code.
func openFresh(t *testing.T, postgres bool) *DB {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "fresh.db")
	if postgres {
		dsn = pgtest.DSN(t)
	}
	db, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMigrate_ServersStartingAtOnceTakeTurns opens one fresh PostgreSQL
// database from several servers at once: the advisory lock lets one
// migrate while the others wait, and every one of them opens.
func TestMigrate_ServersStartingAtOnceTakeTurns(t *testing.T) {
	dsn := pgtest.DSN(t) // the migration lock is PostgreSQL's
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			db, err := Open(context.Background(), dsn)
			if err == nil {
				db.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestMigrate_0007_HooksThatMayBeTenantsAreScoped upgrades a database of
// 0005's schema: hooks of apps whose organization has a scoped token (and
// their pending deliveries) take the tenant's rule, other hooks keep the
// admin's, and every existing space is shared.
func TestMigrate_0007_HooksThatMayBeTenantsAreScoped(t *testing.T) {
	for _, backend := range legacyBackends {
		t.Run(backend, func(t *testing.T) {
			old := openLegacy(t, backend, 5)
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
