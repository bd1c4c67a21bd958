package main

// The reference hubs the portal is measured against, run as
// `portal-bench serve-ref` so that their memory and CPU are their own:
//
//   - raw (R): the gorilla examples/chat pattern with the portal's wire
//     format (protocol v1 frames), no auth, no persistence: one hub
//     goroutine owns the sockets and assigns seq numbers in memory;
//   - persist (RP): R plus one writer goroutine that stores messages into
//     the portal's schema with group commit (up to 100 per transaction)
//     before the hub acks and fans them out, with the WAL checkpoint taken
//     off the commit path.
//
// Who may see a conversation comes from the topology file the bench wrote
// (the same audiences the portal computes), so deliveries are comparable.

import (
	"context"
	"encoding/json"
	"expvar"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jmoiron/sqlx"

	"familieportal/portal/db"
)

const (
	refSendQueue  = 64 // frames queued per socket before it counts as slow
	refWriteWait  = 10 * time.Second
	refPersistQ   = 1024 // messages waiting for the writer; full = backpressure on the reading socket
	refBatchLimit = 100  // messages per transaction
)

type refClient struct {
	user string
	conn *websocket.Conn
	send chan []byte
}

// refMsg is a message on its way through the reference hub.
type refMsg struct {
	from                 *refClient
	conv, clientID, body string
	id                   string
	seq                  int64 // set by the writer in persist mode, else by the hub
	at                   time.Time
}

type refHub struct {
	topo       *topology
	register   chan *refClient
	unregister chan *refClient
	in         chan refMsg
	persist    chan refMsg // nil in raw mode
	nextID     atomic.Int64
}

func serveRef(args []string) error {
	fs := flag.NewFlagSet("portal-bench serve-ref", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	topoPath := fs.String("topology", "", "topology file written by the bench")
	mode := fs.String("mode", "raw", "raw (R) or persist (RP)")
	dbPath := fs.String("db", "", "SQLite file for persist mode")
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := readTopology(*topoPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	h := &refHub{topo: t, register: make(chan *refClient), unregister: make(chan *refClient), in: make(chan refMsg, 256)}
	switch *mode {
	case "raw":
	case "persist":
		d, err := db.Open(ctx, *dbPath, db.Options{})
		if err != nil {
			return err
		}
		defer d.Close()
		h.persist = make(chan refMsg, refPersistQ)
		w, err := newRefWriter(ctx, d, h)
		if err != nil {
			return err
		}
		go w.run(ctx)
		go checkpointLoop(ctx, d)
	default:
		return fmt.Errorf("unknown mode %q", *mode)
	}
	go h.run()

	// Bench-only introspection, never on the portal's router.
	expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
	mux := http.NewServeMux()
	mux.Handle("GET /debug/vars", expvar.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /ws", h.serveWS)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

var refUpgrader = websocket.Upgrader{
	ReadBufferSize: 1024, WriteBufferSize: 1024,
	CheckOrigin: func(*http.Request) bool { return true }, // no auth: the baseline
}

// serveWS is the handshake: the user comes from ?u= (no auth), hello is
// built from the topology, then one reader and one writer as in examples/chat.
func (h *refHub) serveWS(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("u")
	tu, ok := h.topo.Users[user]
	if !ok {
		http.Error(w, "unknown user", http.StatusNotFound)
		return
	}
	conn, err := refUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &refClient{user: user, conn: conn, send: make(chan []byte, refSendQueue)}
	type conv struct {
		ID      string `json:"id"`
		Case    string `json:"case"`
		Title   string `json:"title"`
		LastSeq int64  `json:"last_seq"`
		Unread  int    `json:"unread"`
	}
	convs := make([]conv, 0, len(tu.Convs))
	for _, id := range tu.Convs {
		tc := h.topo.Convs[id]
		convs = append(convs, conv{ID: id, Case: tc.Case, Title: tc.Title, LastSeq: tc.LastSeq})
	}
	hello, _ := json.Marshal(map[string]any{"type": "hello", "v": 1,
		"user": map[string]string{"id": user, "name": tu.Name, "role": tu.Role}, "conversations": convs})
	c.send <- hello
	h.register <- c
	go c.writePump()
	c.readPump(h)
}

func (c *refClient) readPump(h *refHub) {
	defer func() {
		h.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(64 << 10)
	allowed := map[string]bool{}
	for _, id := range h.topo.Users[c.user].Convs {
		allowed[id] = true
	}
	for {
		_, raw, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		var f struct {
			Type         string           `json:"type"`
			Conversation string           `json:"conversation"`
			ClientID     string           `json:"client_id"`
			Body         string           `json:"body"`
			Cursors      map[string]int64 `json:"cursors"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			continue
		}
		switch f.Type {
		case "send":
			if !allowed[f.Conversation] {
				continue
			}
			m := refMsg{from: c, conv: f.Conversation, clientID: f.ClientID, body: f.Body}
			if h.persist != nil {
				h.persist <- m // blocks when the writer is behind: backpressure
			} else {
				h.in <- m
			}
		case "sync": // no history in the reference: nothing to replay
			select {
			case c.send <- []byte(`{"type":"synced"}`):
			default:
			}
		}
	}
}

func (c *refClient) writePump() {
	defer c.conn.Close()
	for f := range c.send {
		c.conn.SetWriteDeadline(time.Now().Add(refWriteWait))
		if err := c.conn.WriteMessage(websocket.TextMessage, f); err != nil {
			return
		}
	}
	c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseTryAgainLater, ""),
		time.Now().Add(time.Second))
}

// run owns the user → sockets map and the in-memory seq counters.
func (h *refHub) run() {
	users := map[string]map[*refClient]bool{}
	seq := map[string]int64{}
	for id, c := range h.topo.Convs {
		seq[id] = c.LastSeq
	}
	drop := func(c *refClient) {
		if set := users[c.user]; set[c] {
			delete(set, c)
			close(c.send)
		}
	}
	deliver := func(c *refClient, f []byte) {
		select {
		case c.send <- f:
		default:
			drop(c) // slow consumer: cut off, never waited for
		}
	}
	for {
		select {
		case c := <-h.register:
			if users[c.user] == nil {
				users[c.user] = map[*refClient]bool{}
			}
			users[c.user][c] = true
		case c := <-h.unregister:
			drop(c)
		case m := <-h.in:
			if m.seq == 0 {
				seq[m.conv]++
				m.seq = seq[m.conv]
				m.id = "r" + strconv.FormatInt(h.nextID.Add(1), 36)
				m.at = time.Now()
			}
			at := m.at.UTC().Format("2006-01-02T15:04:05.000Z")
			if users[m.from.user][m.from] {
				deliver(m.from, fmt.Appendf(nil, `{"type":"ack","client_id":%q,"conversation":%q,"id":%q,"seq":%d,"at":%q}`,
					m.clientID, m.conv, m.id, m.seq, at))
			}
			tu := h.topo.Users[m.from.user]
			body, _ := json.Marshal(m.body)
			f := fmt.Appendf(nil, `{"type":"message","conversation":%q,"id":%q,"seq":%d,"sender":{"id":%q,"name":%q,"role":%q},"kind":"text","body":%s,"at":%q}`,
				m.conv, m.id, m.seq, m.from.user, tu.Name, tu.Role, body, at)
			for _, u := range h.topo.Convs[m.conv].Audience {
				for c := range users[u] {
					deliver(c, f)
				}
			}
		}
	}
}

// refWriter is RP's single writer: it drains up to refBatchLimit queued
// messages into one transaction, then hands them to the hub.
type refWriter struct {
	d      *sqlx.DB
	conn   *sqlx.Conn
	h      *refHub
	users  map[string]bool
	nextID atomic.Int64
}

func newRefWriter(ctx context.Context, d *sqlx.DB, h *refHub) (*refWriter, error) {
	conn, err := d.Connx(ctx)
	if err != nil {
		return nil, err
	}
	// The checkpoint runs in checkpointLoop, never in a commit.
	if _, err := conn.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		return nil, err
	}
	return &refWriter{d: d, conn: conn, h: h}, nil
}

func (w *refWriter) run(ctx context.Context) {
	batch := make([]refMsg, 0, refBatchLimit)
	for {
		batch = batch[:0]
		select {
		case m := <-w.h.persist:
			batch = append(batch, m)
		case <-ctx.Done():
			return
		}
	drain:
		for len(batch) < refBatchLimit {
			select {
			case m := <-w.h.persist:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		if err := w.store(ctx, batch); err != nil {
			fmt.Fprintln(os.Stderr, "serve-ref: store:", err)
			continue // nothing acked: the clients see loss and the run fails
		}
		for _, m := range batch {
			w.h.in <- m
		}
	}
}

func (w *refWriter) store(ctx context.Context, batch []refMsg) error {
	tx, err := w.conn.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for i := range batch {
		m := &batch[i]
		if err := tx.GetContext(ctx, &m.seq,
			`UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq`, m.conv); err != nil {
			return err
		}
		m.id = "p" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(w.nextID.Add(1), 36)
		m.at = now
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, kind, created_at)
			VALUES (?, ?, ?, ?, ?, ?, 'text', ?)`, m.id, m.conv, m.seq, m.from.user, m.clientID, m.body, now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// checkpointLoop takes the WAL checkpoint off the writer's commit path.
func checkpointLoop(ctx context.Context, d *sqlx.DB) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		}
	}
}
