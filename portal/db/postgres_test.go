package db_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"familieportal/portal/db"
	"familieportal/portal/db/dbtest"
)

// TestOpen_postgresConcurrentStarts: instances starting at once on an
// empty database take turns (advisory lock); each migration is applied
// once, and every instance ends up ready.
func TestOpen_postgresConcurrentStarts(t *testing.T) {
	dsn := dbtest.EmptyPostgres(t)
	ctx := context.Background()
	const instances = 4
	var wg sync.WaitGroup
	errs := make([]error, instances)
	for i := range instances {
		wg.Go(func() {
			d, err := db.Open(ctx, dsn, db.Options{MaxConns: 2})
			if err != nil {
				errs[i] = err
				return
			}
			defer d.Close()
			errs[i] = db.Ready(ctx, d)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	d, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if db.Dialect(d) != db.Postgres {
		t.Errorf("Dialect = %q, want %q", db.Dialect(d), db.Postgres)
	}
	var applied []string
	if err := d.Select(&applied, `SELECT name FROM schema_migrations ORDER BY name`); err != nil {
		t.Fatal(err)
	}
	want, err := filepath.Glob("migrations/postgres/*.sql") // the names db embeds
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(applied, want) {
		t.Errorf("schema_migrations = %v, want each of %v once", applied, want)
	}
	var lock bool
	if err := d.Get(&lock, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_database b ON b.oid = l.database
		WHERE l.locktype = 'advisory' AND b.datname = current_database())`); err != nil || lock {
		t.Errorf("an advisory lock is still held after migrating (err %v)", err)
	}
}

// TestPostgres_appendOnly: the database itself refuses to change or remove
// audit rows and the integration feed's, and to change or delete messages
// outside their case's deletion, as on SQLite.
func TestPostgres_appendOnly(t *testing.T) {
	dbtest.PostgresURL(t)
	d := dbtest.Open(t, db.Postgres)
	d.MustExec(`INSERT INTO audit (at, action, outcome) VALUES (now(), 'test', 'allowed')`)
	for _, stmt := range []string{
		`UPDATE audit SET outcome = 'denied'`,
		`DELETE FROM audit`,
		`TRUNCATE audit`,
		`INSERT INTO audit (id, at, action, outcome) VALUES (1000, now(), 'test', 'allowed')`,
	} {
		if _, err := d.Exec(stmt); err == nil {
			t.Errorf("%s succeeded, want an error", stmt)
		}
	}
	var n int
	if err := d.Get(&n, `SELECT COUNT(*) FROM audit`); err != nil || n != 1 {
		t.Errorf("audit rows = %d (err %v), want 1", n, err)
	}
	// The integration feed likewise (a reader's cursor must never skip).
	d.MustExec(`INSERT INTO api_feed (office_id, kind, object_id, user_id, at) VALUES ('o', 'message', 'm', 'u', now())`)
	for _, stmt := range []string{
		`UPDATE api_feed SET kind = 'access_request'`,
		`DELETE FROM api_feed`,
		`TRUNCATE api_feed`,
	} {
		if _, err := d.Exec(stmt); err == nil {
			t.Errorf("%s succeeded, want an error", stmt)
		}
	}

	seedConversation(t, d)
	d.MustExec(`INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, kind, created_at)
		VALUES ('m', 'v', 1, 'u', 'x', 'hei', 'text', now())`)
	for _, stmt := range []string{
		`UPDATE messages SET body = 'endret'`,
		`DELETE FROM messages`,
		`TRUNCATE messages CASCADE`,
		`DELETE FROM conversations`,
		`UPDATE conversations SET last_seq = 0`,
		`UPDATE conversations SET case_id = 'other'`,
	} {
		if _, err := d.Exec(stmt); err == nil {
			t.Errorf("%s succeeded, want an error", stmt)
		}
	}
	// Retention: deleting the case takes its conversations and messages.
	d.MustExec(`DELETE FROM cases WHERE id = 'c'`)
	if err := d.Get(&n, `SELECT COUNT(*) FROM messages`); err != nil || n != 0 {
		t.Errorf("messages after deleting the case = %d (err %v), want 0", n, err)
	}
}

// seedConversation adds office o, citizen u, case c and its conversation v.
func seedConversation(t *testing.T, d *sqlx.DB) {
	t.Helper()
	d.MustExec(`INSERT INTO offices (id, name, municipality, phone, emergency_phone) VALUES ('o', 'O', 'M', '1', '2')`)
	d.MustExec(`INSERT INTO users (id, kind, name, created_at) VALUES ('u', 'citizen', 'U', now())`)
	d.MustExec(`INSERT INTO cases (id, reference, office_id, child_name, status, opened_at, updated_at)
		VALUES ('c', 'R', 'o', 'E', 'received', now(), now())`)
	d.MustExec(`INSERT INTO conversations (id, case_id, kind, last_seq, created_at) VALUES ('v', 'c', 'party', 1, now())`)
}

// TestPostgres_lastTextTrigger: a text stored by any means becomes its
// conversation's newest text, an automatic reply or an older text does
// not (migration 0011's trigger, as on SQLite).
func TestPostgres_lastTextTrigger(t *testing.T) {
	dbtest.PostgresURL(t)
	d := dbtest.Open(t, db.Postgres)
	seedConversation(t, d)
	d.MustExec(`INSERT INTO users (id, kind, name, created_at) VALUES ('w', 'caseworker', 'W', now())`)
	insert := `INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, kind, created_at)
		VALUES ($1, 'v', $2, $3, $1, 'x', $4, $5)`
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	d.MustExec(insert, "m2", 2, "u", "text", at)
	d.MustExec(insert, "m3", 3, "w", "auto_reply", at.Add(time.Second))
	d.MustExec(insert, "m1", 1, "w", "text", at.Add(-time.Hour))
	var last struct {
		Seq  int64     `db:"last_text_seq"`
		At   time.Time `db:"last_text_at"`
		Role string    `db:"last_text_role"`
	}
	if err := d.Get(&last, `SELECT last_text_seq, last_text_at, last_text_role FROM conversations WHERE id = 'v'`); err != nil {
		t.Fatal(err)
	}
	if last.Seq != 2 || !last.At.Equal(at) || last.Role != "citizen" {
		t.Errorf("last text = %+v, want seq 2 at %v by a citizen", last, at)
	}
}

// TestPostgres_schemaMatchesSQLite: both dialects' migrations make the same
// tables with the same columns, so the stores' portable SQL finds them.
func TestPostgres_schemaMatchesSQLite(t *testing.T) {
	dbtest.PostgresURL(t)
	lite := dbtest.Open(t, db.SQLite)
	pg := dbtest.Open(t, db.Postgres)

	columns := map[string][]string{} // table -> columns, SQLite
	var tables []string
	if err := lite.Select(&tables, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`); err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		var cols []string
		if err := lite.Select(&cols, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, tb); err != nil {
			t.Fatal(err)
		}
		columns[tb] = cols
	}
	pgColumns := map[string][]string{}
	var rows []struct {
		Table  string `db:"table_name"`
		Column string `db:"column_name"`
	}
	if err := pg.Select(&rows, `
		SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		pgColumns[r.Table] = append(pgColumns[r.Table], r.Column)
	}
	for _, tb := range slices.Sorted(maps.Keys(columns)) {
		if !slices.Equal(columns[tb], pgColumns[tb]) {
			t.Errorf("table %s: SQLite columns %v, PostgreSQL %v", tb, columns[tb], pgColumns[tb])
		}
	}
	for tb := range pgColumns {
		if _, ok := columns[tb]; !ok {
			t.Errorf("table %s exists only on PostgreSQL", tb)
		}
	}
}
