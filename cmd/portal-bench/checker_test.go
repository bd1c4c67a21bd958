package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fault is how the fake server breaks delivery.
type fault int

const (
	faultNone    fault = iota
	faultLose          // every 5th message never reaches one recipient
	faultDup           // every 5th message reaches its recipients twice
	faultReorder       // every 4th message reaches its recipients after the next one
	faultSeq           // every 5th message is delivered with a seq other than its ack's
)

// fakeServer is a tiny protocol-v1 chat server with a fault switch: it
// acks every send, then delivers it to every socket of the conversation's
// audience, the sender's included.
type fakeServer struct {
	topo  *topology
	fault fault

	mu    sync.Mutex
	socks map[string][]*fakeConn // user → sockets
	seq   map[string]int64
	n     int
	held  map[string][]byte // conversation → a frame held back (faultReorder)
}

type fakeConn struct {
	mu   sync.Mutex // one writer at a time
	conn *websocket.Conn
}

func (c *fakeConn) write(b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn.WriteMessage(websocket.TextMessage, b)
}

func (fs *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("u")
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	c := &fakeConn{conn: conn}
	var convs []map[string]any
	for _, id := range fs.topo.Users[user].Convs {
		convs = append(convs, map[string]any{"id": id, "case": "k", "title": "t", "last_seq": 0, "unread": 0})
	}
	hello, _ := json.Marshal(map[string]any{"type": "hello", "v": 1,
		"user": map[string]string{"id": user, "name": user, "role": "citizen"}, "conversations": convs})
	// The hello and the registration under one lock: the client sends as
	// soon as it has its hello, and a message delivered in between would
	// miss this socket (a loss the checker rightly reported, under load).
	fs.mu.Lock()
	c.write(hello)
	fs.socks[user] = append(fs.socks[user], c)
	fs.mu.Unlock()
	for {
		_, raw, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var in struct {
			Type, Conversation, Body string
			ClientID                 string `json:"client_id"`
		}
		if json.Unmarshal(raw, &in) != nil || in.Type != "send" {
			continue
		}
		fs.deliver(user, c, in.Conversation, in.ClientID, in.Body)
	}
}

func (fs *fakeServer) deliver(user string, from *fakeConn, conv, clientID, body string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.seq[conv]++
	fs.n++
	seq, n := fs.seq[conv], fs.n
	from.write(fmt.Appendf(nil, `{"type":"ack","client_id":%q,"conversation":%q,"id":"m%d","seq":%d,"at":"2026-01-01T00:00:00.000Z"}`,
		clientID, conv, n, seq))
	msg := func(seq int64) []byte {
		b, _ := json.Marshal(map[string]any{"type": "message", "conversation": conv, "id": fmt.Sprint("m", n), "seq": seq,
			"sender": map[string]string{"id": user, "name": user, "role": "citizen"}, "kind": "text", "body": body,
			"at": "2026-01-01T00:00:00.000Z"})
		return b
	}
	f := msg(seq)
	switch {
	case fs.fault == faultReorder && n%4 == 0:
		fs.held[conv] = f
		return
	case fs.fault == faultSeq && n%5 == 0:
		f = msg(seq + 1000)
	}
	for i, u := range fs.topo.Convs[conv].Audience {
		for _, c := range fs.socks[u] {
			if fs.fault == faultLose && n%5 == 0 && i == 0 {
				continue
			}
			c.write(f)
			if fs.fault == faultDup && n%5 == 0 {
				c.write(f)
			}
		}
	}
	if h := fs.held[conv]; h != nil && fs.fault == faultReorder {
		delete(fs.held, conv)
		for _, u := range fs.topo.Convs[conv].Audience {
			for _, c := range fs.socks[u] {
				c.write(h)
			}
		}
	}
}

// testTopology is three families with their caseworker: each family
// member has a conversation with the caseworker.
func testTopology() *topology {
	t := &topology{Users: map[string]topoUser{}, Convs: map[string]topoConv{}}
	t.Order = []string{"cw", "a", "b", "c"}
	t.Users["cw"] = topoUser{Name: "cw", Role: "caseworker"}
	for _, u := range []string{"a", "b", "c"} {
		conv := "conv-" + u
		t.Users[u] = topoUser{Name: u, Role: "citizen", Convs: []string{conv}}
		cw := t.Users["cw"]
		cw.Convs = append(cw.Convs, conv)
		t.Users["cw"] = cw
		t.Convs[conv] = topoConv{Case: "k", Title: "t", Audience: []string{u, "cw"}}
	}
	return t
}

// runChecked connects the bench's own clients to a fake server with fault
// f, sends 200 messages through the bench's own send path, and returns the
// checker's verdict.
func runChecked(t *testing.T, f fault) verdict {
	t.Helper()
	topo := testTopology()
	fs := &fakeServer{topo: topo, fault: f, socks: map[string][]*fakeConn{}, seq: map[string]int64{}, held: map[string][]byte{}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	ctx := context.Background()
	fl, err := connectFleet(ctx, &target{name: "fake", addr: strings.TrimPrefix(srv.URL, "http://")}, topo, topo.Order, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.close()
	if fl.helloDiff != 0 {
		t.Fatalf("helloDiff = %d, want 0", fl.helloDiff)
	}
	ck := newChecker(0)
	senders := fl.senders(1)
	for i := 0; i < 200; i++ {
		ss := senders[i%len(senders)]
		if !fl.send(ck, ss[(i/len(senders))%len(ss)]) {
			t.Fatalf("send %d: the client's queue is full", i)
		}
	}
	ck.wait(3*time.Second, 20*time.Second)
	ck.verify()
	return ck.verdict()
}

func TestChecker_correctServerPasses(t *testing.T) {
	v := runChecked(t, faultNone)
	if v.failed() {
		t.Fatalf("verdict on a correct server: %s\n%s", v.short(), strings.Join(v.Problems, "\n"))
	}
	if v.Acked != v.Sent || v.Delivered != 2*v.Sent {
		t.Errorf("sent %d, acked %d, delivered %d; want every message acked and delivered to both members", v.Sent, v.Acked, v.Delivered)
	}
}

func TestChecker_brokenServersFail(t *testing.T) {
	tests := []struct {
		name  string
		fault fault
		count func(verdict) int64
	}{
		{"a server that loses messages fails", faultLose, func(v verdict) int64 { return v.Lost }},
		{"a server that duplicates messages fails", faultDup, func(v verdict) int64 { return v.Duplicate }},
		{"a server that reorders messages fails", faultReorder, func(v verdict) int64 { return v.Reordered }},
		{"a server whose delivered seq differs from the ack fails", faultSeq, func(v verdict) int64 { return v.SeqMismatch }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := runChecked(t, tt.fault)
			if !v.failed() {
				t.Fatalf("verdict = %s; want a failure", v.short())
			}
			if tt.count(v) == 0 {
				t.Errorf("verdict = %s; the fault was not counted where expected", v.short())
			}
		})
	}
}

func TestHist_quantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * 10 * time.Microsecond) // 10 µs … 10 ms
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.99, 9900 * time.Microsecond}, {1, 10 * time.Millisecond}} {
		got := h.quantile(tt.q)
		if d := got - tt.want; d < -tt.want/40 || d > tt.want/40 {
			t.Errorf("quantile(%v) = %v, want %v ± 2.5%%", tt.q, got, tt.want)
		}
	}
}

func TestParseBody(t *testing.T) {
	cid, ns, ok := parseBody("bench babc-1 12345 " + filler)
	if !ok || cid != "babc-1" || ns != 12345 {
		t.Errorf("parseBody = %q, %d, %v; want babc-1, 12345, true", cid, ns, ok)
	}
	if _, _, ok := parseBody("hei, takk"); ok {
		t.Error("parseBody accepted a body the bench did not write")
	}
}
