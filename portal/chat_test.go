package portal

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"familieportal/messaging"
)

// chatEnv is env with the chat service, served over real loopback sockets.
type chatEnv struct {
	*env
	ts    *httptest.Server
	convs map[string]string // "emma/sara" -> conversation id

	// With newAvChat: the notification outbox, and the e-mails it sent.
	notifier *messaging.Notifier
	mail     *mailbox
}

func newChatEnv(t *testing.T) *chatEnv {
	t.Helper()
	base := newEnv(t, Options{Demo: true})
	e, _ := startChat(t, base, messaging.NewStore(base.db))
	return e
}

// startChat serves base's portal with a chat service over store, with
// observers, on a loopback test server, and stops both when the test ends.
func startChat(t *testing.T, base *env, store *messaging.Store, observers ...messaging.Observer) (*chatEnv, *messaging.Service) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	origin := "http://" + ts.Listener.Addr().String()
	hub := messaging.NewHub()
	ctx, cancel := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); hub.Run(ctx) }()
	chat, err := messaging.NewService(store, base.store.ChatAccess(), hub,
		messaging.Config{Origins: []string{origin}, Observers: observers})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(base.store, base.bundle, base.srv.log, Options{Demo: true, Chat: chat})
	if err != nil {
		t.Fatal(err)
	}
	base.srv = srv
	ts.Config.Handler = srv
	ts.Start()
	t.Cleanup(func() {
		cancel()
		<-hubDone
		chat.Wait()
		ts.Close()
	})
	return &chatEnv{env: base, ts: ts, convs: demoConversations(t, base)}, chat
}

type frame map[string]any

// socket is a test client on /ws as a demo person.
type socket struct {
	t    *testing.T
	conn *websocket.Conn
}

func (e *chatEnv) dial(who string) (*socket, frame) {
	e.t.Helper()
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws"
	h := http.Header{}
	h.Set("Origin", e.ts.URL)
	h.Set("Cookie", (&http.Cookie{Name: sessionCookie, Value: e.tokens[who]}).String())
	conn, resp, err := websocket.DefaultDialer.Dial(u, h)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		e.t.Fatalf("%s: dial /ws: %v (HTTP %d)", who, err, code)
	}
	s := &socket{t: e.t, conn: conn}
	e.t.Cleanup(func() { conn.Close() })
	hello := s.next()
	if hello["type"] != "hello" {
		e.t.Fatalf("%s: first frame = %v, want hello", who, hello)
	}
	return s, hello
}

func (s *socket) send(f frame) {
	s.t.Helper()
	if err := s.conn.WriteJSON(f); err != nil {
		s.t.Fatal(err)
	}
}

// next reads the next frame, failing the test if none comes in time (the
// deadline only bounds a broken test; the frame is an event we wait for).
func (s *socket) next() frame {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f frame
	if err := s.conn.ReadJSON(&f); err != nil {
		s.t.Fatalf("read frame: %v", err)
	}
	return f
}

// until reads frames until one of type typ arrives, and returns the ones before it too.
func (s *socket) until(typ string) (frame, []frame) {
	s.t.Helper()
	var before []frame
	for {
		f := s.next()
		if f["type"] == typ {
			return f, before
		}
		before = append(before, f)
	}
}

func helloConversations(hello frame) map[string]bool {
	out := map[string]bool{}
	list, _ := hello["conversations"].([]any)
	for _, c := range list {
		if m, ok := c.(map[string]any); ok {
			out[m["id"].(string)] = true
		}
	}
	return out
}

// TestChat_helloListsOnlyOwnConversations: the hello frame of each person
// lists exactly the conversations the access rules give them.
func TestChat_helloListsOnlyOwnConversations(t *testing.T) {
	e := newChatEnv(t)
	// Ola is away in the demo with Kari as his substitute, so she also has
	// the conversations of Noah's case (TestAvailability_substitute).
	want := map[string][]string{
		"sara":   {"emma/sara"},
		"jonas":  {"emma/jonas"},
		"noah":   {"noah/noah"},
		"leila":  {"noah/leila"},
		"maria":  {"lina/maria", "adam/maria"},
		"per":    nil,
		"kari":   {"emma/sara", "emma/jonas", "lina/maria", "adam/maria", "noah/noah", "noah/leila"},
		"ola":    {"noah/noah", "noah/leila"},
		"ingrid": {"emma/sara", "emma/jonas", "lina/maria", "adam/maria", "noah/noah", "noah/leila"},
	}
	for who, keys := range want {
		_, hello := e.dial(who)
		got := helloConversations(hello)
		if len(got) != len(keys) {
			t.Errorf("%s: hello lists %d conversations, want %d", who, len(got), len(keys))
		}
		for _, k := range keys {
			if !got[e.convs[k]] {
				t.Errorf("%s: hello lacks conversation %s", who, k)
			}
		}
	}
}

// TestChat_parentCannotReachYouthConversation tries every frame type on
// the youth's private conversation as his mother, and on another family's
// conversation as a caseworker not on that case.
func TestChat_parentCannotReachYouthConversation(t *testing.T) {
	e := newChatEnv(t)
	for _, tt := range []struct{ who, conv string }{
		{"leila", "noah/noah"},
		{"jonas", "emma/sara"},
		{"ola", "emma/sara"},
		{"per", "lina/maria"},
	} {
		s, _ := e.dial(tt.who)
		id := e.convs[tt.conv]
		for _, f := range []frame{
			{"type": "send", "conversation": id, "client_id": NewID(), "body": "hei"},
			{"type": "sync", "cursors": map[string]any{id: 0}},
			{"type": "read", "conversation": id, "seq": 1},
			{"type": "typing", "conversation": id},
		} {
			s.send(f)
			got, before := s.until("error")
			for _, b := range before {
				if b["type"] == "message" {
					t.Errorf("%s on %s: got a message frame: %v", tt.who, tt.conv, b)
				}
			}
			if got["code"] != "not_found" {
				t.Errorf("%s %s on %s = %v, want not_found", tt.who, f["type"], tt.conv, got)
			}
		}
	}
	var n int
	if err := e.db.Get(&n, `SELECT COUNT(*) FROM messages WHERE body = 'hei'`); err != nil || n != 0 {
		t.Errorf("refused sends stored %d messages (err %v), want 0", n, err)
	}
}

// TestChat_liveBetweenParentAndCaseworker: Sara writes, Kari sees it live,
// Jonas (the other parent, separate household) does not; Kari answers and
// Sara sees it; a revoked party is refused at the next frame.
func TestChat_liveBetweenParentAndCaseworker(t *testing.T) {
	e := newChatEnv(t)
	conv := e.convs["emma/sara"]
	sara, _ := e.dial("sara")
	kari, _ := e.dial("kari")
	jonas, _ := e.dial("jonas")

	clientID := NewID()
	sara.send(frame{"type": "send", "conversation": conv, "client_id": clientID, "body": "Kan vi flytte møtet?"})
	ack, _ := sara.until("ack")
	if ack["client_id"] != clientID || ack["conversation"] != conv {
		t.Fatalf("ack = %v", ack)
	}
	msg, _ := kari.until("message")
	if msg["body"] != "Kan vi flytte møtet?" || msg["seq"] != ack["seq"] {
		t.Errorf("kari got %v, want Sara's message with seq %v", msg, ack["seq"])
	}
	// Jonas syncs his own conversation; nothing of Sara's may come before "synced".
	jonas.send(frame{"type": "sync", "cursors": map[string]any{e.convs["emma/jonas"]: 0}})
	_, before := jonas.until("synced")
	for _, f := range before {
		if f["conversation"] == conv {
			t.Errorf("jonas received a frame of Sara's conversation: %v", f)
		}
	}

	kari.send(frame{"type": "send", "conversation": conv, "client_id": NewID(), "body": "Ja, tirsdag passer."})
	// Sara's own message comes back to her socket too (for her other tabs).
	reply, _ := sara.until("message")
	for reply["seq"] == ack["seq"] {
		reply, _ = sara.until("message")
	}
	if reply["body"] != "Ja, tirsdag passer." {
		t.Errorf("sara got %v, want Kari's reply", reply)
	}
	if s, _ := reply["sender"].(map[string]any); s["role"] != "caseworker" {
		t.Errorf("reply sender = %v, want a caseworker", reply["sender"])
	}

	// The same client id again: the original ack, no new message.
	sara.send(frame{"type": "send", "conversation": conv, "client_id": clientID, "body": "Kan vi flytte møtet?"})
	again, _ := sara.until("ack")
	if again["seq"] != ack["seq"] || again["id"] != ack["id"] {
		t.Errorf("resend ack = %v, want the original %v", again, ack)
	}

	e.db.MustExec(e.db.Rebind(`UPDATE parties SET revoked_at = ? WHERE user_id = ?`), time.Now().UTC(), e.users["sara"])
	sara.send(frame{"type": "send", "conversation": conv, "client_id": NewID(), "body": "etter"})
	if f, _ := sara.until("error"); f["code"] != "not_found" {
		t.Errorf("send after revocation = %v, want not_found", f)
	}

	// Every attempt is audited: the send (its entry written with the
	// message), the resend, the refusal; and Kari's answer.
	outcomes := func(who string) string {
		var got []string
		if err := e.db.Select(&got, e.db.Rebind(`
			SELECT outcome FROM audit WHERE actor_id = ? AND action = 'chat.send' AND object_id = ?
			ORDER BY id`), e.users[who], conv); err != nil {
			t.Fatal(err)
		}
		return strings.Join(got, ",")
	}
	if got := outcomes("sara"); got != "allowed,allowed,denied" {
		t.Errorf("Sara's chat.send audit = %s, want allowed,allowed,denied", got)
	}
	if got := outcomes("kari"); got != "allowed" {
		t.Errorf("Kari's chat.send audit = %s, want allowed", got)
	}
}

// TestChat_originIsChecked: a cross-site handshake is refused before any
// session use; so is one without Origin.
func TestChat_originIsChecked(t *testing.T) {
	e := newChatEnv(t)
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/ws"
	for _, origin := range []string{"https://evil.example", "null", ""} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		h.Set("Cookie", (&http.Cookie{Name: sessionCookie, Value: e.tokens["sara"]}).String())
		conn, resp, err := websocket.DefaultDialer.Dial(u, h)
		if err == nil {
			conn.Close()
			t.Errorf("handshake with Origin %q succeeded, want refused", origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("handshake with Origin %q: %v, want 403", origin, err)
		}
	}
	// Signed out: no socket at all.
	h := http.Header{}
	h.Set("Origin", e.ts.URL)
	if conn, _, err := websocket.DefaultDialer.Dial(u, h); err == nil {
		conn.Close()
		t.Error("handshake without a session succeeded")
	}
}

// TestChat_noJavaScriptPost sends through the plain form, twice with the
// same client id, and gets one message; a too long message keeps the text
// and changes nothing; a parent cannot post into the youth's conversation.
func TestChat_noJavaScriptPost(t *testing.T) {
	e := newChatEnv(t)
	conv := e.convs["emma/sara"]
	post := func(who, conv string, form url.Values) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/conversations/"+conv+"/messages", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.tokens[who]})
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		return rec
	}
	count := func() int {
		var n int
		if err := e.db.Get(&n, e.db.Rebind(`SELECT COUNT(*) FROM messages WHERE conversation_id = ?`), conv); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	form := url.Values{"client_id": {"form-" + NewID()}, "body": {"Sendt uten JavaScript"}, "back": {"/cases/" + e.cases["emma"]}}
	for i := 0; i < 2; i++ {
		rec := post("sara", conv, form)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/cases/"+e.cases["emma"]+"#chat" {
			t.Fatalf("post %d = %d to %q", i, rec.Code, rec.Header().Get("Location"))
		}
	}
	if got := count(); got != before+1 {
		t.Errorf("two posts with one client id stored %d messages, want 1", got-before)
	}
	page := e.get("sara", "/cases/"+e.cases["emma"]).Body.String()
	if !strings.Contains(page, "Sendt uten JavaScript") {
		t.Error("the case page does not show the posted message")
	}
	long := strings.Repeat("å", messaging.MaxBodyRunes+1)
	rec := post("sara", conv, url.Values{"client_id": {NewID()}, "body": {long}})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "for lang") || !strings.Contains(rec.Body.String(), long) {
		t.Errorf("too long post = %d; want 400 with the error and the text kept", rec.Code)
	}
	if got := count(); got != before+1 {
		t.Errorf("a refused post changed the conversation: %d messages, want %d", got, before+1)
	}
	if rec := post("leila", e.convs["noah/noah"], url.Values{"client_id": {NewID()}, "body": {"hei"}}); rec.Code != http.StatusNotFound {
		t.Errorf("leila posting in Noah's conversation = %d, want 404", rec.Code)
	}
	// Forged mass assignment: extra fields are ignored, the sender is the session's.
	post("sara", conv, url.Values{"client_id": {NewID()}, "body": {"meg"}, "sender_id": {e.users["kari"]}, "seq": {"1"}})
	var sender string
	if err := e.db.Get(&sender, e.db.Rebind(`SELECT sender_id FROM messages WHERE conversation_id = ? AND body = 'meg'`), conv); err != nil || sender != e.users["sara"] {
		t.Errorf("sender of a forged post = %q (err %v), want sara", sender, err)
	}
	// The message list is written in Go, not by html/template: what a
	// family writes must still arrive as text, on their page and on staff's.
	hostile := `<script>alert(1)</script> & "x" 'y'`
	post("sara", conv, url.Values{"client_id": {NewID()}, "body": {hostile}})
	for _, view := range []struct{ who, path string }{
		{"sara", "/cases/" + e.cases["emma"]},
		{"kari", "/conversations/" + conv},
	} {
		page := e.get(view.who, view.path).Body.String()
		if strings.Contains(page, "<script>alert") || !strings.Contains(page, `&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;x&#34; &#39;y&#39;`) {
			t.Errorf("%s's %s does not show the message as escaped text", view.who, view.path)
		}
	}
}

// TestInbox shows the caseworker who is waiting, and is not for families.
func TestInbox(t *testing.T) {
	e := newChatEnv(t)
	body := e.get("kari", "/inbox").Body.String()
	for _, want := range []string{"Lina – Maria Kowalska", "Venter på oss"} {
		if !strings.Contains(body, want) {
			t.Errorf("kari's inbox lacks %q", want)
		}
	}
	// Kari substitutes for Ola in the demo; once his absence is over,
	// Noah's conversations leave her inbox again.
	e.db.MustExec(`DELETE FROM availability_absences`)
	if strings.Contains(e.get("kari", "/inbox?show=all").Body.String(), "Noah") {
		t.Error("kari's inbox shows Noah's conversations, which are not her cases")
	}
	if rec := e.get("sara", "/inbox"); rec.Code != http.StatusNotFound {
		t.Errorf("sara GET /inbox = %d, want 404", rec.Code)
	}
	if rec := e.get("", "/inbox"); rec.Code != http.StatusSeeOther {
		t.Errorf("signed out GET /inbox = %d, want 303", rec.Code)
	}
}

// expectClosed reads until the server closes the socket, and fails if it
// is still open when the read deadline passes.
func (s *socket) expectClosed(what string) {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := s.conn.NextReader(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.t.Fatalf("%s: socket still open", what)
			}
			return
		}
	}
}

// TestChat_endedSessionClosesSockets: signing out, and a session expiring
// while its socket is open, both close the user's sockets; other users'
// sockets stay.
func TestChat_endedSessionClosesSockets(t *testing.T) {
	e := newChatEnv(t)
	sara, _ := e.dial("sara")
	kari, _ := e.dial("kari")

	req := httptest.NewRequest(http.MethodPost, "/signout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.tokens["sara"]})
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("POST /signout = %d", rec.Code)
	}
	sara.expectClosed("sara after sign-out")

	// Kari's socket outlives Sara's sign-out; her session then idles out.
	kari.send(frame{"type": "sync", "cursors": map[string]any{}})
	kari.until("synced")
	now := time.Now().UTC()
	e.store.now = func() time.Time { return now.Add(SessionIdle + time.Minute) }
	if err := e.srv.sweepSessions(context.Background()); err != nil {
		t.Fatal(err)
	}
	kari.expectClosed("kari after idle expiry")
	if _, err := e.store.SessionUser(context.Background(), e.tokens["kari"]); err == nil {
		t.Error("kari's idle session still valid after the sweep")
	}
}

// TestChat_formPostIsRateLimited: the no-JavaScript path has the same
// per-user send limit as the socket; a flood gets 429 and stores nothing more.
func TestChat_formPostIsRateLimited(t *testing.T) {
	e := newChatEnv(t)
	conv := e.convs["emma/sara"]
	limited := 0
	for i := 0; i < 30; i++ {
		form := url.Values{"client_id": {NewID()}, "body": {"flom"}}
		req := httptest.NewRequest(http.MethodPost, "/conversations/"+conv+"/messages", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: e.tokens["sara"]})
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if rec.Code == http.StatusTooManyRequests {
			limited++
		}
	}
	var stored int
	if err := e.db.Get(&stored, `SELECT COUNT(*) FROM messages WHERE body = 'flom'`); err != nil {
		t.Fatal(err)
	}
	if limited == 0 || stored+limited != 30 || stored > 25 {
		t.Errorf("30 quick posts: %d stored, %d refused with 429; want the flood cut off near the burst of 20", stored, limited)
	}
}

// TestChat_firstMessageAfterTheHandshakeWritesNoSession: a message sent
// within a minute of opening the socket does not write the session again:
// the handshake, signed in like a page load, kept it alive. (A first
// message later than that does; see TestChat_chattingKeepsTheSessionAlive.)
func TestChat_firstMessageAfterTheHandshakeWritesNoSession(t *testing.T) {
	e := newChatEnv(t)
	start := time.Now().UTC()
	clock := &avClock{t: start}
	e.store.now = clock.now
	lastSeen := func() time.Time {
		t.Helper()
		var at time.Time
		if err := e.db.Get(&at, e.db.Rebind(`SELECT last_seen_at FROM sessions WHERE token_hash = ?`), hashToken(e.tokens["sara"])); err != nil {
			t.Fatal(err)
		}
		return at
	}
	sara, _ := e.dial("sara")
	before := lastSeen()
	clock.set(start.Add(touchEvery / 2))
	sara.send(frame{"type": "send", "conversation": e.convs["emma/sara"], "client_id": NewID(), "body": "Hei"})
	sara.until("ack")
	if after := lastSeen(); !after.Equal(before) {
		t.Errorf("the first message %v after the handshake moved the session's last use from %v to %v", touchEvery/2, before, after)
	}
}

// TestChat_chattingKeepsTheSessionAlive: writing on the socket is use, like
// a page load, so a family in a long chat is not signed out as idle; an
// open socket alone (Kari's) keeps nothing alive, and a session that has
// idled out once chatting stopped ends as before.
func TestChat_chattingKeepsTheSessionAlive(t *testing.T) {
	e := newChatEnv(t)
	start := time.Now().UTC()
	clock := &avClock{t: start}
	e.store.now = clock.now
	sara, _ := e.dial("sara")
	kari, _ := e.dial("kari")
	sweep := func() {
		t.Helper()
		if err := e.srv.sweepSessions(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	clock.set(start.Add(10 * time.Minute))
	sara.send(frame{"type": "send", "conversation": e.convs["emma/sara"], "client_id": NewID(), "body": "Er du der?"})
	sara.until("ack")

	clock.set(start.Add(SessionIdle + 5*time.Minute)) // 20 minutes after the page load, 10 after writing
	sweep()
	kari.expectClosed("kari, whose open socket alone does not count as use")
	sara.send(frame{"type": "sync", "cursors": map[string]any{}})
	sara.until("synced")
	// Not SessionUser, which would keep the session alive itself.
	var alive int
	if err := e.db.Get(&alive, e.db.Rebind(`SELECT COUNT(*) FROM sessions WHERE token_hash = ?`), hashToken(e.tokens["sara"])); err != nil || alive != 1 {
		t.Fatalf("sara's session after chatting: %d rows (err %v), want alive", alive, err)
	}

	clock.set(start.Add(10*time.Minute + SessionIdle + time.Minute)) // idle since she wrote
	sweep()
	sara.expectClosed("sara, idle since she last wrote")
	if _, err := e.store.SessionUser(context.Background(), e.tokens["sara"]); err == nil {
		t.Error("sara's session still valid after idling out")
	}
}
