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
	"slices"
	"strings"
)

// Scopes an API key can have.
const (
	ScopeCasesWrite = "cases:write" // send and withdraw case folders, journal posts, documents; answer requests for access
	ScopeFeedRead   = "feed:read"   // read the feed of family messages, reads and requests for access
)

// Scopes lists every scope, for help texts.
var Scopes = []string{ScopeCasesWrite, ScopeFeedRead}

// apiKeyPrefix starts every key, so a leaked key is easy to recognise
// (and to find with secret scanners).
const apiKeyPrefix = "fpk_"

// APIKey is a case system's key as the portal knows it (never the key).
type APIKey struct {
	ID       string `db:"id"`
	OfficeID string `db:"office_id"`
	Scopes   string `db:"scopes"`
}

// Has reports whether the key has scope.
func (k APIKey) Has(scope string) bool { return slices.Contains(strings.Fields(k.Scopes), scope) }

// hashAPIKey is how a key is stored. Keys are 256 random bits, so a plain
// SHA-256 is as good as a slow hash here and lets the key be looked up.
func hashAPIKey(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// CreateAPIKey makes a key for officeID with scopes and returns its id
// and the key itself, which is shown this once and stored only as a hash.
func (s *Store) CreateAPIKey(ctx context.Context, officeID string, scopes []string) (id, key string, err error) {
	if len(scopes) == 0 {
		return "", "", fmt.Errorf("%w: give at least one scope (%s)", ErrInvalid, strings.Join(Scopes, ", "))
	}
	for _, sc := range scopes {
		if !slices.Contains(Scopes, sc) {
			return "", "", fmt.Errorf("%w: unknown scope %q (want %s)", ErrInvalid, sc, strings.Join(Scopes, ", "))
		}
	}
	if _, err := s.Office(ctx, officeID); err != nil {
		return "", "", fmt.Errorf("office %q: %w", officeID, err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	key = apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	id = NewID()
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	if _, err := s.db.ExecContext(ctx, s.db.Rebind(`
		INSERT INTO api_keys (id, office_id, token_hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)`),
		id, officeID, hashAPIKey(key), strings.Join(scopes, " "), s.now()); err != nil {
		return "", "", fmt.Errorf("create api key: %w", err)
	}
	if err := s.Audit(ctx, AuditEntry{ActorID: "cli", ActorKind: kindSystem, Action: "api.key.create",
		ObjectID: id, Outcome: "allowed", Purpose: "administration"}); err != nil {
		return "", "", err
	}
	return id, key, nil
}

// RevokeAPIKey revokes the key id at once; requests with it get 401.
func (s *Store) RevokeAPIKey(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`
		UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`), s.now(), id)
	if err != nil {
		return fmt.Errorf("revoke api key: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("api key %q: %w", id, ErrNotFound)
	}
	return s.Audit(ctx, AuditEntry{ActorID: "cli", ActorKind: kindSystem, Action: "api.key.revoke",
		ObjectID: id, Outcome: "allowed", Purpose: "administration"})
}

// apiKey returns the live key whose hash matches key; ErrUnauthorized
// for an unknown or revoked one.
func (s *Store) apiKey(ctx context.Context, key string) (APIKey, error) {
	var k APIKey
	if !strings.HasPrefix(key, apiKeyPrefix) || len(key) > 100 {
		return k, ErrUnauthorized
	}
	err := s.db.GetContext(ctx, &k, s.db.Rebind(`
		SELECT id, office_id, scopes FROM api_keys WHERE token_hash = ? AND revoked_at IS NULL`), hashAPIKey(key))
	if errors.Is(err, sql.ErrNoRows) {
		return k, ErrUnauthorized
	}
	if err != nil {
		return k, fmt.Errorf("find api key: %w", err)
	}
	return k, nil
}

// FindOffice returns the office whose id or name is ref; "" finds the
// only office when there is just one.
func (s *Store) FindOffice(ctx context.Context, ref string) (Office, error) {
	var offices []Office
	if err := s.db.SelectContext(ctx, &offices, s.db.Rebind(`
		SELECT id, name, municipality, phone, emergency_phone FROM offices
		WHERE ? = '' OR id = ? OR name = ? ORDER BY id`), ref, ref, ref); err != nil {
		return Office{}, fmt.Errorf("find office: %w", err)
	}
	switch {
	case len(offices) == 1:
		return offices[0], nil
	case len(offices) == 0:
		return Office{}, fmt.Errorf("office %q: %w", ref, ErrNotFound)
	}
	return Office{}, fmt.Errorf("%w: several offices match %q; give --office with an id", ErrInvalid, ref)
}
