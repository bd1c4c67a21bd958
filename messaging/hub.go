package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/gorilla/websocket"
)

// Publisher carries live events from the Service to the hubs that hold
// sockets. It is the seam for running several portal instances: the Hub is
// the in-process Publisher (one instance); a PostgreSQL LISTEN/NOTIFY broker
// would implement Publisher by notifying, and call Hub.Publish on every
// instance for each notification it receives.
//
// Publishing is best effort by design. A live event is a convenience on top
// of the database: everything a client misses it gets back with a sync,
// which reads the database. So a Publisher may drop events (for example
// while its connection is down), but must never block a sender for long.
type Publisher interface {
	Publish(ctx context.Context, e Event) error
}

// Event is one live frame for the sockets of some users: a stored message,
// a read cursor or a typing indicator. The Service builds it complete,
// recipients included, so delivering it needs no database access and no
// access decision.
type Event struct {
	// Conversation is the conversation the frame is about.
	Conversation string
	// Recipients are the users whose sockets get the frame, as the
	// Authorizer's Audience resolved them when the event was published.
	Recipients []Recipient
	// StaffOnly limits delivery to staff recipients: read receipts are
	// one-sided, a family never sees "read".
	StaffOnly bool
	// Except is a user whose sockets do not get the frame (the one typing).
	Except string
	// Frame is the complete server→client frame, encoded once.
	Frame json.RawMessage
}

// Hub delivers live events to connected clients.
//
// Ownership: the set of connected clients (users → clients) is owned by the
// Run goroutine and touched nowhere else; every other goroutine talks to the
// hub through its channels, and every send to a hub channel also selects on
// done, so nothing blocks once the hub has stopped. Only Run queues live
// frames for a client and lets it go (client.deliver, client.close), so a
// frame can never follow the close. Delivery never blocks: a client whose queue is full is cut off (close 1013), and it
// resumes with a sync.
//
// Why no rooms per conversation: a client's set of conversations changes
// while it is connected (a caseworker opens a shared conversation, a
// caseworker is assigned to a case, a party's rights are revoked). Rooms
// filled at connect time would go stale in both directions, delivering to a
// revoked party or missing a new conversation. Instead each Event names its
// recipients, resolved through the Authorizer when the event is published,
// and the hub only maps user ids to their sockets. One Audience query per
// event buys deliveries that are as current as the access rules.
type Hub struct {
	register   chan registration
	unregister chan *client
	events     chan Event
	disconnect chan string
	done       chan struct{} // closed when Run returns
}

// NewHub returns a hub. Start it with Run.
func NewHub() *Hub {
	return &Hub{
		register:   make(chan registration),
		unregister: make(chan *client),
		// Unbuffered: Publish returns once the hub has taken the event, and
		// the hub handles events in the order it takes them, so events that
		// one goroutine publishes in order reach every socket in order.
		events:     make(chan Event),
		disconnect: make(chan string),
		done:       make(chan struct{}),
	}
}

// limits are the per-user limits a registration brings along; the Service
// decides them, the hub enforces the socket count and keeps the buckets.
type limits struct {
	maxSockets    int
	sendBurst     int
	sendInterval  time.Duration
	frameBurst    int
	frameInterval time.Duration
}

type registration struct {
	c      *client
	limits limits
	reply  chan error
}

// errTooManySockets refuses a socket beyond the per-user limit.
var errTooManySockets = errors.New("messaging: too many sockets for this user")

// userState is what the hub keeps per user: their sockets and their rate
// limits. The buckets outlive the sockets (until swept) so that
// reconnecting does not refill them.
type userState struct {
	clients map[*client]struct{}
	sends   *bucket
	frames  *bucket
}

// sweepInterval is how often the hub forgets users without sockets whose
// buckets have refilled.
const sweepInterval = time.Minute

// Run serves the hub until ctx is cancelled, then lets every client go
// with close code 1001 (going away) and returns. Call it once.
// The writers send the close frames; Service.Wait waits for them.
func (h *Hub) Run(ctx context.Context) {
	defer close(h.done)
	users := make(map[string]*userState)

	// drop removes c and lets it go, telling its writer to send what is
	// queued, then a close frame with code (none if 0). It is idempotent.
	drop := func(c *client, code int) {
		u := users[c.p.UserID]
		if u == nil {
			return
		}
		if _, ok := u.clients[c]; !ok {
			return
		}
		delete(u.clients, c)
		c.close(code)
	}

	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	for {
		select {
		case r := <-h.register:
			u := users[r.c.p.UserID]
			if u == nil {
				u = &userState{
					clients: make(map[*client]struct{}),
					sends:   newBucket(r.limits.sendBurst, r.limits.sendInterval),
					frames:  newBucket(r.limits.frameBurst, r.limits.frameInterval),
				}
				users[r.c.p.UserID] = u
			}
			switch {
			case len(u.clients) >= r.limits.maxSockets:
				r.reply <- errTooManySockets
			case !u.frames.allow(time.Now()):
				// Connecting costs a frame, so reconnecting in a loop is
				// limited like any other flood.
				r.reply <- ErrRateLimited
			default:
				u.clients[r.c] = struct{}{}
				r.c.user = u // read by the client after it receives the reply
				r.reply <- nil
			}

		case c := <-h.unregister:
			drop(c, 0)

		case e := <-h.events:
			for _, r := range e.Recipients {
				if r.UserID == e.Except || (e.StaffOnly && !r.Role.Staff()) {
					continue
				}
				u := users[r.UserID]
				if u == nil {
					continue
				}
				for c := range u.clients {
					if !c.deliver(e.Frame) {
						// Slow consumer: cut it off rather than wait for it.
						// Waiting here would stall every other socket.
						drop(c, websocket.CloseTryAgainLater)
					}
				}
			}

		case id := <-h.disconnect:
			if u := users[id]; u != nil {
				for c := range u.clients {
					drop(c, websocket.ClosePolicyViolation)
				}
			}

		case now := <-sweep.C:
			for id, u := range users {
				if len(u.clients) == 0 && u.sends.full(now) && u.frames.full(now) {
					delete(users, id)
				}
			}

		case <-ctx.Done():
			for _, u := range users {
				for c := range u.clients {
					drop(c, websocket.CloseGoingAway)
				}
			}
			return
		}
	}
}

// Publish hands e to the hub for delivery; it implements Publisher for a
// single instance. It returns once the hub has taken the event, ErrClosed
// if the hub has stopped, or ctx's error.
func (h *Hub) Publish(ctx context.Context, e Event) error {
	select {
	case h.events <- e:
		return nil
	case <-h.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Disconnect closes every socket of userID with close code 1008 (policy
// violation). The portal calls it when a session ends or a user is blocked,
// so live events stop at once, not only at the next access check.
func (h *Hub) Disconnect(ctx context.Context, userID string) error {
	select {
	case h.disconnect <- userID:
		return nil
	case <-h.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when Run has returned.
func (h *Hub) Done() <-chan struct{} { return h.done }

// add registers c. It fails with ErrClosed once the hub has stopped, with
// errTooManySockets or ErrRateLimited over the user's limits.
func (h *Hub) add(ctx context.Context, c *client, l limits) error {
	r := registration{c: c, limits: l, reply: make(chan error, 1)}
	select {
	case h.register <- r:
	case <-h.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	// The hub always replies to a registration it took.
	return <-r.reply
}

// remove unregisters c; the hub lets c go if it has not already. It does
// not block once the hub has stopped (Run let every client go then).
func (h *Hub) remove(c *client) {
	select {
	case h.unregister <- c:
	case <-h.done:
	}
}
