package portal

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// accessLogPage is how many entries one page of "who has looked at my
// case" shows.
const accessLogPage = 25

// ActAccessLog is a family member reading who has looked at their case.
const ActAccessLog Action = "case.accesslog"

// Access is one staff access to a case, as its family sees it.
type Access struct {
	At        time.Time `db:"at"`
	ActorKind Kind      `db:"actor_kind"`
	Unit      string    `db:"unit"`
	Name      string    `db:"name"`
	Action    Action    `db:"action"`
	Purpose   string    `db:"purpose"`
}

// ActionKey is the catalog key that says in words what the access was.
func (a Access) ActionKey() string {
	switch a.Action {
	case ActCaseList, ActCaseView, ActTimeline:
		return "accesslog_action_case"
	case ActDocumentList:
		return "accesslog_action_documents"
	case ActDocumentRead, ActDocumentDownload:
		return "accesslog_action_document"
	case "chat.send", "chat.sync", "chat.read":
		return "accesslog_action_chat"
	}
	return "accesslog_action_other"
}

// StaffAccesses returns one page (from 0) of the staff accesses to g's
// case, newest first, and whether there are more. Other parties' reads are
// never listed: a parent must not learn when the other parent looked.
func (s *Store) StaffAccesses(ctx context.Context, g Grant, page int) ([]Access, bool, error) {
	var as []Access
	err := s.db.SelectContext(ctx, &as, s.db.Rebind(`
		SELECT a.at, a.actor_kind, u.unit, u.name, a.action, a.purpose
		FROM audit a JOIN users u ON u.id = a.actor_id
		WHERE a.case_id = ? AND a.outcome = 'allowed' AND a.actor_kind IN ('caseworker', 'teamlead')
		ORDER BY a.id DESC
		LIMIT ? OFFSET ?`), g.caseID, accessLogPage+1, page*accessLogPage)
	if err != nil {
		return nil, false, fmt.Errorf("list staff accesses: %w", err)
	}
	more := len(as) > accessLogPage
	if more {
		as = as[:accessLogPage]
	}
	return as, more, nil
}

// handleAccessLog serves GET /cases/:id/access-log: "Who has looked at my
// case", for the case's parties (staff see the audit log elsewhere).
func (s *Server) handleAccessLog(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := userFrom(c)
	g, err := s.store.Authorize(ctx, u, c.Param("id"), ActAccessLog, "")
	if err != nil {
		return err
	}
	page, _ := strconv.Atoi(c.QueryParam("page"))
	page = max(page, 0)
	entries, more, err := s.store.StaffAccesses(ctx, g, page)
	if err != nil {
		return err
	}
	o, err := s.store.Overview(ctx, g)
	if err != nil {
		return err
	}
	l := s.localizer(c)
	return s.render(c, http.StatusOK, "accesslog.html", l.T("accesslog_title", nil), map[string]any{
		"Case": o.Case, "Entries": entries, "Page": page, "More": more,
		"ShowNames": s.opt.ShowStaffNames,
	})
}
