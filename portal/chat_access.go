package portal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"

	"familieportal/messaging"
)

// canUseConversation is THE access rule for conversations, as SQL over the
// conversation alias c and its case k, with the arguments of accessArgs. A
// citizen uses a conversation they are a member of while they are an
// active party to its case — so a parent never reaches the youth's
// conversation, and a revoked party loses every conversation at once.
// Staff use every conversation of a case they may see, and a substitute
// those of the cases whose primary caseworker is away today with them as
// substitute (only while the absence lasts, and only a member of staff:
// the argument is "" for anyone else). It takes the arguments of chatArgs.
const canUseConversation = `(
	EXISTS (SELECT 1 FROM conversation_members m
		JOIN parties p ON p.case_id = k.id AND p.user_id = m.user_id AND p.revoked_at IS NULL
		WHERE m.conversation_id = c.id AND m.user_id = ?)
	OR EXISTS (SELECT 1 FROM case_caseworkers a
		WHERE a.case_id = k.id AND a.user_id = ?)
	OR EXISTS (SELECT 1 FROM users tl
		WHERE tl.id = ? AND tl.kind = 'teamlead' AND tl.team_id = k.team_id)
	OR EXISTS (SELECT 1 FROM case_caseworkers pa
		JOIN availability_absences ab ON ab.user_id = pa.user_id
		JOIN users sub ON sub.id = ab.substitute_id AND sub.kind IN ('caseworker', 'teamlead')
		WHERE pa.case_id = k.id AND pa.is_primary AND ab.substitute_id = ?
		  AND ab.from_day <= ? AND ab.to_day >= ?))`

// conversationCandidates narrows a listing to the conversations where some
// branch of canUseConversation can hold, branch by branch, through the
// indexes on the user's side (SQLite runs it as a MULTI-INDEX OR). Without
// it a listing scans every conversation of the municipality, about 90 ms
// per hello, inbox or case page with 60,000 conversations (portal-bench).
// It decides nothing: canUseConversation still runs on every row. It takes
// the arguments of chatArgs, and must keep one branch for every branch of
// canUseConversation (a missing one hides conversations, it never shows more).
const conversationCandidates = `(
	c.id IN (SELECT m.conversation_id FROM conversation_members m WHERE m.user_id = ?)
	OR c.case_id IN (SELECT a.case_id FROM case_caseworkers a WHERE a.user_id = ?)
	OR c.case_id IN (SELECT tk.id FROM users tl JOIN cases tk ON tk.team_id = tl.team_id
		WHERE tl.id = ? AND tl.kind = 'teamlead')
	OR c.case_id IN (SELECT pa.case_id FROM availability_absences ab
		JOIN case_caseworkers pa ON pa.user_id = ab.user_id AND pa.is_primary
		WHERE ab.substitute_id = ? AND ab.from_day <= ? AND ab.to_day >= ?))`

// chatArgs fills canUseConversation for u on today's Oslo date.
func (s *Store) chatArgs(u User) []any {
	substitute := ""
	if u.Kind.Staff() {
		substitute = u.ID
	}
	today := messaging.DateOf(s.now()).String()
	return append(accessArgs(u), substitute, today, today)
}

// ChatAccess is the portal's access check as the chat sees it. It is the
// messaging.Authorizer the chat service is built with.
type ChatAccess struct{ store *Store }

// ChatAccess returns the chat's view of the access check.
func (s *Store) ChatAccess() ChatAccess { return ChatAccess{store: s} }

var _ messaging.Authorizer = ChatAccess{}

// userOf turns a chat participant back into the portal's user. The
// participant was made by the portal from the session, never from a frame.
func userOf(p messaging.Participant) User {
	return User{ID: p.UserID, Kind: Kind(p.Role), Name: p.Name}
}

// Conversations lists the conversations p may use, titled with the child's
// first name (and, for staff, the party's name).
func (a ChatAccess) Conversations(ctx context.Context, p messaging.Participant) ([]messaging.ConversationRef, error) {
	u := userOf(p)
	s := a.store
	// The list is the access rule's answer (and the titles' names), kept
	// under access_version and directory_version (directory.go).
	refs, err := keptNow(ctx, s, func(m *directoryMemo) map[userKey][]messaging.ConversationRef { return m.conversations },
		userKey{u.ID, string(u.Kind)}, func(memoTag) ([]messaging.ConversationRef, error) { return s.conversations(ctx, u) })
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return slices.Clone(refs), nil // the caller may modify its copy
}

// conversations is ChatAccess.Conversations without the memo.
func (s *Store) conversations(ctx context.Context, u User) ([]messaging.ConversationRef, error) {
	var rows []struct {
		ID     string `db:"id"`
		CaseID string `db:"case_id"`
		Child  string `db:"child_name"`
		Party  string `db:"party"`
	}
	err := s.db.SelectContext(ctx, &rows, s.db.Rebind(`
		SELECT c.id, c.case_id, k.child_name,
		       COALESCE((SELECT MIN(u.name) FROM conversation_members m JOIN users u ON u.id = m.user_id
		                 WHERE m.conversation_id = c.id), '') AS party
		FROM conversations c JOIN cases k ON k.id = c.case_id
		WHERE `+conversationCandidates+` AND `+canUseConversation+`
		ORDER BY k.child_name, party, c.id`), append(s.chatArgs(u), s.chatArgs(u)...)...)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	refs := make([]messaging.ConversationRef, len(rows))
	for i, r := range rows {
		title := r.Child
		if u.Kind.Staff() && r.Party != "" {
			title = r.Child + " – " + r.Party
		}
		refs[i] = messaging.ConversationRef{ID: r.ID, CaseID: r.CaseID, Title: title}
	}
	return refs, nil
}

// Authorize decides whether p may perform action on conversationID, and
// audits the decision (typing, which reads nothing, only when refused).
func (a ChatAccess) Authorize(ctx context.Context, p messaging.Participant, conversationID string, action messaging.Action) error {
	u := userOf(p)
	s := a.store
	caseID, err := s.conversationCase(ctx, u, conversationID)
	if err == nil && action == messaging.ActionTyping {
		return nil
	}
	return s.audit(ctx, u, Action("chat."+string(action)), caseID, conversationID, err)
}

var (
	_ messaging.SendAuthorizer = ChatAccess{}
	_ messaging.FrameScoper    = ChatAccess{}
)

// FrameContext makes the checks of one send frame use the versions read
// for it once, as a page does (withPageTag): a send is checked and then
// delivered to its audience under the same access_version, read once.
func (a ChatAccess) FrameContext(ctx context.Context) context.Context {
	return withPageTag(ctx)
}

// AuthorizeSend is Authorize for a send, with the audit entry of an
// allowed send written by the chat in the message's own transaction.
func (a ChatAccess) AuthorizeSend(ctx context.Context, p messaging.Participant, conversationID string) (func(context.Context, *sqlx.Tx) error, error) {
	u := userOf(p)
	s := a.store
	act := Action("chat." + string(messaging.ActionSend))
	caseID, err := s.conversationCase(ctx, u, conversationID)
	if err != nil {
		return nil, s.audit(ctx, u, act, caseID, conversationID, err)
	}
	e, now := auditEntry(u, act, caseID, conversationID, nil), s.now()
	return func(ctx context.Context, tx *sqlx.Tx) error { return insertAudit(ctx, tx, now, e) }, nil
}

// conversationCase returns the case of conversationID if u may use it, by
// canUseConversation (or the memo of its answer), or an error wrapping
// ErrNotFound and messaging.ErrNotFound.
func (s *Store) conversationCase(ctx context.Context, u User, conversationID string) (string, error) {
	version, err := s.accessVersion(ctx)
	if err != nil {
		return "", fmt.Errorf("authorize conversation: %w", err)
	}
	args := append([]any{conversationID}, s.chatArgs(u)...)
	day := args[len(args)-1].(string) // chatArgs ends with today's date
	key := decisionKey{user: u.ID, kind: string(u.Kind), conversation: conversationID}
	caseID, ok := s.memo.decision(version, day, key)
	if !ok {
		err = s.db.GetContext(ctx, &caseID, s.db.Rebind(`
			SELECT k.id FROM conversations c JOIN cases k ON k.id = c.case_id
			WHERE c.id = ? AND `+canUseConversation), args...)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			caseID = ""
		case err != nil:
			return "", fmt.Errorf("authorize conversation: %w", err)
		}
		s.memo.keepDecision(version, day, key, caseID)
	}
	if caseID == "" {
		// Both sentinels: the chat answers not_found, the audit says denied.
		return "", fmt.Errorf("conversation %s: %w (%w)", conversationID, ErrNotFound, messaging.ErrNotFound)
	}
	return caseID, nil
}

// Audience returns who may see conversationID now: its members who are
// still active parties, the staff of its case, and the substitute of its
// primary caseworker while they are away.
func (a ChatAccess) Audience(ctx context.Context, conversationID string) ([]messaging.Recipient, error) {
	s := a.store
	version, err := s.accessVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("conversation audience: %w", err)
	}
	today := messaging.DateOf(s.now()).String()
	if rs, ok := s.memo.audience(version, today, conversationID); ok {
		return rs, nil
	}
	var rows []struct {
		UserID string `db:"user_id"`
		Kind   string `db:"kind"`
	}
	err = s.db.SelectContext(ctx, &rows, s.db.Rebind(`
		SELECT m.user_id, 'citizen' AS kind
		FROM conversation_members m
		JOIN conversations c ON c.id = m.conversation_id
		JOIN parties p ON p.case_id = c.case_id AND p.user_id = m.user_id AND p.revoked_at IS NULL
		WHERE m.conversation_id = ?
		UNION
		SELECT a.user_id, u.kind
		FROM conversations c
		JOIN case_caseworkers a ON a.case_id = c.case_id
		JOIN users u ON u.id = a.user_id
		WHERE c.id = ?
		UNION
		SELECT u.id, u.kind
		FROM conversations c
		JOIN cases k ON k.id = c.case_id
		JOIN users u ON u.team_id = k.team_id AND u.kind = 'teamlead'
		WHERE c.id = ?
		UNION
		SELECT u.id, u.kind
		FROM conversations c
		JOIN case_caseworkers pa ON pa.case_id = c.case_id AND pa.is_primary
		JOIN availability_absences ab ON ab.user_id = pa.user_id
		JOIN users u ON u.id = ab.substitute_id AND u.kind IN ('caseworker', 'teamlead')
		WHERE c.id = ? AND ab.from_day <= ? AND ab.to_day >= ?`),
		conversationID, conversationID, conversationID, conversationID, today, today)
	if err != nil {
		return nil, fmt.Errorf("conversation audience: %w", err)
	}
	rs := make([]messaging.Recipient, len(rows))
	for i, r := range rows {
		rs[i] = messaging.Recipient{UserID: r.UserID, Role: messaging.Role(r.Kind)}
	}
	s.memo.keepAudience(version, today, conversationID, rs)
	return rs, nil
}
