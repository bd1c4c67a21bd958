package messaging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"familieportal/messaging"
)

func TestServeConn_hello(t *testing.T) {
	c := newChat(t, nil)
	ctx := context.Background()
	// One message from Kari in Sara's conversation: unread for Sara, not
	// for Kari, who sent it.
	if _, err := c.svc.Send(ctx, c.people["kari"], c.conv["emma-sara"], "k-1", "Hei Sara"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		who  string
		want []string // conversation names, in the Authorizer's order
	}{
		{"sara", []string{"emma-sara"}},
		{"noah", []string{"noah-noah"}},
		{"leila", []string{"noah-leila"}}, // never the youth's conversation
		{"kari", []string{"emma-jonas", "emma-sara"}},
		{"ingrid", []string{"emma-jonas", "emma-sara", "noah-leila", "noah-noah"}},
		{"per", nil},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			s := c.dial(t, tt.who)
			h := s.hello
			if h.V != 1 || h.User == nil || h.User.ID != c.ids[tt.who] || h.User.Role == "" || h.User.Name == "" {
				t.Fatalf("hello = %s", h.raw)
			}
			if !strings.Contains(h.raw, `"conversations":[`) {
				t.Errorf("hello has no conversations list: %s", h.raw)
			}
			got := map[string]bool{}
			for _, hc := range h.Conversations {
				got[hc.ID] = true
			}
			if len(h.Conversations) != len(tt.want) {
				t.Fatalf("hello lists %d conversations, want %v: %s", len(h.Conversations), tt.want, h.raw)
			}
			for _, name := range tt.want {
				if !got[c.conv[name]] {
					t.Errorf("hello misses %s: %s", name, h.raw)
				}
			}
			for _, hc := range h.Conversations {
				if hc.ID != c.conv["emma-sara"] {
					continue
				}
				wantUnread := 0
				if tt.who == "sara" || tt.who == "ingrid" {
					wantUnread = 1
				}
				if hc.Case != "case-emma" || hc.Title != "Emma" || hc.LastSeq != 1 || hc.Unread != wantUnread {
					t.Errorf("emma-sara in hello = %+v, want case-emma, Emma, last_seq 1, unread %d", hc, wantUnread)
				}
			}
		})
	}
}

func TestServeConn_membersSeeEachOtherLive(t *testing.T) {
	c := newChat(t, nil)
	conv := c.conv["emma-sara"]
	sara := c.dial(t, "sara")
	kari := c.dial(t, "kari")
	jonas := c.dial(t, "jonas")

	ack := sara.send(conv, "c0ffee00-0000-4000-8000-000000000001", "Hei Kari! Når er møtet?")
	if ack.Seq != 1 || ack.ID == "" {
		t.Fatalf("ack = %s, want seq 1 and an id", ack.raw)
	}
	if _, err := time.Parse(time.RFC3339, ack.At); err != nil || !strings.HasSuffix(ack.At, "Z") {
		t.Errorf("ack at = %q, want RFC 3339 UTC", ack.At)
	}
	// The sender's other tabs need the message too; the sending socket gets
	// it after the ack.
	echo := sara.expect("message")
	got := kari.expect("message")
	for _, m := range []frame{echo, got} {
		if m.Conversation != conv || m.ID != ack.ID || m.Seq != 1 || m.At != ack.At ||
			m.Body != "Hei Kari! Når er møtet?" || m.Kind != "text" ||
			m.Sender == nil || m.Sender.ID != c.ids["sara"] || m.Sender.Name != "Sara Hansen" || m.Sender.Role != "citizen" {
			t.Errorf("message = %s", m.raw)
		}
	}

	kari.send(conv, "k-2", "Hei! Torsdag kl. 10.")
	kari.expect("message")
	if m := sara.expect("message"); m.Seq != 2 || m.Body != "Hei! Torsdag kl. 10." || m.Sender.Role != "caseworker" {
		t.Errorf("Sara got %s", m.raw)
	}

	// Jonas, Emma's other parent, must have received neither. Kari now
	// writes to him; the hub delivers in order, so that must be his first
	// frame.
	kari.send(c.conv["emma-jonas"], "k-3", "Hei Jonas")
	if m := jonas.expect("message"); m.Conversation != c.conv["emma-jonas"] {
		t.Errorf("Jonas got %s, want only his own conversation", m.raw)
	}
}

func TestServeConn_nonMemberGetsNotFound(t *testing.T) {
	c := newChat(t, nil)
	ctx := context.Background()
	// Noah's private conversation has a message, so sync would have
	// something to leak.
	if _, err := c.svc.Send(ctx, c.people["noah"], c.conv["noah-noah"], "n-1", "privat"); err != nil {
		t.Fatal(err)
	}
	noah := c.dial(t, "noah")

	tests := []struct {
		name, who, conv string
	}{
		{"parent on the youth's conversation", "leila", c.conv["noah-noah"]},
		{"parent on the other parent's conversation", "jonas", c.conv["emma-sara"]},
		{"caseworker on a case not theirs", "kari", c.conv["noah-noah"]},
		{"person with no case", "per", c.conv["noah-noah"]},
		{"conversation that does not exist", "sara", "no-such-conversation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := c.dial(t, tt.who)
			checkNotFound := func(action string, f frame, clientID string) {
				t.Helper()
				if f.Type != "error" || f.Code != "not_found" || f.Conversation != tt.conv ||
					f.ClientID != clientID || f.Message != "T:chat_error_not_found" {
					t.Errorf("%s: got %s, want a not_found error", action, f.raw)
				}
			}
			s.write(sendFrame(tt.conv, "x-1", "hei"))
			checkNotFound("send", s.next(), "x-1")

			s.write(map[string]any{"type": "sync", "cursors": map[string]int64{tt.conv: 0}})
			checkNotFound("sync", s.next(), "")
			s.expect("synced")

			s.write(map[string]any{"type": "read", "conversation": tt.conv, "seq": 1})
			checkNotFound("read", s.next(), "")

			s.write(map[string]any{"type": "typing", "conversation": tt.conv})
			checkNotFound("typing", s.next(), "")
		})
	}

	if n := c.count(t, `SELECT COUNT(*) FROM messages`); n != 1 {
		t.Errorf("%d messages stored, want only Noah's", n)
	}
	if n := c.count(t, `SELECT COUNT(*) FROM conversation_members WHERE last_read_seq > 0`); n != 0 {
		t.Errorf("%d read cursors moved, want none", n)
	}
	// 5 cases × 4 frames, each refused and audited.
	if n := c.count(t, `SELECT COUNT(*) FROM audit WHERE outcome = 'denied' AND action LIKE 'chat.%'`); n != 20 {
		t.Errorf("%d denied chat actions audited, want 20", n)
	}
	// Noah saw no typing, read or message frame from anyone: his first
	// frame is the message Ola now sends.
	ola := c.dial(t, "ola")
	ola.send(c.conv["noah-noah"], "o-1", "Hei Noah")
	if f := noah.expect("message"); f.Sender.ID != c.ids["ola"] {
		t.Errorf("Noah got %s, want Ola's message", f.raw)
	}
}

func TestServeConn_duplicateClientID(t *testing.T) {
	c := newChat(t, nil)
	conv := c.conv["emma-sara"]

	t.Run("sequential resend gets the original ack", func(t *testing.T) {
		sara := c.dial(t, "sara")
		kari := c.dial(t, "kari")
		first := sara.send(conv, "dup-seq", "Hei")
		sara.expect("message")
		second := sara.send(conv, "dup-seq", "Hei") // the client did not see the first ack
		if second.raw != first.raw {
			t.Errorf("resend ack = %s, want %s", second.raw, first.raw)
		}
		if n := c.count(t, `SELECT COUNT(*) FROM messages WHERE client_id = 'dup-seq'`); n != 1 {
			t.Errorf("%d messages stored, want 1", n)
		}
		// Kari got the message once: the next frame after it is the marker.
		kari.expect("message")
		sara.send(conv, "marker-1", "marker")
		if f := kari.expect("message"); f.Body != "marker" {
			t.Errorf("Kari got %s, want the marker (the resend must not be delivered again)", f.raw)
		}
	})

	t.Run("concurrent sends over several sockets store one message", func(t *testing.T) {
		const n = 4
		socks := make([]*socket, n)
		for i := range socks {
			socks[i] = c.dial(t, "sara")
		}
		var wg sync.WaitGroup
		acks := make([]string, n)
		start := make(chan struct{})
		for i, s := range socks {
			wg.Go(func() {
				<-start
				s.conn.WriteJSON(sendFrame(conv, "dup-conc", "samtidig"))
			})
			_ = i
		}
		close(start)
		wg.Wait()
		for i, s := range socks {
			// Each socket gets its ack and, from whichever send stored it,
			// one live message, in either order relative to each other.
			for {
				f := s.next()
				if f.Type == "ack" {
					acks[i] = f.raw
					break
				}
				if f.Type != "message" {
					t.Fatalf("socket %d got %s", i, f.raw)
				}
			}
		}
		for i := range acks {
			if acks[i] != acks[0] {
				t.Errorf("ack %d = %s, want %s", i, acks[i], acks[0])
			}
		}
		if n := c.count(t, `SELECT COUNT(*) FROM messages WHERE client_id = 'dup-conc'`); n != 1 {
			t.Errorf("%d messages stored, want 1", n)
		}
		if max, n := c.count(t, `SELECT MAX(seq) FROM messages WHERE conversation_id = ?`, conv),
			c.count(t, `SELECT COUNT(*) FROM messages WHERE conversation_id = ?`, conv); max != n {
			t.Errorf("seqs have gaps: max %d, count %d", max, n)
		}
	})
}

func TestServeConn_reconnectReplaysMissed(t *testing.T) {
	c := newChat(t, nil)
	conv := c.conv["emma-sara"]
	kari := c.dial(t, "kari")
	sara := c.dial(t, "sara")
	for i := 1; i <= 3; i++ {
		kari.send(conv, fmt.Sprintf("k-%d", i), fmt.Sprintf("melding %d", i))
		kari.expect("message")
		sara.expect("message")
	}
	sara.conn.Close() // Sara's phone goes into a tunnel

	for i := 4; i <= 7; i++ {
		kari.send(conv, fmt.Sprintf("k-%d", i), fmt.Sprintf("melding %d", i))
		kari.expect("message")
	}

	sara = c.dial(t, "sara")
	if h := sara.hello.Conversations; len(h) != 1 || h[0].LastSeq != 7 || h[0].Unread != 7 {
		t.Fatalf("hello = %s, want last_seq 7, unread 7", sara.hello.raw)
	}
	sara.write(map[string]any{"type": "sync", "cursors": map[string]int64{conv: 3}})
	for want := int64(4); want <= 7; want++ {
		f := sara.expect("message")
		if f.Seq != want || f.Body != fmt.Sprintf("melding %d", want) || f.Conversation != conv {
			t.Fatalf("replay got %s, want seq %d", f.raw, want)
		}
	}
	sara.expect("synced")

	// A sync with an up-to-date cursor replays nothing.
	sara.write(map[string]any{"type": "sync", "cursors": map[string]int64{conv: 7}})
	sara.expect("synced")
}

func TestServeConn_staleCursorNeedsResync(t *testing.T) {
	c := newChat(t, func(cfg *messaging.Config) { cfg.ResyncLimit = 5 })
	ctx := context.Background()
	conv := c.conv["emma-sara"]
	for i := 1; i <= 8; i++ {
		if _, err := c.svc.Send(ctx, c.people["kari"], conv, fmt.Sprintf("k-%d", i), "hei"); err != nil {
			t.Fatal(err)
		}
	}
	sara := c.dial(t, "sara")
	sara.write(map[string]any{"type": "sync", "cursors": map[string]int64{conv: 2}})
	if f := sara.expect("resync_required"); f.Conversation != conv || f.Message != "T:chat_error_resync" {
		t.Errorf("got %s", f.raw)
	}
	sara.expect("synced")

	sara.write(map[string]any{"type": "sync", "cursors": map[string]int64{conv: 3}}) // exactly the limit behind
	for want := int64(4); want <= 8; want++ {
		if f := sara.expect("message"); f.Seq != want {
			t.Fatalf("replay got %s, want seq %d", f.raw, want)
		}
	}
	sara.expect("synced")
}

func TestServeConn_slowClientIsCutOff(t *testing.T) {
	c := newChatOn(t, func(cfg *messaging.Config) {
		cfg.SendBurst = 1000
		cfg.FrameBurst = 1000
		// A write to the stuck client may block for this long; the other
		// sockets must not notice.
		cfg.WriteWait = time.Minute
	}, func(ln net.Listener) net.Listener { return smallSendBuffer{ln, new(sync.Once)} })
	conv := c.conv["emma-sara"]

	// The stuck client, dialled first, has small socket buffers on both
	// ends, so the server's writer blocks after a hundred kilobytes instead
	// of filling megabytes of kernel buffers. (Not tiny: a receive window
	// below loopback's 64 KB segment size stalls TCP itself.)
	dialer := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetReadBuffer(128 << 10)
			}
			return conn, err
		},
	}
	stuck, _, err := dialer.Dial(c.url("sara"), http.Header{"Origin": {c.origin}})
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	if _, _, err := stuck.ReadMessage(); err != nil { // hello, then it stops reading
		t.Fatal(err)
	}
	healthy := c.dial(t, "sara")
	kari := c.dial(t, "kari")

	const n = 300
	body := strings.Repeat("Dette er en lang melding. ", 120) // about 3 KB
	// Kari sends and reads her acks and echoes concurrently, as a browser
	// does; a sender that stopped reading its acks would itself be cut off.
	kariDone := make(chan error, 2)
	go func() {
		for i := range n {
			if err := kari.conn.WriteJSON(sendFrame(conv, fmt.Sprintf("k-%d", i), body)); err != nil {
				kariDone <- err
				return
			}
		}
	}()
	go func() {
		kari.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		for acks, msgs := 0, 0; acks < n || msgs < n; {
			var f frame
			if err := kari.conn.ReadJSON(&f); err != nil {
				kariDone <- err
				return
			}
			switch f.Type {
			case "ack":
				acks++
			case "message":
				msgs++
			default:
				kariDone <- fmt.Errorf("Kari got a %s frame", f.Type)
				return
			}
		}
		kariDone <- nil
	}()
	// The healthy socket gets every message while the stuck one is not
	// reading at all.
	for i := 1; i <= n; i++ {
		if f := healthy.expect("message"); f.Seq != int64(i) {
			t.Fatalf("healthy socket got seq %d, want %d", f.Seq, i)
		}
	}
	if err := <-kariDone; err != nil {
		t.Fatalf("Kari's socket: %v", err)
	}

	// Now the stuck client reads what was buffered for it, then finds it
	// was cut off with 1013 (try again later) and has to sync.
	sc := &socket{t: t, conn: stuck}
	code, got := sc.closeCode()
	if code != websocket.CloseTryAgainLater {
		t.Errorf("stuck client closed with %d, want %d", code, websocket.CloseTryAgainLater)
	}
	if got >= n {
		t.Errorf("stuck client got all %d messages; it was never cut off", got)
	}
	t.Logf("the stuck client got %d of %d messages before it was cut off", got, n)
}

// smallSendBuffer shrinks the kernel send buffer of the first accepted
// connection, so that if its client stops reading the server's writer
// blocks after kilobytes rather than megabytes. Only the first: the other
// sockets of the test read normally and keep normal buffers.
type smallSendBuffer struct {
	net.Listener
	once *sync.Once
}

func (l smallSendBuffer) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if tc, ok := conn.(*net.TCPConn); ok {
		l.once.Do(func() { tc.SetWriteBuffer(4096) })
	}
	return conn, err
}

func TestServeConn_badFrames(t *testing.T) {
	c := newChat(t, nil)
	conv := c.conv["emma-sara"]
	sara := c.dial(t, "sara")

	tests := []struct {
		name, raw, code, clientID string
	}{
		{"not JSON", `hello`, "invalid", ""},
		{"not an object", `["send"]`, "invalid", ""},
		{"unknown type", `{"type":"delete","conversation":"` + conv + `"}`, "invalid", ""},
		{"no type", `{"conversation":"` + conv + `"}`, "invalid", ""},
		{"unknown field", `{"type":"typing","conversation":"` + conv + `","admin":true}`, "invalid", ""},
		{"key in other case", `{"type":"typing","Conversation":"` + conv + `"}`, "invalid", ""},
		{"duplicate key", `{"type":"typing","conversation":"x","conversation":"` + conv + `"}`, "invalid", ""},
		{"duplicate cursor", `{"type":"sync","cursors":{"a":1,"a":2}}`, "invalid", ""},
		{"trailing data", `{"type":"typing","conversation":"` + conv + `"} {}`, "invalid", ""},
		{"trailing garbage", `{"type":"typing","conversation":"` + conv + `"}x`, "invalid", ""},
		{"sender in body is refused", `{"type":"send","conversation":"` + conv + `","client_id":"a1","body":"hi","sender":"kari"}`, "invalid", "a1"},
		{"seq in send is refused", `{"type":"send","conversation":"` + conv + `","client_id":"a1","body":"hi","seq":9}`, "invalid", "a1"},
		{"missing body", `{"type":"send","conversation":"` + conv + `","client_id":"a2"}`, "invalid", "a2"},
		{"null body", `{"type":"send","conversation":"` + conv + `","client_id":"a3","body":null}`, "invalid", "a3"},
		{"body not a string", `{"type":"send","conversation":"` + conv + `","client_id":"a4","body":5}`, "invalid", "a4"},
		{"bad client id", `{"type":"send","conversation":"` + conv + `","client_id":"a b","body":"hi"}`, "invalid", ""},
		{"empty body", `{"type":"send","conversation":"` + conv + `","client_id":"a5","body":"  \n "}`, "invalid", "a5"},
		{"control character", `{"type":"send","conversation":"` + conv + `","client_id":"a6","body":"hei\u0007"}`, "invalid", "a6"},
		{"escape character", `{"type":"send","conversation":"` + conv + `","client_id":"a7","body":"\u001b[31mhei"}`, "invalid", "a7"},
		{"too many characters", `{"type":"send","conversation":"` + conv + `","client_id":"a8","body":"` + strings.Repeat("a", messaging.MaxBodyRunes+1) + `"}`, "too_large", "a8"},
		{"too many bytes", `{"type":"send","conversation":"` + conv + `","client_id":"a9","body":"` + strings.Repeat("😀", messaging.MaxBodyBytes/4+1) + `"}`, "too_large", "a9"},
		{"negative seq", `{"type":"read","conversation":"` + conv + `","seq":-1}`, "invalid", ""},
		{"fractional seq", `{"type":"read","conversation":"` + conv + `","seq":1.5}`, "invalid", ""},
		{"huge seq", `{"type":"read","conversation":"` + conv + `","seq":1e30}`, "invalid", ""},
		{"negative cursor", `{"type":"sync","cursors":{"` + conv + `":-1}}`, "invalid", ""},
		{"cursors not an object", `{"type":"sync","cursors":[1]}`, "invalid", ""},
		{"empty conversation id", `{"type":"typing","conversation":""}`, "invalid", ""},
		{"conversation id too long", `{"type":"typing","conversation":"` + strings.Repeat("x", messaging.MaxIDLen+1) + `"}`, "invalid", ""},
		{"deep nesting", `{"type":"sync","cursors":{"a":{"b":{"c":{"d":[[[1]]]}}}}}`, "invalid", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sara.writeRaw(tt.raw)
			f := sara.expect("error")
			if f.Code != tt.code || f.ClientID != tt.clientID || f.Message != "T:chat_error_"+tt.code {
				t.Errorf("got %s, want code %s, client_id %q", f.raw, tt.code, tt.clientID)
			}
		})
	}

	t.Run("invalid UTF-8", func(t *testing.T) {
		if err := sara.conn.WriteMessage(websocket.TextMessage,
			[]byte(`{"type":"send","conversation":"`+conv+`","client_id":"u1","body":"h`+"\xff"+`i"}`)); err != nil {
			t.Fatal(err)
		}
		if f := sara.expect("error"); f.Code != "invalid" {
			t.Errorf("got %s", f.raw)
		}
	})
	t.Run("binary frame", func(t *testing.T) {
		if err := sara.conn.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"typing"}`)); err != nil {
			t.Fatal(err)
		}
		if f := sara.expect("error"); f.Code != "invalid" {
			t.Errorf("got %s", f.raw)
		}
	})

	t.Run("the socket still works", func(t *testing.T) {
		// Limits are inclusive: exactly MaxBodyRunes characters is fine.
		ack := sara.send(conv, "ok-1", strings.Repeat("æ", messaging.MaxBodyRunes))
		if ack.Seq != 1 {
			t.Errorf("ack = %s, want seq 1 (nothing invalid was stored)", ack.raw)
		}
		sara.expect("message")
		ack = sara.send(conv, "ok-2", "Linje 1\r\nLinje 2\tmed tab")
		if f := sara.expect("message"); f.Body != "Linje 1\nLinje 2\tmed tab" {
			t.Errorf("body = %q, want CRLF stored as LF", f.Body)
		}
	})

	t.Run("a frame over the read limit closes the socket with 1009", func(t *testing.T) {
		s := c.dial(t, "sara")
		s.writeRaw(`{"type":"send","conversation":"` + conv + `","client_id":"big","body":"` + strings.Repeat("a", 70<<10) + `"}`)
		if code, _ := s.closeCode(); code != websocket.CloseMessageTooBig {
			t.Errorf("close code %d, want %d", code, websocket.CloseMessageTooBig)
		}
		if n := c.count(t, `SELECT COUNT(*) FROM messages WHERE client_id = 'big'`); n != 0 {
			t.Errorf("oversized message stored")
		}
	})
}

func TestServeConn_origin(t *testing.T) {
	c := newChat(t, nil)
	tests := []struct {
		name    string
		origins []string // nil: no Origin header
		want    int
	}{
		{"own origin", []string{c.origin}, http.StatusSwitchingProtocols},
		{"foreign origin", []string{"https://evil.example"}, http.StatusForbidden},
		{"null origin", []string{"null"}, http.StatusForbidden},
		{"missing origin", nil, http.StatusForbidden},
		{"other scheme", []string{strings.Replace(c.origin, "http:", "https:", 1)}, http.StatusForbidden},
		{"trailing slash", []string{c.origin + "/"}, http.StatusForbidden},
		{"prefix trick", []string{c.origin + ".evil.example"}, http.StatusForbidden},
		{"two Origin headers", []string{c.origin, "https://evil.example"}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, o := range tt.origins {
				h.Add("Origin", o)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(c.url("sara"), h)
			if conn != nil {
				conn.Close()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestServeConn_shutdownSendsGoingAway(t *testing.T) {
	c := newChat(t, nil)
	sara := c.dial(t, "sara")
	kari := c.dial(t, "kari")

	c.stopHub()
	for _, s := range []*socket{sara, kari} {
		if code, _ := s.closeCode(); code != websocket.CloseGoingAway {
			t.Errorf("close code %d, want %d", code, websocket.CloseGoingAway)
		}
	}
	c.svc.Wait() // returns: every connection has ended

	// New sockets are refused once the hub has stopped.
	_, resp, err := websocket.DefaultDialer.Dial(c.url("sara"), http.Header{"Origin": {c.origin}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after shutdown: %v, %v; want 503", err, resp)
	}
}

func TestServeConn_revokedPartyLosesAccess(t *testing.T) {
	c := newChat(t, nil)
	conv := c.conv["emma-sara"]
	sara := c.dial(t, "sara")
	kari := c.dial(t, "kari")
	sara.send(conv, "s-1", "Hei")
	sara.expect("message")
	kari.expect("message")

	setRevoked := func(revoked bool) {
		t.Helper()
		var at any
		if revoked {
			at = time.Now().UTC()
		}
		c.db.MustExec(c.db.Rebind(`UPDATE parties SET revoked_at = ? WHERE case_id = 'case-emma' AND user_id = ?`), at, c.ids["sara"])
	}
	setRevoked(true)

	// The next frame on the open socket is refused...
	sara.write(sendFrame(conv, "s-2", "Er du der?"))
	if f := sara.expect("error"); f.Code != "not_found" {
		t.Errorf("send after revocation: %s", f.raw)
	}
	// ...and live events stop: Kari's message is not delivered to her.
	kari.send(conv, "k-1", "Ikke for Sara")
	kari.expect("message")

	// Restore access and send again: the first message Sara sees must be
	// this one, seq 3, not seq 2.
	setRevoked(false)
	kari.send(conv, "k-2", "For Sara")
	if f := sara.expect("message"); f.Seq != 3 {
		t.Errorf("Sara got %s, want seq 3 (seq 2 was sent while she was revoked)", f.raw)
	}
}

func TestServeConn_readReceiptsAreOneSided(t *testing.T) {
	c := newChat(t, nil)
	conv := c.conv["emma-sara"]
	sara := c.dial(t, "sara")
	kari := c.dial(t, "kari")
	ingrid := c.dial(t, "ingrid")

	kari.send(conv, "k-1", "Hei Sara")
	kari.expect("message")
	sara.expect("message")
	ingrid.expect("message")

	sara.write(map[string]any{"type": "read", "conversation": conv, "seq": 1})
	for _, s := range []*socket{kari, ingrid} {
		f := s.expect("read")
		if f.Conversation != conv || f.Seq != 1 || f.By == nil || f.By.ID != c.ids["sara"] {
			t.Errorf("read frame = %s", f.raw)
		}
	}
	// Reading again changes nothing and tells no one.
	sara.write(map[string]any{"type": "read", "conversation": conv, "seq": 1})
	// A read past the end is clamped. Kari's own sockets hear it too (her
	// other tabs update their unread count).
	kari.write(map[string]any{"type": "read", "conversation": conv, "seq": 99})
	if f := kari.expect("read"); f.By.ID != c.ids["kari"] || f.Seq != 1 {
		t.Errorf("Kari got %s, want her own read at seq 1", f.raw)
	}
	if f := ingrid.expect("read"); f.By.ID != c.ids["kari"] || f.Seq != 1 {
		t.Errorf("Ingrid got %s, want Kari's read at seq 1 (and not Sara's repeat)", f.raw)
	}

	// Sara never receives a read frame: her next frame is Kari's message.
	kari.send(conv, "k-2", "Fint")
	if f := sara.expect("message"); f.Seq != 2 {
		t.Errorf("Sara got %s", f.raw)
	}

	// The cursors are stored: Sara has nothing unread up to 1, Kari neither.
	s2 := c.dial(t, "sara")
	if h := s2.hello.Conversations[0]; h.Unread != 1 {
		t.Errorf("Sara's unread = %d, want 1 (seq 2)", h.Unread)
	}
}

func TestServeConn_typing(t *testing.T) {
	c := newChat(t, nil)
	conv := c.conv["emma-sara"]
	sara := c.dial(t, "sara")
	saraTab2 := c.dial(t, "sara")
	kari := c.dial(t, "kari")

	sara.write(map[string]any{"type": "typing", "conversation": conv})
	if f := kari.expect("typing"); f.Conversation != conv || f.By == nil || f.By.ID != c.ids["sara"] || f.By.Name != "Sara Hansen" {
		t.Errorf("typing = %s", f.raw)
	}
	// Neither of Sara's sockets hears her own typing; the first frame on
	// her second tab is Kari's message.
	kari.send(conv, "k-1", "Hei")
	if f := saraTab2.expect("message"); f.Seq != 1 {
		t.Errorf("Sara's second tab got %s", f.raw)
	}
	if f := sara.expect("message"); f.Seq != 1 {
		t.Errorf("Sara got %s", f.raw)
	}
}

func TestServeConn_typingThrottle(t *testing.T) {
	c := newChat(t, func(cfg *messaging.Config) { cfg.TypingInterval = time.Hour })
	conv := c.conv["emma-sara"]
	sara := c.dial(t, "sara")
	kari := c.dial(t, "kari")

	sara.write(map[string]any{"type": "typing", "conversation": conv})
	kari.expect("typing")
	// Within the interval the same socket's typing is dropped. The synced
	// answer shows Sara's reader has handled the typing frame before it.
	sara.write(map[string]any{"type": "typing", "conversation": conv})
	sara.write(map[string]any{"type": "sync", "cursors": map[string]int64{}})
	sara.expect("synced")
	// So Kari's next frames are her ack and her own message, not a second
	// typing.
	kari.send(conv, "k-1", "Hei")
	if f := kari.expect("message"); f.Seq != 1 {
		t.Errorf("Kari got %s", f.raw)
	}
	// The throttle is per socket: Sara's new tab passes on typing at once.
	tab2 := c.dial(t, "sara")
	tab2.write(map[string]any{"type": "typing", "conversation": conv})
	kari.expect("typing")
}

func TestServeConn_rateLimit(t *testing.T) {
	c := newChat(t, func(cfg *messaging.Config) {
		cfg.SendBurst = 2
		cfg.SendInterval = time.Hour
	})
	conv := c.conv["emma-sara"]
	sara := c.dial(t, "sara")
	sara.send(conv, "r-1", "en")
	sara.expect("message")
	sara.send(conv, "r-2", "to")
	sara.expect("message")
	sara.write(sendFrame(conv, "r-3", "tre"))
	if f := sara.expect("error"); f.Code != "rate_limited" || f.ClientID != "r-3" || f.Message != "T:chat_error_rate_limited" {
		t.Errorf("got %s", f.raw)
	}
	// The limit is per user, not per socket.
	tab2 := c.dial(t, "sara")
	tab2.write(sendFrame(conv, "r-4", "fire"))
	if f := tab2.expect("error"); f.Code != "rate_limited" {
		t.Errorf("second socket got %s", f.raw)
	}
	// Other frames still work.
	sara.write(map[string]any{"type": "sync", "cursors": map[string]int64{}})
	sara.expect("synced")
}

func TestServeConn_socketLimit(t *testing.T) {
	c := newChat(t, func(cfg *messaging.Config) { cfg.MaxSocketsPerUser = 2 })
	c.dial(t, "sara")
	c.dial(t, "sara")
	third := c.dialRaw(t, "sara")
	if code, _ := third.closeCode(); code != websocket.ClosePolicyViolation {
		t.Errorf("third socket closed with %d, want %d", code, websocket.ClosePolicyViolation)
	}
	c.dial(t, "kari") // others are not affected
}

func TestServeConn_deadPeerIsDropped(t *testing.T) {
	c := newChat(t, func(cfg *messaging.Config) { cfg.PongWait = 300 * time.Millisecond })
	s := c.dialRaw(t, "sara")
	// The client never reads again, so it never answers a ping; the server
	// must end the connection by itself. Wait returns when it has.
	done := make(chan struct{})
	go func() {
		c.svc.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the server kept a dead peer's connection")
	}
	s.conn.Close()
}

// An idle socket has no writer running between frames; pings must still
// go out on time, again and again, or a live peer would be dropped.
func TestServeConn_livePeerIsKeptByPings(t *testing.T) {
	c := newChat(t, func(cfg *messaging.Config) { cfg.PongWait = 2 * time.Second })
	conv := c.conv["emma-sara"]
	sara := c.dial(t, "sara")
	pings := make(chan struct{}, 16)
	sara.conn.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return sara.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	frames := make(chan []byte, 16)
	go func() {
		defer close(frames)
		for {
			_, raw, err := sara.conn.ReadMessage()
			if err != nil {
				return
			}
			frames <- raw
		}
	}()
	// Two pings take longer than the server's read deadline without pongs
	// (2 s): the socket lives on only if the pings keep coming and each
	// was answered. (A shorter deadline leaves too little time to answer
	// a ping when the machine is busy.)
	for range 2 {
		select {
		case <-pings:
		case <-time.After(10 * time.Second):
			t.Fatal("no ping from the server")
		}
	}
	sara.write(sendFrame(conv, "c0ffee00-0000-4000-8000-0000000000aa", "Er dere der?"))
	for raw := range frames {
		var f frame
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		if f.Type == "ack" {
			return
		}
	}
	t.Fatal("the socket closed after pings: want it open and answering")
}

func TestHub_Disconnect(t *testing.T) {
	c := newChat(t, nil)
	a := c.dial(t, "sara")
	b := c.dial(t, "sara")
	kari := c.dial(t, "kari")
	if err := c.hub.Disconnect(context.Background(), c.ids["sara"]); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*socket{a, b} {
		if code, _ := s.closeCode(); code != websocket.ClosePolicyViolation {
			t.Errorf("close code %d, want %d", code, websocket.ClosePolicyViolation)
		}
	}
	kari.write(map[string]any{"type": "sync", "cursors": map[string]int64{}})
	kari.expect("synced")
}
