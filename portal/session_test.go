package portal

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestStore_DeleteExpiredSessions: the sweep ends every expired session,
// past one IN list's worth, names each user who lost one once, and leaves
// a session in use alone, also one used after the sweep found it expired.
// A sweep that finds nothing to end waits for no writer: it returns while
// another transaction holds the write lock.
func TestStore_DeleteExpiredSessions(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	now := time.Now().UTC()

	// Old sessions of three people, written as one transaction.
	tx := e.db.MustBegin()
	owners := []string{e.users["sara"], e.users["kari"], e.users["jonas"]}
	for i := range 2*inListMax + 1 {
		tx.MustExec(tx.Rebind(`INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
			fmt.Sprintf("old-%d", i), owners[i%len(owners)], now, now, now.Add(12*time.Hour))
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	later := now.Add(SessionIdle + time.Minute)
	e.store.now = func() time.Time { return later }
	// Leila used hers a minute ago.
	e.db.MustExec(e.db.Rebind(`UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?`), later.Add(-time.Minute), hashToken(e.tokens["leila"]))

	// Jonas's is found expired, then he uses it before it is ended.
	found, err := e.store.expiredSessions(ctx, later)
	if err != nil {
		t.Fatal(err)
	}
	jonas := hashToken(e.tokens["jonas"])
	if !slices.Contains(found, jonas) {
		t.Fatalf("jonas's idle session is not among the %d expired", len(found))
	}
	e.db.MustExec(e.db.Rebind(`UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?`), later, jonas)
	ended, err := e.store.endExpiredSessions(ctx, found, later)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := e.store.DeleteExpiredSessions(ctx); err != nil || len(again) != 0 {
		t.Errorf("a second sweep ended the sessions of %v (err %v), want none", again, err)
	}
	var want []string
	for key, id := range e.users {
		if key != "leila" {
			want = append(want, id) // every demo person has a session from newEnv; jonas has his old ones
		}
	}
	slices.Sort(want)
	if !slices.Equal(ended, want) {
		t.Errorf("the sweep ended the sessions of %d users %v, want each of the %d others than leila once, sorted", len(ended), ended, len(want))
	}
	var left []string
	if err := e.db.Select(&left, `SELECT token_hash FROM sessions ORDER BY token_hash`); err != nil {
		t.Fatal(err)
	}
	if want := []string{hashToken(e.tokens["leila"]), jonas}; !slices.Equal(left, slices.Sorted(slices.Values(want))) {
		t.Errorf("sessions left after the sweep: %v, want leila's and jonas's %v", left, want)
	}

	hold, err := e.db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback()
	if _, err := hold.ExecContext(ctx, hold.Rebind(`UPDATE users SET lang = ? WHERE id = ?`), "nn", e.users["kari"]); err != nil {
		t.Fatal(err)
	}
	waitless, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if ended, err := e.store.DeleteExpiredSessions(waitless); err != nil || len(ended) != 0 {
		t.Errorf("a sweep with nothing to end, beside a writer = %v, %v; want nothing, at once", ended, err)
	}
}
