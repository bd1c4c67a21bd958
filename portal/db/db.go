// Package db opens the portal's database and owns its schema.
//
// SQLite (one file, the default) and PostgreSQL share the DML the stores
// write; only the DDL differs, and it lives here, one ordered list of
// migrations per dialect, embedded in the binary and applied at start-up.
// No other package opens a database or imports a driver.
package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"
)

//go:embed migrations
var migrations embed.FS

// Options tune how a database is opened. The zero value is the default.
type Options struct {
	// SyncFull makes SQLite flush to disk on every commit (survives power
	// loss). The default, NORMAL, survives a process crash.
	SyncFull bool
	// MaxConns bounds the PostgreSQL connections this process opens
	// (default 20). Several instances share the server's max_connections,
	// so keep instances × MaxConns (plus one listening connection each)
	// below it.
	MaxConns int
}

// The dialects, as Dialect names them and the migrations folders are named.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// IsPostgresURL reports whether dsn names a PostgreSQL database rather
// than a SQLite file.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Dialect returns SQLite or Postgres, for d opened by Open. Keep dialect
// differences in one small function that asks this, never scattered.
func Dialect(d *sqlx.DB) string {
	if d.DriverName() == "pgx" {
		return Postgres
	}
	return SQLite
}

// Open opens the database named by dsn, applies pending migrations and
// returns it. dsn is a SQLite file path, or a postgres:// URL.
func Open(ctx context.Context, dsn string, opt Options) (*sqlx.DB, error) {
	if IsPostgresURL(dsn) {
		return openPostgres(ctx, dsn, opt)
	}
	return openSQLite(ctx, dsn, opt)
}

// sqliteConns is the size of the SQLite connection pool.
const sqliteConns = 16

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
	if err := enableQPSG(); err != nil { // before the first connection (qpsg.go)
		return nil, err
	}
	sync := "NORMAL"
	if opt.SyncFull {
		sync = "FULL"
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	q.Set("_txlock", "immediate")
	q.Set("_synchronous", sync)
	// Keep each connection's prepared statements: without the cache every
	// query is parsed and planned again, a third of the CPU of a chat
	// message (portal-bench, cmd/portal-bench).
	q.Set("_stmt_cache_size", "64")
	dsn := "file:" + path + "?" + q.Encode()
	// Writers queue in Go rather than in SQLite's busy handler (gate.go).
	// Checkpoints run beside them, not inside their commits (checkpoint).
	// Each connection's page cache is 1 MiB instead of 2: in WAL mode
	// SQLite empties it whenever another connection has committed, so under
	// chat traffic it holds little more than one statement's pages.
	drv := &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec(`PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -1024`, nil)
		return err
	}}
	g := newGate()
	d := sqlx.NewDb(sql.OpenDB(&gatedConnector{dsn: dsn, drv: drv, gate: g}), "sqlite3")
	if err := d.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: open %s: %w", path, err)
	}
	go checkpoint(d, g, checkpointEvery, restartFrames)
	// At most 16 connections, all kept open. SQLite reads are CPU work on
	// this process's cores, so more connections add no speed, only memory:
	// each holds its own page cache, prepared statements and copy of the
	// schema. Unbounded, a storm of websocket handshakes opened 80 and kept
	// 48 (with the slimmer sockets beside it, idle RSS per socket went from
	// 127 to 55 KB at 1,000 sockets; portal-bench). Closing and reopening
	// instead costs more: file open, schema parse, cold caches (2 % of the
	// CPU at 1,000 msg/s with 16 idle out of an unbounded pool). Nothing
	// holds one connection while it waits for another (the suite passes
	// with a pool of 2, but for tests that hold a transaction open on
	// purpose), so a bound only makes work queue in Go, under its deadline.
	d.SetMaxOpenConns(sqliteConns)
	d.SetMaxIdleConns(sqliteConns)
	if err := migrate(ctx, d, SQLite); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: migrate %s: %w", path, err)
	}
	return d, nil
}

// openPostgres opens a PostgreSQL database through pgx's database/sql
// driver ("pgx", which sqlx's Rebind maps to $1, $2, ...).
func openPostgres(ctx context.Context, dsn string, opt Options) (*sqlx.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The error quotes the URL, password included: say less.
		return nil, errors.New("db: the PostgreSQL URL cannot be parsed")
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	// Instants come back in UTC, as they do from SQLite, so that values
	// read from either database compare and print the same.
	utc := stdlib.OptionAfterConnect(func(_ context.Context, c *pgx.Conn) error {
		c.TypeMap().RegisterType(&pgtype.Type{
			Name: "timestamptz", OID: pgtype.TimestamptzOID,
			Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC},
		})
		return nil
	})
	d := sqlx.NewDb(stdlib.OpenDB(*cfg, utc), "pgx")
	maxConns := opt.MaxConns
	if maxConns <= 0 {
		maxConns = 20
	}
	d.SetMaxOpenConns(maxConns)
	d.SetMaxIdleConns(min(maxConns, 10))
	// Recycle connections now and then, so that a failover or a
	// rebalanced connection pooler is picked up without a restart.
	d.SetConnMaxLifetime(30 * time.Minute)
	d.SetConnMaxIdleTime(5 * time.Minute)
	if err := d.PingContext(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: open %s: %w", where, err)
	}
	if err := migratePostgres(ctx, d); err != nil {
		d.Close()
		return nil, fmt.Errorf("db: migrate %s: %w", where, err)
	}
	return d, nil
}

// migrationLock is the key of the PostgreSQL advisory lock held while
// migrating ("fp-migr" in ASCII), so that instances starting at once take
// turns: the first applies the migrations, the others then find them done.
const migrationLock int64 = 0x66702d6d69677200

// migratePostgres runs migrate holding a session advisory lock on one
// dedicated connection, and every migration's transaction on that same
// connection. If the process dies, PostgreSQL releases the lock with the
// session.
func migratePostgres(ctx context.Context, d *sqlx.DB) (err error) {
	conn, err := d.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// Unlock even if ctx is done; a failed unlock must not leave the
		// lock held by a pooled connection, so that one is discarded.
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, uerr := conn.ExecContext(uctx, `SELECT pg_advisory_unlock($1)`, migrationLock); uerr != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("release the migration lock: %w", uerr))
		}
	}()
	return migrate(ctx, conn, Postgres)
}

// migrator is what migrate needs: a database, or one connection of it.
type migrator interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error)
}

// migrate applies, in name order, every migration of dialect that is not
// yet recorded in schema_migrations, each in its own transaction.
func migrate(ctx context.Context, d migrator, dialect string) error {
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

func applyOne(ctx context.Context, d migrator, name string) error {
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
	names, err := fs.Glob(migrations, "migrations/"+Dialect(d)+"/*.sql")
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
