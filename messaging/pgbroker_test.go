package messaging_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"familieportal/messaging"
	"familieportal/portal/db"
	"familieportal/portal/db/dbtest"
)

// instance is one portal instance's chat: its own hub, service, broker and
// websocket server, on the world's shared PostgreSQL database.
type instance struct {
	w      *world
	hub    *messaging.Hub
	svc    *messaging.Service
	broker *messaging.PGBroker
	srv    *httptest.Server
	origin string
}

// twoInstances starts instances A and B on one PostgreSQL database. It
// skips the SQLite pass: several instances need PostgreSQL.
func twoInstances(t *testing.T, tweak func(*messaging.PGBrokerConfig)) (*world, *instance, *instance) {
	t.Helper()
	if dbtest.Current() != db.Postgres {
		t.Skip("several instances share a PostgreSQL database; this runs in the PostgreSQL pass")
	}
	// Registered first, so it runs last, after every other cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t) })
	w := newWorld(t)
	return w, startInstance(t, w, tweak), startInstance(t, w, tweak)
}

func startInstance(t *testing.T, w *world, tweak func(*messaging.PGBrokerConfig)) *instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := &instance{w: w, hub: messaging.NewHub(), origin: "http://" + ln.Addr().String()}
	ctx, stop := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		in.hub.Run(ctx)
	}()
	cfg := messaging.PGBrokerConfig{URL: w.dsn, DB: w.db, Store: w.store, Auth: w.auth, Hub: in.hub}
	if tweak != nil {
		tweak(&cfg)
	}
	in.broker, err = messaging.NewPGBroker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	brokerDone := make(chan struct{})
	go func() {
		defer close(brokerDone)
		in.broker.Run(ctx)
	}()
	select {
	case <-in.broker.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("broker not listening after 10s")
	}
	in.svc, err = messaging.NewService(w.store, w.auth, in.hub, messaging.Config{
		Origins: []string{in.origin}, Publisher: in.broker,
	})
	if err != nil {
		t.Fatal(err)
	}
	in.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p, ok := w.people[r.URL.Query().Get("as")]
		if !ok {
			http.NotFound(rw, r)
			return
		}
		in.svc.ServeConn(rw, r, p)
	}))
	in.srv.Listener = ln
	in.srv.Start()
	t.Cleanup(func() {
		stop()
		<-hubDone
		<-brokerDone
		in.svc.Wait()
		in.srv.Close()
	})
	return in
}

// dial connects to this instance as who and reads the hello frame.
func (in *instance) dial(t *testing.T, who string) *socket {
	t.Helper()
	u := "ws" + strings.TrimPrefix(in.srv.URL, "http") + "/ws?as=" + who
	conn, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {in.origin}})
	if err != nil {
		t.Fatalf("dial as %s: %v", who, err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &socket{t: t, conn: conn}
	s.hello = s.expect("hello")
	return s
}

// listenerPID returns the backend pid of in's listening connection, 0 if
// it has none.
func (in *instance) listenerPID(t *testing.T) int {
	t.Helper()
	var pids []int
	if err := in.w.db.Select(&pids, in.w.db.Rebind(`
		SELECT pid FROM pg_stat_activity WHERE application_name = ?`), in.broker.ListenerName()); err != nil {
		t.Fatal(err)
	}
	if len(pids) == 0 {
		return 0
	}
	return pids[0]
}

// nextOf reads frames until one of type typ, skipping others (typing,
// read and availability frames may interleave).
func (s *socket) nextOf(typ string) frame {
	s.t.Helper()
	for {
		if f := s.next(); f.Type == typ {
			return f
		}
	}
}

func TestPGBroker_eventsReachOtherInstances(t *testing.T) {
	w, a, b := twoInstances(t, nil)
	conv := w.conv["emma-sara"]
	kari := a.dial(t, "kari")
	sara := b.dial(t, "sara")

	// A message sent through A reaches Sara's socket on B, live, with what
	// a replay would show.
	ack := kari.send(conv, "cross-1", "Hei Sara, fra instans A")
	m := sara.nextOf("message")
	if m.Conversation != conv || m.Seq != ack.Seq || m.ID != ack.ID || m.Body != "Hei Sara, fra instans A" ||
		m.Sender == nil || m.Sender.Name != "Kari Nordmann" || m.At != ack.At {
		t.Errorf("Sara on B got %s, want Kari's message seq %d", m.raw, ack.Seq)
	}

	// Typing and read receipts are rebuilt from ids on the other side.
	sara.write(map[string]any{"type": "typing", "conversation": conv})
	if f := kari.nextOf("typing"); f.By == nil || f.By.ID != w.ids["sara"] || f.By.Name != "Sara Hansen" {
		t.Errorf("Kari on A got typing %s, want Sara's", f.raw)
	}
	sara.write(map[string]any{"type": "read", "conversation": conv, "seq": ack.Seq})
	if f := kari.nextOf("read"); f.Seq != ack.Seq || f.By == nil || f.By.ID != w.ids["sara"] {
		t.Errorf("Kari on A got read %s, want Sara's at seq %d", f.raw, ack.Seq)
	}

	// And back: Sara's answer through B reaches Kari on A.
	sara.send(conv, "cross-2", "Takk!")
	if f := kari.nextOf("message"); f.Body != "Takk!" || f.Seq != ack.Seq+1 {
		t.Errorf("Kari on A got %s, want Sara's answer", f.raw)
	}
}

func TestPGBroker_catchesUpAfterLosingItsConnection(t *testing.T) {
	// A slow reconnect, so the messages below land in the gap.
	w, a, b := twoInstances(t, func(c *messaging.PGBrokerConfig) { c.MinBackoff = time.Second })
	conv := w.conv["emma-sara"]
	sara := b.dial(t, "sara")
	ctx := context.Background()

	old := b.listenerPID(t)
	if old == 0 {
		t.Fatal("no listening connection for B")
	}
	// Cut B's listening connection from the server side.
	var ok bool
	if err := w.db.Get(&ok, w.db.Rebind(`SELECT pg_terminate_backend(?)`), old); err != nil || !ok {
		t.Fatalf("pg_terminate_backend = %v, %v", ok, err)
	}
	var sent []messaging.Message
	for i, body := range []string{"en", "to", "tre"} {
		m, err := a.svc.Send(ctx, w.people["kari"], conv, "gap-"+string(rune('a'+i)), body)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	// Nothing is missed, in order, once B listens again.
	for _, want := range sent {
		if f := sara.nextOf("message"); f.Seq != want.Seq || f.Body != want.Body {
			t.Fatalf("Sara on B got %s, want seq %d %q", f.raw, want.Seq, want.Body)
		}
	}
	if pid := b.listenerPID(t); pid == 0 || pid == old {
		t.Errorf("B's listener pid = %d, want a new one (old %d)", pid, old)
	}
	// And it is live again.
	m, err := a.svc.Send(ctx, w.people["kari"], conv, "after-gap", "fire")
	if err != nil {
		t.Fatal(err)
	}
	if f := sara.nextOf("message"); f.Seq != m.Seq {
		t.Errorf("Sara on B got %s after the gap, want seq %d", f.raw, m.Seq)
	}
}

func TestPGBroker_reconcileDeliversWhatWasNeverAnnounced(t *testing.T) {
	w, _, b := twoInstances(t, func(c *messaging.PGBrokerConfig) { c.Reconcile = 200 * time.Millisecond })
	conv := w.conv["emma-sara"]
	sara := b.dial(t, "sara")
	// Stored, but never published: as if the sending instance died between
	// its commit and its NOTIFY.
	m, _, err := w.store.InsertMessage(context.Background(), messaging.Draft{
		ConversationID: conv, SenderID: w.ids["kari"], ClientID: "orphan", Body: "uten varsel", Kind: messaging.KindText,
	})
	if err != nil {
		t.Fatal(err)
	}
	if f := sara.nextOf("message"); f.Seq != m.Seq || f.ID != m.ID {
		t.Errorf("Sara on B got %s, want the unannounced seq %d", f.raw, m.Seq)
	}
}

func TestPGBroker_disconnectClosesSocketsOnEveryInstance(t *testing.T) {
	w, a, b := twoInstances(t, nil)
	sara := b.dial(t, "sara")
	jonas := b.dial(t, "jonas")
	if err := a.svc.Disconnect(context.Background(), w.ids["sara"]); err != nil {
		t.Fatal(err)
	}
	if code, _ := sara.closeCode(); code != websocket.ClosePolicyViolation {
		t.Errorf("Sara's socket on B closed with %d, want 1008", code)
	}
	// Nobody else's.
	jonas.send(w.conv["emma-jonas"], "still-here", "hei")
}

func TestPGBroker_revokedPartyGetsNothingOnOtherInstances(t *testing.T) {
	w, a, b := twoInstances(t, nil)
	conv := w.conv["emma-sara"]
	sara := b.dial(t, "sara")
	ingrid := b.dial(t, "ingrid") // the team lead sees when B has delivered
	kari := a.dial(t, "kari")
	w.db.MustExec(w.db.Rebind(`UPDATE parties SET revoked_at = ? WHERE user_id = ?`), time.Now().UTC(), w.ids["sara"])
	first := kari.send(conv, "after-revoke", "ikke til Sara")
	if f := ingrid.nextOf("message"); f.Seq != first.Seq {
		t.Fatalf("Ingrid on B got %s, want seq %d", f.raw, first.Seq)
	}
	// A message Sara may see comes next, so nothing else arrived before it:
	// her rights are back, and B resolves the audience afresh.
	w.db.MustExec(w.db.Rebind(`UPDATE parties SET revoked_at = NULL WHERE user_id = ?`), w.ids["sara"])
	kari.write(sendFrame(conv, "after-restore", "til Sara"))
	ack := kari.nextOf("ack") // after the first message's own live frame
	if f := sara.nextOf("message"); f.Seq != ack.Seq {
		t.Errorf("Sara on B got %s first, want only seq %d (the first went out while she was revoked)", f.raw, ack.Seq)
	}
}
