// Package db opens the portal's database and owns its schema.
//
// SQLite (one file, the default) and PostgreSQL share the DML the stores
// write; only the DDL differs, and it lives here, one ordered list of
// migrations per dialect, embedded in the binary and applied at start-up.
// No other package opens a database or imports a driver.
package db

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"
	_ "github.com/mattn/go-sqlite3" // registers "sqlite3"
)

//go:embed migrations
var migrations embed.FS

// Options tune how a database is opened. The zero value is the default.
type Options struct {
	// SyncFull makes SQLite flush to disk on every commit (survives power
	// loss). The default, NORMAL, survives a process crash.
	SyncFull bool
}

// Open opens the database named by dsn, applies pending migrations and
// returns it. dsn is a SQLite file path; postgres:// URLs arrive with the
// PostgreSQL dialect.
func Open(ctx context.Context, dsn string, opt Options) (*sqlx.DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return nil, errors.New("db: PostgreSQL is not supported by this build yet")
	}
	return openSQLite(ctx, dsn, opt)
}

// openSQLite opens a SQLite file.
//
// The DSN turns on WAL (readers never block the writer), foreign keys (off
// by default in SQLite, per connection), a busy timeout, and BEGIN IMMEDIATE
// so a transaction that reads and then writes cannot fail with
// SQLITE_BUSY_SNAPSHOT, which the busy timeout does not retry.
func openSQLite(ctx context.Context, path string, opt Options) (*sqlx.DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file::memory:") {
		// Every pooled connection would see its own empty database.
		return nil, errors.New("db: an in-memory SQLite database is not supported; give a file path")
	}
	sync := "NORMAL"
	if opt.SyncFull {
		sync = "FULL"
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "5000")
	q.Set("_txlock", "immediate")
	q.Set("_synchronous", sync)
	dsn := "file:" + path + "?" + q.Encode()
	d, err := sqlx.ConnectContext(ctx, "sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	if err := migrate(ctx, d, "sqlite"); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: migrate %s: %w", path, err)
	}
	return d, nil
}

// migrate applies, in name order, every migration of dialect that is not
// yet recorded in schema_migrations, each in its own transaction.
func migrate(ctx context.Context, d *sqlx.DB, dialect string) error {
	if _, err := d.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY)`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/"+dialect+"/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		if err := applyOne(ctx, d, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func applyOne(ctx context.Context, d *sqlx.DB, name string) error {
	tx, err := d.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // no-op after Commit

	var n int
	if err := tx.GetContext(ctx, &n,
		tx.Rebind(`SELECT COUNT(*) FROM schema_migrations WHERE name = ?`), name); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO schema_migrations (name) VALUES (?)`), name); err != nil {
		return err
	}
	return tx.Commit()
}

// Ready reports whether d answers and every embedded migration of its
// dialect has been applied. It backs GET /readyz.
func Ready(ctx context.Context, d *sqlx.DB) error {
	dialect := "sqlite"
	if d.DriverName() == "pgx" {
		dialect = "postgres"
	}
	names, err := fs.Glob(migrations, "migrations/"+dialect+"/*.sql")
	if err != nil {
		return err
	}
	var n int
	if err := d.GetContext(ctx, &n, `SELECT COUNT(*) FROM schema_migrations`); err != nil {
		return fmt.Errorf("db: not ready: %w", err)
	}
	if n < len(names) {
		return fmt.Errorf("db: not ready: %d of %d migrations applied", n, len(names))
	}
	return nil
}
