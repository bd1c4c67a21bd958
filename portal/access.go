package portal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"familieportal/messaging"
)

// Action names a kind of access, for the audit log.
type Action string

// Audited actions. Reads of case data are named after what was read.
const (
	ActCaseList         Action = "case.list"
	ActCaseView         Action = "case.view"
	ActTimeline         Action = "case.timeline"
	ActDocumentList     Action = "document.list"
	ActDocumentRead     Action = "document.read"
	ActDocumentDownload Action = "document.download"
	ActSignIn           Action = "session.signin"
	ActSignOut          Action = "session.signout"
)

// Grant is proof that Authorize let a viewer read one case. Every store
// method that reads case data takes a Grant, and only Authorize makes one,
// so no read can skip the access check.
type Grant struct {
	viewer User
	caseID string
	staff  bool // assigned caseworker, or team lead of the case's team
	role   Role // the viewer's party role; "" for staff
}

// CaseID is the case the grant is for.
func (g Grant) CaseID() string { return g.caseID }

// Staff reports whether the grant is a staff member's.
func (g Grant) Staff() bool { return g.staff }

// Role is the viewer's party role in the case ("" for staff).
func (g Grant) Role() Role { return g.role }

// canSeeCase is THE access rule for cases, as SQL over the alias c. It takes
// the three arguments made by accessArgs. A citizen sees a case they are an
// active party to; a caseworker one they are assigned to; a team lead also
// every case of their team (read from the database, not the session).
// Party rights come from the case data only.
const canSeeCase = `(
	EXISTS (SELECT 1 FROM parties p
		WHERE p.case_id = c.id AND p.user_id = ? AND p.revoked_at IS NULL)
	OR EXISTS (SELECT 1 FROM case_caseworkers a
		WHERE a.case_id = c.id AND a.user_id = ?)
	OR EXISTS (SELECT 1 FROM users tl
		WHERE tl.id = ? AND tl.kind = 'teamlead' AND tl.team_id = c.team_id))`

// accessArgs fills canSeeCase for u. Each branch gets an argument only for
// the kind of user it is meant for, so a citizen can never match a staff
// branch and the other way round; "" matches no row (ids are never empty).
func accessArgs(u User) []any {
	var party, staff, lead string
	switch u.Kind {
	case KindCitizen:
		party = u.ID
	case KindCaseworker:
		staff = u.ID
	case KindTeamLead:
		staff, lead = u.ID, u.ID
	}
	return []any{party, staff, lead}
}

// Authorize decides whether u may perform act on case caseID (objectID
// names the object within the case, if any) and records the decision in
// the audit log. A case that is not u's is ErrNotFound, exactly like one
// that does not exist. It fails closed: if the decision cannot be recorded,
// the read is refused.
func (s *Store) Authorize(ctx context.Context, u User, caseID string, act Action, objectID string) (Grant, error) {
	g, err := s.grant(ctx, s.db, u, caseID)
	return g, s.audit(ctx, u, act, caseID, objectID, err)
}

func (s *Store) grant(ctx context.Context, q sqlx.QueryerContext, u User, caseID string) (Grant, error) {
	var row struct {
		Role sql.NullString `db:"role"`
	}
	// Arguments in query order: role lookup, case id, then canSeeCase's.
	args := append([]any{u.ID, caseID}, accessArgs(u)...)
	err := sqlx.GetContext(ctx, q, &row, s.db.Rebind(`
		SELECT (SELECT p.role FROM parties p
		        WHERE p.case_id = c.id AND p.user_id = ? AND p.revoked_at IS NULL) AS role
		FROM cases c
		WHERE c.id = ? AND `+canSeeCase), args...)
	if errors.Is(err, sql.ErrNoRows) {
		return Grant{}, ErrNotFound // not there, or not theirs: the same answer
	}
	if err != nil {
		return Grant{}, fmt.Errorf("authorize case: %w", err)
	}
	g := Grant{viewer: u, caseID: caseID, staff: u.Kind.Staff()}
	if !g.staff {
		g.role = Role(row.Role.String)
	}
	return g, nil
}

// AuthorizeDocument is Authorize for one document: the viewer must see the
// case, and the document must be published to their role and not withheld
// from them. Withdrawn documents are gone for everyone.
func (s *Store) AuthorizeDocument(ctx context.Context, u User, docID string, act Action) (Grant, Document, error) {
	var caseID string
	err := s.db.GetContext(ctx, &caseID, s.db.Rebind(
		`SELECT case_id FROM documents WHERE id = ? AND withdrawn_at IS NULL`), docID)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	} else if err != nil {
		err = fmt.Errorf("find document: %w", err)
	}
	var g Grant
	var d Document
	if err == nil {
		g, err = s.grant(ctx, s.db, u, caseID)
	}
	if err == nil {
		d, err = s.document(ctx, g, docID)
	}
	return g, d, s.audit(ctx, u, act, caseID, docID, err)
}

// audit records the outcome of an access decision and returns decision
// unless the record could not be written, in which case access is refused.
// Under a page's audit batch (withAuditBatch) the record is only added to
// the batch, which the page writes before it answers.
func (s *Store) audit(ctx context.Context, u User, act Action, caseID, objectID string, decision error) error {
	e := auditEntry(u, act, caseID, objectID, decision)
	if b, _ := ctx.Value(auditBatchKey{}).(*auditBatch); b != nil {
		e.At = s.now()
		b.mu.Lock()
		b.entries = append(b.entries, e)
		b.mu.Unlock()
		return decision
	}
	if err := s.Audit(ctx, e); err != nil {
		return fmt.Errorf("%s refused, audit failed: %w", act, err)
	}
	return decision
}

// auditBatch holds the audit entries of the access decisions of one page
// (the case page decides on the case, the chat's history and its read
// cursor), so they are written in one write instead of one each: every
// write is a commit, and every commit empties the page caches of SQLite's
// other connections. The entries are the same as without a batch.
type auditBatch struct {
	mu      sync.Mutex
	entries []AuditEntry
}

type auditBatchKey struct{}

// withAuditBatch returns ctx with a new, empty audit batch. Whoever makes
// one must call writeAuditBatch with it before anything that was read
// under it leaves the server, and refuse the page if that fails: the
// batch is what keeps those reads fail-closed. A decision followed by a
// write (moving a read cursor) is audited at once instead
// (withoutAuditBatch), so no write happens without its record.
func withAuditBatch(ctx context.Context) (context.Context, *auditBatch) {
	b := &auditBatch{}
	return context.WithValue(ctx, auditBatchKey{}, b), b
}

// withoutAuditBatch returns ctx in which decisions are audited at once
// again, for a decision that is followed by a write (a read cursor moved,
// a read receipt sent): its record must exist before the write happens.
func withoutAuditBatch(ctx context.Context) context.Context {
	return context.WithValue(ctx, auditBatchKey{}, (*auditBatch)(nil))
}

// writeAuditBatch writes b's entries in one write through the group
// committer, and empties b.
func (s *Store) writeAuditBatch(ctx context.Context, b *auditBatch) error {
	b.mu.Lock()
	entries := b.entries
	b.entries = nil
	b.mu.Unlock()
	if len(entries) == 0 {
		return nil
	}
	err := messaging.CommitterFor(s.db).Do(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		for _, e := range entries {
			if err := insertAudit(ctx, tx, e.At, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s refused, audit failed: %w", entries[0].Action, err)
	}
	return nil
}

// auditEntry is the audit entry of u's attempt to act on objectID of
// caseID, which decision answered.
func auditEntry(u User, act Action, caseID, objectID string, decision error) AuditEntry {
	outcome := "allowed"
	switch {
	case errors.Is(decision, ErrNotFound):
		outcome = "denied"
	case decision != nil:
		outcome = "failed"
	}
	return AuditEntry{
		ActorID: u.ID, ActorKind: u.Kind, Action: act,
		CaseID: caseID, ObjectID: objectID, Outcome: outcome,
		Purpose: purposeOf(u),
	}
}

// purposeOf is why a person reads a case, as shown in the family's access log.
func purposeOf(u User) string {
	if u.Kind.Staff() {
		return "casework"
	}
	return "own_case"
}

// AuditEntry is one row of the append-only audit log. It never holds
// message text, document content, names or national ids.
type AuditEntry struct {
	At        time.Time `db:"at"`
	ActorID   string    `db:"actor_id"`
	ActorKind Kind      `db:"actor_kind"`
	Action    Action    `db:"action"`
	CaseID    string    `db:"case_id"`
	ObjectID  string    `db:"object_id"`
	Outcome   string    `db:"outcome"`
	Purpose   string    `db:"purpose"`
}

// Audit appends e to the audit log, and returns once it is committed. The
// row may share its transaction with other writes (the chat's group
// commit): a read is allowed only after its audit row is stored, however
// many arrive at once.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	now := s.now()
	return messaging.CommitterFor(s.db).Do(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return insertAudit(ctx, tx, now, e)
	})
}

func insertAudit(ctx context.Context, x sqlx.ExtContext, now time.Time, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = now
	}
	e.At = e.At.UTC()
	_, err := sqlx.NamedExecContext(ctx, x, `
		INSERT INTO audit (at, actor_id, actor_kind, action, case_id, object_id, outcome, purpose)
		VALUES (:at, :actor_id, :actor_kind, :action, :case_id, :object_id, :outcome, :purpose)`, e)
	if err != nil {
		return fmt.Errorf("insert audit: %w", err)
	}
	return nil
}

// auditListed records, in tx, that u saw each of caseIDs in a list (once
// per case), so list pages fail closed like every other read.
func (s *Store) auditListed(ctx context.Context, tx sqlx.ExtContext, u User, caseIDs []string) error {
	seen := make(map[string]bool, len(caseIDs))
	for _, id := range caseIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		if err := insertAudit(ctx, tx, s.now(), AuditEntry{
			ActorID: u.ID, ActorKind: u.Kind, Action: ActCaseList,
			CaseID: id, Outcome: "allowed", Purpose: purposeOf(u),
		}); err != nil {
			return err
		}
	}
	return nil
}
