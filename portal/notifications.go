package portal

// The notification settings page: whether, and to which e-mail address, a
// person is told that a new message has arrived (messaging/notify.go sends
// the notices). Families and staff alike choose for themselves; nobody sets
// it for anyone else. The address is personal data: it is shown only to its
// owner and never logged.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"

	"github.com/labstack/echo/v4"

	"familieportal/messaging"
)

// NotificationContact is a person's choice of notices.
type NotificationContact struct {
	Channel messaging.NotifyChannel `db:"channel"` // "email", or "" for none
	Email   string                  `db:"email"`
}

// NotificationContact returns userID's choice; nothing chosen is none.
func (s *Store) NotificationContact(ctx context.Context, userID string) (NotificationContact, error) {
	var c NotificationContact
	err := s.db.GetContext(ctx, &c, s.db.Rebind(`
		SELECT channel, email FROM contact_preferences WHERE user_id = ?`), userID)
	if errors.Is(err, sql.ErrNoRows) {
		return NotificationContact{}, nil
	}
	if err != nil {
		return NotificationContact{}, fmt.Errorf("notification contact: %w", err)
	}
	if c.Channel != messaging.NotifyEmail {
		c.Channel = ""
	}
	return c, nil
}

// SaveNotificationContact stores userID's choice, which the caller has
// validated. A person who turns notices off keeps no address with us.
func (s *Store) SaveNotificationContact(ctx context.Context, userID string, c NotificationContact) error {
	channel, email := "none", ""
	if c.Channel == messaging.NotifyEmail {
		channel, email = string(messaging.NotifyEmail), c.Email
	}
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`
		INSERT INTO contact_preferences (user_id, channel, email, sms, updated_at)
		VALUES (?, ?, ?, '', ?)
		ON CONFLICT (user_id) DO UPDATE
		SET channel = excluded.channel, email = excluded.email, sms = excluded.sms, updated_at = excluded.updated_at`),
		userID, channel, email, s.now())
	if err != nil {
		return fmt.Errorf("save notification contact: %w", err)
	}
	return nil
}

// validEmail reports whether addr is one plain e-mail address.
func validEmail(addr string) bool {
	if len(addr) > 254 || strings.ContainsAny(addr, " <>\"") {
		return false
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || a.Name != "" {
		return false
	}
	_, domain, _ := strings.Cut(addr, "@")
	return strings.Contains(domain, ".") && !strings.HasSuffix(domain, ".")
}

// notificationsPage is what notifications.html shows.
type notificationsPage struct {
	On       bool // the portal sends notices at all
	Staff    bool
	Contact  NotificationContact
	Saved    bool
	EmailErr string
}

// handleNotifications serves GET /notifications.
func (s *Server) handleNotifications(c echo.Context) error {
	u, _ := userFrom(c)
	contact, err := s.store.NotificationContact(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	return s.renderNotifications(c, http.StatusOK, notificationsPage{
		Contact: contact, Saved: c.QueryParam("saved") == "1",
	})
}

// handleNotificationsSave serves POST /notifications. Bad input changes
// nothing and is answered with the form and its error.
func (s *Server) handleNotificationsSave(c echo.Context) error {
	u, _ := userFrom(c)
	if !s.opt.NotificationsOn {
		return ErrNotFound
	}
	contact := NotificationContact{Email: strings.TrimSpace(c.FormValue("email"))}
	switch c.FormValue("channel") {
	case "email":
		contact.Channel = messaging.NotifyEmail
		if !validEmail(contact.Email) {
			return s.renderNotifications(c, http.StatusBadRequest, notificationsPage{
				Contact: contact, EmailErr: s.localizer(c).T("notify_error_email", nil),
			})
		}
	case "none":
	default:
		return ErrInvalid
	}
	if err := s.store.SaveNotificationContact(c.Request().Context(), u.ID, contact); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/notifications?saved=1")
}

func (s *Server) renderNotifications(c echo.Context, status int, v notificationsPage) error {
	u, _ := userFrom(c)
	v.On, v.Staff = s.opt.NotificationsOn, u.Kind.Staff()
	return s.render(c, status, "notifications.html", s.localizer(c).T("notify_title", nil), v)
}
