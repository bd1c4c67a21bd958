package messaging

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"
)

// SMTPConfig configures an SMTPMailer.
type SMTPConfig struct {
	// Addr is the mail server, host:port. Port 465 means TLS from the
	// start; on any other port STARTTLS is used when the server offers it.
	Addr string
	// From is the sender, e.g. "Familieportalen <noreply@familie.example.no>".
	// It must not name child welfare (checked).
	From string
	// Username and Password log in with AUTH PLAIN; empty means no login.
	// net/smtp sends them only over TLS or to a server on localhost.
	Username, Password string
	// Timeout bounds one delivery, from dialling to QUIT (30s).
	Timeout time.Duration
	// TLS is the TLS configuration; nil means the system's roots and the
	// host of Addr as the server name.
	TLS *tls.Config
}

// SMTPMailer is the EmailSender that hands notifications to a mail server
// over SMTP, one connection per message (a few a minute at most).
type SMTPMailer struct {
	addr, host  string
	implicitTLS bool
	from        *mail.Address
	helo        string // the From domain: our name in EHLO and Message-ID
	user, pass  string
	timeout     time.Duration
	tls         *tls.Config
}

var _ EmailSender = (*SMTPMailer)(nil)

// NewSMTPMailer checks cfg and returns a mailer. It does not connect.
func NewSMTPMailer(cfg SMTPConfig) (*SMTPMailer, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("messaging: smtp address %q: want host:port", cfg.Addr)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("messaging: smtp from %q: %w", cfg.From, err)
	}
	// The sender shows in every inbox next to the subject.
	for _, w := range forbidden {
		if strings.Contains(strings.ToLower(cfg.From), w) {
			return nil, fmt.Errorf("messaging: smtp from %q names child welfare; notifications must not", cfg.From)
		}
	}
	at := strings.LastIndexByte(from.Address, '@')
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	t := cfg.TLS
	if t == nil {
		t = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return &SMTPMailer{
		addr: cfg.Addr, host: host, implicitTLS: port == "465",
		from: from, helo: from.Address[at+1:],
		user: cfg.Username, pass: cfg.Password,
		timeout: cfg.Timeout, tls: t,
	}, nil
}

// SendEmail delivers n and returns nil once the server has accepted it
// (its reply to the end of DATA). A refused recipient (a 5xx reply to
// RCPT) or a malformed address wraps ErrUndeliverable; anything else is
// worth retrying.
func (m *SMTPMailer) SendEmail(ctx context.Context, n Notification) error {
	to, err := mail.ParseAddress(n.To)
	if err != nil || to.Name != "" {
		return fmt.Errorf("%w: malformed e-mail address", ErrUndeliverable)
	}
	msg, err := m.message(to.Address, n, time.Now())
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("smtp dial: %w", err)
	}
	// net/smtp has no contexts: a deadline bounds every read and write,
	// and cancelling ctx closes the connection under it.
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if m.implicitTLS {
		conn = tls.Client(conn, m.tls)
	}
	c, err := smtp.NewClient(conn, m.host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(m.helo); err != nil {
		return fmt.Errorf("smtp ehlo: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !m.implicitTLS {
		if err := c.StartTLS(m.tls); err != nil {
			return fmt.Errorf("smtp starttls: %w", err)
		}
	}
	if m.user != "" {
		if err := c.Auth(smtp.PlainAuth("", m.user, m.pass, m.host)); err != nil {
			return fmt.Errorf("smtp auth: %w", err)
		}
	}
	if err := c.Mail(m.from.Address); err != nil {
		return fmt.Errorf("smtp mail from: %w", err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		var te *textproto.Error
		if errors.As(err, &te) && te.Code >= 500 {
			return fmt.Errorf("%w: smtp rcpt: %w", ErrUndeliverable, err)
		}
		return fmt.Errorf("smtp rcpt: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		w.Close()
		return fmt.Errorf("smtp data: %w", err)
	}
	// Close sends the final dot and reads the server's reply: nil here is
	// the acceptance the outbox waits for.
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	// Accepted; a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// message renders n as an RFC 5322 message to the address to. The headers
// carry no name (To is the bare address) and nothing from the chat.
func (m *SMTPMailer) message(to string, n Notification, now time.Time) ([]byte, error) {
	var b bytes.Buffer
	header := func(k, v string) {
		b.WriteString(k + ": " + v + "\r\n")
	}
	header("From", m.from.String())
	header("To", (&mail.Address{Address: to}).String())
	header("Subject", mime.QEncoding.Encode("utf-8", n.Subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+newID()+"@"+m.helo+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	if n.Lang != "" {
		header("Content-Language", n.Lang)
	}
	// RFC 3834: no out-of-office replies to us.
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body := strings.ReplaceAll(strings.ReplaceAll(n.Body, "\r\n", "\n"), "\n", "\r\n")
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
