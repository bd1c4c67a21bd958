package db

import (
	"context"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jmoiron/sqlx"
)

// TestMigrations_everySQLiteMigrationHasAPostgresTwin: the dialects'
// migrations pair up by name, so a schema change made for one is not
// forgotten for the other (postgres_test.go checks that the schemas match).
func TestMigrations_everySQLiteMigrationHasAPostgresTwin(t *testing.T) {
	names := func(dialect string) []string {
		t.Helper()
		files, err := fs.Glob(migrations, "migrations/"+dialect+"/*.sql")
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = path.Base(f)
		}
		return files
	}
	lite, pg := names(SQLite), names(Postgres)
	if len(lite) == 0 || !slices.Equal(lite, pg) {
		t.Errorf("migrations differ:\n sqlite   %v\n postgres %v", lite, pg)
	}
}

// TestMigrations_0010keepsAuditAndFeed: rebuilding audit and api_feed
// without AUTOINCREMENT keeps every row with its id, new rows continue
// after the largest, both tables stay append-only, and the feed's triggers
// on other tables still add rows to it.
func TestMigrations_0010keepsAuditAndFeed(t *testing.T) {
	ctx := context.Background()
	d, err := sqlx.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "portal.db")+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.MustExec(`CREATE TABLE schema_migrations (name TEXT PRIMARY KEY)`)
	names, err := fs.Glob(migrations, "migrations/sqlite/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if path.Base(name) >= "0010" {
			break
		}
		if err := applyOne(ctx, d, name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Rows from before, with gaps: ids must survive as they are.
	d.MustExec(`INSERT INTO audit (id, at, action, outcome) VALUES (7, '2026-01-01', 'a', 'allowed'), (40, '2026-01-02', 'b', 'denied')`)
	d.MustExec(`INSERT INTO api_feed (id, office_id, kind, object_id, user_id, at) VALUES (3, 'o', 'message', 'm0', 'u', '2026-01-01')`)

	if err := migrate(ctx, d, SQLite); err != nil {
		t.Fatal(err)
	}
	var auditIDs, feedIDs []int64
	d.MustExec(`INSERT INTO audit (at, action, outcome) VALUES ('2026-01-03', 'c', 'allowed')`)
	if err := d.Select(&auditIDs, `SELECT id FROM audit ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if want := []int64{7, 40, 41}; !slices.Equal(auditIDs, want) {
		t.Errorf("audit ids = %v, want %v", auditIDs, want)
	}
	// The feed's trigger on messages still writes to the rebuilt table.
	d.MustExec(`INSERT INTO offices (id, name, municipality, phone, emergency_phone) VALUES ('o', 'O', 'M', '1', '2')`)
	d.MustExec(`INSERT INTO users (id, kind, name, created_at) VALUES ('u', 'citizen', 'U', '2026-01-01')`)
	d.MustExec(`INSERT INTO cases (id, reference, office_id, child_name, status, opened_at, updated_at)
		VALUES ('c', 'R', 'o', 'E', 'received', '2026-01-01', '2026-01-01')`)
	d.MustExec(`INSERT INTO conversations (id, case_id, kind, last_seq, created_at) VALUES ('v', 'c', 'party', 1, '2026-01-01')`)
	d.MustExec(`INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, kind, created_at)
		VALUES ('m1', 'v', 1, 'u', 'x', 'hei', 'text', '2026-01-03')`)
	if err := d.Select(&feedIDs, `SELECT id FROM api_feed ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	if want := []int64{3, 4}; !slices.Equal(feedIDs, want) {
		t.Errorf("feed ids = %v, want %v", feedIDs, want)
	}
	for _, stmt := range []string{
		`UPDATE audit SET outcome = 'denied'`,
		`DELETE FROM audit WHERE id = 41`,
		`UPDATE api_feed SET kind = 'access_request'`,
		`DELETE FROM api_feed WHERE id = 4`,
	} {
		if _, err := d.Exec(stmt); err == nil {
			t.Errorf("%s succeeded, want an error", stmt)
		}
	}
	var n int
	if err := d.Get(&n, `SELECT COUNT(*) FROM sqlite_sequence WHERE name IN ('audit', 'api_feed')`); err != nil || n != 0 {
		t.Errorf("sqlite_sequence rows for audit and api_feed = %d (err %v), want 0", n, err)
	}
}
