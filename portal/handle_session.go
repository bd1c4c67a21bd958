package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"familieportal/i18n"
)

// langCookie holds a language chosen before signing in. It is not personal.
const langCookie = "lang"

func isLang(s string) bool { return i18n.IsSupported(s) }

// handleHome serves GET /: signed-in people go to their cases, others to sign-in.
func (s *Server) handleHome(c echo.Context) error {
	if _, ok := userFrom(c); ok {
		return c.Redirect(http.StatusSeeOther, "/cases")
	}
	return c.Redirect(http.StatusSeeOther, "/signin")
}

// handleSignIn serves GET /signin: the configured ways to sign in. A
// "next" parameter (a local path only) is carried through the login.
func (s *Server) handleSignIn(c echo.Context) error {
	if _, ok := userFrom(c); ok {
		return c.Redirect(http.StatusSeeOther, "/cases")
	}
	return s.renderSignIn(c, http.StatusOK, map[string]any{
		"SignedOut": c.QueryParam("signedout") != "",
	})
}

// handleDemo serves GET /demo (demo mode only): one sign-in form per demo person.
func (s *Server) handleDemo(c echo.Context) error {
	people, err := s.store.DemoPeople(c.Request().Context())
	if err != nil {
		return err
	}
	l := s.localizer(c)
	return s.render(c, http.StatusOK, "demo.html", l.T("demo_title", nil), people)
}

// handleDemoSignIn serves POST /demo (demo mode only): signs in as the
// person named by the form field "person", through the same session code
// as every other sign-in.
func (s *Server) handleDemoSignIn(c echo.Context) error {
	ctx := c.Request().Context()
	u, err := s.store.UserByDemoKey(ctx, c.FormValue("person"))
	if errors.Is(err, ErrNotFound) {
		return ErrInvalid
	}
	if err != nil {
		return err
	}
	return s.startSession(c, u)
}

// startSession signs u in with a brand-new token (never one the browser
// brought along) and sends them to their cases.
func (s *Server) startSession(c echo.Context, u User) error {
	return s.beginSession(c, u, sessionOrigin{}, "/cases")
}

// beginSession is every sign-in's last step (demo and OpenID Connect
// alike): it ends any session the browser brought along, so a token planted
// before sign-in is never adopted, starts a new one, records the sign-in,
// and sends the browser to next (a local path).
func (s *Server) beginSession(c echo.Context, u User, o sessionOrigin, next string) error {
	ctx := c.Request().Context()
	if ck, err := c.Cookie(sessionCookie); err == nil && ck.Value != "" {
		if err := s.store.DeleteSession(ctx, ck.Value); err != nil {
			return err
		}
	}
	token, err := s.store.createSession(ctx, u.ID, o)
	if err != nil {
		return err
	}
	if err := s.store.Audit(ctx, AuditEntry{ActorID: u.ID, ActorKind: u.Kind,
		Action: ActSignIn, ObjectID: o.IdP, Outcome: "allowed"}); err != nil {
		return err
	}
	setSessionCookie(c.Response(), token)
	return c.Redirect(http.StatusSeeOther, afterSignIn(returnPath(next)))
}

// handleSignOut serves POST /signout: ends this browser's session here and,
// for a session from an identity provider that supports it, there too.
func (s *Server) handleSignOut(c echo.Context) error {
	return s.endSession(c, false)
}

// handleSignOutEverywhere serves POST /signout/everywhere: ends every
// session of the signed-in user, in every browser and on every instance.
func (s *Server) handleSignOutEverywhere(c echo.Context) error {
	return s.endSession(c, true)
}

func (s *Server) endSession(c echo.Context, everywhere bool) error {
	ctx := c.Request().Context()
	var idp, idToken string
	if ck, err := c.Cookie(sessionCookie); err == nil && ck.Value != "" {
		// Read what the provider's logout needs before the row is gone.
		if idp, idToken, err = s.store.sessionLogoutHint(ctx, ck.Value); err != nil {
			return err
		}
		if err := s.store.DeleteSession(ctx, ck.Value); err != nil {
			return err
		}
	}
	if u, ok := userFrom(c); ok {
		act := ActSignOut
		if everywhere {
			act = ActSignOutEverywhere
			if _, err := s.store.DeleteUserSessions(ctx, u.ID); err != nil {
				return err
			}
		}
		if err := s.store.Audit(ctx, AuditEntry{ActorID: u.ID, ActorKind: u.Kind,
			Action: act, ObjectID: idp, Outcome: "allowed"}); err != nil {
			return err
		}
		s.disconnect(ctx, u.ID)
	}
	clearSessionCookie(c.Response())
	c.Response().Header().Set("Clear-Site-Data", `"cache", "cookies", "storage"`)
	if idp != "" {
		if to := s.providerLogoutURL(c, idp, idToken); to != "" {
			// Not a redirect: Chrome and Safari check a form's redirects
			// against CSP form-action 'self' and would block the way to the
			// provider. The page moves on by itself (meta refresh), or with
			// a click.
			c.Set(ctxUser, nil)
			return s.renderSignIn(c, http.StatusOK, map[string]any{"SignedOut": true, "ProviderLogout": to})
		}
	}
	return c.Redirect(http.StatusSeeOther, "/signin?signedout=1")
}

// handleLanguage serves POST /language: saves the choice (for a signed-in
// user in their profile, for others in a cookie) and goes back.
func (s *Server) handleLanguage(c echo.Context) error {
	lang := c.FormValue("lang")
	if !isLang(lang) {
		return ErrInvalid
	}
	if u, ok := userFrom(c); ok {
		if err := s.store.SetLanguage(c.Request().Context(), u.ID, lang); err != nil {
			return err
		}
	}
	c.SetCookie(&http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return c.Redirect(http.StatusSeeOther, localPath(c.FormValue("back")))
}

// localPath returns p if it is a path on this site, and "/" otherwise, so
// a return-to parameter can never send anyone to another site.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\\r\n\t") {
		return "/"
	}
	return p
}

// handleInfoPage serves the public information pages (privacy,
// accessibility statement, word list); their text is in the catalogs.
func (s *Server) handleInfoPage(name string) echo.HandlerFunc {
	return func(c echo.Context) error {
		l := s.localizer(c)
		return s.render(c, http.StatusOK, "info.html", l.T("info_"+name+"_title", nil), name)
	}
}
