// Command portal runs Familieportal.
//
//	portal [serve] [flags]   serve the portal
//	portal demo [flags]      load the demo cast into the database, then serve with demo sign-in
//	portal migrate [flags]   apply database migrations and exit
//	portal apikey create|revoke ...  manage the integration API's keys
//	portal import [flags] DIR        ingest case system messages from files
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
	"strconv"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // Europe/Oslo must not depend on the host

	"github.com/jmoiron/sqlx"

	"familieportal/i18n"
	"familieportal/messaging"
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
	origins        string
	showStaffNames bool
	waitingDays    int
	debugAddr      string

	// Notices of new messages by e-mail; off while smtpAddr is empty.
	smtpAddr     string
	smtpFrom     string
	smtpUser     string
	smtpPassword string
	notifyDelay  time.Duration

	// Sign-in with OpenID Connect. An identity provider is on when its
	// issuer is set; with none, only demo mode can sign anyone in.
	publicURL           string
	pidKey              string
	citizenIssuer       string
	citizenClientID     string
	citizenClientSecret string
	citizenACR          string
	youthACR            string
	staffIssuer         string
	staffClientID       string
	staffClientSecret   string
	staffACR            string
}

// oidcOptions turns the sign-in settings into the portal's options.
func (c config) oidcOptions(opt *portal.Options) {
	opt.PublicURL = c.publicURL
	opt.PIDKey = []byte(c.pidKey)
	if c.citizenIssuer != "" {
		opt.Citizen = &portal.OIDCConfig{
			Issuer: c.citizenIssuer, ClientID: c.citizenClientID, ClientSecret: c.citizenClientSecret,
			MinACR: c.citizenACR, YouthMinACR: c.youthACR,
		}
	}
	if c.staffIssuer != "" {
		opt.Staff = &portal.OIDCConfig{
			Issuer: c.staffIssuer, ClientID: c.staffClientID, ClientSecret: c.staffClientSecret,
			MinACR: c.staffACR,
		}
	}
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
	case "apikey", "import":
		return runAdmin(ctx, cmd, args, getenv, os.Stdout, stderr)
	default:
		return fmt.Errorf("unknown command %q (want serve, demo, migrate, apikey or import)", cmd)
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
	store := portal.NewStore(d)

	// The hub outlives requests, so it gets its own context, cancelled
	// when HTTP shutdown begins: that closes every socket with 1001.
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	hub := messaging.NewHub()
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		hub.Run(hubCtx)
	}()
	defer func() { stopHub(); <-hubDone }()
	// Automatic replies when a family writes while the chat is closed: an
	// observer of the chat that posts through it, hence Attach.
	avail := messaging.NewAvailabilityStore(d)
	replier := messaging.NewAutoReplier(avail, portal.AutoReplyText(bundle), time.Now, log)
	// Notices of new messages (off without --smtp-addr): the outbox
	// hears about staff messages as an observer of the chat, and its
	// worker, with its own context, sends what is due until after HTTP
	// shutdown.
	observers := []messaging.Observer{replier}
	var outbox *messaging.Notifier
	if cfg.smtpAddr != "" {
		mailer, err := messaging.NewSMTPMailer(messaging.SMTPConfig{
			Addr: cfg.smtpAddr, From: cfg.smtpFrom, Username: cfg.smtpUser, Password: cfg.smtpPassword,
		})
		if err != nil {
			return err
		}
		outbox, err = messaging.NewNotifier(d, store.ChatAccess(), messaging.NotifierConfig{
			Email:       mailer,
			SMS:         messaging.NoSMS{Logger: log},
			Text:        func(lang, id string) string { return bundle.Localizer(lang).T(id, nil) },
			DefaultLang: i18n.Default.String(),
			Logger:      log,
			Delay:       cfg.notifyDelay,
		})
		if err != nil {
			return err
		}
		observers = append(observers, outbox)
	}
	log.Info("notifications", "on", outbox != nil)
	outboxCtx, stopOutbox := context.WithCancel(context.Background())
	outboxDone := make(chan struct{})
	go func() {
		defer close(outboxDone)
		if outbox != nil {
			outbox.Run(outboxCtx)
		}
	}()
	defer func() { stopOutbox(); <-outboxDone }()
	// Several instances on one PostgreSQL database: live events travel
	// between them by LISTEN/NOTIFY. With SQLite (one instance) the hub
	// itself is the publisher.
	var pub messaging.Publisher
	if db.Dialect(d) == db.Postgres {
		broker, err := startBroker(ctx, hubCtx, cfg.dbURL, d, store, hub, log)
		if err != nil {
			return err
		}
		defer broker.wait()
		pub = broker
	}
	chat, err := messaging.NewService(messaging.NewStore(d), store.ChatAccess(), hub, messaging.Config{
		Origins:   originsFor(cfg),
		Logger:    log,
		Observers: observers,
		Publisher: pub,
	})
	if err != nil {
		return err
	}
	replier.Attach(chat)
	// The availability frames: a goroutine that wakes at every chat window
	// boundary. It stops with the hub, before the database is closed.
	notifierDone := make(chan struct{})
	go func() {
		defer close(notifierDone)
		messaging.NewAvailabilityNotifier(chat, avail, time.Now, log).Run(hubCtx)
	}()
	defer func() { stopHub(); <-notifierDone }()

	opt := portal.Options{
		Demo:           cmd == "demo",
		TrustedProxies: proxies,
		Chat:           chat,
		WaitingDays:    cfg.waitingDays,
		// Notices are sent only through a configured mail server.
		NotificationsOn: outbox != nil,
	}
	cfg.oidcOptions(&opt)
	app, err := portal.NewServer(store, bundle, log, opt)
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
	if cfg.debugAddr != "" {
		stopDebug, err := serveDebug(cfg.debugAddr, log, d)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	// http.Server.Shutdown neither closes nor waits for hijacked
	// connections (websockets): stopping the hub closes them, chat.Wait
	// below waits for them.
	srv.RegisterOnShutdown(stopHub)
	// Expired sessions are swept, and their sockets closed, until the hub stops.
	go app.SweepSessions(hubCtx, 30*time.Second)

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
	chat.Wait()
	// The outbox worker last: it finishes a send in progress (bounded by
	// its send timeout), and what is still due goes out at the next start.
	stopOutbox()
	<-outboxDone
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// runningBroker is a messaging.PGBroker whose Run goroutine can be waited for.
type runningBroker struct {
	*messaging.PGBroker
	stop context.CancelFunc
	done chan struct{}
}

// wait stops the broker (it stops with the hub's context anyway) and waits
// for it to finish.
func (b runningBroker) wait() {
	b.stop()
	<-b.done
}

// startBroker runs the PostgreSQL broker until hubCtx ends, and returns
// once it listens: sockets served before then could miss events from other
// instances.
func startBroker(ctx, hubCtx context.Context, dbURL string, d *sqlx.DB, store *portal.Store, hub *messaging.Hub, log *slog.Logger) (runningBroker, error) {
	pb, err := messaging.NewPGBroker(messaging.PGBrokerConfig{
		URL: dbURL, DB: d, Store: messaging.NewStore(d), Auth: store.ChatAccess(), Hub: hub, Logger: log,
	})
	if err != nil {
		return runningBroker{}, err
	}
	runCtx, stop := context.WithCancel(hubCtx)
	b := runningBroker{PGBroker: pb, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		pb.Run(runCtx)
	}()
	select {
	case <-pb.Ready():
		return b, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(time.Minute):
		err = errors.New("the chat broker could not LISTEN on PostgreSQL within a minute")
	}
	b.wait()
	return runningBroker{}, err
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
	fs.BoolVar(&c.showStaffNames, "show-staff-names", env("PORTAL_SHOW_STAFF_NAMES", "") == "true",
		"show staff names in a family's \"who has looked at my case\" (default: role and unit only) (PORTAL_SHOW_STAFF_NAMES)")
	waitingDays, err := strconv.Atoi(env("PORTAL_WAITING_DAYS", "2"))
	if err != nil {
		return c, fmt.Errorf("PORTAL_WAITING_DAYS: %w", err)
	}
	fs.IntVar(&c.waitingDays, "waiting-days", waitingDays,
		"working `days` a family may wait for an answer before the team lead's list shows them (PORTAL_WAITING_DAYS)")
	fs.StringVar(&c.origins, "origins", env("PORTAL_ORIGINS", ""),
		"comma-separated `origins` the portal is served from, e.g. https://familie.example.no; websocket handshakes from any other are refused (PORTAL_ORIGINS; default: http://localhost and http://127.0.0.1 on the --addr port)")
	fs.StringVar(&c.debugAddr, "debug-addr", env("PORTAL_DEBUG_ADDR", ""),
		"loopback `host:port` serving Go's profiles (/debug/pprof/) for performance work; empty: off (PORTAL_DEBUG_ADDR)")
	fs.StringVar(&c.logLevel, "log-level", env("PORTAL_LOG_LEVEL", "info"), "debug, info, warn or error (PORTAL_LOG_LEVEL)")
	fs.StringVar(&c.smtpAddr, "smtp-addr", env("PORTAL_SMTP_ADDR", ""),
		"mail server `host:port` for notices of new messages (port 465: TLS, otherwise STARTTLS when offered); empty turns notices off (PORTAL_SMTP_ADDR)")
	fs.StringVar(&c.smtpFrom, "smtp-from", env("PORTAL_SMTP_FROM", ""),
		"sender `address` of notifications, e.g. \"Familieportalen <noreply@familie.example.no>\"; must not name child welfare (PORTAL_SMTP_FROM)")
	fs.StringVar(&c.smtpUser, "smtp-user", env("PORTAL_SMTP_USER", ""),
		"`user` name at the mail server; empty: no login (PORTAL_SMTP_USER)")
	delay, err := time.ParseDuration(env("PORTAL_NOTIFY_DELAY", "10m"))
	if err != nil {
		return c, fmt.Errorf("PORTAL_NOTIFY_DELAY: %w", err)
	}
	fs.DurationVar(&c.notifyDelay, "notify-delay", delay,
		"how long a new message stays unread before its reader is notified (PORTAL_NOTIFY_DELAY)")
	fs.StringVar(&c.publicURL, "public-url", env("PORTAL_PUBLIC_URL", ""),
		"the portal's public https `origin`, for sign-in redirects (PORTAL_PUBLIC_URL)")
	fs.StringVar(&c.citizenIssuer, "citizen-issuer", env("PORTAL_CITIZEN_ISSUER", ""),
		"ID-porten issuer `URL`; citizen sign-in is off without it (PORTAL_CITIZEN_ISSUER)")
	fs.StringVar(&c.citizenClientID, "citizen-client-id", env("PORTAL_CITIZEN_CLIENT_ID", ""),
		"client `id` at ID-porten (PORTAL_CITIZEN_CLIENT_ID)")
	fs.StringVar(&c.citizenACR, "citizen-acr", env("PORTAL_CITIZEN_ACR", "idporten-loa-high"),
		"lowest acr `level` for citizens: idporten-loa-high or idporten-loa-substantial (PORTAL_CITIZEN_ACR)")
	fs.StringVar(&c.youthACR, "youth-acr", env("PORTAL_YOUTH_ACR", "idporten-loa-high"),
		"lowest acr `level` for someone who is youth in all their cases (PORTAL_YOUTH_ACR)")
	fs.StringVar(&c.staffIssuer, "staff-issuer", env("PORTAL_STAFF_ISSUER", ""),
		"staff identity provider's issuer `URL`; staff sign-in is off without it (PORTAL_STAFF_ISSUER)")
	fs.StringVar(&c.staffClientID, "staff-client-id", env("PORTAL_STAFF_CLIENT_ID", ""),
		"client `id` at the staff identity provider (PORTAL_STAFF_CLIENT_ID)")
	fs.StringVar(&c.staffACR, "staff-acr", env("PORTAL_STAFF_ACR", ""),
		"lowest acr `value` for staff; empty accepts any (PORTAL_STAFF_ACR)")
	// Secrets: the environment is not the flag's default, so --help never
	// prints them. Prefer the environment to the flag, which ps shows.
	fs.StringVar(&c.citizenClientSecret, "citizen-client-secret", "",
		"client `secret` at ID-porten (PORTAL_CITIZEN_CLIENT_SECRET)")
	fs.StringVar(&c.staffClientSecret, "staff-client-secret", "",
		"client `secret` at the staff identity provider (PORTAL_STAFF_CLIENT_SECRET)")
	fs.StringVar(&c.pidKey, "pid-key", "",
		"`key` (at least 32 bytes) for hashing national ids; required for citizen sign-in (PORTAL_PID_KEY)")
	fs.StringVar(&c.smtpPassword, "smtp-password", "",
		"`password` at the mail server (PORTAL_SMTP_PASSWORD)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, v := range []struct {
		p   *string
		key string
	}{
		{&c.citizenClientSecret, "PORTAL_CITIZEN_CLIENT_SECRET"},
		{&c.staffClientSecret, "PORTAL_STAFF_CLIENT_SECRET"},
		{&c.pidKey, "PORTAL_PID_KEY"},
		{&c.smtpPassword, "PORTAL_SMTP_PASSWORD"},
	} {
		if *v.p == "" {
			*v.p = getenv(v.key)
		}
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if c.smtpAddr != "" && c.smtpFrom == "" {
		return c, errors.New("--smtp-from (PORTAL_SMTP_FROM) is required with --smtp-addr")
	}
	return c, nil
}

// originsFor returns the configured origins, or for a local address the
// two ways a browser on this machine names it.
func originsFor(c config) []string {
	if c.origins != "" {
		var out []string
		for _, o := range strings.Split(c.origins, ",") {
			if o = strings.TrimSpace(o); o != "" {
				out = append(out, o)
			}
		}
		return out
	}
	_, port, err := net.SplitHostPort(c.addr)
	if err != nil {
		return nil
	}
	return []string{"http://localhost:" + port, "http://127.0.0.1:" + port}
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
