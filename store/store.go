// Package store keeps Slipway's records in SQL: SQLite (pure Go, WAL) as the
// embedded default, PostgreSQL (pgx) for several servers on one database.
// One schema and one set of queries serve both (the queries use $N
// placeholders, which SQLite accepts too); the few differences are in Open
// (connections and pragmas), in the migrations that have a file per
// backend (migrate.go), in error translation and in the lease clock
// (leases.go).
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/slipway/slipway"
)

// DB is the SQL store. It implements slipway.Store.
type DB struct {
	// w runs every write; for SQLite it has one connection, so writers queue
	// in Go instead of spinning on SQLITE_BUSY. r serves reads.
	w, r     *sql.DB
	postgres bool
	// Now is the clock records are stamped with; tests may replace it.
	// Leases do not use it (see AcquireLease).
	Now func() time.Time
	// LeaseNow, when set, is the clock leases are granted and expire by,
	// instead of the database's; tests set it to move lease time.
	LeaseNow func() time.Time
	// Limits caps the dynos formations may ask for; zero fields take the
	// defaults. Set it before the store is used.
	Limits slipway.DynoLimits
	// queries counts the statements sent to PostgreSQL (see Queries).
	queries queryCounter
}

var _ slipway.Store = (*DB)(nil)

// Open opens the database named by dsn: a postgres:// or postgresql:// URL
// for PostgreSQL, anything else is the path of a SQLite file (created if
// missing). Migrations are applied before it returns.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db := &DB{Now: time.Now}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		cfg.Tracer = &db.queries
		pool := stdlib.OpenDB(*cfg)
		pool.SetMaxOpenConns(DefaultMaxConns)
		pool.SetMaxIdleConns(DefaultMaxConns)
		db.w, db.r, db.postgres = pool, pool, true
	} else {
		// Config vars and token hashes live here: the file is the server's
		// alone, and SQLite gives its -wal and -shm files the same mode.
		if err := ownerOnly(dsn); err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
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

// ownerOnly creates the SQLite file at path with mode 0600, or narrows an
// existing one (and its -wal and -shm files) to it.
func ownerOnly(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// DefaultMaxConns is how many PostgreSQL connections a server opens at
// most: a release in flight holds one for a few milliseconds at a time, so
// 16 carry the 100 releases in flight of make scale with room to spare.
const DefaultMaxConns = 16

// SetMaxConns bounds the server's PostgreSQL connections (n > 0); idle
// connections are kept up to the same number. SQLite's pools are fixed
// (one writer, eight readers) and unchanged.
func (db *DB) SetMaxConns(n int) {
	if !db.postgres || n <= 0 {
		return
	}
	db.w.SetMaxOpenConns(n)
	db.w.SetMaxIdleConns(n)
}

// MaxConns is the bound SetMaxConns set on the writing pool (SQLite: 1).
func (db *DB) MaxConns() int { return db.w.Stats().MaxOpenConnections }

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

// Queries is the number of statements this store has sent to PostgreSQL
// since it was opened, each one round trip: queries, execs, and the
// BEGIN and COMMIT or ROLLBACK of each transaction (0 on SQLite). The
// server exports it as slipway_db_queries_total, so that the cost of a
// release in queries can be measured without pg_stat_statements, which
// needs a restart of PostgreSQL.
func (db *DB) Queries() uint64 { return db.queries.n.Load() }

// queryCounter is a pgx tracer that counts the statements that end.
type queryCounter struct{ n atomic.Uint64 }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) { q.n.Add(1) }

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
