package db

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

func TestOpen_migratesOnceAndIsReady(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "portal.db")
	d, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Ready(ctx, d); err != nil {
		t.Errorf("Ready after Open = %v, want nil", err)
	}
	var mode string
	if err := d.Get(&mode, `PRAGMA journal_mode`); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (err %v), want wal", mode, err)
	}
	var fk int
	if err := d.Get(&fk, `PRAGMA foreign_keys`); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d (err %v), want 1", fk, err)
	}
	var n int
	if err := d.Get(&n, `SELECT COUNT(*) FROM schema_migrations`); err != nil || n == 0 {
		t.Fatalf("schema_migrations has %d rows (err %v)", n, err)
	}
	d.Close()

	// Opening again applies nothing twice.
	d, err = Open(ctx, path, Options{SyncFull: true})
	if err != nil {
		t.Fatalf("second Open = %v", err)
	}
	defer d.Close()
	var again int
	if err := d.Get(&again, `SELECT COUNT(*) FROM schema_migrations`); err != nil || again != n {
		t.Errorf("schema_migrations after reopening = %d (err %v), want %d", again, err, n)
	}
	var sync int
	if err := d.Get(&sync, `PRAGMA synchronous`); err != nil || sync != 2 {
		t.Errorf("synchronous with SyncFull = %d (err %v), want 2 (FULL)", sync, err)
	}
}

func TestOpen_refusesInMemory(t *testing.T) {
	for _, dsn := range []string{"", ":memory:", "file::memory:?cache=shared"} {
		if _, err := Open(context.Background(), dsn, Options{}); err == nil || !strings.Contains(err.Error(), "in-memory") {
			t.Errorf("Open(%q) = %v, want an in-memory refusal", dsn, err)
		}
	}
}

func TestReady_failsWhenMigrationsAreMissing(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "portal.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.MustExec(`DELETE FROM schema_migrations WHERE name = (SELECT MAX(name) FROM schema_migrations)`)
	if err := Ready(ctx, d); err == nil {
		t.Error("Ready with a migration missing = nil, want an error")
	}
	d.Close()
	if err := Ready(ctx, d); err == nil {
		t.Error("Ready on a closed database = nil, want an error")
	}
}

func TestOpen_keepsQueryPlansAcrossBindings(t *testing.T) {
	openTemp(t) // registers the guarantee for every connection opened after
	// Without the guarantee go-sqlite3 re-plans most statements on every
	// execution (qpsg.go).
	if !qpsgOfNewConnection() {
		t.Error("a new SQLite connection has no query planner stability guarantee")
	}
}

// openTemp opens a migrated SQLite database in a file of the test's own,
// closed when the test ends.
func openTemp(t *testing.T) *sqlx.DB {
	t.Helper()
	d, err := Open(context.Background(), filepath.Join(t.TempDir(), "portal.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
