// Command portal runs Familieportal.
//
//	portal [serve] [flags]   serve the portal
//	portal demo [flags]      load the demo cast into the database, then serve with demo sign-in
//	portal migrate [flags]   apply database migrations and exit
//
// Every setting is a flag whose default comes from an environment variable;
// `portal --help` lists them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // Europe/Oslo must not depend on the host

	"familieportal/i18n"
	"familieportal/portal"
	"familieportal/portal/db"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "portal:", err)
		}
		os.Exit(1)
	}
}

// config is everything run reads from flags and the environment.
type config struct {
	addr           string
	dbURL          string
	syncFull       bool
	trustedProxies string
	demoData       string
	shutdownWait   time.Duration
	logLevel       string
}

// run is main without the process: tests call it with their own args,
// environment and context, and cancel ctx to stop it.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve", "demo", "migrate":
	default:
		return fmt.Errorf("unknown command %q (want serve, demo or migrate)", cmd)
	}
	cfg, err := parseFlags(cmd, args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.logLevel)

	d, err := db.Open(ctx, cfg.dbURL, db.Options{SyncFull: cfg.syncFull})
	if err != nil {
		return err
	}
	defer d.Close()
	if cmd == "migrate" {
		log.Info("migrations applied")
		return nil
	}
	if cmd == "demo" {
		if err := portal.LoadDemo(ctx, d, os.DirFS(cfg.demoData), time.Now()); err != nil {
			return err
		}
	}
	bundle, err := i18n.NewBundle()
	if err != nil {
		return err
	}
	var proxies []string
	if cfg.trustedProxies != "" {
		proxies = strings.Split(cfg.trustedProxies, ",")
	}
	app, err := portal.NewServer(portal.NewStore(d), bundle, log, portal.Options{
		Demo:           cmd == "demo",
		TrustedProxies: proxies,
	})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           app,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "demo", cmd == "demo")

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}

	// Shutdown order: stop being ready, then stop accepting and finish the
	// requests in flight, then close the database (deferred above).
	log.Info("shutting down")
	app.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownWait)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

func parseFlags(cmd string, args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var c config
	fs := flag.NewFlagSet("portal "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", env("PORTAL_ADDR", "localhost:8080"), "listen `address` (PORTAL_ADDR)")
	fs.StringVar(&c.dbURL, "db", env("PORTAL_DB", "portal.db"), "database: a SQLite `file` or a postgres:// URL (PORTAL_DB)")
	fs.BoolVar(&c.syncFull, "sync-full", env("PORTAL_SYNC_FULL", "") == "true",
		"SQLite: flush every commit to disk, surviving power loss as well as crashes (PORTAL_SYNC_FULL)")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", env("PORTAL_TRUSTED_PROXIES", ""),
		"comma-separated CIDR `ranges` of reverse proxies whose X-Forwarded-For is trusted (PORTAL_TRUSTED_PROXIES)")
	fs.StringVar(&c.demoData, "demo-data", env("PORTAL_DEMO_DATA", "testdata/demo"),
		"`folder` with the demo cast, for the demo command (PORTAL_DEMO_DATA)")
	wait, err := time.ParseDuration(env("PORTAL_SHUTDOWN_WAIT", "10s"))
	if err != nil {
		return c, fmt.Errorf("PORTAL_SHUTDOWN_WAIT: %w", err)
	}
	fs.DurationVar(&c.shutdownWait, "shutdown-wait", wait, "how long shutdown waits for requests in flight (PORTAL_SHUTDOWN_WAIT)")
	fs.StringVar(&c.logLevel, "log-level", env("PORTAL_LOG_LEVEL", "info"), "debug, info, warn or error (PORTAL_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return c, nil
}

// redactedKeys are attribute names whose values never reach the log: a
// mistake elsewhere must not write personal data.
var redactedKeys = map[string]bool{
	"body": true, "text": true, "pid": true, "fnr": true, "name": true, "title": true,
	"token": true, "cookie": true, "email": true, "phone": true, "content": true,
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: l,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if redactedKeys[strings.ToLower(a.Key)] {
				return slog.String(a.Key, "[redacted]")
			}
			return a
		},
	}))
}
