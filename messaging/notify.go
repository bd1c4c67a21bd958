package messaging

// Notifications: "you have a new message", by e-mail or SMS, sent from the
// outbox table (migration 0004_outbox.sql).
//
// The rules (DESIGN.md, "Notifications"; UI.md, "Writing"):
//
//   - A staff member's message notifies the family members who may see the
//     conversation now (the Authorizer's Audience) and who chose a channel.
//   - A family member's message notifies the member of staff who answers
//     the family now (Contact.Responder: the caseworker, or the substitute
//     during an absence), if they chose a channel, and only inside their
//     own chat window: outside it the notification waits for the window's
//     next opening, and is dropped if they have read the conversation, or
//     a colleague has answered, by then. When the team answers (no
//     caseworker, or an absence without a substitute) nobody is notified
//     in person; the team lead's waiting list shows the conversation.
//   - Nothing is sent at once: a notification is due after a delay, and it
//     is dropped if the member has read the conversation by then.
//   - At most one notification per conversation and member per half hour:
//     a message while one is pending is folded into it, and a new one is
//     due no earlier than the throttle after the last one sent.
//   - Never at night for families: quiet hours (21:00–08:00 Europe/Oslo)
//     postpone theirs. Staff have their windows instead.
//   - The text is the same few catalog sentences for everyone, in the
//     member's language. It never names child welfare and never carries a
//     name or anything from the message.
//   - The outbox row is the truth, so a crash loses nothing: a row is
//     claimed before it is sent and marked sent only after the server
//     accepted it. A crash between the two sends it again (at least once).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// NotifyChannel is how a person is told about new messages.
type NotifyChannel string

// The channels a notification can go by.
const (
	NotifyEmail NotifyChannel = "email"
	NotifySMS   NotifyChannel = "sms"
)

// The catalog message IDs of a notification's text. The caller's Text
// function must know them in every language.
const (
	NotifySubjectID = "notification_subject"      // e-mail subject
	NotifyTextID    = "notification_text"         // the whole SMS, and the e-mail's first paragraph
	NotifyFooterID  = "notification_email_footer" // "you cannot reply to this e-mail"
)

// Notification is one content-free notice, ready for a sender.
type Notification struct {
	To      string // the e-mail address or mobile number: personal data, never logged
	Lang    string // the text's language, "nb", "nn" or "en"
	Subject string // e-mail only
	Body    string // plain text, lines separated by "\n"
}

// EmailSender delivers a notification by e-mail. SendEmail returns nil
// only once the mail server has accepted the message. An error wrapping
// ErrUndeliverable means trying again will not help.
type EmailSender interface {
	SendEmail(ctx context.Context, n Notification) error
}

// SMSSender delivers a notification by SMS, with the same contract as
// EmailSender.
type SMSSender interface {
	SendSMS(ctx context.Context, n Notification) error
}

// ErrUndeliverable: a notification can never be delivered as addressed
// (the address is malformed or refused, or the channel is not configured).
// The notifier marks it failed without retrying.
var ErrUndeliverable = errors.New("messaging: notification undeliverable")

// NoSMS is the SMSSender of a portal without an SMS gateway. It sends
// nothing: it logs that an SMS was wanted and reports it undeliverable, so
// the outbox row is marked failed instead of pretending it went out.
type NoSMS struct {
	Logger *slog.Logger // nil: discard
}

// SendSMS sends nothing and returns an error wrapping ErrUndeliverable.
func (s NoSMS) SendSMS(ctx context.Context, n Notification) error {
	if s.Logger != nil {
		s.Logger.WarnContext(ctx, "sms notification not sent: no SMS gateway is configured")
	}
	return fmt.Errorf("%w: no SMS gateway configured", ErrUndeliverable)
}

// NotifierConfig configures a Notifier. Email and Text are required; a zero
// value elsewhere means the default shown.
type NotifierConfig struct {
	Email EmailSender // e-mail delivery, normally an *SMTPMailer
	SMS   SMSSender   // SMS delivery (NoSMS)
	// Text returns catalog message id in language lang. Messaging does not
	// import i18n; cmd/portal passes the bundle's translation here, as the
	// portal does for Participant.
	Text func(lang, id string) string
	// DefaultLang is the language of people who have not chosen one
	// (users.lang is ""): the catalogs' default ("nb").
	DefaultLang string

	Logger *slog.Logger     // ids only, never addresses or text (discard)
	Now    func() time.Time // the clock every rule is decided by (time.Now)
	Delay  time.Duration    // from the message until the notification is due (10m)
	Gap    time.Duration    // least time between two notifications per conversation and member (30m)
	// QuietStart and QuietEnd are Europe/Oslo wall-clock minutes after
	// midnight: nothing is sent from QuietStart up to QuietEnd, across
	// midnight if QuietStart > QuietEnd. Both zero means 21:00–08:00.
	QuietStart, QuietEnd int
	MaxAttempts          int           // sends tried before a row is failed (8)
	RetryBase            time.Duration // wait after the first failure, doubled after each (1m)
	RetryMax             time.Duration // longest wait between tries (1h)
	SendTimeout          time.Duration // time allowed for one send (30s)
	PollInterval         time.Duration // how often Run looks for due rows (30s)
	Batch                int           // rows SendDue reads at a time (50)
}

func (c *NotifierConfig) setDefaults() {
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&c.Delay, 10*time.Minute)
	defDur(&c.Gap, 30*time.Minute)
	defDur(&c.RetryBase, time.Minute)
	defDur(&c.RetryMax, time.Hour)
	defDur(&c.SendTimeout, 30*time.Second)
	defDur(&c.PollInterval, 30*time.Second)
	if c.QuietStart == 0 && c.QuietEnd == 0 {
		c.QuietStart, c.QuietEnd = 21*60, 8*60
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.Batch <= 0 {
		c.Batch = 50
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SMS == nil {
		c.SMS = NoSMS{Logger: c.Logger}
	}
	if c.DefaultLang == "" {
		c.DefaultLang = "nb"
	}
}

// Notifier is the notification outbox. As an Observer (Config.Observers)
// it enqueues notifications for staff messages; Run, or SendDue in tests,
// sends those that are due. It is safe for concurrent use, and several
// processes may run it over one database: a row is claimed with a
// conditional update before it is sent.
type Notifier struct {
	db    *sqlx.DB
	auth  Authorizer
	avail *AvailabilityStore // who answers a family, and their windows
	cfg   NotifierConfig
	log   *slog.Logger
}

var _ Observer = (*Notifier)(nil)

// NewNotifier returns a Notifier over an opened, migrated database. auth
// decides who may see a conversation, both when a notification is queued
// and again when it is sent.
func NewNotifier(db *sqlx.DB, auth Authorizer, cfg NotifierConfig) (*Notifier, error) {
	if db == nil || auth == nil || cfg.Email == nil || cfg.Text == nil {
		return nil, errors.New("messaging: NewNotifier needs a database, an authorizer, an e-mail sender and a text function")
	}
	for _, m := range []int{cfg.QuietStart, cfg.QuietEnd} {
		if m < 0 || m >= MinutesPerDay {
			return nil, fmt.Errorf("messaging: quiet hours: %d is not a minute of the day", m)
		}
	}
	if cfg.QuietStart == cfg.QuietEnd && cfg.QuietStart != 0 {
		return nil, errors.New("messaging: quiet hours start and end at the same minute")
	}
	cfg.setDefaults()
	return &Notifier{db: db, auth: auth, avail: NewAvailabilityStore(db), cfg: cfg, log: cfg.Logger}, nil
}

// now is the clock, as stored: UTC, millisecond precision.
func (n *Notifier) now() time.Time {
	return n.cfg.Now().UTC().Truncate(time.Millisecond)
}

// contact is a person's kind, language and notification preference.
type contact struct {
	Kind    string        `db:"kind"` // users.kind: "citizen", "caseworker", ...
	Lang    string        `db:"lang"`
	Channel NotifyChannel `db:"channel"`
	Email   string        `db:"email"`
	SMS     string        `db:"sms"`
}

// address returns where ch reaches the person, or "".
func (c contact) address(ch NotifyChannel) string {
	switch ch {
	case NotifyEmail:
		return c.Email
	case NotifySMS:
		return c.SMS
	}
	return ""
}

// contactOf returns userID's language and contact preference; a person
// without a preference row has channel "none".
func (n *Notifier) contactOf(ctx context.Context, userID string) (contact, error) {
	var c contact
	err := n.db.GetContext(ctx, &c, n.db.Rebind(`
		SELECT u.kind, u.lang,
		       COALESCE(cp.channel, 'none') AS channel,
		       COALESCE(cp.email, '') AS email,
		       COALESCE(cp.sms, '') AS sms
		FROM users u
		LEFT JOIN contact_preferences cp ON cp.user_id = u.id
		WHERE u.id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return contact{Channel: "none"}, nil
	}
	if err != nil {
		return contact{}, dbErr("notify: contact", err)
	}
	return c, nil
}

// familyAudience returns the citizens who may see conversationID now: its
// members whose party rights are not revoked, as the Authorizer says.
func (n *Notifier) familyAudience(ctx context.Context, conversationID string) (map[string]bool, error) {
	rs, err := n.auth.Audience(ctx, conversationID)
	if err != nil {
		return nil, fmt.Errorf("messaging: notify: audience: %w", err)
	}
	fam := make(map[string]bool, len(rs))
	for _, r := range rs {
		if r.Role == RoleCitizen {
			fam[r.UserID] = true
		}
	}
	return fam, nil
}

// MessageStored queues notifications about m, a text message someone of
// senderRole wrote: to the family if staff wrote it, to the member of staff
// who answers if the family did. It is the Observer the Service calls after
// m is committed.
func (n *Notifier) MessageStored(ctx context.Context, m Message, senderRole Role) error {
	// Nobody hears about the portal's automatic replies or notices.
	if m.Kind != KindText {
		return nil
	}
	if senderRole.Staff() {
		return n.notifyFamily(ctx, m)
	}
	return n.notifyResponder(ctx, m)
}

// notifyFamily queues a notification for each family member of m's
// conversation who has a channel, other than m's sender.
func (n *Notifier) notifyFamily(ctx context.Context, m Message) error {
	fam, err := n.familyAudience(ctx, m.ConversationID)
	if err != nil {
		return err
	}
	var errs []error
	for userID := range fam {
		if userID == m.SenderID {
			continue
		}
		c, err := n.contactOf(ctx, userID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c.address(c.Channel) == "" {
			continue // no channel chosen: they see new messages when they sign in
		}
		if err := n.enqueue(ctx, userID, m.ConversationID, m.Seq, c.Channel, n.familyTime); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// notifyResponder queues a notification about a family's message m for
// the member of staff who answers the family now, due inside their chat
// window.
func (n *Notifier) notifyResponder(ctx context.Context, m Message) error {
	ct, err := n.avail.ConversationContact(ctx, m.ConversationID, n.now())
	if err != nil {
		return fmt.Errorf("messaging: notify: %w", err)
	}
	p, sched := ct.Responder()
	if p.ID == "" {
		return nil // the team answers: the team lead's waiting list shows it
	}
	c, err := n.contactOf(ctx, p.ID)
	if err != nil {
		return err
	}
	if c.address(c.Channel) == "" {
		return nil // they see it in the inbox
	}
	return n.enqueue(ctx, p.ID, m.ConversationID, m.Seq, c.Channel, staffTime(sched))
}

// familyTime is when a family's notification due at t may go out: t, or
// the end of the quiet hours it falls in.
func (n *Notifier) familyTime(t time.Time) (time.Time, bool) {
	return n.afterQuiet(t), true
}

// staffTime returns when a staff member's notification due at t may go out
// on schedule sched: t if their chat window is open then, else its next
// opening. ok is false if the window does not open within about a year.
func staffTime(sched Schedule) func(t time.Time) (time.Time, bool) {
	return func(t time.Time) (time.Time, bool) {
		at, ok := sched.NextOpening(ChannelChat, t)
		return at.UTC(), ok
	}
}

// enqueue queues a notification to userID about conversationID up to seq,
// or folds seq into the one already pending. allowed moves a due time to
// the first moment the person may be notified (false: not within a year,
// so nothing is queued).
func (n *Notifier) enqueue(ctx context.Context, userID, conversationID string, seq int64, ch NotifyChannel,
	allowed func(time.Time) (time.Time, bool)) error {
	now := n.now()
	tx, err := n.db.BeginTxx(ctx, nil)
	if err != nil {
		return dbErr("notify: enqueue", err)
	}
	defer tx.Rollback() // no-op after Commit

	// ORDER BY ... LIMIT 1 rather than MAX(): SQLite returns an aggregate
	// as text, and the driver scans a TIMESTAMP column into time.Time only
	// by its declared type.
	var lastSent time.Time
	err = tx.GetContext(ctx, &lastSent, tx.Rebind(`
		SELECT sent_at FROM outbox
		WHERE conversation_id = ? AND user_id = ? AND state = 'sent'
		ORDER BY sent_at DESC
		LIMIT 1`), conversationID, userID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return dbErr("notify: last sent", err)
	}
	due := now.Add(n.cfg.Delay)
	if !lastSent.IsZero() {
		// Not "drop it": a message that arrives just after a notification
		// went out still gets one, but no sooner than the gap allows, and
		// only if it is still unread then.
		due = later(due, lastSent.UTC().Add(n.cfg.Gap))
	}
	due, ok := allowed(due)
	if !ok {
		return nil
	}

	// The partial unique index allows one pending row per conversation
	// and member. If there is one, it is about this message too: raise its
	// seq, so that reading only the older message does not drop it, and
	// keep its due time, so a caseworker writing on does not postpone it.
	_, err = tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO outbox (user_id, conversation_id, seq, channel, due_at, state, attempts, last_error, created_at)
		VALUES (?, ?, ?, ?, ?, 'pending', 0, '', ?)
		ON CONFLICT (conversation_id, user_id) WHERE state = 'pending'
		DO UPDATE SET seq = excluded.seq WHERE outbox.seq < excluded.seq`),
		userID, conversationID, seq, ch, due, now)
	if err != nil {
		return dbErr("notify: enqueue", err)
	}
	if err := tx.Commit(); err != nil {
		return dbErr("notify: enqueue", err)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// quiet reports whether t falls in the quiet hours.
func (n *Notifier) quiet(t time.Time) bool {
	lt := t.In(Oslo())
	m := lt.Hour()*60 + lt.Minute()
	s, e := n.cfg.QuietStart, n.cfg.QuietEnd
	if s < e {
		return s <= m && m < e
	}
	return m >= s || m < e // across midnight
}

// afterQuiet returns t, or if t is in the quiet hours, the instant they end.
func (n *Notifier) afterQuiet(t time.Time) time.Time {
	if !n.quiet(t) {
		return t
	}
	lt := t.In(Oslo())
	y, mo, d := lt.Date()
	e := n.cfg.QuietEnd
	// time.Date normalises a wall-clock time that a DST change skips, and
	// the next day's end is always after t.
	end := time.Date(y, mo, d, e/60, e%60, 0, 0, Oslo())
	if !end.After(t) {
		end = time.Date(y, mo, d+1, e/60, e%60, 0, 0, Oslo())
	}
	return end.UTC()
}

// outboxRow is a pending notification, as the worker reads it.
type outboxRow struct {
	ID             int64         `db:"id"`
	UserID         string        `db:"user_id"`
	ConversationID string        `db:"conversation_id"`
	Seq            int64         `db:"seq"`
	Channel        NotifyChannel `db:"channel"`
	Attempts       int           `db:"attempts"`
}

// SendDue sends every notification that is due now and still wanted, and
// returns how many the servers accepted. During quiet hours it postpones
// what is due to families to their end. A staff member's notification that
// comes due outside their chat window (they changed it, or an absence
// began) is postponed to its next opening. Run calls it on a timer; tests
// call it directly after moving the clock.
//
// It returns an error only for a database failure or a cancelled ctx; a
// failed send is recorded on its row and retried later.
func (n *Notifier) SendDue(ctx context.Context) (sent int, err error) {
	now := n.now()
	if n.quiet(now) {
		_, err := n.db.ExecContext(ctx, n.db.Rebind(`
			UPDATE outbox SET due_at = ?
			WHERE state = 'pending' AND due_at <= ?
			  AND user_id IN (SELECT id FROM users WHERE kind = 'citizen')`), n.afterQuiet(now), now)
		if err != nil {
			return 0, dbErr("notify: postpone for quiet hours", err)
		}
	}
	for {
		var rows []outboxRow
		err := n.db.SelectContext(ctx, &rows, n.db.Rebind(`
			SELECT id, user_id, conversation_id, seq, channel, attempts
			FROM outbox
			WHERE state = 'pending' AND due_at <= ?
			ORDER BY due_at, id
			LIMIT ?`), now, n.cfg.Batch)
		if err != nil {
			return sent, dbErr("notify: due rows", err)
		}
		for _, r := range rows {
			if err := ctx.Err(); err != nil {
				return sent, err
			}
			ok, err := n.deliver(ctx, r, now)
			if err != nil {
				// A database failure: stop here rather than select the
				// same rows again. Run tries again on its next tick.
				return sent, err
			}
			if ok {
				sent++
			}
		}
		// Every row read was sent, dropped, failed or moved past now, so
		// the next query moves on.
		if len(rows) < n.cfg.Batch {
			return sent, nil
		}
	}
}

// deliver sends row r if it is still wanted. It reports whether it was sent.
func (n *Notifier) deliver(ctx context.Context, r outboxRow, now time.Time) (bool, error) {
	reason, c, err := n.stale(ctx, r)
	if err != nil {
		return false, err
	}
	if reason != "" {
		n.log.DebugContext(ctx, "notification dropped", "outbox", r.ID, "reason", reason)
		return false, n.finish(ctx, r.ID, "dropped", reason)
	}
	if c.Kind != string(RoleCitizen) {
		at, ok, err := n.staffOpening(ctx, r, now)
		if err != nil {
			return false, err
		}
		if !ok {
			n.log.DebugContext(ctx, "notification dropped", "outbox", r.ID, "reason", "no window")
			return false, n.finish(ctx, r.ID, "dropped", "no window")
		}
		if at.After(now) {
			_, err := n.db.ExecContext(ctx, n.db.Rebind(`
				UPDATE outbox SET due_at = ? WHERE id = ? AND state = 'pending'`), at, r.ID)
			if err != nil {
				return false, dbErr("notify: postpone to window", err)
			}
			return false, nil
		}
	}

	// Claim the row: count the attempt and move due_at past the send
	// timeout before sending. Another worker's claim, or this one's after a
	// crash, only finds the row again once that time has passed.
	res, err := n.db.ExecContext(ctx, n.db.Rebind(`
		UPDATE outbox SET attempts = attempts + 1, due_at = ?
		WHERE id = ? AND state = 'pending' AND due_at <= ?`),
		now.Add(2*n.cfg.SendTimeout), r.ID, now)
	if err != nil {
		return false, dbErr("notify: claim", err)
	}
	if k, err := res.RowsAffected(); err != nil {
		return false, dbErr("notify: claim", err)
	} else if k == 0 {
		return false, nil // another worker has it
	}
	attempts := r.Attempts + 1

	note, err := n.compose(c, r.Channel)
	if err == nil {
		// A send that has started is finished, even if ctx is cancelled
		// (shutdown): cut off between the server's acceptance and our
		// reading of it, the row would stay unsent and go out twice.
		// SendTimeout bounds the wait.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.SendTimeout)
		if r.Channel == NotifySMS {
			err = n.cfg.SMS.SendSMS(sctx, note)
		} else {
			err = n.cfg.Email.SendEmail(sctx, note)
		}
		cancel()
	}
	// Record the outcome even if ctx was cancelled meanwhile.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err == nil {
		_, err := n.db.ExecContext(wctx, n.db.Rebind(`
			UPDATE outbox SET state = 'sent', sent_at = ?, last_error = ''
			WHERE id = ?`), n.now(), r.ID)
		if err != nil {
			// Sent but not recorded: the row comes due again after the
			// claim and is sent twice. Better twice than lost.
			return true, dbErr("notify: mark sent", err)
		}
		n.log.InfoContext(ctx, "notification sent", "outbox", r.ID, "channel", r.Channel, "attempt", attempts)
		return true, nil
	}

	why := errorSummary(err, note.To)
	switch {
	case errors.Is(err, ErrUndeliverable) || attempts >= n.cfg.MaxAttempts:
		n.log.WarnContext(ctx, "notification failed", "outbox", r.ID, "channel", r.Channel, "attempt", attempts, "err", why)
		return false, n.finish(wctx, r.ID, "failed", why)
	default:
		n.log.WarnContext(ctx, "notification not sent, will retry", "outbox", r.ID, "channel", r.Channel, "attempt", attempts, "err", why)
		_, err = n.db.ExecContext(wctx, n.db.Rebind(`
			UPDATE outbox SET due_at = ?, last_error = ? WHERE id = ? AND state = 'pending'`),
			n.now().Add(n.backoff(attempts)), why, r.ID)
	}
	if err != nil {
		return false, dbErr("notify: record failure", err)
	}
	return false, nil
}

// stale returns why row r is no longer wanted ("" if it is), and the
// person's contact if it is.
func (n *Notifier) stale(ctx context.Context, r outboxRow) (reason string, c contact, err error) {
	c, err = n.contactOf(ctx, r.UserID)
	if err != nil {
		return "", contact{}, err
	}
	// Access is decided again at send time: party rights revoked, or a
	// substitute's absence over, since the message means no notification.
	rs, err := n.auth.Audience(ctx, r.ConversationID)
	if err != nil {
		return "", contact{}, fmt.Errorf("messaging: notify: audience: %w", err)
	}
	if !slices.ContainsFunc(rs, func(x Recipient) bool { return x.UserID == r.UserID && string(x.Role) == c.Kind }) {
		return "no access", contact{}, nil
	}
	// Members' read cursors are in conversation_members, staff's in
	// conversation_reads; no row is nothing read.
	cursor := `SELECT last_read_seq FROM conversation_members WHERE conversation_id = ? AND user_id = ?`
	if c.Kind != string(RoleCitizen) {
		cursor = `SELECT last_read_seq FROM conversation_reads WHERE conversation_id = ? AND user_id = ?`
	}
	var readSeq int64
	err = n.db.GetContext(ctx, &readSeq, n.db.Rebind(cursor), r.ConversationID, r.UserID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", contact{}, dbErr("notify: read cursor", err)
	}
	if readSeq >= r.Seq {
		return "read", contact{}, nil
	}
	if c.Kind != string(RoleCitizen) {
		// A colleague who answered the family has taken it.
		var answered bool
		err = n.db.GetContext(ctx, &answered, n.db.Rebind(`
			SELECT EXISTS (SELECT 1 FROM messages m JOIN users u ON u.id = m.sender_id
			               WHERE m.conversation_id = ? AND m.seq > ? AND m.kind = 'text' AND u.kind <> 'citizen')`),
			r.ConversationID, r.Seq)
		if err != nil {
			return "", contact{}, dbErr("notify: answered", err)
		}
		if answered {
			return "answered", contact{}, nil
		}
	}
	// The address is read now, not when the row was queued: a changed
	// address is used, and a removed one or another channel stops this.
	if c.Channel != r.Channel || c.address(r.Channel) == "" {
		return "channel changed", contact{}, nil
	}
	return "", c, nil
}

// staffOpening returns when staff row r may be sent, by its recipient's
// chat window as it is now: now if open, else the next opening. ok is
// false if the window does not open within about a year.
func (n *Notifier) staffOpening(ctx context.Context, r outboxRow, now time.Time) (at time.Time, ok bool, err error) {
	ct, err := n.avail.ConversationContact(ctx, r.ConversationID, now)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("messaging: notify: %w", err)
	}
	sched, err := n.avail.Schedule(ctx, r.UserID, ct.Office)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("messaging: notify: %w", err)
	}
	at, ok = staffTime(sched)(now)
	return at, ok, nil
}

// finish moves row id to a final state with reason.
func (n *Notifier) finish(ctx context.Context, id int64, state, reason string) error {
	_, err := n.db.ExecContext(ctx, n.db.Rebind(`
		UPDATE outbox SET state = ?, last_error = ? WHERE id = ? AND state = 'pending'`),
		state, reason, id)
	if err != nil {
		return dbErr("notify: finish", err)
	}
	return nil
}

// backoff is the wait after the attempts-th failed try.
func (n *Notifier) backoff(attempts int) time.Duration {
	d := n.cfg.RetryBase
	for i := 1; i < attempts && d < n.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, n.cfg.RetryMax)
}

// forbidden are words a notification must never contain: anyone who sees
// the screen of a phone on the kitchen table must not learn that the
// family is in contact with child welfare.
var forbidden = []string{"barnevern", "child welfare", "child protection"}

// compose makes the content-free text for c in c's language.
func (n *Notifier) compose(c contact, ch NotifyChannel) (Notification, error) {
	lang := c.Lang
	if lang == "" {
		lang = n.cfg.DefaultLang
	}
	note := Notification{To: c.address(ch), Lang: lang}
	text := n.cfg.Text(lang, NotifyTextID)
	if ch == NotifyEmail {
		note.Subject = n.cfg.Text(lang, NotifySubjectID)
		note.Body = text + "\n\n" + n.cfg.Text(lang, NotifyFooterID) + "\n"
	} else {
		note.Body = text
	}
	// A translation mistake must not reach a family: fail closed.
	all := strings.ToLower(note.Subject + "\n" + note.Body)
	for _, w := range forbidden {
		if strings.Contains(all, w) {
			return note, fmt.Errorf("%w: the notification text names child welfare (check the catalogs)", ErrUndeliverable)
		}
	}
	for _, id := range []string{NotifySubjectID, NotifyTextID, NotifyFooterID} {
		if strings.Contains(all, id) {
			return note, fmt.Errorf("%w: the catalogs lack %s", ErrUndeliverable, id)
		}
	}
	return note, nil
}

// errorSummary is err as stored in last_error and logged: without the
// address (a server's reply may quote it) and short.
func errorSummary(err error, to string) string {
	s := err.Error()
	if to != "" {
		s = strings.ReplaceAll(s, to, "<recipient>")
	}
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300])
	}
	return s
}

// Run sends due notifications every PollInterval until ctx is cancelled.
// cmd/portal runs it in its own goroutine and stops it after HTTP shutdown.
// The interval is wall-clock pacing only; what is due is decided by the
// configured clock.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.PollInterval)
	defer t.Stop()
	for {
		if _, err := n.SendDue(ctx); err != nil && ctx.Err() == nil {
			n.log.ErrorContext(ctx, "notifications", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
