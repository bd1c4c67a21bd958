package messaging

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var testLimits = limits{maxSockets: 10, sendBurst: 10, sendInterval: time.Second, frameBurst: 100, frameInterval: time.Millisecond}

// startHub runs a hub until the test ends (or stop is called).
func startHub(t *testing.T) (h *Hub, stop func()) {
	t.Helper()
	h = NewHub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(ctx)
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return h, stop
}

// fakeClient is a client without a socket: the test reads its send queue.
func fakeClient(t *testing.T, h *Hub, userID string, role Role, queue int) *client {
	t.Helper()
	c := newClient(Participant{UserID: userID, Role: role}, nil, queue)
	if err := h.add(context.Background(), c, testLimits); err != nil {
		t.Fatal(err)
	}
	return c
}

// settle returns once the hub has finished everything handed to it so
// far: it handles one request at a time, so a registration round trip
// comes after the fan-out of every event published before it.
func settle(t *testing.T, h *Hub) {
	t.Helper()
	c := fakeClient(t, h, "settle", RoleCitizen, 1)
	h.remove(c)
}

// drain returns the live frames queued for c (taking them) and whether
// the hub has let c go. Fake clients have no writer: frames stay queued.
func drain(c *client) (frames []string, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.live {
		frames = append(frames, string(f))
	}
	c.live = nil
	return frames, c.closing
}

func TestHub_dropsSlowConsumer(t *testing.T) {
	h, _ := startHub(t)
	slow := fakeClient(t, h, "sara", RoleCitizen, 2)
	fast := fakeClient(t, h, "kari", RoleCaseworker, 10)
	audience := []Recipient{{"sara", RoleCitizen}, {"kari", RoleCaseworker}}
	for _, f := range []string{"1", "2", "3", "4", "5"} {
		if err := h.Publish(context.Background(), Event{Recipients: audience, Frame: []byte(f)}); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, h)

	got, closed := drain(slow)
	if len(got) != 2 || !closed || slow.closeCode != websocket.CloseTryAgainLater {
		t.Errorf("slow client: %v, closed %v, code %d; want 2 frames, then closed with 1013", got, closed, slow.closeCode)
	}
	got, closed = drain(fast)
	if len(got) != 5 || closed {
		t.Errorf("fast client: %v, closed %v; want all 5 frames, still open", got, closed)
	}
	// A dropped client's unregister (from its reader) is harmless.
	h.remove(slow)
	settle(t, h)
}

func TestHub_delivery(t *testing.T) {
	h, _ := startHub(t)
	sara := fakeClient(t, h, "sara", RoleCitizen, 10)
	saraTab2 := fakeClient(t, h, "sara", RoleCitizen, 10)
	kari := fakeClient(t, h, "kari", RoleCaseworker, 10)
	leila := fakeClient(t, h, "leila", RoleCitizen, 10)
	audience := []Recipient{{"sara", RoleCitizen}, {"kari", RoleCaseworker}, {"nobody-connected", RoleCitizen}}
	ctx := context.Background()

	h.Publish(ctx, Event{Recipients: audience, Frame: []byte("message")})
	h.Publish(ctx, Event{Recipients: audience, StaffOnly: true, Frame: []byte("read")})
	h.Publish(ctx, Event{Recipients: audience, Except: "sara", Frame: []byte("typing")})
	settle(t, h)

	tests := []struct {
		name string
		c    *client
		want []string
	}{
		{"member, every socket", sara, []string{"message"}},
		{"member's second socket", saraTab2, []string{"message"}},
		{"staff", kari, []string{"message", "read", "typing"}},
		{"not in the audience", leila, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := drain(tt.c)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestHub_limits(t *testing.T) {
	h, _ := startHub(t)
	ctx := context.Background()
	l := testLimits
	l.maxSockets = 1
	a := newClient(Participant{UserID: "sara", Role: RoleCitizen}, nil, 1)
	if err := h.add(ctx, a, l); err != nil {
		t.Fatal(err)
	}
	if a.user == nil || a.user.sends == nil {
		t.Fatalf("registration did not hand out the user's limits")
	}
	b := newClient(Participant{UserID: "sara", Role: RoleCitizen}, nil, 1)
	if err := h.add(ctx, b, l); !errors.Is(err, errTooManySockets) {
		t.Errorf("second socket: %v, want errTooManySockets", err)
	}
	h.remove(a)
	if err := h.add(ctx, b, l); err != nil {
		t.Errorf("socket after the first closed: %v", err)
	}
	if b.user != a.user {
		t.Errorf("a reconnect got fresh rate limits")
	}

	// Connecting costs a frame token.
	l = testLimits
	l.frameBurst, l.frameInterval = 1, time.Hour
	c := newClient(Participant{UserID: "per", Role: RoleCitizen}, nil, 1)
	if err := h.add(ctx, c, l); err != nil {
		t.Fatal(err)
	}
	h.remove(c)
	if err := h.add(ctx, newClient(c.p, nil, 1), l); !errors.Is(err, ErrRateLimited) {
		t.Errorf("reconnect with an empty bucket: %v, want ErrRateLimited", err)
	}
}

func TestHub_DisconnectAndStop(t *testing.T) {
	h, stop := startHub(t)
	ctx := context.Background()
	sara := fakeClient(t, h, "sara", RoleCitizen, 1)
	kari := fakeClient(t, h, "kari", RoleCaseworker, 1)

	if err := h.Disconnect(ctx, "sara"); err != nil {
		t.Fatal(err)
	}
	settle(t, h)
	if _, closed := drain(sara); !closed || sara.closeCode != websocket.ClosePolicyViolation {
		t.Errorf("Disconnect: closed %v, code %d; want closed with 1008", closed, sara.closeCode)
	}

	stop()
	if _, closed := drain(kari); !closed || kari.closeCode != websocket.CloseGoingAway {
		t.Errorf("stop: closed %v, code %d; want closed with 1001", closed, kari.closeCode)
	}
	if err := h.add(ctx, newClient(kari.p, nil, 1), testLimits); !errors.Is(err, ErrClosed) {
		t.Errorf("add after stop = %v, want ErrClosed", err)
	}
	if err := h.Publish(ctx, Event{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after stop = %v, want ErrClosed", err)
	}
	if err := h.Disconnect(ctx, "kari"); !errors.Is(err, ErrClosed) {
		t.Errorf("Disconnect after stop = %v, want ErrClosed", err)
	}
	h.remove(kari) // does not block
}

// Once the hub lets a client go, the client takes no more replies and its
// reader does no more work: a reader that kept answering (a long replay
// to a signed-out socket) would otherwise put the close frame off.
func TestClient_letGoTakesNoMoreReplies(t *testing.T) {
	h, _ := startHub(t)
	c := fakeClient(t, h, "sara", RoleCitizen, 4)
	if !c.offer([]byte("before")) || c.letGo() {
		t.Fatal("a registered client refused a reply")
	}
	if err := h.Disconnect(context.Background(), "sara"); err != nil {
		t.Fatal(err)
	}
	settle(t, h)
	if !c.letGo() {
		t.Fatal("letGo = false after Disconnect")
	}
	if c.offer([]byte("after")) {
		t.Error("a client the hub let go took another reply")
	}
	if c.queue([]byte("after")) {
		t.Error("queue took a reply after the hub let the client go")
	}
}
