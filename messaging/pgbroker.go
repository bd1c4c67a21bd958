package messaging

// This file is the Publisher for several portal instances on one PostgreSQL
// database: LISTEN/NOTIFY, with ids only on the wire.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
)

// PGBrokerConfig configures a PGBroker. URL, DB, Store, Auth and Hub are
// required; a zero value elsewhere means the default shown.
type PGBrokerConfig struct {
	// URL is the PostgreSQL URL; the broker opens its own listening
	// connection with it (a pooled one cannot stay in LISTEN).
	URL string
	// DB is the pool notifications are sent through.
	DB *sqlx.DB
	// Store reads the messages that other instances announce.
	Store *Store
	// Auth resolves who receives an announced event on this instance, as
	// the Service does for its own events: as current as the access rules.
	Auth Authorizer
	// Hub holds this instance's sockets.
	Hub *Hub
	// Logger receives connection trouble, with ids only. Default: discard.
	Logger *slog.Logger
	// Channel is the notification channel (familieportal_chat).
	Channel string
	// Reconcile is how often the broker compares every conversation's last
	// seq with what it has delivered and sends what is missing (30s). It
	// catches an announcement that never came: the sending instance died
	// between its commit and its NOTIFY, or the NOTIFY failed.
	Reconcile time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to
	// reconnect the listening connection (100ms, 5s); it doubles per failed
	// attempt, with jitter.
	MinBackoff, MaxBackoff time.Duration
}

// PGBroker carries live events between portal instances that share one
// PostgreSQL database. It is a Publisher: give it to NewService as
// Config.Publisher, and run it with Run.
//
// Sending: Publish hands the event to this instance's hub at once, complete,
// and announces it to the other instances with NOTIFY. The announcement
// carries ids only — the kind of event, the conversation, a seq, a user id —
// never message text or names: a payload must stay under 8000 bytes, and
// nothing personal should pass through the server's notification queue.
// Only events that happen once are announced (message, read, typing); other
// frames, such as availability, are computed by every instance for its own
// sockets and stay local. Disconnect is announced too, so ending a session
// closes the person's sockets on every instance.
//
// Receiving: one dedicated connection LISTENs. For each announcement from
// another instance the broker rebuilds the event from the database — the
// message by conversation and seq, the audience through the Authorizer,
// the person by id — and hands it to the hub.
//
// Nothing is missed: the broker remembers, per conversation, the newest seq
// delivered here. Whenever its listening connection comes back after a
// gap, and every Reconcile interval, it compares that with every
// conversation's last seq in the database and delivers what is missing
// (the newest backfillLimit messages per conversation; a socket further
// behind sees a gap and syncs, as the protocol asks). An announcement
// that skips seqs is filled the same way. Read and typing frames missed in
// a gap are not replayed: they are momentary, and a reconnecting client
// gets read state from the database anyway.
type PGBroker struct {
	cfg    PGBrokerConfig
	log    *slog.Logger
	origin string // this instance's id; its own announcements are skipped

	ready     chan struct{} // closed once the first LISTEN is in place
	readyOnce sync.Once

	// seen is the newest message seq per conversation that this instance
	// has delivered (or that existed when it last compared with the
	// database). Publish writes it from request goroutines, Run from its
	// own; hence the lock.
	mu   sync.Mutex
	seen map[string]int64
}

// backfillLimit bounds the messages of one conversation delivered when
// filling a gap; clients sync for anything older.
const backfillLimit = 50

// maxPayload is PostgreSQL's limit on a NOTIFY payload, in bytes.
const maxPayload = 8000

// NewPGBroker returns a broker. Start it with Run before serving sockets,
// and wait for Ready.
func NewPGBroker(cfg PGBrokerConfig) (*PGBroker, error) {
	if cfg.URL == "" || cfg.DB == nil || cfg.Store == nil || cfg.Auth == nil || cfg.Hub == nil {
		return nil, errors.New("messaging: NewPGBroker needs a URL, a DB, a store, an authorizer and a hub")
	}
	if _, err := pgx.ParseConfig(cfg.URL); err != nil {
		return nil, errors.New("messaging: the broker's PostgreSQL URL cannot be parsed")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Channel == "" {
		cfg.Channel = "familieportal_chat"
	}
	if cfg.Reconcile <= 0 {
		cfg.Reconcile = 30 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	return &PGBroker{
		cfg:    cfg,
		log:    cfg.Logger,
		origin: newID(),
		ready:  make(chan struct{}),
		seen:   make(map[string]int64),
	}, nil
}

// Ready is closed once the broker listens. Sockets served before that
// could miss events announced in the meantime.
func (b *PGBroker) Ready() <-chan struct{} { return b.ready }

// ListenerName is the application_name of the broker's listening
// connection, as pg_stat_activity shows it.
func (b *PGBroker) ListenerName() string { return "familieportal-listen-" + b.origin }

// notice is an announcement, as NOTIFY carries it: ids only.
type notice struct {
	Origin       string `json:"o"`
	Type         string `json:"t"`
	Conversation string `json:"c,omitempty"`
	Seq          int64  `json:"s,omitempty"`
	User         string `json:"u,omitempty"`
}

// typeDisconnect announces Disconnect; it is no frame type of the protocol.
const typeDisconnect = "disconnect"

// Publish delivers e to this instance's sockets and announces it to the
// other instances. It implements Publisher.
func (b *PGBroker) Publish(ctx context.Context, e Event) error {
	// The frame was encoded by the Service from one of its own structs;
	// only its type, seq and author are needed for the announcement.
	var head struct {
		Type string    `json:"type"`
		Seq  int64     `json:"seq"`
		By   *wireUser `json:"by"`
	}
	if err := json.Unmarshal(e.Frame, &head); err != nil {
		return fmt.Errorf("messaging: publish: %w", err)
	}
	n := notice{Origin: b.origin, Type: head.Type, Conversation: e.Conversation}
	switch head.Type {
	case typeMessage:
		n.Seq = head.Seq
		b.markSeen(e.Conversation, head.Seq)
	case typeRead:
		if head.By == nil {
			return errors.New("messaging: publish: read frame without by")
		}
		n.Seq, n.User = head.Seq, head.By.ID
	case typeTyping:
		if head.By == nil {
			return errors.New("messaging: publish: typing frame without by")
		}
		n.User = head.By.ID
	default:
		n.Type = "" // local only, see the type's comment
	}
	if err := b.cfg.Hub.Publish(ctx, e); err != nil {
		return err
	}
	if n.Type == "" {
		return nil
	}
	return b.notify(ctx, n)
}

// Disconnect closes every socket of userID on every instance: here at
// once, elsewhere when the announcement arrives. Service.Disconnect calls
// it when the broker is the Service's Publisher.
func (b *PGBroker) Disconnect(ctx context.Context, userID string) error {
	herr := b.cfg.Hub.Disconnect(ctx, userID)
	if errors.Is(herr, ErrClosed) {
		herr = nil // shutting down here; the others must still hear it
	}
	return errors.Join(herr, b.notify(ctx, notice{Origin: b.origin, Type: typeDisconnect, User: userID}))
}

func (b *PGBroker) notify(ctx context.Context, n notice) error {
	payload, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("messaging: notify: %w", err)
	}
	if len(payload) >= maxPayload {
		// Ids are short (MaxIDLen); this cannot happen with real ids.
		return fmt.Errorf("messaging: notify: payload of %d bytes", len(payload))
	}
	// pg_notify with parameters rather than NOTIFY with a literal, so the
	// payload is never spliced into SQL text.
	if _, err := b.cfg.DB.ExecContext(ctx, b.cfg.DB.Rebind(`SELECT pg_notify(?, ?)`), b.cfg.Channel, string(payload)); err != nil {
		return fmt.Errorf("messaging: notify: %w", err)
	}
	return nil
}

// markSeen records that seq of conversation has been delivered here, and
// returns the newest seq delivered before.
func (b *PGBroker) markSeen(conversation string, seq int64) (before int64, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	before, known = b.seen[conversation]
	if seq > before {
		b.seen[conversation] = seq
	}
	return before, known
}

// unmarkSeen undoes markSeen(conversation, seq) after a failed delivery,
// unless a newer delivery has moved on meanwhile.
func (b *PGBroker) unmarkSeen(conversation string, before, seq int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[conversation] == seq {
		b.seen[conversation] = before
	}
}

// Run listens until ctx is cancelled, reconnecting after any failure with
// backoff and catching up after every gap. Call it once.
func (b *PGBroker) Run(ctx context.Context) {
	backoff := b.cfg.MinBackoff
	first := true
	for {
		conn, err := b.listen(ctx)
		if err == nil {
			if first {
				b.log.InfoContext(ctx, "chat broker listening", "application_name", b.ListenerName())
			} else {
				b.log.InfoContext(ctx, "chat broker listening again", "application_name", b.ListenerName())
			}
			// From here on every commit is announced to us. What was
			// committed before is in the database; compare with it.
			err = b.reconcile(ctx, first)
			if err == nil {
				first = false
				backoff = b.cfg.MinBackoff
				b.readyOnce.Do(func() { close(b.ready) })
				err = b.receive(ctx, conn)
			}
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Close(closeCtx)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		b.log.WarnContext(ctx, "chat broker lost its listening connection; reconnecting", "err", err, "in", backoff.String())
		wait := backoff/2 + rand.N(backoff/2+1) // jitter, so instances do not reconnect in step
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, b.cfg.MaxBackoff)
	}
}

// listen opens the listening connection and subscribes.
func (b *PGBroker) listen(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(b.cfg.URL)
	if err != nil {
		return nil, errors.New("the PostgreSQL URL cannot be parsed")
	}
	cfg.RuntimeParams["application_name"] = b.ListenerName()
	connectCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(connectCtx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(connectCtx, "LISTEN "+pgx.Identifier{b.cfg.Channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// receive handles announcements until the connection fails or ctx ends.
// It wakes every Reconcile interval to check the connection and compare
// with the database.
func (b *PGBroker) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, b.cfg.Reconcile)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && pgconn.Timeout(err):
			// Quiet for a while. A connection that died without a word
			// (a network partition) is noticed by the ping.
			pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return err
			}
			if err := b.reconcile(ctx, false); err != nil {
				b.log.WarnContext(ctx, "chat broker reconcile", "err", err)
			}
		case err != nil:
			return err
		default:
			b.handle(ctx, n.Payload)
		}
	}
}

// handle rebuilds and delivers one announcement. Failures are logged: the
// next reconcile delivers a missed message, and read and typing frames are
// momentary.
func (b *PGBroker) handle(ctx context.Context, payload string) {
	var n notice
	if err := json.Unmarshal([]byte(payload), &n); err != nil {
		b.log.WarnContext(ctx, "chat broker: bad announcement", "err", err)
		return
	}
	if n.Origin == b.origin {
		return // delivered here when it was published
	}
	var err error
	switch n.Type {
	case typeMessage:
		before, known := b.markSeen(n.Conversation, n.Seq)
		if known && n.Seq <= before {
			return // delivered already (by a reconcile or a fill)
		}
		// Usually before = seq - 1. More than that: announcements arrived
		// out of order or went missing; fill the gap from the database.
		if err = b.deliverMessages(ctx, n.Conversation, before, n.Seq); err != nil {
			b.unmarkSeen(n.Conversation, before, n.Seq) // the next reconcile tries again
		}
	case typeRead:
		err = b.deliverPresence(ctx, n, true)
	case typeTyping:
		err = b.deliverPresence(ctx, n, false)
	case typeDisconnect:
		err = b.cfg.Hub.Disconnect(ctx, n.User)
	default:
		err = fmt.Errorf("unknown announcement type %q", n.Type)
	}
	if err != nil && !errors.Is(err, ErrClosed) && ctx.Err() == nil {
		b.log.WarnContext(ctx, "chat broker: deliver", "type", n.Type, "conversation", n.Conversation, "err", err)
	}
}

// deliverMessages hands the hub the messages of conversation after seq
// after, up to seq upTo, at most the newest backfillLimit, in order, each
// to the conversation's audience as it is now.
func (b *PGBroker) deliverMessages(ctx context.Context, conversation string, after, upTo int64) error {
	after = max(after, upTo-backfillLimit)
	if upTo <= after {
		return nil
	}
	ms, err := b.cfg.Store.MessagesAfter(ctx, conversation, after, int(upTo-after))
	if err != nil {
		return err
	}
	if len(ms) == 0 {
		return nil
	}
	rs, err := b.cfg.Auth.Audience(ctx, conversation)
	if err != nil {
		return err
	}
	for _, m := range ms {
		e := Event{Conversation: conversation, Recipients: rs, Frame: encode(newMessageFrame(m))}
		if err := b.cfg.Hub.Publish(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// deliverPresence rebuilds a read (staff only) or typing frame.
func (b *PGBroker) deliverPresence(ctx context.Context, n notice, read bool) error {
	by, err := b.cfg.Store.person(ctx, n.User)
	if err != nil {
		return err
	}
	rs, err := b.cfg.Auth.Audience(ctx, n.Conversation)
	if err != nil {
		return err
	}
	e := Event{Conversation: n.Conversation, Recipients: rs}
	if read {
		e.StaffOnly = true
		e.Frame = encode(readFrame{Type: typeRead, Conversation: n.Conversation, Seq: n.Seq, By: by})
	} else {
		e.Except = n.User
		e.Frame = encode(typingFrame{Type: typeTyping, Conversation: n.Conversation, By: by})
	}
	return b.cfg.Hub.Publish(ctx, e)
}

// reconcile compares every conversation's last seq with what has been
// delivered here and delivers what is missing. The first time it only
// records the seqs: sockets connected before then got them in hello.
func (b *PGBroker) reconcile(ctx context.Context, first bool) error {
	last, err := b.cfg.Store.lastSeqs(ctx)
	if err != nil {
		return err
	}
	type gap struct {
		id          string
		after, upTo int64
	}
	var behind []gap
	b.mu.Lock()
	for id, seq := range last {
		// A conversation unknown here is new since the last compare: all of
		// its messages are news (before is 0).
		if before := b.seen[id]; seq > before {
			b.seen[id] = seq
			if !first {
				behind = append(behind, gap{id, before, seq})
			}
		}
	}
	// Entries of conversations deleted with their case stay: a few bytes
	// each, and removing them could race with a Publish of a new one.
	b.mu.Unlock()
	var errs []error
	for _, g := range behind {
		if err := b.deliverMessages(ctx, g.id, g.after, g.upTo); err != nil {
			b.unmarkSeen(g.id, g.after, g.upTo) // the next compare tries again
			errs = append(errs, fmt.Errorf("catch up on %s: %w", g.id, err))
		}
	}
	if len(behind) > 0 {
		b.log.InfoContext(ctx, "chat broker caught up", "conversations", len(behind), "failed", len(errs))
	}
	return errors.Join(errs...)
}

// lastSeqs returns every conversation's last seq, for PGBroker's reconcile.
func (s *Store) lastSeqs(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryxContext(ctx, `SELECT id, last_seq FROM conversations`)
	if err != nil {
		return nil, dbErr("list last seqs", err)
	}
	defer rows.Close()
	out := make(map[string]int64)
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, dbErr("list last seqs", err)
		}
		out[id] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("list last seqs", err)
	}
	return out, nil
}

// person returns the user with id as frames show them, for PGBroker's
// read and typing frames.
func (s *Store) person(ctx context.Context, id string) (wireUser, error) {
	var u struct {
		Name string `db:"name"`
		Kind Role   `db:"kind"`
	}
	if err := s.db.GetContext(ctx, &u, s.db.Rebind(`SELECT name, kind FROM users WHERE id = ?`), id); err != nil {
		return wireUser{}, dbErr("get person", err)
	}
	return wireUser{ID: id, Name: u.Name, Role: u.Kind}, nil
}
