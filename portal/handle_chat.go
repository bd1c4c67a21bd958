package portal

import (
	"context"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"familieportal/messaging"
)

// historyLen is how many of the latest messages a page shows.
const historyLen = 50

// participant is the signed-in user as the chat sees them: made from the
// session, never from anything the client sends.
func (s *Server) participant(c echo.Context) messaging.Participant {
	u, _ := userFrom(c)
	l := s.localizer(c)
	return messaging.Participant{
		UserID:    u.ID,
		Name:      u.Name,
		Role:      messaging.Role(u.Kind),
		Translate: func(id string) string { return l.T(id, nil) },
	}
}

// handleSocket serves GET /ws: one websocket per tab carrying all of the
// user's conversations (protocol v1, docs/protocol.md). It returns once the
// socket is upgraded; the socket runs on the chat service's goroutines.
// The chat service checks the Origin and authorizes every frame through
// the same access check as the pages.
func (s *Server) handleSocket(c echo.Context) error {
	if s.chat == nil {
		return ErrNotFound
	}
	p := s.participant(c)
	if ck, err := c.Cookie(sessionCookie); err == nil && ck.Value != "" {
		// Writing and typing are use, like page loads: they keep the
		// session from idling out while a family is in a long chat.
		token := ck.Value
		p.Active = func(ctx context.Context) {
			if err := s.store.TouchSession(ctx, token); err != nil {
				s.log.WarnContext(ctx, "keep session alive", "err", err)
			}
		}
	}
	if err := s.chat.ServeConn(c.Response(), c.Request(), p); err != nil {
		// The handshake was refused (bad Origin, too many sockets) and the
		// upgrader has already answered; nothing more to write.
		s.log.DebugContext(c.Request().Context(), "websocket refused", "err", err)
	}
	return nil
}

// chatView is one conversation as a page shows it.
type chatView struct {
	ID       string
	CaseID   string
	Title    string
	Messages []chatMessage
	LastSeq  int64
	Viewer   string // the viewer's user id: their own messages are on the right
	Staff    bool
	Draft    string // text to put back in the write box after an error
	Error    string // a localized error about the last post
	ClientID string // a fresh idempotency key for the no-JavaScript form
	NoCase   bool   // the viewer may not open the case (a substitute): no link to it
}

// Lines is the chat's messages as the "chat" template's list items, the
// same markup as static/js/app.js makes for a live message. It is written
// here rather than in the template: a page shows up to historyLen messages,
// and each of a template's actions is a reflective call and a field lookup
// through the embedded Message; on the case page those were a fifth of
// the CPU (portal-bench).
func (v chatView) Lines() template.HTML {
	var b strings.Builder
	b.Grow(len(v.Messages) * 256)
	esc := html.EscapeString
	for _, m := range v.Messages {
		if m.Day != "" {
			b.WriteString(`<li class="day" aria-hidden="false"><span>` + esc(m.Day) + "</span></li>\n")
		}
		b.WriteString(`<li class="` + esc(m.Class) + `" data-seq="` + strconv.FormatInt(m.Seq, 10) + "\">\n")
		if !m.Mine {
			b.WriteString(`<span class="sender">` + esc(m.Sender) + "</span>\n")
		}
		b.WriteString(`<span class="body">` + esc(m.Body) + "</span>\n")
		b.WriteString(`<time class="when" datetime="` + esc(m.ISO) + `">` + esc(m.Clock) + "</time>\n</li>\n")
	}
	return template.HTML(b.String())
}

// chatMessage is a message with the day separator it may start, and its
// words already made: a page shows up to historyLen of them, and every
// function a template calls costs a reflective call per message.
type chatMessage struct {
	messaging.Message
	Day    string // "I dag", "I går", "Mandag 30. november": set on the first of each day
	Mine   bool
	Class  string // "msg", with " mine" and " system" as they apply
	Sender string // "Kari Nordmann · Saksbehandler", or the automatic reply's label; not for Mine
	ISO    string // CreatedAt in RFC 3339, UTC
	Clock  string // CreatedAt's time of day in the viewer's language
}

// conversationView loads conversation id for the page, authorized for the
// viewer through the chat's access check.
func (s *Server) conversationView(c echo.Context, id string) (chatView, error) {
	refs, err := s.chat.ConversationsWhere(c.Request().Context(), s.participant(c),
		func(r messaging.ConversationRef) bool { return r.ID == id })
	if err != nil {
		return chatView{}, err
	}
	if len(refs) == 0 {
		return chatView{}, ErrNotFound
	}
	return s.chatViewOf(c, refs[0])
}

// chatViewOf loads the latest messages of cv, a conversation the chat's
// access check listed for the viewer.
func (s *Server) chatViewOf(c echo.Context, cv messaging.ConversationSummary) (chatView, error) {
	ctx := c.Request().Context()
	p := s.participant(c)
	id := cv.ID
	v := chatView{ID: id, CaseID: cv.CaseID, Title: cv.Title, LastSeq: cv.LastSeq,
		Viewer: p.UserID, Staff: p.Role.Staff(), ClientID: NewID()}
	msgs, err := s.chat.Messages(ctx, p, id, max(0, v.LastSeq-historyLen), historyLen)
	if errors.Is(err, messaging.ErrNotFound) {
		return chatView{}, ErrNotFound
	}
	if err != nil {
		return chatView{}, err
	}
	l := s.localizer(c)
	now := time.Now()
	last := ""
	for _, m := range msgs {
		cm := chatMessage{Message: m, Mine: m.SenderID == p.UserID, Class: "msg",
			ISO: m.CreatedAt.UTC().Format(time.RFC3339), Clock: l.Time(m.CreatedAt)}
		if cm.Mine {
			cm.Class += " mine"
		}
		if m.Kind != messaging.KindText {
			cm.Class += " system"
		}
		switch {
		case cm.Mine:
		case m.Kind != messaging.KindText:
			cm.Sender = l.T("chat_auto_reply", nil)
		case m.SenderRole.Staff():
			cm.Sender = m.SenderName + " · " + l.T("kind_"+string(m.SenderRole), nil)
		default:
			cm.Sender = m.SenderName
		}
		if d := l.Day(m.CreatedAt, now); d != last {
			cm.Day, last = d, d
		}
		v.Messages = append(v.Messages, cm)
		v.LastSeq = max(v.LastSeq, m.Seq)
	}
	return v, nil
}

// handleConversation serves GET /conversations/:id: the whole conversation.
func (s *Server) handleConversation(c echo.Context) error {
	// The page's checks and its footer read the memo's versions once.
	c.SetRequest(c.Request().WithContext(withPageTag(c.Request().Context())))
	v, err := s.conversationView(c, c.Param("id"))
	if err != nil {
		return err
	}
	if v.NoCase, err = s.substituteOnly(c, v.CaseID); err != nil {
		return err
	}
	if err := s.markSeen(c, v); err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "conversation.html", v.Title, v)
}

// markSeen moves the viewer's read cursor to the newest message shown.
func (s *Server) markSeen(c echo.Context, v chatView) error {
	if v.LastSeq == 0 {
		return nil
	}
	// The cursor moves and the staff see a read receipt: the decision's
	// record is written first, not with the page's batch.
	ctx := withoutAuditBatch(c.Request().Context())
	err := s.chat.MarkRead(ctx, s.participant(c), v.ID, v.LastSeq)
	if errors.Is(err, messaging.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// handlePostMessage serves POST /conversations/:id/messages: sending
// without JavaScript. The form carries a client id, so a double submit or
// a resend after a timeout stores the message once, as over the socket.
func (s *Server) handlePostMessage(c echo.Context) error {
	ctx := c.Request().Context()
	id := c.Param("id")
	body := c.FormValue("body")
	_, err := s.chat.Send(ctx, s.participant(c), id, c.FormValue("client_id"), body)
	if err == nil {
		return c.Redirect(http.StatusSeeOther, localPath(c.FormValue("back"))+"#chat")
	}
	msgID := ""
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, messaging.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, messaging.ErrTooLarge):
		msgID = messaging.CodeTooLarge.MessageID()
	case errors.Is(err, messaging.ErrInvalidMessage):
		msgID = messaging.CodeInvalid.MessageID()
	case errors.Is(err, messaging.ErrRateLimited):
		msgID, status = messaging.CodeRateLimited.MessageID(), http.StatusTooManyRequests
	case errors.Is(err, messaging.ErrUnavailable):
		msgID, status = messaging.CodeUnavailable.MessageID(), http.StatusServiceUnavailable
	default:
		return err
	}
	// Nothing was stored: show the conversation again with the text kept.
	v, verr := s.conversationView(c, id)
	if verr != nil {
		return verr
	}
	v.Draft, v.Error = body, s.localizer(c).T(msgID, nil)
	return s.render(c, status, "conversation.html", v.Title, v)
}

// inboxRow is one conversation in a caseworker's inbox.
type inboxRow struct {
	messaging.ConversationSummary
	// Last is who wrote the newest message a person wrote (automatic
	// replies and notices do not count), and when.
	Last    messaging.LastText
	Waiting string // how long the family has waited, when the last word is theirs
}

// handleInbox serves GET /inbox (staff): conversations across their cases,
// filtered by who is waiting — "waiting on us" (oldest first), "waiting on
// the family", or all.
func (s *Server) handleInbox(c echo.Context) error {
	u, _ := userFrom(c)
	if !u.Kind.Staff() {
		return ErrNotFound
	}
	ctx := withPageTag(c.Request().Context())
	c.SetRequest(c.Request().WithContext(ctx)) // the footer's office too
	// The conversations as the chat lists them (Service.Conversations),
	// with their last words read in the same statement as their unread
	// counts.
	refs, err := s.store.ChatAccess().Conversations(ctx, s.participant(c))
	if err != nil {
		return fmt.Errorf("list conversations: %w", err)
	}
	ids := make([]string, len(refs))
	titles := make(map[string]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
		titles[r.ID] = r.Title
	}
	all, err := messaging.NewStore(s.store.db).InboxSummaries(ctx, u.ID, ids)
	if err != nil {
		return err
	}
	filter := c.QueryParam("show")
	if filter != "family" && filter != "all" {
		filter = "us"
	}
	l := s.localizer(c)
	now := time.Now()
	var rows []inboxRow
	counts := map[string]int{}
	for _, sum := range all {
		cv, last := sum.ConversationSummary, sum.Last
		cv.Title = titles[cv.ID]
		waitingOnUs := last.SenderRole == messaging.RoleCitizen
		group := "family"
		if waitingOnUs {
			group = "us"
		}
		counts[group]++
		counts["all"]++
		if filter != "all" && filter != group {
			continue
		}
		r := inboxRow{ConversationSummary: cv, Last: last}
		if waitingOnUs {
			r.Waiting = l.Duration(now.Sub(last.At))
		}
		rows = append(rows, r)
	}
	if filter == "us" {
		sortOldestFirst(rows)
	}
	outside, err := s.outsideChatHours(ctx, u) // the banner: families are told when you answer
	if err != nil {
		return err
	}
	requests, err := s.store.OpenAccessRequests(ctx, u) // through the access rule, audited
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "inbox.html", l.T("inbox_title", nil), map[string]any{
		"Rows": rows, "Filter": filter, "Counts": counts, "OutsideHours": outside,
		"AccessRequests": requests,
	})
}

// sortOldestFirst puts the longest-waiting family first.
func sortOldestFirst(rows []inboxRow) {
	slices.SortStableFunc(rows, func(a, b inboxRow) int { return a.Last.At.Compare(b.Last.At) })
}
