package portal

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// TestCasePage_auditsInOneWrite: the case page's read decisions (the case,
// the chat's history) are written to the audit log together, and are the
// same entries as when each was written on its own. The read cursor's
// decision is written at once, before the cursor moves.
func TestCasePage_auditsInOneWrite(t *testing.T) {
	e := newChatEnv(t)
	emma := e.cases["emma"]
	conv := e.convs["emma/sara"]
	entries := func(who string) []string {
		var rows []struct{ Action, ObjectID, Outcome string }
		if err := e.db.Select(&rows, e.db.Rebind(`
			SELECT action, object_id AS objectid, outcome FROM audit
			WHERE actor_id = ? AND case_id = ? ORDER BY id`), e.users[who], emma); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r.Action+" "+r.ObjectID+" "+r.Outcome)
		}
		return out
	}

	// A new message from Kari, which the next page view marks as read.
	kariWrites := func() {
		e.db.MustExec(e.db.Rebind(`UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ?`), conv)
		e.db.MustExec(e.db.Rebind(`INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, kind, created_at)
			SELECT ?, id, last_seq, ?, ?, 'Ny melding', 'text', ? FROM conversations WHERE id = ?`),
			NewID(), e.users["kari"], NewID(), time.Now().UTC(), conv)
	}

	if rec := e.get("sara", "/cases/"+emma); rec.Code != http.StatusOK {
		t.Fatalf("GET case = %d, want 200", rec.Code)
	}
	want := []string{"chat.read " + conv + " allowed", "case.view  allowed", "chat.sync " + conv + " allowed"}
	if got := entries("sara"); !slices.Equal(got, want) {
		t.Errorf("audit after the case page =\n%q, want\n%q", got, want)
	}

	t.Run("a refused case is audited", func(t *testing.T) {
		if rec := e.get("per", "/cases/"+emma); rec.Code != http.StatusNotFound {
			t.Fatalf("GET case = %d, want 404", rec.Code)
		}
		if got, want := entries("per"), []string{"case.view  denied"}; !slices.Equal(got, want) {
			t.Errorf("audit = %q, want %q", got, want)
		}
	})

	t.Run("no page without its audit entries", func(t *testing.T) {
		if e.db.DriverName() != "sqlite3" {
			t.Skip("the failing trigger is written for SQLite")
		}
		cursor := func() int64 {
			var seq int64
			if err := e.db.Get(&seq, e.db.Rebind(`SELECT last_read_seq FROM conversation_members
				WHERE conversation_id = ? AND user_id = ?`), conv, e.users["sara"]); err != nil {
				t.Fatal(err)
			}
			return seq
		}
		before := cursor()
		kariWrites()
		e.db.MustExec(`CREATE TRIGGER audit_fails BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END`)
		defer e.db.MustExec(`DROP TRIGGER audit_fails`)
		if rec := e.get("sara", "/cases/"+emma); rec.Code != http.StatusInternalServerError {
			t.Errorf("GET case with a failing audit log = %d, want 500", rec.Code)
		}
		if after := cursor(); after != before {
			t.Errorf("read cursor moved from %d to %d without its audit entry", before, after)
		}
	})

	t.Run("nothing new: no cursor decision, no write", func(t *testing.T) {
		view := func() []string {
			t.Helper()
			n := len(entries("sara"))
			if rec := e.get("sara", "/cases/"+emma); rec.Code != http.StatusOK {
				t.Fatalf("GET case = %d, want 200", rec.Code)
			}
			return entries("sara")[n:]
		}
		view() // whatever was unread is read now
		if got, want := view(), []string{"case.view  allowed", "chat.sync " + conv + " allowed"}; !slices.Equal(got, want) {
			t.Errorf("audit of a view with nothing unread = %q, want %q", got, want)
		}
		kariWrites() // the next view moves the cursor again, audited first
		if got, want := view(), []string{"chat.read " + conv + " allowed", "case.view  allowed", "chat.sync " + conv + " allowed"}; !slices.Equal(got, want) {
			t.Errorf("audit of a view with a new message = %q, want %q", got, want)
		}
		var cursor, last int64
		if err := e.db.Get(&cursor, e.db.Rebind(`SELECT last_read_seq FROM conversation_members WHERE conversation_id = ? AND user_id = ?`), conv, e.users["sara"]); err != nil {
			t.Fatal(err)
		}
		if err := e.db.Get(&last, e.db.Rebind(`SELECT last_seq FROM conversations WHERE id = ?`), conv); err != nil {
			t.Fatal(err)
		}
		if cursor != last {
			t.Errorf("after viewing Kari's new message the cursor is %d, want %d", cursor, last)
		}
	})
}
