package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/mattn/go-sqlite3"
)

// SQLite lets one writer in at a time. Left to itself, every other writer
// of the process retries in SQLite's busy handler, which sleeps 1 to 100 ms
// between tries and lets no one queue: under load most of the time goes on
// sleeping, the order is random, and a writer can starve until the busy
// timeout gives up ("database is locked"). So this process's writers queue
// in Go instead, first come first served, behind a gate of one: a
// transaction (all of them are BEGIN IMMEDIATE, see openSQLite) holds the
// gate from BEGIN to COMMIT or ROLLBACK, and a write outside a transaction
// for its one statement. Readers never wait for it: in WAL mode they do not
// block on the writer. Other processes (`portal import` beside a running
// server) still meet the busy handler, which stays on for them.

// gateWait bounds the wait for the gate, like the busy timeout: a writer
// that would wait longer fails with SQLITE_BUSY, as it would without the
// gate, rather than hang. A transaction that, by mistake, writes through
// the pool instead of through itself waits for its own gate; this turns
// that deadlock back into the error SQLite would give.
const gateWait = busyTimeout

// busyTimeout is how long SQLite's busy handler retries on a connection
// before a statement fails with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// errGateTimeout is what a writer gets after gateWait.
var errGateTimeout = sqlite3.Error{Code: sqlite3.ErrBusy}

// gate is the queue for the write lock, a channel holding one token.
type gate chan struct{}

func newGate() gate { return make(gate, 1) }

// enter waits for the gate, respecting ctx and gateWait.
func (g gate) enter(ctx context.Context) error {
	select {
	case g <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(gateWait)
	defer t.Stop()
	select {
	case g <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return errGateTimeout
	}
}

func (g gate) leave() { <-g }

// gatedConnector opens SQLite connections that pass writes through one
// gate.
type gatedConnector struct {
	dsn  string
	drv  *sqlite3.SQLiteDriver
	gate gate
}

func (c *gatedConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &gatedConn{SQLiteConn: conn.(*sqlite3.SQLiteConn), gate: c.gate}, nil
}

func (c *gatedConnector) Driver() driver.Driver { return c.drv }

// gatedConn is a SQLite connection whose writes pass the gate. database/sql
// uses a connection from one goroutine at a time, so inTx needs no lock.
type gatedConn struct {
	*sqlite3.SQLiteConn
	gate gate
	inTx bool // this connection holds the gate for a transaction
}

// The interfaces database/sql looks for, which the embedded connection
// has; the wrapper must not hide any of them.
var (
	_ driver.ConnBeginTx         = (*gatedConn)(nil)
	_ driver.ExecerContext       = (*gatedConn)(nil)
	_ driver.QueryerContext      = (*gatedConn)(nil)
	_ driver.ConnPrepareContext  = (*gatedConn)(nil)
	_ driver.Pinger              = (*gatedConn)(nil)
	_ driver.StmtExecContext     = (*gatedStmt)(nil)
	_ driver.StmtQueryContext    = (*gatedStmt)(nil)
	_ driver.Connector           = (*gatedConnector)(nil)
	_ interface{ Close() error } = (*gatedConn)(nil)
)

func (c *gatedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *gatedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.gate.enter(ctx); err != nil {
		return nil, err
	}
	tx, err := c.SQLiteConn.BeginTx(ctx, opts)
	if err != nil {
		c.gate.leave()
		return nil, err
	}
	c.inTx = true
	return &gatedTx{Tx: tx, conn: c}, nil
}

// ExecContext runs a statement; outside a transaction it holds the gate
// while it runs, since it may write.
func (c *gatedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if c.inTx {
		return c.SQLiteConn.ExecContext(ctx, query, args)
	}
	if err := c.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer c.gate.leave()
	return c.SQLiteConn.ExecContext(ctx, query, args)
}

// QueryContext runs a query; one that writes (INSERT … RETURNING) outside
// a transaction holds the gate while its rows are read.
func (c *gatedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if c.inTx || !writes(query) {
		return c.SQLiteConn.QueryContext(ctx, query, args)
	}
	if err := c.gate.enter(ctx); err != nil {
		return nil, err
	}
	rows, err := c.SQLiteConn.QueryContext(ctx, query, args)
	if err != nil {
		c.gate.leave()
		return nil, err
	}
	return &gatedRows{Rows: rows, gate: c.gate}, nil
}

// PrepareContext prepares a statement whose writes outside a transaction
// pass the gate too.
func (c *gatedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.SQLiteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &gatedStmt{SQLiteStmt: st.(*sqlite3.SQLiteStmt), conn: c, writes: writes(query)}, nil
}

func (c *gatedConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// gatedStmt is a prepared statement of a gatedConn.
type gatedStmt struct {
	*sqlite3.SQLiteStmt
	conn   *gatedConn
	writes bool
}

func (s *gatedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if s.conn.inTx {
		return s.SQLiteStmt.ExecContext(ctx, args)
	}
	if err := s.conn.gate.enter(ctx); err != nil {
		return nil, err
	}
	defer s.conn.gate.leave()
	return s.SQLiteStmt.ExecContext(ctx, args)
}

func (s *gatedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if s.conn.inTx || !s.writes {
		return s.SQLiteStmt.QueryContext(ctx, args)
	}
	if err := s.conn.gate.enter(ctx); err != nil {
		return nil, err
	}
	rows, err := s.SQLiteStmt.QueryContext(ctx, args)
	if err != nil {
		s.conn.gate.leave()
		return nil, err
	}
	return &gatedRows{Rows: rows, gate: s.conn.gate}, nil
}

func (c *gatedConn) Close() error {
	err := c.SQLiteConn.Close()
	if c.inTx {
		// database/sql rolls a transaction back before it closes the
		// connection; should it ever not, closing has now rolled it back
		// in SQLite, and the next writer can have the lock.
		c.inTx = false
		c.gate.leave()
	}
	return err
}

// writes reports whether query may change the database, by its first word.
func writes(query string) bool {
	q := strings.TrimSpace(query)
	i := strings.IndexFunc(q, func(r rune) bool { return r == ' ' || r == '\n' || r == '\t' || r == '(' })
	if i > 0 {
		q = q[:i]
	}
	switch strings.ToUpper(q) {
	case "SELECT", "EXPLAIN", "VALUES", "PRAGMA": // a PRAGMA that writes goes through Exec
		return false
	}
	return true
}

// gatedTx releases the gate when the transaction ends.
type gatedTx struct {
	driver.Tx
	conn *gatedConn
}

func (t *gatedTx) Commit() error   { return t.end(t.Tx.Commit) }
func (t *gatedTx) Rollback() error { return t.end(t.Tx.Rollback) }

func (t *gatedTx) end(f func() error) error {
	err := f()
	if t.conn.inTx {
		t.conn.inTx = false
		t.conn.gate.leave()
	}
	return err
}

// gatedRows releases the gate once a writing query's rows are closed.
type gatedRows struct {
	driver.Rows
	gate gate
	done bool
}

func (r *gatedRows) Close() error {
	err := r.Rows.Close()
	if !r.done {
		r.done = true
		r.gate.leave()
	}
	return err
}

// checkpointEvery is how often checkpoint copies the WAL into the database.
const checkpointEvery = 250 * time.Millisecond

// restartFrames is the WAL's length, in pages, past which checkpoint makes
// sure SQLite can start it over (256 MiB: the disk the WAL may take).
const restartFrames = 65536

// checkpoint copies committed pages from the WAL into the database file
// every interval, until d is closed. SQLite's own automatic checkpoint runs
// inside the commit that crosses its threshold, with an fsync, so one
// writer in a thousand waited for it and every writer queued behind that
// one; here PASSIVE checkpoints run beside the writers, outside the gate
// (they take no write lock and never block a writer or a reader).
//
// SQLite starts the WAL over from its beginning only when a writer finds
// all of it copied and no reader still on it. Under steady chat traffic a
// writer always comes too soon, so the WAL grew for as long as the traffic
// lasted: 50 MB a second at 1,000 messages a second (portal-bench), every
// new page a file extension the kernel zeroes. So past restartFrames the
// checkpoint copies the last pages and waits for the readers (RESTART)
// while holding the gate, and the next writer starts the WAL over. Writers
// wait for that: 5 to 12 ms here, once every 5 seconds at 1,000 messages
// a second (at most restartWait, then it is put off for
// restartHoldOff), never at a municipality's usual traffic, where a
// writer often finds no reader and SQLite starts the WAL over itself. The
// file keeps its size, so after the first time no page is an extension.
// (Without the gate, RESTART would take the write lock behind its back and
// writers would meet the busy handler's sleeps instead.)
//
// The PASSIVE passes run on a thread of the lowest priority (background):
// copying pages is a burst of CPU work every interval (a pass took 10 to
// 45 ms), and on two cores the chat's statements took milliseconds instead
// of microseconds while it ran (an execution trace showed them right after
// each pass began). They can wait; what a pass does not copy the next one
// does. portal-bench, A/B at 1,000 messages a second, 2,000 sockets, four
// rounds in alternating order: p99 delivery 28–121 ms (median 47) against
// 14–839 ms (median 276). The cost: the thread holds one of Go's Ps while it
// runs Go code between its C calls, so a GC pause can wait for it (the
// longest in 15 s went from 1.0 to 3.7 ms). The RESTART runs at the usual
// priority, as writers wait for it.
func checkpoint(d *sqlx.DB, g gate, interval time.Duration, restart int64) {
	bg := background()
	defer close(bg)
	t := time.NewTicker(interval)
	defer t.Stop()
	var holdOff time.Time // no RESTART before, after one gave up
	for range t.C {
		limit := restart
		if time.Now().Before(holdOff) {
			limit = math.MaxInt64
		}
		switch err := checkpointOnce(d, g, limit, bg); {
		case errors.Is(err, sql.ErrConnDone):
			return
		case errors.Is(err, errReadersStayed):
			// A reader stays on the WAL (a long replay): trying again at
			// every interval would hold writers for restartWait each time.
			holdOff = time.Now().Add(restartHoldOff)
		}
	}
}

// restartHoldOff is how long checkpoint makes no RESTART after one gave up
// waiting for readers; the passes go on meanwhile.
const restartHoldOff = 2 * time.Second

// lowPriority runs functions, one at a time, on an OS thread of its own
// of the lowest scheduling priority where the system allows that, until it
// is closed.
type lowPriority chan func()

// background starts the goroutine behind a lowPriority.
func background() lowPriority {
	c := make(lowPriority)
	go func() {
		// Never unlocked: the thread ends with the goroutine, so its
		// priority goes with it and no other goroutine inherits it.
		runtime.LockOSThread()
		lowerThreadPriority()
		for fn := range c {
			fn()
		}
	}()
	return c
}

// run runs fn on the low-priority thread and returns when fn has.
func (b lowPriority) run(fn func()) {
	done := make(chan struct{})
	b <- func() { fn(); close(done) }
	<-done
}

// checkpointOnce copies the WAL into the database in PASSIVE passes beside
// the writers, each pass copying what they wrote during the one before,
// until a pass finds little new, on bg's thread. If the WAL is
// longer than restart pages, a RESTART checkpoint follows with the gate
// held. It takes its connection before the gate: all of the pool's
// connections may belong to writers waiting for it.
func checkpointOnce(d *sqlx.DB, g gate, restart int64, bg lowPriority) error {
	ctx := context.Background()
	conn, err := d.Connx(ctx)
	if err != nil {
		if strings.Contains(err.Error(), "database is closed") {
			return sql.ErrConnDone
		}
		return err
	}
	defer conn.Close()
	var frames, copied int64
	bg.run(func() {
		for pass := 0; pass < 6; pass++ {
			before := copied
			if _, frames, copied, err = walCheckpoint(ctx, conn, "PASSIVE"); err != nil {
				return
			}
			if pass > 0 && copied-before <= 64 {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if frames <= restart {
		return nil
	}
	if err := g.enter(ctx); err != nil {
		return err
	}
	defer g.leave()
	return restartWAL(ctx, conn, restartWait)
}

// restartWait bounds how long a RESTART waits for the readers still on
// the WAL, with every writer held at the gate meanwhile. After that it
// gives up, the WAL grows on, and checkpoint tries again after
// restartHoldOff.
const restartWait = 100 * time.Millisecond

// errReadersStayed: a RESTART gave up waiting for readers on the WAL.
var errReadersStayed = errors.New("db: readers stayed on the WAL; it is started over later")

// restartWAL copies the rest of the WAL into the database and waits up to
// wait for the readers still on it to finish, so that the next writer
// starts it over. It waits in steps of its own, not in SQLite's busy
// handler: that sleeps 1, 2, 5, 10, 15 ms… between tries, while a
// reader's statement takes microseconds, and writers wait behind the gate
// for every one of those sleeps (RESTARTs of 40 ms in an execution trace
// of portal-bench, where the copying takes a few). conn must not be in a
// transaction.
func restartWAL(ctx context.Context, conn *sqlx.Conn, wait time.Duration) (err error) {
	// PRAGMAs go through QueryRow: Exec would wait for the gate, which the
	// caller holds.
	setBusyTimeout := func(d time.Duration) error {
		var ms int64
		return conn.QueryRowContext(ctx, `PRAGMA busy_timeout = `+strconv.FormatInt(d.Milliseconds(), 10)).Scan(&ms)
	}
	// Restored however the rest goes: SQLite sets the timeout while it
	// compiles the PRAGMA, so even a failed Scan below may have set it.
	defer func() {
		if rerr := setBusyTimeout(busyTimeout); rerr != nil {
			// Never back in the pool without its busy timeout.
			conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, rerr)
		}
	}()
	if err := setBusyTimeout(0); err != nil {
		return err
	}
	for deadline := time.Now().Add(wait); ; {
		busy, _, _, err := walCheckpoint(ctx, conn, "RESTART")
		if err != nil || !busy {
			return err
		}
		if time.Now().After(deadline) {
			return errReadersStayed
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// walCheckpoint runs a checkpoint in mode and returns whether it could not
// finish for other connections (busy), how many pages the WAL holds, and
// how many of them are in the database file now.
func walCheckpoint(ctx context.Context, conn *sqlx.Conn, mode string) (busy bool, frames, copied int64, err error) {
	// The checkpoint runs when its one row is stepped to: QueryRow steps.
	err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &frames, &copied)
	return busy, frames, copied, err
}
