package messaging

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// AutoReply is what an automatic reply tells a family, as data: an
// AutoReplyText function words it in the family member's language.
type AutoReply struct {
	// Lang is the family member's saved language ("nb", "nn", "en"), or ""
	// if they never chose one.
	Lang string
	// Now is when the family's message was stored.
	Now time.Time
	// Caseworker is the case's primary caseworker's name ("" if none).
	Caseworker string
	// Away is true while the caseworker is away, until AwayUntil (the last
	// day of the absence).
	Away      bool
	AwayUntil Date
	// Responder is who will read the message: the caseworker, or during an
	// absence the substitute; "" means the team.
	Responder string
	// NextOpening is when the chat opens again; the zero time if it does
	// not open within about a year.
	NextOpening time.Time
	// OfficePhone is the office's public number.
	OfficePhone string
	// EmergencyPhone is the barnevernvakt's number; VaktOpen says whether
	// it answers now, and VaktUntil until when (or, closed, from when).
	EmergencyPhone string
	VaktOpen       bool
	VaktUntil      time.Time
}

// AutoReplyText words an automatic reply. The portal supplies it, so that
// messaging needs no translations. It must not return an empty string.
type AutoReplyText func(AutoReply) string

// Poster posts a message the server writes. *Service is one.
type Poster interface {
	Post(ctx context.Context, d Draft) (Message, error)
}

// AutoReplier is the Observer that answers a family's message when nobody
// can read it soon: exactly one automatic reply per closed period of the
// chat, and none once a member of staff has written in that period.
//
// A closed period is the time between the responder's chat closing and its
// next opening (the responder is the case's primary caseworker, or the
// substitute during an absence; see Contact.Responder). Per period:
//   - the first family message gets the reply;
//   - later family messages in the same period get none, because the
//     conversation already has an automatic reply since the period began;
//   - if a member of staff writes in the period (someone working late),
//     nothing more is sent until the next period.
//
// Two family messages stored at the same moment could both find no reply
// yet; the reply's client id is derived from the conversation and the
// period, so the second Post finds the first one's message and stores
// nothing.
type AutoReplier struct {
	store *AvailabilityStore
	text  AutoReplyText
	now   func() time.Time
	log   *slog.Logger
	post  Poster

	// The memos spare the database the same questions for every message of
	// a family writing several in a row, and for the first message in
	// each of a caseworker's many conversations (an evening's first
	// messages): a contact is put together from its parts (makeContact),
	// and the parts many conversations share are kept once, by caseworker
	// and by office. Each part is kept for at most memoFor after it was
	// read, so a change to any of them takes effect within memoFor, as
	// when whole contacts were kept per conversation.
	mu      sync.Mutex
	cases   memo[caseContactRow] // by conversation id: its case's office and caseworker
	offices memo[OfficeSettings] // by office id
	staff   memo[staffMember]    // by user id: a caseworker's or substitute's name and settings
	replied memo[struct{}]       // by period (autoReplyClientID): that closed period has its reply
}

// memoFor is how long the auto-replier trusts what it has read: a changed
// schedule, absence or office setting takes effect for it within this
// time.
const memoFor = 30 * time.Second

// memoMax is the size up to which a memo keeps expired entries; past it,
// they are dropped (see memo.put).
const memoMax = 10000

// memo is what the auto-replier keeps of one kind, by key. The zero value
// is empty and ready. The AutoReplier's mu guards it.
type memo[V any] struct {
	m     map[string]memoEntry[V]
	sweep int // len(m) at which put next drops expired entries
}

type memoEntry[V any] struct {
	v           V
	from, until time.Time // kept from when it was put until then
}

// get returns k's value if it is kept at now. An entry is kept from the
// moment it was put, so a clock that moved back (a test's) does not make an
// old entry count as read later.
func (m *memo[V]) get(k string, now time.Time) (V, bool) {
	e, ok := m.m[k]
	if !ok || !now.Before(e.until) || now.Before(e.from) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put keeps v for k until until. Once the memo has memoMax entries it
// drops the expired ones, and again only when it has doubled since, so
// that a memo of more live entries than memoMax (an evening's first
// messages in more than memoMax conversations within memoFor) costs a
// sweep per doubling, not one per put.
func (m *memo[V]) put(k string, v V, now, until time.Time) {
	if m.m == nil {
		m.m = map[string]memoEntry[V]{}
	}
	if len(m.m) >= max(m.sweep, memoMax) {
		for k, e := range m.m {
			if !now.Before(e.until) {
				delete(m.m, k)
			}
		}
		m.sweep = 2 * len(m.m)
	}
	m.m[k] = memoEntry[V]{v: v, from: now, until: until}
}

// recall returns k's value in m if it is kept at now, and otherwise reads
// it with load and keeps it for memoFor. mu guards m. load runs without
// mu, so that one message's queries hold up no other message; two
// messages that miss at once both read, and either's answer is kept. now
// is taken before load reads, so what is kept is never kept past memoFor
// after it was read.
func recall[V any](mu *sync.Mutex, m *memo[V], k string, now time.Time, load func() (V, error)) (V, error) {
	mu.Lock()
	v, ok := m.get(k, now)
	mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	mu.Lock()
	defer mu.Unlock()
	m.put(k, v, now, now.Add(memoFor))
	return v, nil
}

// NewAutoReplier returns an AutoReplier over store that words its replies
// with text. now is the clock (time.Now in production); log receives ids
// only. Attach the chat service before it serves anything.
func NewAutoReplier(store *AvailabilityStore, text AutoReplyText, now func() time.Time, log *slog.Logger) *AutoReplier {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AutoReplier{store: store, text: text, now: now, log: log}
}

// Attach sets the service replies are posted through. The replier is one
// of the service's observers, so it cannot be given the service when it is
// made; call Attach once, before the service handles any message.
func (a *AutoReplier) Attach(p Poster) { a.post = p }

var _ Observer = (*AutoReplier)(nil)

// MessageStored implements Observer: it answers m if a family member sent
// it while the chat is closed and this closed period has no answer yet.
func (a *AutoReplier) MessageStored(ctx context.Context, m Message, senderRole Role) error {
	if senderRole != RoleCitizen || m.Kind != KindText {
		return nil
	}
	if a.post == nil {
		return errors.New("messaging: auto-replier has no service attached")
	}
	now := a.now()
	c, err := a.contact(ctx, m.ConversationID, now)
	if err != nil {
		return fmt.Errorf("auto-reply: %w", err)
	}
	sender := c.Sender()
	if sender == "" {
		return nil // no caseworker to answer in the name of
	}
	responder, sched := c.Responder()
	open, next := sched.OpenAt(ChannelChat, now)
	if open {
		return nil
	}
	since := sched.closedSince(ChannelChat, now)
	period := autoReplyClientID(m.ConversationID, since)
	if a.knownReplied(period, now) {
		return nil
	}
	replied, err := a.store.repliedBetween(ctx, m.ConversationID, since, now)
	if err != nil {
		return err
	}
	if replied {
		a.rememberReplied(period, now, next, true)
		return nil
	}
	lang, err := a.store.UserLang(ctx, m.SenderID)
	if err != nil {
		return fmt.Errorf("auto-reply: %w", err)
	}
	vaktOpen, vaktUntil := c.Office.Barnevernvakt().OpenAt(now)
	body := a.text(AutoReply{
		Lang:           lang,
		Now:            now,
		Caseworker:     c.Caseworker.Name,
		Away:           c.Away,
		AwayUntil:      c.Absence.To,
		Responder:      responder.Name,
		NextOpening:    next,
		OfficePhone:    c.OfficePhone,
		EmergencyPhone: c.EmergencyPhone,
		VaktOpen:       vaktOpen,
		VaktUntil:      vaktUntil,
	})
	_, err = a.post.Post(ctx, Draft{
		ConversationID: m.ConversationID,
		SenderID:       sender,
		ClientID:       period,
		Body:           body,
		Kind:           KindAutoReply,
	})
	if err != nil {
		return fmt.Errorf("auto-reply: %w", err)
	}
	a.rememberReplied(period, now, next, false)
	a.log.DebugContext(ctx, "auto-reply sent", "conversation", m.ConversationID, "closed_since", since)
	return nil
}

// contact returns conversationID's contact at now, put together from the
// parts kept in the memos, reading those that are not.
func (a *AutoReplier) contact(ctx context.Context, conversationID string, now time.Time) (Contact, error) {
	row, err := recall(&a.mu, &a.cases, conversationID, now, func() (caseContactRow, error) {
		return a.store.contactRow(ctx, byConversation, conversationID)
	})
	if err != nil {
		return Contact{}, err
	}
	office, err := recall(&a.mu, &a.offices, row.OfficeID, now, func() (OfficeSettings, error) {
		return a.store.OfficeSettings(ctx, row.OfficeID)
	})
	if err != nil {
		return Contact{}, err
	}
	return makeContact(row, office, now, func(userID string) (staffMember, error) {
		return recall(&a.mu, &a.staff, userID, now, func() (staffMember, error) {
			return a.store.staffMember(ctx, userID)
		})
	})
}

// knownReplied reports whether period (a conversation's closed period, as
// autoReplyClientID names it) is known to have its reply already.
func (a *AutoReplier) knownReplied(period string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.replied.get(period, now)
	return ok
}

// rememberReplied notes that period, which ends at next (the zero time: not
// within a year), has its reply: for memoFor after posting one, and, once
// the reply is found stored, until the period ends (a day at most, to bound
// the memo). A stored reply stays stored, as messages are never removed,
// and a changed schedule makes another period, with another name. Before,
// a conversation's reply was looked for again every memoFor, reading every
// message of the evening (portal-bench: 3 % of the CPU at 1,000 messages a
// second).
func (a *AutoReplier) rememberReplied(period string, now, next time.Time, stored bool) {
	until := now.Add(memoFor)
	if stored {
		until = now.Add(24 * time.Hour)
	}
	if !next.IsZero() && next.Before(until) {
		until = next
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.replied.put(period, struct{}{}, now, until)
}

// autoReplyClientID is the client id of the automatic reply in
// conversationID for the closed period that began at since: the same for
// every message of the period, different for every other period.
func autoReplyClientID(conversationID string, since time.Time) string {
	sum := sha256.Sum256([]byte(conversationID + "\x00" + since.UTC().Format(time.RFC3339)))
	return "auto-" + hex.EncodeToString(sum[:16])
}

// closedSince returns when channel ch last closed at or before now (the
// start of the closed period now lies in), or the zero time if it was not
// open within about 400 days. Call it only when ch is closed at now.
func (s Schedule) closedSince(ch Channel, now time.Time) time.Time {
	d := DateOf(now)
	for range searchDays {
		var last time.Time
		// instantSpans are in time order, so the last one that has ended
		// is the latest closing of the day.
		for _, sp := range instantSpans(d, s.openMinutes(ch, d)) {
			if !sp.end.After(now) {
				last = sp.end
			}
		}
		if !last.IsZero() {
			return last
		}
		d = d.AddDays(-1)
	}
	return time.Time{}
}
