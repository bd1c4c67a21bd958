package messaging_test

// Shared fixtures: a real migrated SQLite file with a small cast, an
// Authorizer written as real SQL over the portal's tables (the production
// one lives in portal), and a websocket server over loopback.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jmoiron/sqlx"
	"go.uber.org/goleak"

	"familieportal/messaging"
	"familieportal/portal/db"
	"familieportal/portal/db/dbtest"
)

// TestMain runs every test on SQLite, then on PostgreSQL when
// PORTAL_TEST_POSTGRES names a server (see dbtest).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(dbtest.EachDialect(m))
}

// cast is the test cast, after DESIGN.md's demo cast: Kari works on Emma's
// case, Ola on Noah's, Ingrid leads their team. Sara and Jonas are Emma's
// parents (separate conversations), Noah is a youth with his own private
// conversation, Leila is Noah's mother, Per is party to nothing.
var cast = []struct {
	key, kind, name string
}{
	{"kari", "caseworker", "Kari Nordmann"},
	{"ola", "caseworker", "Ola Berg"},
	{"ingrid", "teamlead", "Ingrid Dahl"},
	{"sara", "citizen", "Sara Hansen"},
	{"jonas", "citizen", "Jonas Hansen"},
	{"noah", "citizen", "Noah Ali"},
	{"leila", "citizen", "Leila Ali"},
	{"per", "citizen", "Per Olsen"},
}

// world is a migrated database with the cast, two cases and four party
// conversations.
type world struct {
	dsn   string // what db was opened with
	db    *sqlx.DB
	store *messaging.Store
	auth  *sqlAuth
	// ids maps cast keys and case names to ids; conv maps "emma-sara"
	// style names to conversation ids.
	ids    map[string]string
	conv   map[string]string
	people map[string]messaging.Participant
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	dsn := dbtest.DSN(t, dbtest.Current())
	d, err := db.Open(ctx, dsn, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	w := &world{
		dsn:    dsn,
		db:     d,
		store:  messaging.NewStore(d),
		auth:   &sqlAuth{db: d},
		ids:    map[string]string{},
		conv:   map[string]string{},
		people: map[string]messaging.Participant{},
	}
	now := time.Now().UTC()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := d.Exec(d.Rebind(q), args...); err != nil {
			t.Fatalf("seed %q: %v", q, err)
		}
	}
	exec(`INSERT INTO offices (id, name, municipality, phone, emergency_phone) VALUES ('o1', 'Fjordvik barneverntjeneste', 'Fjordvik', '21000000', '21999999')`)
	exec(`INSERT INTO teams (id, office_id, name) VALUES ('t1', 'o1', 'Team 1')`)
	for i, p := range cast {
		id := fmt.Sprintf("u%d-%s", i, p.key) // ids are opaque; readable ones help failure messages
		team := sql.NullString{}
		if p.kind != "citizen" {
			team = sql.NullString{String: "t1", Valid: true}
		}
		exec(`INSERT INTO users (id, kind, name, team_id, created_at) VALUES (?, ?, ?, ?, ?)`, id, p.kind, p.name, team, now)
		w.ids[p.key] = id
		w.people[p.key] = messaging.Participant{
			UserID: id, Name: p.name, Role: messaging.Role(p.kind),
			Translate: func(id string) string { return "T:" + id },
		}
	}
	for _, c := range []struct{ id, child, worker string }{{"case-emma", "Emma", "kari"}, {"case-noah", "Noah", "ola"}} {
		exec(`INSERT INTO cases (id, reference, office_id, team_id, child_name, status, opened_at, updated_at)
			VALUES (?, ?, 'o1', 't1', ?, 'measures', ?, ?)`, c.id, "BV-"+c.child, c.child, now, now)
		exec(`INSERT INTO case_caseworkers (case_id, user_id, is_primary) VALUES (?, ?, TRUE)`, c.id, w.ids[c.worker])
	}
	for _, p := range []struct{ caseID, user, role string }{
		{"case-emma", "sara", "mother"}, {"case-emma", "jonas", "father"},
		{"case-noah", "noah", "youth"}, {"case-noah", "leila", "mother"},
	} {
		exec(`INSERT INTO parties (case_id, user_id, role) VALUES (?, ?, ?)`, p.caseID, w.ids[p.user], p.role)
		c, err := w.store.CreateConversation(ctx, p.caseID, messaging.ConversationParty, []string{w.ids[p.user]})
		if err != nil {
			t.Fatal(err)
		}
		w.conv[strings.TrimPrefix(p.caseID, "case-")+"-"+p.user] = c.ID
	}
	return w
}

// count returns the single integer a query yields.
func (w *world) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := w.db.Get(&n, w.db.Rebind(q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// sqlAuth is the Authorizer for tests: the access rules of DESIGN.md as
// SQL over the real tables, with an audit row per decision, like the
// portal's.
type sqlAuth struct {
	db *sqlx.DB
}

// canSeeConversation is the rule over the alias c (conversations): a
// citizen who is a member with party rights that are not revoked; a
// caseworker assigned to the case; the team lead of the case's team. It
// takes the three arguments from accessArgs.
const canSeeConversation = `(
	EXISTS (SELECT 1 FROM conversation_members cm
		JOIN parties p ON p.case_id = c.case_id AND p.user_id = cm.user_id AND p.revoked_at IS NULL
		WHERE cm.conversation_id = c.id AND cm.user_id = ?)
	OR EXISTS (SELECT 1 FROM case_caseworkers a WHERE a.case_id = c.case_id AND a.user_id = ?)
	OR EXISTS (SELECT 1 FROM cases k JOIN users u ON u.team_id = k.team_id AND u.kind = 'teamlead'
		WHERE k.id = c.case_id AND u.id = ?))`

// accessArgs gives each branch an argument only for the kind of user it is
// for, so a citizen can never match a staff branch; "" matches nothing.
func accessArgs(p messaging.Participant) []any {
	switch p.Role {
	case messaging.RoleCitizen:
		return []any{p.UserID, "", ""}
	case messaging.RoleCaseworker:
		return []any{"", p.UserID, ""}
	case messaging.RoleTeamLead:
		return []any{"", p.UserID, p.UserID}
	}
	return []any{"", "", ""}
}

func (a *sqlAuth) Conversations(ctx context.Context, p messaging.Participant) ([]messaging.ConversationRef, error) {
	var rows []struct {
		ID     string `db:"id"`
		CaseID string `db:"case_id"`
		Title  string `db:"title"`
	}
	err := a.db.SelectContext(ctx, &rows, a.db.Rebind(`
		SELECT c.id, c.case_id, k.child_name AS title
		FROM conversations c JOIN cases k ON k.id = c.case_id
		WHERE `+canSeeConversation+`
		ORDER BY k.child_name, c.id`), accessArgs(p)...)
	if err != nil {
		return nil, err
	}
	refs := make([]messaging.ConversationRef, len(rows))
	for i, r := range rows {
		refs[i] = messaging.ConversationRef{ID: r.ID, CaseID: r.CaseID, Title: r.Title}
	}
	return refs, a.audit(ctx, p, "chat.list", "", "", nil)
}

func (a *sqlAuth) Authorize(ctx context.Context, p messaging.Participant, conversationID string, action messaging.Action) error {
	var caseID string
	err := a.db.GetContext(ctx, &caseID, a.db.Rebind(`
		SELECT c.case_id FROM conversations c
		WHERE c.id = ? AND `+canSeeConversation), append([]any{conversationID}, accessArgs(p)...)...)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("conversation %s: %w", conversationID, messaging.ErrNotFound)
	}
	return a.audit(ctx, p, "chat."+string(action), caseID, conversationID, err)
}

func (a *sqlAuth) Audience(ctx context.Context, conversationID string) ([]messaging.Recipient, error) {
	var rows []struct {
		UserID string `db:"user_id"`
		Kind   string `db:"kind"`
	}
	err := a.db.SelectContext(ctx, &rows, a.db.Rebind(`
		SELECT cm.user_id, u.kind
		FROM conversation_members cm
		JOIN conversations c ON c.id = cm.conversation_id
		JOIN parties p ON p.case_id = c.case_id AND p.user_id = cm.user_id AND p.revoked_at IS NULL
		JOIN users u ON u.id = cm.user_id
		WHERE cm.conversation_id = ?
		UNION
		SELECT a.user_id, u.kind
		FROM case_caseworkers a
		JOIN conversations c ON c.case_id = a.case_id
		JOIN users u ON u.id = a.user_id
		WHERE c.id = ?
		UNION
		SELECT u.id, u.kind
		FROM conversations c
		JOIN cases k ON k.id = c.case_id
		JOIN users u ON u.team_id = k.team_id AND u.kind = 'teamlead'
		WHERE c.id = ?`), conversationID, conversationID, conversationID)
	if err != nil {
		return nil, err
	}
	rs := make([]messaging.Recipient, len(rows))
	for i, r := range rows {
		rs[i] = messaging.Recipient{UserID: r.UserID, Role: messaging.Role(r.Kind)}
	}
	return rs, nil
}

// audit writes the decision and fails closed.
func (a *sqlAuth) audit(ctx context.Context, p messaging.Participant, action, caseID, objectID string, decision error) error {
	outcome := "allowed"
	switch {
	case errors.Is(decision, messaging.ErrNotFound):
		outcome = "denied"
	case decision != nil:
		outcome = "failed"
	}
	_, err := a.db.ExecContext(ctx, a.db.Rebind(`
		INSERT INTO audit (at, actor_id, actor_kind, action, case_id, object_id, outcome)
		VALUES (?, ?, ?, ?, ?, ?, ?)`),
		time.Now().UTC(), p.UserID, string(p.Role), action, caseID, objectID, outcome)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return decision
}

// chat is a world with a hub, a service and a websocket server on loopback.
type chat struct {
	*world
	hub     *messaging.Hub
	svc     *messaging.Service
	srv     *httptest.Server
	origin  string
	stopHub context.CancelFunc
}

// newChat starts a chat server. tweak may change the configuration (Origins
// is set already). Cleanup stops the hub, waits for every connection and
// checks that no goroutine is left behind.
func newChat(t *testing.T, tweak func(*messaging.Config)) *chat {
	t.Helper()
	return newChatOn(t, tweak, nil)
}

// newChatOn is newChat with the server's listener wrapped by wrap.
func newChatOn(t *testing.T, tweak func(*messaging.Config), wrap func(net.Listener) net.Listener) *chat {
	t.Helper()
	// Registered first, so it runs last, after every other cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t) })

	w := newWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := "http://" + ln.Addr().String()
	cfg := messaging.Config{Origins: []string{origin}}
	if tweak != nil {
		tweak(&cfg)
	}
	hub := messaging.NewHub()
	ctx, stop := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		hub.Run(ctx)
	}()
	svc, err := messaging.NewService(w.store, w.auth, hub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		// The portal authenticates from the session; here the query says who.
		p, ok := w.people[r.URL.Query().Get("as")]
		if !ok {
			http.NotFound(rw, r)
			return
		}
		svc.ServeConn(rw, r, p)
	}))
	srv.Listener = ln
	if wrap != nil {
		srv.Listener = wrap(ln)
	}
	srv.Start()
	c := &chat{world: w, hub: hub, svc: svc, srv: srv, origin: origin, stopHub: stop}
	t.Cleanup(func() {
		stop()
		<-hubDone
		svc.Wait()
		srv.Close()
	})
	return c
}

func (c *chat) url(who string) string {
	return "ws" + strings.TrimPrefix(c.srv.URL, "http") + "/ws?as=" + who
}

// frame is any server frame, decoded loosely for assertions.
type frame struct {
	Type          string `json:"type"`
	V             int    `json:"v"`
	User          *user  `json:"user"`
	Conversations []struct {
		ID      string `json:"id"`
		Case    string `json:"case"`
		Title   string `json:"title"`
		LastSeq int64  `json:"last_seq"`
		Unread  int    `json:"unread"`
	} `json:"conversations"`
	ClientID     string `json:"client_id"`
	Conversation string `json:"conversation"`
	ID           string `json:"id"`
	Seq          int64  `json:"seq"`
	At           string `json:"at"`
	Sender       *user  `json:"sender"`
	Kind         string `json:"kind"`
	Body         string `json:"body"`
	By           *user  `json:"by"`
	Code         string `json:"code"`
	Message      string `json:"message"`

	raw string
}

type user struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// socket is a test client.
type socket struct {
	t     *testing.T
	conn  *websocket.Conn
	hello frame
}

// dial connects as who with the allowed Origin and reads the hello frame.
func (c *chat) dial(t *testing.T, who string) *socket {
	t.Helper()
	s := c.dialRaw(t, who)
	s.hello = s.next()
	if s.hello.Type != "hello" {
		t.Fatalf("first frame = %s, want hello", s.hello.raw)
	}
	return s
}

// dialRaw connects as who and reads nothing.
func (c *chat) dialRaw(t *testing.T, who string) *socket {
	t.Helper()
	h := http.Header{"Origin": {c.origin}}
	conn, resp, err := websocket.DefaultDialer.Dial(c.url(who), h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial as %s: %v (HTTP %d)", who, err, status)
	}
	t.Cleanup(func() { conn.Close() })
	return &socket{t: t, conn: conn}
}

// next reads the next frame, failing the test if none comes in time.
func (s *socket) next() frame {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	mt, raw, err := s.conn.ReadMessage()
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	if mt != websocket.TextMessage {
		s.t.Fatalf("frame type %d, want text", mt)
	}
	var f frame
	if err := json.Unmarshal(raw, &f); err != nil {
		s.t.Fatalf("frame %s: %v", raw, err)
	}
	f.raw = string(raw)
	return f
}

// expect reads the next frame and checks its type.
func (s *socket) expect(typ string) frame {
	s.t.Helper()
	f := s.next()
	if f.Type != typ {
		s.t.Fatalf("got frame %s, want type %q", f.raw, typ)
	}
	return f
}

// write sends a frame given as a Go value.
func (s *socket) write(v any) {
	s.t.Helper()
	if err := s.conn.WriteJSON(v); err != nil {
		s.t.Fatalf("write: %v", err)
	}
}

// writeRaw sends a text frame as is.
func (s *socket) writeRaw(raw string) {
	s.t.Helper()
	if err := s.conn.WriteMessage(websocket.TextMessage, []byte(raw)); err != nil {
		s.t.Fatalf("write: %v", err)
	}
}

func sendFrame(conv, clientID, body string) map[string]any {
	return map[string]any{"type": "send", "conversation": conv, "client_id": clientID, "body": body}
}

// send sends a message and returns its ack, skipping the message's own
// live frame if it arrives (it comes after the ack).
func (s *socket) send(conv, clientID, body string) frame {
	s.t.Helper()
	s.write(sendFrame(conv, clientID, body))
	ack := s.expect("ack")
	if ack.ClientID != clientID || ack.Conversation != conv {
		s.t.Fatalf("ack %s for send %s in %s", ack.raw, clientID, conv)
	}
	return ack
}

// closeCode reads until the connection ends and returns the close code
// (websocket.CloseAbnormalClosure if it ended without one) and how many
// message frames arrived before.
func (s *socket) closeCode() (code, messages int) {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, raw, err := s.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, messages
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				s.t.Fatalf("connection still open: %v", err)
			}
			return websocket.CloseAbnormalClosure, messages
		}
		if strings.Contains(string(raw), `"type":"message"`) {
			messages++
		}
	}
}
