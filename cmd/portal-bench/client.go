package main

// The load generator's websocket clients: one socket per user, one reader
// and one writer goroutine each (gorilla allows one concurrent writer).

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// target is a server the clients connect to.
type target struct {
	name   string // R, RP, P
	addr   string
	vars   string            // where the server serves /debug/vars
	portal bool              // the real portal: session cookie and Origin
	tokens map[string]string // user id → session token (portal only)
}

func (t *target) dial(ctx context.Context, d *websocket.Dialer, user string) (*websocket.Conn, error) {
	h := http.Header{}
	u := "ws://" + t.addr + "/ws"
	if t.portal {
		h.Set("Origin", "http://"+t.addr)
		h.Set("Cookie", "__Host-session="+t.tokens[user])
	} else {
		u += "?u=" + url.QueryEscape(user)
	}
	conn, resp, err := d.DialContext(ctx, u, h)
	if err != nil && resp != nil {
		err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
	}
	return conn, err
}

// frame is every server frame field the bench reads.
type frame struct {
	Type          string `json:"type"`
	Conversation  string `json:"conversation"`
	ClientID      string `json:"client_id"`
	ID            string `json:"id"`
	Seq           int64  `json:"seq"`
	Body          string `json:"body"`
	Code          string `json:"code"`
	Conversations []struct {
		ID      string `json:"id"`
		LastSeq int64  `json:"last_seq"`
	} `json:"conversations"`
}

// sock is one client socket.
type sock struct {
	idx  int
	user string
	conn *websocket.Conn
	out  chan []byte // to the writer; the only path to conn's writes

	hello map[string]int64 // conversation → last_seq in the hello frame

	mu   sync.Mutex       // guards last
	last map[string]int64 // highest live seq delivered per conversation
	// have is owned by the reader goroutine (read by others only while no
	// reader runs).
	have map[string]int64 // highest seq held with no gap below (for sync)

	dropped atomic.Bool   // the server closed it or it failed
	closing atomic.Bool   // the bench is closing it
	done    chan struct{} // closed when the reader has returned

	// wantSync is set when the socket sent a sync (before the reader
	// starts) and cleared by the reader at synced; messages in between
	// are replays, not live deliveries.
	wantSync                    bool
	replayed, replayDup, resync atomic.Int64
	errors                      atomic.Int64 // error frames about no message of the bench
}

func (s *sock) alive() bool { return !s.dropped.Load() && !s.closing.Load() }

// fleet is every socket connected to one target.
type fleet struct {
	t          *target
	topo       *topology
	socks      []*sock
	byUser     map[string]*sock
	convSocks  map[string][]*sock // conversation → sockets of users who may see it
	connect    hist               // handshake + hello per socket
	connectDur time.Duration      // all sockets
	helloDiff  int                // sockets whose hello disagreed with the topology
	dropped    atomic.Int64

	// Storm hooks, set before the sockets (re)connect and never changed
	// while readers run: onHello runs after the hello frame, before the
	// reader starts; onSynced runs on the reader when a sync ends.
	onHello  func(s *sock)
	onSynced func(s *sock, at time.Time)
}

const outQueue = 256

// dialConcurrency is how many handshakes run at once (-dial-concurrency).
var dialConcurrency = 64

var dialer = &websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 2048, WriteBufferSize: 1024}

// connectFleet opens one socket per user in users, at most 64 handshakes
// at a time, each retried a few times.
//
// midway, if not nil, runs when the first half of the sockets is open, and
// the time it takes is not counted in connectDur.
func connectFleet(ctx context.Context, t *target, topo *topology, users []string, progress func(string), midway func()) (*fleet, error) {
	fl := &fleet{t: t, topo: topo, byUser: map[string]*sock{}, convSocks: map[string][]*sock{}}
	fl.socks = make([]*sock, len(users))
	for i, u := range users {
		fl.socks[i] = &sock{idx: i, user: u}
		fl.byUser[u] = fl.socks[i]
	}
	half := len(fl.socks)
	if midway != nil {
		half /= 2
	}
	start := time.Now()
	if err := fl.dialAll(ctx, fl.socks[:half], progress); err != nil {
		fl.close()
		return nil, err
	}
	if midway != nil {
		fl.connectDur = time.Since(start)
		midway()
		start = time.Now()
		if err := fl.dialAll(ctx, fl.socks[half:], progress); err != nil {
			fl.close()
			return nil, err
		}
	}
	fl.connectDur += time.Since(start)
	for _, s := range fl.socks {
		want := topo.Users[s.user].Convs
		diff := len(want) != len(s.hello)
		for _, c := range want {
			if _, ok := s.hello[c]; !ok {
				diff = true
			}
		}
		if diff {
			fl.helloDiff++
		}
	}
	for id, c := range topo.Convs {
		for _, u := range c.Audience {
			if s := fl.byUser[u]; s != nil {
				fl.convSocks[id] = append(fl.convSocks[id], s)
			}
		}
	}
	return fl, nil
}

func (fl *fleet) dialAll(ctx context.Context, socks []*sock, progress func(string)) error {
	sem := make(chan struct{}, dialConcurrency)
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	var n atomic.Int64
	for _, s := range socks {
		if firstErr.Load() != nil || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			var err error
			for attempt := 0; attempt < 5; attempt++ {
				if err = fl.open(ctx, s); err == nil {
					break
				}
				time.Sleep(time.Duration(100<<attempt) * time.Millisecond)
			}
			if err != nil {
				firstErr.CompareAndSwap(nil, &err)
				return
			}
			if k := n.Add(1); k%500 == 0 && progress != nil {
				progress(fmt.Sprintf("%s: %d/%d sockets", fl.t.name, k, len(socks)))
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("%s: connect: %w", fl.t.name, *p)
	}
	return ctx.Err()
}

// open connects s, reads its hello, and starts its reader and writer.
func (fl *fleet) open(ctx context.Context, s *sock) error {
	t0 := time.Now()
	conn, err := fl.t.dial(ctx, dialer, s.user)
	if err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, raw, err := conn.ReadMessage()
	if err != nil {
		conn.Close()
		return fmt.Errorf("read hello: %w", err)
	}
	var f frame
	if err := json.Unmarshal(raw, &f); err != nil || f.Type != "hello" {
		conn.Close()
		return fmt.Errorf("first frame is not hello: %.100s", raw)
	}
	conn.SetReadDeadline(time.Time{})
	fl.connect.record(time.Since(t0))
	s.conn = conn
	s.hello = make(map[string]int64, len(f.Conversations))
	for _, c := range f.Conversations {
		s.hello[c.ID] = c.LastSeq
	}
	if s.last == nil {
		s.last = map[string]int64{}
		s.have = map[string]int64{}
		for c, seq := range s.hello {
			s.have[c] = seq // a fresh client holds what the hello says exists
		}
	}
	s.out = make(chan []byte, outQueue)
	s.done = make(chan struct{})
	s.dropped.Store(false)
	s.closing.Store(false)
	if fl.onHello != nil {
		fl.onHello(s)
	}
	go writer(conn, s.out, s.done)
	go s.reader(fl, conn, s.done)
	return nil
}

// writer is the only goroutine that writes frames to conn. out is never
// closed (the pacer and the readers send on it); the writer stops when the
// reader is done.
func writer(conn *websocket.Conn, out chan []byte, done chan struct{}) {
	for {
		select {
		case b := <-out:
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
				conn.Close() // ends the reader
			}
		case <-done:
			return
		}
	}
}

func (s *sock) reader(fl *fleet, conn *websocket.Conn, done chan struct{}) {
	defer close(done)
	for {
		_, raw, err := conn.ReadMessage()
		if err != nil {
			if !s.closing.Load() {
				s.dropped.Store(true)
				fl.dropped.Add(1)
			}
			return
		}
		var f frame
		if err := json.Unmarshal(raw, &f); err != nil {
			continue
		}
		switch f.Type {
		case "ack":
			if ck := checkerOf(f.ClientID); ck != nil {
				ck.onAck(s, &f)
			}
		case "message":
			s.hold(f.Conversation, f.Seq)
			if s.wantSync {
				s.replayed.Add(1)
				continue
			}
			cid, _, _ := parseBody(f.Body)
			if ck := checkerOf(cid); ck != nil {
				ck.onMessage(s, &f)
			}
		case "error":
			if ck := checkerOf(f.ClientID); ck != nil {
				ck.onError(s, &f)
			} else if f.ClientID == "" {
				s.errors.Add(1)
			}
		case "synced":
			if fl.onSynced != nil && s.wantSync {
				s.wantSync = false
				fl.onSynced(s, time.Now())
			}
		case "resync_required":
			s.resync.Add(1)
		}
	}
}

// hold moves the held cursor of conv on a message with seq. Seqs arrive in
// order per conversation; one at or below the cursor during a replay is a
// duplicate.
func (s *sock) hold(conv string, seq int64) {
	h := s.have[conv]
	switch {
	case seq == h+1:
		s.have[conv] = seq
	case seq <= h:
		s.replayDup.Add(1)
	}
}

// close closes every socket and waits for the readers.
func (fl *fleet) close() {
	for _, s := range fl.socks {
		s.shut()
	}
	for _, s := range fl.socks {
		if s.done != nil {
			<-s.done
		}
	}
}

func (s *sock) shut() {
	if s.conn == nil {
		return
	}
	s.closing.Store(true)
	s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	s.conn.Close()
}

// slot is a socket and a conversation it can send to with someone else
// connected to receive.
type slot struct {
	s    *sock
	conv string
}

// senders returns, per socket in a seeded random order, the conversations
// it can send to. The pacer takes one socket after the other, so each
// user sends rate/len(senders) messages per second.
func (fl *fleet) senders(seed uint64) [][]slot {
	var out [][]slot
	for _, s := range fl.socks {
		var ss []slot
		for _, c := range fl.topo.Users[s.user].Convs {
			if len(fl.convSocks[c]) >= 2 {
				ss = append(ss, slot{s, c})
			}
		}
		if len(ss) > 0 {
			out = append(out, ss)
		}
	}
	r := rand.New(rand.NewPCG(seed, 2))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// firstMessages returns one slot per conversation that senders use, with
// a family member as the sender where the conversation has one: the
// sends that take every conversation out of its cold state.
func (fl *fleet) firstMessages(senders [][]slot) [][]slot {
	pick := map[string]slot{}
	var order []string
	for _, ss := range senders {
		for _, sl := range ss {
			old, seen := pick[sl.conv]
			if !seen {
				order = append(order, sl.conv)
			}
			if !seen || fl.topo.Users[old.s.user].Role != "citizen" && fl.topo.Users[sl.s.user].Role == "citizen" {
				pick[sl.conv] = sl
			}
		}
	}
	out := make([][]slot, len(order))
	for i, c := range order {
		out[i] = []slot{pick[c]}
	}
	return out
}

// openLoop sends at rate messages per second for d, paced by "target =
// rate × elapsed" (no ticker per message), and returns how many it sent.
func (fl *fleet) openLoop(ctx context.Context, ck *checker, senders [][]slot, rate float64, d time.Duration) int {
	if len(senders) == 0 {
		return 0
	}
	next := make([]int, len(senders)) // per sender, its next conversation
	i, sent := 0, 0
	start := time.Now()
	for ctx.Err() == nil {
		el := time.Since(start)
		if el >= d {
			break
		}
		want := int(rate * el.Seconds())
		for sent < want {
			k := i % len(senders)
			i++
			sl := senders[k][next[k]%len(senders[k])]
			next[k]++
			sent++
			if !sl.s.alive() {
				continue
			}
			if !fl.send(ck, sl) {
				continue
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	return sent
}

// send queues one message on sl's socket; false if its queue is full.
func (fl *fleet) send(ck *checker, sl slot) bool {
	if len(sl.s.out) >= cap(sl.s.out)-8 {
		ck.backlog.Add(1)
		return false
	}
	b := ck.newSend(sl.s, sl.conv, fl.convSocks[sl.conv])
	select {
	case sl.s.out <- b:
		return true
	default:
		ck.unsend(b)
		return false
	}
}
