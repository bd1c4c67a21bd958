package messaging_test

// The notification outbox against a real SMTP server (go-smtp, in-process
// on loopback) and a real SQLite file. The clock is injected; nothing
// sleeps. SendDue is synchronous and the test server queues a message
// before it answers the end of DATA, so once SendDue returns, every e-mail
// the server accepted is already in the mailbox.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"familieportal/i18n"
	"familieportal/messaging"
)

// --- the SMTP server ---------------------------------------------------

// email is one message the test server accepted.
type email struct {
	From, To string
	Raw      string
}

// smtpServer is a go-smtp server on 127.0.0.1 that keeps what it accepts.
type smtpServer struct {
	addr  string
	inbox chan email

	tempFail   atomic.Bool // answer DATA with 451
	rejectRcpt atomic.Bool // answer RCPT with 550, quoting the address
	user, pass string      // if set, AUTH PLAIN is required
}

func startSMTP(t *testing.T, user, pass string) *smtpServer {
	t.Helper()
	s := &smtpServer{inbox: make(chan email, 32), user: user, pass: pass}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true // loopback, no TLS in tests
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
		<-done
	})
	return s
}

// expect returns the next accepted e-mail.
func (s *smtpServer) expect(t *testing.T) email {
	t.Helper()
	select {
	case e := <-s.inbox:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no e-mail arrived")
		return email{}
	}
}

// none fails if the server has accepted an e-mail not yet taken.
func (s *smtpServer) none(t *testing.T) {
	t.Helper()
	select {
	case e := <-s.inbox:
		t.Fatalf("unexpected e-mail to %s:\n%s", e.To, e.Raw)
	default:
	}
}

type smtpSession struct {
	s      *smtpServer
	authed bool
	from   string
	to     string
}

func (x *smtpSession) AuthMechanisms() []string {
	if x.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *smtpSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != x.s.user || password != x.s.pass {
			return errors.New("invalid credentials")
		}
		x.authed = true
		return nil
	}), nil
}

func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.user != "" && !x.authed {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if x.s.rejectRcpt.Load() {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox <" + to + "> unknown"}
	}
	x.to = to
	return nil
}

func (x *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if x.s.tempFail.Load() {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	x.s.inbox <- email{From: x.from, To: x.to, Raw: string(b)}
	return nil
}

func (x *smtpSession) Reset()        { x.from, x.to = "", "" }
func (x *smtpSession) Logout() error { return nil }

// --- the fixture -------------------------------------------------------

// clock is the injected time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// notifyEnv is the test world with a chat service whose observer is a
// notifier that sends to a real SMTP server.
type notifyEnv struct {
	*world
	mail   *smtpServer
	clock  *clock
	n      *messaging.Notifier
	svc    *messaging.Service
	bundle *i18n.Bundle
	sent   int // client ids
}

// Addresses of the cast: Sara reads Bokmål (the default), Jonas Nynorsk,
// Leila English; Noah wants SMS; Per and Kari have e-mail addresses too,
// and must never get a notification they are not a member for.
var addresses = map[string]string{
	"sara":  "sara@example.invalid",
	"jonas": "jonas@example.invalid",
	"leila": "leila@example.invalid",
	"per":   "per@example.invalid",
	"kari":  "kari@example.invalid",
}

// tuesday10 is Tuesday 10 March 2026, 10:00 in Oslo: office hours.
var tuesday10 = time.Date(2026, 3, 10, 10, 0, 0, 0, messaging.Oslo())

func newNotifyEnv(t *testing.T, tweak func(*messaging.NotifierConfig)) *notifyEnv {
	t.Helper()
	w := newWorld(t)
	e := &notifyEnv{world: w, mail: startSMTP(t, "", ""), clock: &clock{t: tuesday10}}
	for key, addr := range addresses {
		mustExec(w, `INSERT INTO contact_preferences (user_id, channel, email, updated_at) VALUES (?, 'email', ?, ?)`,
			w.ids[key], addr, time.Now().UTC())
	}
	mustExec(w, `INSERT INTO contact_preferences (user_id, channel, sms, updated_at) VALUES (?, 'sms', '+4790000000', ?)`,
		w.ids["noah"], time.Now().UTC())
	mustExec(w, `UPDATE users SET lang = 'nn' WHERE id = ?`, w.ids["jonas"])
	mustExec(w, `UPDATE users SET lang = 'en' WHERE id = ?`, w.ids["leila"])

	var err error
	e.bundle, err = i18n.NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	mailer, err := messaging.NewSMTPMailer(messaging.SMTPConfig{
		Addr: e.mail.addr, From: "Familieportalen <noreply@familieportal.example>", Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := messaging.NotifierConfig{
		Email: mailer,
		Text:  func(lang, id string) string { return e.bundle.Localizer(lang).T(id, nil) },
		Now:   e.clock.Now,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e.n, err = messaging.NewNotifier(w.db, w.auth, cfg)
	if err != nil {
		t.Fatal(err)
	}

	hub := messaging.NewHub()
	ctx, stop := context.WithCancel(context.Background())
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		hub.Run(ctx)
	}()
	t.Cleanup(func() { stop(); <-hubDone })
	e.svc, err = messaging.NewService(w.store, w.auth, hub, messaging.Config{
		Origins:   []string{"http://127.0.0.1"},
		Observers: []messaging.Observer{e.n},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// send stores a message from who in conversation conv (a "emma-sara" name)
// through the service, as a socket or form post would.
func (e *notifyEnv) send(t *testing.T, who, conv, body string) messaging.Message {
	t.Helper()
	e.sent++
	m, err := e.svc.Send(context.Background(), e.people[who], e.conv[conv], fmt.Sprintf("client-%d", e.sent), body)
	if err != nil {
		t.Fatalf("Send(%s, %s) = %v", who, conv, err)
	}
	return m
}

// sendDue runs the worker once and checks how many e-mails went out.
func (e *notifyEnv) sendDue(t *testing.T, want int) {
	t.Helper()
	got, err := e.n.SendDue(context.Background())
	if err != nil {
		t.Fatalf("SendDue at %s: %v", e.clock.Now().In(messaging.Oslo()).Format(time.DateTime), err)
	}
	if got != want {
		t.Fatalf("SendDue at %s = %d sent, want %d", e.clock.Now().In(messaging.Oslo()).Format(time.DateTime), got, want)
	}
}

// outboxRow is a row of the outbox, for assertions.
type outboxRow struct {
	UserID    string     `db:"user_id"`
	Seq       int64      `db:"seq"`
	Channel   string     `db:"channel"`
	State     string     `db:"state"`
	Attempts  int        `db:"attempts"`
	LastError string     `db:"last_error"`
	DueAt     time.Time  `db:"due_at"`
	SentAt    *time.Time `db:"sent_at"`
}

func (e *notifyEnv) outbox(t *testing.T, conv string) []outboxRow {
	t.Helper()
	var rows []outboxRow
	if err := e.db.Select(&rows, e.db.Rebind(`
		SELECT user_id, seq, channel, state, attempts, last_error, due_at, sent_at
		FROM outbox WHERE conversation_id = ? ORDER BY id`), e.conv[conv]); err != nil {
		t.Fatal(err)
	}
	return rows
}

// only returns the single outbox row of conv.
func (e *notifyEnv) only(t *testing.T, conv string) outboxRow {
	t.Helper()
	rows := e.outbox(t, conv)
	if len(rows) != 1 {
		t.Fatalf("outbox of %s has %d rows, want 1: %+v", conv, len(rows), rows)
	}
	return rows[0]
}

// decoded is an e-mail's subject and body as a reader sees them.
func decoded(t *testing.T, e email) (msg *mail.Message, subject, body string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(e.Raw))
	if err != nil {
		t.Fatalf("parse e-mail: %v\n%s", err, e.Raw)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if cte := msg.Header.Get("Content-Transfer-Encoding"); cte != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding = %q, want quoted-printable", cte)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	return msg, subject, string(b)
}

// mustExec runs a statement written with ? placeholders on either dialect.
func mustExec(w *world, q string, args ...any) {
	w.db.MustExec(w.db.Rebind(q), args...)
}

func oslo10(d time.Duration) time.Time { return tuesday10.Add(d) }

// --- the tests ---------------------------------------------------------

func TestNotifier_contentFreeText(t *testing.T) {
	e := newNotifyEnv(t, nil)
	secret := "Hei Sara! Møtet om Emma hos barnevernet er flyttet til torsdag."
	m := e.send(t, "kari", "emma-sara", secret)
	e.send(t, "kari", "emma-jonas", "Hei Jonas, kan du ringe meg?")
	e.send(t, "ola", "noah-leila", "Hello Leila, the meeting with Noah is moved.")

	e.clock.Set(oslo10(10*time.Minute - time.Second))
	e.sendDue(t, 0) // not due yet
	e.mail.none(t)

	e.clock.Set(oslo10(10 * time.Minute))
	e.sendDue(t, 3)
	got := map[string]email{}
	for range 3 {
		m := e.mail.expect(t)
		got[m.To] = m
	}
	e.mail.none(t)

	for _, c := range []struct{ who, lang string }{{"sara", "nb"}, {"jonas", "nn"}, {"leila", "en"}} {
		t.Run(c.who+" gets the "+c.lang+" text and nothing else", func(t *testing.T) {
			em, ok := got[addresses[c.who]]
			if !ok {
				t.Fatalf("no e-mail to %s; got %v", c.who, got)
			}
			msg, subject, body := decoded(t, em)
			l := e.bundle.Localizer(c.lang)
			if want := l.T(messaging.NotifySubjectID, nil); subject != want {
				t.Errorf("Subject = %q, want %q", subject, want)
			}
			wantBody := l.T(messaging.NotifyTextID, nil) + "\r\n\r\n" + l.T(messaging.NotifyFooterID, nil) + "\r\n"
			if body != wantBody {
				t.Errorf("body = %q, want %q", body, wantBody)
			}
			if got := msg.Header.Get("Content-Language"); got != c.lang {
				t.Errorf("Content-Language = %q, want %q", got, c.lang)
			}
			if got := msg.Header.Get("To"); got != "<"+addresses[c.who]+">" {
				t.Errorf("To = %q, want the bare address", got)
			}
			if got := msg.Header.Get("Auto-Submitted"); got != "auto-generated" {
				t.Errorf("Auto-Submitted = %q", got)
			}
			// Everything a reader could see, raw and decoded, headers
			// included; left out are the Message-ID (random letters) and
			// the reader's own address (which may well hold their name).
			raw := strings.ReplaceAll(em.Raw, addresses[c.who], "")
			if id := msg.Header.Get("Message-ID"); id != "" {
				raw = strings.ReplaceAll(raw, id, "")
			}
			all := strings.ToLower(raw + "\n" + subject + "\n" + body)
			for _, bad := range []string{
				"barnevern", "child welfare", "child protection",
				"sara", "hansen", "jonas", "leila", "ali", "emma", "noah", "kari", "nordmann", "ola", "berg",
				"fjordvik", "møtet", "meeting", "ringe", "torsdag", "bv-",
				e.conv["emma-sara"], m.ID, "case-emma",
			} {
				if strings.Contains(all, strings.ToLower(bad)) {
					t.Errorf("e-mail contains %q:\n%s", bad, em.Raw)
				}
			}
		})
	}
	r := e.only(t, "emma-sara")
	if r.State != "sent" || r.SentAt == nil || r.Attempts != 1 || r.LastError != "" {
		t.Errorf("outbox row = %+v, want sent after one attempt", r)
	}
}

func TestNotifier_throttle(t *testing.T) {
	t.Run("two staff messages in 5 minutes give one e-mail", func(t *testing.T) {
		e := newNotifyEnv(t, nil)
		e.send(t, "kari", "emma-sara", "first")
		e.clock.Add(5 * time.Minute)
		e.send(t, "kari", "emma-sara", "second")
		e.clock.Add(5 * time.Minute) // 10 minutes after the first
		e.sendDue(t, 1)
		e.mail.expect(t)
		e.clock.Add(20 * time.Minute)
		e.sendDue(t, 0)
		e.mail.none(t)
		if r := e.only(t, "emma-sara"); r.Seq != 2 || r.State != "sent" {
			t.Errorf("outbox row = %+v, want one sent row about seq 2", r)
		}
	})

	t.Run("reading only the first message keeps the notification", func(t *testing.T) {
		e := newNotifyEnv(t, nil)
		m1 := e.send(t, "kari", "emma-sara", "first")
		e.clock.Add(2 * time.Minute)
		e.send(t, "kari", "emma-sara", "second")
		if err := e.svc.MarkRead(context.Background(), e.people["sara"], m1.ConversationID, m1.Seq); err != nil {
			t.Fatal(err)
		}
		e.clock.Set(oslo10(10 * time.Minute))
		e.sendDue(t, 1)
		e.mail.expect(t)
	})

	t.Run("a message right after an e-mail waits out the half hour", func(t *testing.T) {
		e := newNotifyEnv(t, nil)
		e.send(t, "kari", "emma-sara", "first")
		e.clock.Set(oslo10(10 * time.Minute))
		e.sendDue(t, 1)
		e.mail.expect(t)

		e.clock.Set(oslo10(15 * time.Minute))
		e.send(t, "kari", "emma-sara", "second")
		e.clock.Set(oslo10(40*time.Minute - time.Millisecond)) // 30 minutes after the e-mail, nearly
		e.sendDue(t, 0)
		e.mail.none(t)
		e.clock.Set(oslo10(40 * time.Minute))
		e.sendDue(t, 1)
		e.mail.expect(t)
		if rows := e.outbox(t, "emma-sara"); len(rows) != 2 || rows[1].SentAt.Sub(*rows[0].SentAt) < 30*time.Minute {
			t.Errorf("outbox = %+v, want two e-mails at least 30 minutes apart", rows)
		}
	})

	t.Run("each conversation and member is throttled on its own", func(t *testing.T) {
		e := newNotifyEnv(t, nil)
		e.send(t, "kari", "emma-sara", "to Sara")
		e.send(t, "kari", "emma-jonas", "to Jonas")
		e.clock.Add(10 * time.Minute)
		e.sendDue(t, 2)
		e.mail.expect(t)
		e.mail.expect(t)
	})
}

func TestNotifier_quietHours(t *testing.T) {
	at := func(y int, m time.Month, d, hh, mm int) time.Time {
		return time.Date(y, m, d, hh, mm, 0, 0, messaging.Oslo())
	}
	tests := []struct {
		name    string
		message time.Time
		wantDue time.Time
	}{
		{"office hours: after the delay", at(2026, 3, 10, 10, 0), at(2026, 3, 10, 10, 10)},
		{"due just before 21:00 is sent then", at(2026, 3, 10, 20, 49), at(2026, 3, 10, 20, 59)},
		{"due at 21:00 waits for the morning", at(2026, 3, 10, 20, 50), at(2026, 3, 11, 8, 0)},
		{"22:30 waits for 08:00 the next day", at(2026, 3, 10, 22, 30), at(2026, 3, 11, 8, 0)},
		{"after midnight waits for 08:00 the same day", at(2026, 3, 11, 1, 15), at(2026, 3, 11, 8, 0)},
		{"due at 07:55 waits until 08:00", at(2026, 3, 11, 7, 45), at(2026, 3, 11, 8, 0)},
		{"night of the change to summer time", at(2026, 3, 28, 23, 0), at(2026, 3, 29, 8, 0)},
		{"night of the change to winter time", at(2026, 10, 24, 23, 0), at(2026, 10, 25, 8, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newNotifyEnv(t, nil)
			e.clock.Set(tc.message)
			e.send(t, "kari", "emma-sara", "hei")
			if r := e.only(t, "emma-sara"); !r.DueAt.Equal(tc.wantDue) {
				t.Errorf("due_at = %s, want %s", r.DueAt.In(messaging.Oslo()), tc.wantDue)
			}
			e.clock.Set(tc.wantDue.Add(-time.Second))
			e.sendDue(t, 0)
			e.mail.none(t)
			e.clock.Set(tc.wantDue)
			e.sendDue(t, 1)
			e.mail.expect(t)
		})
	}

	t.Run("a message at 22:30 is sent at 08:00 next morning, not before", func(t *testing.T) {
		e := newNotifyEnv(t, nil)
		e.clock.Set(at(2026, 3, 10, 22, 30))
		e.send(t, "kari", "emma-sara", "sent late")
		for _, now := range []time.Time{at(2026, 3, 10, 22, 40), at(2026, 3, 10, 23, 59), at(2026, 3, 11, 3, 0), at(2026, 3, 11, 7, 59)} {
			e.clock.Set(now)
			e.sendDue(t, 0)
			e.mail.none(t)
		}
		e.clock.Set(at(2026, 3, 11, 8, 0))
		e.sendDue(t, 1)
		e.mail.expect(t)
	})

	t.Run("a retry that falls due at night is postponed to the morning", func(t *testing.T) {
		e := newNotifyEnv(t, func(c *messaging.NotifierConfig) { c.RetryBase = 2 * time.Hour })
		e.clock.Set(at(2026, 3, 10, 20, 0))
		e.send(t, "kari", "emma-sara", "hei")
		e.mail.tempFail.Store(true)
		e.clock.Set(at(2026, 3, 10, 20, 10))
		e.sendDue(t, 0) // fails; next try 22:10
		e.mail.tempFail.Store(false)
		e.clock.Set(at(2026, 3, 10, 22, 10))
		e.sendDue(t, 0)
		e.mail.none(t)
		if r := e.only(t, "emma-sara"); !r.DueAt.Equal(at(2026, 3, 11, 8, 0)) {
			t.Errorf("due_at = %s, want 08:00 next morning", r.DueAt.In(messaging.Oslo()))
		}
		e.clock.Set(at(2026, 3, 11, 8, 0))
		e.sendDue(t, 1)
		e.mail.expect(t)
	})

	t.Run("quiet hours are configurable", func(t *testing.T) {
		e := newNotifyEnv(t, func(c *messaging.NotifierConfig) { c.QuietStart, c.QuietEnd = 9*60, 11*60 })
		e.send(t, "kari", "emma-sara", "hei") // 10:00, due 10:10: quiet
		if r := e.only(t, "emma-sara"); !r.DueAt.Equal(at(2026, 3, 10, 11, 0)) {
			t.Errorf("due_at = %s, want 11:00", r.DueAt.In(messaging.Oslo()))
		}
	})
}

func TestNotifier_withdrawnWhenRead(t *testing.T) {
	e := newNotifyEnv(t, nil)
	m := e.send(t, "kari", "emma-sara", "hei")
	e.clock.Add(3 * time.Minute)
	if err := e.svc.MarkRead(context.Background(), e.people["sara"], m.ConversationID, m.Seq); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(7 * time.Minute)
	e.sendDue(t, 0)
	e.mail.none(t)
	if r := e.only(t, "emma-sara"); r.State != "dropped" || r.LastError != "read" || r.Attempts != 0 {
		t.Errorf("outbox row = %+v, want dropped as read, never tried", r)
	}
	// A later message is a new notification, not blocked by the dropped one.
	e.send(t, "kari", "emma-sara", "again")
	e.clock.Add(10 * time.Minute)
	e.sendDue(t, 1)
	e.mail.expect(t)
}

// TestNotifier_whoIsNotified: staff messages notify the family members of
// the conversation; family messages notify the caseworker who answers;
// nobody hears about their own message, and nobody outside the audience.
func TestNotifier_whoIsNotified(t *testing.T) {
	e := newNotifyEnv(t, nil)
	// A shared conversation with both of Emma's parents.
	shared, err := e.store.CreateConversation(context.Background(), "case-emma", messaging.ConversationShared,
		[]string{e.ids["sara"], e.ids["jonas"]})
	if err != nil {
		t.Fatal(err)
	}
	e.conv["emma-shared"] = shared.ID
	queued := func(conv string) map[string]string {
		got := map[string]string{}
		for _, r := range e.outbox(t, conv) {
			got[r.UserID] = r.State
		}
		return got
	}

	// Tuesday 10:00, inside Kari's window (the office's hours).
	e.send(t, "sara", "emma-sara", "a parent's own message")
	e.send(t, "sara", "emma-sara", "and another")
	e.send(t, "sara", "emma-shared", "a parent in a shared conversation")
	e.send(t, "noah", "noah-noah", "a youth's own message")
	for _, c := range []string{"emma-sara", "emma-shared"} {
		if got := queued(c); len(got) != 1 || got[e.ids["kari"]] != "pending" {
			t.Errorf("family messages in %s queued %v, want one notification to Kari", c, got)
		}
	}
	if got := queued("noah-noah"); len(got) != 0 {
		t.Errorf("Noah's message queued %v, want nothing: Ola chose no channel", got)
	}

	e.send(t, "ingrid", "emma-shared", "from the team lead")
	if got := queued("emma-shared"); len(got) != 3 || got[e.ids["sara"]] != "pending" || got[e.ids["jonas"]] != "pending" {
		t.Errorf("team lead's message queued %v, want Sara and Jonas besides Kari", got)
	}
	// Per is no member and Ingrid wrote the message: neither is queued.
	if n := e.count(t, `SELECT COUNT(*) FROM outbox WHERE user_id IN (?, ?)`, e.ids["ingrid"], e.ids["per"]); n != 0 {
		t.Errorf("%d notifications to the sender or a non-member, want 0", n)
	}
	// Leila has no say in Noah's private conversation.
	e.send(t, "ola", "noah-noah", "to the youth")
	if r := e.only(t, "noah-noah"); r.UserID != e.ids["noah"] || r.Channel != "sms" {
		t.Errorf("youth's conversation queued %+v, want one SMS to Noah", r)
	}
	e.clock.Add(10 * time.Minute)
	// Kari about emma-sara, Sara and Jonas about the team lead's message.
	// Ingrid answered the shared conversation, so Kari hears nothing of
	// it; Noah's SMS has no gateway.
	e.sendDue(t, 3)
	to := map[string]bool{}
	for range 3 {
		to[e.mail.expect(t).To] = true
	}
	e.mail.none(t)
	if !to["kari@example.invalid"] || !to["sara@example.invalid"] || !to["jonas@example.invalid"] {
		t.Errorf("e-mails went to %v, want Kari, Sara and Jonas", to)
	}
	if got := queued("emma-shared"); got[e.ids["kari"]] != "dropped" {
		t.Errorf("Kari's notification after a colleague answered = %q, want dropped", got[e.ids["kari"]])
	}
	if r := e.only(t, "noah-noah"); r.State != "failed" || !strings.Contains(r.LastError, "no SMS gateway") {
		t.Errorf("SMS without a gateway = %+v, want failed, not sent", r)
	}
}

// fakeSMS is an SMS gateway at the true edge: it keeps what it is given.
type fakeSMS struct {
	mu   sync.Mutex
	sent []messaging.Notification
}

func (f *fakeSMS) SendSMS(_ context.Context, n messaging.Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, n)
	return nil
}

func TestNotifier_sms(t *testing.T) {
	sms := &fakeSMS{}
	e := newNotifyEnv(t, func(c *messaging.NotifierConfig) { c.SMS = sms })
	e.send(t, "ola", "noah-noah", "Hei Noah, vi sees i morgen hos barnevernet.")
	e.clock.Add(10 * time.Minute)
	e.sendDue(t, 1)
	e.mail.none(t)
	want := e.bundle.Localizer("nb").T(messaging.NotifyTextID, nil)
	if len(sms.sent) != 1 || sms.sent[0].To != "+4790000000" || sms.sent[0].Body != want || sms.sent[0].Subject != "" {
		t.Errorf("SMS sent = %+v, want one with only %q", sms.sent, want)
	}
}

func TestNotifier_smtpFailure(t *testing.T) {
	t.Run("a temporary failure is retried later and not marked sent", func(t *testing.T) {
		e := newNotifyEnv(t, nil)
		e.send(t, "kari", "emma-sara", "hei")
		e.mail.tempFail.Store(true)
		e.clock.Add(10 * time.Minute)
		e.sendDue(t, 0)
		e.mail.none(t)
		r := e.only(t, "emma-sara")
		if r.State != "pending" || r.SentAt != nil || r.Attempts != 1 || !strings.Contains(r.LastError, "451") {
			t.Fatalf("after a 451: %+v, want pending, one attempt, the reply code kept", r)
		}
		if want := oslo10(11 * time.Minute); !r.DueAt.Equal(want) {
			t.Errorf("retry due %s, want %s (one minute later)", r.DueAt, want)
		}
		e.sendDue(t, 0) // not again at once
		if r := e.only(t, "emma-sara"); r.Attempts != 1 {
			t.Errorf("attempts = %d right after a failure, want 1", r.Attempts)
		}

		e.clock.Add(time.Minute)
		e.sendDue(t, 0) // second failure: wait doubles
		if r := e.only(t, "emma-sara"); r.Attempts != 2 || !r.DueAt.Equal(oslo10(13*time.Minute)) {
			t.Errorf("after two failures: %+v, want due two minutes later", r)
		}

		e.mail.tempFail.Store(false)
		e.clock.Set(oslo10(13 * time.Minute))
		e.sendDue(t, 1)
		e.mail.expect(t)
		if r := e.only(t, "emma-sara"); r.State != "sent" || r.Attempts != 3 || r.LastError != "" {
			t.Errorf("after success: %+v, want sent on the third attempt", r)
		}
	})

	t.Run("gives up after MaxAttempts", func(t *testing.T) {
		e := newNotifyEnv(t, func(c *messaging.NotifierConfig) { c.MaxAttempts = 3 })
		e.send(t, "kari", "emma-sara", "hei")
		e.mail.tempFail.Store(true)
		for range 3 {
			e.clock.Add(time.Hour)
			e.sendDue(t, 0)
		}
		e.clock.Add(time.Hour)
		e.sendDue(t, 0)
		if r := e.only(t, "emma-sara"); r.State != "failed" || r.Attempts != 3 {
			t.Errorf("after 3 failures: %+v, want failed after 3 attempts", r)
		}
	})

	t.Run("a refused recipient fails at once, without the address in the error", func(t *testing.T) {
		e := newNotifyEnv(t, nil)
		e.send(t, "kari", "emma-sara", "hei")
		e.mail.rejectRcpt.Store(true)
		e.clock.Add(10 * time.Minute)
		e.sendDue(t, 0)
		r := e.only(t, "emma-sara")
		if r.State != "failed" || r.Attempts != 1 || !strings.Contains(r.LastError, "550") {
			t.Errorf("after a 550: %+v, want failed after one attempt", r)
		}
		if strings.Contains(r.LastError, "sara") {
			t.Errorf("last_error %q contains the address", r.LastError)
		}
	})

	t.Run("a server that is down is retried", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		down := ln.Addr().String()
		ln.Close()
		mailer, err := messaging.NewSMTPMailer(messaging.SMTPConfig{Addr: down, From: "noreply@familieportal.example"})
		if err != nil {
			t.Fatal(err)
		}
		e := newNotifyEnv(t, func(c *messaging.NotifierConfig) { c.Email = mailer })
		e.send(t, "kari", "emma-sara", "hei")
		e.clock.Add(10 * time.Minute)
		e.sendDue(t, 0)
		if r := e.only(t, "emma-sara"); r.State != "pending" || r.Attempts != 1 || r.LastError == "" {
			t.Errorf("server down: %+v, want pending with an error", r)
		}
	})
}

func TestNotifier_revokedParty(t *testing.T) {
	t.Run("no notification is queued", func(t *testing.T) {
		e := newNotifyEnv(t, nil)
		mustExec(e.world, `UPDATE parties SET revoked_at = ? WHERE user_id = ?`, time.Now().UTC(), e.ids["sara"])
		e.send(t, "kari", "emma-sara", "hei")
		if rows := e.outbox(t, "emma-sara"); len(rows) != 0 {
			t.Errorf("queued %+v for a revoked party, want nothing", rows)
		}
	})
	t.Run("one queued before the revocation is dropped", func(t *testing.T) {
		e := newNotifyEnv(t, nil)
		e.send(t, "kari", "emma-sara", "hei")
		mustExec(e.world, `UPDATE parties SET revoked_at = ? WHERE user_id = ?`, time.Now().UTC(), e.ids["sara"])
		e.clock.Add(10 * time.Minute)
		e.sendDue(t, 0)
		e.mail.none(t)
		if r := e.only(t, "emma-sara"); r.State != "dropped" || r.LastError != "no access" {
			t.Errorf("outbox row = %+v, want dropped for no access", r)
		}
	})
}

func TestNotifier_contactPreferences(t *testing.T) {
	e := newNotifyEnv(t, nil)
	// Leila chose no channel: nothing queued.
	mustExec(e.world, `UPDATE contact_preferences SET channel = 'none' WHERE user_id = ?`, e.ids["leila"])
	e.send(t, "ola", "noah-leila", "hei")
	if rows := e.outbox(t, "noah-leila"); len(rows) != 0 {
		t.Errorf("queued %+v without a channel, want nothing", rows)
	}
	// Sara changes her address after the message: the new one is used.
	e.send(t, "kari", "emma-sara", "hei")
	mustExec(e.world, `UPDATE contact_preferences SET email = 'sara.ny@example.invalid' WHERE user_id = ?`, e.ids["sara"])
	// Jonas turns notifications off after the message: none is sent.
	e.send(t, "kari", "emma-jonas", "hei")
	mustExec(e.world, `DELETE FROM contact_preferences WHERE user_id = ?`, e.ids["jonas"])
	e.clock.Add(10 * time.Minute)
	e.sendDue(t, 1)
	if got := e.mail.expect(t); got.To != "sara.ny@example.invalid" {
		t.Errorf("e-mail to %s, want the new address", got.To)
	}
	if r := e.only(t, "emma-jonas"); r.State != "dropped" {
		t.Errorf("Jonas's row = %+v, want dropped", r)
	}
}

func TestNotifier_Run(t *testing.T) {
	e := newNotifyEnv(t, nil)
	e.send(t, "kari", "emma-sara", "hei")
	e.clock.Add(10 * time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.n.Run(ctx) // sends what is due at once, then every PollInterval
	}()
	e.mail.expect(t)
	cancel()
	<-done
	if r := e.only(t, "emma-sara"); r.State != "sent" {
		t.Errorf("outbox row = %+v, want sent", r)
	}
}

func TestSMTPMailer_auth(t *testing.T) {
	s := startSMTP(t, "portal", "s3cret")
	n := messaging.Notification{To: "sara@example.invalid", Lang: "nb", Subject: "Emne", Body: "Tekst\n"}
	for _, tc := range []struct {
		name, pass string
		ok         bool
	}{
		{"right password", "s3cret", true},
		{"wrong password", "nope", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := messaging.NewSMTPMailer(messaging.SMTPConfig{
				Addr: s.addr, From: "noreply@familieportal.example", Username: "portal", Password: tc.pass,
			})
			if err != nil {
				t.Fatal(err)
			}
			err = m.SendEmail(context.Background(), n)
			if (err == nil) != tc.ok {
				t.Fatalf("SendEmail = %v, want ok %v", err, tc.ok)
			}
			if err != nil && errors.Is(err, messaging.ErrUndeliverable) {
				t.Errorf("SendEmail = %v: a login failure is worth retrying, not undeliverable", err)
			}
			if tc.ok {
				if got := s.expect(t); got.From != "noreply@familieportal.example" || got.To != n.To {
					t.Errorf("envelope %s -> %s", got.From, got.To)
				}
			}
			s.none(t)
		})
	}
}

func TestNewSMTPMailer_config(t *testing.T) {
	for _, tc := range []struct {
		addr, from string
		ok         bool
	}{
		{"mail.example:587", "Familieportalen <noreply@familie.example>", true},
		{"mail.example:587", "Fjordvik barneverntjeneste <noreply@familie.example>", false},
		{"mail.example:587", "noreply@barnevern.fjordvik.example", false},
		{"mail.example", "noreply@familie.example", false},
		{"mail.example:587", "not an address", false},
	} {
		_, err := messaging.NewSMTPMailer(messaging.SMTPConfig{Addr: tc.addr, From: tc.from})
		if (err == nil) != tc.ok {
			t.Errorf("NewSMTPMailer(%q, %q) = %v, want ok %v", tc.addr, tc.from, err, tc.ok)
		}
	}
}

func TestNotificationCatalogs(t *testing.T) {
	b, err := i18n.NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range i18n.Supported() {
		l := b.Localizer(lang)
		for _, id := range []string{messaging.NotifySubjectID, messaging.NotifyTextID, messaging.NotifyFooterID} {
			if !strings.Contains(strings.Join(b.Keys(lang), " "), id) {
				t.Errorf("%s: %s missing", lang, id)
			}
			s := strings.ToLower(l.T(id, nil))
			for _, bad := range []string{"barnevern", "child welfare", "child protection", "{{"} {
				if strings.Contains(s, bad) {
					t.Errorf("%s %s = %q contains %q", lang, id, s, bad)
				}
			}
		}
	}
}

func TestNotifier_textThatNamesChildWelfareIsNeverSent(t *testing.T) {
	e := newNotifyEnv(t, nil)
	real := e.bundle
	e2, err := messaging.NewNotifier(e.db, e.auth, messaging.NotifierConfig{
		Email: mustMailer(t, e.mail.addr),
		Text: func(lang, id string) string {
			if id == messaging.NotifyTextID {
				return "Du har en ny melding fra barneverntjenesten."
			}
			return real.Localizer(lang).T(id, nil)
		},
		Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.MessageStored(context.Background(), e.send(t, "kari", "emma-jonas", "hei"), messaging.RoleCaseworker); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(10 * time.Minute)
	if n, err := e2.SendDue(context.Background()); err != nil || n != 0 {
		t.Fatalf("SendDue = %d, %v; want nothing sent", n, err)
	}
	e.mail.none(t)
	if r := e.only(t, "emma-jonas"); r.State != "failed" {
		t.Errorf("outbox row = %+v, want failed", r)
	}
}

func mustMailer(t *testing.T, addr string) *messaging.SMTPMailer {
	t.Helper()
	m, err := messaging.NewSMTPMailer(messaging.SMTPConfig{Addr: addr, From: "noreply@familieportal.example"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestNotifier_staffOnlyInsideTheirWindows: a caseworker is notified of a
// family's message only inside their own chat window; what arrives outside
// it waits for the window to open, folded into one notification, and a
// window changed after the message was queued is respected at send time.
func TestNotifier_staffOnlyInsideTheirWindows(t *testing.T) {
	e := newNotifyEnv(t, nil)
	avail := messaging.NewAvailabilityStore(e.db)
	save := func(who string, st messaging.Settings) {
		t.Helper()
		if errs, err := avail.SaveSettings(context.Background(), e.ids[who], st); err != nil || len(errs) > 0 {
			t.Fatalf("SaveSettings(%s) = %v, %v", who, errs, err)
		}
	}
	at := func(month time.Month, day, hh, mm int) time.Time {
		return time.Date(2026, month, day, hh, mm, 0, 0, messaging.Oslo())
	}
	// Kari chats on weekdays 08:00–15:30, and on Tuesday evenings too,
	// when the young people she follows are out of school.
	var windows []messaging.Window
	for wd := time.Monday; wd <= time.Friday; wd++ {
		windows = append(windows, messaging.Window{Weekday: wd, StartMin: 8 * 60, EndMin: 15*60 + 30})
	}
	windows = append(windows, messaging.Window{Weekday: time.Tuesday, StartMin: 21 * 60, EndMin: 22 * 60})
	kari := messaging.Settings{Windows: map[messaging.Channel][]messaging.Window{messaging.ChannelChat: windows}}
	save("kari", kari)

	// Friday 13 March 15:25: the notification would be due at 15:35,
	// after her window closes, so it waits for Monday 08:00.
	e.clock.Set(at(time.March, 13, 15, 25))
	e.send(t, "sara", "emma-sara", "before the weekend")
	if r := e.only(t, "emma-sara"); r.UserID != e.ids["kari"] || !r.DueAt.Equal(at(time.March, 16, 8, 0)) {
		t.Fatalf("queued %+v, want one notification to Kari due Monday 08:00", r)
	}
	for _, now := range []time.Time{at(time.March, 13, 15, 35), at(time.March, 14, 12, 0), at(time.March, 15, 23, 0)} {
		e.clock.Set(now)
		e.send(t, "sara", "emma-sara", "over the weekend")
		e.sendDue(t, 0)
	}
	e.clock.Set(at(time.March, 16, 7, 59))
	e.sendDue(t, 0)
	e.mail.none(t)
	e.clock.Set(at(time.March, 16, 8, 0))
	e.sendDue(t, 1)
	if m := e.mail.expect(t); m.To != "kari@example.invalid" {
		t.Errorf("e-mail to %s, want Kari", m.To)
	}
	if r := e.only(t, "emma-sara"); r.Seq != 4 || r.State != "sent" {
		t.Errorf("the weekend's four messages gave %+v, want one sent notification up to seq 4", r)
	}

	// Monday 10:00, open: due at 10:10. Kari then closes 10:00–12:00 for
	// a meeting; at 10:10 the notification is moved to 12:00, not sent.
	e.clock.Set(at(time.March, 16, 10, 0))
	e.send(t, "sara", "emma-sara", "a question")
	kari.Exceptions = []messaging.Exception{{Date: messaging.DateOf(at(time.March, 16, 0, 0)), Channel: messaging.ChannelChat, StartMin: 10 * 60, EndMin: 12 * 60}}
	save("kari", kari)
	e.clock.Set(at(time.March, 16, 10, 10))
	e.sendDue(t, 0)
	rows := e.outbox(t, "emma-sara")
	if r := rows[len(rows)-1]; r.State != "pending" || !r.DueAt.Equal(at(time.March, 16, 12, 0)) || r.Attempts != 0 {
		t.Errorf("after the window closed: %+v, want pending, due 12:00, not tried", r)
	}
	e.clock.Set(at(time.March, 16, 12, 0))
	e.sendDue(t, 1)
	e.mail.expect(t)

	// Tuesday 20:55: due 21:05, inside her evening window. Staff are not
	// held by the families' quiet hours; their window decides.
	e.clock.Set(at(time.March, 17, 20, 55))
	e.send(t, "sara", "emma-sara", "in the evening")
	e.clock.Set(at(time.March, 17, 21, 5))
	e.sendDue(t, 1)
	e.mail.expect(t)

	// Kari away with Ola as her substitute: Ola is notified, in his
	// window (the office's hours), and Kari is not. (This test's
	// authorizer gives Ola the case through case_caseworkers.)
	mustExec(e.world, `INSERT INTO contact_preferences (user_id, channel, email, updated_at) VALUES (?, 'email', 'ola@example.invalid', ?)`,
		e.ids["ola"], time.Now().UTC())
	mustExec(e.world, `INSERT INTO case_caseworkers (case_id, user_id, is_primary) VALUES ('case-emma', ?, FALSE)`, e.ids["ola"])
	mustExec(e.world, `UPDATE users SET office_id = 'o1' WHERE kind <> 'citizen'`)
	kari.Absences = []messaging.Absence{{From: messaging.DateOf(at(time.March, 18, 0, 0)), To: messaging.DateOf(at(time.March, 20, 0, 0)), SubstituteID: e.ids["ola"]}}
	save("kari", kari)
	e.clock.Set(at(time.March, 18, 7, 0))
	e.send(t, "sara", "emma-sara", "to whoever answers")
	rows = e.outbox(t, "emma-sara")
	if r := rows[len(rows)-1]; r.UserID != e.ids["ola"] || !r.DueAt.Equal(at(time.March, 18, 8, 0)) {
		t.Fatalf("during Kari's absence: %+v, want Ola, due 08:00", r)
	}
	e.clock.Set(at(time.March, 18, 8, 0))
	e.sendDue(t, 1)
	if m := e.mail.expect(t); m.To != "ola@example.invalid" {
		t.Errorf("e-mail to %s, want Ola", m.To)
	}
	e.mail.none(t)
}
