package portal

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// OIDCConfig configures one OpenID Connect identity provider: ID-porten
// for citizens, or the municipality's identity provider for staff.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document is read
	// from Issuer + "/.well-known/openid-configuration" on first use.
	Issuer       string
	ClientID     string
	ClientSecret string
	// MinACR is the lowest acr (authentication context class) accepted.
	// For citizens it applies to everyone who is a party in a role other
	// than youth; "" (staff only) accepts any. Levels we know the order of
	// (ID-porten's idporten-loa-substantial < idporten-loa-high, and the
	// old Level3 < Level4) are compared by rank, others must match exactly.
	MinACR string
	// YouthMinACR (citizens only) is the lowest acr accepted for a person
	// whose only active party role, in every case, is youth. Someone who is
	// also a parent in some case needs MinACR, because the session opens all
	// of their cases. "" means the same as MinACR.
	YouthMinACR string
	// HTTPClient talks to the provider; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Sign-in lifetimes and limits.
const (
	// signInTTL is how long a login may take at the identity provider.
	signInTTL = 10 * time.Minute
	// logoutTokenMaxAge is how old (by iat) a back-channel logout token may
	// be; jtis are remembered at least this long, so a replay is caught.
	logoutTokenMaxAge = 5 * time.Minute
	// clockSkew is the tolerance for a provider's clock running ahead.
	clockSkew = time.Minute
	// discoveryTimeout bounds fetching a provider's discovery document.
	discoveryTimeout = 10 * time.Second
	// MinPIDKeyLen is the shortest --pid-key accepted, in bytes.
	MinPIDKeyLen = 32
)

// signInCookie holds the random id of a login in progress. It is
// SameSite=Lax so it comes back on the provider's top-level redirect.
const signInCookie = "__Host-signin"

// The two identity providers, as named in routes, the sessions table and
// the audit log.
const (
	idpCitizen = "citizen"
	idpStaff   = "staff"
)

// acrRank orders the acr values we know. ID-porten's current names and
// the older ones it replaced are the same levels.
var acrRank = map[string]int{
	"idporten-loa-substantial": 3,
	"idporten-loa-high":        4,
	"Level3":                   3,
	"Level4":                   4,
}

// acrMeets reports whether acr satisfies minimum.
func acrMeets(acr, minimum string) bool {
	if minimum == "" {
		return true
	}
	want, known := acrRank[minimum]
	if !known {
		return acr == minimum
	}
	return acrRank[acr] >= want
}

// lowerACR returns the lower of two known minimums, for acr_values: the
// provider must let a youth sign in at the youth level; the callback then
// decides which minimum applies to the person.
func lowerACR(a, b string) string {
	if b != "" && acrRank[b] < acrRank[a] {
		return b
	}
	return a
}

// safeAlgs are the signature algorithms accepted on tokens: asymmetric
// only. "none" and the HMAC family are never accepted, whatever a
// discovery document says.
var safeAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512, oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.ES256, oidc.ES384, oidc.ES512, oidc.EdDSA,
}

// PIDHash returns the keyed hash under which a citizen's national id
// (fødselsnummer or d-nummer, the pid claim) is stored: HMAC-SHA256 with
// the configured key, hex. The id itself is never stored or logged.
func PIDHash(key []byte, pid string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(pid))
	return hex.EncodeToString(m.Sum(nil))
}

// validPID reports whether pid looks like a Norwegian national id: 11 digits.
func validPID(pid string) bool {
	if len(pid) != 11 {
		return false
	}
	for _, r := range pid {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// relyingParty is the portal as a client of one identity provider. The
// provider is discovered on first use, not at start-up, so the portal
// starts (and demo sign-in works) while a provider is unreachable.
type relyingParty struct {
	idp         string // idpCitizen or idpStaff
	cfg         OIDCConfig
	redirectURL string // our callback
	afterLogout string // where the provider sends the browser after logout
	now         func() time.Time

	mu sync.Mutex
	d  *discovered // nil until discovery has succeeded
}

// discovered is what the provider's discovery document told us.
type discovered struct {
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string // "" if the provider has no end_session_endpoint
}

func newRelyingParty(idp string, cfg OIDCConfig, publicURL string, now func() time.Time) (*relyingParty, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, fmt.Errorf("portal: %s sign-in needs an issuer and a client id", idp)
	}
	// https only; plain http only for a provider on this machine (tests, development).
	if u, err := url.Parse(cfg.Issuer); err != nil || u.Host == "" ||
		(u.Scheme != "https" && (u.Scheme != "http" || !isLoopback(u.Hostname()))) {
		return nil, fmt.Errorf("portal: %s issuer %q is not an https URL", idp, cfg.Issuer)
	}
	for _, acr := range []string{cfg.MinACR, cfg.YouthMinACR} {
		if acr != "" && strings.ContainsFunc(acr, unicode.IsSpace) {
			return nil, fmt.Errorf("portal: %s acr %q has spaces", idp, acr)
		}
	}
	if idp == idpCitizen {
		if _, ok := acrRank[cfg.MinACR]; !ok {
			return nil, fmt.Errorf("portal: citizen minimum acr %q is not one of idporten-loa-substantial, idporten-loa-high", cfg.MinACR)
		}
		if cfg.YouthMinACR == "" {
			cfg.YouthMinACR = cfg.MinACR
		}
		if _, ok := acrRank[cfg.YouthMinACR]; !ok {
			return nil, fmt.Errorf("portal: youth minimum acr %q is not one of idporten-loa-substantial, idporten-loa-high", cfg.YouthMinACR)
		}
	}
	base := strings.TrimRight(publicURL, "/")
	return &relyingParty{
		idp:         idp,
		cfg:         cfg,
		redirectURL: base + "/signin/" + idp + "/callback",
		afterLogout: base + "/signin?signedout=1",
		now:         now,
	}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// client returns a context that makes go-oidc and oauth2 use the
// configured HTTP client.
func (rp *relyingParty) client(ctx context.Context) context.Context {
	if rp.cfg.HTTPClient == nil {
		return ctx
	}
	ctx = oidc.ClientContext(ctx, rp.cfg.HTTPClient)
	return context.WithValue(ctx, oauth2.HTTPClient, rp.cfg.HTTPClient)
}

// discover returns the provider's endpoints and a token verifier, reading
// the discovery document the first time it is needed. A failure is not
// cached: the next sign-in tries again.
func (rp *relyingParty) discover(ctx context.Context) (*discovered, error) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.d != nil {
		return rp.d, nil
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	// NewProvider checks that the document's issuer is exactly ours.
	p, err := oidc.NewProvider(rp.client(ctx), rp.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s provider: %w", rp.idp, err)
	}
	var meta struct {
		EndSession  string   `json:"end_session_endpoint"`
		Algs        []string `json:"id_token_signing_alg_values_supported"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("discover %s provider: %w", rp.idp, err)
	}
	var algs []string
	for _, a := range meta.Algs {
		if slices.Contains(safeAlgs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{oidc.RS256}
	}
	// Say how to authenticate at the token endpoint, rather than let oauth2
	// guess: its guess retries a refused exchange a second way, which can
	// blur why a code was refused. The default of the specification is
	// client_secret_basic.
	endpoint := p.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") &&
		slices.Contains(meta.AuthMethods, "client_secret_post") {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	rp.d = &discovered{
		oauth: oauth2.Config{
			ClientID:     rp.cfg.ClientID,
			ClientSecret: rp.cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  rp.redirectURL,
			Scopes:       []string{oidc.ScopeOpenID},
		},
		// The verifier checks the signature against the provider's published
		// keys (an unknown kid is refused), iss, aud and exp, with our clock.
		verifier: p.Verifier(&oidc.Config{
			ClientID:             rp.cfg.ClientID,
			SupportedSigningAlgs: algs,
			Now:                  rp.now,
		}),
		endSession: meta.EndSession,
	}
	return rp.d, nil
}

// requestedACR is the acr_values sent with the authorization request.
func (rp *relyingParty) requestedACR() string {
	if rp.idp == idpCitizen {
		return lowerACR(rp.cfg.MinACR, rp.cfg.YouthMinACR)
	}
	return rp.cfg.MinACR
}

// randomString returns n random bytes, base64url.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// signIn is a login in progress, kept in the database between the
// redirect to the provider and the callback.
type signIn struct {
	IdP      string `db:"idp"`
	State    string `db:"state"`
	Nonce    string `db:"nonce"`
	Verifier string `db:"verifier"`
	ReturnTo string `db:"return_to"`
}

// createSignIn stores a login in progress under the hash of loginID (the
// browser's cookie) and clears out logins that were never finished.
func (s *Store) createSignIn(ctx context.Context, loginID string, si signIn) error {
	now := s.now()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(
		`DELETE FROM signin_states WHERE expires_at <= ?`), now); err != nil {
		return fmt.Errorf("create sign-in: %w", err)
	}
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`
		INSERT INTO signin_states (id_hash, idp, state, nonce, verifier, return_to, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		hashToken(loginID), si.IdP, si.State, si.Nonce, si.Verifier, si.ReturnTo, now, now.Add(signInTTL))
	if err != nil {
		return fmt.Errorf("create sign-in: %w", err)
	}
	return nil
}

// takeSignIn removes and returns the login in progress with loginID. It
// is gone after the first call, whatever the caller then decides, so a
// callback can be used once. An unknown or expired login is ErrNotFound.
func (s *Store) takeSignIn(ctx context.Context, loginID string) (signIn, error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return signIn{}, fmt.Errorf("take sign-in: %w", err)
	}
	defer tx.Rollback()
	var row struct {
		signIn
		ExpiresAt time.Time `db:"expires_at"`
	}
	err = tx.GetContext(ctx, &row, tx.Rebind(`
		SELECT idp, state, nonce, verifier, return_to, expires_at
		FROM signin_states WHERE id_hash = ?`), hashToken(loginID))
	if errors.Is(err, sql.ErrNoRows) {
		return signIn{}, ErrNotFound
	}
	if err != nil {
		return signIn{}, fmt.Errorf("take sign-in: %w", err)
	}
	res, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM signin_states WHERE id_hash = ?`), hashToken(loginID))
	if err != nil {
		return signIn{}, fmt.Errorf("take sign-in: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return signIn{}, ErrNotFound // taken by a concurrent callback
	}
	if err := tx.Commit(); err != nil {
		return signIn{}, fmt.Errorf("take sign-in: %w", err)
	}
	if !s.now().Before(row.ExpiresAt) {
		return signIn{}, ErrNotFound
	}
	return row.signIn, nil
}

// citizenByPIDHash returns the citizen whose national id hashes to h.
// Staff are never found this way.
func (s *Store) citizenByPIDHash(ctx context.Context, h string) (User, error) {
	return s.userWhere(ctx, `pid_hash = ? AND kind = 'citizen'`, h)
}

// staffBySubject returns the staff member with the staff provider's
// subject sub. Citizens are never found this way.
func (s *Store) staffBySubject(ctx context.Context, sub string) (User, error) {
	return s.userWhere(ctx, `subject = ? AND kind IN ('caseworker', 'teamlead')`, sub)
}

// partyRoles returns userID's active party roles over all their cases;
// none means they are party to no case.
func (s *Store) partyRoles(ctx context.Context, userID string) ([]Role, error) {
	var roles []Role
	err := s.db.SelectContext(ctx, &roles, s.db.Rebind(`
		SELECT DISTINCT role FROM parties WHERE user_id = ? AND revoked_at IS NULL ORDER BY role`), userID)
	if err != nil {
		return nil, fmt.Errorf("party roles: %w", err)
	}
	return roles, nil
}

// rememberLogoutToken records a back-channel logout token's jti until
// expires. A jti already recorded for idp is ErrInvalid: a replay.
func (s *Store) rememberLogoutToken(ctx context.Context, idp, jti string, expires time.Time) error {
	now := s.now()
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(
		`DELETE FROM logout_tokens WHERE expires_at <= ?`), now); err != nil {
		return fmt.Errorf("remember logout token: %w", err)
	}
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`
		INSERT INTO logout_tokens (idp, jti, expires_at) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`), idp, jti, expires.UTC())
	if err != nil {
		return fmt.Errorf("remember logout token: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("logout token replayed: %w", ErrInvalid)
	}
	return nil
}

// returnPath returns p if it is safe to redirect to after sign-in: a path
// on this site with no scheme, host, backslash or control character.
// Anything else, including "//host" and "/\host", becomes "/".
func returnPath(p string) string {
	p = localPath(p)
	if p == "/" || len(p) > 512 {
		return "/"
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return "/"
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") || strings.Contains(u.Path, "\\") {
		return "/"
	}
	return p
}
