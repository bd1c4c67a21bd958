package portal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// The feed gives the case system, in order, what it must archive: family
// messages (chat is case documentation), the first read of each of its
// documents, and requests for access. Rows are written by triggers in the
// transaction of the event itself (migration 0006), so a committed event
// is always in the feed, and the cursor is the row's id: stable across
// restarts, and a client that resends its last cursor after a crash gets
// the same items again (at least once).

// Feed limits.
const (
	feedDefaultLimit = 100
	feedMaxLimit     = 500
)

// FeedPage is one page of the feed.
type FeedPage struct {
	Items []FeedItem `json:"items"`
	// Next is the cursor to ask for next (after=Next); it is the given
	// cursor again when there is nothing new.
	Next string `json:"next"`
	// More is true when more items are waiting.
	More bool `json:"more"`
}

// FeedItem is one event for the case system.
type FeedItem struct {
	Cursor        string             `json:"cursor"`
	Type          string             `json:"type"` // message, document_read, access_request
	At            time.Time          `json:"at"`
	Case          FeedCase           `json:"case"`
	Party         FeedParty          `json:"party"`
	Message       *FeedMessage       `json:"message,omitempty"`
	Document      *FeedDocument      `json:"document,omitempty"`
	AccessRequest *FeedAccessRequest `json:"accessRequest,omitempty"`
}

// FeedCase names the case by the case system's id.
type FeedCase struct {
	SystemID  *string `json:"systemId"` // null for a case that did not come from the case system
	Reference string  `json:"reference"`
}

// FeedParty names the family member, never by national id: by the mappe
// the case system indexed for them, and by role and name.
type FeedParty struct {
	MeldingID *string `json:"meldingId"` // their mappe's meldingId, if any
	Rolle     *string `json:"rolle"`
	Name      string  `json:"name"`
}

// FeedMessage is a message a family member wrote.
type FeedMessage struct {
	ID           string `json:"id"`
	Conversation string `json:"conversation"`
	Seq          int64  `json:"seq"`
	Body         string `json:"body"`
}

// FeedDocument is a document a family member opened for the first time.
type FeedDocument struct {
	JournalpostSystemID  *string `json:"journalpostSystemId"`
	JournalpostMeldingID string  `json:"journalpostMeldingId"`
	Index                int     `json:"index"`
	SHA256               string  `json:"sha256"`
}

// FeedAccessRequest is a request to see the documents withheld from a
// party, with its status now. Answer it with PUT /api/v1/innsynsforesporsler/{id}.
type FeedAccessRequest struct {
	ID     string `json:"id"`
	Status string `json:"innsynsforesporselStatus"`
}

// ParseCursor checks a cursor given by a client: "" (from the start) or
// one the feed gave out.
func ParseCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, badParam("after", "must be a cursor the feed gave out (next or an item's cursor)")
	}
	return n, nil
}

// Feed returns up to limit items of the office after the cursor.
func (in *Ingest) Feed(ctx context.Context, after int64, limit int) (FeedPage, error) {
	page := FeedPage{Items: []FeedItem{}, Next: strconv.FormatInt(after, 10)}
	if after == 0 {
		page.Next = ""
	}
	var rows []struct {
		ID       int64     `db:"id"`
		Kind     string    `db:"kind"`
		ObjectID string    `db:"object_id"`
		UserID   string    `db:"user_id"`
		At       time.Time `db:"at"`
	}
	db := in.store.db
	if err := db.SelectContext(ctx, &rows, db.Rebind(`
		SELECT id, kind, object_id, user_id, at FROM api_feed
		WHERE office_id = ? AND id > ? ORDER BY id LIMIT ?`), in.officeID, after, limit+1); err != nil {
		return page, fmt.Errorf("feed: %w", err)
	}
	if len(rows) > limit {
		rows, page.More = rows[:limit], true
	}
	var cases []string // read in this page, in order, for the audit log
	for _, r := range rows {
		it := FeedItem{Cursor: strconv.FormatInt(r.ID, 10), Type: r.Kind, At: r.At.UTC()}
		var caseID string
		var err error
		switch r.Kind {
		case "message":
			caseID, err = in.feedMessage(ctx, r.ObjectID, &it)
		case "document_read":
			caseID, err = in.feedDocument(ctx, r.ObjectID, &it)
		case "access_request":
			caseID, err = in.feedAccessRequest(ctx, r.ObjectID, &it)
		}
		if errors.Is(err, sql.ErrNoRows) {
			// Its case has been deleted (retention): nothing to archive.
			page.Next = it.Cursor
			continue
		}
		if err != nil {
			return page, fmt.Errorf("feed item %d: %w", r.ID, err)
		}
		if err := in.feedParty(ctx, caseID, r.UserID, &it); err != nil {
			return page, fmt.Errorf("feed item %d: %w", r.ID, err)
		}
		page.Items = append(page.Items, it)
		page.Next = it.Cursor
		if !slices.Contains(cases, caseID) {
			cases = append(cases, caseID)
		}
	}
	// One entry per case read; an empty poll reads nothing.
	for _, c := range cases {
		if err := in.audit(ctx, db, ActAPIFeed, c, page.Next, nil); err != nil {
			return FeedPage{}, err
		}
	}
	return page, nil
}

func (in *Ingest) feedCase(ctx context.Context, caseID string, it *FeedItem) error {
	var c struct {
		Reference string         `db:"reference"`
		SystemID  sql.NullString `db:"system_id"`
	}
	db := in.store.db
	if err := db.GetContext(ctx, &c, db.Rebind(`
		SELECT k.reference, f.system_id FROM cases k LEFT JOIN fiks_cases f ON f.case_id = k.id
		WHERE k.id = ?`), caseID); err != nil {
		return err
	}
	it.Case.Reference = c.Reference
	if c.SystemID.Valid {
		it.Case.SystemID = &c.SystemID.String
	}
	return nil
}

func (in *Ingest) feedMessage(ctx context.Context, id string, it *FeedItem) (string, error) {
	var m struct {
		CaseID       string `db:"case_id"`
		Conversation string `db:"conversation_id"`
		Seq          int64  `db:"seq"`
		Body         string `db:"body"`
	}
	db := in.store.db
	if err := db.GetContext(ctx, &m, db.Rebind(`
		SELECT c.case_id, m.conversation_id, m.seq, m.body
		FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = ?`), id); err != nil {
		return "", err
	}
	it.Message = &FeedMessage{ID: id, Conversation: m.Conversation, Seq: m.Seq, Body: m.Body}
	return m.CaseID, in.feedCase(ctx, m.CaseID, it)
}

func (in *Ingest) feedDocument(ctx context.Context, docID string, it *FeedItem) (string, error) {
	var d struct {
		CaseID    string         `db:"case_id"`
		SHA256    string         `db:"sha256"`
		Pos       int            `db:"pos"`
		SystemID  sql.NullString `db:"system_id"`
		MeldingID string         `db:"melding_id"`
	}
	db := in.store.db
	if err := db.GetContext(ctx, &d, db.Rebind(`
		SELECT d.case_id, d.sha256, f.pos, p.system_id,
		       (SELECT MIN(m.melding_id) FROM fiks_journalpost_meldinger m WHERE m.journalpost_id = p.id) AS melding_id
		FROM documents d
		JOIN fiks_dokumenter f ON f.document_id = d.id
		JOIN fiks_journalposter p ON p.id = f.journalpost_id
		WHERE d.id = ?`), docID); err != nil {
		return "", err
	}
	it.Document = &FeedDocument{JournalpostMeldingID: d.MeldingID, Index: d.Pos, SHA256: d.SHA256}
	if d.SystemID.Valid {
		it.Document.JournalpostSystemID = &d.SystemID.String
	}
	return d.CaseID, in.feedCase(ctx, d.CaseID, it)
}

func (in *Ingest) feedAccessRequest(ctx context.Context, id string, it *FeedItem) (string, error) {
	var r struct {
		CaseID string `db:"case_id"`
		Status string `db:"status"`
	}
	db := in.store.db
	if err := db.GetContext(ctx, &r, db.Rebind(`SELECT case_id, status FROM access_requests WHERE id = ?`), id); err != nil {
		return "", err
	}
	it.AccessRequest = &FeedAccessRequest{ID: id, Status: r.Status}
	return r.CaseID, in.feedCase(ctx, r.CaseID, it)
}

// feedParty names the family member by the mappe indexed for them.
func (in *Ingest) feedParty(ctx context.Context, caseID, userID string, it *FeedItem) error {
	db := in.store.db
	var m struct {
		MeldingID string `db:"melding_id"`
		Rolle     string `db:"rolle"`
		Fornavn   string `db:"fornavn"`
		Etternavn string `db:"etternavn"`
	}
	err := db.GetContext(ctx, &m, db.Rebind(`
		SELECT melding_id, rolle, fornavn, etternavn FROM fiks_mapper
		WHERE case_id = ? AND user_id = ? ORDER BY updated_at DESC LIMIT 1`), caseID, userID)
	if err == nil {
		it.Party = FeedParty{MeldingID: &m.MeldingID, Rolle: &m.Rolle, Name: m.Fornavn + " " + m.Etternavn}
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return db.GetContext(ctx, &it.Party.Name, db.Rebind(`SELECT name FROM users WHERE id = ?`), userID)
}
