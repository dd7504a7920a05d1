package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// Migrations are goose SQL files (each starts with "-- +goose Up") named
// NNNN_what.sql, applied in version order, each in a transaction. A file
// serves both dialects; where they cannot share one, a version has two
// files, NNNN_what.sqlite.sql and NNNN_what.postgres.sql, and each
// dialect reads its own. Applied migrations are never edited: a change is
// a new version.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

const (
	// versionTable is where goose records the versions applied.
	versionTable = goose.DefaultTablename
	// legacyTable is where the runner before goose recorded migrations,
	// by file name ("migrations/0001_init.sql"). It is left as it is.
	legacyTable = "schema_migrations"
	// migrationLock is the PostgreSQL advisory lock migrations run under,
	// so that servers starting at once take turns. The runner before
	// goose took the same key, so old and new servers take turns too.
	migrationLock = 7317001
)

// dialect is the goose dialect of the database, and the suffix of the
// migration files that are the other dialect's.
func (db *DB) dialect() (d database.Dialect, otherSuffix string) {
	if db.postgres {
		return database.DialectPostgres, ".sqlite.sql"
	}
	return database.DialectSQLite3, ".postgres.sql"
}

// migrate applies the embedded migrations not yet applied. A database
// that the runner before goose migrated is adopted first: the versions it
// recorded are entered in goose's table, so nothing runs twice.
func (db *DB) migrate(ctx context.Context) error {
	dialect, other := db.dialect()
	dir, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	exclude, err := fs.Glob(dir, "*"+other)
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(dialect, db.w, dir,
		goose.WithExcludeNames(exclude),
		goose.WithDisableGlobalRegistry(true),
		// As the runner before goose did: a migration merged after a
		// later one was applied still runs.
		goose.WithAllowOutofOrder(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if db.postgres {
		// The lock is held on a connection of its own; goose takes
		// another from the pool.
		conn, err := db.w.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("migrate lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	}
	if err := db.adoptLegacyVersions(ctx, dialect); err != nil {
		return fmt.Errorf("migrate: adopt %s: %w", legacyTable, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// adoptLegacyVersions creates goose's version table for a database the
// runner before goose migrated, holding the versions that runner applied.
// It does nothing once goose's table exists, or on a fresh database.
func (db *DB) adoptLegacyVersions(ctx context.Context, dialect database.Dialect) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if ok, err := db.tableExists(ctx, tx, versionTable); err != nil || ok {
			return err
		}
		if ok, err := db.tableExists(ctx, tx, legacyTable); err != nil || !ok {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT name FROM `+legacyTable+` ORDER BY name`)
		if err != nil {
			return err
		}
		var versions []int64
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return err
			}
			v, err := goose.NumericComponent(name)
			if err != nil {
				rows.Close()
				return fmt.Errorf("%s: %w", name, err)
			}
			versions = append(versions, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		store, err := database.NewStore(dialect, versionTable)
		if err != nil {
			return err
		}
		if err := store.CreateVersionTable(ctx, tx); err != nil {
			return err
		}
		// Version 0 is the row goose writes when it creates its table.
		for _, v := range append([]int64{0}, versions...) {
			if err := store.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
				return err
			}
		}
		return nil
	})
}

// tableExists reports whether the schema the connection uses has the table.
func (db *DB) tableExists(ctx context.Context, q querier, name string) (bool, error) {
	query := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`
	if db.postgres {
		query = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
	}
	var n int
	err := q.QueryRowContext(ctx, query, strings.ToLower(name)).Scan(&n)
	return n > 0, err
}
