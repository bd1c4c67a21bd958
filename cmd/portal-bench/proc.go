package main

// Child processes, what /proc says about them, the file limit, and the
// calibration probes.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a server the bench started. Only these are ever stopped.
type child struct {
	name string
	cmd  *exec.Cmd
	addr string // host:port
	done chan struct{}
	err  error
	log  *tailBuffer
}

// tailBuffer keeps the last bytes a child wrote, for error reports.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 16<<10 {
		t.buf = t.buf[len(t.buf)-8<<10:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startChild starts bin with args and waits until GET readyPath on addr
// answers 200.
// Its output goes to logPath (kept with -keep) and, the last part, to c.log.
func startChild(ctx context.Context, name, addr, readyPath, logPath string, bin string, args ...string) (*child, error) {
	c := &child{name: name, addr: addr, done: make(chan struct{}), log: &tailBuffer{}}
	c.cmd = exec.Command(bin, args...)
	var out io.Writer = c.log
	f, err := os.Create(logPath)
	if err == nil {
		out = io.MultiWriter(c.log, f)
	}
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(runtime.NumCPU()))
	if err := c.cmd.Start(); err != nil {
		if f != nil {
			f.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait() // returns after the output is copied
		if f != nil {
			f.Close()
		}
		close(c.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			return nil, fmt.Errorf("%s exited at start (%v):\n%s", name, c.err, c.log)
		case <-ctx.Done():
			c.stop()
			return nil, ctx.Err()
		default:
		}
		resp, err := http.Get("http://" + addr + readyPath)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.stop()
	return nil, fmt.Errorf("%s not ready after 60s:\n%s", name, c.log)
}

// stop asks the child to shut down (SIGTERM), kills it if it has not
// exited after 15 s, and waits for it.
func (c *child) stop() {
	if c == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// procStat is what /proc tells about a process at one moment.
type procStat struct {
	RSSKB   int64
	CPU     time.Duration // user + system
	Threads int
}

var clockTick = 100 // USER_HZ; 100 on every Linux we run on

func readProc(pid int) (procStat, error) {
	var s procStat
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &s.RSSKB)
		case strings.HasPrefix(line, "Threads:"):
			fmt.Sscanf(strings.TrimPrefix(line, "Threads:"), "%d", &s.Threads)
		}
	}
	f.Close()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name may hold spaces; fields after it are fixed.
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return s, errors.New("bad /proc stat")
	}
	fields := strings.Fields(string(raw[i+1:]))
	if len(fields) < 13 {
		return s, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	s.CPU = time.Duration(ut+st) * time.Second / time.Duration(clockTick)
	return s, nil
}

// raiseNofile raises the limit on open files to want if it may (raising
// the hard limit takes privilege, CAP_SYS_RESOURCE), and otherwise the
// soft limit to the hard one, and returns the limit it got.
func raiseNofile(want uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Max < want {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}); err == nil {
			return want, nil
		}
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
}

// calibration is how much CPU and disk this machine gives right now.
type calibration struct {
	Cores     float64 `json:"cores"`       // parallel SHA-256 throughput ÷ single-thread throughput
	SingleMBs float64 `json:"single_mb_s"` // single-thread SHA-256 MB/s
	FsyncP50  float64 `json:"fsync_p50_ms"`
	FsyncP99  float64 `json:"fsync_p99_ms"`
}

// calibrate runs a CPU probe (d/2 on one goroutine, d/2 on one per CPU)
// and a short fsync probe in dir.
func calibrate(dir string, d time.Duration) calibration {
	buf := make([]byte, 64<<10)
	hash := func(stop time.Time) int64 {
		var n int64
		for time.Now().Before(stop) {
			for i := 0; i < 16; i++ {
				sha256.Sum256(buf)
			}
			n += 16 * int64(len(buf))
		}
		return n
	}
	single := hash(time.Now().Add(d / 2))
	ncpu := runtime.NumCPU()
	var wg sync.WaitGroup
	totals := make([]int64, ncpu)
	stop := time.Now().Add(d / 2)
	for i := 0; i < ncpu; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			totals[i] = hash(stop)
		}()
	}
	wg.Wait()
	var all int64
	for _, t := range totals {
		all += t
	}
	c := calibration{
		Cores:     float64(all) / float64(single),
		SingleMBs: float64(single) / (d / 2).Seconds() / 1e6,
	}
	c.FsyncP50, c.FsyncP99 = fsyncProbe(dir, time.Second)
	return c
}

func fsyncProbe(dir string, d time.Duration) (p50, p99 float64) {
	f, err := os.Create(filepath.Join(dir, "fsync-probe"))
	if err != nil {
		return 0, 0
	}
	defer os.Remove(f.Name())
	defer f.Close()
	page := make([]byte, 4096)
	var lat []time.Duration
	for stop := time.Now().Add(d); time.Now().Before(stop) && len(lat) < 100_000; {
		t := time.Now()
		if _, err := f.WriteAt(page, int64(len(lat)%256)*4096); err != nil {
			return 0, 0
		}
		if err := f.Sync(); err != nil {
			return 0, 0
		}
		lat = append(lat, time.Since(t))
	}
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	return ms(lat[len(lat)/2]), ms(lat[min(len(lat)-1, len(lat)*99/100)])
}

// machineBusy returns the CPU time all processes have used, from /proc/stat
// (every CPU's user, nice, system, irq, softirq and steal time).
func machineBusy() time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system _ _ irq softirq steal
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / time.Duration(clockTick)
}
