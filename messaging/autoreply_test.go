package messaging_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"familieportal/messaging"
	"familieportal/portal/db"
	"familieportal/portal/db/dbtest"
)

// queryLog counts the statements run on a countingDB, and keeps their text
// while keep is set.
type queryLog struct {
	n    atomic.Int64
	mu   sync.Mutex
	keep bool
	qs   []string
}

func (l *queryLog) add(q string) {
	l.n.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keep {
		l.qs = append(l.qs, strings.Join(strings.Fields(q), " "))
	}
}

// during returns the statements run while f ran.
func (l *queryLog) during(f func()) []string {
	l.mu.Lock()
	l.keep, l.qs = true, nil
	l.mu.Unlock()
	f()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keep = false
	return l.qs
}

// countingDB opens a second pool on the database d was opened on (dsn),
// whose connections count the statements they run. It is for reading:
// write through d, which has the portal's write gate.
func countingDB(tb testing.TB, d *sqlx.DB, dsn string) (*sqlx.DB, *queryLog) {
	tb.Helper()
	if db.Dialect(d) == db.SQLite {
		dsn = "file:" + dsn + "?_busy_timeout=5000"
	}
	l := &queryLog{}
	c := sqlx.NewDb(sql.OpenDB(countingConnector{drv: d.Driver(), dsn: dsn, log: l}), d.DriverName())
	tb.Cleanup(func() { c.Close() })
	return c, l
}

type countingConnector struct {
	drv driver.Driver
	dsn string
	log *queryLog
}

func (c countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, log: c.log}, nil
}

func (c countingConnector) Driver() driver.Driver { return c.drv }

// countingConn counts what database/sql runs on the driver's connection.
// Both drivers (go-sqlite3, pgx) implement the context interfaces.
type countingConn struct {
	driver.Conn
	log *queryLog
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	qc, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.log.add(q)
	return qc.QueryContext(ctx, q, args)
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	ec, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	c.log.add(q)
	return ec.ExecContext(ctx, q, args)
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.log.add(q)
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, q)
	}
	return c.Conn.Prepare(q)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if bc, ok := c.Conn.(driver.ConnBeginTx); ok {
		return bc.BeginTx(ctx, opts)
	}
	return c.Conn.Begin() //nolint:staticcheck // the fallback database/sql itself uses
}

func (c *countingConn) CheckNamedValue(v *driver.NamedValue) error {
	if nc, ok := c.Conn.(driver.NamedValueChecker); ok {
		return nc.CheckNamedValue(v)
	}
	return driver.ErrSkip // database/sql's default conversion
}

// discardPoster answers every Post as if it were stored.
type discardPoster struct{}

func (discardPoster) Post(_ context.Context, d messaging.Draft) (messaging.Message, error) {
	return messaging.Message{ConversationID: d.ConversationID, Kind: d.Kind}, nil
}

// sharedReads are the statements that read the parts of a contact that do
// not depend on the case: the office's settings, and a member of staff's
// name and availability settings.
var sharedReads = map[string][]string{
	"office": {"office_hours", "office_calendar", "office_closure_days"},
	"staff":  {"availability_windows", "availability_exceptions", "availability_absences", "SELECT id, name FROM users"},
}

// reads returns the statements of qs that read the shared part kind.
func reads(qs []string, kind string) []string {
	var out []string
	for _, q := range qs {
		for _, s := range sharedReads[kind] {
			if strings.Contains(q, s) {
				out = append(out, q)
				break
			}
		}
	}
	return out
}

// eveningReplier is an auto-replier over a counting pool (countingDB) of
// the availability world's database, posting to a fakePoster, its clock
// at *now: a Wednesday evening, when the chat is closed.
func eveningReplier(t *testing.T) (*world, *messaging.AutoReplier, *fakePoster, *queryLog, *time.Time) {
	t.Helper()
	w, _ := avWorld(t)
	cdb, log := countingDB(t, w.db, w.dsn)
	now := oslo(t, 2026, 3, 4, 20, 0)
	r := messaging.NewAutoReplier(messaging.NewAvailabilityStore(cdb), func(messaging.AutoReply) string { return "closed" },
		func() time.Time { return now }, nil)
	p := &fakePoster{}
	r.Attach(p)
	return w, r, p, log, &now
}

// TestAutoReplier_sharedContactParts counts the statements behind each
// conversation's first message: the office's settings and a caseworker's
// name and settings are read once for all their conversations, not once
// per conversation.
func TestAutoReplier_sharedContactParts(t *testing.T) {
	w, r, p, log, _ := eveningReplier(t)
	ctx := context.Background()
	first := func(conv, who string) []string {
		t.Helper()
		return log.during(func() {
			m := messaging.Message{ConversationID: w.conv[conv], SenderID: w.ids[who], Kind: messaging.KindText}
			if err := r.MessageStored(ctx, m, messaging.RoleCitizen); err != nil {
				t.Fatalf("MessageStored(%s) = %v", conv, err)
			}
		})
	}

	sara := first("emma-sara", "sara") // Kari's case, the first message the replier sees
	if len(reads(sara, "office")) == 0 || len(reads(sara, "staff")) == 0 {
		t.Fatalf("the first conversation read no office or no staff settings: %q", sara)
	}
	jonas := first("emma-jonas", "jonas") // Kari's case again, another conversation
	if got := append(reads(jonas, "office"), reads(jonas, "staff")...); len(got) > 0 {
		t.Errorf("the second conversation of Kari's read the shared parts again: %q", got)
	}
	leila := first("noah-leila", "leila") // Ola's case, the same office
	if got := reads(leila, "office"); len(got) > 0 {
		t.Errorf("a conversation of another caseworker of the office read the office again: %q", got)
	}
	if len(reads(leila, "staff")) == 0 {
		t.Errorf("the first conversation of Ola's did not read Ola's settings: %q", leila)
	}
	if len(p.drafts) != 3 {
		t.Fatalf("posted %d replies, want 3 (one per conversation)", len(p.drafts))
	}
	t.Logf("statements for a first message: %d (first of the office), %d (another of Kari's), %d (first of Ola's)",
		len(sara), len(jonas), len(leila))
	if len(jonas) >= len(sara) {
		t.Errorf("the second conversation ran %d statements, the first %d; want fewer", len(jonas), len(sara))
	}
}

// seenReply is what a test can see of one automatic reply.
type seenReply struct {
	Sender, Responder  string
	Next, VaktUntil    time.Time
	Away               bool
	Phone, EmergencyNo string
}

// TestAutoReplier_memoFor changes each part of a contact the replier keeps
// (a caseworker's absence or chat hours, a substitute's chat hours, the
// office's settings) just after the replier has read it, and checks that
// the change shows in every reply from memoFor after that read: kept parts
// are shared between conversations, but not kept longer than a whole
// contact was kept per conversation.
func TestAutoReplier_memoFor(t *testing.T) {
	t0 := oslo(t, 2026, 3, 4, 20, 0) // a Wednesday evening: closed on the office's hours and on both schedules below
	const memoFor = 30 * time.Second // messaging.memoFor: a change takes effect within it
	save := func(t *testing.T, w *world, a *messaging.AvailabilityStore, who string, st messaging.Settings) {
		t.Helper()
		if errs, err := a.SaveSettings(context.Background(), w.ids[who], st); err != nil || len(errs) > 0 {
			t.Fatalf("SaveSettings(%s) = %v, %v", who, errs, err)
		}
	}
	chat := func(start, end int) messaging.Settings {
		return messaging.Settings{Windows: map[messaging.Channel][]messaging.Window{messaging.ChannelChat: weekdays(start, end)}}
	}
	absent := func(w *world) messaging.Settings {
		return messaging.Settings{Absences: []messaging.Absence{{From: date(2026, 3, 2), To: date(2026, 3, 13), SubstituteID: w.ids["ola"]}}}
	}
	tests := []struct {
		name   string
		before func(*testing.T, *world, *messaging.AvailabilityStore) // the state at t0
		change func(*testing.T, *world, *messaging.AvailabilityStore) // just after the first reply
	}{
		{"the caseworker's absence with a substitute", nil, func(t *testing.T, w *world, a *messaging.AvailabilityStore) {
			save(t, w, a, "kari", absent(w))
		}},
		{"the caseworker's absence ends early", func(t *testing.T, w *world, a *messaging.AvailabilityStore) {
			save(t, w, a, "kari", absent(w))
		}, func(t *testing.T, w *world, a *messaging.AvailabilityStore) {
			save(t, w, a, "kari", messaging.Settings{})
		}},
		{"the caseworker's chat hours", nil, func(t *testing.T, w *world, a *messaging.AvailabilityStore) {
			save(t, w, a, "kari", chat(hm(7, 0), hm(15, 0)))
		}},
		{"the substitute's chat hours", func(t *testing.T, w *world, a *messaging.AvailabilityStore) {
			save(t, w, a, "kari", absent(w))
		}, func(t *testing.T, w *world, a *messaging.AvailabilityStore) {
			save(t, w, a, "ola", chat(hm(6, 30), hm(14, 0)))
		}},
		{"the office's hours and barnevernvakt", nil, func(t *testing.T, w *world, a *messaging.AvailabilityStore) {
			o := messaging.DefaultOfficeSettings()
			o.Hours = weekdays(hm(9, 0), hm(15, 0))
			o.VaktEveningMin, o.VaktMorningMin = hm(15, 0), hm(9, 0)
			if errs, err := a.SaveOfficeSettings(context.Background(), "o1", o); err != nil || len(errs) > 0 {
				t.Fatalf("SaveOfficeSettings = %v, %v", errs, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, a := avWorld(t)
			ctx := context.Background()
			third, err := w.store.CreateConversation(ctx, "case-emma", messaging.ConversationShared, []string{w.ids["sara"], w.ids["jonas"]})
			if err != nil {
				t.Fatal(err)
			}
			if tt.before != nil {
				tt.before(t, w, a)
			}
			var now time.Time
			var told messaging.AutoReply
			newReplier := func() *messaging.AutoReplier {
				return messaging.NewAutoReplier(a, func(ar messaging.AutoReply) string { told = ar; return "closed" },
					func() time.Time { return now }, nil)
			}
			say := func(r *messaging.AutoReplier, at time.Time, conv string) seenReply {
				t.Helper()
				now = at
				p := &fakePoster{}
				r.Attach(p)
				m := messaging.Message{ConversationID: conv, SenderID: w.ids["sara"], Kind: messaging.KindText}
				if err := r.MessageStored(ctx, m, messaging.RoleCitizen); err != nil {
					t.Fatal(err)
				}
				if len(p.drafts) != 1 {
					t.Fatalf("at %v: %d replies to the first message of a conversation, want 1", at, len(p.drafts))
				}
				return seenReply{Sender: p.drafts[0].SenderID, Responder: told.Responder, Next: told.NextOpening.UTC(),
					VaktUntil: told.VaktUntil.UTC(), Away: told.Away, Phone: told.OfficePhone, EmergencyNo: told.EmergencyPhone}
			}

			r := newReplier()
			old := say(r, t0, w.conv["emma-sara"])
			tt.change(t, w, a)
			last := t0.Add(memoFor - time.Nanosecond)
			// Up to memoFor after it read them, the replier may answer
			// from what it read for Sara's conversation, also in
			// Jonas's: the memo is really used, so the next check is not
			// passing because nothing is kept.
			if got := say(r, last, w.conv["emma-jonas"]); got != old {
				t.Errorf("just before memoFor: %+v; want the first reply, %+v (nothing kept?)", got, old)
			}
			// At memoFor the change must show, exactly as a replier that
			// has kept nothing answers.
			got := say(r, t0.Add(memoFor), third.ID)
			want := say(newReplier(), t0.Add(memoFor), third.ID)
			if got == old || got != want {
				t.Errorf("at memoFor after the first read: %+v; want %+v (the change; before it %+v)", got, want, old)
			}
		})
	}
}

// BenchmarkAutoReplier_firstMessage is the cold phase of portal-bench: a
// family's first message in each of many conversations on a closed
// evening, each answered (the poster discards the reply, so only the
// replier's own reads are measured). Every caseworker has 80
// conversations, as in the bench's municipality (25 cases, ~3 parties
// each); the messages come in a shuffled order. A new replier starts
// after every conversation has had its message.
//
// With stored=true each message is first stored (Store.InsertMessage), as
// the service does before it tells its observers: the replier's reads then
// follow a commit, which in WAL mode empties the other connections' page
// caches, as in the portal.
func BenchmarkAutoReplier_firstMessage(b *testing.B) {
	for _, caseworkers := range []int{25, 130} {
		for _, stored := range []bool{false, true} {
			b.Run(fmt.Sprintf("conversations=%d/stored=%v", caseworkers*80, stored), func(b *testing.B) {
				benchFirstMessages(b, caseworkers, 80, stored)
			})
		}
	}
}

func benchFirstMessages(b *testing.B, caseworkers, perCaseworker int, stored bool) {
	ctx := context.Background()
	dsn := dbtest.DSN(b, dbtest.Current())
	d, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	created := time.Now().UTC()
	tx := d.MustBegin()
	exec := func(q string, args ...any) {
		if _, err := tx.Exec(tx.Rebind(q), args...); err != nil {
			b.Fatalf("seed %q: %v", q, err)
		}
	}
	exec(`INSERT INTO offices (id, name, municipality, phone, emergency_phone) VALUES ('o1', 'Benchvik', 'Benchvik', '21000000', '21999999')`)
	exec(`INSERT INTO users (id, kind, name, created_at) VALUES ('family', 'citizen', 'Family', ?)`, created)
	var convs []string
	for i := range caseworkers {
		cw := fmt.Sprintf("cw%04d", i)
		exec(`INSERT INTO users (id, kind, name, office_id, created_at) VALUES (?, 'caseworker', ?, 'o1', ?)`, cw, "Caseworker "+cw, created)
		for j := range perCaseworker / 2 {
			k := fmt.Sprintf("%s-case%02d", cw, j)
			exec(`INSERT INTO cases (id, reference, office_id, child_name, status, opened_at, updated_at)
				VALUES (?, ?, 'o1', 'Child', 'measures', ?, ?)`, k, k, created, created)
			exec(`INSERT INTO case_caseworkers (case_id, user_id, is_primary) VALUES (?, ?, TRUE)`, k, cw)
			for p := range 2 {
				id := fmt.Sprintf("%s-c%d", k, p)
				exec(`INSERT INTO conversations (id, case_id, kind, created_at) VALUES (?, ?, 'party', ?)`, id, k, created)
				convs = append(convs, id)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(convs), func(i, j int) { convs[i], convs[j] = convs[j], convs[i] })

	cdb, log := countingDB(b, d, dsn)
	a := messaging.NewAvailabilityStore(cdb)
	now := time.Date(2026, 3, 4, 20, 0, 0, 0, messaging.Oslo()) // a Wednesday evening
	store := messaging.NewStore(d).WithClock(func() time.Time { return now })
	var r *messaging.AutoReplier
	b.ReportAllocs()
	b.ResetTimer()
	start := log.n.Load()
	for i := range b.N {
		if i%len(convs) == 0 {
			r = messaging.NewAutoReplier(a, func(messaging.AutoReply) string { return "closed" }, func() time.Time { return now }, nil)
			r.Attach(discardPoster{})
		}
		m := messaging.Message{ConversationID: convs[i%len(convs)], SenderID: "family", Kind: messaging.KindText}
		if stored {
			_, _, err := store.InsertMessage(ctx, messaging.Draft{ConversationID: m.ConversationID, SenderID: m.SenderID,
				SenderName: "Family", SenderRole: messaging.RoleCitizen, ClientID: fmt.Sprintf("bench-%d", i), Body: "Hei", Kind: m.Kind})
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := r.MessageStored(ctx, m, messaging.RoleCitizen); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(log.n.Load()-start)/float64(b.N), "queries/op")
}

// TestAutoReplier_storedReplyKeptForThePeriod: once the replier has found
// a closed period's answer stored, it does not look for it again in that
// period, however much later the family writes, and posts nothing.
func TestAutoReplier_storedReplyKeptForThePeriod(t *testing.T) {
	w, r, p, log, now := eveningReplier(t)
	ctx := context.Background()
	conv := w.conv["emma-sara"]
	// Kari answered at 19.00, in this closed period.
	w.db.MustExec(w.db.Rebind(`UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ?`), conv)
	w.db.MustExec(w.db.Rebind(`
		INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, kind, created_at)
		SELECT 'kari-answer', id, last_seq, ?, 'kari-1', 'svar', 'text', ? FROM conversations WHERE id = ?`),
		w.ids["kari"], now.Add(-time.Hour).UTC(), conv)

	lookups := func(at time.Time) []string {
		t.Helper()
		*now = at
		var found []string
		for _, q := range log.during(func() {
			m := messaging.Message{ConversationID: conv, SenderID: w.ids["sara"], Kind: messaging.KindText}
			if err := r.MessageStored(ctx, m, messaging.RoleCitizen); err != nil {
				t.Fatal(err)
			}
		}) {
			if strings.Contains(q, "FROM messages") {
				found = append(found, q)
			}
		}
		return found
	}
	if got := lookups(*now); len(got) == 0 {
		t.Fatal("the first family message of the evening did not look for an answer")
	}
	if got := lookups(now.Add(2 * time.Hour)); len(got) > 0 {
		t.Errorf("two hours later, in the same period, the replier looked again: %q", got)
	}
	if len(p.drafts) != 0 {
		t.Errorf("posted %d replies to a period Kari had answered, want none", len(p.drafts))
	}
	// The next closed period is another one: Thursday evening looks again.
	if got := lookups(oslo(t, 2026, 3, 5, 20, 0)); len(got) == 0 {
		t.Error("the next evening's first family message did not look for an answer")
	}
}
