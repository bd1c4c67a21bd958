package portal

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/oauth2"
)

// Audited session actions besides sign-in and sign-out (access.go).
const (
	ActSignOutEverywhere Action = "session.signout_everywhere"
	ActBackchannelLogout Action = "session.backchannel_logout"
)

const backchannelPathSuffix = "/backchannel"

// Why a sign-in was refused, as written to the audit log (in purpose) and
// the log. Never a national id, a name or a token.
const (
	refusedState    = "state"     // no, unknown, expired, reused or mismatched login state
	refusedProvider = "provider"  // the provider answered with an error (e.g. the user cancelled)
	refusedCode     = "code"      // the code exchange failed (e.g. PKCE mismatch, code reused)
	refusedToken    = "token"     // the ID token failed validation
	refusedNonce    = "nonce"     // the ID token is for another login
	refusedACR      = "acr"       // authenticated at too low a level
	refusedUnknown  = "unknown"   // no such person (citizen: pid; staff: subject)
	refusedNoCase   = "no_case"   // a citizen who is party to no case
	refusedPID      = "pid_claim" // a citizen token without a well-formed pid
)

// newRelyingParties makes the configured identity providers, and refuses
// a configuration that would sign people in unsafely.
func newRelyingParties(opt Options, now func() time.Time) (map[string]*relyingParty, error) {
	rps := map[string]*relyingParty{}
	if opt.Citizen == nil && opt.Staff == nil {
		return rps, nil
	}
	u, err := url.Parse(opt.PublicURL)
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("portal: sign-in needs the portal's public https origin (--public-url), got %q", opt.PublicURL)
	}
	if opt.Citizen != nil {
		// Citizens are found by a keyed hash of their national id; without
		// a key we would have to store it in the clear, so refuse to start.
		if len(opt.PIDKey) < MinPIDKeyLen {
			return nil, fmt.Errorf("portal: citizen sign-in needs a pid key (--pid-key) of at least %d bytes", MinPIDKeyLen)
		}
		if rps[idpCitizen], err = newRelyingParty(idpCitizen, *opt.Citizen, opt.PublicURL, now); err != nil {
			return nil, err
		}
	}
	if opt.Staff != nil {
		if rps[idpStaff], err = newRelyingParty(idpStaff, *opt.Staff, opt.PublicURL, now); err != nil {
			return nil, err
		}
	}
	return rps, nil
}

// oidcRoutes adds, for each configured provider, the start of a login, the
// provider's callback, and its back-channel logout endpoint.
func (s *Server) oidcRoutes() {
	// Starting a login writes a row; limit it per client address.
	limit := middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: 1, Burst: 30, ExpiresIn: 10 * time.Minute,
		}),
		IdentifierExtractor: func(c echo.Context) (string, error) { return c.RealIP(), nil },
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			return echo.NewHTTPError(http.StatusTooManyRequests)
		},
	})
	for _, idp := range []string{idpCitizen, idpStaff} {
		rp := s.rps[idp]
		if rp == nil {
			continue
		}
		s.e.GET("/signin/"+idp, s.handleOIDCStart(rp), limit)
		s.e.GET("/signin/"+idp+"/callback", s.handleOIDCCallback(rp), limit)
		// Called by the provider, server to server, with a signed token;
		// exempt from CSRF (see isBackchannel).
		s.e.POST("/signin/"+idp+backchannelPathSuffix, s.handleBackchannelLogout(rp))
	}
}

// isBackchannel reports whether the route at path is a back-channel logout
// endpoint. Those are POSTed by the identity provider, not a browser, carry
// no cookie and are authenticated by the signed logout token, so the CSRF
// check does not apply to them.
func (s *Server) isBackchannel(path string) bool {
	for idp := range s.rps {
		if path == "/signin/"+idp+backchannelPathSuffix {
			return true
		}
	}
	return false
}

// handleOIDCStart serves GET /signin/{citizen,staff}: it remembers a new
// login (state, nonce, PKCE verifier, where to go afterwards) under a random
// id in a cookie, and sends the browser to the provider.
func (s *Server) handleOIDCStart(rp *relyingParty) echo.HandlerFunc {
	return func(c echo.Context) error {
		// A browser that is signed in already gets a new login too: the
		// session it has may be one planted by someone else, and the new
		// one replaces it (beginSession).
		next := returnPath(c.QueryParam("next"))
		ctx := c.Request().Context()
		d, err := rp.discover(ctx)
		if err != nil {
			s.log.WarnContext(ctx, "identity provider unavailable", "idp", rp.idp, "err", err)
			return s.renderSignIn(c, http.StatusServiceUnavailable, map[string]any{"Unavailable": true})
		}
		loginID := randomString(32)
		si := signIn{
			IdP:      rp.idp,
			State:    randomString(32),
			Nonce:    randomString(32),
			Verifier: oauth2.GenerateVerifier(),
			ReturnTo: next,
		}
		if err := s.store.createSignIn(ctx, loginID, si); err != nil {
			return err
		}
		c.SetCookie(&http.Cookie{
			Name: signInCookie, Value: loginID, Path: "/", MaxAge: int(signInTTL / time.Second),
			Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
		})
		opts := []oauth2.AuthCodeOption{
			oauth2.S256ChallengeOption(si.Verifier),
			oidc.Nonce(si.Nonce),
			oauth2.SetAuthURLParam("ui_locales", s.localizer(c).Lang),
		}
		if acr := rp.requestedACR(); acr != "" {
			opts = append(opts, oauth2.SetAuthURLParam("acr_values", acr))
		}
		return c.Redirect(http.StatusSeeOther, d.oauth.AuthCodeURL(si.State, opts...))
	}
}

// handleOIDCCallback serves GET /signin/{citizen,staff}/callback, where the
// provider sends the browser back with a code.
//
// The login is taken (and so deleted) first, whatever happens next, so a
// callback works once. Then: the state must match the one stored for this
// browser; the code is exchanged with the PKCE verifier; the ID token's
// signature, iss, aud and exp are checked by go-oidc, its nonce here; then
// the person is looked up, and the acr checked against the level that
// applies to them.
func (s *Server) handleOIDCCallback(rp *relyingParty) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		ck, err := c.Cookie(signInCookie)
		clearSignInCookie(c.Response())
		if err != nil || ck.Value == "" {
			return s.refuseSignIn(c, rp, nil, refusedState, nil)
		}
		si, err := s.store.takeSignIn(ctx, ck.Value)
		if errors.Is(err, ErrNotFound) {
			return s.refuseSignIn(c, rp, nil, refusedState, nil)
		}
		if err != nil {
			return err
		}
		state := c.QueryParam("state")
		if si.IdP != rp.idp || state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(si.State)) != 1 {
			return s.refuseSignIn(c, rp, nil, refusedState, nil)
		}
		if c.QueryParam("error") != "" {
			return s.refuseSignIn(c, rp, nil, refusedProvider, nil)
		}
		code := c.QueryParam("code")
		if code == "" {
			return s.refuseSignIn(c, rp, nil, refusedCode, nil)
		}
		d, err := rp.discover(ctx)
		if err != nil {
			return s.refuseSignIn(c, rp, nil, refusedProvider, err)
		}
		tok, err := d.oauth.Exchange(rp.client(ctx), code, oauth2.VerifierOption(si.Verifier))
		if err != nil {
			return s.refuseSignIn(c, rp, nil, refusedCode, err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		if rawID == "" {
			return s.refuseSignIn(c, rp, nil, refusedToken, errors.New("no id_token in token response"))
		}
		idt, err := d.verifier.Verify(rp.client(ctx), rawID)
		if err != nil {
			return s.refuseSignIn(c, rp, nil, refusedToken, err)
		}
		var claims struct {
			ACR string `json:"acr"`
			PID string `json:"pid"`
			SID string `json:"sid"`
			AZP string `json:"azp"`
		}
		if err := idt.Claims(&claims); err != nil {
			return s.refuseSignIn(c, rp, nil, refusedToken, err)
		}
		// With several audiences, the token must have been issued to us.
		if len(idt.Audience) > 1 && claims.AZP != rp.cfg.ClientID {
			return s.refuseSignIn(c, rp, nil, refusedToken, errors.New("azp is not our client id"))
		}
		if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(si.Nonce)) != 1 {
			return s.refuseSignIn(c, rp, nil, refusedNonce, nil)
		}

		var u User
		minACR := rp.cfg.MinACR
		switch rp.idp {
		case idpCitizen:
			if !validPID(claims.PID) {
				return s.refuseSignIn(c, rp, nil, refusedPID, nil)
			}
			u, err = s.store.citizenByPIDHash(ctx, PIDHash(s.opt.PIDKey, claims.PID))
			if errors.Is(err, ErrNotFound) {
				return s.refuseSignIn(c, rp, nil, refusedUnknown, nil)
			}
			if err != nil {
				return err
			}
			roles, err := s.store.partyRoles(ctx, u.ID)
			if err != nil {
				return err
			}
			if len(roles) == 0 {
				return s.refuseSignIn(c, rp, &u, refusedNoCase, nil)
			}
			// The youth level applies only to someone who is youth in every
			// case they are party to: a parent's session opens the parent's
			// cases too, so it needs the parent level.
			if !slices.ContainsFunc(roles, func(r Role) bool { return r != RoleYouth }) {
				minACR = rp.cfg.YouthMinACR
			}
		case idpStaff:
			u, err = s.store.staffBySubject(ctx, idt.Subject)
			if errors.Is(err, ErrNotFound) {
				return s.refuseSignIn(c, rp, nil, refusedUnknown, nil)
			}
			if err != nil {
				return err
			}
		}
		if !acrMeets(claims.ACR, minACR) {
			return s.refuseSignIn(c, rp, &u, refusedACR, nil)
		}
		return s.beginSession(c, u, sessionOrigin{
			IdP: rp.idp, SID: claims.SID, Sub: idt.Subject, IDToken: rawID,
		}, si.ReturnTo)
	}
}

// refuseSignIn records a refused sign-in and answers it. Someone who
// authenticated but may not come in (unknown, party to no case, too low a
// level) gets one neutral page, the same in every case, so it reveals
// neither whether they exist nor whether they have a case. A broken or
// forged login gets a "try again" page. No session is started either way.
func (s *Server) refuseSignIn(c echo.Context, rp *relyingParty, u *User, reason string, cause error) error {
	ctx := c.Request().Context()
	e := AuditEntry{Action: ActSignIn, ObjectID: rp.idp, Outcome: "denied", Purpose: reason}
	if u != nil {
		e.ActorID, e.ActorKind = u.ID, u.Kind
	}
	if err := s.store.Audit(ctx, e); err != nil {
		return err // fail closed: an unrecorded refusal is an error page
	}
	attrs := []any{"idp", rp.idp, "reason", reason}
	if cause != nil {
		attrs = append(attrs, "err", cause.Error())
	}
	s.log.InfoContext(ctx, "sign-in refused", attrs...)
	switch reason {
	case refusedUnknown, refusedNoCase, refusedACR:
		return s.renderSignIn(c, http.StatusOK, map[string]any{"Nothing": true})
	}
	return s.renderSignIn(c, http.StatusBadRequest, map[string]any{"Failed": true})
}

// renderSignIn renders the sign-in page with the providers' buttons and
// extra, a message to show above them.
func (s *Server) renderSignIn(c echo.Context, status int, extra map[string]any) error {
	data := map[string]any{
		"Demo":    s.opt.Demo,
		"Citizen": s.rps[idpCitizen] != nil,
		"Staff":   s.rps[idpStaff] != nil,
	}
	if next := returnPath(c.QueryParam("next")); next != "/" {
		data["Next"] = next
	}
	for k, v := range extra {
		data[k] = v
	}
	l := s.localizer(c)
	return s.render(c, status, "signin.html", l.T("signin_title", nil), data)
}

func clearSignInCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: signInCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// afterSignIn is where a new session goes: the path it came for, or its cases.
func afterSignIn(next string) string {
	if next == "/" || next == "" {
		return "/cases"
	}
	return next
}

// providerLogoutURL returns the provider's end-session URL for ending the
// provider session behind our session (RP-initiated logout), or "" when
// the session did not come from a provider that has one.
func (s *Server) providerLogoutURL(c echo.Context, idp, idToken string) string {
	rp := s.rps[idp]
	if rp == nil {
		return ""
	}
	d, err := rp.discover(c.Request().Context())
	if err != nil || d.endSession == "" {
		return ""
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		return ""
	}
	q := u.Query()
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	q.Set("client_id", rp.cfg.ClientID)
	q.Set("post_logout_redirect_uri", rp.afterLogout)
	q.Set("ui_locales", s.localizer(c).Lang)
	u.RawQuery = q.Encode()
	return u.String()
}

// handleBackchannelLogout serves POST /signin/{citizen,staff}/backchannel:
// the provider tells us, server to server, that a user's provider session
// has ended (OpenID Connect Back-Channel Logout 1.0). go-oidc verifies the
// token (signature, iss, aud, exp, the logout event, no nonce, sub or sid,
// jti); we check that it is fresh and has not been used before, then end
// every session it names. Any failure is 400, as the specification asks.
func (s *Server) handleBackchannelLogout(rp *relyingParty) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		raw := c.FormValue("logout_token")
		if raw == "" {
			return ErrInvalid
		}
		d, err := rp.discover(ctx)
		if err != nil {
			return err
		}
		lt, err := d.verifier.VerifyLogout(rp.client(ctx), raw)
		if err != nil {
			s.log.WarnContext(ctx, "back-channel logout refused", "idp", rp.idp, "err", err.Error())
			return ErrInvalid
		}
		now := rp.now()
		if lt.IssuedAt.IsZero() || lt.IssuedAt.Before(now.Add(-logoutTokenMaxAge)) || lt.IssuedAt.After(now.Add(clockSkew)) {
			s.log.WarnContext(ctx, "back-channel logout refused", "idp", rp.idp, "err", "iat missing or not fresh")
			return ErrInvalid
		}
		// Remember the jti for as long as the token could pass the checks above.
		keep := lt.IssuedAt.Add(logoutTokenMaxAge)
		if lt.Expiry.After(keep) {
			keep = lt.Expiry
		}
		if err := s.store.rememberLogoutToken(ctx, rp.idp, lt.TokenID, keep.Add(clockSkew)); err != nil {
			if errors.Is(err, ErrInvalid) {
				s.log.WarnContext(ctx, "back-channel logout refused", "idp", rp.idp, "err", "replayed jti")
			}
			return err
		}
		users, err := s.store.DeleteProviderSessions(ctx, rp.idp, lt.SessionID, lt.Subject)
		if err != nil {
			return err
		}
		for _, id := range users {
			if err := s.store.Audit(ctx, AuditEntry{ActorID: id, Action: ActBackchannelLogout,
				ObjectID: rp.idp, Outcome: "allowed"}); err != nil {
				return err
			}
			s.disconnect(ctx, id)
		}
		return c.NoContent(http.StatusOK)
	}
}
