// Command portal-bench measures the portal under realistic load next to
// reference servers on the same machine, in the same run, with the same
// clients, and checks every delivery while it measures.
//
//	portal-bench [flags]            run the benchmark (see -help)
//	portal-bench gen [-scale S]     only generate (or find) the cached dataset
//	portal-bench serve-ref ...      a reference hub; the benchmark starts it
//
// The real portal runs as a child process (`portal serve` of a fresh
// `go build ./cmd/portal`), so /proc gives its own memory and CPU; the
// reference hubs run as children too (this binary, re-executed). Users are
// signed in by writing sessions straight into the generated database; the
// server has no sign-in shortcut. See README.md, "Performance".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // Europe/Oslo for the report, whatever the host has

	"familieportal/portal/db"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "serve-ref":
			if err := serveRef(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "portal-bench serve-ref:", err)
				os.Exit(1)
			}
			return
		case "gen":
			if err := genOnly(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "portal-bench gen:", err)
				os.Exit(1)
			}
			return
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "portal-bench:", err)
		}
		os.Exit(2)
	}
	os.Exit(code)
}

// config is the benchmark's flags.
type config struct {
	n           int
	rate        float64
	warm, dur   time.Duration
	pairs       int
	rampSteps   string
	rampStep    time.Duration
	httpDur     time.Duration
	httpConc    int
	httpRate    float64
	scale       float64
	cacheDir    string
	jsonPath    string
	portalBin   string
	portalBinB  string
	skip        string
	check       bool
	quick       bool
	keep        bool
	seed        uint64
	resendEvery int64
	settle      time.Duration
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("portal-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.n, "n", 2000, "websockets (users) per server")
	fs.Float64Var(&c.rate, "rate", 1000, "messages per second in the fixed-rate phase")
	fs.DurationVar(&c.warm, "warmup", time.Second, "warm-up before each fixed-rate run")
	fs.DurationVar(&c.dur, "duration", 6*time.Second, "each fixed-rate run")
	fs.IntVar(&c.pairs, "pairs", 2, "interleaved rounds of the fixed-rate phase (R, RP, P, R, RP, P, …)")
	fs.StringVar(&c.rampSteps, "ramp", "500,1000,2000,4000,6000,8000,12000,16000,24000,32000", "open-loop rates of the ramp, msg/s")
	fs.DurationVar(&c.rampStep, "ramp-step", 3*time.Second, "each ramp step")
	fs.DurationVar(&c.httpDur, "http-duration", 4*time.Second, "each page in the HTTP phase")
	fs.IntVar(&c.httpConc, "http-concurrency", 32, "concurrent requests in the HTTP phase")
	fs.Float64Var(&c.httpRate, "http-rate", 500, "open-loop requests a second per page in the HTTP phase (at most half of what the closed loop reached)")
	fs.Float64Var(&c.scale, "scale", 1, "dataset size: 1 = 20k cases, 60k parties, 200k documents, 2M messages")
	fs.StringVar(&c.cacheDir, "cache", filepath.Join(os.TempDir(), "portal-bench-data"), "where generated datasets are kept, by schema hash")
	fs.StringVar(&c.jsonPath, "json", "", "also write every raw number as JSON to `file`")
	fs.StringVar(&c.portalBin, "portal-bin", "", "use this portal binary instead of building ./cmd/portal")
	fs.StringVar(&c.portalBinB, "portal-bin-b", "", "A/B: also run this portal binary as P2, interleaved with P in every chat and HTTP phase")
	fs.StringVar(&c.skip, "skip", "", "phases to skip: comma-separated of rp, ramp, http, storm")
	fs.BoolVar(&c.check, "check", false, "exit 1 when a target is missed (unless the run is NOISY)")
	fs.BoolVar(&c.quick, "quick", false, "a short run (about a minute): n=1000, one pair, short phases")
	fs.BoolVar(&c.keep, "keep", false, "keep the run directory (databases, logs)")
	fs.Uint64Var(&c.seed, "seed", 1, "seed for choosing users and senders")
	fs.Int64Var(&c.resendEvery, "resend-every", 100, "portal: resend every n-th acked message with its client id (0: never)")
	fs.IntVar(&dialConcurrency, "dial-concurrency", 64, "websocket handshakes at once")
	fs.DurationVar(&c.settle, "settle", 3*time.Second, "wait after connecting before reading a server's memory")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if c.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("n", func() { c.n = 1000 })
		def("pairs", func() { c.pairs = 1 })
		def("duration", func() { c.dur = 4 * time.Second })
		def("warmup", func() { c.warm = 500 * time.Millisecond })
		def("ramp-step", func() { c.rampStep = 2 * time.Second })
		def("http-duration", func() { c.httpDur = 2 * time.Second })
		def("settle", func() { c.settle = 2 * time.Second })
	}
	if c.n < 2 || c.rate <= 0 || c.pairs < 1 {
		return c, errors.New("need -n ≥ 2, -rate > 0, -pairs ≥ 1")
	}
	return c, nil
}

func (c config) skips(phase string) bool {
	for _, s := range splitComma(c.skip) {
		if s == phase {
			return true
		}
	}
	return false
}

func splitComma(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// progressWriter prints one updating status line on a terminal, or one
// line per update otherwise.
func progressWriter(w io.Writer) func(string) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	start := time.Now()
	return func(msg string) {
		el := time.Since(start).Round(time.Second)
		if tty {
			fmt.Fprintf(w, "\r\033[K[%s] %s", el, msg)
		} else {
			fmt.Fprintf(w, "[%s] %s\n", el, msg)
		}
	}
}

// moduleRoot finds the familieportal module above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module familieportal") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the familieportal module (or pass -portal-bin)")
		}
		dir = parent
	}
}

func genOnly(args []string) error {
	fs := flag.NewFlagSet("portal-bench gen", flag.ContinueOnError)
	scale := fs.Float64("scale", 1, "dataset size")
	cache := fs.String("cache", filepath.Join(os.TempDir(), "portal-bench-data"), "cache directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	p, err := cachedDB(context.Background(), *cache, *scale, progressWriter(os.Stderr))
	if err != nil {
		return err
	}
	fmt.Println(p)
	return nil
}

// run is the benchmark. It returns the exit code: 1 if a delivery check
// failed (always) or a target was missed (with -check, unless NOISY).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return 0, err
	}
	progress := progressWriter(stderr)
	rates, err := parseRates(cfg.rampSteps)
	if err != nil {
		return 0, err
	}
	// Every server's sockets open at once, so that their runs interleave
	// (a portal inherits the limit and needs one server's share).
	withRP := !cfg.skips("rp")
	fleets := 2 // R and P
	if withRP {
		fleets++
	}
	if cfg.portalBinB != "" {
		fleets++
	}
	allConnected := uint64(fleets*cfg.n + 1024)
	nofile, err := raiseNofile(allConnected)
	if err != nil {
		return 0, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}
	if need := uint64(cfg.n + 512); nofile < need {
		return 0, fmt.Errorf("open-file limit %d is below the %d that -n %d needs; raise the hard limit (ulimit -Hn)", nofile, need, cfg.n)
	}
	runDir, err := os.MkdirTemp("", "portal-bench-run-")
	if err != nil {
		return 0, err
	}
	if !cfg.keep {
		defer os.RemoveAll(runDir)
	}

	rep := &report{Started: time.Now().UTC(), Go: runtime.Version(), CPUs: runtime.NumCPU(), Args: args,
		N: cfg.n, Scale: cfg.scale, Data: sizeFor(cfg.scale), Rate: cfg.rate}
	rep.GitSHA = gitSHA()
	progress("calibrating")
	rep.CalibBefore = calibrate(runDir, 2*time.Second)

	// Data: cached by schema hash, copied per server.
	progress("dataset")
	cached, err := cachedDB(ctx, cfg.cacheDir, cfg.scale, progress)
	if err != nil {
		return 0, err
	}
	portalBin := cfg.portalBin
	if portalBin == "" {
		progress("building ./cmd/portal")
		root, err := moduleRoot()
		if err != nil {
			return 0, err
		}
		portalBin = filepath.Join(runDir, "portal")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", portalBin, "./cmd/portal")
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, stderr, stderr
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("go build ./cmd/portal: %w", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	// The users, their sessions and the HTTP requests are chosen on one
	// copy; each server then gets a copy of that, made at the same moment,
	// so that neither runs on a file the kernel has had longer to evict
	// from its page cache (the portal started on the older file had ten
	// times the other's p99 when both ran the same binary).
	setupDB, pDB, rpDB := filepath.Join(runDir, "setup.db"), filepath.Join(runDir, "portal.db"), filepath.Join(runDir, "ref-persist.db")
	progress("copying the dataset")
	if err := copyDB(cached, setupDB); err != nil {
		return 0, err
	}
	progress("choosing users")
	topo, err := loadTopology(ctx, setupDB, cfg.n, cfg.seed)
	if err != nil {
		return 0, err
	}
	topoPath := filepath.Join(runDir, "topology.json")
	if err := topo.write(topoPath); err != nil {
		return 0, err
	}
	tokens, err := writeSessions(ctx, setupDB, topo.Order)
	if err != nil {
		return 0, err
	}
	var httpSet httpSets
	if !cfg.skips("http") {
		if httpSet, err = buildHTTPSets(ctx, setupDB, topo, tokens); err != nil {
			return 0, err
		}
	}
	progress("copying the dataset for each server")
	if err := copyDB(setupDB, pDB); err != nil { // with the same sessions
		return 0, err
	}
	if withRP {
		if err := copyDB(setupDB, rpDB); err != nil {
			return 0, err
		}
	}
	p2DB := filepath.Join(runDir, "portal-b.db")
	if cfg.portalBinB != "" {
		if err := copyDB(setupDB, p2DB); err != nil {
			return 0, err
		}
	}
	removeDB(setupDB)
	rep.Topology = summarize(topo)

	// Servers, each a child process on its own loopback port.
	var servers []*server
	defer func() {
		for _, sv := range servers {
			if sv.fleet != nil {
				sv.fleet.close()
			}
			sv.proc.stop()
		}
	}()
	start := func(name string, portal bool, bin string, args func(addr string) []string) (*server, error) {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		ready := "/healthz"
		if portal {
			ready = "/readyz"
		}
		argv, vars := args(addr), addr
		if portal {
			// The portal serves its runtime's numbers on a debug address
			// of its own, never on the address the clients use.
			if vars, err = freeAddr(); err != nil {
				return nil, err
			}
			argv = append(argv, "--debug-addr", vars)
		}
		progress("starting " + name)
		p, err := startChild(ctx, name, addr, ready, filepath.Join(runDir, name+".log"), bin, argv...)
		if err != nil {
			return nil, err
		}
		sv := &server{t: &target{name: name, addr: addr, vars: vars, portal: portal, tokens: tokens}, proc: p}
		servers = append(servers, sv)
		return sv, nil
	}
	r, err := start("R", false, self, func(a string) []string {
		return []string{"serve-ref", "-addr", a, "-topology", topoPath, "-mode", "raw"}
	})
	if err != nil {
		return 0, err
	}
	var rp *server
	if withRP {
		if rp, err = start("RP", false, self, func(a string) []string {
			return []string{"serve-ref", "-addr", a, "-topology", topoPath, "-mode", "persist", "-db", rpDB}
		}); err != nil {
			return 0, err
		}
	}
	portalArgs := func(dbPath string) func(a string) []string {
		return func(a string) []string {
			return []string{"serve", "--db", dbPath, "--addr", a, "--origins", "http://" + a, "--log-level", "warn"}
		}
	}
	var p2 *server
	if cfg.portalBinB != "" {
		if p2, err = start("P2", true, cfg.portalBinB, portalArgs(p2DB)); err != nil {
			return 0, err
		}
	}
	p, err := start("P", true, portalBin, portalArgs(pDB))
	if err != nil {
		return 0, err
	}
	chatServers := []*server{r}
	if rp != nil {
		chatServers = append(chatServers, rp)
	}
	if p2 != nil {
		chatServers = append(chatServers, p2)
	}
	chatServers = append(chatServers, p)

	// All fleets stay connected for interleaving if the file limit allows;
	// otherwise each server gets its turn and its sockets are closed after.
	together := allConnected <= nofile
	rep.Interleaved = together
	fixedFor := func(sv *server, senders [][]slot) {
		settle(servers)
		progress(fmt.Sprintf("%s: %.0f msg/s for %s", sv.t.name, cfg.rate, cfg.dur))
		resend := int64(0)
		if sv.t.portal {
			resend = cfg.resendEvery
		}
		res := chatRun(ctx, sv, senders, cfg.rate, cfg.warm, cfg.dur, resend)
		rep.Fixed = append(rep.Fixed, res)
		sv.addAcked(res)
	}
	rampFor := func(sv *server, senders [][]slot) {
		if cfg.skips("ramp") {
			return
		}
		rr := ramp(ctx, sv, senders, rates, cfg.rampStep, progress)
		rep.Ramp = append(rep.Ramp, rr)
		for _, st := range rr.Steps {
			sv.addAcked(st)
		}
	}
	// coldFor sends the first message of every conversation the runs use,
	// measured on its own: in the evening the chat is closed, so the
	// portal answers each conversation's first family message with an
	// automatic reply (a second write and fan-out) and fills its kept
	// access answers. The fixed-rate runs after it measure the steady state.
	coldFor := func(sv *server, senders [][]slot) {
		first := sv.fleet.firstMessages(senders)
		settle(servers)
		progress(fmt.Sprintf("%s: the first message in each of %d conversations", sv.t.name, len(first)))
		d := time.Duration(float64(len(first)) / cfg.rate * float64(time.Second))
		res := chatRun(ctx, sv, first, cfg.rate, 0, d+time.Millisecond, 0)
		rep.Cold = append(rep.Cold, res)
		sv.addAcked(res)
	}
	senders := map[*server][][]slot{}
	if together {
		for _, sv := range chatServers {
			if err := idlePhase(ctx, sv, topo, cfg.settle, progress); err != nil {
				return 0, err
			}
			rep.Idle = append(rep.Idle, namedIdle{sv.t.name, sv.idle})
			senders[sv] = sv.fleet.senders(cfg.seed)
		}
		for _, sv := range chatServers {
			coldFor(sv, senders[sv])
		}
		for i := 0; i < cfg.pairs && ctx.Err() == nil; i++ {
			round := chatServers
			if p2 != nil && i%2 == 1 {
				// A/B: every other round, P before P2. The same binary
				// in both places measured worse in the second (p99
				// 36–128 ms against 31–50), so neither keeps it.
				round = slices.Clone(chatServers)
				n := len(round)
				round[n-2], round[n-1] = round[n-1], round[n-2]
			}
			for _, sv := range round {
				fixedFor(sv, senders[sv])
			}
		}
		for _, sv := range chatServers {
			rampFor(sv, senders[sv])
		}
	} else {
		for _, sv := range chatServers {
			if err := idlePhase(ctx, sv, topo, cfg.settle, progress); err != nil {
				return 0, err
			}
			rep.Idle = append(rep.Idle, namedIdle{sv.t.name, sv.idle})
			senders[sv] = sv.fleet.senders(cfg.seed)
			coldFor(sv, senders[sv])
			for i := 0; i < cfg.pairs && ctx.Err() == nil; i++ {
				fixedFor(sv, senders[sv])
			}
			rampFor(sv, senders[sv])
			if sv != p {
				sv.fleet.close()
				sv.fleet = nil
			}
		}
	}
	// The reference hubs are done; stop them so the portal has the machine.
	for _, sv := range chatServers[:len(chatServers)-1] {
		if sv.fleet != nil {
			sv.fleet.close()
			sv.fleet = nil
		}
		if sv != p2 {
			sv.proc.stop()
		}
	}

	if !cfg.skips("http") && ctx.Err() == nil {
		for i, page := range httpSet.names {
			// Closed loop first; then open loop at half the slower
			// server's closed-loop rate (at most --http-rate), the same
			// rate for both, so that its latencies are a page's at a load
			// the server can carry, not the queue of 32 clients. In an
			// A/B run the order alternates by page, as in the chat phase.
			order := []*server{p2, p}
			if i%2 == 1 {
				order = []*server{p, p2}
			}
			rate := cfg.httpRate
			for _, sv := range order {
				if sv == nil {
					continue
				}
				settle(servers) // after the ramp, a long WAL is still being copied
				progress(fmt.Sprintf("%s: HTTP %s, %d concurrent", sv.t.name, page, cfg.httpConc))
				res := httpRun(ctx, sv.t, page, httpSet.reqs[page], cfg.httpConc, cfg.httpDur)
				rep.HTTP = append(rep.HTTP, res)
				rate = min(rate, math.Round(res.RPS/2))
			}
			if rate < 1 {
				progress(fmt.Sprintf("HTTP %s: no open-loop run, the closed loop answered under 2 a second", page))
				continue
			}
			for _, sv := range order {
				if sv == nil || ctx.Err() != nil {
					continue
				}
				settle(servers)
				progress(fmt.Sprintf("%s: HTTP %s, %.0f a second", sv.t.name, page, rate))
				rep.HTTPOpen = append(rep.HTTPOpen, httpOpenRun(ctx, sv.t, page, httpSet.reqs[page], rate, cfg.httpDur))
			}
		}
	}
	p2.stopProc()
	if !cfg.skips("storm") && ctx.Err() == nil {
		st := storm(ctx, p, progress)
		rep.Storm = &st
		p.acked += st.Missed
	}

	// Every acked message must be a row: stop the portal, then count.
	p.fleet.close()
	p.fleet = nil
	p.proc.stop()
	rows, err := benchRows(context.Background(), pDB)
	if err != nil {
		return 0, err
	}
	rep.DB = dbCheck{Rows: rows, Acked: p.acked}

	progress("calibrating")
	rep.CalibAfter = calibrate(runDir, 2*time.Second)
	progress("done\n")
	rep.finish()
	rep.print(stdout)
	if cfg.jsonPath != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return 0, err
		}
		if err := os.WriteFile(cfg.jsonPath, b, 0o644); err != nil {
			return 0, err
		}
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	switch {
	case rep.Failed:
		return 1, nil
	case cfg.check && !rep.Noisy && rep.missed() > 0:
		return 1, nil
	}
	return 0, nil
}

// benchRows counts the messages the bench stored: text messages whose
// client ids look like the bench's ("b…-…"; the generator's hold no '-').
// The portal's own auto-replies are not counted.
func benchRows(ctx context.Context, path string) (int64, error) {
	d, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		return 0, err
	}
	defer d.Close()
	var n int64
	err = d.GetContext(ctx, &n, `SELECT COUNT(*) FROM messages WHERE kind = 'text' AND client_id LIKE 'b%-%'`)
	return n, err
}

func gitSHA() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	sha := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		sha += "+dirty"
	}
	return sha
}

// settle waits until the servers are idle, then has the kernel write back
// every dirty page, so that a run does not pay for the one before it: a
// portal copies its WAL into its database for a while after its run (the
// checkpoint), and the kernel writes dirty pages back up to 30 s later,
// both into whichever run comes next. Idle means no server used more than a clock tick of CPU in half a
// second; it gives up waiting after 20 s.
func settle(servers []*server) {
	cpu := func() []time.Duration {
		out := make([]time.Duration, len(servers))
		for i, sv := range servers {
			if st, err := readProc(sv.proc.pid()); err == nil {
				out[i] = st.CPU
			}
		}
		return out
	}
	tick := time.Second / time.Duration(clockTick)
	before := cpu()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		now, busy := cpu(), false
		for i := range now {
			busy = busy || now[i]-before[i] > tick
		}
		if !busy {
			break
		}
		before = now
	}
	syscall.Sync()
}
