-- The portal's core: offices, people, cases, what each party may see, and
-- the audit trail. Instants are stored as UTC; public ids are random text.
--
-- PostgreSQL version of sqlite/0001_portal.sql: the same tables, columns and
-- constraints; TIMESTAMPTZ for instants, BYTEA for bytes, identity columns
-- for AUTOINCREMENT, and the triggers as plpgsql functions.

CREATE TABLE offices (
	id                TEXT PRIMARY KEY,
	name              TEXT NOT NULL,
	municipality      TEXT NOT NULL,
	phone             TEXT NOT NULL,
	emergency_phone   TEXT NOT NULL,  -- barnevernvakt
	time_zone         TEXT NOT NULL DEFAULT 'Europe/Oslo'
);

CREATE TABLE teams (
	id        TEXT PRIMARY KEY,
	office_id TEXT NOT NULL REFERENCES offices (id),
	name      TEXT NOT NULL
);
CREATE INDEX teams_office_idx ON teams (office_id);

-- A person who signs in. Citizens are found by a keyed hash of their
-- national id (never the id itself); staff by their identity provider's
-- subject. demo_key names the demo cast and is NULL outside the demo.
CREATE TABLE users (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL CHECK (kind IN ('citizen', 'caseworker', 'teamlead')),
	name       TEXT NOT NULL,
	pid_hash   TEXT UNIQUE,
	subject    TEXT UNIQUE,
	demo_key   TEXT UNIQUE,
	lang       TEXT NOT NULL DEFAULT '' CHECK (lang IN ('', 'nb', 'nn', 'en')),
	office_id  TEXT REFERENCES offices (id),
	team_id    TEXT REFERENCES teams (id),
	unit       TEXT NOT NULL DEFAULT '',  -- e.g. "Team 1"; shown to families instead of staff names
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_team_idx ON users (team_id);

CREATE TABLE cases (
	id                 TEXT PRIMARY KEY,
	reference          TEXT NOT NULL UNIQUE,
	office_id          TEXT NOT NULL REFERENCES offices (id),
	team_id            TEXT REFERENCES teams (id),
	child_name         TEXT NOT NULL,  -- first name only
	status             TEXT NOT NULL CHECK (status IN ('received', 'investigation', 'measures', 'closed')),
	opened_at          TIMESTAMPTZ NOT NULL,
	-- The legal deadline of the investigation (normally 3 months after the report).
	investigation_due  TIMESTAMPTZ,
	closed_at          TIMESTAMPTZ,
	updated_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX cases_team_idx ON cases (team_id);

CREATE TABLE case_caseworkers (
	case_id    TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL REFERENCES users (id),
	is_primary BOOLEAN NOT NULL DEFAULT FALSE,
	PRIMARY KEY (case_id, user_id)
);
CREATE INDEX case_caseworkers_user_idx ON case_caseworkers (user_id);

-- Party rights come from the case data, never from a birth date.
CREATE TABLE parties (
	case_id    TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL REFERENCES users (id),
	role       TEXT NOT NULL CHECK (role IN ('mother', 'father', 'parent', 'guardian', 'youth')),
	revoked_at TIMESTAMPTZ,
	PRIMARY KEY (case_id, user_id)
);
CREATE INDEX parties_user_idx ON parties (user_id);

CREATE TABLE documents (
	id              TEXT PRIMARY KEY,
	case_id         TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	title           TEXT NOT NULL,
	kind            TEXT NOT NULL CHECK (kind IN ('decision', 'plan', 'report', 'minutes', 'letter')),
	published_at    TIMESTAMPTZ NOT NULL,
	appeal_due      TIMESTAMPTZ,      -- klagefrist, for decisions
	filename        TEXT NOT NULL,
	content_type    TEXT NOT NULL CHECK (content_type IN ('application/pdf', 'text/plain; charset=utf-8')),
	size            BIGINT NOT NULL,
	sha256          TEXT NOT NULL,
	content         BYTEA NOT NULL,
	withdrawn_at    TIMESTAMPTZ
);
CREATE INDEX documents_case_idx ON documents (case_id, published_at);

-- Which party roles a document is published to. Staff on the case see all.
CREATE TABLE document_audience (
	document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
	role        TEXT NOT NULL CHECK (role IN ('mother', 'father', 'parent', 'guardian', 'youth')),
	PRIMARY KEY (document_id, role)
);

-- Documents withheld from one party (barnevernsloven § 12-6). The reason is
-- for staff; the party only ever sees a general notice.
CREATE TABLE document_withheld (
	document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
	user_id     TEXT NOT NULL REFERENCES users (id),
	reason      TEXT NOT NULL,
	PRIMARY KEY (document_id, user_id)
);
CREATE INDEX document_withheld_user_idx ON document_withheld (user_id);

-- First time a person opened a document: "new" until then.
CREATE TABLE document_reads (
	document_id TEXT NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
	user_id     TEXT NOT NULL REFERENCES users (id),
	read_at     TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (document_id, user_id)
);

CREATE TABLE timeline_events (
	id          TEXT PRIMARY KEY,
	case_id     TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	kind        TEXT NOT NULL CHECK (kind IN ('report_received', 'investigation_started', 'meeting',
	                'decision', 'measures_started', 'plan_updated', 'case_closed', 'other')),
	occurred_at TIMESTAMPTZ NOT NULL,
	note        TEXT NOT NULL DEFAULT ''  -- free text from the case system, shown as given
);
CREATE INDEX timeline_events_case_idx ON timeline_events (case_id, occurred_at);

CREATE TABLE timeline_audience (
	event_id TEXT NOT NULL REFERENCES timeline_events (id) ON DELETE CASCADE,
	role     TEXT NOT NULL CHECK (role IN ('mother', 'father', 'parent', 'guardian', 'youth')),
	PRIMARY KEY (event_id, role)
);

-- Server-side sessions. Only a hash of the cookie's token is stored.
CREATE TABLE sessions (
	token_hash   TEXT PRIMARY KEY,
	user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at   TIMESTAMPTZ NOT NULL,
	last_seen_at TIMESTAMPTZ NOT NULL,
	expires_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- Append-only: who did what to which case or object, when, and whether it
-- was allowed. Never message text, document content, names or national ids.
CREATE TABLE audit (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at          TIMESTAMPTZ NOT NULL,
	actor_id    TEXT NOT NULL DEFAULT '',
	actor_kind  TEXT NOT NULL DEFAULT '',
	action      TEXT NOT NULL,
	case_id     TEXT NOT NULL DEFAULT '',
	object_id   TEXT NOT NULL DEFAULT '',
	outcome     TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
	purpose     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_case_idx ON audit (case_id, id);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'audit is append-only';
END;
$$;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();

-- SQLite has no TRUNCATE; PostgreSQL's skips row triggers, so it gets its own.
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
