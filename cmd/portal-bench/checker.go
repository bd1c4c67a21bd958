package main

// The correctness check that runs inside the load generator: every acked
// message must reach every socket that may see its conversation (the
// sender's own included) exactly once, in seq order, with the seq its ack
// gave. Latencies are measured by the same bookkeeping.

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// clock is the bench's monotonic time base: send times travel in message
// bodies as nanoseconds since it, and receivers in this process subtract.
var clock = time.Now()

func nanotime() int64 { return int64(time.Since(clock)) }

// msgRec is one sent message as the checker follows it.
type msgRec struct {
	conv    string
	sender  *sock
	frame   []byte
	sentNs  int64
	acks    int
	ackSeq  int64
	ackID   string
	errCode string
	resent  bool
	seqSeen int64   // seq of the first delivery
	expect  []*sock // sockets that may see conv and were connected at send time
	got     []uint8 // deliveries per expect entry
}

type checkShard struct {
	mu sync.Mutex
	m  map[string]*msgRec
}

// checker follows the messages of one phase. Reader goroutines call its
// on* methods concurrently; the pacer calls newSend.
type checker struct {
	tag    string // every client id of this phase starts with it
	seq    atomic.Int64
	shards [64]checkShard

	ackLat, delivLat hist

	resendEvery int64 // resend every n-th acked message with its client id (0: never)

	sent, acked, delivered       atomic.Int64
	pendingAnswers, pendingDeliv atomic.Int64
	lost, dup, reorder           atomic.Int64
	lostGap                      atomic.Int64 // lost live, but a later seq on the socket shows the gap
	unacked, errors, rateLimited atomic.Int64
	unavailable                  atomic.Int64
	seqMismatch, resendMismatch  atomic.Int64
	unexpected, foreign, resends atomic.Int64
	backlog                      atomic.Int64
	problemsMu                   sync.Mutex
	problems                     []string
}

var phaseTags atomic.Int64

// checkers finds the checker of a client id by its tag, so that a late
// answer to one phase's message is still counted by that phase.
var checkers = struct {
	sync.RWMutex
	m map[string]*checker
}{m: map[string]*checker{}}

func newChecker(resendEvery int64) *checker {
	ck := &checker{tag: "b" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + strconv.FormatInt(phaseTags.Add(1), 36) + "-",
		resendEvery: resendEvery}
	for i := range ck.shards {
		ck.shards[i].m = map[string]*msgRec{}
	}
	checkers.Lock()
	checkers.m[ck.tag] = ck
	checkers.Unlock()
	return ck
}

// checkerOf returns the checker whose message clientID is, or nil.
func checkerOf(clientID string) *checker {
	i := strings.IndexByte(clientID, '-')
	if i < 0 {
		return nil
	}
	checkers.RLock()
	defer checkers.RUnlock()
	return checkers.m[clientID[:i+1]]
}

func (ck *checker) shard(clientID string) *checkShard {
	h := fnv.New32a()
	h.Write([]byte(clientID))
	return &ck.shards[h.Sum32()%uint32(len(ck.shards))]
}

func (ck *checker) problem(format string, args ...any) {
	ck.problemsMu.Lock()
	defer ck.problemsMu.Unlock()
	if len(ck.problems) < 20 {
		ck.problems = append(ck.problems, fmt.Sprintf(format, args...))
	}
}

// filler pads message bodies to a realistic length.
const filler = "hei, takk for svaret. vi kommer på møtet neste uke"

// newSend records a message from s in conv to the sockets in audience that
// are connected now, and returns the frame to write.
func (ck *checker) newSend(s *sock, conv string, audience []*sock) []byte {
	cid := ck.tag + strconv.FormatInt(ck.seq.Add(1), 36)
	now := nanotime()
	frame := []byte(`{"type":"send","conversation":"` + conv + `","client_id":"` + cid +
		`","body":"bench ` + cid + ` ` + strconv.FormatInt(now, 10) + ` ` + filler + `"}`)
	r := &msgRec{conv: conv, sender: s, frame: frame, sentNs: now}
	for _, a := range audience {
		if a.alive() {
			r.expect = append(r.expect, a)
		}
	}
	r.got = make([]uint8, len(r.expect))
	sh := ck.shard(cid)
	sh.mu.Lock()
	sh.m[cid] = r
	sh.mu.Unlock()
	ck.sent.Add(1)
	ck.pendingAnswers.Add(1)
	ck.pendingDeliv.Add(int64(len(r.expect)))
	return frame
}

// unsend forgets a message the client could not write after all.
func (ck *checker) unsend(frame []byte) {
	cid := clientIDOf(frame)
	sh := ck.shard(cid)
	sh.mu.Lock()
	r := sh.m[cid]
	delete(sh.m, cid)
	sh.mu.Unlock()
	if r != nil {
		ck.sent.Add(-1)
		ck.pendingAnswers.Add(-1)
		ck.pendingDeliv.Add(-int64(len(r.expect)))
		ck.backlog.Add(1)
	}
}

func clientIDOf(frame []byte) string {
	s := string(frame)
	i := strings.Index(s, `"client_id":"`)
	if i < 0 {
		return ""
	}
	s = s[i+len(`"client_id":"`):]
	return s[:strings.IndexByte(s, '"')]
}

func (ck *checker) lookup(clientID string) (*checkShard, *msgRec) {
	sh := ck.shard(clientID)
	sh.mu.Lock()
	r := sh.m[clientID]
	if r == nil {
		sh.mu.Unlock()
		return nil, nil
	}
	return sh, r // locked; the caller unlocks
}

// onAck handles an ack frame on s.
func (ck *checker) onAck(s *sock, f *frame) {
	if !strings.HasPrefix(f.ClientID, ck.tag) {
		return // another phase's
	}
	sh, r := ck.lookup(f.ClientID)
	if r == nil {
		ck.foreign.Add(1)
		ck.problem("ack for unknown client id %s", f.ClientID)
		return
	}
	defer sh.mu.Unlock()
	if r.sender != s {
		ck.unexpected.Add(1)
		ck.problem("ack for %s on socket %d, sent on %d", f.ClientID, s.idx, r.sender.idx)
	}
	r.acks++
	if r.acks > 1 {
		if !r.resent {
			ck.dup.Add(1)
			ck.problem("second ack for %s without a resend", f.ClientID)
		} else if f.Seq != r.ackSeq || f.ID != r.ackID {
			ck.resendMismatch.Add(1)
			ck.problem("resend of %s acked as seq %d id %s, first ack seq %d id %s", f.ClientID, f.Seq, f.ID, r.ackSeq, r.ackID)
		}
		return
	}
	r.ackSeq, r.ackID = f.Seq, f.ID
	if r.seqSeen != 0 && r.seqSeen != f.Seq {
		ck.seqMismatch.Add(1)
		ck.problem("%s delivered as seq %d, acked as seq %d", f.ClientID, r.seqSeen, f.Seq)
	}
	ck.ackLat.record(time.Duration(nanotime() - r.sentNs))
	ck.acked.Add(1)
	if r.errCode == "" {
		ck.pendingAnswers.Add(-1)
	}
	if ck.resendEvery > 0 && ck.acked.Load()%ck.resendEvery == 0 {
		// The same frame again: the server must answer with the original
		// ack and store and deliver nothing new.
		select {
		case s.out <- r.frame:
			r.resent = true
			ck.resends.Add(1)
		default:
		}
	}
}

// onError handles an error frame on s.
func (ck *checker) onError(s *sock, f *frame) {
	switch f.Code {
	case "rate_limited":
		ck.rateLimited.Add(1)
	case "unavailable":
		ck.unavailable.Add(1)
	default:
		ck.errors.Add(1)
	}
	if !strings.HasPrefix(f.ClientID, ck.tag) {
		if f.ClientID == "" {
			ck.problem("error %s on socket %d", f.Code, s.idx)
		}
		return
	}
	sh, r := ck.lookup(f.ClientID)
	if r == nil {
		return
	}
	defer sh.mu.Unlock()
	if r.errCode == "" && r.acks == 0 {
		ck.pendingAnswers.Add(-1)
		// Nothing was stored, so nobody should get it.
		ck.pendingDeliv.Add(-int64(len(r.expect)))
	}
	r.errCode = f.Code
	if f.Code != "rate_limited" && f.Code != "unavailable" {
		ck.problem("error %s for %s", f.Code, f.ClientID)
	}
}

// parseBody reads the client id and send time from a bench message body.
func parseBody(body string) (clientID string, sentNs int64, ok bool) {
	rest, found := strings.CutPrefix(body, "bench ")
	if !found {
		return "", 0, false
	}
	cid, rest, found := strings.Cut(rest, " ")
	if !found {
		return "", 0, false
	}
	ts, _, _ := strings.Cut(rest, " ")
	n, err := strconv.ParseInt(ts, 10, 64)
	return cid, n, err == nil
}

// onMessage handles a message frame on s. It runs on s's reader, which
// owns s.last.
func (ck *checker) onMessage(s *sock, f *frame) {
	cid, sentNs, ok := parseBody(f.Body)
	if !ok || !strings.HasPrefix(cid, ck.tag) {
		return // not this phase's
	}
	now := nanotime()
	sh, r := ck.lookup(cid)
	if r == nil {
		ck.foreign.Add(1)
		ck.problem("socket %d got unknown message %s", s.idx, cid)
		return
	}
	defer sh.mu.Unlock()
	i := -1
	for j, e := range r.expect {
		if e == s {
			i = j
			break
		}
	}
	if i < 0 {
		ck.unexpected.Add(1)
		ck.problem("socket %d (user %s) got %s of conversation %s, not expected there", s.idx, s.user, cid, f.Conversation)
		return
	}
	if f.Conversation != r.conv {
		ck.unexpected.Add(1)
		ck.problem("%s sent to %s, delivered as %s", cid, r.conv, f.Conversation)
	}
	r.got[i]++
	if r.got[i] > 1 {
		ck.dup.Add(1)
		ck.problem("socket %d got %s (seq %d) %d times", s.idx, cid, f.Seq, r.got[i])
		return
	}
	ck.delivered.Add(1)
	ck.pendingDeliv.Add(-1)
	if r.seqSeen == 0 {
		r.seqSeen = f.Seq
	} else if r.seqSeen != f.Seq {
		ck.seqMismatch.Add(1)
		ck.problem("%s delivered with seq %d and %d", cid, r.seqSeen, f.Seq)
	}
	if r.acks > 0 && r.ackSeq != f.Seq {
		ck.seqMismatch.Add(1)
		ck.problem("%s acked as seq %d, delivered as %d", cid, r.ackSeq, f.Seq)
	}
	s.mu.Lock()
	last := s.last[f.Conversation]
	if f.Seq > last {
		s.last[f.Conversation] = f.Seq
	}
	s.mu.Unlock()
	if f.Seq <= last {
		ck.reorder.Add(1)
		ck.problem("socket %d got seq %d of %s after seq %d", s.idx, f.Seq, f.Conversation, last)
	}
	if s != r.sender {
		ck.delivLat.record(time.Duration(now - sentNs))
	}
}

// wait returns once every message has an answer and every expected
// delivery has arrived, or when nothing has arrived for stall, or after
// limit. An overloaded server gets the time it needs to drain, so late is
// not counted as lost.
func (ck *checker) wait(stall, limit time.Duration) {
	start := time.Now()
	last, lastChange := int64(-1), time.Now()
	for time.Since(start) < limit {
		a, d := ck.pendingAnswers.Load(), ck.pendingDeliv.Load()
		if a <= 0 && d <= 0 {
			return
		}
		if a+d != last {
			last, lastChange = a+d, time.Now()
		} else if time.Since(lastChange) > stall {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// verify counts what never arrived: messages with no answer, and acked
// messages missing on a socket that stayed connected.
func (ck *checker) verify() {
	for i := range ck.shards {
		sh := &ck.shards[i]
		sh.mu.Lock()
		for cid, r := range sh.m {
			if r.acks == 0 {
				// A socket the server cut off gets no answer; its client
				// would send again with the same client id.
				if r.errCode == "" && !r.sender.dropped.Load() {
					ck.unacked.Add(1)
					ck.problem("no ack and no error for %s", cid)
				}
				continue
			}
			for j, s := range r.expect {
				if r.got[j] == 0 && !s.dropped.Load() {
					ck.lost.Add(1)
					s.mu.Lock()
					later := s.last[r.conv] > r.ackSeq
					s.mu.Unlock()
					how := "and nothing after it: the client cannot tell"
					if later {
						// A client that syncs on a gap would recover it
						// from the database; the live frame is still lost.
						ck.lostGap.Add(1)
						how = "a later message shows the gap"
					}
					ck.problem("socket %d (user %s) never got %s (seq %d of %s); %s", s.idx, s.user, cid, r.ackSeq, r.conv, how)
				}
			}
		}
		sh.mu.Unlock()
	}
}

// verdict is the checker's result for the report.
type verdict struct {
	Sent           int64    `json:"sent"`
	Acked          int64    `json:"acked"`
	Delivered      int64    `json:"delivered"`
	Lost           int64    `json:"lost"`
	LostGap        int64    `json:"lost_gap_visible"` // of Lost: a later message on the socket shows the gap
	Duplicate      int64    `json:"duplicate"`
	Reordered      int64    `json:"reordered"`
	Unacked        int64    `json:"unacked"`
	Errors         int64    `json:"errors"`
	RateLimited    int64    `json:"rate_limited"`
	Unavailable    int64    `json:"unavailable"`
	SeqMismatch    int64    `json:"seq_mismatch"`
	ResendMismatch int64    `json:"resend_mismatch"`
	Resends        int64    `json:"resends"`
	Unexpected     int64    `json:"unexpected"`
	Foreign        int64    `json:"foreign"`
	ClientBacklog  int64    `json:"client_backlog"`
	Problems       []string `json:"problems,omitempty"`
}

func (ck *checker) verdict() verdict {
	ck.problemsMu.Lock()
	defer ck.problemsMu.Unlock()
	return verdict{
		Sent: ck.sent.Load(), Acked: ck.acked.Load(), Delivered: ck.delivered.Load(),
		Lost: ck.lost.Load(), LostGap: ck.lostGap.Load(), Duplicate: ck.dup.Load(), Reordered: ck.reorder.Load(),
		Unacked: ck.unacked.Load(), Errors: ck.errors.Load(), RateLimited: ck.rateLimited.Load(), Unavailable: ck.unavailable.Load(),
		SeqMismatch: ck.seqMismatch.Load(), ResendMismatch: ck.resendMismatch.Load(), Resends: ck.resends.Load(),
		Unexpected: ck.unexpected.Load(), Foreign: ck.foreign.Load(), ClientBacklog: ck.backlog.Load(),
		Problems: append([]string(nil), ck.problems...),
	}
}

// failed reports whether v shows a broken delivery guarantee. Refusals
// (rate_limited, unavailable: "nothing stored, send again") and client
// backlog are load, not correctness.
func (v verdict) failed() bool {
	return v.Lost+v.Duplicate+v.Reordered+v.Unacked+v.Errors+v.SeqMismatch+v.ResendMismatch+v.Unexpected+v.Foreign > 0
}

func (v verdict) short() string {
	return fmt.Sprintf("lost %d (gap visible %d), dup %d, reorder %d, no answer %d, errors %d, seq mismatch %d, unexpected %d",
		v.Lost, v.LostGap, v.Duplicate, v.Reordered, v.Unacked, v.Errors, v.SeqMismatch+v.ResendMismatch, v.Unexpected+v.Foreign)
}
