package portal

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// This file turns what a case system sends (see fiks.go) into the portal's
// cases, parties, documents and timeline, in one transaction per message.
//
// The case system's messages are kept (fiks_* tables), and everything the
// families see of a case is rebuilt from them after each message
// (rebuildCase): who may see each document and timeline event is a pure
// function of the stored messages, whatever order they came in.

// Audited actions of the integration API.
const (
	ActAPIAuth             Action = "api.auth"
	ActAPIMappePut         Action = "api.mappe.put"
	ActAPIMappeRevoke      Action = "api.mappe.revoke"
	ActAPIJournalpostPut   Action = "api.journalpost.put"
	ActAPIJournalpostDel   Action = "api.journalpost.withdraw"
	ActAPIDocumentPut      Action = "api.document.put"
	ActAPIDocumentDel      Action = "api.document.withdraw"
	ActAPIAccessAnswer     Action = "api.access_request.answer"
	ActAPIFeed             Action = "api.feed"
	ActAPIRead             Action = "api.read"
	ActAccessRequest       Action = "access_request.create"
	ActAccessRequestView   Action = "access_request.view"
	kindSystem             Kind   = "system" // actor kind of the case system in the audit log
	withheldReasonNotShown        = "Ikke eksponert for parten i fagsystemet (bvl. § 12-6)."
)

// APIError is an error of the integration API with its HTTP status and,
// for a problem with the request, where in it.
type APIError struct {
	Status   int
	Title    string
	Problems []FieldError
	cause    error
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%d %s", e.Status, e.Title)
	for _, p := range e.Problems {
		msg += fmt.Sprintf("; %s%s: %s", p.Pointer, p.Parameter, p.Detail)
	}
	return msg
}

// Unwrap lets errors.Is find ErrNotFound and ErrInvalid behind an APIError.
func (e *APIError) Unwrap() error { return e.cause }

func notFoundAt(pointer, detail string) error {
	return &APIError{Status: http.StatusNotFound, Title: "Not found", cause: ErrNotFound,
		Problems: []FieldError{{Pointer: pointer, Detail: detail}}}
}

func conflictAt(pointer, format string, args ...any) error {
	return &APIError{Status: http.StatusConflict, Title: "Conflict",
		Problems: []FieldError{{Pointer: pointer, Detail: fmt.Sprintf(format, args...)}}}
}

func badParam(param, format string, args ...any) error {
	return &APIError{Status: http.StatusBadRequest, Title: "Invalid request", cause: ErrInvalid,
		Problems: []FieldError{{Parameter: param, Detail: fmt.Sprintf(format, args...)}}}
}

// Ingest receives the case system's messages for one office. The import
// command and the API use the same methods.
type Ingest struct {
	store    *Store
	pidKey   []byte
	officeID string
	actorID  string // "apikey:<id>" or "import", for the audit log
}

// minPIDKey is the shortest key accepted for hashing national ids.
const minPIDKey = 32

// errNoPIDKey means the portal cannot match parties to people.
var errNoPIDKey = errors.New("portal: the integration needs --pid-key (PORTAL_PID_KEY, at least 32 bytes) to match parties to people")

// NewIngest returns an Ingest that writes to officeID as actorID.
func (s *Store) NewIngest(pidKey []byte, officeID, actorID string) (*Ingest, error) {
	if len(pidKey) < minPIDKey {
		return nil, errNoPIDKey
	}
	return &Ingest{store: s, pidKey: pidKey, officeID: officeID, actorID: actorID}, nil
}

// PutResult says what a message did.
type PutResult struct {
	MeldingID string `json:"meldingId"`
	// Result is created, updated or unchanged (a resend of the same body).
	Result    string           `json:"result"`
	Documents []DocumentStatus `json:"documents,omitempty"`
}

// DocumentStatus is where one document of a journal post stands.
type DocumentStatus struct {
	Index     int    `json:"index"`
	Uploaded  bool   `json:"uploaded"`
	Withdrawn bool   `json:"withdrawn"`
	SHA256    string `json:"sha256,omitempty"`
}

// normID checks a meldingId from a path and gives it in lower case, as
// UUIDs are compared.
func normID(id string) (string, error) {
	if !validMeldingID(id) {
		return "", badParam("meldingId", "must be a UUID")
	}
	return strings.ToLower(id), nil
}

func bodySum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tx runs f in one transaction: every message is all or nothing.
func (in *Ingest) tx(ctx context.Context, f func(tx *sqlx.Tx) error) error {
	tx, err := in.store.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	if err := f(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return nil
}

func (in *Ingest) audit(ctx context.Context, x sqlx.ExtContext, act Action, caseID, objectID string, decision error) error {
	outcome := "allowed"
	switch {
	case errors.Is(decision, ErrNotFound):
		outcome = "denied"
	case decision != nil:
		return decision // invalid requests read nothing and change nothing
	}
	if err := insertAudit(ctx, x, in.store.now(), AuditEntry{ActorID: in.actorID, ActorKind: kindSystem,
		Action: act, CaseID: caseID, ObjectID: objectID, Outcome: outcome, Purpose: "integration"}); err != nil {
		return err
	}
	return decision
}

// denied records a refused request (outside any transaction, which has
// been rolled back) and returns err.
func (in *Ingest) denied(ctx context.Context, act Action, objectID string, err error) error {
	if errors.Is(err, ErrNotFound) {
		if aerr := in.audit(ctx, in.store.db, act, "", objectID, err); aerr != nil && !errors.Is(aerr, ErrNotFound) {
			return aerr
		}
	}
	return err
}

// PutMappe receives a mappe message: the case folder as indexed for one
// party. It creates or updates the case, the party (a citizen matched by
// the keyed hash of the national id, created if unknown), the case's
// status and its timeline.
func (in *Ingest) PutMappe(ctx context.Context, meldingID string, body []byte) (PutResult, error) {
	meldingID, err := normID(meldingID)
	res := PutResult{MeldingID: meldingID}
	if err != nil {
		return res, err
	}
	m, err := DecodeMappe(body)
	if err != nil {
		return res, err
	}
	sum := bodySum(body)
	err = in.tx(ctx, func(tx *sqlx.Tx) error {
		var prev struct {
			CaseID    string       `db:"case_id"`
			UserID    string       `db:"user_id"`
			Sum       string       `db:"body_sha256"`
			RevokedAt sql.NullTime `db:"revoked_at"`
		}
		err := tx.GetContext(ctx, &prev, tx.Rebind(`
			SELECT case_id, user_id, body_sha256, revoked_at FROM fiks_mapper
			WHERE office_id = ? AND melding_id = ?`), in.officeID, meldingID)
		found := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("get mappe: %w", err)
		}
		if found && prev.Sum == sum && !prev.RevokedAt.Valid {
			res.Result = "unchanged"
			return in.audit(ctx, tx, ActAPIMappePut, prev.CaseID, meldingID, nil)
		}
		pidHash := PIDHash(in.pidKey, *m.MinPart.Fodselsnummer)
		userID, err := in.citizen(ctx, tx, pidHash, m.MinPart.Name())
		if err != nil {
			return err
		}
		if found && prev.UserID != userID {
			return conflictAt("/minPart/fodselsnummer", "this meldingId is indexed for another party")
		}
		caseID, err := in.upsertCase(ctx, tx, m)
		if err != nil {
			return err
		}
		if found && prev.CaseID != caseID {
			return conflictAt("/systemId", "this meldingId belongs to another case")
		}
		role := fiksRoles[*m.MinPart.Rolle]
		now := in.store.now()
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO parties (case_id, user_id, role) VALUES (?, ?, ?)
			ON CONFLICT (case_id, user_id) DO UPDATE SET role = excluded.role, revoked_at = NULL`),
			caseID, userID, role); err != nil {
			return fmt.Errorf("upsert party: %w", err)
		}
		if err := in.ensureConversation(ctx, tx, caseID, userID, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO fiks_mapper (office_id, melding_id, case_id, user_id, rolle, fornavn, etternavn,
			                         body_sha256, received_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (office_id, melding_id) DO UPDATE SET rolle = excluded.rolle,
				fornavn = excluded.fornavn, etternavn = excluded.etternavn,
				body_sha256 = excluded.body_sha256, updated_at = excluded.updated_at, revoked_at = NULL`),
			in.officeID, meldingID, caseID, userID, *m.MinPart.Rolle, strings.TrimSpace(*m.MinPart.Fornavn),
			strings.TrimSpace(*m.MinPart.Etternavn), sum, now, now); err != nil {
			return fmt.Errorf("upsert mappe: %w", err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM fiks_milepeler WHERE office_id = ? AND melding_id = ?`),
			in.officeID, meldingID); err != nil {
			return fmt.Errorf("replace milestones: %w", err)
		}
		for i, ms := range milestonesOf(m) {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`
				INSERT INTO fiks_milepeler (office_id, melding_id, pos, status, startdato, sluttdato, beskrivelse)
				VALUES (?, ?, ?, ?, ?, ?, ?)`),
				in.officeID, meldingID, i, ms.status, ms.start, ms.end, ms.note); err != nil {
				return fmt.Errorf("insert milestone: %w", err)
			}
		}
		if err := in.store.rebuildCase(ctx, tx, caseID); err != nil {
			return err
		}
		res.Result = "updated"
		if !found {
			res.Result = "created"
		}
		return in.audit(ctx, tx, ActAPIMappePut, caseID, meldingID, nil)
	})
	return res, in.denied(ctx, ActAPIMappePut, meldingID, err)
}

// citizen returns the citizen whose national id hashes to pidHash,
// creating them if the portal has not seen them. The name is the case
// system's; the national id itself is never stored.
func (in *Ingest) citizen(ctx context.Context, tx *sqlx.Tx, pidHash, name string) (string, error) {
	var u struct {
		ID   string `db:"id"`
		Kind Kind   `db:"kind"`
		Name string `db:"name"`
	}
	err := tx.GetContext(ctx, &u, tx.Rebind(`SELECT id, kind, name FROM users WHERE pid_hash = ?`), pidHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		id := NewID()
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO users (id, kind, name, pid_hash, created_at) VALUES (?, 'citizen', ?, ?, ?)`),
			id, name, pidHash, in.store.now()); err != nil {
			return "", fmt.Errorf("create citizen: %w", err)
		}
		return id, nil
	case err != nil:
		return "", fmt.Errorf("find citizen: %w", err)
	case u.Kind != KindCitizen:
		return "", conflictAt("/minPart/fodselsnummer", "belongs to a staff account, not a family member")
	}
	if u.Name != name {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE users SET name = ? WHERE id = ?`), name, u.ID); err != nil {
			return "", fmt.Errorf("rename citizen: %w", err)
		}
	}
	return u.ID, nil
}

// ensureConversation gives a new party their own conversation with the
// case's caseworkers, as every party has (DESIGN.md, domain model).
func (in *Ingest) ensureConversation(ctx context.Context, tx *sqlx.Tx, caseID, userID string, now time.Time) error {
	var n int
	if err := tx.GetContext(ctx, &n, tx.Rebind(`
		SELECT COUNT(*) FROM conversations c JOIN conversation_members m ON m.conversation_id = c.id
		WHERE c.case_id = ? AND c.kind = 'party' AND m.user_id = ?`), caseID, userID); err != nil {
		return fmt.Errorf("find conversation: %w", err)
	}
	if n > 0 {
		return nil
	}
	id := NewID()
	now = now.Truncate(time.Millisecond)
	if _, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO conversations (id, case_id, kind, last_seq, created_at) VALUES (?, ?, 'party', 0, ?)`),
		id, caseID, now); err != nil {
		return fmt.Errorf("create conversation: %w", err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO conversation_members (conversation_id, user_id, last_read_seq, joined_at) VALUES (?, ?, 0, ?)`),
		id, userID, now); err != nil {
		return fmt.Errorf("add conversation member: %w", err)
	}
	return nil
}

// milestone is a milestone as stored.
type milestone struct {
	status     Status
	start      time.Time
	end        *time.Time
	note       string
	navaerende bool
}

// milestonesOf lists the folder's milestones, the current one included,
// oldest first. The mappe has been validated.
func milestonesOf(m *FiksMappe) []milestone {
	var out []milestone
	conv := func(x *FiksMilepel, now bool) {
		st, _ := milestoneStatus(*x.Navn)
		start, _ := time.Parse(time.RFC3339Nano, *x.Startdato)
		ms := milestone{status: st, start: start.UTC(), note: strings.TrimSpace(deref(x.Beskrivelse)), navaerende: now}
		if x.Sluttdato != nil {
			t, _ := time.Parse(time.RFC3339Nano, *x.Sluttdato)
			t = t.UTC()
			ms.end = &t
		}
		for i := range out {
			if out[i].status == ms.status && out[i].start.Equal(ms.start) {
				out[i].navaerende = out[i].navaerende || now
				return // the current milestone is usually in the list too
			}
		}
		out = append(out, ms)
	}
	for _, x := range m.Milepeler {
		if x != nil {
			conv(x, false)
		}
	}
	if m.NavaerendeMilepel != nil {
		conv(m.NavaerendeMilepel, true)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

func parseTime(s *string) *time.Time {
	if s == nil {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return nil
	}
	t = t.UTC()
	return &t
}

// investigationTime is how long an investigation may normally take
// (barnevernsloven § 2-2: three months from the report).
const investigationMonths = 3

// upsertCase creates or updates the case the folder describes, found by
// the case system's systemId within the office.
func (in *Ingest) upsertCase(ctx context.Context, tx *sqlx.Tx, m *FiksMappe) (caseID string, err error) {
	systemID := strings.TrimSpace(*m.SystemID)
	err = tx.GetContext(ctx, &caseID, tx.Rebind(`
		SELECT case_id FROM fiks_cases WHERE office_id = ? AND system_id = ?`), in.officeID, systemID)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("find case: %w", err)
	}
	created := errors.Is(err, sql.ErrNoRows)
	now := in.store.now()

	child := ""
	if deref(m.MinPart.Rolle) == "HOVEDPERSON" {
		child = strings.TrimSpace(*m.MinPart.Fornavn)
	}
	for _, p := range m.AndreParter {
		if child == "" && p != nil && *p.Rolle == "HOVEDPERSON" {
			child = strings.TrimSpace(*p.Fornavn)
		}
	}

	// Status: closed when the folder is closed, else the current
	// milestone's, else the latest milestone's, else a new report.
	ms := milestonesOf(m)
	status := StatusReceived
	var current *milestone
	for i := range ms {
		if ms[i].navaerende {
			current = &ms[i]
		}
	}
	if current == nil && len(ms) > 0 {
		current = &ms[len(ms)-1]
	}
	if current != nil {
		status = current.status
	}
	closedAt := parseTime(m.Avsluttet)
	if closedAt != nil {
		status = StatusClosed
	} else if status == StatusClosed && current != nil {
		closedAt = &current.start
	}
	opened := parseTime(m.Saksdato)
	for i := range ms {
		if opened == nil || ms[i].start.Before(*opened) {
			opened = &ms[i].start
		}
	}
	// The investigation deadline: its milestone's end if the case system
	// set one, else three months after the report was received.
	var due *time.Time
	var reportAt, investigationAt *time.Time
	for i := range ms {
		switch ms[i].status {
		case StatusReceived:
			if reportAt == nil {
				reportAt = &ms[i].start
			}
		case StatusInvestigation:
			if ms[i].end != nil {
				due = ms[i].end
			}
			if investigationAt == nil {
				investigationAt = &ms[i].start
			}
		}
	}
	if due == nil && (investigationAt != nil || status == StatusInvestigation) {
		base := reportAt
		if base == nil {
			base = investigationAt
		}
		if base == nil {
			base = opened
		}
		if base != nil {
			t := base.AddDate(0, investigationMonths, 0)
			due = &t
		}
	}

	// The caseworker in charge, by name among the office's staff.
	var staff []struct {
		ID     string         `db:"id"`
		TeamID sql.NullString `db:"team_id"`
	}
	if m.Saksansvarlig != nil && strings.TrimSpace(*m.Saksansvarlig) != "" {
		if err := tx.SelectContext(ctx, &staff, tx.Rebind(`
			SELECT id, team_id FROM users
			WHERE kind IN ('caseworker', 'teamlead') AND office_id = ? AND name = ?`),
			in.officeID, strings.TrimSpace(*m.Saksansvarlig)); err != nil {
			return "", fmt.Errorf("find caseworker: %w", err)
		}
		if len(staff) != 1 {
			return "", invalidAt("/saksansvarlig", "portal: names no single caseworker of this office; the family's messages need someone to answer them")
		}
	} else if created {
		return "", invalidAt("/saksansvarlig", "portal: is required for a new case; the family's messages need someone to answer them")
	}

	ref, err := in.reference(ctx, tx, m, caseID)
	if err != nil {
		return "", err
	}
	var team any
	if len(staff) == 1 && staff[0].TeamID.Valid {
		team = staff[0].TeamID.String
	}
	if created {
		caseID = NewID()
		if opened == nil {
			opened = &now
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO cases (id, reference, office_id, team_id, child_name, status, opened_at,
			                   investigation_due, closed_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			caseID, ref, in.officeID, team, child, status, *opened, due, closedAt, now); err != nil {
			return "", fmt.Errorf("create case: %w", err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO fiks_cases (case_id, office_id, system_id, organisasjonsnummer) VALUES (?, ?, ?, ?)`),
			caseID, in.officeID, systemID, *m.Organisasjonsnummer); err != nil {
			return "", fmt.Errorf("create case: %w", err)
		}
	} else {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			UPDATE cases SET reference = ?, team_id = COALESCE(?, team_id), child_name = ?, status = ?,
				opened_at = COALESCE(?, opened_at), investigation_due = ?, closed_at = ?, updated_at = ?
			WHERE id = ?`),
			ref, team, child, status, opened, due, closedAt, now, caseID); err != nil {
			return "", fmt.Errorf("update case: %w", err)
		}
	}
	if len(staff) == 1 {
		// The case system's caseworker in charge is the primary one; others
		// assigned in the portal (a substitute, say) stay assigned.
		if _, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE case_caseworkers SET is_primary = FALSE WHERE case_id = ? AND user_id <> ?`),
			caseID, staff[0].ID); err != nil {
			return "", fmt.Errorf("assign caseworker: %w", err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO case_caseworkers (case_id, user_id, is_primary) VALUES (?, ?, TRUE)
			ON CONFLICT (case_id, user_id) DO UPDATE SET is_primary = TRUE`), caseID, staff[0].ID); err != nil {
			return "", fmt.Errorf("assign caseworker: %w", err)
		}
	}
	return caseID, nil
}

// reference is the case's reference as staff see it: the year and number
// the case system gave it ("2026-0142"), else its mappeId, else systemId.
// References are unique in the portal; one taken in another office gets
// the office's id appended, so nothing about that office shows.
func (in *Ingest) reference(ctx context.Context, tx *sqlx.Tx, m *FiksMappe, caseID string) (string, error) {
	ref := strings.TrimSpace(*m.SystemID)
	if m.MappeID != nil && strings.TrimSpace(*m.MappeID) != "" {
		ref = strings.TrimSpace(*m.MappeID)
	}
	if m.Saksaar != nil && m.Sakssekvensnummer != nil {
		ref = fmt.Sprintf("%04d-%04d", *m.Saksaar, *m.Sakssekvensnummer)
	}
	var other struct {
		ID     string `db:"id"`
		Office string `db:"office_id"`
	}
	err := tx.GetContext(ctx, &other, tx.Rebind(`SELECT id, office_id FROM cases WHERE reference = ?`), ref)
	switch {
	case errors.Is(err, sql.ErrNoRows) || (err == nil && other.ID == caseID):
		return ref, nil
	case err != nil:
		return "", fmt.Errorf("check reference: %w", err)
	case other.Office == in.officeID:
		return "", conflictAt("/sakssekvensnummer", "another case of this office already has the reference %s", ref)
	}
	return ref + " (" + in.officeID + ")", nil
}

// RevokeMappe withdraws a folder from the party it was indexed for: they
// no longer see the case (unless another folder of the case is theirs).
// It returns the user whose access ended, so live connections can be cut.
func (in *Ingest) RevokeMappe(ctx context.Context, meldingID string) (userID string, err error) {
	if meldingID, err = normID(meldingID); err != nil {
		return "", err
	}
	err = in.tx(ctx, func(tx *sqlx.Tx) error {
		var row struct {
			CaseID string `db:"case_id"`
			UserID string `db:"user_id"`
		}
		err := tx.GetContext(ctx, &row, tx.Rebind(`
			SELECT case_id, user_id FROM fiks_mapper WHERE office_id = ? AND melding_id = ?`), in.officeID, meldingID)
		if errors.Is(err, sql.ErrNoRows) {
			return notFoundAt("", "no mappe with this meldingId")
		}
		if err != nil {
			return fmt.Errorf("get mappe: %w", err)
		}
		now := in.store.now()
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			UPDATE fiks_mapper SET revoked_at = COALESCE(revoked_at, ?) WHERE office_id = ? AND melding_id = ?`),
			now, in.officeID, meldingID); err != nil {
			return fmt.Errorf("revoke mappe: %w", err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			UPDATE parties SET revoked_at = COALESCE(revoked_at, ?)
			WHERE case_id = ? AND user_id = ? AND NOT EXISTS (
				SELECT 1 FROM fiks_mapper f WHERE f.case_id = parties.case_id
				  AND f.user_id = parties.user_id AND f.revoked_at IS NULL)`),
			now, row.CaseID, row.UserID); err != nil {
			return fmt.Errorf("revoke party: %w", err)
		}
		if err := in.store.rebuildCase(ctx, tx, row.CaseID); err != nil {
			return err
		}
		userID = row.UserID
		return in.audit(ctx, tx, ActAPIMappeRevoke, row.CaseID, meldingID, nil)
	})
	return userID, in.denied(ctx, ActAPIMappeRevoke, meldingID, err)
}

// MappeStatus is what the portal holds of a mappe message.
type MappeStatus struct {
	MeldingID string     `json:"meldingId"`
	SystemID  string     `json:"systemId"`
	Status    Status     `json:"status"`
	UpdatedAt time.Time  `json:"updatedAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// Mappe returns what the portal holds of the mappe meldingID.
func (in *Ingest) Mappe(ctx context.Context, meldingID string) (MappeStatus, error) {
	var m MappeStatus
	meldingID, err := normID(meldingID)
	if err != nil {
		return m, err
	}
	var row struct {
		SystemID  string       `db:"system_id"`
		Status    Status       `db:"status"`
		UpdatedAt time.Time    `db:"updated_at"`
		RevokedAt sql.NullTime `db:"revoked_at"`
		CaseID    string       `db:"case_id"`
	}
	err = in.store.db.GetContext(ctx, &row, in.store.db.Rebind(`
		SELECT fc.system_id, k.status, f.updated_at, f.revoked_at, f.case_id
		FROM fiks_mapper f JOIN cases k ON k.id = f.case_id JOIN fiks_cases fc ON fc.case_id = k.id
		WHERE f.office_id = ? AND f.melding_id = ?`), in.officeID, meldingID)
	if errors.Is(err, sql.ErrNoRows) {
		return m, in.denied(ctx, ActAPIRead, meldingID, notFoundAt("", "no mappe with this meldingId"))
	}
	if err != nil {
		return m, fmt.Errorf("get mappe: %w", err)
	}
	m = MappeStatus{MeldingID: meldingID, SystemID: row.SystemID, Status: row.Status, UpdatedAt: row.UpdatedAt.UTC()}
	if row.RevokedAt.Valid {
		t := row.RevokedAt.Time.UTC()
		m.RevokedAt = &t
	}
	return m, in.audit(ctx, in.store.db, ActAPIRead, row.CaseID, meldingID, nil)
}

// PutJournalpost receives a journalpost message, indexed under the party
// of its forelderMeldingId. The documents' bytes follow with PutContent.
func (in *Ingest) PutJournalpost(ctx context.Context, meldingID string, body []byte) (PutResult, error) {
	meldingID, err := normID(meldingID)
	res := PutResult{MeldingID: meldingID}
	if err != nil {
		return res, err
	}
	j, err := DecodeJournalpost(body)
	if err != nil {
		return res, err
	}
	sum := bodySum(body)
	err = in.tx(ctx, func(tx *sqlx.Tx) error {
		var parent struct {
			CaseID string `db:"case_id"`
			UserID string `db:"user_id"`
		}
		err := tx.GetContext(ctx, &parent, tx.Rebind(`
			SELECT case_id, user_id FROM fiks_mapper WHERE office_id = ? AND melding_id = ?`),
			in.officeID, strings.ToLower(*j.ForelderMeldingID))
		if errors.Is(err, sql.ErrNoRows) {
			return notFoundAt("/forelderMeldingId", "names no mappe of this office; send the mappe first")
		}
		if err != nil {
			return fmt.Errorf("get parent mappe: %w", err)
		}
		var prev struct {
			PostID string `db:"journalpost_id"`
			Sum    string `db:"body_sha256"`
		}
		err = tx.GetContext(ctx, &prev, tx.Rebind(`
			SELECT journalpost_id, body_sha256 FROM fiks_journalpost_meldinger WHERE office_id = ? AND melding_id = ?`),
			in.officeID, meldingID)
		found := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("get journalpost message: %w", err)
		}
		postID := prev.PostID
		systemID := strings.TrimSpace(deref(j.SystemID))
		if systemID != "" {
			var bySystem string
			err := tx.GetContext(ctx, &bySystem, tx.Rebind(`
				SELECT id FROM fiks_journalposter WHERE case_id = ? AND system_id = ?`), parent.CaseID, systemID)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return fmt.Errorf("find journalpost: %w", err)
			case found && bySystem != postID:
				return conflictAt("/systemId", "this meldingId belongs to another journal post")
			default:
				postID = bySystem
			}
		}
		var post struct {
			CaseID    string         `db:"case_id"`
			SystemID  sql.NullString `db:"system_id"`
			Withdrawn sql.NullTime   `db:"withdrawn_at"`
			Received  time.Time      `db:"received_at"`
		}
		if postID != "" {
			if err := tx.GetContext(ctx, &post, tx.Rebind(`
				SELECT case_id, system_id, withdrawn_at, received_at FROM fiks_journalposter WHERE id = ?`), postID); err != nil {
				return fmt.Errorf("get journalpost: %w", err)
			}
			if post.CaseID != parent.CaseID {
				return conflictAt("/forelderMeldingId", "this meldingId belongs to a journal post of another case")
			}
			if post.SystemID.Valid && post.SystemID.String != systemID {
				return conflictAt("/systemId", "differs from the systemId this journal post was received with")
			}
			if post.Withdrawn.Valid {
				return conflictAt("", "the journal post has been withdrawn; send it again under a new systemId")
			}
		}
		if found && prev.Sum == sum {
			res.Result = "unchanged"
			docs, err := documentStatuses(ctx, tx, postID)
			res.Documents = docs
			if err != nil {
				return err
			}
			return in.audit(ctx, tx, ActAPIJournalpostPut, parent.CaseID, meldingID, nil)
		}

		now := in.store.now()
		kind := DocLetter
		if k, ok := fiksDocTypes[deref(j.Dokumenttype)]; ok {
			kind = k
		}
		dated := parseTime(j.Journaldato)
		if dated == nil {
			dated = parseTime(j.DokumentetsDato)
		}
		if dated == nil && postID != "" {
			dated = &post.Received
		}
		if dated == nil {
			dated = &now
		}
		var sys any
		if systemID != "" {
			sys = systemID
		}
		tidslinje := j.Tidslinje != nil && *j.Tidslinje
		if postID == "" {
			postID = NewID()
			if _, err := tx.ExecContext(ctx, tx.Rebind(`
				INSERT INTO fiks_journalposter (id, case_id, system_id, tittel, kind, dated_at, klagefrist, tidslinje, received_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				postID, parent.CaseID, sys, strings.TrimSpace(*j.Tittel), kind, *dated, parseTime(j.Klagefrist), tidslinje, now); err != nil {
				return fmt.Errorf("create journalpost: %w", err)
			}
		} else {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`
				UPDATE fiks_journalposter SET tittel = ?, kind = ?, dated_at = ?, klagefrist = ?, tidslinje = ?
				WHERE id = ?`),
				strings.TrimSpace(*j.Tittel), kind, *dated, parseTime(j.Klagefrist), tidslinje, postID); err != nil {
				return fmt.Errorf("update journalpost: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM fiks_eksponert WHERE journalpost_id = ?`), postID); err != nil {
			return fmt.Errorf("replace exposure: %w", err)
		}
		for i, p := range j.EksponertFor {
			if p == nil {
				continue
			}
			var h any
			if p.Fodselsnummer != nil {
				h = PIDHash(in.pidKey, *p.Fodselsnummer)
			}
			if _, err := tx.ExecContext(ctx, tx.Rebind(`
				INSERT INTO fiks_eksponert (journalpost_id, pos, role, pid_hash, name) VALUES (?, ?, ?, ?, ?)`),
				postID, i, fiksRoles[*p.Rolle], h, p.Name()); err != nil {
				return fmt.Errorf("insert exposure: %w", err)
			}
		}
		if err := in.putDocuments(ctx, tx, postID, j.Dokumenter, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO fiks_journalpost_meldinger (office_id, melding_id, journalpost_id, mappe_melding_id, body_sha256, received_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (office_id, melding_id) DO UPDATE SET mappe_melding_id = excluded.mappe_melding_id,
				body_sha256 = excluded.body_sha256`),
			in.officeID, meldingID, postID, strings.ToLower(*j.ForelderMeldingID), sum, now); err != nil {
			return fmt.Errorf("record journalpost message: %w", err)
		}
		// The case system's answer to the party's request for access.
		if st := deref(j.InnsynsforesporselStatus); st == "GODKJENT" || st == "AVVIST" {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`
				UPDATE access_requests SET status = ?, updated_at = ?
				WHERE case_id = ? AND user_id = ? AND status = 'FORESPURT'`),
				st, now, parent.CaseID, parent.UserID); err != nil {
				return fmt.Errorf("answer access request: %w", err)
			}
		}
		if err := in.store.rebuildCase(ctx, tx, parent.CaseID); err != nil {
			return err
		}
		res.Result = "updated"
		if !found {
			res.Result = "created"
		}
		docs, err := documentStatuses(ctx, tx, postID)
		if err != nil {
			return err
		}
		res.Documents = docs
		return in.audit(ctx, tx, ActAPIJournalpostPut, parent.CaseID, meldingID, nil)
	})
	return res, in.denied(ctx, ActAPIJournalpostPut, meldingID, err)
}

// putDocuments records the documents' metadata. A document whose bytes
// have arrived cannot change type or size (that would be another
// document); documents no longer listed are withdrawn.
func (in *Ingest) putDocuments(ctx context.Context, tx *sqlx.Tx, postID string, docs []*FiksDokument, now time.Time) error {
	var have []struct {
		Pos        int            `db:"pos"`
		MimeType   string         `db:"mime_type"`
		Storrelse  sql.NullInt64  `db:"storrelse"`
		DocumentID sql.NullString `db:"document_id"`
		Withdrawn  sql.NullTime   `db:"withdrawn_at"`
	}
	if err := tx.SelectContext(ctx, &have, tx.Rebind(`
		SELECT pos, mime_type, storrelse, document_id, withdrawn_at FROM fiks_dokumenter WHERE journalpost_id = ?`), postID); err != nil {
		return fmt.Errorf("list documents: %w", err)
	}
	for _, h := range have {
		if h.Pos >= len(docs) {
			if err := withdrawDocuments(ctx, tx, postID, &h.Pos, now); err != nil {
				return err
			}
			continue
		}
		d := docs[h.Pos]
		p := ptr("/dokumenter", h.Pos)
		if h.Withdrawn.Valid {
			return conflictAt(p, "this document has been withdrawn; send the journal post again under a new systemId")
		}
		if h.DocumentID.Valid {
			ct, _ := portalContentType(*d.MimeType)
			oldCT, _ := portalContentType(h.MimeType)
			if ct != oldCT {
				return conflictAt(ptr(p, "mimeType"), "the content has been uploaded as %s; withdraw the document to change it", h.MimeType)
			}
			if d.Storrelse != nil && h.Storrelse.Valid && *d.Storrelse != h.Storrelse.Int64 {
				return conflictAt(ptr(p, "storrelse"), "the content has been uploaded with %d bytes; withdraw the document to change it", h.Storrelse.Int64)
			}
		}
	}
	for i, d := range docs {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO fiks_dokumenter (journalpost_id, pos, filnavn, mime_type, tittel, storrelse)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (journalpost_id, pos) DO UPDATE SET filnavn = excluded.filnavn,
				mime_type = excluded.mime_type, tittel = excluded.tittel,
				storrelse = COALESCE(excluded.storrelse, fiks_dokumenter.storrelse)`),
			postID, i, strings.TrimSpace(*d.Filnavn), strings.TrimSpace(*d.MimeType), strings.TrimSpace(*d.Tittel), d.Storrelse); err != nil {
			return fmt.Errorf("upsert document: %w", err)
		}
	}
	return nil
}

// withdrawDocuments withdraws the documents of a journal post (one, if pos
// is given). A withdrawn document is gone from every family view at once:
// every query of documents skips withdrawn ones.
func withdrawDocuments(ctx context.Context, tx *sqlx.Tx, postID string, pos *int, now time.Time) error {
	where, args := `journalpost_id = ?`, []any{postID}
	if pos != nil {
		where, args = where+` AND pos = ?`, append(args, *pos)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`
		UPDATE documents SET withdrawn_at = ?
		WHERE withdrawn_at IS NULL AND id IN (SELECT document_id FROM fiks_dokumenter WHERE `+where+`)`),
		append([]any{now}, args...)...); err != nil {
		return fmt.Errorf("withdraw documents: %w", err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`
		UPDATE fiks_dokumenter SET withdrawn_at = ? WHERE withdrawn_at IS NULL AND `+where),
		append([]any{now}, args...)...); err != nil {
		return fmt.Errorf("withdraw documents: %w", err)
	}
	return nil
}

func documentStatuses(ctx context.Context, q sqlx.QueryerContext, postID string) ([]DocumentStatus, error) {
	var rows []struct {
		Pos       int            `db:"pos"`
		SHA256    sql.NullString `db:"sha256"`
		Withdrawn sql.NullTime   `db:"withdrawn_at"`
	}
	if err := sqlx.SelectContext(ctx, q, &rows, `
		SELECT f.pos, d.sha256, f.withdrawn_at FROM fiks_dokumenter f
		LEFT JOIN documents d ON d.id = f.document_id
		WHERE f.journalpost_id = `+bindOne(q)+` ORDER BY f.pos`, postID); err != nil {
		return nil, fmt.Errorf("list documents: %w", err)
	}
	out := make([]DocumentStatus, len(rows))
	for i, r := range rows {
		out[i] = DocumentStatus{Index: r.Pos, Uploaded: r.SHA256.Valid, Withdrawn: r.Withdrawn.Valid, SHA256: r.SHA256.String}
	}
	return out, nil
}

// bindOne is the placeholder for one argument in q's dialect.
func bindOne(q sqlx.QueryerContext) string {
	if b, ok := q.(interface{ Rebind(string) string }); ok {
		return b.Rebind("?")
	}
	return "?"
}

// findPost finds the journal post of the message meldingID in this office.
func (in *Ingest) findPost(ctx context.Context, q sqlx.QueryerContext, meldingID string) (postID, caseID string, withdrawn bool, err error) {
	var row struct {
		ID        string       `db:"id"`
		CaseID    string       `db:"case_id"`
		Withdrawn sql.NullTime `db:"withdrawn_at"`
	}
	err = sqlx.GetContext(ctx, q, &row, in.store.db.Rebind(`
		SELECT p.id, p.case_id, p.withdrawn_at FROM fiks_journalpost_meldinger m
		JOIN fiks_journalposter p ON p.id = m.journalpost_id
		WHERE m.office_id = ? AND m.melding_id = ?`), in.officeID, meldingID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, notFoundAt("", "no journalpost with this meldingId")
	}
	if err != nil {
		return "", "", false, fmt.Errorf("find journalpost: %w", err)
	}
	return row.ID, row.CaseID, row.Withdrawn.Valid, nil
}

// JournalpostStatus is what the portal holds of a journalpost message.
type JournalpostStatus struct {
	MeldingID string           `json:"meldingId"`
	Withdrawn bool             `json:"withdrawn"`
	Documents []DocumentStatus `json:"documents"`
}

// Journalpost returns what the portal holds of the journalpost meldingID.
func (in *Ingest) Journalpost(ctx context.Context, meldingID string) (JournalpostStatus, error) {
	meldingID, err := normID(meldingID)
	if err != nil {
		return JournalpostStatus{}, err
	}
	js := JournalpostStatus{MeldingID: meldingID, Documents: []DocumentStatus{}}
	postID, caseID, withdrawn, err := in.findPost(ctx, in.store.db, meldingID)
	if err != nil {
		return js, in.denied(ctx, ActAPIRead, meldingID, err)
	}
	js.Withdrawn = withdrawn
	docs, err := documentStatuses(ctx, in.store.db, postID)
	if err != nil {
		return js, err
	}
	if docs != nil {
		js.Documents = docs
	}
	return js, in.audit(ctx, in.store.db, ActAPIRead, caseID, meldingID, nil)
}

// Content is an uploaded document's bytes with what the sender says of them.
type Content struct {
	Type   string // the Content-Type header
	SHA256 []byte // from the Repr-Digest header; nil when the sender gave none
	Bytes  []byte
}

// PutContent stores the bytes of document index of the journal post
// meldingID. They must match the declared type and size and the digest.
// Once stored they are published to whoever the post is exposed to.
func (in *Ingest) PutContent(ctx context.Context, meldingID string, index int, c Content) (DocumentStatus, error) {
	st := DocumentStatus{Index: index}
	meldingID, err := normID(meldingID)
	if err != nil {
		return st, err
	}
	sum := sha256.Sum256(c.Bytes)
	sumHex := hex.EncodeToString(sum[:])
	err = in.tx(ctx, func(tx *sqlx.Tx) error {
		postID, caseID, withdrawn, err := in.findPost(ctx, tx, meldingID)
		if err != nil {
			return err
		}
		var doc struct {
			Filnavn    string         `db:"filnavn"`
			MimeType   string         `db:"mime_type"`
			Tittel     string         `db:"tittel"`
			Storrelse  sql.NullInt64  `db:"storrelse"`
			DocumentID sql.NullString `db:"document_id"`
			Withdrawn  sql.NullTime   `db:"withdrawn_at"`
		}
		err = tx.GetContext(ctx, &doc, tx.Rebind(`
			SELECT filnavn, mime_type, tittel, storrelse, document_id, withdrawn_at
			FROM fiks_dokumenter WHERE journalpost_id = ? AND pos = ?`), postID, index)
		if errors.Is(err, sql.ErrNoRows) {
			return notFoundAt("", "the journal post has no document with this index")
		}
		if err != nil {
			return fmt.Errorf("get document: %w", err)
		}
		if withdrawn || doc.Withdrawn.Valid {
			return conflictAt("", "the document has been withdrawn")
		}
		ct, _ := portalContentType(doc.MimeType)
		if got, ok := portalContentType(c.Type); !ok || got != ct {
			return &APIError{Status: http.StatusUnsupportedMediaType, Title: "Unsupported media type",
				Problems: []FieldError{{Parameter: "Content-Type", Detail: "must be the document's mimeType, " + doc.MimeType}}}
		}
		if c.SHA256 != nil && hex.EncodeToString(c.SHA256) != sumHex {
			return badParam("Repr-Digest", "the sha-256 digest does not match the content")
		}
		if doc.Storrelse.Valid && int64(len(c.Bytes)) != doc.Storrelse.Int64 {
			return badParam("Content-Length", "the content has %d bytes; the journal post says storrelse %d", len(c.Bytes), doc.Storrelse.Int64)
		}
		if len(c.Bytes) == 0 {
			return badParam("Content-Length", "the content is empty")
		}
		if err := checkContent(ct, c.Bytes); err != nil {
			return &APIError{Status: http.StatusBadRequest, Title: "Invalid request", cause: ErrInvalid,
				Problems: []FieldError{{Parameter: "body", Detail: err.Error()}}}
		}
		st.Uploaded, st.SHA256 = true, sumHex
		if doc.DocumentID.Valid {
			var have string
			if err := tx.GetContext(ctx, &have, tx.Rebind(`SELECT sha256 FROM documents WHERE id = ?`), doc.DocumentID.String); err != nil {
				return fmt.Errorf("get document: %w", err)
			}
			if have != sumHex {
				return conflictAt("", "other content was uploaded for this document; withdraw it and send a new journal post")
			}
			return in.audit(ctx, tx, ActAPIDocumentPut, caseID, doc.DocumentID.String, nil)
		}
		var post struct {
			Kind       DocKind    `db:"kind"`
			Dated      time.Time  `db:"dated_at"`
			Klagefrist *time.Time `db:"klagefrist"`
		}
		if err := tx.GetContext(ctx, &post, tx.Rebind(`SELECT kind, dated_at, klagefrist FROM fiks_journalposter WHERE id = ?`), postID); err != nil {
			return fmt.Errorf("get journalpost: %w", err)
		}
		docID := NewID()
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO documents (id, case_id, title, kind, published_at, appeal_due, filename, content_type, size, sha256, content)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			docID, caseID, doc.Tittel, post.Kind, post.Dated.UTC(), post.Klagefrist, doc.Filnavn, ct,
			len(c.Bytes), sumHex, c.Bytes); err != nil {
			return fmt.Errorf("store document: %w", err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			UPDATE fiks_dokumenter SET document_id = ?, storrelse = ? WHERE journalpost_id = ? AND pos = ?`),
			docID, len(c.Bytes), postID, index); err != nil {
			return fmt.Errorf("store document: %w", err)
		}
		// Nobody sees the document until rebuildCase has set who may.
		if err := in.store.rebuildCase(ctx, tx, caseID); err != nil {
			return err
		}
		return in.audit(ctx, tx, ActAPIDocumentPut, caseID, docID, nil)
	})
	return st, in.denied(ctx, ActAPIDocumentPut, meldingID, err)
}

// Withdraw withdraws the journal post meldingID, or one of its documents
// when index is given. It is gone from every family view at once; doing
// it again changes nothing.
func (in *Ingest) Withdraw(ctx context.Context, meldingID string, index *int) error {
	meldingID, err := normID(meldingID)
	if err != nil {
		return err
	}
	act := ActAPIJournalpostDel
	if index != nil {
		act = ActAPIDocumentDel
	}
	err = in.tx(ctx, func(tx *sqlx.Tx) error {
		postID, caseID, _, err := in.findPost(ctx, tx, meldingID)
		if err != nil {
			return err
		}
		now := in.store.now()
		object := postID
		if index != nil {
			var n int
			if err := tx.GetContext(ctx, &n, tx.Rebind(`
				SELECT COUNT(*) FROM fiks_dokumenter WHERE journalpost_id = ? AND pos = ?`), postID, *index); err != nil {
				return fmt.Errorf("find document: %w", err)
			}
			if n == 0 {
				return notFoundAt("", "the journal post has no document with this index")
			}
			object = fmt.Sprintf("%s/%d", postID, *index)
		} else if _, err := tx.ExecContext(ctx, tx.Rebind(`
			UPDATE fiks_journalposter SET withdrawn_at = COALESCE(withdrawn_at, ?) WHERE id = ?`), now, postID); err != nil {
			return fmt.Errorf("withdraw journalpost: %w", err)
		}
		if err := withdrawDocuments(ctx, tx, postID, index, now); err != nil {
			return err
		}
		if err := in.store.rebuildCase(ctx, tx, caseID); err != nil {
			return err
		}
		return in.audit(ctx, tx, act, caseID, object, nil)
	})
	return in.denied(ctx, act, meldingID, err)
}

// AnswerAccessRequest sets the case system's answer to a request for access.
func (in *Ingest) AnswerAccessRequest(ctx context.Context, id string, body []byte) error {
	status, err := DecodeInnsynsstatus(body)
	if err != nil {
		return err
	}
	err = in.tx(ctx, func(tx *sqlx.Tx) error {
		var caseID string
		err := tx.GetContext(ctx, &caseID, tx.Rebind(`
			SELECT r.case_id FROM access_requests r JOIN cases k ON k.id = r.case_id
			WHERE r.id = ? AND k.office_id = ?`), id, in.officeID)
		if errors.Is(err, sql.ErrNoRows) {
			return notFoundAt("", "no request for access with this id")
		}
		if err != nil {
			return fmt.Errorf("find access request: %w", err)
		}
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			UPDATE access_requests SET status = ?, updated_at = ? WHERE id = ?`), status, in.store.now(), id); err != nil {
			return fmt.Errorf("answer access request: %w", err)
		}
		return in.audit(ctx, tx, ActAPIAccessAnswer, caseID, id, nil)
	})
	return in.denied(ctx, ActAPIAccessAnswer, id, err)
}

// casePartyRow is a party as rebuildCase sees it.
type casePartyRow struct {
	UserID  string `db:"user_id"`
	Role    Role   `db:"role"`
	PIDHash string `db:"pid_hash"`
	Name    string `db:"name"`
}

// rebuildCase derives, from the case system's stored messages, who may
// see each of its documents and the timeline events it made.
//
// A document is published to the roles of the parties in its post's
// eksponertFor, and withheld (barnevernsloven § 12-6) from every party who
// is not in it but either has one of those roles or had the post indexed
// for them: such a party sees the general notice, never the document. A
// party who was never meant to know of the post (a parent, for a note
// only the youth may read) simply does not see it. A timeline event from
// a post is shown only to roles from which nothing of the post is withheld.
func (s *Store) rebuildCase(ctx context.Context, tx *sqlx.Tx, caseID string) error {
	var parties []casePartyRow
	if err := tx.SelectContext(ctx, &parties, tx.Rebind(`
		SELECT p.user_id, p.role, COALESCE(u.pid_hash, '') AS pid_hash, u.name
		FROM parties p JOIN users u ON u.id = p.user_id WHERE p.case_id = ?`), caseID); err != nil {
		return fmt.Errorf("rebuild: parties: %w", err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`
		DELETE FROM timeline_events WHERE id IN (SELECT event_id FROM fiks_events WHERE case_id = ?)`), caseID); err != nil {
		return fmt.Errorf("rebuild: clear events: %w", err)
	}
	if err := s.rebuildMilestones(ctx, tx, caseID); err != nil {
		return err
	}

	var posts []struct {
		ID         string       `db:"id"`
		Tittel     string       `db:"tittel"`
		Kind       DocKind      `db:"kind"`
		Dated      time.Time    `db:"dated_at"`
		Klagefrist *time.Time   `db:"klagefrist"`
		Tidslinje  bool         `db:"tidslinje"`
		Withdrawn  sql.NullTime `db:"withdrawn_at"`
	}
	if err := tx.SelectContext(ctx, &posts, tx.Rebind(`
		SELECT id, tittel, kind, dated_at, klagefrist, tidslinje, withdrawn_at
		FROM fiks_journalposter WHERE case_id = ? ORDER BY dated_at, id`), caseID); err != nil {
		return fmt.Errorf("rebuild: posts: %w", err)
	}
	for _, p := range posts {
		var exposed []struct {
			Role    Role           `db:"role"`
			PIDHash sql.NullString `db:"pid_hash"`
			Name    string         `db:"name"`
		}
		if err := tx.SelectContext(ctx, &exposed, tx.Rebind(`
			SELECT role, pid_hash, name FROM fiks_eksponert WHERE journalpost_id = ? ORDER BY pos`), p.ID); err != nil {
			return fmt.Errorf("rebuild: exposure: %w", err)
		}
		var indexedFor []string
		if err := tx.SelectContext(ctx, &indexedFor, tx.Rebind(`
			SELECT DISTINCT f.user_id FROM fiks_journalpost_meldinger m
			JOIN fiks_mapper f ON f.office_id = m.office_id AND f.melding_id = m.mappe_melding_id
			WHERE m.journalpost_id = ?`), p.ID); err != nil {
			return fmt.Errorf("rebuild: indexed for: %w", err)
		}
		audience := map[Role]bool{}
		for _, e := range exposed {
			audience[e.Role] = true
		}
		isExposed := func(pt casePartyRow) bool {
			for _, e := range exposed {
				if e.PIDHash.Valid && pt.PIDHash != "" && e.PIDHash.String == pt.PIDHash {
					return true
				}
				if !e.PIDHash.Valid && e.Role == pt.Role && e.Name == pt.Name {
					return true
				}
			}
			return false
		}
		var withheld []string
		withheldRoles := map[Role]bool{}
		for _, pt := range parties {
			if !isExposed(pt) && (audience[pt.Role] || slices.Contains(indexedFor, pt.UserID)) {
				withheld = append(withheld, pt.UserID)
				withheldRoles[pt.Role] = true
			}
		}
		var docIDs []string
		if err := tx.SelectContext(ctx, &docIDs, tx.Rebind(`
			SELECT document_id FROM fiks_dokumenter WHERE journalpost_id = ? AND document_id IS NOT NULL`), p.ID); err != nil {
			return fmt.Errorf("rebuild: documents: %w", err)
		}
		for _, d := range docIDs {
			if _, err := tx.ExecContext(ctx, tx.Rebind(`
				UPDATE documents SET title = (SELECT f.tittel FROM fiks_dokumenter f WHERE f.document_id = documents.id),
					kind = ?, published_at = ?, appeal_due = ? WHERE id = ?`),
				p.Kind, p.Dated.UTC(), p.Klagefrist, d); err != nil {
				return fmt.Errorf("rebuild: document: %w", err)
			}
			if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM document_audience WHERE document_id = ?`), d); err != nil {
				return fmt.Errorf("rebuild: audience: %w", err)
			}
			for _, r := range sortedRoles(audience) {
				if _, err := tx.ExecContext(ctx, tx.Rebind(`
					INSERT INTO document_audience (document_id, role) VALUES (?, ?)`), d, r); err != nil {
					return fmt.Errorf("rebuild: audience: %w", err)
				}
			}
			if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM document_withheld WHERE document_id = ?`), d); err != nil {
				return fmt.Errorf("rebuild: withheld: %w", err)
			}
			for _, u := range withheld {
				if _, err := tx.ExecContext(ctx, tx.Rebind(`
					INSERT INTO document_withheld (document_id, user_id, reason) VALUES (?, ?, ?)`),
					d, u, withheldReasonNotShown); err != nil {
					return fmt.Errorf("rebuild: withheld: %w", err)
				}
			}
		}
		if !p.Tidslinje || p.Withdrawn.Valid {
			continue
		}
		roles := map[Role]bool{}
		for r := range audience {
			if !withheldRoles[r] {
				roles[r] = true
			}
		}
		if err := insertFiksEvent(ctx, tx, caseID, "journalpost", eventKindOf(p.Kind), p.Dated, p.Tittel, roles); err != nil {
			return err
		}
	}
	return nil
}

// rebuildMilestones makes one timeline event per milestone of the case,
// shown to the roles of the parties whose folders list it.
func (s *Store) rebuildMilestones(ctx context.Context, tx *sqlx.Tx, caseID string) error {
	var rows []struct {
		Status Status    `db:"status"`
		Start  time.Time `db:"startdato"`
		Note   string    `db:"beskrivelse"`
		Role   Role      `db:"role"`
	}
	if err := tx.SelectContext(ctx, &rows, tx.Rebind(`
		SELECT m.status, m.startdato, m.beskrivelse, p.role
		FROM fiks_milepeler m
		JOIN fiks_mapper f ON f.office_id = m.office_id AND f.melding_id = m.melding_id
		JOIN parties p ON p.case_id = f.case_id AND p.user_id = f.user_id AND p.revoked_at IS NULL
		WHERE f.case_id = ? AND f.revoked_at IS NULL
		ORDER BY m.startdato, m.status`), caseID); err != nil {
		return fmt.Errorf("rebuild: milestones: %w", err)
	}
	type key struct {
		status Status
		start  int64
	}
	var order []key
	events := map[key]struct {
		at    time.Time
		note  string
		roles map[Role]bool
	}{}
	for _, r := range rows {
		k := key{r.Status, r.Start.UnixNano()}
		e, ok := events[k]
		if !ok {
			order = append(order, k)
			e.at, e.roles = r.Start, map[Role]bool{}
		}
		if e.note == "" {
			e.note = r.Note
		}
		e.roles[r.Role] = true
		events[k] = e
	}
	for _, k := range order {
		e := events[k]
		if err := insertFiksEvent(ctx, tx, caseID, "milepel", milestoneEvent[k.status], e.at, e.note, e.roles); err != nil {
			return err
		}
	}
	return nil
}

var milestoneEvent = map[Status]string{
	StatusReceived:      "report_received",
	StatusInvestigation: "investigation_started",
	StatusMeasures:      "measures_started",
	StatusClosed:        "case_closed",
}

func eventKindOf(k DocKind) string {
	switch k {
	case DocDecision:
		return "decision"
	case DocMinutes:
		return "meeting"
	case DocPlan:
		return "plan_updated"
	}
	return "other"
}

func insertFiksEvent(ctx context.Context, tx *sqlx.Tx, caseID, source, kind string, at time.Time, note string, roles map[Role]bool) error {
	id := NewID()
	if _, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO timeline_events (id, case_id, kind, occurred_at, note) VALUES (?, ?, ?, ?, ?)`),
		id, caseID, kind, at.UTC(), note); err != nil {
		return fmt.Errorf("rebuild: event: %w", err)
	}
	if _, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO fiks_events (event_id, case_id, source) VALUES (?, ?, ?)`), id, caseID, source); err != nil {
		return fmt.Errorf("rebuild: event: %w", err)
	}
	for _, r := range sortedRoles(roles) {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`
			INSERT INTO timeline_audience (event_id, role) VALUES (?, ?)`), id, r); err != nil {
			return fmt.Errorf("rebuild: event audience: %w", err)
		}
	}
	return nil
}

func sortedRoles(m map[Role]bool) []Role {
	out := make([]Role, 0, len(m))
	for r, ok := range m {
		if ok {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}
