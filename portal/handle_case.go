package portal

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"familieportal/messaging"
)

// handleCases serves GET /cases: "my cases". A family member with one case
// goes straight to it; someone with none gets a kind, neutral page.
func (s *Server) handleCases(c echo.Context) error {
	u, _ := userFrom(c) // requireUser guarantees a user
	cases, err := s.store.Cases(c.Request().Context(), u)
	if err != nil {
		return err
	}
	if !u.Kind.Staff() && len(cases) == 1 {
		return c.Redirect(http.StatusSeeOther, "/cases/"+cases[0].ID)
	}
	l := s.localizer(c)
	return s.render(c, http.StatusOK, "cases.html", l.T("cases_title", nil), cases)
}

// caseView is what the case page shows.
type caseView struct {
	Overview
	Documents  []Document
	Timeline   []Event
	Parties    []PartyView                   // staff only
	Visibility map[string]DocumentVisibility // staff only
	Staff      bool
	// Chat is the family member's own conversation in this case.
	Chat *chatView
	// Conversations lists the case's conversations (for staff: every
	// party's; for a family member, any besides their own).
	Conversations []messaging.ConversationSummary
	// Contact is when and how the caseworker can be reached now, and the
	// emergency numbers, in the viewer's language.
	Contact *contactView
}

// handleCase serves GET /cases/:id: status, contact, documents and timeline.
func (s *Server) handleCase(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := userFrom(c)
	g, err := s.store.Authorize(ctx, u, c.Param("id"), ActCaseView, "")
	if err != nil {
		return err
	}
	v := caseView{Staff: g.Staff()}
	if v.Overview, err = s.store.Overview(ctx, g); err != nil {
		return err
	}
	if v.Documents, err = s.store.Documents(ctx, g); err != nil {
		return err
	}
	if v.Timeline, err = s.store.Timeline(ctx, g); err != nil {
		return err
	}
	if g.Staff() {
		if v.Parties, v.Visibility, err = s.store.Visibility(ctx, g); err != nil {
			return err
		}
	}
	if err := s.caseChat(c, g, &v); err != nil {
		return err
	}
	if v.Contact, err = s.caseContact(c, g); err != nil {
		return err
	}
	l := s.localizer(c)
	return s.render(c, http.StatusOK, "case.html", l.T("case_title", map[string]any{"Child": v.Case.ChildName}), v)
}

// handleDocuments serves GET /cases/:id/documents.
func (s *Server) handleDocuments(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := userFrom(c)
	g, err := s.store.Authorize(ctx, u, c.Param("id"), ActDocumentList, "")
	if err != nil {
		return err
	}
	v := caseView{Staff: g.Staff()}
	if v.Overview, err = s.store.Overview(ctx, g); err != nil {
		return err
	}
	if v.Documents, err = s.store.Documents(ctx, g); err != nil {
		return err
	}
	if g.Staff() {
		if v.Parties, v.Visibility, err = s.store.Visibility(ctx, g); err != nil {
			return err
		}
	}
	l := s.localizer(c)
	return s.render(c, http.StatusOK, "documents.html", l.T("documents_title", map[string]any{"Child": v.Case.ChildName}), v)
}

// handleTimeline serves GET /cases/:id/timeline.
func (s *Server) handleTimeline(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := userFrom(c)
	g, err := s.store.Authorize(ctx, u, c.Param("id"), ActTimeline, "")
	if err != nil {
		return err
	}
	v := caseView{Staff: g.Staff()}
	if v.Overview, err = s.store.Overview(ctx, g); err != nil {
		return err
	}
	if v.Timeline, err = s.store.Timeline(ctx, g); err != nil {
		return err
	}
	l := s.localizer(c)
	return s.render(c, http.StatusOK, "timeline.html", l.T("timeline_title", map[string]any{"Child": v.Case.ChildName}), v)
}

// caseChat puts the case's conversations on the case page: a family
// member's own conversation in full (and marked as seen), links for staff.
func (s *Server) caseChat(c echo.Context, g Grant, v *caseView) error {
	if s.chat == nil {
		return nil
	}
	convs, err := s.caseConversations(c.Request().Context(), s.participant(c), g.CaseID())
	if err != nil {
		return err
	}
	if g.Staff() || len(convs) == 0 {
		v.Conversations = convs
		return nil
	}
	cv, err := s.conversationView(c, convs[0].ID)
	if err != nil {
		return err
	}
	if err := s.markSeen(c, cv); err != nil {
		return err
	}
	v.Chat, v.Conversations = &cv, convs[1:]
	return nil
}
