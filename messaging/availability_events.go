package messaging

import (
	"context"
	"log/slog"
	"time"
)

// typeAvailability is the frame that tells open sockets a chat opened or
// closed (docs/protocol.md).
const typeAvailability = "availability"

// availabilityFrame is {"type":"availability","conversation","channel",
// "open","at","until"}: the chat of conversation opened (open true) or
// closed at at, and the new state lasts until until (the closing time if
// open, the next opening if closed), which is left out when it does not
// change within about a year. It carries codes and instants only; the page
// words them in the reader's language.
type availabilityFrame struct {
	Type         string  `json:"type"`
	Conversation string  `json:"conversation"`
	Channel      Channel `json:"channel"`
	Open         bool    `json:"open"`
	At           string  `json:"at"`
	Until        string  `json:"until,omitempty"`
}

// PublishAvailability tells every socket of everyone who may see
// conversationID now that its chat opened (open) or closed at at, and that
// the new state lasts until until (zero: no change within about a year).
// Like every live event it is best effort: a page that misses it shows the
// state as of its last load.
func (s *Service) PublishAvailability(ctx context.Context, conversationID string, open bool, at, until time.Time) {
	f := availabilityFrame{
		Type:         typeAvailability,
		Conversation: conversationID,
		Channel:      ChannelChat,
		Open:         open,
		At:           formatAt(at),
	}
	if !until.IsZero() {
		f.Until = formatAt(until)
	}
	s.publish(ctx, conversationID, f, false, "")
}

// notifierMaxWait bounds the wait between two checks, so that edited
// settings and new conversations are noticed without a signal from the
// page that changed them.
const notifierMaxWait = time.Minute

// AvailabilityNotifier publishes an availability frame on every
// conversation whose chat opens or closes: when the responder's window
// (the primary caseworker's, or the substitute's during an absence) begins
// or ends, and when an edit changes whether it is open now.
//
// It keeps the last state it saw per conversation. That map is owned by
// whoever calls Check (the Run goroutine in production); Check must not be
// called concurrently.
type AvailabilityNotifier struct {
	chat  *Service
	store *AvailabilityStore
	now   func() time.Time
	log   *slog.Logger
	open  map[string]bool // conversation id -> chat open at the last check
}

// NewAvailabilityNotifier returns a notifier that reads settings from
// store and publishes through chat. now is the clock (time.Now in
// production).
func NewAvailabilityNotifier(chat *Service, store *AvailabilityStore, now func() time.Time, log *slog.Logger) *AvailabilityNotifier {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AvailabilityNotifier{chat: chat, store: store, now: now, log: log}
}

// Check compares every conversation's chat state now with the previous
// Check, publishes a frame for each that changed, and returns when the next
// change is due (the zero time if none is). The first Check only records
// the states: the pages already showed them when they were loaded.
func (n *AvailabilityNotifier) Check(ctx context.Context) (next time.Time, err error) {
	now := n.now()
	rows, err := n.store.chats(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if n.open == nil {
		n.open = map[string]bool{}
	}
	seen := make(map[string]bool, len(rows))
	type state struct {
		open  bool
		until time.Time
	}
	offices := map[string]OfficeSettings{}
	states := map[[2]string]state{} // (office, caseworker) -> chat state, computed once per check
	for _, r := range rows {
		key := [2]string{r.OfficeID, r.CaseworkerID}
		st, ok := states[key]
		if !ok {
			office, ok := offices[r.OfficeID]
			if !ok {
				if office, err = n.store.OfficeSettings(ctx, r.OfficeID); err != nil {
					return time.Time{}, err
				}
				offices[r.OfficeID] = office
			}
			c, err := n.store.contact(ctx, r.CaseworkerID, office, now)
			if err != nil {
				return time.Time{}, err
			}
			_, sched := c.Responder()
			st.open, st.until = sched.OpenAt(ChannelChat, now)
			states[key] = st
		}
		seen[r.ConversationID] = true
		if prev, known := n.open[r.ConversationID]; known && prev != st.open {
			n.chat.PublishAvailability(ctx, r.ConversationID, st.open, now, st.until)
		}
		// A conversation seen for the first time (or the first Check) is
		// only recorded: its page showed the state when it was loaded.
		n.open[r.ConversationID] = st.open
		if !st.until.IsZero() && (next.IsZero() || st.until.Before(next)) {
			next = st.until
		}
	}
	for id := range n.open {
		if !seen[id] {
			delete(n.open, id)
		}
	}
	return next, nil
}

// Run checks at every change and at least every minute, until ctx is
// cancelled. Start it once, in its own goroutine.
func (n *AvailabilityNotifier) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		next, err := n.Check(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.WarnContext(ctx, "availability check", "err", err)
		}
		wait := notifierMaxWait
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(n.now()), 0))
		}
		timer.Reset(wait)
	}
}
