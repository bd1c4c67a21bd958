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

	// memo spares the database the same questions for every message of a
	// family writing several in a row: a conversation's contact, and that
	// its closed period has its reply, each for at most memoFor.
	mu       sync.Mutex
	contacts map[string]memoContact // by conversation id
	replied  map[string]time.Time   // conversation id -> a reply is known to exist until then
}

// memoFor is how long the auto-replier trusts what it has read: a changed
// schedule or absence takes effect for it within this time.
const memoFor = 30 * time.Second

// memoMax bounds each memo; past it, expired entries are dropped.
const memoMax = 10000

type memoContact struct {
	c     Contact
	until time.Time
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
	return &AutoReplier{store: store, text: text, now: now, log: log,
		contacts: map[string]memoContact{}, replied: map[string]time.Time{}}
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
	if a.knownReplied(m.ConversationID, now) {
		return nil
	}
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
	replied, err := a.store.repliedBetween(ctx, m.ConversationID, since, now)
	if err != nil {
		return err
	}
	if replied {
		a.rememberReplied(m.ConversationID, now, next)
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
		ClientID:       autoReplyClientID(m.ConversationID, since),
		Body:           body,
		Kind:           KindAutoReply,
	})
	if err != nil {
		return fmt.Errorf("auto-reply: %w", err)
	}
	a.rememberReplied(m.ConversationID, now, next)
	a.log.DebugContext(ctx, "auto-reply sent", "conversation", m.ConversationID, "closed_since", since)
	return nil
}

// contact returns conversationID's contact, from the memo if it is fresh.
func (a *AutoReplier) contact(ctx context.Context, conversationID string, now time.Time) (Contact, error) {
	a.mu.Lock()
	mc, ok := a.contacts[conversationID]
	a.mu.Unlock()
	if ok && now.Before(mc.until) && !now.Before(mc.until.Add(-memoFor)) {
		return mc.c, nil
	}
	c, err := a.store.ConversationContact(ctx, conversationID, now)
	if err != nil {
		return Contact{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	prune(a.contacts, now, func(mc memoContact) time.Time { return mc.until })
	a.contacts[conversationID] = memoContact{c: c, until: now.Add(memoFor)}
	return c, nil
}

// knownReplied reports whether conversationID's current closed period is
// known to have its reply already.
func (a *AutoReplier) knownReplied(conversationID string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	until, ok := a.replied[conversationID]
	return ok && now.Before(until) && !now.Before(until.Add(-memoFor))
}

// rememberReplied notes that conversationID has its reply for the closed
// period that ends at next (the zero time: not within a year).
func (a *AutoReplier) rememberReplied(conversationID string, now, next time.Time) {
	until := now.Add(memoFor)
	if !next.IsZero() && next.Before(until) {
		until = next
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	prune(a.replied, now, func(t time.Time) time.Time { return t })
	a.replied[conversationID] = until
}

// prune drops m's expired entries once it has grown past memoMax.
func prune[V any](m map[string]V, now time.Time, until func(V) time.Time) {
	if len(m) < memoMax {
		return
	}
	for k, v := range m {
		if !now.Before(until(v)) {
			delete(m, k)
		}
	}
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
