package portal

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"familieportal/messaging"
)

// The chat asks the same two questions for every frame: may this person
// use this conversation, and who may see it. The answers change only when
// what the access rules read changes, so they are kept in memory, tagged
// with the database's access_version (migration 0008): every table the
// rules read bumps that number in the same transaction as the change. A
// kept answer is used only while the number, read fresh for every
// question (for every page, on the portal's pages: withPageTag), is the
// one it was made under, and only on the Oslo date it was made on (a
// substitute's access follows the calendar). Reading the number is one
// row; the rules are joins over seven tables.
//
// The version is read before the answer is computed, so an answer is at
// least as new as its tag: a change committed in between bumps the number
// past the tag, and the answer is not used again.

// accessMemoMax bounds each map; past it, the memo starts afresh.
const accessMemoMax = 100_000

// accessMemo is the chat's kept access answers. The zero value is empty
// and ready.
type accessMemo struct {
	mu        sync.Mutex
	version   int64
	day       string
	decisions map[decisionKey]string           // the conversation's case id, "" if refused
	audiences map[string][]messaging.Recipient // by conversation id
}

type decisionKey struct {
	user, kind, conversation string
}

// at makes version and day the memo's, dropping what was kept under
// others. It reports false if the memo is already at a newer version (the
// caller's answer is older than what is kept, so it is not kept).
// Call with mu held.
func (m *accessMemo) at(version int64, day string) bool {
	if version < m.version {
		return false
	}
	if version != m.version || day != m.day || m.decisions == nil ||
		len(m.decisions) > accessMemoMax || len(m.audiences) > accessMemoMax {
		m.version, m.day = version, day
		m.decisions = map[decisionKey]string{}
		m.audiences = map[string][]messaging.Recipient{}
	}
	return true
}

func (m *accessMemo) decision(version int64, day string, k decisionKey) (caseID string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if version != m.version || day != m.day {
		return "", false
	}
	caseID, ok = m.decisions[k]
	return caseID, ok
}

func (m *accessMemo) keepDecision(version int64, day string, k decisionKey, caseID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at(version, day) {
		m.decisions[k] = caseID
	}
}

func (m *accessMemo) audience(version int64, day, conversationID string) ([]messaging.Recipient, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if version != m.version || day != m.day {
		return nil, false
	}
	rs, ok := m.audiences[conversationID]
	return slices.Clone(rs), ok
}

func (m *accessMemo) keepAudience(version int64, day, conversationID string, rs []messaging.Recipient) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at(version, day) {
		m.audiences[conversationID] = slices.Clone(rs)
	}
}

// accessVersion reads the database's access_version; on a page (under
// withPageTag, directory.go) once, with the page's other memo version.
func (s *Store) accessVersion(ctx context.Context) (int64, error) {
	if _, ok := ctx.Value(pageTagKey{}).(*pageTag); ok {
		tag, err := s.memoTag(ctx)
		return tag.access, err
	}
	var v int64
	if err := s.db.GetContext(ctx, &v, `SELECT v FROM access_version WHERE id = 1`); err != nil {
		return 0, fmt.Errorf("access version: %w", err)
	}
	return v, nil
}
