package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"familieportal/portal/db"
	"familieportal/portal/db/dbtest"
)

// instance is one run() of the portal, in this process.
type instance struct {
	base   string
	logs   *syncBuffer
	cancel context.CancelFunc
	errc   chan error
}

// startInstance runs `portal cmd` on dsn and a free port until the test
// ends, and waits until it is ready.
func startInstance(t *testing.T, cmd, dsn string) *instance {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{"PORTAL_ADDR": addr, "PORTAL_DB": dsn, "PORTAL_LOG_LEVEL": "debug"}
	in := &instance{base: "http://" + addr, logs: &syncBuffer{}, errc: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() {
		in.errc <- run(ctx, []string{cmd, "--demo-data", "../../testdata/demo"}, func(k string) string { return env[k] }, in.logs)
	}()
	t.Cleanup(func() { in.stop(t) })
	waitReady(t, in.base, in.errc)
	return in
}

// stop shuts the instance down and expects a clean exit. It is idempotent.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	if in.cancel == nil {
		return
	}
	in.cancel()
	in.cancel = nil
	select {
	case err := <-in.errc:
		if err != nil {
			t.Errorf("%s: run = %v\n%s", in.base, err, logTail(in.logs.String(), 20))
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30s", in.base)
	}
	checkChildLog(t, in.base, in.logs.String())
}

// listener returns the application_name of the instance's LISTEN
// connection, from its log.
func (in *instance) listener(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(in.logs.String(), "\n") {
		var e struct {
			Msg  string `json:"msg"`
			Name string `json:"application_name"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "chat broker listening" && e.Name != "" {
			return e.Name
		}
	}
	t.Fatalf("%s logged no listening connection:\n%s", in.base, logTail(in.logs.String(), 20))
	return ""
}

// readUntil reads frames from conn until one of type typ.
func readUntil(t *testing.T, conn *websocket.Conn, who, typ string) wsFrame {
	t.Helper()
	for {
		f, err := wsRead(conn)
		if err != nil {
			t.Fatalf("%s: waiting for %s: %v", who, typ, err)
		}
		if f.Type == typ {
			return f
		}
	}
}

// TestRun_twoInstancesOnPostgres runs two portals on one PostgreSQL
// database, as behind a load balancer: a message sent through A reaches a
// socket on B live; when B's LISTEN connection is cut from the server side,
// B reconnects and its socket misses nothing; signing out on A closes the
// person's socket on B.
func TestRun_twoInstancesOnPostgres(t *testing.T) {
	dsn := dbtest.DSN(t, db.Postgres) // skips without PostgreSQL (fails under CI=true)
	web, tr := newWebClient()
	defer tr.CloseIdleConnections()
	a := startInstance(t, "demo", dsn) // loads the demo cast
	b := startInstance(t, "serve", dsn)

	// Sessions live in the database: signed in on A, valid on B.
	sara := demoSignIn(t, web, a.base, "sara")
	kari := demoSignIn(t, web, a.base, "kari")
	saraB, hello, err := wsDial(b.base, sara)
	if err != nil {
		t.Fatal(err)
	}
	defer saraB.Close()
	kariA, _, err := wsDial(a.base, kari)
	if err != nil {
		t.Fatal(err)
	}
	defer kariA.Close()
	if len(hello.Conversations) == 0 {
		t.Fatal("Sara's hello on B lists no conversations")
	}
	conv := hello.Conversations[0].ID

	send := func(body string) wsFrame {
		t.Helper()
		id := newClientID()
		if err := wsWrite(kariA, wsSend{Type: "send", Conversation: conv, ClientID: id, Body: body}); err != nil {
			t.Fatal(err)
		}
		ack := readUntil(t, kariA, "kari on A", "ack")
		if ack.ClientID != id {
			t.Fatalf("ack %+v, want client id %s", ack, id)
		}
		return ack
	}

	// 1. Live from A to B.
	ack := send("Hei Sara, dette går via instans A.")
	if m := readUntil(t, saraB, "sara on B", "message"); m.Seq != ack.Seq || m.ID != ack.ID || m.Body != "Hei Sara, dette går via instans A." {
		t.Fatalf("Sara on B got %+v, want seq %d", m, ack.Seq)
	}

	// 2. Cut B's LISTEN connection from the server side, and go on writing.
	admin, err := db.Open(context.Background(), dsn, db.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var pids []int
	if err := admin.Select(&pids, admin.Rebind(`
		SELECT pid FROM pg_stat_activity WHERE application_name = ?`), b.listener(t)); err != nil || len(pids) != 1 {
		t.Fatalf("B's listening connections: %v (err %v), want one", pids, err)
	}
	var cut bool
	if err := admin.Get(&cut, admin.Rebind(`SELECT pg_terminate_backend(?)`), pids[0]); err != nil || !cut {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pids[0], cut, err)
	}
	var acks []wsFrame
	for _, body := range []string{"Første etter bruddet.", "Andre.", "Tredje."} {
		acks = append(acks, send(body))
	}
	for _, want := range acks {
		if m := readUntil(t, saraB, "sara on B", "message"); m.Seq != want.Seq || m.ID != want.ID {
			t.Fatalf("Sara on B got seq %d (%s), want seq %d: a message went missing", m.Seq, m.ID, want.Seq)
		}
	}
	for i := 0; !strings.Contains(b.logs.String(), "chat broker listening again"); i++ {
		if i == 100 {
			t.Fatalf("B never reconnected its listening connection:\n%s", logTail(b.logs.String(), 20))
		}
		time.Sleep(50 * time.Millisecond) // polling B's log, not a guess at timing
	}
	// Live again after the gap.
	ack = send("Og nå er alt som før.")
	if m := readUntil(t, saraB, "sara on B", "message"); m.Seq != ack.Seq {
		t.Fatalf("Sara on B got seq %d after the gap, want %d", m.Seq, ack.Seq)
	}

	// 3. Signing out on A closes Sara's socket on B.
	req, _ := http.NewRequest(http.MethodPost, a.base+"/signout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin") // a browser's own form post
	req.AddCookie(sara)
	resp, err := web.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		t.Fatalf("POST /signout on A = %d", resp.StatusCode)
	}
	for {
		_, err := wsRead(saraB)
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != websocket.ClosePolicyViolation {
				t.Errorf("Sara's socket on B closed with %d, want 1008", ce.Code)
			}
			break
		}
		if err != nil {
			t.Fatalf("Sara's socket on B after signing out on A: %v, want close 1008", err)
		}
	}
	// Kari's socket on A is untouched.
	send("Kari er fortsatt pålogget.")

	b.stop(t)
	a.stop(t)
}
