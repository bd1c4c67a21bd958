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

// casePart is what a case page shows besides the overview.
type casePart int

const (
	withDocuments casePart = 1 << iota
	withTimeline
	withChat // the conversation(s) and the contact card
)

// loadCase authorizes the viewer for the case in the path, audited as act,
// and reads the parts the page shows.
func (s *Server) loadCase(c echo.Context, act Action, parts casePart) (caseView, error) {
	ctx := c.Request().Context()
	u, _ := userFrom(c) // requireUser guarantees a user
	g, err := s.store.Authorize(ctx, u, c.Param("id"), act, "")
	if err != nil {
		return caseView{}, err
	}
	v := caseView{Staff: g.Staff()}
	if v.Overview, err = s.store.Overview(ctx, g); err != nil {
		return caseView{}, err
	}
	if parts&withDocuments != 0 {
		v.Documents = v.Overview.documents // read once, for the counts and the list
		if g.Staff() {
			if v.Parties, v.Visibility, err = s.store.Visibility(ctx, g); err != nil {
				return caseView{}, err
			}
		}
	}
	if parts&withTimeline != 0 {
		if v.Timeline, err = s.store.Timeline(ctx, g); err != nil {
			return caseView{}, err
		}
	}
	if parts&withChat != 0 {
		if err := s.caseChat(c, g, &v); err != nil {
			return caseView{}, err
		}
		if v.Contact, err = s.caseContact(c, g); err != nil {
			return caseView{}, err
		}
	}
	return v, nil
}

// handleCase serves GET /cases/:id: status, contact, chat, documents and timeline.
func (s *Server) handleCase(c echo.Context) error {
	return s.renderCase(c, ActCaseView, withDocuments|withTimeline|withChat, "case.html", "case_title")
}

// handleDocuments serves GET /cases/:id/documents.
func (s *Server) handleDocuments(c echo.Context) error {
	return s.renderCase(c, ActDocumentList, withDocuments, "documents.html", "documents_title")
}

// handleTimeline serves GET /cases/:id/timeline.
func (s *Server) handleTimeline(c echo.Context) error {
	return s.renderCase(c, ActTimeline, withTimeline, "timeline.html", "timeline_title")
}

// renderCase loads a case page's parts and renders it, titled with the
// child's first name.
func (s *Server) renderCase(c echo.Context, act Action, parts casePart, page, titleID string) error {
	// The page's access decisions (the case, the chat's history and read
	// cursor) are audited in one write, before anything is rendered.
	ctx, batch := withAuditBatch(withPageTag(c.Request().Context()))
	c.SetRequest(c.Request().WithContext(ctx))
	v, err := s.loadCase(c, act, parts)
	if werr := s.store.writeAuditBatch(ctx, batch); werr != nil {
		return werr // fail closed, refused or not
	}
	if err != nil {
		return err
	}
	title := s.localizer(c).T(titleID, map[string]any{"Child": v.Case.ChildName})
	return s.render(c, http.StatusOK, page, title, v)
}

// caseChat puts the case's conversations on the case page: a family
// member's own conversation in full (and marked as seen), links for staff.
func (s *Server) caseChat(c echo.Context, g Grant, v *caseView) error {
	if s.chat == nil {
		return nil
	}
	convs, err := s.chat.ConversationsWhere(c.Request().Context(), s.participant(c),
		func(r messaging.ConversationRef) bool { return r.CaseID == g.CaseID() })
	if err != nil {
		return err
	}
	if g.Staff() || len(convs) == 0 {
		v.Conversations = convs
		return nil
	}
	// The list already came from the chat's access check: no second lookup.
	cv, err := s.chatViewOf(c, convs[0])
	if err != nil {
		return err
	}
	// Nothing from anyone else after the cursor, and nothing new since it
	// was counted: the cursor has nowhere to go, so neither the decision to
	// move it nor its audit record (a commit of its own) is made. A family
	// reloading its case page is the common case. The cursor may so stay
	// behind the family's own newest messages, which nothing counts.
	if convs[0].Unread > 0 || cv.LastSeq != convs[0].LastSeq {
		if err := s.markSeen(c, cv); err != nil {
			return err
		}
	}
	v.Chat, v.Conversations = &cv, convs[1:]
	return nil
}
