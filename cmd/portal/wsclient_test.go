package main

// A small websocket client of protocol v1 (docs/protocol.md) for the tests
// that drive a whole portal: sign in through /demo, open /ws, read frames.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsWait bounds every single wait of these helpers on the network.
const wsWait = 15 * time.Second

// wsUser is a user as frames carry it.
type wsUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// wsConversation is one entry of hello's conversation list.
type wsConversation struct {
	ID      string `json:"id"`
	Case    string `json:"case"`
	Title   string `json:"title"`
	LastSeq int64  `json:"last_seq"`
	Unread  int64  `json:"unread"`
}

// wsFrame is any server frame, with the fields the tests read. Decoding is
// lenient, as the protocol asks of clients: unknown fields are ignored.
type wsFrame struct {
	Type          string           `json:"type"`
	V             int              `json:"v"`
	User          *wsUser          `json:"user"`
	Conversations []wsConversation `json:"conversations"`
	ClientID      string           `json:"client_id"`
	Conversation  string           `json:"conversation"`
	ID            string           `json:"id"`
	Seq           int64            `json:"seq"`
	At            string           `json:"at"`
	Sender        *wsUser          `json:"sender"`
	Kind          string           `json:"kind"`
	Body          string           `json:"body"`
	Code          string           `json:"code"`
}

// wsAck is what an ack frame says about a message.
type wsAck struct {
	ClientID, Conversation, ID string
	Seq                        int64
	At                         string
}

// ack returns the ack fields of f.
func (f wsFrame) ack() wsAck {
	return wsAck{ClientID: f.ClientID, Conversation: f.Conversation, ID: f.ID, Seq: f.Seq, At: f.At}
}

// wsSend is the client's send frame.
type wsSend struct {
	Type         string `json:"type"`
	Conversation string `json:"conversation"`
	ClientID     string `json:"client_id"`
	Body         string `json:"body"`
}

// wsSync is the client's sync frame.
type wsSync struct {
	Type    string           `json:"type"`
	Cursors map[string]int64 `json:"cursors"`
}

// newClientID returns a fresh client id (128 random bits, hex).
func newClientID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newWebClient returns an HTTP client with its own transport (so a test can
// close its connections and check for leaks) that does not follow
// redirects.
func newWebClient() (*http.Client, *http.Transport) {
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	return &http.Client{
		Transport:     tr,
		Timeout:       wsWait,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, tr
}

// waitReadyz polls base/readyz every 20ms until it answers 200. It fails
// the test, showing the end of logs, if exited is closed first (the server
// stopped) or after limit.
func waitReadyz(t *testing.T, client *http.Client, base string, exited <-chan struct{}, logs *syncBuffer, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond) // polling interval, not a guess at readiness
	defer tick.Stop()
	var last string
	for {
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz not 200 after %v: %s\n%s", base, limit, last, logTail(logs.String(), 20))
		}
		select {
		case <-exited:
			t.Fatalf("server at %s exited before it was ready (last /readyz: %s)\n%s", base, last, logTail(logs.String(), 20))
		case <-tick.C:
		}
	}
}

// demoSignIn signs in as the demo person key, as the /demo form does, and
// returns the session cookie.
func demoSignIn(t *testing.T, client *http.Client, base, key string) *http.Cookie {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/demo", strings.NewReader(url.Values{"person": {key}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin") // a browser's own form post
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /demo person=%s: %v", key, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /demo person=%s = %d, want 303", key, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-session" && c.Value != "" {
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	t.Fatalf("POST /demo person=%s set no session cookie", key)
	return nil
}

// wsDial opens base's websocket with session as a same-origin browser tab
// would, and returns it with its hello frame.
func wsDial(base string, session *http.Cookie) (*websocket.Conn, wsFrame, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, wsFrame{}, err
	}
	h := http.Header{}
	h.Set("Origin", "http://"+u.Host)
	h.Set("Cookie", session.String())
	ctx, cancel := context.WithTimeout(context.Background(), wsWait)
	defer cancel()
	d := websocket.Dialer{HandshakeTimeout: wsWait}
	conn, resp, err := d.DialContext(ctx, "ws://"+u.Host+"/ws", h)
	if err != nil {
		if resp != nil {
			return nil, wsFrame{}, fmt.Errorf("dial /ws: %w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, wsFrame{}, fmt.Errorf("dial /ws: %w", err)
	}
	hello, err := wsRead(conn)
	if err != nil {
		conn.Close()
		return nil, wsFrame{}, fmt.Errorf("read hello: %w", err)
	}
	if hello.Type != "hello" || hello.V != 1 || hello.User == nil {
		conn.Close()
		return nil, wsFrame{}, fmt.Errorf("first frame = %+v, want a hello of protocol v1", hello)
	}
	return conn, hello, nil
}

// wsRead reads one frame, waiting at most wsWait.
func wsRead(conn *websocket.Conn) (wsFrame, error) {
	conn.SetReadDeadline(time.Now().Add(wsWait))
	mt, raw, err := conn.ReadMessage()
	if err != nil {
		return wsFrame{}, err
	}
	if mt != websocket.TextMessage {
		return wsFrame{}, fmt.Errorf("frame of type %d, want text", mt)
	}
	var f wsFrame
	if err := json.Unmarshal(raw, &f); err != nil {
		return wsFrame{}, fmt.Errorf("frame %q: %w", raw, err)
	}
	return f, nil
}

// wsWrite writes one client frame, waiting at most wsWait.
func wsWrite(conn *websocket.Conn, frame any) error {
	conn.SetWriteDeadline(time.Now().Add(wsWait))
	return conn.WriteJSON(frame)
}

// wsClose ends a socket politely (close 1000), without waiting for the
// server's answer.
func wsClose(conn *websocket.Conn) {
	conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	conn.Close()
}
