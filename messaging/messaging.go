// Package messaging is the portal's chat: conversations between the parties
// of a case and its caseworkers, their messages and read state, the
// websocket hub and wire protocol (version 1, see docs/protocol.md), and the
// caseworkers' availability windows.
//
// What this package decides, and what it leaves to its caller:
//
//   - Access is decided outside it. Every operation on a conversation goes
//     through an Authorizer that the portal supplies; the portal's single
//     access check also writes the audit entry. Messaging never reasons about
//     parties, roles or case assignments itself, so there is one place where
//     a rule can be wrong.
//   - Text shown to people comes from the caller: a Participant carries a
//     Translate function, and messaging does not import i18n.
//   - The schema lives in portal/db (migration 0002_messaging.sql); the Store
//     writes portable DML with ? placeholders only.
//
// Concurrency is described where it happens: hub.go (one goroutine owns the
// set of connected clients) and client.go (one reader and one writer per
// socket).
package messaging

import (
	"context"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
)

// Role is what a person is in the portal, as the protocol shows it. The
// values are those of users.kind.
type Role string

// The roles a Participant or a message sender can have.
const (
	RoleCitizen    Role = "citizen"    // a parent, a youth or another party
	RoleCaseworker Role = "caseworker" // staff assigned to cases
	RoleTeamLead   Role = "teamlead"   // staff over a team's cases
)

// Staff reports whether r is a role of the child welfare service's staff.
// Staff receive read receipts; families never do.
func (r Role) Staff() bool { return r == RoleCaseworker || r == RoleTeamLead }

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r == RoleCitizen || r.Staff() }

// Participant is a signed-in person using the chat, as the portal has
// authenticated them. Messaging trusts these fields; it never reads them
// from a client frame.
type Participant struct {
	UserID string
	Name   string
	Role   Role
	// Translate returns the text for a message ID (see MessageIDs) in the
	// person's language. It is called for error frames. nil means the
	// message ID itself is sent.
	Translate func(messageID string) string
	// Active, if not nil, hears that the person is doing something on a
	// socket: they sent a message or are typing. It is called at most once
	// a minute per socket. The portal keeps their session alive with it,
	// so a family chatting for a long time is not signed out as idle.
	// Pings, syncs and read receipts do not count: an open tab alone keeps
	// nothing alive. It may write through the Committer, so it is never
	// called from inside a write.
	Active func(ctx context.Context)
}

// text returns the localized text for messageID.
func (p Participant) text(messageID string) string {
	if p.Translate == nil {
		return messageID
	}
	return p.Translate(messageID)
}

// MessageKind tells a person's message from one the server wrote.
type MessageKind string

// The kinds of messages.
const (
	KindText      MessageKind = "text"       // written by a person
	KindAutoReply MessageKind = "auto_reply" // sent when chat is closed
	KindSystem    MessageKind = "system"     // a notice from the portal
)

// Valid reports whether k is a known kind.
func (k MessageKind) Valid() bool {
	return k == KindText || k == KindAutoReply || k == KindSystem
}

// ConversationKind says who a conversation is between.
type ConversationKind string

// The kinds of conversations.
const (
	// ConversationParty is one party with the case's caseworkers, the
	// default: parents in separate households must not read each other's
	// messages, and a youth's conversation is private from the parents.
	ConversationParty ConversationKind = "party"
	// ConversationShared is one a caseworker opens with several parties.
	ConversationShared ConversationKind = "shared"
)

// Conversation is a conversation's row.
type Conversation struct {
	ID        string           `db:"id"`
	CaseID    string           `db:"case_id"`
	Kind      ConversationKind `db:"kind"`
	LastSeq   int64            `db:"last_seq"` // the newest message's seq, 0 if none
	CreatedAt time.Time        `db:"created_at"`
}

// Message is one stored message. Messages are immutable once stored.
type Message struct {
	ID             string      `db:"id"`
	ConversationID string      `db:"conversation_id"`
	Seq            int64       `db:"seq"` // 1, 2, 3, ... per conversation, without gaps
	SenderID       string      `db:"sender_id"`
	SenderName     string      `db:"sender_name"` // from users, at read time
	SenderRole     Role        `db:"sender_role"` // from users, at read time
	ClientID       string      `db:"client_id"`   // the sender's idempotency key
	Body           string      `db:"body"`
	Kind           MessageKind `db:"kind"`
	CreatedAt      time.Time   `db:"created_at"` // UTC, millisecond precision
}

// Draft is a message to store.
type Draft struct {
	ConversationID string
	SenderID       string
	// ClientID makes the insert idempotent per sender: storing a second
	// draft with the same SenderID and ClientID returns the first message.
	ClientID string
	Body     string
	Kind     MessageKind
	// SenderName and SenderRole are the sender as the caller knows them
	// (the Participant, from the session). Empty, InsertMessage reads them
	// from users. A replay reads users at its time, so a name changed while
	// a socket is open shows the old name live and the new one on replay.
	SenderName string
	SenderRole Role

	// audit is the allowed send's audit entry, written with the message
	// (SendAuthorizer); nil when the caller audited already, or for the
	// server's own posts.
	audit func(ctx context.Context, tx *sqlx.Tx) error
}

// ConversationRef is a conversation a participant may see, as the
// Authorizer lists it. Title is what the participant is shown (for example
// the child's first name); the portal chooses it, and it may be localized.
type ConversationRef struct {
	ID     string
	CaseID string
	Title  string
}

// ConversationSummary is one entry of the hello frame: a conversation the
// participant may see, with its newest sequence and their unread count.
type ConversationSummary struct {
	ID      string `db:"id"`
	CaseID  string `db:"case_id"`
	Title   string `db:"-"`
	LastSeq int64  `db:"last_seq"`
	// Unread counts messages after the participant's read cursor that
	// someone else sent.
	Unread int `db:"unread"`
}

// Recipient is a user who may currently see a conversation, as the
// Authorizer resolves it for live delivery.
type Recipient struct {
	UserID string
	Role   Role
}

// Action is what a participant wants to do with a conversation. The
// Authorizer receives it so that its audit entry says what was attempted.
type Action string

// The actions the chat asks the Authorizer about.
const (
	ActionSend   Action = "send"   // post a message
	ActionSync   Action = "sync"   // read messages (replay or history)
	ActionRead   Action = "read"   // move the read cursor
	ActionTyping Action = "typing" // show that one is typing
)

// Authorizer is the portal's access check, seen from the chat. Messaging
// calls it for every operation and never decides access itself.
//
// Implementations must be safe for concurrent use, must fail closed (an
// error that is not ErrNotFound refuses the operation and is reported to the
// client as "unavailable"), and must not reveal whether a conversation they
// refuse exists.
type Authorizer interface {
	// Conversations lists every conversation p may see now: for a citizen
	// those they are a member of while their party rights last, for staff
	// every conversation of the cases they work on. It backs the hello frame.
	Conversations(ctx context.Context, p Participant) ([]ConversationRef, error)

	// Authorize returns nil if p may perform action on conversationID now,
	// and otherwise an error wrapping ErrNotFound, the same for "missing"
	// and "not yours". It writes the audit entry for the attempt, allowed
	// or not; if the audit entry cannot be written it returns an error.
	// It is called for every frame, so a revoked party loses access at the
	// next frame.
	Authorize(ctx context.Context, p Participant, conversationID string, action Action) error

	// Audience returns the users who may see conversationID now: its
	// members whose party rights are not revoked, and the case's staff. It
	// is called once per live event (message, read, typing) to choose the
	// sockets that receive it; see Hub for why the hub keeps no rooms. An
	// implementation may audit the delivery here.
	Audience(ctx context.Context, conversationID string) ([]Recipient, error)
}

// SendAuthorizer is an Authorizer that can audit an allowed send inside
// the write that stores the message, so that a send is one write instead of
// two. AuthorizeSend decides as Authorize does for ActionSend; a refusal
// (or a failure) it audits itself and returns as the error. For an allowed
// send it returns the audit entry's write, which the Store runs in the
// message's transaction: the message and its audit entry are stored
// together or not at all.
type SendAuthorizer interface {
	AuthorizeSend(ctx context.Context, p Participant, conversationID string) (audit func(ctx context.Context, tx *sqlx.Tx) error, err error)
}

// FrameScoper is an Authorizer that keeps what it reads for one send's
// work: the service asks it for each send frame's context, and the send's
// checks (the decision, the audience of its live frame) run under it. The
// portal reads its access version once per send this way.
type FrameScoper interface {
	FrameContext(ctx context.Context) context.Context
}

// Observer is told about each message a person sent, once it is stored.
// The portal's auto-replies and the notification outbox are observers. An
// error is logged; the send has already succeeded.
type Observer interface {
	MessageStored(ctx context.Context, m Message, senderRole Role) error
}

// Errors returned by the Service and the Store. Each maps to an error code
// of the protocol (see ErrorCode).
var (
	// ErrNotFound: the conversation does not exist or the participant may
	// not use it. The two are deliberately indistinguishable.
	ErrNotFound = errors.New("messaging: not found")
	// ErrInvalidMessage: a frame or message breaks the protocol's rules
	// (malformed, unknown type, bad client id, control characters, empty).
	ErrInvalidMessage = errors.New("messaging: invalid message")
	// ErrTooLarge: a message body is longer than MaxBodyRunes characters or
	// MaxBodyBytes bytes.
	ErrTooLarge = errors.New("messaging: message too large")
	// ErrRateLimited: the participant sends faster than allowed.
	ErrRateLimited = errors.New("messaging: rate limited")
	// ErrUnavailable: the database is busy, locked or failing. Nothing was
	// stored; the client should retry with the same client id.
	ErrUnavailable = errors.New("messaging: temporarily unavailable")
	// ErrClosed: the hub has stopped (the server is shutting down).
	ErrClosed = errors.New("messaging: closed")
)
