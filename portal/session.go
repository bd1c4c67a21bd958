package portal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"familieportal/messaging"
)

// Session lifetimes (SECURITY.md): a session ends after 15 minutes without
// a request, and 12 hours after sign-in whatever happens.
const (
	SessionIdle     = 15 * time.Minute
	SessionLifetime = 12 * time.Hour
	// touchEvery limits writes: last_seen_at is moved at most once a minute.
	touchEvery = time.Minute
)

// sessionCookie is the session's cookie. The __Host- prefix makes the
// browser refuse it unless it is Secure, host-only and for the whole site.
const sessionCookie = "__Host-session"

// newToken returns a fresh random session token and the hash that is stored.
func newToken() (token, hash string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateSession starts a session for userID and returns its token. Only the
// token's hash is stored, so a copy of the database cannot be used to sign in.
func (s *Store) CreateSession(ctx context.Context, userID string) (string, error) {
	return s.createSession(ctx, userID, sessionOrigin{})
}

// sessionOrigin is the identity provider session a session was started
// from; the zero value is a demo sign-in.
type sessionOrigin struct {
	IdP     string // "citizen" or "staff"
	SID     string // the provider's session id (sid claim), for back-channel logout
	Sub     string // the provider's subject, for back-channel logout without sid
	IDToken string // the raw ID token, kept sealed for RP-initiated logout
}

func (s *Store) createSession(ctx context.Context, userID string, o sessionOrigin) (string, error) {
	token, hash := newToken()
	var sealed []byte
	if o.IDToken != "" {
		var err error
		if sealed, err = sealForToken(token, o.IDToken); err != nil {
			return "", fmt.Errorf("create session: %w", err)
		}
	}
	now := s.now()
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`
		INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at,
		                      idp, idp_sid, idp_sub, id_token_sealed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		hash, userID, now, now, now.Add(SessionLifetime), o.IdP, o.SID, o.Sub, sealed)
	if err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return token, nil
}

// SessionUser returns the user whose session token is token, and keeps the
// session alive. An unknown, idle or expired session is ErrUnauthorized.
func (s *Store) SessionUser(ctx context.Context, token string) (User, error) {
	if token == "" {
		return User{}, ErrUnauthorized
	}
	hash := hashToken(token)
	var row struct {
		User
		LastSeenAt time.Time `db:"last_seen_at"`
		ExpiresAt  time.Time `db:"expires_at"`
	}
	// The user comes in the same query: one statement less on every page.
	// A session whose user is gone finds no row, as before.
	err := s.db.GetContext(ctx, &row, s.db.Rebind(`
		SELECT `+userColumns+`, s.last_seen_at, s.expires_at
		FROM sessions s JOIN users ON users.id = s.user_id
		WHERE s.token_hash = ?`), hash)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrUnauthorized
	}
	if err != nil {
		return User{}, fmt.Errorf("get session: %w", err)
	}
	now := s.now()
	if !now.Before(row.ExpiresAt) || !now.Before(row.LastSeenAt.Add(SessionIdle)) {
		if err := s.DeleteSession(ctx, token); err != nil {
			return User{}, err
		}
		return User{}, ErrUnauthorized
	}
	if err := s.keepAlive(ctx, hash, row.LastSeenAt, now); err != nil {
		return User{}, err
	}
	return row.User, nil
}

// DeleteSession ends the session with token.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM sessions WHERE token_hash = ?`), hashToken(token))
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of userID, in every browser and on
// every instance ("sign out everywhere"), and returns how many there were.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM sessions WHERE user_id = ?`), userID)
	if err != nil {
		return 0, fmt.Errorf("delete user sessions: %w", err)
	}
	return res.RowsAffected()
}

// DeleteProviderSessions ends the sessions that identity provider idp
// reports as ended in a back-channel logout: those of its session sid if
// given (and of sub too, if both are given), otherwise every session of its
// subject sub. It returns the users whose sessions ended.
func (s *Store) DeleteProviderSessions(ctx context.Context, idp, sid, sub string) ([]string, error) {
	where, args := `idp = ? AND idp_sid = ?`, []any{idp, sid}
	switch {
	case sid != "" && sub != "":
		where, args = where+` AND idp_sub = ?`, append(args, sub)
	case sid == "" && sub != "":
		where, args = `idp = ? AND idp_sub = ?`, []any{idp, sub}
	case sid == "":
		return nil, nil // nothing names a session; never match the '' of demo sessions
	}
	// One statement, so that no session of the logout, however new, is
	// missed between finding and deleting.
	users, err := s.endSessionsWhere(ctx, where, args...)
	slices.Sort(users)
	return slices.Compact(users), err
}

// sessionLogoutHint returns, for the session with token, the identity
// provider it came from and its ID token (for the provider's logout page);
// both "" for a demo session or an unknown token.
func (s *Store) sessionLogoutHint(ctx context.Context, token string) (idp, idToken string, err error) {
	var row struct {
		IdP    string `db:"idp"`
		Sealed []byte `db:"id_token_sealed"`
	}
	err = s.db.GetContext(ctx, &row, s.db.Rebind(
		`SELECT idp, id_token_sealed FROM sessions WHERE token_hash = ?`), hashToken(token))
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("get session origin: %w", err)
	}
	if len(row.Sealed) == 0 {
		return row.IdP, "", nil
	}
	raw, err := unsealForToken(token, row.Sealed)
	if err != nil {
		// Only a corrupted row gets here; signing out locally still works.
		return row.IdP, "", nil
	}
	return row.IdP, raw, nil
}

// sealForToken encrypts plain with a key derived from the session token.
// The database stores only the token's SHA-256, so it cannot derive this
// HMAC-based key: what is sealed can only be read with the browser's cookie.
func sealForToken(token, plain string) ([]byte, error) {
	aead, err := tokenAEAD(token)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, []byte(plain), []byte(hashToken(token))), nil
}

func unsealForToken(token string, sealed []byte) (string, error) {
	aead, err := tokenAEAD(token)
	if err != nil {
		return "", err
	}
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("portal: sealed value too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(hashToken(token)))
	if err != nil {
		return "", err
	}
	return string(plain), nil
}

func tokenAEAD(token string) (cipher.AEAD, error) {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("familieportal session seal v1"))
	block, err := aes.NewCipher(m.Sum(nil))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// setSessionCookie gives the browser token. No Expires: the cookie goes
// when the browser closes, and the server ends the session earlier anyway.
func setSessionCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

func clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// disconnect closes the live sockets of userID once a session of theirs has
// ended, so an ended session stops receiving within seconds. Sockets of the
// user's other, still valid sessions reconnect with their own cookie.
func (s *Server) disconnect(ctx context.Context, userID string) {
	if s.chat == nil {
		return
	}
	if err := s.chat.Disconnect(ctx, userID); err != nil && !errors.Is(err, messaging.ErrClosed) {
		s.log.WarnContext(ctx, "disconnect sockets", "user", userID, "err", err)
	}
}

// TouchSession keeps the session of token alive, as a page load does: the
// chat calls it when a person writes or types on a socket. A session that
// is already idle or expired stays ended.
//
// Like a page load it writes at most once per touchEvery, and it reads
// first: a socket's first message usually comes within a minute of its
// handshake, which kept the session alive. An evening's 10,000 first
// messages in portal-bench each writing the session (when such a write
// still waited for the write lock holding a pool connection) starved the
// reads: 600 goroutines waited for a connection.
func (s *Store) TouchSession(ctx context.Context, token string) error {
	hash := hashToken(token)
	var lastSeen time.Time
	err := s.db.GetContext(ctx, &lastSeen, s.db.Rebind(`SELECT last_seen_at FROM sessions WHERE token_hash = ?`), hash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // ended: it stays ended
	}
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return s.keepAlive(ctx, hash, lastSeen, s.now())
}

// keepAlive moves the last use of the session with hash, last seen at
// lastSeen, forward to now if that was touchEvery or longer ago.
func (s *Store) keepAlive(ctx context.Context, hash string, lastSeen, now time.Time) error {
	if now.Sub(lastSeen) < touchEvery {
		return nil
	}
	return s.touchSession(ctx, hash, now)
}

// touchSession moves the last use of the session with hash forward to
// now, if it is still alive. The write goes through the group commit, like
// the chat's: it then shares a commit with the messages of the moment, and
// waits for the write lock holding no pool connection. Done on its own it
// took the lock for 3 to 12 ms at a time while messages queued behind it
// (portal-bench at 10,000 sockets, where every session's first message a
// minute after sign-in writes it).
func (s *Store) touchSession(ctx context.Context, hash string, now time.Time) error {
	err := messaging.CommitterFor(s.db).Do(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, tx.Rebind(`
			UPDATE sessions SET last_seen_at = ?
			WHERE token_hash = ? AND expires_at > ? AND last_seen_at > ? AND last_seen_at < ?`),
			now, hash, now, now.Add(-SessionIdle), now)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions ends every session past its idle or absolute
// limit and returns the users who lost one, sorted, each once.
//
// The sessions are found by a read, which waits for no writer. Finding
// them is a scan of every session; inside the write transaction that scan
// held every chat message's write for 17 to 54 ms every 30 s
// (portal-bench at 10,000 sockets).
func (s *Store) DeleteExpiredSessions(ctx context.Context) ([]string, error) {
	now := s.now()
	hashes, err := s.expiredSessions(ctx, now)
	if err != nil {
		return nil, err
	}
	return s.endExpiredSessions(ctx, hashes, now)
}

// expiredWhere matches the sessions past their idle or absolute limit at
// a time given twice: now, and now less SessionIdle.
const expiredWhere = `(expires_at <= ? OR last_seen_at <= ?)`

// expiredSessions returns the token hashes of the sessions expired at now.
func (s *Store) expiredSessions(ctx context.Context, now time.Time) ([]string, error) {
	var hashes []string
	err := s.db.SelectContext(ctx, &hashes, s.db.Rebind(`SELECT token_hash FROM sessions WHERE `+expiredWhere),
		now, now.Add(-SessionIdle))
	if err != nil {
		return nil, fmt.Errorf("expired sessions: %w", err)
	}
	return hashes, nil
}

// endExpiredSessions ends those of the sessions with hashes that are
// still expired at now (one used since it was found stays), by key, a
// write per inListMax of them, and returns the users who lost one, sorted,
// each once.
func (s *Store) endExpiredSessions(ctx context.Context, hashes []string, now time.Time) ([]string, error) {
	var users []string
	for chunk := range slices.Chunk(hashes, inListMax) {
		where, args, err := sqlx.In(`token_hash IN (?) AND `+expiredWhere, chunk, now, now.Add(-SessionIdle))
		if err != nil {
			return nil, fmt.Errorf("end expired sessions: %w", err)
		}
		ended, err := s.endSessionsWhere(ctx, where, args...)
		if err != nil {
			return nil, err
		}
		users = append(users, ended...)
	}
	slices.Sort(users)
	return slices.Compact(users), nil
}

// endSessionsWhere deletes the sessions matching where, in one write, and
// returns the user of each (to close their sockets).
func (s *Store) endSessionsWhere(ctx context.Context, where string, args ...any) ([]string, error) {
	var users []string
	err := messaging.CommitterFor(s.db).Do(ctx, func(ctx context.Context, tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &users, tx.Rebind(`DELETE FROM sessions WHERE `+where+` RETURNING user_id`), args...)
	})
	if err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	return users, nil
}

// inListMax bounds the keys in one IN list, well below SQLite's and
// PostgreSQL's limits on bound parameters.
const inListMax = 500

// SweepSessions ends expired sessions every interval until ctx is done,
// closing the sockets of their users: a socket opened before a session
// expired must not outlive it.
func (s *Server) SweepSessions(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.sweepSessions(ctx); err != nil {
			s.log.ErrorContext(ctx, "sweep sessions", "err", err)
		}
	}
}

func (s *Server) sweepSessions(ctx context.Context) error {
	users, err := s.store.DeleteExpiredSessions(ctx)
	if err != nil {
		return err
	}
	for _, id := range users {
		s.disconnect(ctx, id)
	}
	return nil
}
