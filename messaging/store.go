package messaging

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Store reads and writes conversations, messages and read cursors.
//
// It writes portable DML only (? placeholders through Rebind, no
// dialect-specific functions), so the same methods run on SQLite and
// PostgreSQL. It does no access control: the Service asks the Authorizer
// before calling it.
type Store struct {
	db  *sqlx.DB
	now func() time.Time // the clock; tests may set it
}

// NewStore returns a Store over an opened, migrated database.
func NewStore(db *sqlx.DB) *Store {
	return &Store{db: db, now: time.Now}
}

// newID returns a random public id: 120 bits, lowercase base32, the same
// shape as the portal's ids, so ids cannot be guessed or counted.
func newID() string {
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// newMessageID returns a message's id, made at now: as long as newID's,
// but only its last 72 bits are random (still far beyond guessing); it
// begins with now in milliseconds, in base32hex, whose order is the bytes'
// order, so ids sort by when they were made. A message's id is then stored
// at the end of the primary key's index, on the page the last message
// touched, instead of on a random one of its thousands: one page less to
// read and write per message, and a checkpoint copies that page once for
// many messages (cmd/portal-bench). The time it tells, within the wait for
// the commit, is the message's created_at, which every member sees anyway.
func newMessageID(now time.Time) string {
	var b [15]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16) // the top 48 bits
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// dbErr wraps an unexpected database error. Every such error means the
// operation did not happen (each write is one transaction), so it is
// ErrUnavailable: safe to retry, with the same client id for a send. A busy
// or locked SQLite database, a full disk and a lost PostgreSQL connection
// all end up here. An error that says so already (the Committer's) is not
// marked twice.
func dbErr(op string, err error) error {
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("messaging: %s: %w", op, err)
	}
	return fmt.Errorf("messaging: %s: %w: %w", op, ErrUnavailable, err)
}

// timestamp is how instants are stored: UTC with millisecond precision, so
// that what a client got live and what it gets on replay are identical.
func (s *Store) timestamp() time.Time {
	return s.now().UTC().Truncate(time.Millisecond)
}

// CreateConversation creates a conversation of kind in case caseID with the
// given members (parties; never the case's caseworkers, who see every
// conversation of their cases without being members).
func (s *Store) CreateConversation(ctx context.Context, caseID string, kind ConversationKind, memberIDs []string) (Conversation, error) {
	if kind != ConversationParty && kind != ConversationShared {
		return Conversation{}, fmt.Errorf("%w: conversation kind %q", ErrInvalidMessage, kind)
	}
	c := Conversation{ID: newID(), CaseID: caseID, Kind: kind, CreatedAt: s.timestamp()}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return Conversation{}, dbErr("create conversation", err)
	}
	defer tx.Rollback() // no-op after Commit

	if _, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO conversations (id, case_id, kind, last_seq, created_at)
		VALUES (?, ?, ?, 0, ?)`), c.ID, c.CaseID, c.Kind, c.CreatedAt); err != nil {
		return Conversation{}, dbErr("create conversation", err)
	}
	for _, uid := range memberIDs {
		if err := addMember(ctx, tx, c.ID, uid, c.CreatedAt); err != nil {
			return Conversation{}, err
		}
	}
	if err := tx.Commit(); err != nil {
		return Conversation{}, dbErr("create conversation", err)
	}
	return c, nil
}

// AddMember makes userID a member of conversationID. Adding a member twice
// changes nothing (their read cursor is kept).
func (s *Store) AddMember(ctx context.Context, conversationID, userID string) error {
	return addMember(ctx, s.db, conversationID, userID, s.timestamp())
}

func addMember(ctx context.Context, x sqlx.ExtContext, conversationID, userID string, at time.Time) error {
	_, err := x.ExecContext(ctx, x.Rebind(`
		INSERT INTO conversation_members (conversation_id, user_id, last_read_seq, joined_at)
		VALUES (?, ?, 0, ?)
		ON CONFLICT (conversation_id, user_id) DO NOTHING`), conversationID, userID, at)
	if err != nil {
		return dbErr("add member", err)
	}
	return nil
}

// Conversation returns the conversation with id, or ErrNotFound.
func (s *Store) Conversation(ctx context.Context, id string) (Conversation, error) {
	var c Conversation
	err := s.db.GetContext(ctx, &c, s.db.Rebind(`
		SELECT id, case_id, kind, last_seq, created_at
		FROM conversations
		WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Conversation{}, ErrNotFound
	}
	if err != nil {
		return Conversation{}, dbErr("get conversation", err)
	}
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

// InsertMessage stores d and returns the stored message. created is false
// when the sender already stored a message with d.ClientID: that message is
// returned and nothing is written, so a resend is answered with the original
// (which may belong to another conversation; the caller checks).
//
// The message's seq is taken in the same transaction as the insert, by
// incrementing conversations.last_seq: the UPDATE locks the conversation's
// row (SQLite: the whole database, as transactions are BEGIN IMMEDIATE;
// PostgreSQL: the row) until commit, so concurrent inserts get consecutive
// numbers, and a failed insert rolls its increment back, so there are no
// gaps. It returns ErrNotFound if the conversation does not exist, and an
// error wrapping ErrUnavailable if the database is busy or failing, in which
// case nothing was written.
func (s *Store) InsertMessage(ctx context.Context, d Draft) (m Message, created bool, err error) {
	if !d.Kind.Valid() || d.SenderID == "" || d.ClientID == "" {
		return Message{}, false, fmt.Errorf("%w: incomplete draft", ErrInvalidMessage)
	}
	// The sender's name and role go into the ack and the live frame: the
	// caller's, or read before the write transaction so as not to hold the
	// write lock longer.
	sender := struct {
		Name string `db:"name"`
		Kind Role   `db:"kind"`
	}{d.SenderName, d.SenderRole}
	if sender.Kind == "" {
		err = s.db.GetContext(ctx, &sender, s.db.Rebind(`SELECT name, kind FROM users WHERE id = ?`), d.SenderID)
		if errors.Is(err, sql.ErrNoRows) {
			return Message{}, false, fmt.Errorf("%w: unknown sender", ErrInvalidMessage)
		}
		if err != nil {
			return Message{}, false, dbErr("insert message: sender", err)
		}
	}

	m = Message{
		ID:             newMessageID(s.now()),
		ConversationID: d.ConversationID,
		SenderID:       d.SenderID,
		SenderName:     sender.Name,
		SenderRole:     sender.Kind,
		ClientID:       d.ClientID,
		Body:           d.Body,
		Kind:           d.Kind,
	}
	// The write may share its transaction with other writes (group commit,
	// groupcommit.go); it is acknowledged only once that has committed.
	err = CommitterFor(s.db).Do(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		if d.audit != nil {
			if err := d.audit(ctx, tx); err != nil {
				return dbErr("insert message: audit", err)
			}
		}
		m.CreatedAt = s.timestamp()
		take, args := `
			UPDATE conversations SET last_seq = last_seq + 1
			WHERE id = ?
			RETURNING last_seq`, []any{d.ConversationID}
		if d.Kind == KindText {
			// The inbox's newest text (migration 0011) in the same row
			// write. The trigger that keeps it for every other way a
			// message is stored then finds it current and writes nothing.
			// (SET's right-hand sides read the row as it was.)
			take, args = `
				UPDATE conversations SET last_seq = last_seq + 1,
				       last_text_seq = last_seq + 1, last_text_at = ?, last_text_role = ?
				WHERE id = ?
				RETURNING last_seq`, []any{m.CreatedAt, sender.Kind, d.ConversationID}
		}
		err := tx.GetContext(ctx, &m.Seq, tx.Rebind(take), args...)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return dbErr("insert message: take seq", err)
		}
		// A resend (the same sender and client id) inserts nothing, and
		// its error undoes the seq taken above. ON CONFLICT DO NOTHING
		// instead of catching a unique violation: it is portable, needs no
		// driver error codes, and on PostgreSQL does not abort the
		// transaction. A concurrent insert with the same client id makes
		// this statement wait for that transaction there.
		res, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, body, kind, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (sender_id, client_id) DO NOTHING`),
			m.ID, m.ConversationID, m.Seq, m.SenderID, m.ClientID, m.Body, m.Kind, m.CreatedAt)
		if err != nil {
			return dbErr("insert message", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return dbErr("insert message", err)
		} else if n == 0 {
			return errResend
		}
		return nil
	})
	switch {
	case errors.Is(err, errResend):
		// Undoing the insert undid its audit entry too; the attempt is
		// audited all the same.
		if d.audit != nil {
			if err := CommitterFor(s.db).Do(ctx, d.audit); err != nil {
				return Message{}, false, dbErr("insert message: audit", err)
			}
		}
		m, err = messageByClientID(ctx, s.db, d.SenderID, d.ClientID)
		if err != nil {
			return Message{}, false, err
		}
		return m, false, nil
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable):
		return Message{}, false, err
	case err != nil:
		return Message{}, false, dbErr("insert message", err)
	}
	return m, true, nil
}

// messageByClientID returns the message senderID stored with clientID, or
// ErrNotFound.
func messageByClientID(ctx context.Context, q sqlx.ExtContext, senderID, clientID string) (Message, error) {
	var m Message
	err := sqlx.GetContext(ctx, q, &m, q.Rebind(`
		SELECT m.id, m.conversation_id, m.seq, m.sender_id, u.name AS sender_name,
		       u.kind AS sender_role, m.client_id, m.body, m.kind, m.created_at
		FROM messages m
		JOIN users u ON u.id = m.sender_id
		WHERE m.sender_id = ? AND m.client_id = ?`), senderID, clientID)
	if errors.Is(err, sql.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, dbErr("get message", err)
	}
	m.CreatedAt = m.CreatedAt.UTC()
	return m, nil
}

// MessagesAfter returns up to limit messages of conversationID with seq
// greater than afterSeq, in seq order. An unknown conversation has no
// messages.
func (s *Store) MessagesAfter(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	var ms []Message
	err := s.db.SelectContext(ctx, &ms, s.db.Rebind(`
		SELECT m.id, m.conversation_id, m.seq, m.sender_id, u.name AS sender_name,
		       u.kind AS sender_role, m.client_id, m.body, m.kind, m.created_at
		FROM messages m
		JOIN users u ON u.id = m.sender_id
		WHERE m.conversation_id = ? AND m.seq > ?
		ORDER BY m.seq
		LIMIT ?`), conversationID, afterSeq, limit)
	if err != nil {
		return nil, dbErr("list messages", err)
	}
	for i := range ms {
		ms[i].CreatedAt = ms[i].CreatedAt.UTC()
	}
	return ms, nil
}

// LastSeq returns the seq of the newest message of conversationID (0 if
// it has none), or ErrNotFound.
func (s *Store) LastSeq(ctx context.Context, conversationID string) (int64, error) {
	var seq int64
	err := s.db.GetContext(ctx, &seq, s.db.Rebind(`
		SELECT last_seq FROM conversations WHERE id = ?`), conversationID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, dbErr("get last seq", err)
	}
	return seq, nil
}

// MarkRead moves userID's read cursor in conversationID forward to seq,
// clamped to the conversation's last seq, and returns the clamped seq and
// whether the cursor moved.
// A cursor never moves back. Staff cursors live in conversation_reads,
// members' in conversation_members; a citizen who is not a member has no
// cursor to move. It writes through the Committer, so it is never called
// from inside a write.
func (s *Store) MarkRead(ctx context.Context, conversationID, userID string, staff bool, seq int64) (cursor int64, advanced bool, err error) {
	last, err := s.LastSeq(ctx, conversationID)
	if err != nil {
		return 0, false, err
	}
	seq = min(seq, last)
	if seq <= 0 {
		return seq, false, nil
	}
	// The "only forward" condition is in the statement itself, not in a
	// read before it, so two concurrent calls can never move a cursor back
	// (on PostgreSQL, under READ COMMITTED, a read-then-write could). The
	// write shares the group commit with the chat's other writes.
	query, args := `
		UPDATE conversation_members SET last_read_seq = ?
		WHERE conversation_id = ? AND user_id = ? AND last_read_seq < ?`, []any{seq, conversationID, userID, seq}
	if staff {
		query, args = `
			INSERT INTO conversation_reads (conversation_id, user_id, last_read_seq, read_at)
			VALUES (?, ?, ?, ?)
			ON CONFLICT (conversation_id, user_id) DO UPDATE
			SET last_read_seq = excluded.last_read_seq, read_at = excluded.read_at
			WHERE conversation_reads.last_read_seq < excluded.last_read_seq`, []any{conversationID, userID, seq, s.timestamp()}
	}
	var n int64
	err = CommitterFor(s.db).Do(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, tx.Rebind(query), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, false, dbErr("mark read", err)
	}
	return seq, n > 0, nil
}

// summaryBatch bounds the ids in one IN list, well below SQLite's and
// PostgreSQL's limits on bound parameters.
const summaryBatch = 500

// Summaries returns, for each of conversationIDs that exists, its case, last
// seq and userID's unread count: messages after userID's read cursor that
// someone else sent. The result is in the order of conversationIDs.
func (s *Store) Summaries(ctx context.Context, userID string, conversationIDs []string) ([]ConversationSummary, error) {
	rows, err := s.summaries(ctx, userID, conversationIDs, false)
	if err != nil {
		return nil, err
	}
	out := make([]ConversationSummary, len(rows))
	for i, r := range rows {
		out[i] = r.ConversationSummary
	}
	return out, nil
}

// LastText is the newest message a person wrote in a conversation (not an
// automatic reply or a notice): its sender's role as it was when the
// message was stored, and when it was sent. At is zero in a conversation without one.
type LastText struct {
	SenderRole Role
	At         time.Time // UTC
}

// InboxSummary is a conversation's summary with its LastText.
type InboxSummary struct {
	ConversationSummary
	Last LastText
}

// InboxSummaries is Summaries with each conversation's LastText, for a
// caseworker's inbox, in one statement.
func (s *Store) InboxSummaries(ctx context.Context, userID string, conversationIDs []string) ([]InboxSummary, error) {
	return s.summaries(ctx, userID, conversationIDs, true)
}

// summaries is Summaries, with the LastText of each conversation if
// withLast.
func (s *Store) summaries(ctx context.Context, userID string, conversationIDs []string, withLast bool) ([]InboxSummary, error) {
	// The newest text's sender and time are kept on the conversation's
	// row (migration 0011's trigger), not looked up message by message.
	last := `'' AS last_role, NULL AS last_at`
	if withLast {
		last = `COALESCE(c.last_text_role, '') AS last_role, c.last_text_at AS last_at`
	}
	type row struct {
		ConversationSummary
		LastRole Role         `db:"last_role"`
		LastAt   sql.NullTime `db:"last_at"`
	}
	byID := make(map[string]InboxSummary, len(conversationIDs))
	for start := 0; start < len(conversationIDs); start += summaryBatch {
		ids := conversationIDs[start:min(start+summaryBatch, len(conversationIDs))]
		// A user has a cursor in at most one of the two tables (members are
		// citizens, readers are staff), hence the COALESCE.
		q, args, err := sqlx.In(`
			SELECT c.id, c.case_id, c.last_seq,
			       (SELECT COUNT(*) FROM messages m
			        WHERE m.conversation_id = c.id
			          AND m.seq > COALESCE(cm.last_read_seq, cr.last_read_seq, 0)
			          AND m.sender_id <> ?) AS unread,
			       `+last+`
			FROM conversations c
			LEFT JOIN conversation_members cm ON cm.conversation_id = c.id AND cm.user_id = ?
			LEFT JOIN conversation_reads cr ON cr.conversation_id = c.id AND cr.user_id = ?
			WHERE c.id IN (?)`, userID, userID, userID, ids)
		if err != nil {
			return nil, fmt.Errorf("messaging: summaries: %w", err)
		}
		var rows []row
		if err := s.db.SelectContext(ctx, &rows, s.db.Rebind(q), args...); err != nil {
			return nil, dbErr("summaries", err)
		}
		for _, r := range rows {
			sum := InboxSummary{ConversationSummary: r.ConversationSummary}
			if r.LastAt.Valid {
				sum.Last = LastText{SenderRole: r.LastRole, At: r.LastAt.Time.UTC()}
			}
			byID[r.ID] = sum
		}
	}
	out := make([]InboxSummary, 0, len(byID))
	for _, id := range conversationIDs {
		if r, ok := byID[id]; ok {
			out = append(out, r)
			delete(byID, id) // a duplicate id in the input is listed once
		}
	}
	return out, nil
}
