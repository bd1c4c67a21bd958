package messaging

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// Group commit. SQLite has one writer at a time, and what a write
// transaction costs is mostly its commit (the WAL frames of every page it
// touched), not its statements. Chat traffic is many small writes from many
// goroutines at once: a message, the audit row of the check before it. So
// writes that arrive while a transaction is committing wait together, and
// the next transaction carries all of them: the first writer to find no
// transaction running leads it, the others queue behind it and are answered
// when it commits. Nobody is answered before their write is committed, so
// an acknowledgement still means "on disk" (crash-safe in WAL mode).
//
// Each write runs inside its own savepoint, so one that fails (a resend's
// conflict, bad data) is rolled back alone and the others commit. If the
// commit itself fails, every write of the batch gets the error and none is
// stored.
//
// On PostgreSQL writes are not batched: each is its own transaction, as
// before. Concurrent writers are what PostgreSQL is good at, and a batch
// holding row locks of many conversations could deadlock with another
// instance's batch.

// maxBatch bounds the writes of one transaction.
const maxBatch = 128

// batchTimeout bounds one batch's transaction; it is not any one caller's,
// since it carries others' writes too.
const batchTimeout = 10 * time.Second

// Committer runs write transactions, batched on SQLite. Get the one for a
// database with CommitterFor, so every store of a database batches together.
type Committer struct {
	db    *sqlx.DB
	batch bool // false on PostgreSQL: every write is its own transaction

	mu      sync.Mutex
	queue   []*write
	leading bool // a caller is committing batches
}

// write is one caller's part of a batch.
type write struct {
	ctx  context.Context
	fn   func(ctx context.Context, tx *sqlx.Tx) error
	done chan error
}

var committers sync.Map // *sqlx.DB -> *Committer

// CommitterFor returns the Committer of db, shared by every caller that
// writes to db.
func CommitterFor(db *sqlx.DB) *Committer {
	if c, ok := committers.Load(db); ok {
		return c.(*Committer)
	}
	c, _ := committers.LoadOrStore(db, &Committer{db: db, batch: db.DriverName() != "pgx"})
	return c.(*Committer)
}

// Do runs fn in a write transaction and returns once that transaction has
// committed (nil, or fn's error if fn failed and its changes were rolled
// back) or failed (the error; nothing of fn's is stored). fn may run in a
// transaction with other callers' writes: it must use only tx, must not
// commit or roll it back, and its error undoes only its own changes.
func (c *Committer) Do(ctx context.Context, fn func(ctx context.Context, tx *sqlx.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx.Value(inWrite{}) != nil {
		// The outer write's transaction holds the write lock: this one
		// would wait for it for ever.
		return errors.New("messaging: Committer.Do called from inside a write")
	}
	if !c.batch {
		return c.single(ctx, fn)
	}
	w := &write{ctx: ctx, fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, w)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()
	if lead {
		// The leader is a goroutine of its own, so that no caller is kept
		// past its own write by the queue behind it.
		go c.lead()
	}
	// A write that is queued is run: its caller waits for the outcome even
	// if ctx ends meanwhile, or it could not know whether it was stored.
	return <-w.done
}

// lead commits batches until the queue is empty.
func (c *Committer) lead() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), maxBatch)
		if n == 0 {
			c.leading = false
			c.mu.Unlock()
			return
		}
		batch := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.mu.Unlock()
		c.commit(batch)
	}
}

// commit runs batch in one transaction and answers every write in it.
func (c *Committer) commit(batch []*write) {
	// Every write runs under the batch's context, not its caller's: a
	// caller that gives up (a closed tab) must not interrupt a statement,
	// which would make SQLite roll back the whole batch. A write whose
	// caller gave up before it started is skipped, and told so; one that
	// has started is finished.
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), inWrite{}, true), batchTimeout)
	defer cancel()
	errs := make([]error, len(batch))
	err := func() error {
		tx, err := c.db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() // no-op after Commit
		if len(batch) == 1 {
			// Alone in the transaction, a write needs no savepoint: its
			// error rolls the transaction back.
			if errs[0] = batch[0].ctx.Err(); errs[0] != nil {
				return errWriteFailed
			}
			if errs[0] = run(ctx, tx, batch[0]); errs[0] != nil {
				return errWriteFailed
			}
			return tx.Commit()
		}
		// One Exec per boundary between writes: it closes the last write's
		// savepoint, keeping or undoing that write, and opens the next.
		closing := "" // what closes the open savepoint; "" while none is open
		for i, w := range batch {
			if err := w.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if _, err := tx.ExecContext(ctx, closing+`SAVEPOINT write`); err != nil {
				return err
			}
			errs[i] = run(ctx, tx, w)
			closing = `RELEASE SAVEPOINT write; `
			if errs[i] != nil {
				closing = `ROLLBACK TO SAVEPOINT write; RELEASE SAVEPOINT write; `
			}
		}
		if closing != "" {
			if _, err := tx.ExecContext(ctx, closing); err != nil {
				return err
			}
		}
		return tx.Commit()
	}()
	for i, w := range batch {
		switch {
		case errors.Is(err, errWriteFailed):
			w.done <- errs[i] // the only write: its own error, nothing stored
		case err != nil:
			w.done <- fmt.Errorf("%w: %w", ErrUnavailable, err)
		default:
			w.done <- errs[i]
		}
	}
}

// inWrite marks the context a write runs under.
type inWrite struct{}

// run runs w's function in tx. A panic in it is the write's error: the
// batch carries other people's writes and the leader must go on.
func run(ctx context.Context, tx *sqlx.Tx, w *write) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: a write panicked", ErrUnavailable)
		}
	}()
	return w.fn(ctx, tx)
}

// single runs fn in a transaction of its own.
func (c *Committer) single(ctx context.Context, fn func(ctx context.Context, tx *sqlx.Tx) error) error {
	tx, err := c.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer tx.Rollback() // no-op after Commit
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// errWriteFailed: a batch's only write failed and was rolled back with
// the transaction; its caller gets the write's own error.
var errWriteFailed = errors.New("messaging: the write failed")

// errResend is how InsertMessage's write says "already stored".
var errResend = errors.New("messaging: resend")
