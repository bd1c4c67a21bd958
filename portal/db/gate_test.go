package db

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
)

// TestGate_writersQueue: many goroutines writing at once, in transactions
// that read and then write and in single statements, all succeed, and
// every write counts: the gate neither loses a writer nor lets two in.
func TestGate_writersQueue(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	d.MustExec(`CREATE TABLE counter (n INTEGER NOT NULL)`)
	d.MustExec(`CREATE TABLE log (w INTEGER NOT NULL, i INTEGER NOT NULL)`)
	d.MustExec(`INSERT INTO counter (n) VALUES (0)`)

	const writers, each = 32, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if w%2 == 0 {
					// Read, then write from what was read: a lost update
					// would show in the final count.
					tx, err := d.BeginTxx(ctx, nil)
					if err != nil {
						errs <- fmt.Errorf("begin: %w", err)
						continue
					}
					var n int
					if err := tx.Get(&n, `SELECT n FROM counter`); err != nil {
						tx.Rollback()
						errs <- err
						continue
					}
					if _, err := tx.Exec(`UPDATE counter SET n = ?`, n+1); err != nil {
						tx.Rollback()
						errs <- err
						continue
					}
					if err := tx.Commit(); err != nil {
						errs <- err
					}
				} else if _, err := d.Exec(`INSERT INTO log (w, i) VALUES (?, ?)`, w, i); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var n, logged int
	if err := d.Get(&n, `SELECT n FROM counter`); err != nil || n != writers/2*each {
		t.Errorf("counter = %d (err %v), want %d", n, err, writers/2*each)
	}
	if err := d.Get(&logged, `SELECT COUNT(*) FROM log`); err != nil || logged != writers/2*each {
		t.Errorf("log rows = %d (err %v), want %d", logged, err, writers/2*each)
	}
}

// TestGate_releasedOnEveryEnd: commit, rollback, a failed statement and a
// cancelled transaction each give the gate back, and a writer that cannot
// get in gives up with its context instead of hanging.
func TestGate_releasedOnEveryEnd(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	d.MustExec(`CREATE TABLE t (v INTEGER NOT NULL UNIQUE)`)

	// write must get in at once: if an earlier end kept the gate, it
	// fails with its deadline.
	write := func(what string, v int) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := d.ExecContext(wctx, `INSERT INTO t (v) VALUES (?)`, v); err != nil {
			t.Fatalf("write after %s: %v", what, err)
		}
	}

	tx := d.MustBegin()
	tx.MustExec(`INSERT INTO t (v) VALUES (1)`)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	write("commit", 2)

	tx = d.MustBegin()
	tx.MustExec(`INSERT INTO t (v) VALUES (3)`)
	tx.Rollback()
	write("rollback", 3)

	if _, err := d.Exec(`INSERT INTO t (v) VALUES (1)`); err == nil {
		t.Fatal("duplicate insert succeeded")
	}
	write("a failed statement", 4)

	cctx, cancel := context.WithCancel(ctx)
	tx, err := d.BeginTxx(cctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.MustExec(`INSERT INTO t (v) VALUES (5)`)

	// While that transaction holds the gate, another writer waits, and
	// gives up when its context ends.
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = d.ExecContext(short, `INSERT INTO t (v) VALUES (6)`)
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("write while a transaction is open = %v, want its context's deadline", err)
	}
	// A prepared statement writes through the gate as well.
	stmt, err := d.PreparexContext(ctx, `INSERT INTO t (v) VALUES (?)`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	short, stop = context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = stmt.ExecContext(short, 8)
	stop()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("prepared write while a transaction is open = %v, want its context's deadline", err)
	}
	cancel() // database/sql rolls the transaction back
	write("a cancelled transaction", 7)

	var got []int
	if err := d.Select(&got, `SELECT v FROM t ORDER BY v`); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[1 2 3 4 7]" {
		t.Errorf("rows = %v, want [1 2 3 4 7]", got)
	}
}

// TestCheckpoint_restartsLongWAL: SQLite starts the WAL over only when a
// writer finds all of it copied and no reader on it; under steady traffic
// some reader always is, and the WAL grows with every write. Past the
// limit, checkpoint copies the last pages with the writers held back and
// waits for the readers, so the next write starts the WAL over.
func TestCheckpoint_restartsLongWAL(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	d.MustExec(`CREATE TABLE t (n INTEGER NOT NULL)`)
	walPages := func() int64 {
		conn, err := d.Connx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, frames, _, err := walCheckpoint(ctx, conn, "PASSIVE")
		if err != nil {
			t.Fatal(err)
		}
		return frames
	}
	// The test's writes pass a gate of their own, which checkpointOnce
	// holds for its last pass.
	g := newGate()
	write := func(n int) {
		g.enter(ctx)
		defer g.leave()
		d.MustExec(`INSERT INTO t (n) VALUES (?)`, n)
	}
	for i := range 200 {
		write(i)
	}
	// A reader in the middle of a query, as there always is one under
	// traffic. It lets go once the checkpoint holds the gate (and waits
	// for it), or after the next write if the checkpoint never does.
	letGo := readMidQuery(t, d)
	var checkpointing atomic.Bool
	checkpointing.Store(true)
	go func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && checkpointing.Load(); {
			if len(g) == 1 { // the checkpoint holds the gate
				letGo()
				return
			}
			runtime.Gosched()
		}
	}()
	bg := background() // the passes on their own thread, as in checkpoint
	defer close(bg)
	err := checkpointOnce(d, g, 100, bg)
	checkpointing.Store(false)
	if err != nil {
		t.Fatal(err)
	}
	write(-1)
	letGo()
	if n := walPages(); n > 10 {
		t.Errorf("the WAL holds %d pages after the checkpoint and one write, want it started over", n)
	}
}

// TestCheckpoint_restartGivesUpOnAStayingReader: a reader that stays on
// the WAL (a slow client's replay) does not keep writers at the gate: the
// RESTART gives up after its wait, and its connection goes back to the
// pool with the busy timeout it came with.
func TestCheckpoint_restartGivesUpOnAStayingReader(t *testing.T) {
	ctx := context.Background()
	d := openTemp(t)
	d.MustExec(`CREATE TABLE t (n INTEGER NOT NULL)`)
	d.MustExec(`INSERT INTO t (n) VALUES (1), (2)`)
	letGo := readMidQuery(t, d)
	d.MustExec(`INSERT INTO t (n) VALUES (3)`) // the reader is on an older WAL

	conn, err := d.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := restartWAL(ctx, conn, 20*time.Millisecond); !errors.Is(err, errReadersStayed) {
		t.Fatalf("RESTART with a reader on the WAL = %v, want errReadersStayed", err)
	}
	var ms int64
	if err := conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&ms); err != nil || ms != busyTimeout.Milliseconds() {
		t.Errorf("busy timeout after the RESTART = %d ms (err %v), want %d", ms, err, busyTimeout.Milliseconds())
	}
	letGo()
	if err := restartWAL(ctx, conn, 20*time.Millisecond); err != nil {
		t.Errorf("RESTART once the reader is gone = %v, want nil", err)
	}
}

// readMidQuery starts a read of table t on a connection of its own and
// stops in the middle of it, so that the reader stays on the WAL. The
// returned function ends the read; the test's end does too.
func readMidQuery(t *testing.T, d *sqlx.DB) (letGo func()) {
	t.Helper()
	reader, err := d.Connx(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := reader.QueryContext(context.Background(), `SELECT n FROM t`)
	if err != nil {
		reader.Close()
		t.Fatal(err)
	}
	rows.Next()
	var once sync.Once
	letGo = func() { once.Do(func() { rows.Close(); reader.Close() }) }
	t.Cleanup(letGo)
	return letGo
}
