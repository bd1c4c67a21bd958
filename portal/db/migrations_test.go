package db

import (
	"context"
	"database/sql"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"testing"
	"time"

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
	d := migratedBefore(t, "0010")
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

// migratedBefore opens a new SQLite database with the migrations before
// the one named first, for a test of what that one does to existing rows.
func migratedBefore(t *testing.T, first string) *sqlx.DB {
	t.Helper()
	d, err := sqlx.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "portal.db")+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	d.MustExec(`CREATE TABLE schema_migrations (name TEXT PRIMARY KEY)`)
	names, err := fs.Glob(migrations, "migrations/sqlite/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if path.Base(name) >= first {
			break
		}
		if err := applyOne(context.Background(), d, name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return d
}

// TestMigrations_0011keepsLastText: each conversation's newest text (not
// an automatic reply) is filled in from the messages already stored, and
// kept by the trigger from then on, whatever order messages arrive in.
func TestMigrations_0011keepsLastText(t *testing.T) {
	d := migratedBefore(t, "0011")
	d.MustExec(`INSERT INTO offices (id, name, municipality, phone, emergency_phone) VALUES ('o', 'O', 'M', '1', '2')`)
	d.MustExec(`INSERT INTO users (id, kind, name, created_at) VALUES
		('fam', 'citizen', 'F', '2026-01-01'), ('cw', 'caseworker', 'C', '2026-01-01')`)
	d.MustExec(`INSERT INTO cases (id, reference, office_id, child_name, status, opened_at, updated_at)
		VALUES ('c', 'R', 'o', 'E', 'received', '2026-01-01', '2026-01-01')`)
	d.MustExec(`INSERT INTO conversations (id, case_id, kind, last_seq, created_at) VALUES
		('talk', 'c', 'party', 3, '2026-01-01'), ('auto', 'c', 'party', 1, '2026-01-01'),
		('late', 'c', 'party', 0, '2026-01-01'), ('none', 'c', 'party', 0, '2026-01-01')`)
	insert := `INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, kind, created_at) VALUES (?, ?, ?, ?, ?, 'x', ?, ?)`
	d.MustExec(insert, "t1", "talk", 1, "cw", "t1", "text", "2026-01-02 10:00:00+00:00")
	d.MustExec(insert, "t2", "talk", 2, "fam", "t2", "text", "2026-01-02 11:00:00+00:00")
	d.MustExec(insert, "t3", "talk", 3, "cw", "t3", "auto_reply", "2026-01-02 11:00:01+00:00")
	d.MustExec(insert, "a1", "auto", 1, "cw", "a1", "auto_reply", "2026-01-02 12:00:00+00:00")

	if err := migrate(context.Background(), d, SQLite); err != nil {
		t.Fatal(err)
	}
	type last struct {
		Seq  sql.NullInt64  `db:"last_text_seq"`
		Role sql.NullString `db:"last_text_role"`
		At   sql.NullTime   `db:"last_text_at"`
	}
	get := func(conv string) last {
		t.Helper()
		var l last
		if err := d.Get(&l, `SELECT last_text_seq, last_text_role, last_text_at FROM conversations WHERE id = ?`, conv); err != nil {
			t.Fatal(err)
		}
		return l
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.DateTime+"Z07:00", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	check := func(conv string, seq int64, role, when string) {
		t.Helper()
		l := get(conv)
		if l.Seq.Int64 != seq || l.Role.String != role || !l.At.Time.Equal(at(when)) {
			t.Errorf("%s: last text = seq %v, %v, %v; want seq %d, %s, %s", conv, l.Seq, l.Role, l.At, seq, role, when)
		}
	}
	// Filled in from what was stored: the family's, not the automatic reply.
	check("talk", 2, "citizen", "2026-01-02 11:00:00+00:00")
	if l := get("auto"); l.Seq.Valid || l.Role.Valid || l.At.Valid {
		t.Errorf("auto: last text = %+v, want none (only an automatic reply)", l)
	}
	// Kept from then on: a new text replaces it, an automatic reply does not.
	d.MustExec(insert, "t4", "talk", 4, "cw", "t4", "text", "2026-01-03 09:00:00+00:00")
	d.MustExec(insert, "t5", "talk", 5, "cw", "t5", "auto_reply", "2026-01-03 09:00:01+00:00")
	check("talk", 4, "caseworker", "2026-01-03 09:00:00+00:00")
	// An older text stored after a newer one does not replace it.
	d.MustExec(insert, "l2", "late", 2, "fam", "l2", "text", "2026-01-04 10:00:00+00:00")
	d.MustExec(insert, "l1", "late", 1, "cw", "l1", "text", "2026-01-04 09:00:00+00:00")
	check("late", 2, "citizen", "2026-01-04 10:00:00+00:00")
	if l := get("none"); l.Seq.Valid {
		t.Errorf("none: last text = %+v, want none", l)
	}
}
