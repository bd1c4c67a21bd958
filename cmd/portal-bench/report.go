package main

// The report: one table on stdout, every raw number in JSON.

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

type namedIdle struct {
	Target string `json:"target"`
	idleResult
}

type dbCheck struct {
	Rows  int64 `json:"bench_rows"` // messages the bench's client ids stored in the portal's database
	Acked int64 `json:"acked"`      // messages the portal acked (resends not counted)
}

type topoSummary struct {
	Users         int     `json:"users"`
	Caseworkers   int     `json:"caseworkers"`
	Conversations int     `json:"conversations"`
	ConvsPerStaff float64 `json:"conversations_per_caseworker"`
}

func summarize(t *topology) topoSummary {
	s := topoSummary{Users: len(t.Users), Conversations: len(t.Convs)}
	convs := 0
	for _, u := range t.Users {
		if u.Role != "citizen" {
			s.Caseworkers++
			convs += len(u.Convs)
		}
	}
	if s.Caseworkers > 0 {
		s.ConvsPerStaff = float64(convs) / float64(s.Caseworkers)
	}
	return s
}

// targetResult is one goal of the issue, met or not.
type targetResult struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Goal  string  `json:"goal"`
	Pass  bool    `json:"pass"`
	Known bool    `json:"measured"`
}

type report struct {
	Started     time.Time     `json:"started"`
	Go          string        `json:"go"`
	GitSHA      string        `json:"git_sha"`
	CPUs        int           `json:"cpus"`
	Args        []string      `json:"args"`
	N           int           `json:"n"`
	Rate        float64       `json:"rate"`
	Scale       float64       `json:"scale"`
	Data        dataSize      `json:"data"`
	Topology    topoSummary   `json:"topology"`
	Interleaved bool          `json:"interleaved"`
	CalibBefore calibration   `json:"calibration_before"`
	CalibAfter  calibration   `json:"calibration_after"`
	Noisy       bool          `json:"noisy"`
	NoisyWhy    string        `json:"noisy_why,omitempty"`
	Idle        []namedIdle   `json:"idle"`
	Cold        []chatResult  `json:"first_messages"` // one per conversation, before the fixed-rate runs
	Fixed       []chatResult  `json:"fixed_rate"`
	Ramp        []rampResult  `json:"ramp"`
	HTTP        []*httpResult `json:"http"`
	HTTPOpen    []*httpResult `json:"http_open"`
	Storm       *stormResult  `json:"storm,omitempty"`
	DB          dbCheck       `json:"db_check"`

	Summary  map[string]fixedSummary `json:"fixed_rate_median"`
	Ratios   map[string]float64      `json:"ratios"`
	Targets  []targetResult          `json:"targets"`
	Failed   bool                    `json:"failed"`
	Failures []string                `json:"failures,omitempty"`
}

// fixedSummary is the median over a target's fixed-rate runs.
type fixedSummary struct {
	Runs     int     `json:"runs"`
	AckP50   float64 `json:"ack_p50_ms"`
	AckP99   float64 `json:"ack_p99_ms"`
	DelP50   float64 `json:"delivery_p50_ms"`
	DelP99   float64 `json:"delivery_p99_ms"`
	DelP999  float64 `json:"delivery_p999_ms"`
	DelMax   float64 `json:"delivery_max_ms"`
	CPUPerUs float64 `json:"cpu_us_per_msg"`
	AckedPS  float64 `json:"acked_per_s"`
	Client   float64 `json:"client_cores"`
	Other    float64 `json:"other_cores"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *report) runsOf(target string) []chatResult {
	var out []chatResult
	for _, f := range r.Fixed {
		if f.Target == target {
			out = append(out, f)
		}
	}
	return out
}

func (r *report) idleOf(target string) *idleResult {
	for i := range r.Idle {
		if r.Idle[i].Target == target {
			return &r.Idle[i].idleResult
		}
	}
	return nil
}

func (r *report) rampOf(target string) *rampResult {
	for i := range r.Ramp {
		if r.Ramp[i].Target == target {
			return &r.Ramp[i]
		}
	}
	return nil
}

func (r *report) httpOf(target, page string) *httpResult { return pageRun(r.HTTP, target, page) }

func (r *report) httpOpenOf(target, page string) *httpResult {
	return pageRun(r.HTTPOpen, target, page)
}

func pageRun(runs []*httpResult, target, page string) *httpResult {
	for _, h := range runs {
		if h.Target == target && h.Page == page {
			return h
		}
	}
	return nil
}

// pairRatio is the median over pairs of num's metric ÷ den's.
func (r *report) pairRatio(num, den string, metric func(chatResult) float64) float64 {
	a, b := r.runsOf(num), r.runsOf(den)
	var rs []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if d := metric(b[i]); d > 0 {
			rs = append(rs, metric(a[i])/d)
		}
	}
	return median(rs)
}

// finish computes medians, ratios, the noise flag, the targets and the
// correctness verdict.
func (r *report) finish() {
	lo := math.Min(r.CalibBefore.Cores, r.CalibAfter.Cores)
	hi := math.Max(r.CalibBefore.Cores, r.CalibAfter.Cores)
	switch {
	case lo < 1.6:
		r.Noisy, r.NoisyWhy = true, fmt.Sprintf("calibration %.2f/%.2f cores (< 1.6): the machine is shared right now", r.CalibBefore.Cores, r.CalibAfter.Cores)
	case hi > 0 && (hi-lo)/hi > 0.15:
		r.Noisy, r.NoisyWhy = true, fmt.Sprintf("calibration moved %.2f → %.2f cores (> 15%%)", r.CalibBefore.Cores, r.CalibAfter.Cores)
	}

	r.Summary = map[string]fixedSummary{}
	for _, t := range []string{"R", "RP", "P2", "P"} {
		runs := r.runsOf(t)
		if len(runs) == 0 {
			continue
		}
		col := func(f func(chatResult) float64) float64 {
			var xs []float64
			for _, c := range runs {
				xs = append(xs, f(c))
			}
			return median(xs)
		}
		r.Summary[t] = fixedSummary{
			Runs:     len(runs),
			AckP50:   col(func(c chatResult) float64 { return c.Ack.P50 }),
			AckP99:   col(func(c chatResult) float64 { return c.Ack.P99 }),
			DelP50:   col(func(c chatResult) float64 { return c.Delivery.P50 }),
			DelP99:   col(func(c chatResult) float64 { return c.Delivery.P99 }),
			DelP999:  col(func(c chatResult) float64 { return c.Delivery.P999 }),
			DelMax:   col(func(c chatResult) float64 { return c.Delivery.Max }),
			CPUPerUs: col(func(c chatResult) float64 { return c.CPUPerMsgUs }),
			Client:   col(func(c chatResult) float64 { return c.ClientCores }),
			Other:    col(func(c chatResult) float64 { return c.OtherCores }),
			AckedPS:  col(func(c chatResult) float64 { return c.AckedPerSec }),
		}
	}
	// Load the run did not cause competes with the servers for the same
	// cores, unseen by the calibration before and after.
	if !r.Noisy {
		worst := 0.0
		for _, c := range r.Fixed {
			worst = math.Max(worst, c.OtherCores)
		}
		if worst > 0.3 {
			r.Noisy, r.NoisyWhy = true, fmt.Sprintf("other load of up to %.2f cores during the fixed-rate runs", worst)
		}
	}
	r.Ratios = map[string]float64{}
	put := func(name string, v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			r.Ratios[name] = math.Round(v*100) / 100
		}
	}
	p99 := func(c chatResult) float64 { return c.Delivery.P99 }
	p50 := func(c chatResult) float64 { return c.Delivery.P50 }
	cpu := func(c chatResult) float64 { return c.CPUPerMsgUs }
	ackP99 := func(c chatResult) float64 { return c.Ack.P99 }
	put("delivery_p99 P/R", r.pairRatio("P", "R", p99))
	put("delivery_p99 P/RP", r.pairRatio("P", "RP", p99))
	put("delivery_p50 P/R", r.pairRatio("P", "R", p50))
	put("ack_p99 P/R", r.pairRatio("P", "R", ackP99))
	put("cpu_per_msg P/R", r.pairRatio("P", "R", cpu))
	put("cpu_per_msg P/RP", r.pairRatio("P", "RP", cpu))
	if pi, ri := r.idleOf("P"), r.idleOf("R"); pi != nil && ri != nil && ri.KBPerSocket > 0 {
		put("idle_kb_per_socket P/R", pi.KBPerSocket/ri.KBPerSocket)
		put("connect_time P/R", pi.ConnectSeconds/ri.ConnectSeconds)
	}
	if pr, rr := r.rampOf("P"), r.rampOf("R"); pr != nil && rr != nil && rr.MaxOK > 0 {
		put("ramp_max P/R", pr.MaxOK/rr.MaxOK)
	}
	if pr, rr := r.rampOf("P"), r.rampOf("RP"); pr != nil && rr != nil && rr.MaxOK > 0 {
		put("ramp_max P/RP", pr.MaxOK/rr.MaxOK)
	}

	// Targets of issue 8.
	add := func(name, goal string, v float64, known, pass bool) {
		r.Targets = append(r.Targets, targetResult{Name: name, Goal: goal, Value: v, Known: known, Pass: known && pass})
	}
	v, ok := r.Ratios["ramp_max P/R"]
	add("max persisted throughput P/R (ramp)", "≥ 0.60", v, ok, v >= 0.6)
	ps, ok := r.Summary["P"]
	add(fmt.Sprintf("p99 delivery @%.0f msg/s, N=%d (ms)", r.Rate, r.N), "≤ 15", ps.DelP99, ok, ps.DelP99 <= 15)
	pi := r.idleOf("P")
	add("server RSS per idle socket (KB)", "≤ 16", idleKB(pi), pi != nil, pi != nil && pi.KBPerSocket <= 16)
	for _, page := range []string{"case overview", "caseworker inbox"} {
		h := r.httpOf("P", page)
		known := h != nil && h.Requests > 0
		val := 0.0
		if known {
			val = h.Latency.P99
		}
		add(page+" p99 @c=32 (ms)", "≤ 10", val, known, val <= 10)
	}

	// Correctness: any of these fails the run.
	fail := func(format string, args ...any) {
		r.Failed = true
		r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
	}
	for _, f := range r.Cold {
		if f.Check.failed() {
			fail("%s first messages: %s", f.Target, f.Check.short())
		}
	}
	for _, f := range r.Fixed {
		if f.Check.failed() {
			fail("%s fixed rate: %s", f.Target, f.Check.short())
		}
		if f.Dropped > 0 {
			fail("%s fixed rate: %d sockets dropped", f.Target, f.Dropped)
		}
	}
	for _, rr := range r.Ramp {
		for _, st := range rr.Steps {
			if st.Check.failed() {
				fail("%s ramp %.0f msg/s: %s", rr.Target, st.Rate, st.Check.short())
			}
		}
	}
	for _, in := range r.Idle {
		if in.HelloMismatch > 0 {
			fail("%s: %d hello frames listed other conversations than the access rules give", in.Target, in.HelloMismatch)
		}
	}
	if st := r.Storm; st != nil {
		if st.Check.failed() {
			fail("storm: %s", st.Check.short())
		}
		if st.NotCaughtUp > 0 || st.ReplayDup > 0 || st.ConnectErrors != "" {
			fail("storm: %d sockets not caught up, %d duplicate replays %s", st.NotCaughtUp, st.ReplayDup, st.ConnectErrors)
		}
	}
	if r.DB.Rows < r.DB.Acked {
		fail("portal database holds %d bench messages but acked %d", r.DB.Rows, r.DB.Acked)
	}
	for _, h := range slices.Concat(r.HTTP, r.HTTPOpen) {
		if h.Requests > 0 && float64(h.Errors) > 0.01*float64(h.Requests) {
			fail("HTTP %s: %d of %d requests failed (statuses %v)", h.Page, h.Errors, h.Requests, h.Statuses)
		}
	}
	add("zero loss, duplicates, reordering", "0", float64(len(r.Failures)), true, !r.Failed)
}

func idleKB(i *idleResult) float64 {
	if i == nil {
		return 0
	}
	return i.KBPerSocket
}

func (r *report) missed() int {
	n := 0
	for _, t := range r.Targets {
		if t.Known && !t.Pass {
			n++
		}
	}
	return n
}

// f formats a number for the table; "-" when there is none.
func f(v float64, prec int) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func k(v float64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func (r *report) print(w io.Writer) {
	status := "OK (not noisy)"
	if r.Noisy {
		status = "NOISY: " + r.NoisyWhy
	}
	fmt.Fprintf(w, "portal-bench  %s  %s  %d cpu  calib %.2f/%.2f cores  fsync p50 %.2fms p99 %.2fms  %s\n",
		r.GitSHA, r.Go, r.CPUs, r.CalibBefore.Cores, r.CalibAfter.Cores, r.CalibBefore.FsyncP50, r.CalibBefore.FsyncP99, status)
	fmt.Fprintf(w, "data: %d cases, %d parties, %d documents, %d messages (scale %g); N=%d sockets (%d caseworkers, %.0f conversations each); Oslo time %s\n\n",
		r.Data.Cases, r.Data.Parties, r.Data.Documents, r.Data.Messages, r.Scale, r.N, r.Topology.Caseworkers, r.Topology.ConvsPerStaff, r.osloTime())

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tR (bare)\tRP (ref persist)\tP (portal)\tP/R\tP/RP")
	col := func(t string, get func(fixedSummary) float64, prec int) string {
		s, ok := r.Summary[t]
		if !ok {
			return "-"
		}
		return f(get(s), prec)
	}
	ratio := func(name string) string {
		if v, ok := r.Ratios[name]; ok {
			return f(v, 2)
		}
		return "-"
	}
	idle := func(t string, get func(*idleResult) string) string {
		if i := r.idleOf(t); i != nil {
			return get(i)
		}
		return "-"
	}
	fmt.Fprintf(tw, "idle RSS per socket (KB)\t%s\t%s\t%s\t%s\t\n",
		idle("R", func(i *idleResult) string { return f(i.KBPerSocket, 1) }),
		idle("RP", func(i *idleResult) string { return f(i.KBPerSocket, 1) }),
		idle("P", func(i *idleResult) string { return f(i.KBPerSocket, 1) }), ratio("idle_kb_per_socket P/R"))
	fmt.Fprintf(tw, "  the second half of the sockets alone (KB)\t%s\t%s\t%s\t\t\n",
		idle("R", func(i *idleResult) string { return f(i.MarginalKB, 1) }),
		idle("RP", func(i *idleResult) string { return f(i.MarginalKB, 1) }),
		idle("P", func(i *idleResult) string { return f(i.MarginalKB, 1) }))
	goSide := func(i *idleResult) string {
		return f(i.HeapKBPer, 1) + " / " + f(i.StackKBPer, 1) + " / " + f(i.GoroutinesPer, 1)
	}
	fmt.Fprintf(tw, "  Go heap KB / stacks KB / goroutines, per socket\t%s\t%s\t%s\t\t\n",
		idle("R", goSide), idle("RP", goSide), idle("P", goSide))
	fmt.Fprintf(tw, "connect %d sockets (s) / handshake p99 (ms)\t%s\t%s\t%s\t%s\t\n", r.N,
		idle("R", func(i *idleResult) string { return f(i.ConnectSeconds, 1) + " / " + f(i.Handshake.P99, 1) }),
		idle("RP", func(i *idleResult) string { return f(i.ConnectSeconds, 1) + " / " + f(i.Handshake.P99, 1) }),
		idle("P", func(i *idleResult) string { return f(i.ConnectSeconds, 1) + " / " + f(i.Handshake.P99, 1) }),
		ratio("connect_time P/R"))
	rows := []struct {
		name  string
		get   func(fixedSummary) float64
		prec  int
		ratio string
		rp    string
	}{
		{"send→ack p50 (ms)", func(s fixedSummary) float64 { return s.AckP50 }, 2, "", ""},
		{"send→ack p99 (ms)", func(s fixedSummary) float64 { return s.AckP99 }, 2, "ack_p99 P/R", ""},
		{"send→delivery p50 (ms)", func(s fixedSummary) float64 { return s.DelP50 }, 2, "delivery_p50 P/R", ""},
		{"send→delivery p99 (ms)", func(s fixedSummary) float64 { return s.DelP99 }, 2, "delivery_p99 P/R", "delivery_p99 P/RP"},
		{"send→delivery p99.9 (ms)", func(s fixedSummary) float64 { return s.DelP999 }, 2, "", ""},
		{"send→delivery max (ms)", func(s fixedSummary) float64 { return s.DelMax }, 1, "", ""},
		{"server CPU per message (µs)", func(s fixedSummary) float64 { return s.CPUPerUs }, 0, "cpu_per_msg P/R", "cpu_per_msg P/RP"},
		{"bench client CPU (cores)", func(s fixedSummary) float64 { return s.Client }, 2, "", ""},
		{"everything else on the machine (cores)", func(s fixedSummary) float64 { return s.Other }, 2, "", ""},
	}
	cold := func(t string) string {
		for _, c := range r.Cold {
			if c.Target == t {
				return f(c.Delivery.P50, 1) + " / " + f(c.Delivery.P99, 1)
			}
		}
		return "-"
	}
	if len(r.Cold) > 0 {
		fmt.Fprintf(tw, "first message in each of %d conversations, %.0f msg/s\t\t\t\t\t\n", r.Cold[0].Offered, r.Rate)
		fmt.Fprintf(tw, "  send→delivery p50 / p99 (ms)\t%s\t%s\t%s\t\t\n", cold("R"), cold("RP"), cold("P"))
	}
	fmt.Fprintf(tw, "fixed rate %.0f msg/s, median of %d runs each\t\t\t\t\t\n", r.Rate, r.Summary["P"].Runs)
	for _, row := range rows {
		rp := "-"
		if row.rp != "" {
			rp = ratio(row.rp)
		}
		rr := "-"
		if row.ratio != "" {
			rr = ratio(row.ratio)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", row.name,
			col("R", row.get, row.prec), col("RP", row.get, row.prec), col("P", row.get, row.prec), rr, rp)
	}
	rampCell := func(t string) string {
		rr := r.rampOf(t)
		switch {
		case rr == nil:
			return "-"
		case rr.MaxOK == 0 && len(rr.Steps) > 0:
			return "< " + k(rr.Steps[0].Rate)
		}
		return k(rr.MaxOK)
	}
	if len(r.Ramp) > 0 {
		fmt.Fprintf(tw, "ramp: max msg/s with p99 delivery < 100 ms\t%s\t%s\t%s\t%s\t%s\n",
			rampCell("R"), rampCell("RP"), rampCell("P"), ratio("ramp_max P/R"), ratio("ramp_max P/RP"))
	}
	checks := func(t string) string {
		var lost, dup, reo int64
		seen := false
		for _, c := range slices.Concat(r.Cold, r.Fixed) {
			if c.Target == t {
				seen = true
				lost, dup, reo = lost+c.Check.Lost, dup+c.Check.Duplicate, reo+c.Check.Reordered
			}
		}
		if rr := r.rampOf(t); rr != nil {
			for _, c := range rr.Steps {
				lost, dup, reo = lost+c.Check.Lost, dup+c.Check.Duplicate, reo+c.Check.Reordered
			}
		}
		if !seen {
			return "-"
		}
		return fmt.Sprintf("%d/%d/%d", lost, dup, reo)
	}
	fmt.Fprintf(tw, "lost/duplicate/reordered (all chat phases)\t%s\t%s\t%s\t\t\n", checks("R"), checks("RP"), checks("P"))
	refused := func(t string) string {
		var rl, un, n int64
		seen := false
		for _, c := range r.Fixed {
			if c.Target == t {
				seen = true
				rl, un, n = rl+c.Check.RateLimited, un+c.Check.Unavailable, n+c.Check.Sent
			}
		}
		if !seen {
			return "-"
		}
		return fmt.Sprintf("%d/%d of %d", rl, un, n)
	}
	fmt.Fprintf(tw, "refused rate_limited/unavailable (fixed rate)\t%s\t%s\t%s\t\t\n", refused("R"), refused("RP"), refused("P"))
	tw.Flush()

	if s2, ok := r.Summary["P2"]; ok {
		s1 := r.Summary["P"]
		fmt.Fprintln(w, "\nA/B: P2 (-portal-bin-b) and P, interleaved, median of each")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "metric\tP2\tP\tP/P2")
		ab := func(name string, a, b float64) {
			rr := "-"
			if a > 0 {
				rr = f(b/a, 2)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, f(a, 2), f(b, 2), rr)
		}
		if i2, i1 := r.idleOf("P2"), r.idleOf("P"); i2 != nil && i1 != nil {
			ab("idle RSS per socket (KB)", i2.KBPerSocket, i1.KBPerSocket)
			ab("  second half alone (KB)", i2.MarginalKB, i1.MarginalKB)
			ab("  Go heap + stacks (KB)", i2.HeapKBPer+i2.StackKBPer, i1.HeapKBPer+i1.StackKBPer)
			ab("connect (s)", i2.ConnectSeconds, i1.ConnectSeconds)
		}
		ab("send→ack p50 (ms)", s2.AckP50, s1.AckP50)
		ab("send→ack p99 (ms)", s2.AckP99, s1.AckP99)
		ab("send→delivery p50 (ms)", s2.DelP50, s1.DelP50)
		ab("send→delivery p99 (ms)", s2.DelP99, s1.DelP99)
		ab("acked msg/s", s2.AckedPS, s1.AckedPS)
		ab("server CPU per message (µs)", s2.CPUPerUs, s1.CPUPerUs)
		if r2, r1 := r.rampOf("P2"), r.rampOf("P"); r2 != nil && r1 != nil {
			ab("ramp max msg/s", r2.MaxOK, r1.MaxOK)
		}
		for _, h := range r.HTTP {
			if h.Target == "P" {
				if h2 := r.httpOf("P2", h.Page); h2 != nil {
					ab(h.Page+" p99 (ms)", h2.Latency.P99, h.Latency.P99)
				}
			}
		}
		for _, h := range r.HTTPOpen {
			if h.Target == "P" {
				if h2 := r.httpOpenOf("P2", h.Page); h2 != nil {
					ab(fmt.Sprintf("%s p99 at %.0f/s (ms)", h.Page, h.Rate), h2.Latency.P99, h.Latency.P99)
				}
			}
		}
		tw.Flush()
	}
	if len(r.HTTP) > 0 {
		fmt.Fprintf(w, "\nHTTP, portal only, closed loop at concurrency %d\n", r.HTTP[0].Concurrency)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "page\tserver\treq/s\tp50 (ms)\tp99 (ms)\tmax (ms)\terrors")
		for _, h := range r.HTTP {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%.2f\t%.1f\t%d\n", h.Page, h.Target, k(h.RPS), h.Latency.P50, h.Latency.P99, h.Latency.Max, h.Errors)
		}
		tw.Flush()
	}
	if len(r.HTTPOpen) > 0 {
		fmt.Fprintln(w, "\nHTTP, portal only, open loop at half the closed loop's rate (at most --http-rate), timed from when each request was due")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "page\tserver\treq/s due\tanswered/s\tp50 (ms)\tp99 (ms)\tmax (ms)\terrors")
		for _, h := range r.HTTPOpen {
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.2f\t%.2f\t%.1f\t%d\n", h.Page, h.Target, h.Rate, h.RPS, h.Latency.P50, h.Latency.P99, h.Latency.Max, h.Errors)
		}
		tw.Flush()
	}
	if st := r.Storm; st != nil {
		fmt.Fprintf(w, "\nreconnect storm, portal: %d sockets drop, %d messages sent meanwhile; all back and caught up in %.2f s "+
			"(per socket p50 %.0f ms, p99 %.0f ms), %.0f handshakes/s, %d frames replayed, %d not caught up\n",
			st.Sockets, st.Missed, st.AllCaughtUpS, st.CaughtUp.P50, st.CaughtUp.P99, st.HandshakesPS, st.Replayed, st.NotCaughtUp)
	}
	for _, rr := range r.Ramp {
		if rr.Why != "" {
			fmt.Fprintf(w, "ramp %s stopped %s\n", rr.Target, rr.Why)
		}
	}
	fmt.Fprintf(w, "portal database: %d bench messages stored, %d acked (resends with the same client id: %d, no extra rows expected)\n",
		r.DB.Rows, r.DB.Acked, r.resends())

	fmt.Fprintln(w, "\ntargets (issue 8)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range r.Targets {
		res := "MISS"
		switch {
		case !t.Known:
			res = "not measured"
		case t.Pass:
			res = "ok"
		case r.Noisy:
			res = "MISS (noisy run)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", t.Name, f(t.Value, 2), t.Goal, res)
	}
	tw.Flush()
	if r.Failed {
		fmt.Fprintln(w, "\nFAILED: delivery check")
		for _, s := range r.Failures {
			fmt.Fprintln(w, "  "+s)
		}
		shown := 0
		show := func(target string, v verdict) {
			for _, p := range v.Problems {
				if shown < 12 {
					fmt.Fprintf(w, "  %s: %s\n", target, p)
				}
				shown++
			}
		}
		for _, c := range r.Fixed {
			show(c.Target, c.Check)
		}
		for _, rr := range r.Ramp {
			for _, c := range rr.Steps {
				show(rr.Target, c.Check)
			}
		}
		if r.Storm != nil {
			show("P storm", r.Storm.Check)
		}
		if shown > 12 {
			fmt.Fprintf(w, "  … %d more in the JSON\n", shown-12)
		}
	}
}

// osloTime is when the run started in Oslo: whether the chat is open then
// changes the portal's work per message (auto-replies when it is closed).
func (r *report) osloTime() string {
	loc, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		return r.Started.Format("15:04 UTC")
	}
	return r.Started.In(loc).Format("Mon 15:04")
}

func (r *report) resends() int64 {
	var n int64
	for _, c := range r.Fixed {
		n += c.Check.Resends
	}
	return n
}
