// Package store keeps Slipway's records in SQL: SQLite (pure Go, WAL) as the
// embedded default, PostgreSQL (pgx) for several servers on one database.
// One schema and one set of queries serve both; the few differences live in
// the dialect.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/slipway/slipway"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// DB is the SQL store. It implements slipway.Store.
type DB struct {
	// w runs every write; for SQLite it has one connection, so writers queue
	// in Go instead of spinning on SQLITE_BUSY. r serves reads.
	w, r     *sql.DB
	postgres bool
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// Limits caps the dynos formations may ask for; zero fields take the
	// defaults. Set it before the store is used.
	Limits slipway.DynoLimits
}

var _ slipway.Store = (*DB)(nil)

// Open opens the database named by dsn: a postgres:// or postgresql:// URL
// for PostgreSQL, anything else is the path of a SQLite file (created if
// missing). Migrations are applied before it returns.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db := &DB{Now: time.Now}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		pool, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		pool.SetMaxOpenConns(16)
		pool.SetMaxIdleConns(16)
		db.w, db.r, db.postgres = pool, pool, true
	} else {
		q := url.Values{}
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "busy_timeout(10000)")
		q.Add("_pragma", "foreign_keys(ON)")
		// FULL: a commit is on disk before it is acknowledged, so not even
		// a power cut loses an answered request (NORMAL in WAL mode may).
		q.Add("_pragma", "synchronous(FULL)")
		q.Set("_txlock", "immediate")
		w, err := sql.Open("sqlite", "file:"+dsn+"?"+q.Encode())
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		w.SetMaxOpenConns(1)
		w.SetConnMaxIdleTime(0)
		q.Add("_pragma", "query_only(ON)")
		q.Set("_txlock", "deferred")
		r, err := sql.Open("sqlite", "file:"+dsn+"?"+q.Encode())
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		r.SetMaxOpenConns(8)
		r.SetMaxIdleConns(8)
		db.w, db.r = w, r
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.seed(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the connection pools.
func (db *DB) Close() error {
	err := db.w.Close()
	if db.r != db.w {
		err = errors.Join(err, db.r.Close())
	}
	return err
}

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.r.PingContext(ctx) }

// Postgres reports whether the store runs on PostgreSQL.
func (db *DB) Postgres() bool { return db.postgres }

// migrate applies the embedded migrations not yet applied, in name order.
// On PostgreSQL an advisory lock makes servers starting at once take turns.
func (db *DB) migrate(ctx context.Context) error {
	conn, err := db.w.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if db.postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(7317001)`); err != nil {
			return fmt.Errorf("migrate lock: %w", err)
		}
		defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(7317001)`)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = $1`, name).Scan(&n); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if n > 0 {
			continue
		}
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return err
		}
		serial := "INTEGER PRIMARY KEY AUTOINCREMENT"
		if db.postgres {
			serial = "BIGSERIAL PRIMARY KEY"
		}
		text := strings.ReplaceAll(string(body), "{{serial}}", serial)
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		for _, stmt := range splitStatements(text) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("migrate %s: %w", name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`, name, db.Now().UnixMicro()); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %s: %w", name, err)
		}
	}
	return nil
}

// splitStatements splits a migration on semicolons at line ends, dropping
// comment lines; migrations hold no semicolons inside literals.
func splitStatements(text string) []string {
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

// seed creates the default organization and space of a fresh server.
func (db *DB) seed(ctx context.Context) error {
	now := db.Now().UnixMicro()
	ins := `INSERT INTO organizations (id, name, description, created_at, updated_at) VALUES ($1, 'default', 'The default organization.', $2, $2) ON CONFLICT (name) DO NOTHING`
	if _, err := db.w.ExecContext(ctx, ins, newID(), now); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	ins = `INSERT INTO spaces (id, name, description, compliance, created_at, updated_at) VALUES ($1, 'default', 'The default space.', '[]', $2, $2) ON CONFLICT (name) DO NOTHING`
	if _, err := db.w.ExecContext(ctx, ins, newID(), now); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

// tx runs fn in a write transaction, rolling back on error or panic.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// isUnique reports whether err is a unique or primary key violation.
func isUnique(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// notFound turns sql.ErrNoRows into an ENotFound error naming what was
// looked for; string args (ids and names as requested) are clipped.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		for i, a := range args {
			if s, ok := a.(string); ok {
				args[i] = slipway.Clip(s)
			}
		}
		return slipway.Errorf(slipway.ENotFound, format, args...)
	}
	return err
}

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
