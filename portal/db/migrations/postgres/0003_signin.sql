-- Sign-in with OpenID Connect (ID-porten for citizens, the municipality's
-- identity provider for staff): logins in progress, the identity provider's
-- session behind each of our sessions, and back-channel logout tokens seen.
--
-- PostgreSQL version of sqlite/0003_signin.sql.

-- A login in progress, from the redirect to the identity provider until the
-- callback, which deletes the row whatever its outcome (one-time use). The
-- browser holds the login id in a short-lived __Host- cookie; only its hash
-- is stored, so the row alone cannot finish a login.
CREATE TABLE signin_states (
	id_hash    TEXT PRIMARY KEY,
	idp        TEXT NOT NULL CHECK (idp IN ('citizen', 'staff')),
	state      TEXT NOT NULL,
	nonce      TEXT NOT NULL,
	verifier   TEXT NOT NULL,  -- PKCE code verifier
	return_to  TEXT NOT NULL,  -- a local path, checked before it is stored
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX signin_states_expires_idx ON signin_states (expires_at);

-- Which identity provider session a session came from, for back-channel
-- logout (by sid, or by sub) and RP-initiated logout. '' for demo sign-in.
-- id_token_sealed is the ID token (the id_token_hint the provider asks for at
-- logout) encrypted with a key derived from the session's cookie token, which
-- the database never holds: a copy of the database reveals no national id.
ALTER TABLE sessions ADD COLUMN idp TEXT NOT NULL DEFAULT '' CHECK (idp IN ('', 'citizen', 'staff'));
ALTER TABLE sessions ADD COLUMN idp_sid TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN idp_sub TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN id_token_sealed BYTEA;
CREATE INDEX sessions_idp_sid_idx ON sessions (idp, idp_sid);
CREATE INDEX sessions_idp_sub_idx ON sessions (idp, idp_sub);

-- Back-channel logout tokens already acted on, by their jti, so a replayed
-- token is refused. Kept until the token could no longer be accepted anyway.
CREATE TABLE logout_tokens (
	idp        TEXT NOT NULL CHECK (idp IN ('citizen', 'staff')),
	jti        TEXT NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (idp, jti)
);
CREATE INDEX logout_tokens_expires_idx ON logout_tokens (expires_at);
