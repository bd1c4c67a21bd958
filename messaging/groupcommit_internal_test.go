package messaging

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"familieportal/portal/db"
)

// TestCommitter_oneCallerDoesNotSpoilTheBatch: writes that share a
// transaction stand alone. While a transaction elsewhere holds the write
// lock, three writes queue into one batch: one gives up (its caller's
// context ends inside the write), one panics, one is ordinary. The first
// and the last are stored and answered nil; the panic is that write's
// error alone. A write inside a write is refused instead of waiting for
// ever.
func TestCommitter_oneCallerDoesNotSpoilTheBatch(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "gc.db"), db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.MustExec(`CREATE TABLE t (v TEXT NOT NULL)`)
	c := &Committer{db: d, batch: true}
	insert := func(v string) func(context.Context, *sqlx.Tx) error {
		return func(ctx context.Context, tx *sqlx.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, v)
			return err
		}
	}

	holder := d.MustBegin() // holds the write lock: the leader waits, the rest queue
	first := make(chan error, 1)
	go func() { first <- c.Do(ctx, insert("first")) }()
	waitFor(t, "the leader to take the first write", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.leading && len(c.queue) == 0
	})

	cctx, cancel := context.WithCancel(ctx)
	results := make([]error, 3)
	var wg sync.WaitGroup
	fns := []func(context.Context, *sqlx.Tx) error{
		func(ctx context.Context, tx *sqlx.Tx) error {
			cancel() // the caller gives up while its write runs
			return insert("gave up")(ctx, tx)
		},
		func(context.Context, *sqlx.Tx) error { panic("a bug") },
		insert("ordinary"),
	}
	for i, fn := range fns {
		// One at a time into the queue, so the batch is in this order.
		before := queued(c)
		wg.Go(func() {
			doCtx := ctx
			if i == 0 {
				doCtx = cctx
			}
			results[i] = c.Do(doCtx, fn)
		})
		waitFor(t, "the write to queue", func() bool { return queued(c) == before+1 })
	}
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := <-first; err != nil {
		t.Errorf("first write = %v", err)
	}
	if results[0] != nil || results[2] != nil {
		t.Errorf("writes = %v, %v; want nil for the caller who gave up mid-write and for the ordinary one", results[0], results[2])
	}
	if results[1] == nil {
		t.Error("the panicking write = nil, want its error")
	}
	var got []string
	if err := d.Select(&got, `SELECT v FROM t ORDER BY rowid`); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != "first" || got[1] != "gave up" || got[2] != "ordinary" {
		t.Errorf("stored %v, want [first gave up ordinary]", got)
	}

	nested := c.Do(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return c.Do(ctx, insert("nested"))
	})
	if nested == nil {
		t.Error("a write inside a write = nil, want an error")
	}
}

func queued(c *Committer) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// waitFor waits until cond holds, for at most 5 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5 s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
