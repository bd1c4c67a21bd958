package portal

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/jmoiron/sqlx"

	"familieportal/i18n"
	"familieportal/portal/db"
)

// These tests run the whole sign-in through the real Server, over TLS (the
// cookies are Secure and __Host-), against a small but real OpenID Connect
// provider in this file: discovery, JWKS, an authorization endpoint that
// remembers the PKCE challenge and nonce, a token endpoint that checks the
// verifier and signs ID tokens with RS256, and back-channel logout tokens.
// Hooks let a test forge what a hostile or broken provider would send.

// oidcClock is the clock shared by the portal's store and the providers,
// so expiry is tested by moving it, never by sleeping.
type oidcClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *oidcClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *oidcClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// oidcKeys are the providers' signing key and a key no provider publishes.
var oidcKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	a, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	b, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return a, b
})

// oidcPerson is who authenticates at the provider.
type oidcPerson struct {
	Sub, PID, ACR string
}

type oidcGrant struct {
	q      url.Values
	person oidcPerson
	sid    string
	used   bool
}

// oidcIdP is the test identity provider.
type oidcIdP struct {
	t        *testing.T
	srv      *httptest.Server
	issuer   string
	clientID string
	secret   string
	key      *rsa.PrivateKey
	now      func() time.Time

	mu        sync.Mutex
	person    oidcPerson
	tamper    func(claims map[string]any) // changes the next ID tokens' claims
	sign      func(claims map[string]any) string
	grants    map[string]*oidcGrant
	auths     []url.Values // authorization requests, in order
	tokenReqs int
	refusals  []string // why the token endpoint refused, in order
	issued    []string // raw ID tokens, in order
	sids      int
}

const oidcKID = "key-1"

func newOIDCIdP(t *testing.T, name string, now func() time.Time) *oidcIdP {
	t.Helper()
	key, _ := oidcKeys()
	p := &oidcIdP{t: t, clientID: "familieportal-" + name, secret: randomString(32), key: key,
		now: now, grants: map[string]*oidcGrant{}}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	return p
}

// as makes p the person who authenticates at the provider next.
func (p *oidcIdP) as(who oidcPerson) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.person = who
}

// forge makes the provider change its ID tokens' claims with f.
func (p *oidcIdP) forge(f func(claims map[string]any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = f
}

// signWith makes the provider serialise its ID tokens with f.
func (p *oidcIdP) signWith(f func(claims map[string]any) string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sign = f
}

func (p *oidcIdP) stats() (tokenReqs int, refusals []string, issued []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenReqs, slices.Clone(p.refusals), slices.Clone(p.issued)
}

func (p *oidcIdP) lastAuth() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.auths) == 0 {
		p.t.Fatal("the provider got no authorization request")
	}
	return p.auths[len(p.auths)-1]
}

func (p *oidcIdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		oidcWriteJSON(w, http.StatusOK, map[string]any{
			"issuer":                                p.issuer,
			"authorization_endpoint":                p.issuer + "/authorize",
			"token_endpoint":                        p.issuer + "/token",
			"jwks_uri":                              p.issuer + "/jwks",
			"end_session_endpoint":                  p.issuer + "/endsession",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256", "none", "HS256"},
			"code_challenge_methods_supported":      []string{"S256"},
		})
	case "/jwks":
		oidcWriteJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &p.key.PublicKey, KeyID: oidcKID, Algorithm: "RS256", Use: "sig"},
		}})
	case "/authorize":
		p.authorize(w, r)
	case "/token":
		p.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (p *oidcIdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.auths = append(p.auths, q)
	if q.Get("client_id") != p.clientID || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("redirect_uri") == "" || !strings.Contains(" "+q.Get("scope")+" ", " openid ") {
		http.Error(w, "invalid_request", http.StatusBadRequest)
		return
	}
	code := randomString(16)
	p.sids++
	p.grants[code] = &oidcGrant{q: q, person: p.person, sid: fmt.Sprintf("sid-%d", p.sids)}
	back, _ := url.Parse(q.Get("redirect_uri"))
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (p *oidcIdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokenReqs++
	refuse := func(why string) {
		p.refusals = append(p.refusals, why)
		oidcWriteJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.clientID || secret != p.secret {
		refuse("client")
		return
	}
	g := p.grants[r.PostForm.Get("code")]
	if r.PostForm.Get("grant_type") != "authorization_code" || g == nil || g.used {
		refuse("code")
		return
	}
	g.used = true
	if r.PostForm.Get("redirect_uri") != g.q.Get("redirect_uri") {
		refuse("redirect_uri")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != g.q.Get("code_challenge") {
		refuse("pkce")
		return
	}
	now := p.now()
	claims := map[string]any{
		"iss": p.issuer, "aud": p.clientID, "sub": g.person.Sub,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": g.q.Get("nonce"), "sid": g.sid,
	}
	if g.person.ACR != "" {
		claims["acr"] = g.person.ACR
	}
	if g.person.PID != "" {
		claims["pid"] = g.person.PID
	}
	if p.tamper != nil {
		p.tamper(claims)
	}
	var raw string
	if p.sign != nil {
		raw = p.sign(claims)
	} else {
		raw = oidcSign(p.t, jose.RS256, p.key, oidcKID, claims)
	}
	p.issued = append(p.issued, raw)
	oidcWriteJSON(w, http.StatusOK, map[string]any{
		"access_token": randomString(16), "token_type": "Bearer", "expires_in": 300, "id_token": raw,
	})
}

// logoutToken returns a back-channel logout token for sid and sub, signed
// by the provider, after f has changed its claims.
func (p *oidcIdP) logoutToken(sid, sub string, f func(claims map[string]any)) string {
	now := p.now()
	claims := map[string]any{
		"iss": p.issuer, "aud": p.clientID, "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti":    randomString(12),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if sid != "" {
		claims["sid"] = sid
	}
	if sub != "" {
		claims["sub"] = sub
	}
	if f != nil {
		f(claims)
	}
	return oidcSign(p.t, jose.RS256, p.key, oidcKID, claims)
}

func oidcSign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Error(err)
		return ""
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Error(err)
		return ""
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Error(err)
		return ""
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Error(err)
	}
	return raw
}

// oidcUnsigned is claims as an unsecured JWT (alg "none").
func oidcUnsigned(claims map[string]any) string {
	payload, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(payload) + "."
}

func oidcWriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oidcLog collects the portal's log, to check it never holds personal data.
type oidcLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *oidcLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *oidcLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The people of the demo cast as the providers know them. The national
// ids are made up; only their keyed hashes go into the database.
var (
	oidcPIDs = map[string]string{
		"sara": "01017000001", "jonas": "01017000002", "noah": "01011000003", "leila": "01017000004",
		"maria": "01017000005", "per": "01017000006", "nocase": "01017000007", "stranger": "01017000008",
	}
	oidcCitizen = func(key, acr string) oidcPerson {
		return oidcPerson{Sub: "pairwise-" + key, PID: oidcPIDs[key], ACR: acr}
	}
	oidcStaff = func(key string) oidcPerson { return oidcPerson{Sub: "staff-" + key} }
)

const (
	acrHigh        = "idporten-loa-high"
	acrSubstantial = "idporten-loa-substantial"
)

// oidcEnv is the portal over TLS with both providers configured, on a real
// SQLite file with the demo cast, plus a citizen ("nocase") who is party to
// no case.
type oidcEnv struct {
	t       *testing.T
	db      *sqlx.DB
	dbPath  string
	store   *Store
	srv     *Server
	ts      *httptest.Server
	citizen *oidcIdP
	staff   *oidcIdP
	clock   *oidcClock
	log     *oidcLog
	users   map[string]string // demo key -> user id
}

func newOIDCEnv(t *testing.T, mod func(*Options)) *oidcEnv {
	t.Helper()
	ctx := context.Background()
	e := &oidcEnv{t: t, clock: &oidcClock{t: time.Now().UTC().Truncate(time.Second)},
		log: &oidcLog{}, users: map[string]string{}}
	e.dbPath = filepath.Join(t.TempDir(), "portal.db")
	d, err := db.Open(ctx, e.dbPath, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	e.db = d
	if err := LoadDemo(ctx, d, os.DirFS("../testdata/demo"), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	bundle, err := i18n.NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	e.store = NewStore(d)
	e.store.now = e.clock.Now
	e.citizen = newOIDCIdP(t, "citizen", e.clock.Now)
	e.staff = newOIDCIdP(t, "staff", e.clock.Now)

	// The portal's URL is known only once it listens; the handler comes after.
	var handler http.Handler = http.NotFoundHandler()
	e.ts = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(e.ts.Close)

	pidKey := []byte("a test key for national ids, 32+ bytes long")
	opt := Options{
		PublicURL: e.ts.URL,
		PIDKey:    pidKey,
		Citizen: &OIDCConfig{Issuer: e.citizen.issuer, ClientID: e.citizen.clientID, ClientSecret: e.citizen.secret,
			MinACR: acrHigh, YouthMinACR: acrSubstantial},
		Staff: &OIDCConfig{Issuer: e.staff.issuer, ClientID: e.staff.clientID, ClientSecret: e.staff.secret},
	}
	if mod != nil {
		mod(&opt)
	}
	e.srv, err = NewServer(e.store, bundle, slog.New(slog.NewJSONHandler(e.log, nil)), opt)
	if err != nil {
		t.Fatal(err)
	}
	handler = e.srv

	var users []struct{ ID, Key string }
	if err := d.Select(&users, `SELECT id, demo_key AS key FROM users WHERE demo_key IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		e.users[u.Key] = u.ID
	}
	e.users["nocase"] = NewID()
	e.exec(`INSERT INTO users (id, kind, name, created_at) VALUES (?, 'citizen', 'Nils Nocase', ?)`,
		e.users["nocase"], e.clock.Now())
	for key, pid := range oidcPIDs {
		if key != "stranger" {
			e.exec(`UPDATE users SET pid_hash = ? WHERE id = ?`, PIDHash(pidKey, pid), e.users[key])
		}
	}
	for _, key := range []string{"kari", "ola", "ingrid"} {
		e.exec(`UPDATE users SET subject = ? WHERE id = ?`, oidcStaff(key).Sub, e.users[key])
	}
	// The tests rely on these roles; stop early if the demo cast changes.
	for key, want := range map[string]string{"sara": "mother", "noah": "youth", "nocase": ""} {
		var roles []string
		if err := d.Select(&roles, `SELECT role FROM parties WHERE user_id = ? AND revoked_at IS NULL`, e.users[key]); err != nil {
			t.Fatal(err)
		}
		if strings.Join(roles, ",") != want {
			t.Fatalf("demo cast: %s has roles %v, want %q", key, roles, want)
		}
	}
	return e
}

func (e *oidcEnv) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.Exec(q, args...); err != nil {
		e.t.Fatal(err)
	}
}

// audits returns the audit rows of act, oldest first.
func (e *oidcEnv) audits(act Action) []AuditEntry {
	e.t.Helper()
	var rows []AuditEntry
	if err := e.db.Select(&rows, `SELECT at, actor_id, actor_kind, action, case_id, object_id, outcome, purpose
		FROM audit WHERE action = ? ORDER BY id`, act); err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// lastAudit returns the newest audit row of act.
func (e *oidcEnv) lastAudit(act Action) AuditEntry {
	e.t.Helper()
	rows := e.audits(act)
	if len(rows) == 0 {
		e.t.Fatalf("no %s in the audit log", act)
	}
	return rows[len(rows)-1]
}

func (e *oidcEnv) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Get(&n, q, args...); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// oidcBrowser is one browser: a cookie jar and no automatic redirects, so
// each step of the flow can be looked at (and attacked).
type oidcBrowser struct {
	e   *oidcEnv
	c   *http.Client
	jar *cookiejar.Jar
}

type oidcResp struct {
	code    int
	loc     string
	body    string
	header  http.Header
	cookies []*http.Cookie
}

func (e *oidcEnv) browser() *oidcBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := e.ts.Client()
	return &oidcBrowser{e: e, jar: jar, c: &http.Client{
		Transport: c.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *oidcBrowser) abs(u string) string {
	if strings.HasPrefix(u, "/") {
		return b.e.ts.URL + u
	}
	return u
}

func (b *oidcBrowser) do(req *http.Request) oidcResp {
	b.e.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return oidcResp{code: res.StatusCode, loc: res.Header.Get("Location"), body: string(body),
		header: res.Header, cookies: res.Cookies()}
}

func (b *oidcBrowser) get(u string) oidcResp {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.abs(u), nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form with this browser's CSRF token, as the portal's own
// forms do.
func (b *oidcBrowser) post(path string, form url.Values) oidcResp {
	b.e.t.Helper()
	if b.cookie("__Host-csrf") == "" {
		b.get("/signin")
	}
	form.Set("csrf", b.cookie("__Host-csrf"))
	req, err := http.NewRequest(http.MethodPost, b.abs(path), strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *oidcBrowser) portalURL() *url.URL {
	u, _ := url.Parse(b.e.ts.URL + "/")
	return u
}

func (b *oidcBrowser) cookie(name string) string {
	for _, c := range b.jar.Cookies(b.portalURL()) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *oidcBrowser) setCookie(name, value string) {
	b.jar.SetCookies(b.portalURL(), []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: true}})
}

// authorize starts a login at the portal, authenticates as who at the
// provider, and returns the provider's redirect back to the portal (the
// callback URL), without following it.
func (b *oidcBrowser) authorize(idp, next string, who oidcPerson) string {
	b.e.t.Helper()
	path := "/signin/" + idp
	if next != "" {
		path += "?next=" + url.QueryEscape(next)
	}
	start := b.get(path)
	if start.code != http.StatusSeeOther {
		b.e.t.Fatalf("GET %s = %d, want 303 to the provider", path, start.code)
	}
	p := b.e.citizen
	if idp == idpStaff {
		p = b.e.staff
	}
	p.as(who)
	at := b.get(start.loc)
	if at.code != http.StatusFound || !strings.HasPrefix(at.loc, b.e.ts.URL+"/signin/"+idp+"/callback?") {
		b.e.t.Fatalf("provider answered %d to %s, redirecting to %q", at.code, start.loc, at.loc)
	}
	return at.loc
}

// login is the whole flow; it returns the callback's response.
func (b *oidcBrowser) login(idp, next string, who oidcPerson) oidcResp {
	b.e.t.Helper()
	return b.get(b.authorize(idp, next, who))
}

// signedInAs returns the id of the user this browser is signed in as, or
// "" if it is signed out, by asking the portal for a page that needs a user.
func (b *oidcBrowser) signedInAs() string {
	b.e.t.Helper()
	res := b.get("/cases")
	switch {
	case res.code == http.StatusOK || (res.code == http.StatusSeeOther && strings.HasPrefix(res.loc, "/cases/")):
		// /cases goes straight to the case when there is only one.
		u, err := b.e.store.SessionUser(context.Background(), b.cookie(sessionCookie))
		if err != nil {
			b.e.t.Fatalf("GET /cases = 200 but the session is %v", err)
		}
		return u.ID
	case res.code == http.StatusSeeOther && res.loc == "/signin":
		return ""
	}
	b.e.t.Fatalf("GET /cases = %d (Location %q), want 200 or 303 to /signin", res.code, res.loc)
	return ""
}

func oidcFindCookie(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestOIDC_citizenSignIn is the happy path, with what the portal must send
// and must not keep.
func TestOIDC_citizenSignIn(t *testing.T) {
	e := newOIDCEnv(t, nil)
	b := e.browser()
	b.setCookie(langCookie, "nn")

	start := b.get("/signin/citizen?next=" + url.QueryEscape("/cases"))
	if start.code != http.StatusSeeOther || !strings.HasPrefix(start.loc, e.citizen.issuer+"/authorize?") {
		t.Fatalf("GET /signin/citizen = %d to %q, want 303 to the provider", start.code, start.loc)
	}
	ck := oidcFindCookie(start.cookies, signInCookie)
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" ||
		ck.Domain != "" || ck.MaxAge <= 0 || ck.MaxAge > 600 || len(ck.Value) < 40 {
		t.Fatalf("sign-in cookie = %+v, want __Host-, Secure, HttpOnly, SameSite=Lax, short-lived, random", ck)
	}
	q, _ := url.Parse(start.loc)
	auth := q.Query()
	for k, want := range map[string]string{
		"response_type": "code", "client_id": e.citizen.clientID, "scope": "openid",
		"redirect_uri":          e.ts.URL + "/signin/citizen/callback",
		"code_challenge_method": "S256", "ui_locales": "nn",
		// The youth level is lower here, so the provider must offer it;
		// the callback applies the parent level to parents.
		"acr_values": acrSubstantial,
	} {
		if got := auth.Get(k); got != want {
			t.Errorf("authorization request %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(auth.Get(k)) < 40 {
			t.Errorf("authorization request %s = %q, want a long random value", k, auth.Get(k))
		}
	}
	if auth.Get("state") == auth.Get("nonce") {
		t.Error("state and nonce are the same value")
	}

	e.citizen.as(oidcCitizen("sara", acrHigh))
	at := b.get(start.loc)
	res := b.get(at.loc)
	if res.code != http.StatusSeeOther || res.loc != "/cases" {
		t.Fatalf("callback = %d to %q (body %.200s), want 303 to /cases", res.code, res.loc, res.body)
	}
	if c := oidcFindCookie(res.cookies, signInCookie); c == nil || c.MaxAge >= 0 {
		t.Errorf("callback did not delete the sign-in cookie: %+v", c)
	}
	s := oidcFindCookie(res.cookies, sessionCookie)
	if s == nil || !s.Secure || !s.HttpOnly || s.SameSite != http.SameSiteLaxMode || s.Path != "/" || s.Domain != "" {
		t.Fatalf("session cookie = %+v, want __Host-, Secure, HttpOnly, SameSite=Lax", s)
	}
	if got := b.signedInAs(); got != e.users["sara"] {
		t.Errorf("signed in as %q, want sara %q", got, e.users["sara"])
	}
	if a := e.lastAudit(ActSignIn); a.ActorID != e.users["sara"] || a.Outcome != "allowed" || a.ObjectID != idpCitizen {
		t.Errorf("audit = %+v, want sara's allowed citizen sign-in", a)
	}
	if n := e.count(`SELECT COUNT(*) FROM signin_states`); n != 0 {
		t.Errorf("%d logins in progress left after the callback, want 0", n)
	}

	// The national id is kept only as a keyed hash: not in the database
	// files (the ID token is sealed), not in the log.
	_, _, issued := e.citizen.stats()
	payload := strings.Split(issued[0], ".")[1]
	var files []byte
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(e.dbPath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		files = append(files, b...)
	}
	for what, secret := range map[string]string{"the national id": oidcPIDs["sara"],
		"the ID token": payload, "the session token": s.Value} {
		if bytes.Contains(files, []byte(secret)) {
			t.Errorf("the database files contain %s", what)
		}
		if strings.Contains(e.log.String(), secret) {
			t.Errorf("the log contains %s", what)
		}
	}
}

// TestOIDC_staffSignIn signs a caseworker in on their subject, and shows
// that neither provider can sign in the other's kind of user.
func TestOIDC_staffSignIn(t *testing.T) {
	e := newOIDCEnv(t, nil)
	b := e.browser()
	if res := b.login(idpStaff, "", oidcStaff("kari")); res.code != http.StatusSeeOther || res.loc != "/cases" {
		t.Fatalf("staff callback = %d to %q, want 303 to /cases", res.code, res.loc)
	}
	if got := b.signedInAs(); got != e.users["kari"] {
		t.Errorf("signed in as %q, want kari", got)
	}
	if auth := e.staff.lastAuth(); auth.Has("acr_values") {
		t.Errorf("staff authorization request has acr_values %q, want none (no staff minimum set)", auth.Get("acr_values"))
	}

	// A staff subject at the citizen provider, and a citizen's pid-less
	// subject at the staff provider, match no one.
	for _, tt := range []struct {
		idp string
		who oidcPerson
	}{
		{idpCitizen, oidcPerson{Sub: "staff-kari", ACR: acrHigh}},
		{idpStaff, oidcPerson{Sub: "pairwise-sara", PID: oidcPIDs["sara"]}},
	} {
		b := e.browser()
		b.login(tt.idp, "", tt.who)
		if got := b.signedInAs(); got != "" {
			t.Errorf("%s provider with %+v signed in %q, want no one", tt.idp, tt.who, got)
		}
	}
}

// TestOIDC_state: the callback must come with the state of a login that
// this browser started, once.
func TestOIDC_state(t *testing.T) {
	e := newOIDCEnv(t, nil)
	sara := oidcCitizen("sara", acrHigh)
	withState := func(cb, state string, drop bool) string {
		u, _ := url.Parse(cb)
		q := u.Query()
		if drop {
			q.Del("state")
		} else {
			q.Set("state", state)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	tests := []struct {
		name   string
		attack func(b *oidcBrowser, cb string) string // returns the URL to call back with
	}{
		{"missing state", func(b *oidcBrowser, cb string) string { return withState(cb, "", true) }},
		{"empty state", func(b *oidcBrowser, cb string) string { return withState(cb, "", false) }},
		{"wrong state", func(b *oidcBrowser, cb string) string { return withState(cb, randomString(32), false) }},
		{"no sign-in cookie (callback in another browser)", func(b *oidcBrowser, cb string) string {
			b.setCookie(signInCookie, "")
			return cb
		}},
		{"forged sign-in cookie", func(b *oidcBrowser, cb string) string {
			b.setCookie(signInCookie, randomString(32))
			return cb
		}},
		{"login expired", func(b *oidcBrowser, cb string) string {
			e.clock.Add(signInTTL + time.Second)
			return cb
		}},
		{"state from the other provider's callback", func(b *oidcBrowser, cb string) string {
			return strings.Replace(cb, "/signin/citizen/", "/signin/staff/", 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := e.browser()
			cb := b.authorize(idpCitizen, "", sara)
			before, _, _ := e.citizen.stats()
			res := b.get(tt.attack(b, cb))
			if res.code != http.StatusBadRequest || !strings.Contains(res.body, "signin") {
				t.Errorf("callback = %d, want 400 and the sign-in page", res.code)
			}
			if got := b.signedInAs(); got != "" {
				t.Errorf("signed in as %q, want no one", got)
			}
			if after, _, _ := e.citizen.stats(); after != before {
				t.Errorf("the code was exchanged (%d token requests, was %d); the state check must come first", after, before)
			}
			if a := e.lastAudit(ActSignIn); a.Outcome != "denied" || a.Purpose != refusedState {
				t.Errorf("audit = %+v, want denied for %q", a, refusedState)
			}
		})
	}

	t.Run("a wrong state uses the login up", func(t *testing.T) {
		b := e.browser()
		cb := b.authorize(idpCitizen, "", sara)
		login := b.cookie(signInCookie)
		b.get(withState(cb, "guess", false))
		b.setCookie(signInCookie, login) // as if the attacker kept the cookie
		if res := b.get(cb); res.code != http.StatusBadRequest {
			t.Errorf("the right state after a wrong one = %d, want 400", res.code)
		}
		if got := b.signedInAs(); got != "" {
			t.Errorf("signed in as %q, want no one", got)
		}
	})
}

// TestOIDC_pkce: a code obtained in another login cannot be redeemed with
// this login's state, because the token endpoint checks the PKCE verifier.
func TestOIDC_pkce(t *testing.T) {
	e := newOIDCEnv(t, nil)
	victim, attacker := e.browser(), e.browser()

	start := victim.get("/signin/citizen")
	u, _ := url.Parse(start.loc)
	victimState := u.Query().Get("state")

	stolen, _ := url.Parse(attacker.authorize(idpCitizen, "", oidcCitizen("per", acrHigh)))
	code := stolen.Query().Get("code")

	res := victim.get("/signin/citizen/callback?" + url.Values{"code": {code}, "state": {victimState}}.Encode())
	if res.code != http.StatusBadRequest {
		t.Errorf("callback with another login's code = %d, want 400", res.code)
	}
	if got := victim.signedInAs(); got != "" {
		t.Errorf("signed in as %q, want no one", got)
	}
	if _, refusals, _ := e.citizen.stats(); !slices.Equal(refusals, []string{"pkce"}) {
		t.Errorf("provider refusals = %v, want [pkce]: the verifier must be sent and must not match", refusals)
	}
	if a := e.lastAudit(ActSignIn); a.Purpose != refusedCode {
		t.Errorf("audit purpose = %q, want %q", a.Purpose, refusedCode)
	}
}

// TestOIDC_nonce: an ID token made for another login is refused.
func TestOIDC_nonce(t *testing.T) {
	for _, tt := range []struct {
		name  string
		nonce any
		ok    bool
	}{
		{"the login's own nonce", nil, true},
		{"another nonce", "another-login", false},
		{"no nonce", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newOIDCEnv(t, nil)
			if tt.nonce != nil {
				e.citizen.forge(func(c map[string]any) {
					if tt.nonce == "" {
						delete(c, "nonce")
					} else {
						c["nonce"] = tt.nonce
					}
				})
			}
			b := e.browser()
			res := b.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
			if signedIn := b.signedInAs() != ""; signedIn != tt.ok {
				t.Fatalf("signed in = %v (callback %d), want %v", signedIn, res.code, tt.ok)
			}
			if !tt.ok {
				if a := e.lastAudit(ActSignIn); res.code != http.StatusBadRequest || a.Purpose != refusedNonce {
					t.Errorf("callback = %d, audit %q; want 400, %q", res.code, a.Purpose, refusedNonce)
				}
			}
		})
	}
}

// TestOIDC_replayedCallback: a callback that worked once does not work
// again, even with the sign-in cookie put back, and it is the portal that
// stops it, before asking the provider.
func TestOIDC_replayedCallback(t *testing.T) {
	e := newOIDCEnv(t, nil)
	b := e.browser()
	cb := b.authorize(idpCitizen, "", oidcCitizen("sara", acrHigh))
	login := b.cookie(signInCookie)
	if res := b.get(cb); res.code != http.StatusSeeOther {
		t.Fatalf("first callback = %d, want 303", res.code)
	}
	before, _, _ := e.citizen.stats()

	for name, br := range map[string]*oidcBrowser{"same browser": b, "another browser": e.browser()} {
		br.setCookie(sessionCookie, "")
		br.setCookie(signInCookie, login)
		if res := br.get(cb); res.code != http.StatusBadRequest {
			t.Errorf("%s: replayed callback = %d, want 400", name, res.code)
		}
		if got := br.signedInAs(); got != "" {
			t.Errorf("%s: replayed callback signed in %q", name, got)
		}
	}
	if after, _, _ := e.citizen.stats(); after != before {
		t.Errorf("replays reached the token endpoint (%d requests, was %d)", after, before)
	}
}

// TestOIDC_tokenValidation: an ID token that is not exactly what our
// provider issued to us is refused. The first case is the control.
func TestOIDC_tokenValidation(t *testing.T) {
	_, otherKey := oidcKeys()
	tests := []struct {
		name   string
		forge  func(c map[string]any)
		sign   func(e *oidcEnv) func(c map[string]any) string
		signed bool
	}{
		{name: "as issued (control)", signed: true},
		{name: "several audiences with azp ours", signed: true, forge: func(c map[string]any) {
			c["aud"], c["azp"] = []string{c["aud"].(string), "other-client"}, c["aud"]
		}},
		{name: "wrong issuer", forge: func(c map[string]any) { c["iss"] = "https://idporten.evil.example" }},
		{name: "wrong audience", forge: func(c map[string]any) { c["aud"] = "another-client" }},
		{name: "several audiences without azp", forge: func(c map[string]any) {
			c["aud"] = []string{c["aud"].(string), "other-client"}
		}},
		{name: "expired", forge: func(c map[string]any) { c["exp"] = c["iat"].(int64) - 60 }},
		{name: "not yet valid", forge: func(c map[string]any) { c["nbf"] = c["iat"].(int64) + 3600 }},
		{name: "alg none", sign: func(e *oidcEnv) func(map[string]any) string { return oidcUnsigned }},
		{name: "unknown key", sign: func(e *oidcEnv) func(map[string]any) string {
			return func(c map[string]any) string { return oidcSign(t, jose.RS256, otherKey, "key-2", c) }
		}},
		{name: "unknown key under the known kid", sign: func(e *oidcEnv) func(map[string]any) string {
			return func(c map[string]any) string { return oidcSign(t, jose.RS256, otherKey, oidcKID, c) }
		}},
		{name: "HS256 with the client secret", sign: func(e *oidcEnv) func(map[string]any) string {
			return func(c map[string]any) string {
				return oidcSign(t, jose.HS256, []byte(e.citizen.secret), oidcKID, c)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newOIDCEnv(t, nil)
			if tt.forge != nil {
				e.citizen.forge(tt.forge)
			}
			if tt.sign != nil {
				e.citizen.signWith(tt.sign(e))
			}
			b := e.browser()
			res := b.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
			if signedIn := b.signedInAs() != ""; signedIn != tt.signed {
				t.Fatalf("signed in = %v (callback %d, body %.300s), want %v", signedIn, res.code, res.body, tt.signed)
			}
			if !tt.signed {
				if a := e.lastAudit(ActSignIn); res.code != http.StatusBadRequest || a.Outcome != "denied" || a.Purpose != refusedToken {
					t.Errorf("callback = %d, audit %+v; want 400, denied %q", res.code, a, refusedToken)
				}
			}
		})
	}
}

// TestOIDC_acr: the level the person authenticated at must meet the
// minimum that applies to them. Parents (and anyone who is a parent in
// some case) need the citizen level; someone who is youth in every case
// they are party to needs the youth level.
func TestOIDC_acr(t *testing.T) {
	tests := []struct {
		name     string
		who      string
		acr      string
		alsoRole Role // gives who this extra role in another case first
		signed   bool
	}{
		{"parent at the citizen level", "sara", acrHigh, "", true},
		{"parent below the citizen level", "sara", acrSubstantial, "", false},
		{"parent with no acr", "sara", "", "", false},
		{"parent with an unknown acr", "sara", "idporten-loa-low", "", false},
		{"parent with the old name of the level", "sara", "Level4", "", true},
		{"youth at the youth level", "noah", acrSubstantial, "", true},
		{"youth at the citizen level", "noah", acrHigh, "", true},
		{"youth with no acr", "noah", "", "", false},
		{"youth who is also a parent, at the youth level", "noah", acrSubstantial, RoleFather, false},
		{"youth who is also a parent, at the citizen level", "noah", acrHigh, RoleFather, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newOIDCEnv(t, nil)
			if tt.alsoRole != "" {
				var caseID string
				if err := e.db.Get(&caseID, `SELECT case_id FROM parties WHERE user_id = ?`, e.users["sara"]); err != nil {
					t.Fatal(err)
				}
				e.exec(`INSERT INTO parties (case_id, user_id, role) VALUES (?, ?, ?)`, caseID, e.users[tt.who], tt.alsoRole)
			}
			b := e.browser()
			res := b.login(idpCitizen, "", oidcCitizen(tt.who, tt.acr))
			if signedIn := b.signedInAs() != ""; signedIn != tt.signed {
				t.Fatalf("signed in = %v (callback %d), want %v", signedIn, res.code, tt.signed)
			}
			if !tt.signed {
				a := e.lastAudit(ActSignIn)
				if res.code != http.StatusOK || !strings.Contains(res.body, "nothing-h") ||
					a.Purpose != refusedACR || a.ActorID != e.users[tt.who] {
					t.Errorf("callback = %d, audit %+v; want the neutral page and %q for %s", res.code, a, refusedACR, tt.who)
				}
			}
		})
	}

	t.Run("the provider is asked for the lower level only when youth may use it", func(t *testing.T) {
		e := newOIDCEnv(t, func(o *Options) { o.Citizen.YouthMinACR = "" })
		start, _ := url.Parse(e.browser().get("/signin/citizen").loc)
		if got := start.Query().Get("acr_values"); got != acrHigh {
			t.Errorf("acr_values = %q, want %q when the youth level is not lower", got, acrHigh)
		}
		b := e.browser()
		b.login(idpCitizen, "", oidcCitizen("noah", acrSubstantial))
		if got := b.signedInAs(); got != "" {
			t.Errorf("youth at substantial signed in with no youth level configured")
		}
	})

	t.Run("staff minimum", func(t *testing.T) {
		e := newOIDCEnv(t, func(o *Options) { o.Staff.MinACR = "urn:municipality:mfa" })
		if b := e.browser(); b.login(idpStaff, "", oidcStaff("kari")).code != http.StatusOK || b.signedInAs() != "" {
			t.Error("staff without the required acr was signed in")
		}
		if got := e.staff.lastAuth().Get("acr_values"); got != "urn:municipality:mfa" {
			t.Errorf("staff acr_values = %q", got)
		}
		kari := oidcStaff("kari")
		kari.ACR = "urn:municipality:mfa"
		if b := e.browser(); b.login(idpStaff, "", kari).code != http.StatusSeeOther || b.signedInAs() != e.users["kari"] {
			t.Error("staff with the required acr was not signed in")
		}
	})
}

var oidcVolatile = regexp.MustCompile(`(nonce|value)="[^"]*"`)

// TestOIDC_neutralPage: someone who authenticates but may not come in gets
// the same page whatever the reason, and no session.
func TestOIDC_neutralPage(t *testing.T) {
	e := newOIDCEnv(t, nil)
	// Jonas's party rights are revoked: he is party to no case now.
	e.exec(`UPDATE parties SET revoked_at = ? WHERE user_id = ?`, e.clock.Now(), e.users["jonas"])
	tests := []struct {
		name, who, acr, reason string
	}{
		{"unknown person", "stranger", acrHigh, refusedUnknown},
		{"person party to no case", "nocase", acrHigh, refusedNoCase},
		{"person whose party rights are revoked", "jonas", acrHigh, refusedNoCase},
		{"person with a case, below the level", "sara", acrSubstantial, refusedACR},
	}
	var first string
	for _, tt := range tests {
		b := e.browser()
		res := b.login(idpCitizen, "", oidcCitizen(tt.who, tt.acr))
		if res.code != http.StatusOK || oidcFindCookie(res.cookies, sessionCookie) != nil {
			t.Errorf("%s: callback = %d, cookies %v; want 200 and no session", tt.name, res.code, res.cookies)
		}
		if got := b.signedInAs(); got != "" {
			t.Errorf("%s: signed in as %q", tt.name, got)
		}
		if a := e.lastAudit(ActSignIn); a.Outcome != "denied" || a.Purpose != tt.reason {
			t.Errorf("%s: audit = %+v, want denied %q", tt.name, a, tt.reason)
		}
		body := oidcVolatile.ReplaceAllString(res.body, "")
		if first == "" {
			first = body
			if !strings.Contains(body, "nothing-h") {
				t.Fatalf("%s: not the neutral page:\n%s", tt.name, body)
			}
		} else if body != first {
			t.Errorf("%s: the page differs from the %s's", tt.name, tests[0].name)
		}
	}
	// Staff: an unknown subject gets the same page.
	b := e.browser()
	res := b.login(idpStaff, "", oidcPerson{Sub: "staff-unknown"})
	if got := oidcVolatile.ReplaceAllString(res.body, ""); res.code != http.StatusOK || got != first {
		t.Errorf("unknown staff subject: %d, same page = %v", res.code, got == first)
	}
}

// TestOIDC_openRedirect: no return-to parameter can send the browser to
// another site, before or after sign-in.
func TestOIDC_openRedirect(t *testing.T) {
	tests := []struct{ next, want string }{
		{"/cases/CASE", "/cases/CASE"},
		{"/cases?tab=1", "/cases?tab=1"},
		{"", "/cases"},
		{"/", "/cases"},
		{"//evil.example/x", "/cases"},
		{"https://evil.example/", "/cases"},
		{"https:evil.example", "/cases"},
		{"/\\evil.example", "/cases"},
		{"\\\\evil.example", "/cases"},
		{"/\t/evil.example", "/cases"},
		{"/\n/evil.example", "/cases"},
		{"/%2F/evil.example", "/cases"},
		{"/%5Cevil.example", "/cases"},
		{"javascript:alert(1)", "/cases"},
		{"evil.example", "/cases"},
		{"/ /evil.example", "/cases"},
		{"/\u2028/evil.example", "/cases"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			e := newOIDCEnv(t, nil)
			var caseID string
			if err := e.db.Get(&caseID, `SELECT case_id FROM parties WHERE user_id = ?`, e.users["sara"]); err != nil {
				t.Fatal(err)
			}
			next, want := strings.ReplaceAll(tt.next, "CASE", caseID), strings.ReplaceAll(tt.want, "CASE", caseID)
			b := e.browser()
			// Through the sign-in page's link...
			if page := b.get("/signin?next=" + url.QueryEscape(next)); strings.Contains(page.body, "evil.example") {
				t.Errorf("next=%q: the sign-in page links to it", next)
			}
			// ...and through the whole login.
			if res := b.login(idpCitizen, next, oidcCitizen("sara", acrHigh)); res.code != http.StatusSeeOther || res.loc != want {
				t.Errorf("next=%q: callback = %d to %q, want 303 to %q", next, res.code, res.loc, want)
			}
			// The language switch's return-to stays on this site.
			if res := b.post("/language", url.Values{"lang": {"en"}, "back": {next}}); !oidcSameSite(res.loc) {
				t.Errorf("/language with back=%q redirects to %q", next, res.loc)
			}
		})
	}
}

// oidcSameSite reports whether a browser would stay on this site when
// redirected to loc: a path that does not start with "//", with nothing a
// browser drops (tab, newline) or reads as "/" (backslash).
func oidcSameSite(loc string) bool {
	return strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.ContainsAny(loc, "\\\t\r\n")
}

// TestOIDC_plantedSessionCookie: a session token the browser had before
// signing in, whether made up or an attacker's real session, is not
// adopted: sign-in issues a new token and ends the old session.
func TestOIDC_plantedSessionCookie(t *testing.T) {
	e := newOIDCEnv(t, nil)
	attackerToken, err := e.store.CreateSession(context.Background(), e.users["per"])
	if err != nil {
		t.Fatal(err)
	}
	for name, planted := range map[string]string{"made-up token": randomString(32), "attacker's session": attackerToken} {
		b := e.browser()
		b.setCookie(sessionCookie, planted)
		res := b.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
		s := oidcFindCookie(res.cookies, sessionCookie)
		if s == nil || s.Value == planted || s.Value == "" {
			t.Fatalf("%s: sign-in kept the planted token", name)
		}
		if _, err := e.store.SessionUser(context.Background(), planted); err == nil {
			t.Errorf("%s: the planted token still works after sign-in", name)
		}
		if got := b.signedInAs(); got != e.users["sara"] {
			t.Errorf("%s: signed in as %q, want sara", name, got)
		}
	}
}

// TestOIDC_signOut: after sign-out the old cookie is worthless, and the
// browser goes to the provider's logout with the ID token as hint.
func TestOIDC_signOut(t *testing.T) {
	e := newOIDCEnv(t, nil)
	b := e.browser()
	b.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
	old := b.cookie(sessionCookie)
	res := b.post("/signout", url.Values{})
	// A page that moves on to the provider, not a redirect, which CSP
	// form-action 'self' would block in Chrome and Safari.
	m := regexp.MustCompile(`<meta http-equiv="refresh" content="0;url=([^"]+)">`).FindStringSubmatch(res.body)
	if res.code != http.StatusOK || m == nil {
		t.Fatalf("sign-out = %d (Location %q), want 200 and a page that moves on to the provider", res.code, res.loc)
	}
	to := strings.ReplaceAll(m[1], "&amp;", "&")
	if !strings.HasPrefix(to, e.citizen.issuer+"/endsession?") || !strings.Contains(res.body, `href="`+m[1]+`"`) {
		t.Fatalf("sign-out moves on to %q, want the provider's end_session_endpoint, also as a link", to)
	}
	if strings.Contains(res.body, `action="/signout"`) {
		t.Error("the signed-out page still offers to sign out")
	}
	u, _ := url.Parse(to)
	_, _, issued := e.citizen.stats()
	for k, want := range map[string]string{
		"id_token_hint": issued[len(issued)-1], "client_id": e.citizen.clientID,
		"post_logout_redirect_uri": e.ts.URL + "/signin?signedout=1",
	} {
		if got := u.Query().Get(k); got != want {
			t.Errorf("logout %s = %.40q, want %.40q", k, got, want)
		}
	}
	if got := res.header.Get("Clear-Site-Data"); !strings.Contains(got, `"cookies"`) {
		t.Errorf("Clear-Site-Data = %q", got)
	}
	if a := e.lastAudit(ActSignOut); a.ActorID != e.users["sara"] {
		t.Errorf("sign-out audit = %+v", a)
	}
	replay := e.browser()
	replay.setCookie(sessionCookie, old)
	if got := replay.signedInAs(); got != "" {
		t.Errorf("the old cookie still signs in %q after sign-out", got)
	}

	// A demo session has no provider to log out of.
	d := newOIDCEnv(t, func(o *Options) { o.Demo = true })
	demo := d.browser()
	demo.post("/demo", url.Values{"person": {"sara"}})
	if demo.signedInAs() == "" {
		t.Fatal("demo sign-in failed")
	}
	if res := demo.post("/signout", url.Values{}); res.loc != "/signin?signedout=1" {
		t.Errorf("demo sign-out goes to %q, want /signin?signedout=1", res.loc)
	}
}

// TestOIDC_sessionExpiry: 15 minutes without a request, or 12 hours after
// sign-in, ends the session (on the store's clock).
func TestOIDC_sessionExpiry(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		e := newOIDCEnv(t, nil)
		b := e.browser()
		b.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
		e.clock.Add(SessionIdle - time.Second)
		if b.signedInAs() == "" {
			t.Fatal("signed out before the idle timeout")
		}
		e.clock.Add(SessionIdle - time.Second) // the request above kept it alive
		if b.signedInAs() == "" {
			t.Fatal("a request did not keep the session alive")
		}
		e.clock.Add(SessionIdle)
		if got := b.signedInAs(); got != "" {
			t.Errorf("still signed in after %v idle", SessionIdle)
		}
	})
	t.Run("absolute", func(t *testing.T) {
		e := newOIDCEnv(t, nil)
		b := e.browser()
		b.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
		for elapsed := time.Duration(0); elapsed < SessionLifetime-10*time.Minute; elapsed += 10 * time.Minute {
			e.clock.Add(10 * time.Minute)
			if b.signedInAs() == "" {
				t.Fatalf("signed out after %v of activity", elapsed+10*time.Minute)
			}
		}
		e.clock.Add(10 * time.Minute)
		if got := b.signedInAs(); got != "" {
			t.Errorf("still signed in %v after sign-in", SessionLifetime)
		}
	})
}

// TestOIDC_signOutEverywhere ends all of one person's sessions, and only theirs.
func TestOIDC_signOutEverywhere(t *testing.T) {
	e := newOIDCEnv(t, nil)
	phone, laptop, other := e.browser(), e.browser(), e.browser()
	phone.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
	laptop.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
	other.login(idpCitizen, "", oidcCitizen("leila", acrHigh))

	// Like every form, it needs the CSRF token.
	forged, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/signout/everywhere", strings.NewReader(""))
	forged.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res := phone.do(forged); res.code != http.StatusForbidden {
		t.Errorf("sign out everywhere without a CSRF token = %d, want 403", res.code)
	}
	if laptop.signedInAs() == "" {
		t.Fatal("the forged request signed the laptop out")
	}

	res := phone.post("/signout/everywhere", url.Values{})
	if res.code != http.StatusOK || !strings.Contains(res.body, e.citizen.issuer+"/endsession?") {
		t.Fatalf("sign out everywhere = %d, want 200 and a page that moves on to the provider", res.code)
	}
	if phone.signedInAs() != "" || laptop.signedInAs() != "" {
		t.Error("a session of sara's survived signing out everywhere")
	}
	if other.signedInAs() != e.users["leila"] {
		t.Error("signing sara out everywhere signed leila out")
	}
	if a := e.lastAudit(ActSignOutEverywhere); a.ActorID != e.users["sara"] {
		t.Errorf("audit = %+v", a)
	}
}

// TestOIDC_backchannelLogout: the provider ends sessions server to server
// with a signed logout token, each token once.
func TestOIDC_backchannelLogout(t *testing.T) {
	e := newOIDCEnv(t, nil)
	phone, laptop := e.browser(), e.browser()
	phone.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
	laptop.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
	var sids []string
	if err := e.db.Select(&sids, `SELECT idp_sid FROM sessions WHERE user_id = ? ORDER BY created_at, idp_sid`, e.users["sara"]); err != nil {
		t.Fatal(err)
	}
	if len(sids) != 2 || sids[0] == "" || sids[0] == sids[1] {
		t.Fatalf("sessions' provider sids = %v, want two different ones", sids)
	}
	phoneSID := "sid-1" // the provider numbers its sessions; the phone came first

	// The provider's POST carries no cookie and no CSRF token.
	post := func(token string) int {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/signin/citizen/backchannel",
			strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	_, otherKey := oidcKeys()
	for _, tt := range []struct {
		name string
		tok  string
	}{
		{"nonce present", e.citizen.logoutToken(phoneSID, "", func(c map[string]any) { c["nonce"] = "x" })},
		{"no logout event", e.citizen.logoutToken(phoneSID, "", func(c map[string]any) { delete(c, "events") })},
		{"no jti", e.citizen.logoutToken(phoneSID, "", func(c map[string]any) { delete(c, "jti") })},
		{"no sid or sub", e.citizen.logoutToken("", "", nil)},
		{"wrong audience", e.citizen.logoutToken(phoneSID, "", func(c map[string]any) { c["aud"] = "other" })},
		{"wrong issuer", e.citizen.logoutToken(phoneSID, "", func(c map[string]any) { c["iss"] = e.staff.issuer })},
		{"expired", e.citizen.logoutToken(phoneSID, "", func(c map[string]any) {
			c["exp"] = e.clock.Now().Add(-time.Minute).Unix()
		})},
		{"stale iat", e.citizen.logoutToken(phoneSID, "", func(c map[string]any) {
			c["iat"] = e.clock.Now().Add(-logoutTokenMaxAge - time.Minute).Unix()
		})},
		{"no iat", e.citizen.logoutToken(phoneSID, "", func(c map[string]any) { delete(c, "iat") })},
		{"unknown key", oidcSign(t, jose.RS256, otherKey, "key-2", map[string]any{
			"iss": e.citizen.issuer, "aud": e.citizen.clientID, "iat": e.clock.Now().Unix(),
			"exp": e.clock.Now().Add(time.Minute).Unix(), "jti": "j", "sid": phoneSID,
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
		})},
		{"an ID token", func() string { _, _, issued := e.citizen.stats(); return issued[0] }()},
		{"empty", ""},
	} {
		if code := post(tt.tok); code != http.StatusBadRequest {
			t.Errorf("%s: back-channel logout = %d, want 400", tt.name, code)
		}
	}
	if phone.signedInAs() == "" || laptop.signedInAs() == "" {
		t.Fatal("a refused logout token ended a session")
	}

	tok := e.citizen.logoutToken(phoneSID, "pairwise-sara", nil)
	if code := post(tok); code != http.StatusOK {
		t.Fatalf("back-channel logout = %d, want 200", code)
	}
	if phone.signedInAs() != "" {
		t.Error("the phone's session survived its back-channel logout")
	}
	if laptop.signedInAs() == "" {
		t.Error("the laptop's session (another provider session) ended too")
	}
	if a := e.lastAudit(ActBackchannelLogout); a.ActorID != e.users["sara"] {
		t.Errorf("audit = %+v", a)
	}

	// Replayed: refused, even after the session is back.
	phone.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
	e.exec(`UPDATE sessions SET idp_sid = ? WHERE idp_sid = 'sid-3'`, phoneSID)
	if code := post(tok); code != http.StatusBadRequest {
		t.Errorf("replayed logout token = %d, want 400", code)
	}
	if phone.signedInAs() == "" {
		t.Error("a replayed logout token ended a session")
	}

	// By subject alone: every session of that subject.
	if code := post(e.citizen.logoutToken("", "pairwise-sara", nil)); code != http.StatusOK {
		t.Fatalf("back-channel logout by sub = %d, want 200", code)
	}
	if phone.signedInAs() != "" || laptop.signedInAs() != "" {
		t.Error("a session survived a logout of its subject")
	}
	// The staff provider's token cannot end citizen sessions.
	phone.login(idpCitizen, "", oidcCitizen("sara", acrHigh))
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/signin/staff/backchannel",
		strings.NewReader(url.Values{"logout_token": {e.staff.logoutToken("", "pairwise-sara", nil)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, err := e.ts.Client().Do(req); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("staff back-channel logout = %v %v", res, err)
	}
	if phone.signedInAs() == "" {
		t.Error("the staff provider ended a citizen session")
	}
}

// TestOIDC_providerTrouble: a provider that answers with an error, or
// cannot be reached, signs no one in and breaks nothing else.
func TestOIDC_providerTrouble(t *testing.T) {
	e := newOIDCEnv(t, nil)
	b := e.browser()
	cb, _ := url.Parse(b.authorize(idpCitizen, "", oidcCitizen("sara", acrHigh)))
	q := cb.Query()
	q.Set("error", "access_denied")
	q.Del("code")
	cb.RawQuery = q.Encode()
	if res := b.get(cb.String()); res.code != http.StatusBadRequest || b.signedInAs() != "" {
		t.Errorf("callback with error=access_denied = %d, want 400 and no session", res.code)
	}

	down := newOIDCEnv(t, nil)
	down.citizen.srv.Close()
	res := down.browser().get("/signin/citizen")
	if res.code != http.StatusServiceUnavailable || !strings.Contains(res.body, "signin") {
		t.Errorf("start with the provider down = %d, want 503 and the sign-in page", res.code)
	}
	if res := down.browser().login(idpStaff, "", oidcStaff("ola")); res.code != http.StatusSeeOther {
		t.Errorf("staff sign-in while ID-porten is down = %d, want 303", res.code)
	}
}

// TestOIDC_signInPage shows the configured ways in, and only those.
func TestOIDC_signInPage(t *testing.T) {
	e := newOIDCEnv(t, nil)
	page := e.browser().get("/signin?next=" + url.QueryEscape("/cases/x"))
	for _, want := range []string{`href="/signin/citizen?next=%2fcases%2fx"`, `href="/signin/staff?next=%2fcases%2fx"`, "ID-porten"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("sign-in page lacks %s", want)
		}
	}
	if strings.Contains(page.body, `href="/demo"`) {
		t.Error("sign-in page offers demo sign-in outside demo mode")
	}

	demo := newOIDCEnv(t, func(o *Options) { *o = Options{Demo: true} })
	b := demo.browser()
	page = b.get("/signin")
	if strings.Contains(page.body, "/signin/citizen") || !strings.Contains(page.body, `href="/demo"`) {
		t.Error("demo mode without providers: wrong sign-in links")
	}
	for _, path := range []string{"/signin/citizen", "/signin/citizen/callback", "/signin/staff"} {
		if res := b.get(path); res.code != http.StatusNotFound {
			t.Errorf("GET %s without providers = %d, want 404", path, res.code)
		}
	}
}

// TestNewServer_oidcConfig refuses unsafe sign-in configuration.
func TestNewServer_oidcConfig(t *testing.T) {
	good := func() Options {
		return Options{PublicURL: "https://portal.example", PIDKey: bytes.Repeat([]byte("k"), MinPIDKeyLen),
			Citizen: &OIDCConfig{Issuer: "https://idporten.example", ClientID: "c", MinACR: acrHigh},
			Staff:   &OIDCConfig{Issuer: "https://idp.example", ClientID: "s"}}
	}
	tests := []struct {
		name   string
		change func(o *Options)
		ok     bool
	}{
		{"complete", func(*Options) {}, true},
		{"no providers, no key (demo)", func(o *Options) { *o = Options{Demo: true} }, true},
		{"staff only, no pid key", func(o *Options) { o.Citizen, o.PIDKey = nil, nil }, true},
		{"citizen without pid key", func(o *Options) { o.PIDKey = nil }, false},
		{"citizen with a short pid key", func(o *Options) { o.PIDKey = []byte("short") }, false},
		{"http public URL", func(o *Options) { o.PublicURL = "http://portal.example" }, false},
		{"no public URL", func(o *Options) { o.PublicURL = "" }, false},
		{"public URL with a path", func(o *Options) { o.PublicURL = "https://portal.example/x" }, false},
		{"unknown citizen acr", func(o *Options) { o.Citizen.MinACR = "Level9" }, false},
		{"no citizen acr", func(o *Options) { o.Citizen.MinACR = "" }, false},
		{"unknown youth acr", func(o *Options) { o.Citizen.YouthMinACR = "low" }, false},
		{"no client id", func(o *Options) { o.Staff.ClientID = "" }, false},
		{"issuer not a URL", func(o *Options) { o.Staff.Issuer = "idp.example" }, false},
		{"plain http issuer", func(o *Options) { o.Staff.Issuer = "http://idp.example" }, false},
		{"plain http issuer on this machine", func(o *Options) { o.Staff.Issuer = "http://127.0.0.1:9000" }, true},
	}
	bundle, err := i18n.NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		o := good()
		tt.change(&o)
		_, err := NewServer(NewStore(nil), bundle, slog.New(slog.NewTextHandler(io.Discard, nil)), o)
		if (err == nil) != tt.ok {
			t.Errorf("%s: NewServer = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

func TestACRMeets(t *testing.T) {
	for _, tt := range []struct {
		acr, min string
		want     bool
	}{
		{acrHigh, acrHigh, true},
		{acrHigh, acrSubstantial, true},
		{acrSubstantial, acrSubstantial, true},
		{acrSubstantial, acrHigh, false},
		{"Level4", acrHigh, true},
		{"Level3", acrHigh, false},
		{"", acrSubstantial, false},
		{"idporten-loa-low", acrSubstantial, false},
		{"anything", "", true},
		{"urn:x", "urn:x", true},
		{"urn:y", "urn:x", false},
		{acrHigh, "urn:x", false},
	} {
		if got := acrMeets(tt.acr, tt.min); got != tt.want {
			t.Errorf("acrMeets(%q, %q) = %v, want %v", tt.acr, tt.min, got, tt.want)
		}
	}
}

func TestReturnPath(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/cases/abc", "/cases/abc"},
		{"/cases?x=1#top", "/cases?x=1#top"},
		{"", "/"}, {"/", "/"}, {"cases", "/"},
		{"//evil.example", "/"}, {"///evil.example", "/"}, {"/\\evil.example", "/"},
		{"https://evil.example", "/"}, {"/%2F%2Fevil.example", "/"}, {"/\x00", "/"},
		{"/\x7f", "/"}, {"/a\u00a0b", "/"}, {"/" + strings.Repeat("a", 600), "/"},
	} {
		if got := returnPath(tt.in); got != tt.want {
			t.Errorf("returnPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPIDHash(t *testing.T) {
	a := PIDHash([]byte("key one, long enough for the test"), "01017000001")
	if a == PIDHash([]byte("key two, long enough for the test"), "01017000001") {
		t.Error("PIDHash does not depend on the key")
	}
	if a == PIDHash([]byte("key one, long enough for the test"), "01017000002") {
		t.Error("PIDHash does not depend on the id")
	}
	if strings.Contains(a, "01017000001") || len(a) != 64 {
		t.Errorf("PIDHash = %q, want 64 hex digits", a)
	}
}
