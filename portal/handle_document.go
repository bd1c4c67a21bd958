package portal

import (
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// documentView is what the document page shows.
type documentView struct {
	Doc        Document
	Case       Case
	Caseworker string
	Text       string // the content of a text document, shown as text
	Staff      bool
}

// handleDocument serves GET /documents/:id: title, kind, date, what the
// kind means, and the text itself or the PDF embedded.
func (s *Server) handleDocument(c echo.Context) error {
	ctx := c.Request().Context()
	u, _ := userFrom(c)
	g, d, err := s.store.AuthorizeDocument(ctx, u, c.Param("id"), ActDocumentRead)
	if err != nil {
		return err
	}
	o, err := s.store.Overview(ctx, g)
	if err != nil {
		return err
	}
	v := documentView{Doc: d, Case: o.Case, Caseworker: o.Caseworker, Staff: g.Staff()}
	if strings.HasPrefix(d.ContentType, "text/plain") {
		b, err := s.store.DocumentContent(ctx, g, d)
		if err != nil {
			return err
		}
		v.Text = string(b)
	}
	if err := s.store.MarkRead(ctx, g, d); err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "document.html", d.Title, v)
}

// handleDocumentFile serves GET /documents/:id/download (attachment) and
// /documents/:id/view (a PDF inline, for embedding in the document page).
// The exact stored type is sent with nosniff; nothing is ever served as
// HTML or SVG, and the file name cannot break out of its header.
func (s *Server) handleDocumentFile(download bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		u, _ := userFrom(c)
		act := ActDocumentDownload
		if !download {
			act = ActDocumentRead
		}
		g, d, err := s.store.AuthorizeDocument(ctx, u, c.Param("id"), act)
		if err != nil {
			return err
		}
		if !download && d.ContentType != "application/pdf" {
			return ErrNotFound // only PDFs are embedded; text is shown in the page
		}
		b, err := s.store.DocumentContent(ctx, g, d)
		if err != nil {
			return err
		}
		if err := s.store.MarkRead(ctx, g, d); err != nil {
			return err
		}
		disposition := "attachment"
		h := c.Response().Header()
		if !download {
			disposition = "inline"
			// The page may embed this PDF; nothing else may, and it runs nothing.
			h.Set("Content-Security-Policy", "default-src 'none'; object-src 'self'; frame-ancestors 'self'")
			h.Set("X-Frame-Options", "SAMEORIGIN")
		}
		h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": safeFilename(d.Filename)}))
		return c.Blob(http.StatusOK, d.ContentType, b)
	}
}

// safeFilename keeps letters, digits, dot, dash and underscore, so a name
// from a case system cannot inject header syntax or a path.
func safeFilename(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	s := strings.TrimLeft(b.String(), ".")
	if s == "" {
		return "document"
	}
	return s
}
