package portal

import (
	"context"
	"testing"
)

// TestStore_Overview_withheld pins who is told that something is withheld:
// the party it is withheld from, never another party, never staff — not
// even when a withholding row names the staff member.
func TestStore_Overview_withheld(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	emma := e.cases["emma"]
	withheld := func(who string) bool {
		t.Helper()
		u, err := e.store.User(ctx, e.users[who])
		if err != nil {
			t.Fatal(err)
		}
		g, err := e.store.Authorize(ctx, u, emma, ActCaseView, "")
		if err != nil {
			t.Fatal(err)
		}
		o, err := e.store.Overview(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		return o.Withheld
	}
	for who, want := range map[string]bool{"jonas": true, "sara": false, "kari": false} {
		if got := withheld(who); got != want {
			t.Errorf("Overview(%s on Emma's case).Withheld = %v, want %v", who, got, want)
		}
	}

	t.Run("staff named in a withholding row are still not told", func(t *testing.T) {
		e.db.MustExec(e.db.Rebind(`INSERT INTO document_withheld (document_id, user_id, reason) VALUES (?, ?, 'test')`),
			e.docs[emmaMinutes], e.users["kari"])
		if withheld("kari") {
			t.Error("Overview(kari on Emma's case).Withheld = true, want false")
		}
	})
}
