package main

// The measured phases: idle memory, fixed-rate chat, ramp, reconnect storm.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// idleResult is server memory with N idle sockets.
type idleResult struct {
	Sockets     int     `json:"sockets"`
	RSSBeforeKB int64   `json:"rss_before_kb"`
	RSSAfterKB  int64   `json:"rss_after_kb"`
	KBPerSocket float64 `json:"kb_per_socket"`
	// MarginalKB is what the second half of the sockets added, per
	// socket: the cost of one more socket, without what the server grows
	// once under the first connections (database connections and their
	// caches, C allocator arenas, the heap's first growth).
	RSSMidKB     int64   `json:"rss_mid_kb"`
	MarginalKB   float64 `json:"marginal_kb_per_socket"`
	ThreadsAfter int     `json:"threads_after"`
	// What the Go runtime holds per socket (from /debug/vars): goroutines,
	// heap in use and goroutine stacks. The rest of the RSS is the C side
	// (SQLite's caches, the C allocator) and memory the runtime has not
	// returned.
	GoroutinesPer  float64 `json:"goroutines_per_socket"`
	HeapKBPer      float64 `json:"go_heap_kb_per_socket"`
	StackKBPer     float64 `json:"go_stack_kb_per_socket"`
	ConnectSeconds float64 `json:"connect_s"`
	Handshake      latency `json:"handshake"`
	HelloMismatch  int     `json:"hello_mismatch"`
}

// server is a running target and its process.
type server struct {
	t     *target
	proc  *child
	fleet *fleet
	idle  idleResult
	acked int64 // messages acked over all phases: the rows the portal must hold
}

func (sv *server) addAcked(r chatResult) { sv.acked += r.AckedAll }

// stopProc stops the server's process; nil does nothing.
func (sv *server) stopProc() {
	if sv != nil {
		sv.proc.stop()
	}
}

// goVars is what a server's /debug/vars tells of its Go side.
type goVars struct {
	Goroutines int `json:"goroutines"`
	Memstats   struct {
		HeapInuse  uint64
		StackInuse uint64
	} `json:"memstats"`
}

// readGoVars reads the server's /debug/vars (the reference hubs serve it
// on their address, the portal on its --debug-addr). A server that does
// not answer reads as zero.
func readGoVars(addr string) goVars {
	var v goVars
	resp, err := http.Get("http://" + addr + "/debug/vars")
	if err != nil {
		return v
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&v)
	return v
}

// idlePhase connects the fleet to sv and reads the server's memory before
// and after (phase 1).
func idlePhase(ctx context.Context, sv *server, topo *topology, settle time.Duration, progress func(string)) error {
	time.Sleep(settle / 2)
	before, err := readProc(sv.proc.pid())
	if err != nil {
		return err
	}
	v0 := readGoVars(sv.t.vars)
	progress(fmt.Sprintf("%s: connecting %d sockets", sv.t.name, len(topo.Order)))
	var mid procStat
	var midErr error
	fl, err := connectFleet(ctx, sv.t, topo, topo.Order, progress, func() {
		time.Sleep(settle)
		mid, midErr = readProc(sv.proc.pid())
	})
	if err == nil {
		err = midErr
	}
	if err != nil {
		return fmt.Errorf("%w\n%s's log ends:\n%s", err, sv.t.name, lastLines(sv.proc.log.String(), 10))
	}
	sv.fleet = fl
	time.Sleep(settle)
	after, err := readProc(sv.proc.pid())
	if err != nil {
		return err
	}
	n := len(fl.socks)
	sv.idle = idleResult{
		Sockets: n, RSSBeforeKB: before.RSSKB, RSSAfterKB: after.RSSKB,
		KBPerSocket:    float64(after.RSSKB-before.RSSKB) / float64(n),
		RSSMidKB:       mid.RSSKB,
		MarginalKB:     float64(after.RSSKB-mid.RSSKB) / float64(n-n/2),
		ThreadsAfter:   after.Threads,
		ConnectSeconds: fl.connectDur.Seconds(), Handshake: fl.connect.summary(), HelloMismatch: fl.helloDiff,
	}
	v1 := readGoVars(sv.t.vars)
	sv.idle.GoroutinesPer = float64(v1.Goroutines-v0.Goroutines) / float64(n)
	sv.idle.HeapKBPer = (float64(v1.Memstats.HeapInuse) - float64(v0.Memstats.HeapInuse)) / 1024 / float64(n)
	sv.idle.StackKBPer = (float64(v1.Memstats.StackInuse) - float64(v0.Memstats.StackInuse)) / 1024 / float64(n)
	return nil
}

// chatResult is one fixed-rate or ramp run against one target.
type chatResult struct {
	Target      string  `json:"target"`
	Rate        float64 `json:"rate"`
	Seconds     float64 `json:"seconds"`
	Offered     int     `json:"offered"`
	AckedPerSec float64 `json:"acked_per_s"`
	Ack         latency `json:"send_to_ack"`
	Delivery    latency `json:"send_to_delivery"`
	CPUPerMsgUs float64 `json:"cpu_us_per_msg"`
	// ClientCores is the CPU this benchmark process used during the run,
	// OtherCores what everything else but the server under test used: the
	// machine's load the run did not cause (other processes, and kernel
	// threads such as a memory monitor).
	ClientCores float64 `json:"client_cores"`
	OtherCores  float64 `json:"other_cores"`
	Dropped     int64   `json:"dropped_sockets"`
	Check       verdict `json:"check"`
	AckedAll    int64   `json:"acked_incl_warmup"`
}

// chatRun sends at rate for d after warm (warm-up messages are checked
// but not measured) and checks every message (phase 2, and each ramp step).
func chatRun(ctx context.Context, sv *server, senders [][]slot, rate float64, warm, d time.Duration, resendEvery int64) chatResult {
	fl := sv.fleet
	drops0 := fl.dropped.Load()
	var warmCk *checker
	if warm > 0 {
		warmCk = newChecker(0)
		fl.openLoop(ctx, warmCk, senders, rate, warm)
	}
	ck := newChecker(resendEvery)
	p0, _ := readProc(sv.proc.pid())
	self0, _ := readProc(os.Getpid())
	busy0 := machineBusy()
	t0 := time.Now()
	offered := fl.openLoop(ctx, ck, senders, rate, d)
	elapsed := time.Since(t0)
	p1, _ := readProc(sv.proc.pid())
	self1, _ := readProc(os.Getpid())
	busy1 := machineBusy()
	ck.wait(5*time.Second, 60*time.Second)
	ck.verify()
	if warmCk != nil {
		warmCk.wait(time.Second, 5*time.Second)
		warmCk.verify()
	}
	v := ck.verdict()
	if warmCk != nil {
		v = mergeVerdicts(v, warmCk.verdict())
	}
	r := chatResult{
		Target: sv.t.name, Rate: rate, Seconds: elapsed.Seconds(), Offered: offered,
		AckedPerSec: float64(ck.acked.Load()) / elapsed.Seconds(),
		Ack:         ck.ackLat.summary(), Delivery: ck.delivLat.summary(),
		Dropped: fl.dropped.Load() - drops0, Check: v, AckedAll: ck.acked.Load(),
	}
	if warmCk != nil {
		r.AckedAll += warmCk.acked.Load()
	}
	if n := ck.acked.Load(); n > 0 {
		r.CPUPerMsgUs = float64((p1.CPU - p0.CPU).Microseconds()) / float64(n)
	}
	client := self1.CPU - self0.CPU
	r.ClientCores = client.Seconds() / elapsed.Seconds()
	r.OtherCores = max(0, (busy1-busy0-client-(p1.CPU-p0.CPU)).Seconds()/elapsed.Seconds())
	return r
}

// mergeVerdicts adds the warm-up's correctness counters to the measured
// run's (only the measured run's traffic counts are kept).
func mergeVerdicts(v, w verdict) verdict {
	v.Lost += w.Lost
	v.LostGap += w.LostGap
	v.Duplicate += w.Duplicate
	v.Reordered += w.Reordered
	v.Unacked += w.Unacked
	v.Errors += w.Errors
	v.SeqMismatch += w.SeqMismatch
	v.ResendMismatch += w.ResendMismatch
	v.Unexpected += w.Unexpected
	v.Foreign += w.Foreign
	v.RateLimited += w.RateLimited
	v.Problems = append(v.Problems, w.Problems...)
	return v
}

// rampResult is the highest open-loop rate a target sustained with p99
// delivery under the limit (phase 3).
type rampResult struct {
	Target string       `json:"target"`
	MaxOK  float64      `json:"max_ok_rate"`
	Steps  []chatResult `json:"steps"`
	Why    string       `json:"stopped_because,omitempty"`
}

const rampP99Limit = 100 * time.Millisecond

func ramp(ctx context.Context, sv *server, senders [][]slot, steps []float64, d time.Duration, progress func(string)) rampResult {
	rr := rampResult{Target: sv.t.name}
	for _, rate := range steps {
		if ctx.Err() != nil {
			break
		}
		progress(fmt.Sprintf("%s: ramp %.0f msg/s", sv.t.name, rate))
		r := chatRun(ctx, sv, senders, rate, 0, d, 0)
		rr.Steps = append(rr.Steps, r)
		why := stepFailure(r, rate)
		if why != "" && !r.Check.failed() && r.Dropped == 0 && r.Delivery.P99 < 5*ms(rampP99Limit) {
			// One slow step on a shared machine is not a ceiling: try it
			// once more before stopping (unless it was far off).
			time.Sleep(time.Second)
			progress(fmt.Sprintf("%s: ramp %.0f msg/s, again", sv.t.name, rate))
			r = chatRun(ctx, sv, senders, rate, 0, d, 0)
			rr.Steps = append(rr.Steps, r)
			why = stepFailure(r, rate)
		}
		if why != "" {
			rr.Why = fmt.Sprintf("at %.0f msg/s: %s", rate, why)
			break
		}
		rr.MaxOK = rate
		time.Sleep(500 * time.Millisecond)
	}
	return rr
}

// stepFailure says why a ramp step does not count as sustained ("" if it does).
func stepFailure(r chatResult, rate float64) string {
	why := ""
	switch {
	case r.Check.failed():
		why = "delivery check failed: " + r.Check.short()
	case r.Delivery.P99 > ms(rampP99Limit):
		why = fmt.Sprintf("p99 delivery %.1f ms", r.Delivery.P99)
	case r.Check.RateLimited > 0:
		why = fmt.Sprintf("%d sends refused as rate_limited (per-person limit)", r.Check.RateLimited)
	case r.Check.Unavailable > 0:
		why = fmt.Sprintf("%d sends refused as unavailable (timed out in the server)", r.Check.Unavailable)
	case r.Check.ClientBacklog > int64(r.Offered)/100:
		why = fmt.Sprintf("%d sends could not be written (server not reading)", r.Check.ClientBacklog)
	case r.AckedPerSec < 0.9*rate:
		why = fmt.Sprintf("acked only %.0f msg/s", r.AckedPerSec)
	case r.Dropped > 0:
		why = fmt.Sprintf("%d sockets dropped", r.Dropped)
	}
	return why
}

// stormResult is phase 5: every socket drops, messages arrive while they
// are away, and all reconnect at once and sync.
type stormResult struct {
	Sockets       int     `json:"sockets"`
	Missed        int64   `json:"messages_sent_while_away"`
	AllCaughtUpS  float64 `json:"all_caught_up_s"`
	CaughtUp      latency `json:"caught_up_per_socket"`
	HandshakesPS  float64 `json:"handshakes_per_s"`
	Replayed      int64   `json:"replayed_frames"`
	ReplayDup     int64   `json:"replay_duplicates"`
	NotCaughtUp   int     `json:"not_caught_up"`
	ResyncNeeded  int64   `json:"resync_required"`
	Check         verdict `json:"check"`
	ConnectErrors string  `json:"connect_error,omitempty"`
}

// storm drops every socket of sv's fleet. While a tenth of them (one
// sender per picked conversation) stay a moment longer to send messages
// the others miss, then they drop too; then every socket reconnects at
// once (64 handshakes at a time) and syncs from the cursor it holds.
// Caught up means: synced, and holding every seq up to its hello's
// last_seq for every conversation, without gaps or duplicates.
func storm(ctx context.Context, sv *server, progress func(string)) stormResult {
	fl := sv.fleet
	res := stormResult{Sockets: len(fl.socks)}
	stay := map[*sock]bool{}
	var slots []slot
	for _, ss := range fl.senders(99) {
		if len(stay) >= max(1, len(fl.socks)/10) {
			break
		}
		if ss[0].s.alive() {
			stay[ss[0].s] = true
			slots = append(slots, ss[0])
		}
	}
	// Everyone else goes away.
	for _, s := range fl.socks {
		if !stay[s] {
			s.shut()
		}
	}
	for _, s := range fl.socks {
		if !stay[s] {
			<-s.done
		}
	}
	progress(fmt.Sprintf("%s: storm: %d sockets away, %d sending", sv.t.name, len(fl.socks)-len(stay), len(stay)))
	ck := newChecker(0)
	for round := 0; round < 3; round++ {
		for _, sl := range slots {
			fl.send(ck, sl)
		}
		time.Sleep(time.Duration(len(slots)) * time.Millisecond) // about 1,000 msg/s
	}
	ck.wait(5*time.Second, 30*time.Second)
	ck.verify()
	res.Check = ck.verdict()
	res.Missed = ck.acked.Load()
	for s := range stay {
		s.shut()
	}
	for s := range stay {
		<-s.done
	}

	// Everyone comes back at once.
	progress(fmt.Sprintf("%s: storm: %d sockets reconnecting", sv.t.name, len(fl.socks)))
	type done struct {
		at      time.Time
		lagging int
	}
	results := make(chan done, len(fl.socks))
	t0 := time.Now()
	fl.onHello = func(s *sock) {
		cursors := map[string]int64{}
		for c, last := range s.hello {
			if s.have[c] < last {
				cursors[c] = s.have[c]
			}
		}
		if len(cursors) == 0 {
			results <- done{at: time.Now()} // one per socket: the buffer holds them all
			s.wantSync = false
			return
		}
		s.wantSync = true
		b, _ := json.Marshal(map[string]any{"type": "sync", "cursors": cursors})
		s.out <- b
	}
	fl.onSynced = func(s *sock, at time.Time) {
		lag := 0
		for c, last := range s.hello {
			if s.have[c] < last {
				lag++
			}
		}
		results <- done{at: at, lagging: lag}
	}
	if err := fl.dialAll(ctx, fl.socks, progress); err != nil {
		res.ConnectErrors = err.Error()
	}
	handshakes := time.Since(t0)
	res.HandshakesPS = float64(len(fl.socks)) / handshakes.Seconds()
	var h hist
	var last time.Time
	deadline := time.After(60 * time.Second)
collect:
	for i := 0; i < len(fl.socks); i++ {
		select {
		case d := <-results:
			if d.lagging > 0 {
				res.NotCaughtUp++
			}
			h.record(d.at.Sub(t0))
			if d.at.After(last) {
				last = d.at
			}
		case <-deadline:
			res.NotCaughtUp += len(fl.socks) - i
			break collect
		}
	}
	res.AllCaughtUpS = last.Sub(t0).Seconds()
	res.CaughtUp = h.summary()
	for _, s := range fl.socks {
		res.Replayed += s.replayed.Load()
		res.ReplayDup += s.replayDup.Load()
		res.ResyncNeeded += s.resync.Load()
	}
	return res
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// parseRates reads a comma-separated list of rates.
func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range splitComma(s) {
		var v float64
		if _, err := fmt.Sscanf(f, "%g", &v); err != nil || v <= 0 {
			return nil, fmt.Errorf("bad rate %q", f)
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}
