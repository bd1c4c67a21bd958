package portal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"familieportal/i18n"
	"familieportal/messaging"
)

// Options configure a Server. The zero value is a production server
// without demo sign-in.
type Options struct {
	// Demo turns on the demo sign-in at /demo. Never in production.
	Demo bool
	// ShowStaffNames shows staff members' names in a family's access log;
	// by default only their role and unit are shown.
	ShowStaffNames bool
	// Chat is the chat service behind /ws, the inbox and the conversation
	// pages. Without it those routes are 404 and case pages show no chat.
	Chat *messaging.Service
	// WaitingDays is how many working days a family may wait for an answer
	// before the team lead's list (/waiting) shows them. Default 2.
	WaitingDays int
	// TrustedProxies are CIDR ranges whose X-Forwarded-For is believed.
	// Without any, the client address is the socket's.
	TrustedProxies []string
	// Citizen, if set, signs citizens in with ID-porten (OpenID Connect);
	// Staff, if set, signs staff in with the municipality's provider.
	// Neither is needed in demo mode.
	Citizen, Staff *OIDCConfig
	// PublicURL is the portal's public origin ("https://portal.example"),
	// from which the providers' redirect and logout URLs are made.
	PublicURL string
	// PIDKey keys the hash under which citizens' national ids are stored
	// (see PIDHash). Required with Citizen.
	PIDKey []byte
	// NotificationsOn says that the portal sends notices of new messages
	// (an outbox with a mail server runs). Without it the notification
	// page says so and offers no choice.
	NotificationsOn bool
}

// Server is the portal's web application. It implements http.Handler.
type Server struct {
	e        *echo.Echo
	store    *Store
	bundle   *i18n.Bundle
	log      *slog.Logger
	opt      Options
	assets   *assets
	pages    map[string]*template.Template
	rps      map[string]*relyingParty // configured identity providers by name
	chat     *messaging.Service
	draining atomic.Bool // set when shutdown begins: /readyz answers 503
}

// NewServer returns the portal over store.
func NewServer(store *Store, bundle *i18n.Bundle, log *slog.Logger, opt Options) (*Server, error) {
	s := &Server{e: echo.New(), store: store, bundle: bundle, log: log, opt: opt, chat: opt.Chat}
	var err error
	if s.assets, err = newAssets(); err != nil {
		return nil, err
	}
	if s.pages, err = parsePages(s.templateFuncs()); err != nil {
		return nil, err
	}
	if s.rps, err = newRelyingParties(opt, func() time.Time { return store.now() }); err != nil {
		return nil, err
	}
	s.e.HideBanner, s.e.HidePort = true, true
	s.e.HTTPErrorHandler = s.handleError
	s.e.Renderer = rendererFunc(s.renderTemplate)
	// Echo would otherwise trust X-Forwarded-For from anyone (STYLE.md §2).
	s.e.IPExtractor = echo.ExtractIPDirect()
	if len(opt.TrustedProxies) > 0 {
		var trust []echo.TrustOption
		for _, cidr := range opt.TrustedProxies {
			_, n, err := parseCIDR(cidr)
			if err != nil {
				return nil, err
			}
			trust = append(trust, echo.TrustIPRange(n))
		}
		s.e.IPExtractor = echo.ExtractIPFromXFFHeader(append([]echo.TrustOption{
			echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}, trust...)...)
	}
	s.routes()
	return s, nil
}

// ServeHTTP makes Server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.e.ServeHTTP(w, r) }

// Drain marks the server as shutting down: /readyz answers 503 from now on,
// so a load balancer stops sending new work here.
func (s *Server) Drain() { s.draining.Store(true) }

// routes is the whole URL surface of the portal, in one place.
func (s *Server) routes() {
	s.e.Use(
		middleware.RequestID(),
		s.secureHeaders,
		middleware.Recover(),
		// The integration API sets its own limits (documents are larger).
		middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
			Limit: "64K", Skipper: func(c echo.Context) bool { return isAPI(c.Path()) },
		}),
		middleware.CSRFWithConfig(middleware.CSRFConfig{
			TokenLookup:    "form:csrf,header:X-CSRF-Token",
			ContextKey:     ctxCSRF,
			CookieName:     "__Host-csrf",
			CookiePath:     "/",
			CookieSecure:   true,
			CookieHTTPOnly: true,
			CookieSameSite: http.SameSiteLaxMode,
			// Back-channel logout is a server-to-server POST carrying a
			// signed token, never a browser form.
			// The integration API (/api/) authenticates with an API key in
			// a header, never a cookie, so a browser cannot be made to use it.
			Skipper: func(c echo.Context) bool { return s.isBackchannel(c.Path()) || isAPI(c.Path()) },
		}),
		s.authenticate,
	)

	s.e.GET("/healthz", s.handleHealthz)
	s.e.GET("/readyz", s.handleReadyz)
	s.e.GET("/static/:hash/*", s.handleStatic)

	s.e.GET("/", s.handleHome)
	s.e.GET("/signin", s.handleSignIn)
	s.e.POST("/signout", s.handleSignOut)
	s.e.POST("/signout/everywhere", s.handleSignOutEverywhere)
	s.e.POST("/language", s.handleLanguage)
	s.e.GET("/privacy", s.handleInfoPage("privacy"))
	s.e.GET("/accessibility", s.handleInfoPage("accessibility"))
	s.e.GET("/words", s.handleInfoPage("words"))
	s.oidcRoutes()
	if s.opt.Demo {
		s.e.GET("/demo", s.handleDemo)
		s.e.POST("/demo", s.handleDemoSignIn)
	}

	// Not a Group: a group with middleware also claims every unknown path
	// below its prefix, and "" would turn every 404 into a sign-in redirect.
	u := s.requireUser
	s.e.GET("/cases", s.handleCases, u)
	s.e.GET("/cases/:id", s.handleCase, u)
	s.e.GET("/cases/:id/documents", s.handleDocuments, u)
	s.e.GET("/cases/:id/timeline", s.handleTimeline, u)
	s.e.GET("/cases/:id/access-log", s.handleAccessLog, u)
	s.e.GET("/documents/:id", s.handleDocument, u)
	s.e.GET("/documents/:id/download", s.handleDocumentFile(true), u)
	s.e.GET("/documents/:id/view", s.handleDocumentFile(false), u)
	s.e.GET("/notifications", s.handleNotifications, u)
	s.e.POST("/notifications", s.handleNotificationsSave, u)
	s.e.GET("/availability", s.handleAvailability, u)
	s.e.POST("/availability", s.handleAvailabilitySave, u)
	if s.chat != nil {
		s.e.GET("/ws", s.handleSocket, u)
		s.e.GET("/inbox", s.handleInbox, u)
		s.e.GET("/conversations/:id", s.handleConversation, u)
		s.e.POST("/conversations/:id/messages", s.handlePostMessage, u)
		s.e.GET("/waiting", s.handleWaiting, u)
	}
	s.apiRoutes()
}

// Context keys, read only through their accessors.
const (
	ctxUser  = "portal.user"
	ctxLoc   = "portal.localizer"
	ctxNonce = "portal.nonce"
	ctxCSRF  = "portal.csrf"
)

func userFrom(c echo.Context) (User, bool) {
	u, ok := c.Get(ctxUser).(User)
	return u, ok
}

// localizer returns the request's localizer, choosing it on first use:
// the user's saved language, then the language cookie (an explicit choice
// before signing in), then Accept-Language, then Bokmål.
func (s *Server) localizer(c echo.Context) *i18n.Localizer {
	if l, ok := c.Get(ctxLoc).(*i18n.Localizer); ok {
		return l
	}
	var prefs []string
	if u, ok := userFrom(c); ok && u.Lang != "" {
		prefs = append(prefs, u.Lang)
	}
	if ck, err := c.Cookie(langCookie); err == nil && isLang(ck.Value) {
		prefs = append(prefs, ck.Value)
	}
	prefs = append(prefs, c.Request().Header.Get("Accept-Language"))
	l := s.bundle.Localizer(prefs...)
	c.Set(ctxLoc, l)
	return l
}

// authenticate finds the signed-in user, if any. It never refuses a
// request itself; requireUser does that for the routes that need a user.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ck, err := c.Cookie(sessionCookie)
		if err != nil || ck.Value == "" {
			return next(c)
		}
		u, err := s.store.SessionUser(c.Request().Context(), ck.Value)
		switch {
		case errors.Is(err, ErrUnauthorized):
			clearSessionCookie(c.Response())
		case err != nil:
			return err
		default:
			c.Set(ctxUser, u)
		}
		return next(c)
	}
}

func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := userFrom(c); !ok {
			return ErrUnauthorized
		}
		return next(c)
	}
}

// secureHeaders sets the header baseline of SECURITY.md on every response,
// error pages included, before anything else can write.
func (s *Server) secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		nonce := base64.RawStdEncoding.EncodeToString(b)
		c.Set(ctxNonce, nonce)
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'nonce-"+nonce+"'; "+
			"style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; "+
			"object-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
		// Personal data must never be cached; static files override this.
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// handleError is the single place where errors become responses.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msgID := http.StatusInternalServerError, "error_internal"
	var he *echo.HTTPError
	switch {
	case errors.Is(err, ErrNotFound):
		status, msgID = http.StatusNotFound, "error_not_found"
	case errors.Is(err, ErrUnauthorized):
		if c.Request().Method == http.MethodGet {
			_ = c.Redirect(http.StatusSeeOther, "/signin")
			return
		}
		status, msgID = http.StatusUnauthorized, "error_signed_out"
	case errors.Is(err, ErrInvalid):
		status, msgID = http.StatusBadRequest, "error_invalid"
	case errors.As(err, &he) && he.Code < 500:
		status, msgID = he.Code, "error_invalid"
		switch {
		case he.Code == http.StatusNotFound, he.Code == http.StatusMethodNotAllowed:
			status, msgID = http.StatusNotFound, "error_not_found"
		case errors.Is(err, middleware.ErrCSRFInvalid) || he.Code == http.StatusForbidden ||
			(he.Code == http.StatusBadRequest && isCSRFMissing(he)):
			status, msgID = http.StatusForbidden, "error_form_expired"
		case he.Code == http.StatusRequestEntityTooLarge:
			msgID = "error_too_large"
		}
	default:
		// Only unexpected errors are logged, with the id the user can quote.
		s.log.ErrorContext(c.Request().Context(), "request failed",
			"err", err, "method", c.Request().Method, "route", c.Path(),
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	l := s.localizer(c)
	if rerr := s.render(c, status, "error.html", l.T(msgID+"_title", nil), map[string]any{
		"Message":   l.T(msgID, nil),
		"RequestID": c.Response().Header().Get(echo.HeaderXRequestID),
	}); rerr != nil {
		s.log.ErrorContext(c.Request().Context(), "render error page", "err", rerr)
	}
}

func isCSRFMissing(he *echo.HTTPError) bool {
	m, _ := he.Message.(string)
	return len(m) >= 12 && m[:12] == "missing csrf"
}

func (s *Server) handleHealthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

// handleReadyz answers 200 only while the database is reachable with every
// migration applied, and 503 once shutdown has begun.
func (s *Server) handleReadyz(c echo.Context) error {
	if s.draining.Load() {
		return c.String(http.StatusServiceUnavailable, "shutting down\n")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
	defer cancel()
	if err := s.store.Ready(ctx); err != nil {
		return c.String(http.StatusServiceUnavailable, "database not ready\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

// rendererFunc adapts a function to echo.Renderer.
type rendererFunc func(w io.Writer, name string, data any, c echo.Context) error

func (f rendererFunc) Render(w io.Writer, name string, data any, c echo.Context) error {
	return f(w, name, data, c)
}

func (s *Server) renderTemplate(w io.Writer, name string, data any, c echo.Context) error {
	t, ok := s.pages[name]
	if !ok {
		return errors.New("portal: no template " + name)
	}
	return t.ExecuteTemplate(w, "layout", data)
}
