package portal

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"familieportal/messaging"
)

// TestChatAccess_keptAnswersFollowEveryChange: the chat's access answers
// are kept in memory (access_memo.go), so each kind of change to what the
// access rules read must reach them at once. Each case first asks, so the
// answer is kept, then changes the database the way an import or the
// integration API would, and asks again: the new answer must be the
// database's. A table the migration's triggers forget fails here.
func TestChatAccess_keptAnswersFollowEveryChange(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	tests := []struct {
		name   string
		who    string // demo key
		conv   string // "child/member"
		change string // SQL; ? are the demo ids of args
		args   []string
	}{
		{"a party's rights are revoked", "sara", "emma/sara",
			`UPDATE parties SET revoked_at = ? WHERE user_id = ?`, []string{"@now", "sara"}},
		{"a member leaves the conversation", "jonas", "emma/jonas",
			`DELETE FROM conversation_members WHERE user_id = ?`, []string{"jonas"}},
		{"a caseworker is taken off the case", "kari", "emma/sara",
			`DELETE FROM case_caseworkers WHERE user_id = ?`, []string{"kari"}},
		{"a team lead moves to another office", "ingrid", "lina/maria",
			`UPDATE users SET team_id = NULL WHERE id = ?`, []string{"ingrid"}},
		{"a case moves to another team", "ingrid", "noah/noah",
			`UPDATE cases SET team_id = NULL WHERE id IN (SELECT case_id FROM conversations WHERE id = ?)`, []string{"@conv"}},
		{"an absence is called off", "kari", "noah/noah",
			`DELETE FROM availability_absences WHERE substitute_id = ?`, []string{"kari"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Options{Demo: true})
			convs := demoConversations(t, e)
			conv := convs[tt.conv]
			if conv == "" {
				t.Fatalf("no demo conversation %s", tt.conv)
			}
			var kind string
			if err := e.db.Get(&kind, e.db.Rebind(`SELECT kind FROM users WHERE id = ?`), e.users[tt.who]); err != nil {
				t.Fatal(err)
			}
			p := messaging.Participant{UserID: e.users[tt.who], Role: messaging.Role(kind)}
			a := e.store.ChatAccess()
			inAudience := func() bool {
				rs, err := a.Audience(ctx, conv)
				if err != nil {
					t.Fatal(err)
				}
				return slices.ContainsFunc(rs, func(r messaging.Recipient) bool { return r.UserID == p.UserID })
			}
			listed := func() bool { // the list is kept too (directory.go)
				refs, err := a.Conversations(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				return slices.ContainsFunc(refs, func(r messaging.ConversationRef) bool { return r.ID == conv })
			}
			for range 2 { // the second answer comes from memory
				if err := a.Authorize(ctx, p, conv, messaging.ActionSync); err != nil {
					t.Fatalf("before the change: Authorize = %v, want allowed", err)
				}
				if !inAudience() {
					t.Fatalf("before the change: %s not in the audience", tt.who)
				}
				if !listed() {
					t.Fatalf("before the change: Conversations does not list %s", tt.conv)
				}
			}
			var args []any
			for _, k := range tt.args {
				switch k {
				case "@now":
					args = append(args, now)
				case "@conv":
					args = append(args, conv)
				default:
					args = append(args, e.users[k])
				}
			}
			e.db.MustExec(e.db.Rebind(tt.change), args...)

			if err := a.Authorize(ctx, p, conv, messaging.ActionSync); !errors.Is(err, messaging.ErrNotFound) {
				t.Errorf("after the change: Authorize = %v, want not found", err)
			}
			if inAudience() {
				t.Errorf("after the change: %s still in the audience", tt.who)
			}
			if listed() {
				t.Errorf("after the change: Conversations still lists %s", tt.conv)
			}
		})
	}
}

// demoConversations maps "child/member" (lower case) to the demo's
// conversation ids.
func demoConversations(t *testing.T, e *env) map[string]string {
	t.Helper()
	var rows []struct{ ID, Child, Member string }
	if err := e.db.Select(&rows, `
		SELECT c.id, k.child_name AS child, u.demo_key AS member
		FROM conversations c JOIN cases k ON k.id = c.case_id
		JOIN conversation_members m ON m.conversation_id = c.id JOIN users u ON u.id = m.user_id`); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[strings.ToLower(r.Child)+"/"+r.Member] = r.ID
	}
	return out
}
