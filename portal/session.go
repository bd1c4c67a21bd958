package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"
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
	token, hash := newToken()
	now := s.now()
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`
		INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`), hash, userID, now, now, now.Add(SessionLifetime))
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
		UserID     string    `db:"user_id"`
		LastSeenAt time.Time `db:"last_seen_at"`
		ExpiresAt  time.Time `db:"expires_at"`
	}
	err := s.db.GetContext(ctx, &row, s.db.Rebind(`
		SELECT user_id, last_seen_at, expires_at FROM sessions WHERE token_hash = ?`), hash)
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
	if now.Sub(row.LastSeenAt) >= touchEvery {
		if _, err := s.db.ExecContext(ctx, s.db.Rebind(
			`UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?`), now, hash); err != nil {
			return User{}, fmt.Errorf("touch session: %w", err)
		}
	}
	u, err := s.User(ctx, row.UserID)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrUnauthorized
	}
	return u, err
}

// DeleteSession ends the session with token.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`DELETE FROM sessions WHERE token_hash = ?`), hashToken(token))
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
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
