package portal

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Store reads and writes the portal's data. Reads of case data take a
// Grant from Authorize; nothing else in the package writes SQL.
type Store struct {
	db  *sqlx.DB
	now func() time.Time // the clock; tests set it

	memo accessMemo    // the chat's access answers (access_memo.go)
	dir  directoryMemo // offices, contacts, conversation lists (directory.go)
}

// NewStore returns a Store over an opened, migrated database.
func NewStore(db *sqlx.DB) *Store {
	return &Store{db: db, now: func() time.Time { return time.Now().UTC() }}
}

// NewID returns a random public id: 120 bits, lowercase base32, so ids
// cannot be guessed or counted.
func NewID() string {
	b := make([]byte, 15)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// User returns the user with id.
func (s *Store) User(ctx context.Context, id string) (User, error) {
	return s.userWhere(ctx, `id = ?`, id)
}

// UserByDemoKey returns the demo cast member with key (e.g. "sara").
func (s *Store) UserByDemoKey(ctx context.Context, key string) (User, error) {
	return s.userWhere(ctx, `demo_key = ?`, key)
}

// userColumns are the users columns a User is scanned from.
const userColumns = `id, kind, name, lang, COALESCE(team_id, '') AS team_id, unit`

func (s *Store) userWhere(ctx context.Context, where string, arg any) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, s.db.Rebind(`
		SELECT `+userColumns+`
		FROM users WHERE `+where), arg)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// SetLanguage saves u's preferred language.
func (s *Store) SetLanguage(ctx context.Context, userID, lang string) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE users SET lang = ? WHERE id = ?`), lang, userID)
	if err != nil {
		return fmt.Errorf("set language: %w", err)
	}
	return nil
}

// DemoPerson is a member of the demo cast, for the demo sign-in page.
type DemoPerson struct {
	Key  string `db:"demo_key"`
	Name string `db:"name"`
	Kind Kind   `db:"kind"`
}

// DemoPeople lists the demo cast, staff last.
func (s *Store) DemoPeople(ctx context.Context) ([]DemoPerson, error) {
	var ps []DemoPerson
	err := s.db.SelectContext(ctx, &ps, `
		SELECT demo_key, name, kind FROM users WHERE demo_key IS NOT NULL
		ORDER BY CASE kind WHEN 'citizen' THEN 0 ELSE 1 END, name`)
	if err != nil {
		return nil, fmt.Errorf("list demo people: %w", err)
	}
	return ps, nil
}

// Office returns the office with id. Offices are public information.
func (s *Store) Office(ctx context.Context, id string) (Office, error) {
	var o Office
	err := s.db.GetContext(ctx, &o, s.db.Rebind(`
		SELECT id, name, municipality, phone, emergency_phone FROM offices WHERE id = ?`), id)
	if errors.Is(err, sql.ErrNoRows) {
		return Office{}, ErrNotFound
	}
	if err != nil {
		return Office{}, fmt.Errorf("get office: %w", err)
	}
	return o, nil
}

// DefaultOffice returns the office shown to people who are not signed in
// (its emergency numbers are in every page's footer): the first one created.
func (s *Store) DefaultOffice(ctx context.Context) (Office, error) {
	var o Office
	err := s.db.GetContext(ctx, &o, `
		SELECT id, name, municipality, phone, emergency_phone FROM offices ORDER BY name LIMIT 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return Office{}, ErrNotFound
	}
	if err != nil {
		return Office{}, fmt.Errorf("get default office: %w", err)
	}
	return o, nil
}

// CaseSummary is one card on "my cases".
type CaseSummary struct {
	Case
	Role         Role `db:"role"`          // the viewer's party role, "" for staff
	NewDocuments int  `db:"new_documents"` // visible documents the viewer has not opened
}

// Cases lists the cases u may see, each recorded in the audit log. It uses
// the same rule as Authorize (canSeeCase), in one query, and fails closed.
func (s *Store) Cases(ctx context.Context, u User) ([]CaseSummary, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	defer tx.Rollback()

	var cs []CaseSummary
	// Arguments in query order: role, docVisibleSQL, reads, canSeeCase.
	args := []any{u.ID}
	args = append(args, docVisibleArgs(u)...)
	args = append(args, u.ID)
	args = append(args, accessArgs(u)...)
	err = tx.SelectContext(ctx, &cs, tx.Rebind(`
		SELECT c.id, c.reference, c.child_name, c.status, c.opened_at, c.investigation_due,
		       c.closed_at, c.office_id,
		       COALESCE((SELECT p.role FROM parties p
		                 WHERE p.case_id = c.id AND p.user_id = ? AND p.revoked_at IS NULL), '') AS role,
		       (SELECT COUNT(*) FROM documents d
		        WHERE d.case_id = c.id AND `+docVisibleSQL+`
		          AND NOT EXISTS (SELECT 1 FROM document_reads r
		                          WHERE r.document_id = d.id AND r.user_id = ?)) AS new_documents
		FROM cases c
		WHERE `+canSeeCase+`
		ORDER BY CASE c.status WHEN 'closed' THEN 1 ELSE 0 END, c.opened_at DESC`), args...)
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	if err := s.auditListed(ctx, tx, u, ids); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	return cs, nil
}

// docVisibleSQL is THE visibility rule for documents within a case the
// viewer may see, as SQL over the alias d with the arguments made by
// docVisibleArgs. Staff see every document that is not withdrawn; a party
// sees one published to their role in this case and not withheld from
// them (§ 12-6). The role comes from the parties table, never the request.
const docVisibleSQL = `d.withdrawn_at IS NULL AND (? OR (
	EXISTS (SELECT 1 FROM document_audience da
	        JOIN parties p ON p.role = da.role
	        WHERE da.document_id = d.id AND p.case_id = d.case_id
	          AND p.user_id = ? AND p.revoked_at IS NULL)
	AND NOT EXISTS (SELECT 1 FROM document_withheld w
	                WHERE w.document_id = d.id AND w.user_id = ?)))`

func docVisibleArgs(u User) []any {
	party := partyOf(u)
	return []any{u.Kind.Staff(), party, party}
}

// partyOf is u's id for SQL that asks about u as a party of a case
// (audiences, withholding), or "" for staff. "" matches no row (ids are
// never empty), so such a check is false for staff without a branch of
// its own.
func partyOf(u User) string {
	if u.Kind.Staff() {
		return ""
	}
	return u.ID
}

// party is partyOf the viewer of g's case.
func (g Grant) party() string { return partyOf(g.viewer) }

// Overview is what the case page shows besides its lists.
type Overview struct {
	Case       Case
	Office     Office
	Caseworker string // the primary caseworker's name; "" if none is assigned
	// Withheld is true when some documents in the case are withheld from
	// the viewer. Only the fact is shown, never a title, date or count.
	Withheld bool
	// NewDocuments counts visible documents the viewer has not opened.
	NewDocuments int
	// NextAppealDue is the earliest appeal deadline still ahead among the
	// documents the viewer can see.
	NextAppealDue *time.Time

	documents []Document // what the counts above were taken from
}

// Overview returns the case g grants, with its office and contact.
func (s *Store) Overview(ctx context.Context, g Grant) (Overview, error) {
	// One query for the case, its office, its caseworker's name and
	// whether anything is withheld from the viewer: each statement costs
	// a page of its own in SQLite, whose cache every commit empties.
	var row struct {
		Case
		OfficeName      string `db:"office_name"`
		Municipality    string `db:"office_municipality"`
		OfficePhone     string `db:"office_phone"`
		EmergencyPhone  string `db:"office_emergency_phone"`
		Caseworker      string `db:"caseworker"`
		WithheldFromYou bool   `db:"withheld"`
	}
	// The withheld check is by g.party(), so staff, who are never told
	// about withholding, match no row and get false here.
	err := s.db.GetContext(ctx, &row, s.db.Rebind(`
		SELECT k.id, k.reference, k.child_name, k.status, k.opened_at, k.investigation_due,
		       k.closed_at, k.office_id,
		       o.name AS office_name, o.municipality AS office_municipality,
		       o.phone AS office_phone, o.emergency_phone AS office_emergency_phone,
		       COALESCE((SELECT u.name FROM case_caseworkers a JOIN users u ON u.id = a.user_id
		                 WHERE a.case_id = k.id ORDER BY a.is_primary DESC, u.name LIMIT 1), '') AS caseworker,
		       EXISTS (SELECT 1 FROM document_withheld w JOIN documents d ON d.id = w.document_id
		               WHERE d.case_id = k.id AND w.user_id = ? AND d.withdrawn_at IS NULL) AS withheld
		FROM cases k JOIN offices o ON o.id = k.office_id
		WHERE k.id = ?`), g.party(), g.caseID)
	if err != nil { // cases.office_id references offices: no row means no case
		return Overview{}, fmt.Errorf("get case: %w", err)
	}
	o := Overview{
		Case: row.Case,
		Office: Office{ID: row.OfficeID, Name: row.OfficeName, Municipality: row.Municipality,
			Phone: row.OfficePhone, EmergencyPhone: row.EmergencyPhone},
		Caseworker: row.Caseworker,
		Withheld:   row.WithheldFromYou,
	}
	docs, err := s.Documents(ctx, g)
	if err != nil {
		return Overview{}, err
	}
	o.documents = docs
	now := s.now()
	for _, d := range docs {
		if d.New {
			o.NewDocuments++
		}
		if d.AppealDue != nil && d.AppealDue.After(now) && (o.NextAppealDue == nil || d.AppealDue.Before(*o.NextAppealDue)) {
			o.NextAppealDue = d.AppealDue
		}
	}
	return o, nil
}

const documentColumns = `d.id, d.case_id, d.title, d.kind, d.published_at, d.appeal_due, d.filename,
	d.content_type, d.size, d.sha256,
	NOT EXISTS (SELECT 1 FROM document_reads r WHERE r.document_id = d.id AND r.user_id = ?) AS is_new`

// Documents lists the documents of g's case that the viewer may see, newest first.
func (s *Store) Documents(ctx context.Context, g Grant) ([]Document, error) {
	var ds []Document
	args := append([]any{g.viewer.ID, g.caseID}, docVisibleArgs(g.viewer)...)
	err := s.db.SelectContext(ctx, &ds, s.db.Rebind(`
		SELECT `+documentColumns+`
		FROM documents d
		WHERE d.case_id = ? AND `+docVisibleSQL+`
		ORDER BY d.published_at DESC, d.id`), args...)
	if err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	return ds, nil
}

// document returns docID if it is in g's case and visible to the viewer.
func (s *Store) document(ctx context.Context, g Grant, docID string) (Document, error) {
	var d Document
	args := append([]any{g.viewer.ID, docID, g.caseID}, docVisibleArgs(g.viewer)...)
	err := s.db.GetContext(ctx, &d, s.db.Rebind(`
		SELECT `+documentColumns+`
		FROM documents d
		WHERE d.id = ? AND d.case_id = ? AND `+docVisibleSQL), args...)
	if errors.Is(err, sql.ErrNoRows) {
		return Document{}, ErrNotFound // withheld, not published to them, or gone
	}
	if err != nil {
		return Document{}, fmt.Errorf("get document: %w", err)
	}
	return d, nil
}

// DocumentContent returns the bytes of a document that AuthorizeDocument
// has granted.
func (s *Store) DocumentContent(ctx context.Context, g Grant, d Document) ([]byte, error) {
	var b []byte
	err := s.db.GetContext(ctx, &b, s.db.Rebind(
		`SELECT content FROM documents WHERE id = ? AND case_id = ?`), d.ID, g.caseID)
	if err != nil {
		return nil, fmt.Errorf("get document content: %w", err)
	}
	return b, nil
}

// MarkRead records that a family member opened d, so it is no longer "new"
// for them. Staff reads are in the audit log only.
func (s *Store) MarkRead(ctx context.Context, g Grant, d Document) error {
	if g.staff {
		return nil
	}
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`
		INSERT INTO document_reads (document_id, user_id, read_at) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`), d.ID, g.viewer.ID, s.now())
	if err != nil {
		return fmt.Errorf("mark read: %w", err)
	}
	return nil
}

// Timeline lists the events of g's case the viewer may see, oldest first.
// Staff see all; a party sees events published to their role.
func (s *Store) Timeline(ctx context.Context, g Grant) ([]Event, error) {
	var es []Event
	err := s.db.SelectContext(ctx, &es, s.db.Rebind(`
		SELECT e.id, e.kind, e.occurred_at, e.note
		FROM timeline_events e
		WHERE e.case_id = ? AND (? OR EXISTS (
			SELECT 1 FROM timeline_audience ta JOIN parties p ON p.role = ta.role
			WHERE ta.event_id = e.id AND p.case_id = e.case_id
			  AND p.user_id = ? AND p.revoked_at IS NULL))
		ORDER BY e.occurred_at, e.id`), g.caseID, g.staff, g.party())
	if err != nil {
		return nil, fmt.Errorf("list timeline: %w", err)
	}
	return es, nil
}

// PartyView is, for staff, one party of a case and what they can see.
type PartyView struct {
	UserID string `db:"user_id"`
	Name   string `db:"name"`
	Role   Role   `db:"role"`
}

// DocumentVisibility is, for staff, who among the parties can see a document.
type DocumentVisibility struct {
	VisibleTo    []PartyView
	WithheldFrom []Withholding
}

// Withholding is one party a document is withheld from, and why.
type Withholding struct {
	PartyView
	Reason string
}

// Visibility returns, for staff only, the case's parties and, per document
// id, which parties can see it and which it is withheld from.
func (s *Store) Visibility(ctx context.Context, g Grant) ([]PartyView, map[string]DocumentVisibility, error) {
	if !g.staff {
		return nil, nil, ErrNotFound // never shown to families
	}
	var parties []PartyView
	err := s.db.SelectContext(ctx, &parties, s.db.Rebind(`
		SELECT p.user_id, u.name, p.role FROM parties p JOIN users u ON u.id = p.user_id
		WHERE p.case_id = ? AND p.revoked_at IS NULL ORDER BY u.name`), g.caseID)
	if err != nil {
		return nil, nil, fmt.Errorf("list parties: %w", err)
	}
	var aud []struct {
		DocumentID string `db:"document_id"`
		Role       Role   `db:"role"`
	}
	err = s.db.SelectContext(ctx, &aud, s.db.Rebind(`
		SELECT da.document_id, da.role FROM document_audience da
		JOIN documents d ON d.id = da.document_id WHERE d.case_id = ?`), g.caseID)
	if err != nil {
		return nil, nil, fmt.Errorf("list audiences: %w", err)
	}
	var wh []struct {
		DocumentID string `db:"document_id"`
		UserID     string `db:"user_id"`
		Reason     string `db:"reason"`
	}
	err = s.db.SelectContext(ctx, &wh, s.db.Rebind(`
		SELECT w.document_id, w.user_id, w.reason FROM document_withheld w
		JOIN documents d ON d.id = w.document_id WHERE d.case_id = ?`), g.caseID)
	if err != nil {
		return nil, nil, fmt.Errorf("list withheld: %w", err)
	}
	roles := map[string]map[Role]bool{}
	for _, a := range aud {
		if roles[a.DocumentID] == nil {
			roles[a.DocumentID] = map[Role]bool{}
		}
		roles[a.DocumentID][a.Role] = true
	}
	withheld := map[string]map[string]string{}
	for _, w := range wh {
		if withheld[w.DocumentID] == nil {
			withheld[w.DocumentID] = map[string]string{}
		}
		withheld[w.DocumentID][w.UserID] = w.Reason
	}
	vis := map[string]DocumentVisibility{}
	for docID, rs := range roles {
		var v DocumentVisibility
		for _, p := range parties {
			if !rs[p.Role] {
				continue
			}
			if reason, ok := withheld[docID][p.UserID]; ok {
				v.WithheldFrom = append(v.WithheldFrom, Withholding{p, reason})
				continue
			}
			v.VisibleTo = append(v.VisibleTo, p)
		}
		vis[docID] = v
	}
	return parties, vis, nil
}
