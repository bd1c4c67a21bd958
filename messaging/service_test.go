package messaging_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jmoiron/sqlx"

	"familieportal/messaging"
)

// newService returns a service whose hub runs until the test ends.
func newService(t *testing.T, w *world) *messaging.Service {
	t.Helper()
	hub := messaging.NewHub()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		hub.Run(ctx)
	}()
	t.Cleanup(func() {
		stop()
		<-done
	})
	svc, err := messaging.NewService(w.store, w.auth, hub, messaging.Config{Origins: []string{"https://portal.example"}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestService_Send covers the path the portal's form post (no JavaScript)
// takes: the same checks and the same idempotency as the websocket.
func TestService_Send(t *testing.T) {
	w := newWorld(t)
	svc := newService(t, w)
	ctx := context.Background()
	sara := w.people["sara"]
	conv := w.conv["emma-sara"]

	tests := []struct {
		name     string
		who      string
		conv     string
		clientID string
		body     string
		want     error
	}{
		{"member sends", "sara", conv, "form-1", "Hei fra skjemaet", nil},
		{"form line endings", "sara", conv, "form-2", "a\r\nb", nil},
		{"empty", "sara", conv, "form-3", " \t\n", messaging.ErrInvalidMessage},
		{"control character", "sara", conv, "form-4", "a\x00b", messaging.ErrInvalidMessage},
		{"lone carriage return", "sara", conv, "form-5", "a\rb", messaging.ErrInvalidMessage},
		{"C1 control", "sara", conv, "form-6", "a\u0085b", messaging.ErrInvalidMessage},
		{"invalid UTF-8", "sara", conv, "form-7", "a\xc3b", messaging.ErrInvalidMessage},
		{"too many characters", "sara", conv, "form-8", strings.Repeat("ø", messaging.MaxBodyRunes+1), messaging.ErrTooLarge},
		{"too many bytes", "sara", conv, "form-9", strings.Repeat("😀", messaging.MaxBodyBytes/4+1), messaging.ErrTooLarge},
		{"no client id", "sara", conv, "", "hei", messaging.ErrInvalidMessage},
		{"client id with spaces", "sara", conv, "a b", "hei", messaging.ErrInvalidMessage},
		{"client id too long", "sara", conv, strings.Repeat("a", messaging.MaxClientIDLen+1), "hei", messaging.ErrInvalidMessage},
		{"other parent", "jonas", conv, "form-10", "hei", messaging.ErrNotFound},
		{"parent on the youth's conversation", "leila", w.conv["noah-noah"], "form-11", "hei", messaging.ErrNotFound},
		{"client id reused in another conversation", "kari", w.conv["emma-jonas"], "k-reuse", "hei", messaging.ErrInvalidMessage},
	}
	if _, err := svc.Send(ctx, w.people["kari"], conv, "k-reuse", "first use"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Send(ctx, w.people[tt.who], tt.conv, tt.clientID, tt.body)
			if !errors.Is(err, tt.want) {
				t.Errorf("Send = %v, want %v", err, tt.want)
			}
		})
	}
	ms, err := svc.Messages(ctx, sara, conv, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[1].Body != "Hei fra skjemaet" || ms[2].Body != "a\nb" {
		t.Errorf("Messages = %+v, want Kari's and the two valid form posts", ms)
	}
	if _, err := svc.Messages(ctx, w.people["jonas"], conv, 0, 10); !errors.Is(err, messaging.ErrNotFound) {
		t.Errorf("Messages for the other parent = %v, want ErrNotFound", err)
	}
}

func TestService_Post(t *testing.T) {
	w := newWorld(t)
	svc := newService(t, w)
	ctx := context.Background()
	d := messaging.Draft{
		ConversationID: w.conv["emma-sara"], SenderID: w.ids["kari"],
		ClientID: "auto-2026-01-02-closed", Body: "Chatten er stengt nå.", Kind: messaging.KindAutoReply,
	}
	first, err := svc.Post(ctx, d)
	if err != nil || first.Kind != messaging.KindAutoReply {
		t.Fatalf("Post = %+v, %v", first, err)
	}
	// One auto-reply per closed period: the same client id is a no-op.
	again, err := svc.Post(ctx, d)
	if err != nil || again != first {
		t.Errorf("second Post = %+v, %v; want the first", again, err)
	}
	d.Kind = "html"
	if _, err := svc.Post(ctx, d); !errors.Is(err, messaging.ErrInvalidMessage) {
		t.Errorf("Post with a bad kind = %v", err)
	}
}

func TestService_MarkRead(t *testing.T) {
	w := newWorld(t)
	svc := newService(t, w)
	ctx := context.Background()
	if _, err := svc.Send(ctx, w.people["kari"], w.conv["emma-sara"], "k-1", "hei"); err != nil {
		t.Fatal(err)
	}
	if err := svc.MarkRead(ctx, w.people["sara"], w.conv["emma-sara"], 1); err != nil {
		t.Errorf("MarkRead = %v", err)
	}
	if err := svc.MarkRead(ctx, w.people["jonas"], w.conv["emma-sara"], 1); !errors.Is(err, messaging.ErrNotFound) {
		t.Errorf("MarkRead by the other parent = %v, want ErrNotFound", err)
	}
	if err := svc.MarkRead(ctx, w.people["sara"], w.conv["emma-sara"], -1); !errors.Is(err, messaging.ErrInvalidMessage) {
		t.Errorf("MarkRead(-1) = %v, want ErrInvalidMessage", err)
	}
	sums, err := svc.Conversations(ctx, w.people["sara"])
	if err != nil || len(sums) != 1 || sums[0].Unread != 0 || sums[0].Title != "Emma" {
		t.Errorf("Conversations = %+v, %v", sums, err)
	}
}

func TestNewService_config(t *testing.T) {
	w := newWorld(t)
	hub := messaging.NewHub()
	for _, origins := range [][]string{
		nil,
		{"portal.example"},
		{"ftp://portal.example"},
		{"https://portal.example/chat"},
		{"https://user@portal.example"},
		{"null"},
	} {
		if _, err := messaging.NewService(w.store, w.auth, hub, messaging.Config{Origins: origins}); err == nil {
			t.Errorf("NewService with origins %q: no error", origins)
		}
	}
	if _, err := messaging.NewService(w.store, nil, hub, messaging.Config{Origins: []string{"https://portal.example"}}); err == nil {
		t.Errorf("NewService without an authorizer: no error")
	}
}

func TestMessageIDs(t *testing.T) {
	want := map[string]bool{
		"chat_error_not_found": true, "chat_error_invalid": true, "chat_error_too_large": true,
		"chat_error_rate_limited": true, "chat_error_unavailable": true, "chat_error_resync": true,
	}
	got := messaging.MessageIDs()
	if len(got) != len(want) {
		t.Errorf("MessageIDs() = %v", got)
	}
	for _, id := range got {
		if !want[id] {
			t.Errorf("unexpected message ID %q", id)
		}
	}
}

// published is a Publisher that keeps the events it is given.
type published struct {
	mu     sync.Mutex
	events []messaging.Event
}

func (p *published) Publish(_ context.Context, e messaging.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
	return nil
}

// lateFrame is the test's Authorizer, whose send check ends the frame's
// context while the message is being written (the audit entry runs in the
// message's transaction): the frame's deadline passing while its message
// waits for the commit, as under overload.
type lateFrame struct {
	*sqlAuth
	end context.CancelFunc
}

func (a lateFrame) AuthorizeSend(ctx context.Context, p messaging.Participant, conversationID string) (func(context.Context, *sqlx.Tx) error, error) {
	if err := a.Authorize(ctx, p, conversationID, messaging.ActionSend); err != nil {
		return nil, err
	}
	return func(context.Context, *sqlx.Tx) error { a.end(); return nil }, nil
}

// TestService_committedMessageIsPublishedAfterTheFrameDeadline: a message
// that is committed, and so acknowledged, reaches the conversation's
// other members even if the frame's deadline passed while it waited for
// the commit (SQLite's group commit finishes every queued write). Before,
// its live frame was dropped (the audience lookup ran under the ended
// context), and nothing told them.
func TestService_committedMessageIsPublishedAfterTheFrameDeadline(t *testing.T) {
	w := newWorld(t)
	hub := messaging.NewHub()
	pub := &published{}
	ctx, end := context.WithCancel(context.Background())
	svc, err := messaging.NewService(w.store, lateFrame{sqlAuth: w.auth, end: end}, hub,
		messaging.Config{Origins: []string{"https://portal.example"}, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	m, err := svc.Send(ctx, w.people["sara"], w.conv["emma-sara"], "late-1", "hei")
	if ctx.Err() == nil {
		t.Fatal("the frame's context did not end during the write: the test tests nothing")
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if w.db.DriverName() == "pgx" {
		// On PostgreSQL each write is its own transaction under the
		// caller's context: the ended context aborts it. Nothing is
		// stored, acknowledged or published.
		var n int
		if err := w.db.Get(&n, `SELECT COUNT(*) FROM messages WHERE client_id = 'late-1'`); err != nil || n != 0 {
			t.Errorf("messages stored = %d (err %v), want none", n, err)
		}
		if !errors.Is(err, messaging.ErrUnavailable) || len(pub.events) != 0 {
			t.Errorf("Send = %v, published %d; want unavailable and nothing published", err, len(pub.events))
		}
		return
	}
	if err != nil {
		t.Fatalf("Send = %v, want the message stored", err)
	}
	if len(pub.events) != 1 || pub.events[0].Conversation != m.ConversationID || len(pub.events[0].Recipients) == 0 {
		t.Fatalf("published %+v, want the message's frame for its audience", pub.events)
	}
}
