package portal

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"

	"familieportal/docs"
)

// The integration API for case management systems, under /api/v1/. It
// speaks the KS Fiks Innsyn barnevern format (fiks.go), is described in
// docs/openapi.yaml (served at /api/v1/openapi.yaml), and authenticates
// with API keys, never cookies: it is outside the browser's CSRF check.
//
// Every request is one transaction; errors are RFC 9457 problem details
// whose "errors" point at the offending field with a JSON pointer.

// API rate limit per key: sustained requests per second, and burst.
const (
	apiRate  = 50
	apiBurst = 200
)

// Context keys of the API.
const ctxAPIKey = "portal.apikey"

// isAPI reports whether path (a route or URL path) belongs to the API.
func isAPI(path string) bool { return strings.HasPrefix(path, "/api/") }

// apiRoutes registers the integration API and the family's side of
// requests for access. Called from routes().
func (s *Server) apiRoutes() {
	limiter := rateLimitPerKey(middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
		Rate: rate.Limit(apiRate), Burst: apiBurst, ExpiresIn: 3 * time.Minute,
	}))
	write := []echo.MiddlewareFunc{s.apiErrors, s.apiAuth, limiter, requireScope(ScopeCasesWrite)}
	feed := []echo.MiddlewareFunc{s.apiErrors, s.apiAuth, limiter, requireScope(ScopeFeedRead)}

	s.e.GET("/api/v1/openapi.yaml", s.handleOpenAPI)
	s.e.PUT("/api/v1/mapper/:meldingId", s.handlePut((*Ingest).PutMappe), write...)
	s.e.GET("/api/v1/mapper/:meldingId", s.handleGetMappe, write...)
	s.e.DELETE("/api/v1/mapper/:meldingId", s.handleRevokeMappe, write...)
	s.e.PUT("/api/v1/journalposter/:meldingId", s.handlePut((*Ingest).PutJournalpost), write...)
	s.e.GET("/api/v1/journalposter/:meldingId", s.handleGetJournalpost, write...)
	s.e.DELETE("/api/v1/journalposter/:meldingId", s.handleWithdraw(false), write...)
	s.e.PUT("/api/v1/journalposter/:meldingId/dokumenter/:index", s.handlePutContent, write...)
	s.e.DELETE("/api/v1/journalposter/:meldingId/dokumenter/:index", s.handleWithdraw(true), write...)
	s.e.PUT("/api/v1/innsynsforesporsler/:id", s.handleAnswerAccessRequest, write...)
	s.e.GET("/api/v1/feed", s.handleFeed, feed...)
	// Anything else under /api/ is a JSON 404, not the HTML error page.
	s.e.Any("/api/*", func(c echo.Context) error { return &APIError{Status: http.StatusNotFound, Title: "Not found"} }, s.apiErrors)

	s.e.GET("/cases/:id/access-requests", s.handleAccessRequests, s.requireUser)
	s.e.POST("/cases/:id/access-requests", s.handleCreateAccessRequest, s.requireUser)
}

// rateLimitPerKey limits each API key to the store's rate. (Echo's own
// RateLimiter middleware writes its refusal through the HTML error
// handler; the API answers in JSON.)
func rateLimitPerKey(store middleware.RateLimiterStore) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			k, _ := c.Get(ctxAPIKey).(APIKey)
			if ok, err := store.Allow(k.ID); err != nil || !ok {
				c.Response().Header().Set("Retry-After", "1")
				return &APIError{Status: http.StatusTooManyRequests, Title: "Too many requests"}
			}
			return next(c)
		}
	}
}

// problem is an RFC 9457 problem details body.
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
}

// apiErrors turns every error of an API route into a problem response,
// so the HTML error page never answers a machine.
func (s *Server) apiErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil || c.Response().Committed {
			return err
		}
		p := problem{Type: "about:blank", Status: http.StatusInternalServerError, Title: "Internal server error"}
		var ae *APIError
		var ie *InvalidError
		var he *echo.HTTPError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &ae):
			p.Status, p.Title, p.Errors = ae.Status, ae.Title, ae.Problems
		case errors.As(err, &ie):
			p.Status, p.Title, p.Errors = http.StatusBadRequest, "Invalid request", ie.Problems
			p.Detail = "The body does not follow the format; see errors."
		case errors.Is(err, ErrUnauthorized):
			p.Status, p.Title = http.StatusUnauthorized, "Unauthorized"
			p.Detail = "Give a valid API key: Authorization: Bearer fpk_..."
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="familieportal"`)
		case errors.Is(err, ErrNotFound):
			p.Status, p.Title = http.StatusNotFound, "Not found"
		case errors.As(err, &mbe):
			p.Status, p.Title = http.StatusRequestEntityTooLarge, "Request too large"
		case errors.Is(err, errNoPIDKey):
			p.Status, p.Title = http.StatusServiceUnavailable, "Service unavailable"
			p.Detail = "The portal is not configured to receive case data (it has no key for national ids)."
		case errors.Is(err, ErrInvalid):
			p.Status, p.Title, p.Detail = http.StatusBadRequest, "Invalid request", err.Error()
		case errors.As(err, &he) && he.Code < 500:
			p.Status, p.Title = he.Code, http.StatusText(he.Code)
		default:
			s.log.ErrorContext(c.Request().Context(), "api request failed", "err", err,
				"method", c.Request().Method, "route", c.Path(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
		}
		b, merr := json.Marshal(p)
		if merr != nil {
			return merr
		}
		return c.Blob(p.Status, "application/problem+json", b)
	}
}

// apiAuth authenticates the case system by its API key. A missing, wrong
// or revoked key is 401, and audited.
func (s *Server) apiAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		scheme, key, ok := strings.Cut(c.Request().Header.Get("Authorization"), " ")
		ok = ok && strings.EqualFold(scheme, "Bearer")
		k, err := s.store.apiKey(ctx, strings.TrimSpace(key))
		if !ok || err != nil {
			if ok && err != nil && !errors.Is(err, ErrUnauthorized) {
				return err
			}
			if aerr := s.store.Audit(ctx, AuditEntry{ActorKind: kindSystem, Action: ActAPIAuth,
				Outcome: "denied", Purpose: "integration"}); aerr != nil {
				return aerr
			}
			return ErrUnauthorized
		}
		c.Set(ctxAPIKey, k)
		return next(c)
	}
}

// requireScope refuses a key without scope (403).
func requireScope(scope string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if k, _ := c.Get(ctxAPIKey).(APIKey); !k.Has(scope) {
				return &APIError{Status: http.StatusForbidden, Title: "Forbidden",
					Problems: []FieldError{{Detail: "the API key lacks the scope " + scope}}}
			}
			return next(c)
		}
	}
}

// ingest returns the ingestion for the request's key: its office only.
func (s *Server) ingest(c echo.Context) (*Ingest, error) {
	k, _ := c.Get(ctxAPIKey).(APIKey)
	return s.store.NewIngest(s.opt.PIDKey, k.OfficeID, "apikey:"+k.ID)
}

// readJSON reads a JSON request body, at most maxJSONBody bytes.
func readJSON(c echo.Context) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, &APIError{Status: http.StatusUnsupportedMediaType, Title: "Unsupported media type",
			Problems: []FieldError{{Parameter: "Content-Type", Detail: "must be application/json"}}}
	}
	return readBody(c, maxJSONBody)
}

func readBody(c echo.Context, limit int64) ([]byte, error) {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, limit)
	return io.ReadAll(r)
}

func writeJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.Blob(status, echo.MIMEApplicationJSON, b)
}

func putStatus(r PutResult) int {
	if r.Result == "created" {
		return http.StatusCreated
	}
	return http.StatusOK
}

// handlePut serves a PUT of one kind of message (mappe, journalpost):
// strict decoding, one transaction, and 201 or 200 with the result.
func (s *Server) handlePut(put func(*Ingest, context.Context, string, []byte) (PutResult, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		in, err := s.ingest(c)
		if err != nil {
			return err
		}
		body, err := readJSON(c)
		if err != nil {
			return err
		}
		res, err := put(in, c.Request().Context(), c.Param("meldingId"), body)
		if err != nil {
			return err
		}
		return writeJSON(c, putStatus(res), res)
	}
}

// handleGetMappe serves GET /api/v1/mapper/:meldingId.
func (s *Server) handleGetMappe(c echo.Context) error {
	in, err := s.ingest(c)
	if err != nil {
		return err
	}
	m, err := in.Mappe(c.Request().Context(), c.Param("meldingId"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, m)
}

// handleRevokeMappe serves DELETE /api/v1/mapper/:meldingId: the party
// loses access to the case, and their open connections are closed.
func (s *Server) handleRevokeMappe(c echo.Context) error {
	in, err := s.ingest(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	userID, err := in.RevokeMappe(ctx, c.Param("meldingId"))
	if err != nil {
		return err
	}
	s.disconnect(ctx, userID)
	return c.NoContent(http.StatusNoContent)
}

// handleGetJournalpost serves GET /api/v1/journalposter/:meldingId.
func (s *Server) handleGetJournalpost(c echo.Context) error {
	in, err := s.ingest(c)
	if err != nil {
		return err
	}
	js, err := in.Journalpost(c.Request().Context(), c.Param("meldingId"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, js)
}

func docIndex(c echo.Context) (int, error) {
	s := c.Param("index")
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= maxDocumentsPerPost || strconv.Itoa(n) != s {
		return 0, badParam("index", "must be the document's place in dokumenter: 0, 1, 2, ...")
	}
	return n, nil
}

// reprDigest reads the sha-256 of an RFC 9530 Repr-Digest header
// ("sha-256=:BASE64:"); nil if there is none.
func reprDigest(h string) ([]byte, error) {
	if h == "" {
		return nil, nil
	}
	for _, part := range strings.Split(h, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || strings.ToLower(strings.TrimSpace(alg)) != "sha-256" {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) < 2 || val[0] != ':' || val[len(val)-1] != ':' {
			break
		}
		b, err := base64.StdEncoding.DecodeString(val[1 : len(val)-1])
		if err != nil || len(b) != 32 {
			break
		}
		return b, nil
	}
	return nil, badParam("Repr-Digest", "must carry sha-256=:BASE64: (RFC 9530)")
}

// handlePutContent serves PUT /api/v1/journalposter/:meldingId/dokumenter/:index:
// the bytes of a document, checked against its size, type and sha-256.
func (s *Server) handlePutContent(c echo.Context) error {
	in, err := s.ingest(c)
	if err != nil {
		return err
	}
	index, err := docIndex(c)
	if err != nil {
		return err
	}
	digest, err := reprDigest(c.Request().Header.Get("Repr-Digest"))
	if err != nil {
		return err
	}
	if digest == nil {
		return badParam("Repr-Digest", "is required: sha-256=:BASE64: of the content (RFC 9530)")
	}
	body, err := readBody(c, maxDocumentSize)
	if err != nil {
		return err
	}
	st, err := in.PutContent(c.Request().Context(), c.Param("meldingId"), index,
		Content{Type: c.Request().Header.Get("Content-Type"), SHA256: digest, Bytes: body})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, st)
}

// handleWithdraw serves DELETE of a journal post or one of its documents.
func (s *Server) handleWithdraw(document bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		in, err := s.ingest(c)
		if err != nil {
			return err
		}
		var index *int
		if document {
			n, err := docIndex(c)
			if err != nil {
				return err
			}
			index = &n
		}
		if err := in.Withdraw(c.Request().Context(), c.Param("meldingId"), index); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	}
}

// handleAnswerAccessRequest serves PUT /api/v1/innsynsforesporsler/:id.
func (s *Server) handleAnswerAccessRequest(c echo.Context) error {
	in, err := s.ingest(c)
	if err != nil {
		return err
	}
	body, err := readJSON(c)
	if err != nil {
		return err
	}
	if err := in.AnswerAccessRequest(c.Request().Context(), c.Param("id"), body); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// handleFeed serves GET /api/v1/feed?after=CURSOR&limit=N.
func (s *Server) handleFeed(c echo.Context) error {
	in, err := s.ingest(c)
	if err != nil {
		return err
	}
	after, err := ParseCursor(c.QueryParam("after"))
	if err != nil {
		return err
	}
	limit := feedDefaultLimit
	if l := c.QueryParam("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > feedMaxLimit {
			return badParam("limit", "must be a number from 1 to %d", feedMaxLimit)
		}
		limit = n
	}
	for name := range c.QueryParams() {
		if name != "after" && name != "limit" {
			return badParam(name, "is not a parameter of the feed")
		}
	}
	page, err := in.Feed(c.Request().Context(), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, page)
}

// handleOpenAPI serves GET /api/v1/openapi.yaml, the API's description.
func (s *Server) handleOpenAPI(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "application/yaml", docs.OpenAPI)
}
