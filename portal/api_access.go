package portal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Requests for access (innsynsforespørsel): a family member from whom
// documents are withheld asks to see them, from the general notice. The
// request goes to the case system through the feed; its answer comes back
// through the API and is shown to the one who asked, and to no one else.

// AccessRequest is one request for access, as its maker sees it.
type AccessRequest struct {
	ID        string    `db:"id"`
	Status    string    `db:"status"` // FORESPURT, GODKJENT or AVVIST
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
}

// Open reports whether the case system has not answered yet.
func (r AccessRequest) Open() bool { return r.Status == "FORESPURT" }

// AccessRequests lists the viewer's own requests in g's case, newest first.
// Staff have none.
func (s *Store) AccessRequests(ctx context.Context, g Grant) ([]AccessRequest, error) {
	if g.staff {
		return nil, nil
	}
	var rs []AccessRequest
	if err := s.db.SelectContext(ctx, &rs, s.db.Rebind(`
		SELECT id, status, created_at, updated_at FROM access_requests
		WHERE case_id = ? AND user_id = ? ORDER BY created_at DESC, id`), g.caseID, g.viewer.ID); err != nil {
		return nil, fmt.Errorf("list access requests: %w", err)
	}
	return rs, nil
}

// CreateAccessRequest records that the viewer of g asks to see what is
// withheld from them. Only a party from whom something is withheld can
// ask, and an unanswered request is not made twice.
func (s *Store) CreateAccessRequest(ctx context.Context, g Grant) (AccessRequest, error) {
	if g.staff || g.role == "" {
		return AccessRequest{}, ErrNotFound
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return AccessRequest{}, fmt.Errorf("create access request: %w", err)
	}
	defer tx.Rollback() // no-op after Commit

	var n int
	if err := tx.GetContext(ctx, &n, tx.Rebind(`
		SELECT COUNT(*) FROM document_withheld w JOIN documents d ON d.id = w.document_id
		WHERE d.case_id = ? AND w.user_id = ? AND d.withdrawn_at IS NULL`), g.caseID, g.viewer.ID); err != nil {
		return AccessRequest{}, fmt.Errorf("create access request: %w", err)
	}
	if n == 0 {
		return AccessRequest{}, fmt.Errorf("nothing is withheld: %w", ErrInvalid)
	}
	var r AccessRequest
	err = tx.GetContext(ctx, &r, tx.Rebind(`
		SELECT id, status, created_at, updated_at FROM access_requests
		WHERE case_id = ? AND user_id = ? AND status = 'FORESPURT'`), g.caseID, g.viewer.ID)
	if err == nil {
		return r, nil // already asked, not yet answered
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return AccessRequest{}, fmt.Errorf("create access request: %w", err)
	}
	now := s.now()
	r = AccessRequest{ID: NewID(), Status: "FORESPURT", CreatedAt: now, UpdatedAt: now}
	// The feed row is written by a trigger in this same transaction.
	if _, err := tx.ExecContext(ctx, tx.Rebind(`
		INSERT INTO access_requests (id, case_id, user_id, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`), r.ID, g.caseID, g.viewer.ID, r.Status, now, now); err != nil {
		return AccessRequest{}, fmt.Errorf("create access request: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return AccessRequest{}, fmt.Errorf("create access request: %w", err)
	}
	return r, nil
}

// accessRequestsView is what the requests page shows.
type accessRequestsView struct {
	Case     Case
	Withheld bool
	Requests []AccessRequest
	Open     bool // an unanswered request exists
}

// handleAccessRequests serves GET /cases/:id/access-requests: the
// family member's own requests for access and their answers.
func (s *Server) handleAccessRequests(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := userFrom(c)
	g, err := s.store.Authorize(ctx, u, c.Param("id"), ActAccessRequestView, "")
	if err != nil {
		return err
	}
	if g.Staff() {
		return ErrNotFound // requests are the family member's own
	}
	o, err := s.store.Overview(ctx, g)
	if err != nil {
		return err
	}
	v := accessRequestsView{Case: o.Case, Withheld: o.Withheld}
	if v.Requests, err = s.store.AccessRequests(ctx, g); err != nil {
		return err
	}
	for _, r := range v.Requests {
		v.Open = v.Open || r.Open()
	}
	l := s.localizer(c)
	return s.render(c, http.StatusOK, "access_requests.html", l.T("access_request_title", nil), v)
}

// handleCreateAccessRequest serves POST /cases/:id/access-requests, the
// form in the withheld-documents notice (CSRF-checked like every form).
func (s *Server) handleCreateAccessRequest(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := userFrom(c)
	g, err := s.store.Authorize(ctx, u, c.Param("id"), ActAccessRequest, "")
	if err != nil {
		return err
	}
	if _, err := s.store.CreateAccessRequest(ctx, g); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/cases/"+g.CaseID()+"/access-requests")
}

// OpenAccessRequest is one unanswered request for access, as the staff
// inbox lists it.
type OpenAccessRequest struct {
	ID        string    `db:"id"`
	CaseID    string    `db:"case_id"`
	ChildName string    `db:"child_name"`
	PartyName string    `db:"party_name"`
	CreatedAt time.Time `db:"created_at"`
}

// OpenAccessRequests lists the requests not yet answered by the case
// system in the cases u may see (the access rule, canSeeCase), oldest
// first, and records the read of each case in the audit log. Families have
// none here: their own requests are on the case.
func (s *Store) OpenAccessRequests(ctx context.Context, u User) ([]OpenAccessRequest, error) {
	if !u.Kind.Staff() {
		return nil, nil
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list open access requests: %w", err)
	}
	defer tx.Rollback() // no-op after Commit

	var rs []OpenAccessRequest
	err = tx.SelectContext(ctx, &rs, tx.Rebind(`
		SELECT r.id, r.case_id, c.child_name, u.name AS party_name, r.created_at
		FROM access_requests r
		JOIN cases c ON c.id = r.case_id
		JOIN users u ON u.id = r.user_id
		WHERE r.status = 'FORESPURT' AND `+canSeeCase+`
		ORDER BY r.created_at, r.id`), accessArgs(u)...)
	if err != nil {
		return nil, fmt.Errorf("list open access requests: %w", err)
	}
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.CaseID
	}
	if err := s.auditListed(ctx, tx, u, ids); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("list open access requests: %w", err)
	}
	return rs, nil
}
