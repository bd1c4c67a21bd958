package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"familieportal/portal/db"
	"familieportal/portal/db/dbtest"
)

// killAfter is how many acks the clients collect before the server is
// killed: more than the people's send bursts together (8 × 20), so the kill
// lands in steady load, not at the start.
const killAfter = 200

// killPeople are the demo people who chat during the kill test: every
// family member with a conversation, both caseworkers and the team lead, so
// several people write into the same conversations at once.
var killPeople = []string{"sara", "jonas", "noah", "leila", "maria", "kari", "ola", "ingrid"}

// Client-side pacing that mirrors the server's default send limit (20 at
// once, then one per second, per person), with a margin so that the
// server's bucket has always refilled when a send arrives. A rate_limited
// answer is still handled: the message is resent with the same client id.
const (
	killSendBurst    = 20
	killSendInterval = 1050 * time.Millisecond
	// killWindow is how many sends one socket may have waiting for an answer.
	killWindow = 8
	// killSockets is how many sockets each person opens (one per "tab").
	killSockets = 2
)

// TestKill9_acknowledgedMessagesSurvive builds the real binary, drives chat
// over websockets from eight people at once, kills the server with SIGKILL
// right after a send frame has gone out, restarts it on the same SQLite
// file and checks that every acknowledged message is stored exactly once
// with the seq it was acknowledged with, that every conversation's
// sequence is 1..N without gaps or duplicates, that replay after the
// restart returns exactly what is stored, and that resending a client id
// returns the original ack and stores nothing.
func TestKill9_acknowledgedMessagesSurvive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the portal binary")
	}
	start := time.Now()
	bin := buildPortal(t, t.TempDir())
	t.Logf("%v: built", time.Since(start))
	// On SQLite, and on PostgreSQL when the tests have a server (dbtest).
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) { testKill9(t, bin, dialect) })
	}
}

func testKill9(t *testing.T, bin, dialect string) {
	start := time.Now()
	dbPath := dbtest.DSN(t, dialect) // a SQLite file, or a PostgreSQL database
	web, tr := newWebClient()
	defer tr.CloseIdleConnections()

	first := startChild(t, bin, dbPath)
	waitReadyz(t, web, first.base, first.exited, first.logs, 60*time.Second)
	t.Logf("%v: first portal ready", time.Since(start))
	// The demo history: every conversation's last seq before the load.
	initial := readChatDB(t, dbPath).lastSeq

	// Sign everyone in and open their sockets.
	l := &killLoad{t: t, sent: map[string]killSent{}, acks: map[string]wsFrame{},
		fire: make(chan struct{})}
	var people []*killPerson
	var sockets []*killSocket
	for _, key := range killPeople {
		p := &killPerson{key: key, session: demoSignIn(t, web, first.base, key),
			limit: rate.NewLimiter(rate.Every(killSendInterval), killSendBurst),
			retry: make(chan string, killSockets*killWindow)}
		for range killSockets {
			conn, hello, err := wsDial(first.base, p.session)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			defer conn.Close()
			if p.convs == nil {
				for _, c := range hello.Conversations {
					p.convs = append(p.convs, c.ID)
					if c.LastSeq != initial[c.ID] {
						t.Errorf("%s: hello last_seq of %s = %d, want %d", key, c.ID, c.LastSeq, initial[c.ID])
					}
				}
			}
			sockets = append(sockets, &killSocket{p: p, conn: conn,
				slots: make(chan struct{}, killWindow), pending: map[string]bool{}})
		}
		if len(p.convs) == 0 {
			t.Fatalf("%s's hello lists no conversations", key)
		}
		people = append(people, p)
	}

	// Chat until enough acks are in, then kill the server as the next ack
	// arrives while other sends are unanswered, so that it dies with work
	// in flight: some of it may be committed but not yet acknowledged.
	ctx, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range sockets {
		wg.Add(2)
		go func() { defer wg.Done(); l.sender(ctx, s) }()
		go func() { defer wg.Done(); l.reader(s) }()
	}
	// stop ends the clients; deferred too, so that no client goroutine
	// outlives a test that failed early.
	stop := sync.OnceFunc(func() {
		l.killed.Store(true)
		stopLoad()
		for _, s := range sockets {
			s.conn.Close()
		}
		wg.Wait() // every client goroutine is unblocked: sockets closed, context cancelled
	})
	defer stop()
	loadTimeout := time.NewTimer(45 * time.Second)
	defer loadTimeout.Stop()
	select {
	case <-l.fire:
	case <-first.exited:
		t.Fatalf("portal exited under load: %v\n%s", first.err, logTail(first.logs.String(), 20))
	case <-loadTimeout.C:
		l.mu.Lock()
		n := len(l.acks)
		l.mu.Unlock()
		t.Fatalf("only %d of %d acks within 45s", n, killAfter)
	}
	l.killed.Store(true)
	l.mu.Lock()
	atKill, inFlight := len(l.acks), l.pending
	l.mu.Unlock()
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.waitExit(t, 10*time.Second)
	stop()
	if t.Failed() {
		t.FailNow()
	}
	checkChildLog(t, "killed portal", first.logs.String())
	// The clients have stopped: their maps are final. An ack read after the
	// kill counts: the server sent it, so it had committed.
	sent, acks := l.sent, l.acks
	t.Logf("%v: killed after %d acks with %d sends unanswered; %d acks in all",
		time.Since(start), atKill, inFlight, len(acks))

	// Restart on the same file. The clients' sessions are in the database,
	// so their cookies still work.
	second := startChild(t, bin, dbPath)
	waitReadyz(t, web, second.base, second.exited, second.logs, 60*time.Second)
	t.Logf("%v: restarted portal ready", time.Since(start))

	// 1. The database as the crash left it (and the restart recovered it).
	before := readChatDB(t, dbPath)
	stored := before.check(t, sent, acks, initial)
	t.Logf("%d of the unacknowledged messages were stored before the kill", stored)

	// 2. Over fresh sockets, hello and replay show what is stored. Every
	// person replays before anyone resends, so no live frame interleaves.
	for _, p := range people {
		p.replay(t, second.base, before)
	}
	t.Logf("%v: replayed after the restart", time.Since(start))

	// 3. Resends return the original acks.
	created := 0
	for _, p := range people {
		created += p.resendAll(t, second.base, before, sent, acks)
	}

	// 4. The resends stored nothing but the unacknowledged messages that
	// were not there yet; sequences are still contiguous.
	after := readChatDB(t, dbPath)
	if got, want := len(after.msgs), len(before.msgs)+created; got != want {
		t.Errorf("messages after resending = %d, want %d (%d before, %d new)", got, want, len(before.msgs), created)
	}
	for id, a := range acks {
		m, ok := after.byClient[sent[id].person+"/"+id]
		if !ok || m.ID != a.ID || m.Seq != a.Seq {
			t.Errorf("after resends, acked %s = %+v, want id %s seq %d", id, m, a.ID, a.Seq)
		}
	}
	after.check(t, sent, acks, initial)

	// A graceful stop of the restarted server exits 0 (under -race, a race
	// found in the child would make it exit 66).
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	second.waitExit(t, 30*time.Second)
	if second.err != nil {
		t.Errorf("restarted portal after SIGTERM: %v\n%s", second.err, logTail(second.logs.String(), 20))
	}
	checkChildLog(t, "restarted portal", second.logs.String())
}

// killSent is a message a client sent.
type killSent struct {
	person, conversation, body string
}

// killLoad is the shared state of the clients during the load.
type killLoad struct {
	t      *testing.T
	killed atomic.Bool // set just before the kill: socket errors are expected from then on

	mu      sync.Mutex
	sent    map[string]killSent // by client id
	acks    map[string]wsFrame  // by client id: the first ack for it
	pending int                 // sends written and not yet answered, on all sockets
	fire    chan struct{}       // closed when it is time to kill the server
	fired   bool
}

// killPerson is one signed-in demo person.
type killPerson struct {
	key     string
	session *http.Cookie
	convs   []string      // conversations from hello
	limit   *rate.Limiter // shared by the person's sockets, like the server's
	retry   chan string   // client ids to resend (rate_limited, unavailable)
	n       atomic.Int64  // messages made so far
}

// killSocket is one of a person's sockets.
type killSocket struct {
	p     *killPerson
	conn  *websocket.Conn
	slots chan struct{} // the send window

	mu      sync.Mutex
	pending map[string]bool // client ids sent on this socket, awaiting an answer
}

// sender sends messages on s as fast as the window and the send rate allow,
// resends first.
func (l *killLoad) sender(ctx context.Context, s *killSocket) {
	for {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if err := s.p.limit.Wait(ctx); err != nil {
			return
		}
		var id string
		var m killSent
		l.mu.Lock()
		select {
		case id = <-s.p.retry:
			m = l.sent[id]
		default:
			n := s.p.n.Add(1)
			id = newClientID()
			m = killSent{
				person:       s.p.key,
				conversation: s.p.convs[int(n)%len(s.p.convs)],
				body:         fmt.Sprintf("Melding %d fra %s under belastning.", n, s.p.key),
			}
			l.sent[id] = m
		}
		l.mu.Unlock()
		s.mu.Lock()
		s.pending[id] = true
		s.mu.Unlock()
		l.mu.Lock()
		l.pending++
		l.mu.Unlock()
		if err := wsWrite(s.conn, wsSend{Type: "send", Conversation: m.conversation, ClientID: id, Body: m.body}); err != nil {
			if !l.killed.Load() {
				l.t.Errorf("%s: send: %v", s.p.key, err)
			}
			return
		}
	}
}

// reader reads s's frames until the socket fails, recording acks and
// queueing resends.
func (l *killLoad) reader(s *killSocket) {
	for {
		// Long enough for a quiet socket; the kill ends every read at once.
		s.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, raw, err := s.conn.ReadMessage()
		if err != nil {
			if !l.killed.Load() {
				l.t.Errorf("%s: socket failed before the kill: %v", s.p.key, err)
			}
			return
		}
		var f wsFrame
		if err := json.Unmarshal(raw, &f); err != nil {
			l.t.Errorf("%s: %v", s.p.key, err)
			return
		}
		switch f.Type {
		case "ack":
			if !l.answered(s, f.ClientID) {
				l.t.Errorf("%s: ack for client id %s, which this socket has no send waiting for", s.p.key, f.ClientID)
			}
			l.ack(s.p.key, f)
		case "error":
			l.answered(s, f.ClientID)
			switch f.Code {
			case "rate_limited", "unavailable":
				// Nothing was stored: resend with the same client id.
				select {
				case s.p.retry <- f.ClientID:
				default:
					l.t.Errorf("%s: retry queue full", s.p.key)
				}
			default:
				l.t.Errorf("%s: error frame %q for client id %q", s.p.key, f.Code, f.ClientID)
			}
		}
		// message, typing and read frames are other people's live events.
	}
}

// answered frees the window slot of client id if it was pending on s.
func (l *killLoad) answered(s *killSocket, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.pending[id] {
		return false
	}
	delete(s.pending, id)
	<-s.slots
	l.mu.Lock()
	l.pending--
	l.mu.Unlock()
	return true
}

// ack records f, an ack received by person.
func (l *killLoad) ack(person string, f wsFrame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.sent[f.ClientID]
	if !ok || m.person != person || m.conversation != f.Conversation || f.ID == "" || f.Seq <= 0 || f.At == "" {
		l.t.Errorf("%s: ack %+v does not answer a send (%+v)", person, f, m)
		return
	}
	if prev, ok := l.acks[f.ClientID]; ok {
		if prev.ack() != f.ack() {
			l.t.Errorf("%s: client id %s acked twice, differently: %+v, then %+v", person, f.ClientID, prev, f)
		}
		return
	}
	l.acks[f.ClientID] = f
	if len(l.acks) >= killAfter && l.pending > 0 && !l.fired {
		l.fired = true
		close(l.fire)
	}
}

// replay reconnects p with the session from before the kill and checks
// hello and a full replay against the database in before.
func (p *killPerson) replay(t *testing.T, base string, before chatDB) {
	t.Helper()
	conn, hello, err := wsDial(base, p.session)
	if err != nil {
		t.Fatalf("%s after the restart (session from before the kill): %v", p.key, err)
	}
	defer wsClose(conn)

	// Hello's last seq and a full replay agree with the database.
	cursors := map[string]int64{}
	for _, c := range hello.Conversations {
		if c.LastSeq != before.lastSeq[c.ID] {
			t.Errorf("%s: hello last_seq of %s = %d, want %d", p.key, c.ID, c.LastSeq, before.lastSeq[c.ID])
		}
		cursors[c.ID] = max(0, c.LastSeq-500) // the replay limit
	}
	if err := wsWrite(conn, wsSync{Type: "sync", Cursors: cursors}); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{} // conversation → last replayed seq
	for {
		f, err := wsRead(conn)
		if err != nil {
			t.Fatalf("%s: sync after the restart: %v", p.key, err)
		}
		if f.Type == "synced" {
			break
		}
		if f.Type != "message" {
			continue // nothing else is expected, but clients ignore what they do not know
		}
		if want := max(got[f.Conversation], cursors[f.Conversation]) + 1; f.Seq != want {
			t.Errorf("%s: replay of %s: seq %d, want %d", p.key, f.Conversation, f.Seq, want)
		}
		got[f.Conversation] = f.Seq
		m, ok := before.bySeq[f.Conversation][f.Seq]
		if !ok || m.ID != f.ID || !sameInstant(m.At, f.At) {
			t.Errorf("%s: replayed %+v, stored %+v", p.key, f, m)
		}
	}
	for id, last := range before.lastSeq {
		if _, mine := cursors[id]; mine && got[id] != last && last > cursors[id] {
			t.Errorf("%s: replay of %s ended at %d, want %d", p.key, id, got[id], last)
		}
	}
}

// resendAll resends three of p's acked client ids and all of p's unacked
// ones: the acked get their original acks, the unacked an ack now (the
// stored original if the kill left one). It returns the number of messages
// the resends created (unacked ones that were not stored).
func (p *killPerson) resendAll(t *testing.T, base string, before chatDB, sent map[string]killSent, acks map[string]wsFrame) (created int) {
	t.Helper()
	conn, _, err := wsDial(base, p.session)
	if err != nil {
		t.Fatalf("%s after the restart: %v", p.key, err)
	}
	defer wsClose(conn)
	var mine []string
	for id, m := range sent {
		if m.person == p.key {
			mine = append(mine, id)
		}
	}
	slices.Sort(mine)
	limit := rate.NewLimiter(rate.Every(killSendInterval), killSendBurst)
	resent := 0
	for _, id := range mine {
		orig, acked := acks[id]
		if acked && resent == 3 {
			continue
		}
		m := sent[id]
		a := resend(t, conn, limit, p.key, id, m)
		switch stored, ok := before.byClient[p.key+"/"+id]; {
		case acked:
			resent++
			if a.ack() != orig.ack() {
				t.Errorf("%s: resent acked %s: ack %+v, want the original %+v", p.key, id, a, orig)
			}
		case ok:
			if a.ID != stored.ID || a.Seq != stored.Seq || !sameInstant(stored.At, a.At) {
				t.Errorf("%s: resent unacked %s: ack %+v, want the stored %+v", p.key, id, a, stored)
			}
		default:
			created++
			if a.Seq <= before.lastSeq[m.conversation] {
				t.Errorf("%s: resent unacked %s, not stored before: seq %d, want > %d", p.key, id, a.Seq, before.lastSeq[m.conversation])
			}
		}
	}
	if resent == 0 {
		t.Errorf("%s had no acked message to resend", p.key)
	}
	return created
}

// resend sends m again with client id and returns its ack, waiting out
// rate_limited answers.
func resend(t *testing.T, conn *websocket.Conn, limit *rate.Limiter, person, id string, m killSent) wsFrame {
	t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), wsWait)
		err := limit.Wait(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := wsWrite(conn, wsSend{Type: "send", Conversation: m.conversation, ClientID: id, Body: m.body}); err != nil {
			t.Fatal(err)
		}
		for {
			f, err := wsRead(conn)
			if err != nil {
				t.Fatalf("%s: resend %s: %v", person, id, err)
			}
			if f.ClientID != id || (f.Type != "ack" && f.Type != "error") {
				continue // live frames of other messages
			}
			if f.Type == "ack" {
				return f
			}
			if f.Code != "rate_limited" {
				t.Fatalf("%s: resend %s: error %q", person, id, f.Code)
			}
			break
		}
	}
	t.Fatalf("%s: resend %s: still rate limited", person, id)
	return wsFrame{}
}

// chatMsg is a stored message.
type chatMsg struct {
	ID           string    `db:"id"`
	Conversation string    `db:"conversation_id"`
	Seq          int64     `db:"seq"`
	Sender       string    `db:"sender"`
	ClientID     string    `db:"client_id"`
	Kind         string    `db:"kind"`
	At           time.Time `db:"created_at"`
}

// chatDB is the chat tables, read directly.
type chatDB struct {
	msgs     []chatMsg
	lastSeq  map[string]int64             // conversation → conversations.last_seq
	bySeq    map[string]map[int64]chatMsg // conversation → seq → message
	byClient map[string]chatMsg           // sender's demo key + "/" + client id → message
}

// readChatDB reads the chat tables of the SQLite file at path.
func readChatDB(t *testing.T, path string) chatDB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	d, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c := chatDB{lastSeq: map[string]int64{}, bySeq: map[string]map[int64]chatMsg{}, byClient: map[string]chatMsg{}}
	if err := d.SelectContext(ctx, &c.msgs, `
		SELECT m.id, m.conversation_id, m.seq, COALESCE(u.demo_key, '') AS sender, m.client_id,
		       m.kind, m.created_at
		FROM messages m JOIN users u ON u.id = m.sender_id
		ORDER BY m.conversation_id, m.seq`); err != nil {
		t.Fatal(err)
	}
	var convs []struct {
		ID      string `db:"id"`
		LastSeq int64  `db:"last_seq"`
	}
	if err := d.SelectContext(ctx, &convs, `SELECT id, last_seq FROM conversations`); err != nil {
		t.Fatal(err)
	}
	for _, cv := range convs {
		c.lastSeq[cv.ID] = cv.LastSeq
		c.bySeq[cv.ID] = map[int64]chatMsg{}
	}
	ids := map[string]bool{}
	for _, m := range c.msgs {
		if ids[m.ID] {
			t.Errorf("message id %s stored twice", m.ID)
		}
		ids[m.ID] = true
		if _, dup := c.bySeq[m.Conversation][m.Seq]; dup {
			t.Errorf("conversation %s has seq %d twice", m.Conversation, m.Seq)
		}
		if c.bySeq[m.Conversation] == nil {
			t.Errorf("message %s belongs to no conversation", m.ID)
			continue
		}
		c.bySeq[m.Conversation][m.Seq] = m
		k := m.Sender + "/" + m.ClientID
		if _, dup := c.byClient[k]; dup {
			t.Errorf("client id %s of %s stored twice", m.ClientID, m.Sender)
		}
		c.byClient[k] = m
	}
	return c
}

// check verifies the stored chat against what the clients sent and were
// acked: sequences 1..last_seq without gaps, every ack stored exactly as
// acked, and nothing after the initial history that no client sent. It
// returns how many unacked messages are stored.
func (c chatDB) check(t *testing.T, sent map[string]killSent, acks map[string]wsFrame, initial map[string]int64) (storedUnacked int) {
	t.Helper()
	for conv, last := range c.lastSeq {
		if n := int64(len(c.bySeq[conv])); n != last {
			t.Errorf("conversation %s: %d messages, last_seq %d", conv, n, last)
		}
		for seq := int64(1); seq <= last; seq++ {
			if _, ok := c.bySeq[conv][seq]; !ok {
				t.Errorf("conversation %s: seq %d missing (last_seq %d)", conv, seq, last)
			}
		}
	}
	ackIDs := map[string]string{}
	for id, a := range acks {
		if other, dup := ackIDs[a.ID]; dup {
			t.Errorf("client ids %s and %s were acked with the same message id %s", other, id, a.ID)
		}
		ackIDs[a.ID] = id
		m, ok := c.byClient[sent[id].person+"/"+id]
		switch {
		case !ok:
			t.Errorf("acked message %s (conversation %s, seq %d) of %s is lost", id, a.Conversation, a.Seq, sent[id].person)
		case m.ID != a.ID || m.Conversation != a.Conversation || m.Seq != a.Seq || !sameInstant(m.At, a.At):
			t.Errorf("acked message %s stored as %+v, acked as %+v", id, m, a)
		}
	}
	for _, m := range c.msgs {
		s, ok := sent[m.ClientID]
		switch {
		case ok && (s.person != m.Sender || s.conversation != m.Conversation):
			t.Errorf("message %+v stored for %+v", m, s)
		case ok:
			if _, acked := acks[m.ClientID]; !acked {
				storedUnacked++
			}
		case m.Seq > initial[m.Conversation] && m.Kind == "text":
			t.Errorf("message %+v: no client sent it", m)
		}
	}
	return storedUnacked
}

// sameInstant reports whether stored and an `at` from a frame are the same
// instant.
func sameInstant(stored time.Time, at string) bool {
	t, err := time.Parse(time.RFC3339Nano, at)
	return err == nil && t.Equal(stored)
}

// childProcess is the portal binary running as a subprocess.
type childProcess struct {
	cmd    *exec.Cmd
	base   string
	logs   *syncBuffer
	exited chan struct{} // closed when the process has exited; err is set then
	err    error
}

// buildPortal builds this command into dir, with the race detector if
// this test has it (which also reuses the test's build cache).
func buildPortal(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the portal: %v", err)
	}
	bin := filepath.Join(dir, "portal")
	args := []string{"build", "-o", bin}
	if raceEnabled() {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// startChild starts `portal demo` on dbPath and a free port. It is killed
// at the end of the test if it still runs.
func startChild(t *testing.T, bin, dbPath string) *childProcess {
	t.Helper()
	addr := freeAddr(t)
	p := &childProcess{base: "http://" + addr, logs: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, "demo", "--db", dbPath, "--addr", addr, "--demo-data", "../../testdata/demo")
	// The flags decide; no PORTAL_* setting of the caller's may leak in.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTAL_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitExit waits for the process to exit, at most limit.
func (p *childProcess) waitExit(t *testing.T, limit time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(limit):
		t.Fatalf("portal did not exit within %v", limit)
	}
}

// checkChildLog fails the test if a portal's output shows a panic or a race.
func checkChildLog(t *testing.T, who, logs string) {
	t.Helper()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if strings.Contains(logs, bad) {
			t.Errorf("%s printed %q:\n%s", who, bad, logs)
		}
	}
}

// logTail returns the last n lines of s.
func logTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestRun_shutdownClosesWebsockets1001 is the end-to-end test of run()'s
// shutdown with a socket open: cancelling the context sends the client
// close 1001 (going away), run returns nil, the server stops answering and
// no goroutine is left behind.
func TestRun_shutdownClosesWebsockets1001(t *testing.T) {
	// Goroutines of earlier tests that are still winding down are not ours.
	ignore := goleak.IgnoreCurrent()

	addr := freeAddr(t)
	base := "http://" + addr
	dbPath := filepath.Join(t.TempDir(), "portal.db")
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		errc <- run(ctx, []string{"demo", "--db", dbPath, "--addr", addr, "--demo-data", "../../testdata/demo"},
			func(string) string { return "" }, &logs)
		close(exited)
	}()
	// The test's own HTTP client, so that its idle connections can be
	// closed before looking for leaks.
	web, tr := newWebClient()
	waitReadyz(t, web, base, exited, &logs, 30*time.Second)

	conn, hello, err := wsDial(base, demoSignIn(t, web, base, "sara"))
	if err != nil {
		t.Fatalf("%v\n%s", err, logTail(logs.String(), 20))
	}
	defer conn.Close()
	if len(hello.Conversations) == 0 {
		t.Fatalf("Sara's hello lists no conversations: %+v", hello)
	}

	cancel()
	// The next thing on the socket is the close frame (gorilla answers it,
	// which lets the server finish its close handshake).
	var closeErr *websocket.CloseError
	for {
		f, err := wsRead(conn)
		if err == nil {
			t.Logf("frame before the close: %+v", f)
			continue
		}
		if !errors.As(err, &closeErr) {
			t.Fatalf("socket ended with %v, want close 1001", err)
		}
		break
	}
	if closeErr.Code != websocket.CloseGoingAway {
		t.Errorf("close code = %d, want %d (going away)", closeErr.Code, websocket.CloseGoingAway)
	}
	conn.Close()

	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("run = %v, want nil after a clean shutdown\n%s", err, logTail(logs.String(), 20))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30s of cancel")
	}
	if resp, err := web.Get(base + "/readyz"); err == nil {
		resp.Body.Close()
		t.Errorf("GET /readyz after shutdown = %d, want no answer", resp.StatusCode)
	}
	if _, _, err := wsDial(base, &http.Cookie{Name: "__Host-session", Value: "x"}); err == nil {
		t.Error("a new socket was accepted after shutdown")
	}
	tr.CloseIdleConnections()
	// Every goroutine run started has ended: the hub, the sockets' readers
	// and writers, the HTTP server's and the database's.
	goleak.VerifyNone(t, ignore)
}
