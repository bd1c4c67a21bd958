// Package dbtest gives tests a fresh, migrated database of either dialect,
// as net/http/httptest gives them a server.
//
// SQLite is always there (a file in t.TempDir). PostgreSQL is used when
// PORTAL_TEST_POSTGRES names a server (postgres://user:password@host:port/db)
// on which the tests may create and drop databases; `make test` starts a
// throwaway one (.ci/with-postgres). Every test gets its own database,
// created from scratch and dropped when the test ends, so tests stay
// independent and may run in parallel.
//
// A package whose tests should run on both databases runs them twice from
// TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.EachDialect(m).Run()) }
//
// and opens its databases with Open(t, Current()) (or DSN). Under CI=true a
// missing PostgreSQL fails the run instead of skipping it.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"familieportal/portal/db"
)

// EnvPostgres is the environment variable naming the PostgreSQL server.
const EnvPostgres = "PORTAL_TEST_POSTGRES"

// current is the dialect of the run in progress (see EachDialect).
var current atomic.Value

// Current returns the dialect the package's tests are running on now:
// db.SQLite, or db.Postgres during EachDialect's second run.
func Current() string {
	if d, ok := current.Load().(string); ok {
		return d
	}
	return db.SQLite
}

// Dialects returns the dialects tests run on: SQLite, and PostgreSQL when
// PORTAL_TEST_POSTGRES is set.
func Dialects() []string {
	if os.Getenv(EnvPostgres) == "" {
		return []string{db.SQLite}
	}
	return []string{db.SQLite, db.Postgres}
}

// TestingM is what EachDialect needs of *testing.M (and what
// go.uber.org/goleak's VerifyTestMain takes).
type TestingM interface{ Run() int }

type eachDialect struct{ m TestingM }

// EachDialect wraps m so that Run runs every test once per dialect of
// Dialects, SQLite first, and returns a failing exit code if any run fails.
// Under CI=true without PORTAL_TEST_POSTGRES it fails.
func EachDialect(m TestingM) TestingM { return eachDialect{m} }

func (e eachDialect) Run() int {
	code := 0
	for _, d := range Dialects() {
		current.Store(d)
		if d == db.Postgres {
			templ.use()
		}
		fmt.Printf("=== database: %s\n", d)
		if c := e.m.Run(); c != 0 {
			code = c
		}
	}
	current.Store(db.SQLite)
	if err := templ.drop(); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
	}
	if os.Getenv(EnvPostgres) == "" && os.Getenv("CI") == "true" {
		fmt.Fprintf(os.Stderr, "dbtest: CI=true but %s is not set: the PostgreSQL run is missing (run the tests through .ci/with-postgres, as make test does)\n", EnvPostgres)
		return 1
	}
	return code
}

// PostgresURL returns the PostgreSQL server's URL. Without one it skips t,
// or fails it under CI=true.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvPostgres)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is not set", EnvPostgres)
		}
		t.Skipf("no PostgreSQL: set %s (make test does)", EnvPostgres)
	}
	return u
}

// DSN returns the dsn of a new database of dialect for db.Open, which
// brings it up to date: a file path in t.TempDir, or the URL of a
// PostgreSQL database created for t and dropped when t ends (after the
// cleanups registered later, which close what the test opened). Under
// EachDialect the PostgreSQL database is a copy of one migrated once per
// run, which is much faster than migrating each; otherwise it is empty.
func DSN(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case db.SQLite:
		return filepath.Join(t.TempDir(), "test.db")
	case db.Postgres:
		server := PostgresURL(t)
		from, err := templ.name(server)
		if err != nil {
			t.Fatalf("dbtest: %v", err)
		}
		return newPostgresDatabase(t, server, from)
	}
	t.Fatalf("dbtest: unknown dialect %q", dialect)
	return ""
}

// EmptyPostgres returns the URL of a new, empty PostgreSQL database,
// dropped when t ends: for tests of the migrations themselves. Without a
// server it skips t (fails under CI=true).
func EmptyPostgres(t testing.TB) string {
	t.Helper()
	return newPostgresDatabase(t, PostgresURL(t), "")
}

// Open opens a new, migrated database of dialect, closed when t ends.
func Open(t testing.TB, dialect string) *sqlx.DB {
	t.Helper()
	d, err := db.Open(context.Background(), DSN(t, dialect), db.Options{})
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", dialect, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// newPostgresDatabase creates a database with a random name on the server
// at serverURL, as a copy of template if it is not "", and returns its
// URL; Cleanup drops it, ending any session still connected to it.
func newPostgresDatabase(t testing.TB, serverURL, template string) string {
	t.Helper()
	name := randomName("portal_test_")
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + template
	}
	if err := admin(serverURL, stmt); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() {
		if err := admin(serverURL, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: %v", err)
		}
	})
	return databaseURL(serverURL, name)
}

func randomName(prefix string) string {
	b := make([]byte, 8)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func databaseURL(serverURL, name string) string {
	u, err := url.Parse(serverURL)
	if err != nil {
		return serverURL // pgx reports the bad URL when it is used
	}
	u.Path = "/" + name
	return u.String()
}

// admin runs one statement on its own short-lived connection, so that
// nothing of dbtest's stays running between tests (goleak checks that).
// Copying a template fails while a session that just ended is still
// leaving it, so that is retried for a moment.
func admin(serverURL, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	for {
		_, err := conn.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55006" { // object_in_use
			select {
			case <-time.After(20 * time.Millisecond):
				continue
			case <-ctx.Done():
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
		return nil
	}
}

// templ is the migrated database that DSN copies under EachDialect.
var templ template

type template struct {
	mu      sync.Mutex
	enabled bool
	server  string
	db      string
	err     error
}

// use turns the template on for the rest of the run.
func (tp *template) use() {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.enabled = true
}

// name returns the template to copy on server, making it the first time;
// "" when templates are off.
func (tp *template) name(server string) (string, error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if !tp.enabled {
		return "", nil
	}
	if tp.db != "" || tp.err != nil {
		return tp.db, tp.err
	}
	name := randomName("portal_template_")
	if err := admin(server, "CREATE DATABASE "+name); err != nil {
		tp.err = err
		return "", err
	}
	tp.server, tp.db = server, name
	d, err := db.Open(context.Background(), databaseURL(server, name), db.Options{MaxConns: 1})
	if err != nil {
		tp.err = fmt.Errorf("migrate the template database: %w", err)
		return "", tp.err
	}
	d.Close()
	return name, nil
}

// drop drops the template, if one was made.
func (tp *template) drop() error {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.db == "" {
		return nil
	}
	err := admin(tp.server, "DROP DATABASE IF EXISTS "+tp.db+" WITH (FORCE)")
	tp.db, tp.enabled = "", false
	return err
}
