package messaging

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// A connection has one goroutine for good and one while it has something
// to write (STYLE §3.6):
//
//   - the reader, started by ServeConn (the HTTP handler returns once the
//     connection is upgraded), reads frames, does their database work,
//     and queues its answers as replies;
//   - the writer (drain) is the only code that writes to the socket,
//     except gorilla's own control frames (pong, close echo, 1009), which
//     gorilla allows concurrently. It is started when a frame is queued
//     and none is running, and ends when the queues are empty, so an idle
//     socket keeps no writer, no write buffer and no queue.
//
// The writer drains two queues: live frames, queued by the hub, and
// replies, queued by the reader. It takes replies first, which gives two
// orderings clients rely on: hello is the first frame, and the ack of a
// send precedes that message's own live frame on the sending socket.

const (
	// replyQueue is the reader's queue to the writer. The reader waits when
	// it is full (replay) except for acks, which are queued under the
	// conversation's send lock and must not wait: a client that has not
	// read 64 answers is cut off instead.
	replyQueue = 64
	// closeGrace is how long a closing side waits for the peer's answering
	// close frame before closing the TCP connection. Closing at once could
	// reset the connection while our close frame is still in flight, and
	// the client would see 1006 (abnormal) instead of our code.
	closeGrace = 2 * time.Second
	// syncPage is the number of messages read from the database at a time
	// during a replay.
	syncPage = 100
	// typingEntries bounds a client's typing throttle map before pruning.
	typingEntries = 256
)

// client is one socket.
type client struct {
	p    Participant
	conn *websocket.Conn

	// mu guards the writer's state: the queues, whether a writer runs,
	// and how the socket is to close.
	mu        sync.Mutex
	live      [][]byte // frames from the hub, at most liveQueue
	liveQueue int
	replies   [][]byte // frames from the reader, at most replyQueue
	ping      bool     // a ping is due
	writing   bool     // a writer goroutine runs
	closing   bool     // the hub has let the socket go: no more live frames
	closeCode int      // the close code to send once the queues are empty (0: none)
	done      bool     // the writer has finished for good

	stopped    chan struct{} // closed when the writer takes no more frames
	room       chan struct{} // the writer took a reply (the reader may be waiting)
	readerDone chan struct{} // closed when the reader has returned
	writerDone chan struct{} // closed when the writer has finished for good
	pinger     *time.Timer   // queues a ping when one is due
	drainer    func()        // runs the writer; set by start, once hello is queued

	// user holds the user's rate limits, shared by all their sockets. Set
	// by the hub before it answers the registration.
	user *userState

	// activeAt is when the reader last told p.Active about activity.
	activeAt time.Time

	// typing is when this socket last passed on typing per conversation.
	// Only the reader touches it. It stays nil until the first typing
	// frame: most sockets never send one, and idle sockets are many.
	typing map[string]time.Time
}

func newClient(p Participant, conn *websocket.Conn, queue int) *client {
	return &client{
		p:          p,
		conn:       conn,
		liveQueue:  queue,
		stopped:    make(chan struct{}),
		room:       make(chan struct{}, 1),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
}

// queue hands f to the writer, waiting while the reply queue is full. It
// reports false if the writer has stopped.
func (c *client) queue(f []byte) bool {
	for {
		if ok, full := c.addReply(f); !full {
			return ok
		}
		select {
		case <-c.room:
		case <-c.stopped:
			return false
		}
	}
}

// offer hands f to the writer if there is room now; it never waits.
func (c *client) offer(f []byte) bool {
	ok, _ := c.addReply(f)
	return ok
}

// addReply queues f as a reply if the writer takes frames and the queue
// has room. Once the hub has let the socket go it takes none: the close
// frame follows what is queued, and a reader that kept answering (a long
// replay) must not put it off.
func (c *client) addReply(f []byte) (ok, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closing || c.done:
		return false, false
	case len(c.replies) >= replyQueue:
		return false, true
	}
	c.replies = append(c.replies, f)
	c.wake()
	return true, false
}

// letGo reports whether the hub has let the socket go or the writer has
// finished: the reader then does no more work.
func (c *client) letGo() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing || c.done
}

// deliver queues a live frame from the hub. It reports false if the queue
// is full: the client is too slow, and the hub lets it go.
func (c *client) deliver(f []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.done {
		return true
	}
	if len(c.live) >= c.liveQueue {
		return false
	}
	c.live = append(c.live, f)
	c.wake()
	return true
}

// close tells the writer to write what is queued, then close the socket
// with code (none if 0). Only the hub calls it, once per client.
func (c *client) close(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closing, c.closeCode = true, code
	c.wake()
}

// start lets the writer run, once hello is queued, and starts the pings.
func (c *client) start(s *Service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pinger = time.AfterFunc(s.pingEvery(), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.ping = true
		c.wake()
	})
	c.drainer = func() { s.drain(c) }
	c.wake()
}

// wake starts a writer if there is work and none runs. c.mu is held.
func (c *client) wake() {
	if c.drainer == nil || c.writing || c.done { // no writer before start
		return
	}
	if len(c.replies) == 0 && len(c.live) == 0 && !c.ping && !c.closing {
		return
	}
	c.writing = true
	go c.drainer()
}

// pingEvery is how often a socket is pinged: soon enough for the pong to
// come back before the read deadline (PongWait) passes.
func (s *Service) pingEvery() time.Duration { return s.cfg.PongWait * 9 / 10 }

func (s *Service) limits() limits {
	return limits{
		maxSockets:    s.cfg.MaxSocketsPerUser,
		sendBurst:     s.cfg.SendBurst,
		sendInterval:  s.cfg.SendInterval,
		frameBurst:    s.cfg.FrameBurst,
		frameInterval: s.cfg.FrameInterval,
	}
}

// op returns the context for one frame's database work.
func (s *Service) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.OpTimeout)
}

// open registers an upgraded connection with the hub, queues its hello
// and starts its writer. If it cannot, it closes the connection and
// reports false.
func (s *Service) open(ctx context.Context, c *client) bool {
	if err := s.hub.add(ctx, c, s.limits()); err != nil {
		code := websocket.CloseGoingAway // the hub has stopped: shutting down
		switch {
		case errors.Is(err, errTooManySockets):
			code = websocket.ClosePolicyViolation
		case errors.Is(err, ErrRateLimited):
			code = websocket.CloseTryAgainLater
		}
		s.closeNow(c.conn, code)
		c.conn.Close()
		return false
	}
	// From here on the hub may queue live events.
	//
	// The hello snapshot is taken after registering, never before: a message
	// committed before the snapshot is in last_seq, one committed after it
	// arrives live, so nothing falls between the two (a message can be in
	// both; clients ignore a seq they have).
	hello, err := s.hello(ctx, c.p)
	if err != nil {
		s.log.ErrorContext(ctx, "chat hello", "user", c.p.UserID, "err", err)
		s.hub.remove(c)
		s.closeNow(c.conn, websocket.CloseInternalServerErr)
		c.conn.Close()
		return false
	}
	// The queue is empty: this fails only if the hub has let the socket go
	// already, and then the close frame is all the client gets.
	c.offer(hello)
	c.start(s)
	return true
}

// run reads an open connection until it ends, then lets it go.
func (s *Service) run(ctx context.Context, c *client) {
	s.readPump(ctx, c)
	close(c.readerDone)
	c.conn.Close()  // unblocks a writer stuck in a write
	s.hub.remove(c) // lets the socket go if the hub has not, which ends the writer
	<-c.writerDone
}

// hello builds the first frame: who the user is and their conversations.
func (s *Service) hello(ctx context.Context, p Participant) ([]byte, error) {
	ctx, cancel := s.op(ctx)
	defer cancel()
	sums, err := s.Conversations(ctx, p)
	if err != nil {
		return nil, err
	}
	convs := make([]wireConversation, len(sums)) // [] rather than null when empty
	for i, c := range sums {
		convs[i] = wireConversation{ID: c.ID, Case: c.CaseID, Title: c.Title, LastSeq: c.LastSeq, Unread: c.Unread}
	}
	return encode(helloFrame{Type: typeHello, V: ProtocolVersion, User: userOf(p), Conversations: convs}), nil
}

// closeNow closes a connection whose writer is not running: it sends a
// close frame with code and waits briefly for the peer's answer.
func (s *Service) closeNow(conn *websocket.Conn, code int) {
	now := time.Now()
	if err := conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(code, ""), now.Add(s.cfg.WriteWait)); err != nil {
		return
	}
	conn.SetReadDeadline(now.Add(closeGrace))
	conn.SetReadLimit(maxFrameBytes)
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return // the peer's close frame, or the deadline
		}
	}
}

// readPump reads frames until the connection fails or closes. It runs on
// the goroutine ServeConn started for the connection.
func (s *Service) readPump(ctx context.Context, c *client) {
	c.conn.SetReadLimit(maxFrameBytes) // a larger frame closes the socket with 1009
	c.conn.SetReadDeadline(time.Now().Add(s.cfg.PongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(s.cfg.PongWait))
	})
	for {
		mt, raw, err := c.conn.ReadMessage()
		if errors.Is(err, websocket.ErrReadLimit) {
			// gorilla has sent close 1009. Read and drop what the peer is
			// still sending (the rest of the frame, then its close frame),
			// so that closing with unread input does not reset the
			// connection and lose our close frame on the way.
			nc := c.conn.NetConn()
			nc.SetReadDeadline(time.Now().Add(closeGrace))
			io.CopyN(io.Discard, nc, 2*maxFrameBytes)
			return
		}
		if err != nil {
			if websocket.IsUnexpectedCloseError(err, websocket.CloseGoingAway,
				websocket.CloseNormalClosure, websocket.CloseNoStatusReceived) {
				s.log.DebugContext(ctx, "chat read", "user", c.p.UserID, "err", err)
			}
			return
		}
		if c.letGo() {
			// The hub has let the socket go (a session ended, access was
			// lost, shutdown) or the writer has died: keep reading only to
			// receive the peer's answer to the close, and do no more work.
			continue
		}
		if !s.handle(ctx, c, mt, raw) {
			return
		}
	}
}

// handle answers one frame. It reports false if the connection must end.
func (s *Service) handle(ctx context.Context, c *client, mt int, raw []byte) bool {
	if mt != websocket.TextMessage {
		c.queue(s.errorFrame(ctx, c.p, fmt.Errorf("%w: binary frame", ErrInvalidMessage), "", ""))
		return true
	}
	in, ferr := decodeFrame(raw)
	if ferr != nil {
		c.queue(encode(errorFrame{
			Type: typeError, Code: ferr.code, ClientID: ferr.clientID,
			Conversation: ferr.conversation, Message: c.p.text(ferr.code.MessageID()),
		}))
		return true
	}
	clientID := in.ClientID // set only for send
	now := time.Now()
	if !c.user.frames.allow(now) || (in.Type == typeSend && !c.user.sends.allow(now)) {
		c.queue(s.errorFrame(ctx, c.p, ErrRateLimited, clientID, in.Conversation))
		return true
	}

	switch in.Type {
	case typeSend:
		// A send's checks (the decision, then its live frame's audience)
		// share what the Authorizer reads once. Only a send's: a sync
		// runs as long as the client takes to read it, and each of its
		// conversations is checked afresh.
		if fs, ok := s.auth.(FrameScoper); ok {
			ctx = fs.FrameContext(ctx)
		}
		ctx, cancel := s.op(ctx)
		defer cancel()
		// Before the ack: once a client holds the ack, its session has
		// been kept alive.
		c.active(ctx, now)
		acked := true
		_, err := s.send(ctx, c.p, in.Conversation, in.ClientID, *in.Body, func(m Message) {
			acked = c.offer(encode(newAckFrame(m)))
		})
		if err != nil {
			c.queue(s.errorFrame(ctx, c.p, err, clientID, in.Conversation))
			return true
		}
		if !acked {
			// A client that has not read 64 answers is too slow, like one
			// whose live queue is full: cut it off with 1013 (gorilla allows
			// WriteControl next to the writer). The message is stored; the
			// client gets its ack when it resends after reconnecting.
			s.log.InfoContext(ctx, "chat client too slow for its acks; disconnecting", "user", c.p.UserID)
			c.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseTryAgainLater, ""), time.Now().Add(s.cfg.WriteWait))
			return false
		}

	case typeSync:
		for _, id := range slices.Sorted(maps.Keys(in.Cursors)) {
			if err := s.replay(ctx, c, id, in.Cursors[id]); err != nil {
				if errors.Is(err, errWriterStopped) {
					return true
				}
				c.queue(s.errorFrame(ctx, c.p, err, "", id))
			}
		}
		c.queue(encode(syncedFrame{Type: typeSynced}))

	case typeRead:
		ctx, cancel := s.op(ctx)
		defer cancel()
		if err := s.MarkRead(ctx, c.p, in.Conversation, *in.Seq); err != nil {
			c.queue(s.errorFrame(ctx, c.p, err, "", in.Conversation))
		}

	case typeTyping:
		// Typing is best effort and frequent: pass it on at most once per
		// TypingInterval per conversation, silently dropping the rest before
		// they cost an access check. Only conversations that passed the
		// check get an entry, so the map is bounded by what the user may see.
		if last, ok := c.typing[in.Conversation]; ok && now.Sub(last) < s.cfg.TypingInterval {
			return true
		}
		ctx, cancel := s.op(ctx)
		defer cancel()
		if err := s.typing(ctx, c.p, in.Conversation); err != nil {
			c.queue(s.errorFrame(ctx, c.p, err, "", in.Conversation))
			return true
		}
		if c.typing == nil {
			c.typing = make(map[string]time.Time)
		}
		if len(c.typing) >= typingEntries {
			for id, t := range c.typing {
				if now.Sub(t) >= s.cfg.TypingInterval {
					delete(c.typing, id)
				}
			}
		}
		c.typing[in.Conversation] = now
		c.active(ctx, now)
	}
	return true
}

// activeEvery is how often a socket tells its participant's Active hook
// about activity.
const activeEvery = time.Minute

// active tells c's participant that they are active, at most once per
// activeEvery. Only the reader calls it.
func (c *client) active(ctx context.Context, now time.Time) {
	if c.p.Active == nil || now.Sub(c.activeAt) < activeEvery {
		return
	}
	c.activeAt = now
	c.p.Active(ctx)
}

// errWriterStopped ends a replay whose socket is closing.
var errWriterStopped = errors.New("messaging: writer stopped")

// replay sends c what it missed in conversation id after cursor, from the
// database, in seq order: every frame is authorized like any other, and a
// cursor more than ResyncLimit behind gets resync_required instead.
func (s *Service) replay(ctx context.Context, c *client, id string, cursor int64) error {
	opCtx, cancel := s.op(ctx)
	err := s.auth.Authorize(opCtx, c.p, id, ActionSync)
	var last int64
	if err == nil {
		last, err = s.store.LastSeq(opCtx, id)
	}
	cancel()
	if err != nil {
		return err
	}
	if last-cursor > s.cfg.ResyncLimit {
		if !c.queue(encode(resyncFrame{Type: typeResyncRequired, Conversation: id, Message: c.p.text(MessageIDResync)})) {
			return errWriterStopped
		}
		return nil
	}
	// Up to last as it was when checked: anything newer reaches the socket
	// live, as it is registered with the hub.
	for after := cursor; after < last; {
		opCtx, cancel := s.op(ctx)
		ms, err := s.store.MessagesAfter(opCtx, id, after, syncPage)
		cancel()
		if err != nil {
			return err
		}
		if len(ms) == 0 {
			break
		}
		for _, m := range ms {
			if m.Seq > last {
				return nil
			}
			// queue waits while the writer is behind: a replay goes at the
			// pace of this one socket and holds nothing anyone else needs.
			if !c.queue(encode(newMessageFrame(m))) {
				return errWriterStopped
			}
		}
		after = ms[len(ms)-1].Seq
	}
	return nil
}

// errorFrame encodes an error frame for err, logging err if it is
// unexpected (ids only).
func (s *Service) errorFrame(ctx context.Context, p Participant, err error, clientID, conversationID string) []byte {
	code := codeOf(err)
	if code == CodeUnavailable {
		s.log.ErrorContext(ctx, "chat", "user", p.UserID, "conversation", conversationID, "err", err)
	}
	return encode(errorFrame{
		Type: typeError, Code: code, ClientID: clientID,
		Conversation: conversationID, Message: p.text(code.MessageID()),
	})
}

// drain is the writer: it writes queued frames until the queues are
// empty, then returns; wake starts it again when there is more. Once the
// hub has let the socket go it writes what is left, sends the close frame
// and finishes for good; so does a failed write.
func (s *Service) drain(c *client) {
	for {
		c.mu.Lock()
		var f []byte
		ping, reply := false, false
		switch {
		case c.ping:
			// A due ping goes before any frame: a socket that always has
			// frames waiting must still be pinged, or its peer's pongs
			// stop and the read deadline ends the connection.
			c.ping, ping = false, true
		case len(c.replies) > 0: // replies first: see the top of this file
			f, c.replies[0] = c.replies[0], nil
			c.replies = c.replies[1:]
			reply = true
		case len(c.live) > 0:
			f, c.live[0] = c.live[0], nil
			c.live = c.live[1:]
		case c.closing:
			code := c.closeCode
			c.mu.Unlock()
			s.finish(c, code)
			return
		default:
			// Empty: let the queues' arrays go, so an idle socket holds none.
			c.replies, c.live = nil, nil
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if reply {
			select {
			case c.room <- struct{}{}:
			default:
			}
		}
		c.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteWait))
		var err error
		if ping {
			err = c.conn.WriteMessage(websocket.PingMessage, nil)
			c.pinger.Reset(s.pingEvery())
		} else {
			err = c.conn.WriteMessage(websocket.TextMessage, f)
		}
		if err != nil {
			s.finish(c, 0)
			return
		}
	}
}

// finish ends the writer for good: it takes no more frames, sends the
// close frame with code (none if 0), and closes the connection, which ends
// the reader.
func (s *Service) finish(c *client, code int) {
	c.mu.Lock()
	c.done = true
	c.replies, c.live = nil, nil
	c.mu.Unlock()
	c.pinger.Stop()
	close(c.stopped)
	defer close(c.writerDone)
	if code != 0 {
		if err := c.conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(code, ""), time.Now().Add(s.cfg.WriteWait)); err == nil {
			// Let the reader receive the peer's answering close frame before
			// the TCP connection goes (see closeGrace).
			t := time.NewTimer(closeGrace)
			select {
			case <-c.readerDone:
			case <-t.C:
			}
			t.Stop()
		}
	}
	c.conn.Close() // unblocks the reader
}

// bucket is a token bucket (as GCRA: one timestamp, no timer): burst
// tokens, refilled one per interval. It is shared by a user's sockets, so it
// has its own lock.
type bucket struct {
	mu       sync.Mutex
	burst    int
	interval time.Duration
	tat      time.Time // when the bucket will be full again
}

func newBucket(burst int, interval time.Duration) *bucket {
	return &bucket{burst: max(burst, 1), interval: interval}
}

// allow takes a token at now if there is one.
func (b *bucket) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	tat := b.tat
	if tat.Before(now) {
		tat = now
	}
	if tat.Sub(now) > time.Duration(b.burst-1)*b.interval {
		return false
	}
	b.tat = tat.Add(b.interval)
	return true
}

// full reports whether the bucket has refilled completely at now.
func (b *bucket) full(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.tat.After(now)
}

// OriginChecker returns an Upgrader.CheckOrigin that accepts a handshake
// only if it carries exactly one Origin header equal to one of origins.
// A missing Origin is refused (gorilla's default lets it through), and so
// is "null" (sandboxed frames, file: pages). origins are scheme://host[:port]
// with http or https; default ports are dropped, as browsers do.
func OriginChecker(origins []string) (func(*http.Request) bool, error) {
	if len(origins) == 0 {
		return nil, errors.New("messaging: no allowed websocket origins configured")
	}
	allowed := make(map[string]bool, len(origins))
	for _, o := range origins {
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		allowed[n] = true
	}
	return func(r *http.Request) bool {
		vs := r.Header.Values("Origin")
		return len(vs) == 1 && allowed[vs[0]]
	}, nil
}

// normalizeOrigin turns a configured origin into the form a browser sends.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	if err != nil {
		return "", fmt.Errorf("messaging: origin %q: %w", o, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("messaging: origin %q is not scheme://host[:port]", o)
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		return scheme + "://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}
