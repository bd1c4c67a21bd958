package messaging

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Config tunes a Service. Only Origins is required; a zero value elsewhere
// means the default shown.
type Config struct {
	// Origins are the exact origins (scheme://host[:port]) the portal is
	// served from. A websocket handshake from any other Origin, or with
	// none, is refused: the socket rides the session cookie, and this check
	// is what stops cross-site websocket hijacking.
	Origins []string
	// Logger receives unexpected errors, with ids only (never message text
	// or names). Default: discard.
	Logger *slog.Logger
	// Publisher carries live events to the hubs. Default: the Service's Hub
	// (one instance).
	Publisher Publisher
	// Observers hear about every newly stored message (never a resend),
	// after it is committed and published, in the order given: the place
	// for auto-replies and notifications.
	Observers []Observer

	MaxSocketsPerUser int           // sockets open at once per user (10)
	SendBurst         int           // messages a user may send at once (20)
	SendInterval      time.Duration // then one more per interval (1s)
	FrameBurst        int           // frames of any type at once, connects included (60)
	FrameInterval     time.Duration // then one more per interval (100ms)
	SendQueue         int           // live frames queued per socket before it is cut off (64)
	ResyncLimit       int64         // most messages one sync replays per conversation (500)
	TypingInterval    time.Duration // typing frames per conversation and socket are passed on at most this often (2s)
	WriteWait         time.Duration // time allowed to write one frame (10s)
	PongWait          time.Duration // silence allowed before a peer counts as dead; pings go out at 9/10 of it (60s)
	OpTimeout         time.Duration // time allowed for one frame's database work (10s)
}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxSocketsPerUser, 10)
	def(&c.SendBurst, 20)
	defDur(&c.SendInterval, time.Second)
	def(&c.FrameBurst, 60)
	defDur(&c.FrameInterval, 100*time.Millisecond)
	def(&c.SendQueue, 64)
	if c.ResyncLimit <= 0 {
		c.ResyncLimit = 500
	}
	defDur(&c.TypingInterval, 2*time.Second)
	defDur(&c.WriteWait, 10*time.Second)
	defDur(&c.PongWait, 60*time.Second)
	defDur(&c.OpTimeout, 10*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// lockShards is the number of per-conversation send locks (see Service.locks).
// A sender holds its lock until its message is committed and published, and
// group commit puts only one message per lock into a transaction, so with
// 64 the 2,000 busy conversations of portal-bench queued behind each other
// (the block profile's biggest wait, and second-long p99s at 1,000 msg/s).
// 4,096 channels cost about 400 KB.
const lockShards = 4096

// Service is the chat's domain operations (send, read, history, the hello
// list) and the websocket endpoint that carries them (ServeConn). Every
// operation on a conversation is authorized through the Authorizer first.
type Service struct {
	store    *Store
	auth     Authorizer
	hub      *Hub
	pub      Publisher
	log      *slog.Logger
	cfg      Config
	upgrader websocket.Upgrader

	// conns counts live ServeConn calls; Wait waits for it.
	conns sync.WaitGroup

	// formSends rate-limits Send (the form post) per user id: *bucket.
	formSends sync.Map

	// locks serialise "store a message, then publish it" per conversation
	// (by hash, so unrelated conversations rarely share one). Without them
	// two senders could commit seq 5 and 6 and publish them as 6, 5, and
	// every socket would see a gap it has to sync for. Each is a channel of
	// capacity one, so that waiting for it respects the caller's context.
	locks [lockShards]chan struct{}
}

// NewService returns a Service over store that asks auth before every
// operation and delivers live events through hub (or cfg.Publisher). Run
// the hub with Hub.Run; cancelling its context closes every socket.
func NewService(store *Store, auth Authorizer, hub *Hub, cfg Config) (*Service, error) {
	if store == nil || auth == nil || hub == nil {
		return nil, errors.New("messaging: NewService needs a store, an authorizer and a hub")
	}
	checkOrigin, err := OriginChecker(cfg.Origins)
	if err != nil {
		return nil, err
	}
	cfg.setDefaults()
	s := &Service{
		store: store,
		auth:  auth,
		hub:   hub,
		pub:   cfg.Publisher,
		log:   cfg.Logger,
		cfg:   cfg,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			// An idle socket holds a 512-byte read buffer and no write
			// buffer: writers take one from writeBuffers for each frame and
			// give it back after. Chat frames are a few hundred bytes; a
			// longer one is read in several steps or goes out in fragments.
			// The sizes limit no message (SetReadLimit does).
			ReadBufferSize:  512,
			WriteBufferSize: writeBufferSize,
			WriteBufferPool: writeBuffers,
			CheckOrigin:     checkOrigin,
			// No compression: frames mix what a person typed with other
			// data, the setting for compression side channels.
			EnableCompression: false,
		},
	}
	if s.pub == nil {
		s.pub = hub
	}
	for i := range s.locks {
		s.locks[i] = make(chan struct{}, 1)
	}
	return s, nil
}

// writeBufferSize is the size of the buffer a socket writes a frame
// through; writeBuffers keeps them between writes, shared by all sockets.
const writeBufferSize = 4096

var writeBuffers = new(sync.Pool)

// Disconnect closes every socket of userID (close 1008): a session ended,
// or the person lost access. Their clients reconnect only with a valid session.
func (s *Service) Disconnect(ctx context.Context, userID string) error {
	// A Publisher that reaches other instances (PGBroker) closes the
	// sockets there too.
	if d, ok := s.pub.(interface {
		Disconnect(ctx context.Context, userID string) error
	}); ok {
		return d.Disconnect(ctx, userID)
	}
	return s.hub.Disconnect(ctx, userID)
}

// Wait blocks until every connection served by ServeConn has ended. Call it
// after stopping the hub (which closes them) and after http.Server.Shutdown
// (which guarantees no new ones start), because Shutdown does not wait for
// hijacked connections.
func (s *Service) Wait() { s.conns.Wait() }

func (s *Service) lock(ctx context.Context, conversationID string) (unlock func(), err error) {
	h := fnv.New32a()
	h.Write([]byte(conversationID))
	l := s.locks[h.Sum32()%lockShards]
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("messaging: wait to send: %w: %w", ErrUnavailable, ctx.Err())
	}
}

// Conversations returns the conversations p may see, with last seq and
// unread counts: the hello list, and the portal's conversation list.
func (s *Service) Conversations(ctx context.Context, p Participant) ([]ConversationSummary, error) {
	return s.ConversationsWhere(ctx, p, nil)
}

// ConversationsWhere is Conversations for those of p's conversations that
// keep accepts (all of them if keep is nil): a page that shows one case's
// or one conversation reads no counts for the others.
func (s *Service) ConversationsWhere(ctx context.Context, p Participant, keep func(ConversationRef) bool) ([]ConversationSummary, error) {
	refs, err := s.auth.Conversations(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("messaging: list conversations: %w", err)
	}
	var ids []string
	titles := make(map[string]string, len(refs))
	for _, r := range refs {
		if keep == nil || keep(r) {
			ids = append(ids, r.ID)
			titles[r.ID] = r.Title
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	sums, err := s.store.Summaries(ctx, p.UserID, ids)
	if err != nil {
		return nil, err
	}
	for i := range sums {
		sums[i].Title = titles[sums[i].ID]
	}
	return sums, nil
}

// Send stores a message from p in conversationID and publishes it, and
// returns the stored message (its ack). A resend with the same clientID
// returns the original message and stores nothing. The portal's form post
// (no JavaScript) uses it with a client id from a hidden field.
//
// Errors wrap ErrNotFound (no such conversation, or not p's),
// ErrInvalidMessage, ErrTooLarge or ErrUnavailable (nothing stored; retry).
func (s *Service) Send(ctx context.Context, p Participant, conversationID, clientID, body string) (Message, error) {
	// The form path has no socket, so it has its own per-user bucket with
	// the same limits as a socket's sends.
	b, _ := s.formSends.LoadOrStore(p.UserID, newBucket(s.cfg.SendBurst, s.cfg.SendInterval))
	if !b.(*bucket).allow(time.Now()) {
		return Message{}, ErrRateLimited
	}
	return s.send(ctx, p, conversationID, clientID, body, nil)
}

// send is Send with a hook: ack is called once the message is stored (or
// found, for a resend), before it is published, so the sending socket can
// queue its ack ahead of the message's own live frame. ack runs under the
// conversation's lock and must not block.
func (s *Service) send(ctx context.Context, p Participant, conversationID, clientID, body string, ack func(Message)) (Message, error) {
	if !validClientID(clientID) {
		return Message{}, fmt.Errorf("%w: bad client id", ErrInvalidMessage)
	}
	body, err := CleanBody(body)
	if err != nil {
		return Message{}, err
	}
	d := Draft{
		ConversationID: conversationID,
		SenderID:       p.UserID,
		ClientID:       clientID,
		Body:           body,
		Kind:           KindText,
		SenderName:     p.Name,
		SenderRole:     p.Role,
	}
	// Access first, on every send: a party revoked a second ago is refused
	// now, and a resend is not a way around the check.
	if sa, ok := s.auth.(SendAuthorizer); ok {
		if d.audit, err = sa.AuthorizeSend(ctx, p, conversationID); err != nil {
			return Message{}, err
		}
	} else if err := s.auth.Authorize(ctx, p, conversationID, ActionSend); err != nil {
		return Message{}, err
	}
	m, created, err := s.storeAndPublish(ctx, d, ack)
	if created {
		octx, cancel := s.afterCommit(ctx)
		s.observe(octx, m, p.Role)
		cancel()
	}
	return m, err
}

// afterCommit returns the context for the work that follows a committed
// write (its live frame, the observers): ctx's values without its
// deadline, bounded by an OpTimeout of its own. The frame's deadline may
// have passed while the write waited for its commit (under overload); the
// write is stored and acknowledged all the same, and the conversation's
// members must still get it live.
func (s *Service) afterCommit(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.cfg.OpTimeout)
}

// observe tells the observers about m, a new message from someone of role.
// It runs after the conversation's lock is released, so an observer may
// post (an auto-reply) to the same conversation.
func (s *Service) observe(ctx context.Context, m Message, role Role) {
	for _, o := range s.cfg.Observers {
		if err := o.MessageStored(ctx, m, role); err != nil {
			s.log.ErrorContext(ctx, "chat observer", "conversation", m.ConversationID, "message", m.ID, "err", err)
		}
	}
}

// Post stores and publishes a message the server itself writes: an
// auto-reply or a system notice, sent in the name of d.SenderID. It does no
// access check; the caller is the server. A deterministic d.ClientID (for
// example one per closed period) makes it idempotent like any send.
func (s *Service) Post(ctx context.Context, d Draft) (Message, error) {
	if !d.Kind.Valid() {
		return Message{}, fmt.Errorf("%w: kind %q", ErrInvalidMessage, d.Kind)
	}
	if !validClientID(d.ClientID) || d.SenderID == "" {
		return Message{}, fmt.Errorf("%w: bad client or sender id", ErrInvalidMessage)
	}
	body, err := CleanBody(d.Body)
	if err != nil {
		return Message{}, err
	}
	d.Body = body
	m, _, err := s.storeAndPublish(ctx, d, nil)
	return m, err
}

// storeAndPublish stores d and publishes it, under the conversation's lock.
// created is false for a resend of a stored message.
func (s *Service) storeAndPublish(ctx context.Context, d Draft, ack func(Message)) (m Message, created bool, err error) {
	unlock, err := s.lock(ctx, d.ConversationID)
	if err != nil {
		return Message{}, false, err
	}
	defer unlock()
	m, created, err = s.store.InsertMessage(ctx, d)
	if err != nil {
		return Message{}, false, err
	}
	if m.ConversationID != d.ConversationID {
		// The client id was used before, for a message elsewhere. Answering
		// with that ack would confuse the client; it is a client bug.
		return Message{}, false, fmt.Errorf("%w: client id already used in another conversation", ErrInvalidMessage)
	}
	if ack != nil {
		ack(m)
	}
	if created {
		// The message is committed; publishing is best effort (a client
		// that misses it gets it with a sync), so its failure is only
		// logged and the send still succeeds.
		pctx, cancel := s.afterCommit(ctx)
		defer cancel()
		s.publish(pctx, m.ConversationID, newMessageFrame(m), false, "")
	}
	return m, created, nil
}

// publish resolves who may see conversationID now and hands them frame.
func (s *Service) publish(ctx context.Context, conversationID string, frame any, staffOnly bool, except string) {
	rs, err := s.auth.Audience(ctx, conversationID)
	if err != nil {
		s.log.WarnContext(ctx, "chat audience", "conversation", conversationID, "err", err)
		return
	}
	e := Event{Conversation: conversationID, Recipients: rs, StaffOnly: staffOnly, Except: except, Frame: encode(frame)}
	if err := s.pub.Publish(ctx, e); err != nil && !errors.Is(err, ErrClosed) {
		s.log.WarnContext(ctx, "chat publish", "conversation", conversationID, "err", err)
	}
}

// Messages returns up to limit messages of conversationID after afterSeq,
// in order, if p may read them: the history for the page without
// JavaScript and for clients that reload after resync_required.
func (s *Service) Messages(ctx context.Context, p Participant, conversationID string, afterSeq int64, limit int) ([]Message, error) {
	if afterSeq < 0 {
		return nil, fmt.Errorf("%w: negative seq", ErrInvalidMessage)
	}
	if err := s.auth.Authorize(ctx, p, conversationID, ActionSync); err != nil {
		return nil, err
	}
	return s.store.MessagesAfter(ctx, conversationID, afterSeq, limit)
}

// MarkRead moves p's read cursor in conversationID forward to seq. When it
// moves, the conversation's staff get a read frame: read receipts are
// one-sided, so a family never receives one.
func (s *Service) MarkRead(ctx context.Context, p Participant, conversationID string, seq int64) error {
	if seq < 0 {
		return fmt.Errorf("%w: negative seq", ErrInvalidMessage)
	}
	if err := s.auth.Authorize(ctx, p, conversationID, ActionRead); err != nil {
		return err
	}
	cursor, advanced, err := s.store.MarkRead(ctx, conversationID, p.UserID, p.Role.Staff(), seq)
	if err != nil {
		return err
	}
	if advanced {
		pctx, cancel := s.afterCommit(ctx)
		defer cancel()
		s.publish(pctx, conversationID, readFrame{
			Type: typeRead, Conversation: conversationID, Seq: cursor, By: userOf(p),
		}, true, "")
	}
	return nil
}

// typing passes on that p is typing in conversationID to everyone else who
// may see it.
func (s *Service) typing(ctx context.Context, p Participant, conversationID string) error {
	if err := s.auth.Authorize(ctx, p, conversationID, ActionTyping); err != nil {
		return err
	}
	s.publish(ctx, conversationID, typingFrame{
		Type: typeTyping, Conversation: conversationID, By: userOf(p),
	}, false, p.UserID)
	return nil
}

// ServeConn upgrades the request to a websocket for p and returns; the
// connection then runs on goroutines of its own until it ends (Wait waits
// for them). It carries all of p's conversations (protocol v1,
// docs/protocol.md). The caller has authenticated p from the session;
// access to each conversation is checked per frame through the Authorizer.
//
// It returns an error only if the connection could not be established, and
// then an HTTP error response has already been written (a refused Origin is
// 403; a stopped hub is 503): the caller must not write another. Once the
// connection is upgraded it returns nil; what goes wrong later is logged
// here and told to the client with error frames or close codes.
func (s *Service) ServeConn(w http.ResponseWriter, r *http.Request, p Participant) error {
	// Count the connection before Upgrade hijacks it: until the hijack,
	// http.Server.Shutdown still waits for this request, so every Add
	// happens before the Wait that follows Shutdown (STYLE §2, item 3).
	s.conns.Add(1)
	if p.UserID == "" || !p.Role.Valid() {
		s.conns.Done()
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return errors.New("messaging: ServeConn without a valid participant")
	}
	select {
	case <-s.hub.Done():
		s.conns.Done()
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return ErrClosed
	default:
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.conns.Done()
		return fmt.Errorf("messaging: upgrade: %w", err)
	}
	// The socket does not keep the handler's goroutine: that is net/http's
	// goroutine for the connection, whose stack grew while the request was
	// routed and authenticated, and which holds the request and its
	// buffers. The hello is built here, on that goroutine, and the reader
	// starts afresh: its stack grows only with the frames it handles, so
	// an idle socket costs one small goroutine and little else. net/http
	// cancels the request's context when the handler returns; the socket
	// keeps its values, not its cancellation.
	ctx := context.WithoutCancel(r.Context())
	c := newClient(p, conn, s.cfg.SendQueue)
	if !s.open(ctx, c) {
		s.conns.Done()
		return nil
	}
	go func() {
		defer s.conns.Done()
		s.run(ctx, c)
	}()
	return nil
}
