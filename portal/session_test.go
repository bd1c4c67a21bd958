package portal

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestSessions_sweep: the sweep ends every expired session, past one IN
// list's worth, names each user who lost one once, and leaves a session
// in use alone. A sweep that finds nothing to end waits for no writer: it
// returns while another transaction holds the write lock.
func TestSessions_sweep(t *testing.T) {
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

	ended, err := e.store.DeleteExpiredSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for key, id := range e.users {
		if key != "leila" {
			want = append(want, id) // every demo person has a session from newEnv
		}
	}
	slices.Sort(want)
	if !slices.Equal(ended, want) {
		t.Errorf("the sweep ended the sessions of %d users %v, want each of the %d others than leila once, sorted", len(ended), ended, len(want))
	}
	var left []string
	if err := e.db.Select(&left, `SELECT user_id FROM sessions`); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(left, []string{e.users["leila"]}) {
		t.Errorf("sessions left after the sweep: %v, want only leila's", left)
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
