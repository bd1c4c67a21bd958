package messaging_test

import (
	"context"
	"errors"
	"strings"
	"testing"

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
