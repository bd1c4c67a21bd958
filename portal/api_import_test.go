package portal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// sight is what one person sees, through the real access check: per
// case (by child) the status, the document titles, whether the withheld
// notice shows, and the timeline notes.
type sight map[string][]string

// sightOf computes what u sees, with Store.Cases, Authorize and the reads
// a Grant allows — the same calls the pages make.
func sightOf(t *testing.T, s *Store, u User) sight {
	t.Helper()
	ctx := context.Background()
	out := sight{}
	cases, err := s.Cases(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		g, err := s.Authorize(ctx, u, c.ID, ActCaseView, "")
		if err != nil {
			t.Fatal(err)
		}
		o, err := s.Overview(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		lines := []string{"status " + string(o.Case.Status), fmt.Sprintf("withheld notice %v", o.Withheld)}
		ds, err := s.Documents(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			lines = append(lines, "document "+d.Title)
		}
		for _, d := range ds {
			// Each listed document also opens.
			if _, _, err := s.AuthorizeDocument(ctx, u, d.ID, ActDocumentRead); err != nil {
				t.Errorf("%s cannot open listed %q: %v", u.Name, d.Title, err)
			}
		}
		tl, err := s.Timeline(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tl {
			// Kinds and notes differ between the demo and the format, so
			// events are not compared; but no one may see an event about a
			// document they cannot see.
			for _, title := range []string{emmaMinutes, noahNote} {
				if strings.Contains(e.Note, title) && !slices.Contains(lines, "document "+title) {
					t.Errorf("%s sees an event about %q, which they may not see", u.Name, title)
				}
			}
		}
		slices.Sort(lines)
		out[c.ChildName] = lines
	}
	return out
}

// Importing the sample files reproduces the demo cast's access rules:
// every person sees exactly what they see in the demo — Jonas not the
// minutes withheld from him (but the notice), Leila not Noah's note (and
// no notice), the staff their cases.
func TestImport_reproducesDemoAccess(t *testing.T) {
	demo := newEnv(t, Options{})
	e := newFiksEnv(t)
	rep := e.importSamples()
	if rep.Created != 6+16 || rep.Documents != 10 {
		t.Errorf("import: %s; want 22 created, 10 documents", rep)
	}
	if again := e.importSamples(); again.Created != 0 || again.Updated != 0 || again.Unchanged != 22 {
		t.Errorf("second import: %s; want everything unchanged", again)
	}

	for _, who := range []string{"sara", "jonas", "noah", "leila", "maria", "per", "kari", "ola", "ingrid"} {
		du, err := demo.store.User(context.Background(), demo.users[who])
		if err != nil {
			t.Fatal(err)
		}
		want := sightOf(t, demo.store, du)
		var got sight
		switch {
		case e.staff[who] != "":
			u, err := e.store.User(context.Background(), e.staff[who])
			if err != nil {
				t.Fatal(err)
			}
			got = sightOf(t, e.store, u)
		case fiksPID[who] != "":
			got = sightOf(t, e.store, e.citizen(who))
		default:
			got = sight{} // Per is in no folder: the portal does not know him
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s sees after import:\n%v\nin the demo:\n%v", who, got, want)
		}
	}

	// The two rules the demo is known for, asked directly.
	ctx := context.Background()
	jonas, leila := e.citizen("jonas"), e.citizen("leila")
	if _, _, err := e.store.AuthorizeDocument(ctx, jonas, e.docOf(emmaMinutes), ActDocumentRead); !errors.Is(err, ErrNotFound) {
		t.Errorf("Jonas opening the withheld minutes: %v, want ErrNotFound", err)
	}
	if _, _, err := e.store.AuthorizeDocument(ctx, leila, e.docOf(noahNote), ActDocumentRead); !errors.Is(err, ErrNotFound) {
		t.Errorf("Leila opening Noah's note: %v, want ErrNotFound", err)
	}
	if _, _, err := e.store.AuthorizeDocument(ctx, e.citizen("noah"), e.docOf(noahNote), ActDocumentRead); err != nil {
		t.Errorf("Noah opening his note: %v", err)
	}
	// The national ids are nowhere in the database.
	for who, pid := range fiksPID {
		for _, q := range []string{`SELECT COUNT(*) FROM users WHERE name = ? OR pid_hash = ?`, `SELECT COUNT(*) FROM fiks_eksponert WHERE name = ? OR pid_hash = ?`} {
			if n := e.count(q, pid, pid); n != 0 {
				t.Errorf("%s's national id is stored in clear", who)
			}
		}
	}
	var due *string
	if err := e.db.Get(&due, `SELECT CAST(investigation_due AS TEXT) FROM cases WHERE child_name = 'Emma'`); err != nil || due == nil {
		t.Errorf("Emma's case has no investigation deadline (err %v)", err)
	}
}

// The import refuses a file it cannot name, and a folder without files.
func TestImport_layout(t *testing.T) {
	e := newFiksEnv(t)
	in, err := e.store.NewIngest(testPIDKey, e.officeID, "import")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Import(context.Background(), in, os.DirFS(dir)); err == nil {
		t.Error("an empty folder imported")
	}
	if err := os.MkdirAll(dir+"/mapper", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/mapper/sara.json", []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(context.Background(), in, os.DirFS(dir)); err == nil || !strings.Contains(err.Error(), "MELDINGID") {
		t.Errorf("a file without a meldingId: %v", err)
	}
	if _, err := e.store.NewIngest([]byte("short"), e.officeID, "import"); err == nil {
		t.Error("a short national-id key was accepted")
	}
}
