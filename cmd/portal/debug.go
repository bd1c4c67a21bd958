package main

import (
	"errors"
	"expvar"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"
)

// publishVars publishes the values /debug/vars adds, once per process
// (expvar's names are global); debugDB is the database they describe.
var (
	publishVars sync.Once
	debugDB     atomic.Pointer[sqlx.DB]
)

// serveDebug serves Go's runtime profiles on addr, which must be a
// loopback address: profiles show the program's internals, and a CPU
// profile costs the server time, so they are for someone on the machine
// (cmd/portal-bench, an operator with ssh), never for the network. It
// returns a function that stops the listener.
//
// Beside the profiles, /debug/vars has the runtime's memory statistics,
// the goroutine count and d's connection pool as JSON (cmd/portal-bench
// reads them to tell the Go side of a socket's memory from the rest).
func serveDebug(addr string, log *slog.Logger, d *sqlx.DB) (stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, errors.New("--debug-addr must be a loopback address, such as 127.0.0.1:6060")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// Where goroutines wait (channels, locks, the write gate) is as telling
	// as where they run. Sampling waits costs every wait a little, so it
	// starts with the first request for either profile: ask for the waits
	// of the next half minute with ?seconds=30.
	var sampleWaits sync.Once
	waits := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			sampleWaits.Do(func() {
				// Waits of 100 µs and more, one in five contended mutexes.
				runtime.SetBlockProfileRate(int(100 * time.Microsecond))
				runtime.SetMutexProfileFraction(5)
			})
			pprof.Handler(name).ServeHTTP(w, r)
		}
	}
	mux.HandleFunc("/debug/pprof/block", waits("block"))
	mux.HandleFunc("/debug/pprof/mutex", waits("mutex"))
	debugDB.Store(d)
	publishVars.Do(func() {
		expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
		expvar.Publish("db", expvar.Func(func() any {
			if d := debugDB.Load(); d != nil {
				return d.Stats()
			}
			return nil
		}))
	})
	mux.Handle("/debug/vars", expvar.Handler())
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("profiles served", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}
