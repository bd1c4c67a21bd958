-- The integration API for case management systems (fagsystem), which send
-- the KS Fiks Innsyn barnevern format: API keys, what each message said
-- (so a resend is recognised and the portal's rows can be rebuilt from it),
-- family members' requests for access, and the feed the case system reads.
--
-- No national id is stored here either: parties are kept by the same keyed
-- hash as users.pid_hash.
--
-- PostgreSQL version of sqlite/0006_api.sql. One difference of substance: the
-- feed's ids must follow commit order here too (see api_feed below).

-- A case system's key. Only a hash of the key is stored; the key is shown
-- once when it is made. A key belongs to one office and sees nothing else.
-- scopes is a space-separated list (cases:write, feed:read).
CREATE TABLE api_keys (
	id         TEXT PRIMARY KEY,
	office_id  TEXT NOT NULL REFERENCES offices (id),
	token_hash TEXT NOT NULL UNIQUE,
	scopes     TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	revoked_at TIMESTAMPTZ
);
CREATE INDEX api_keys_office_idx ON api_keys (office_id);

-- Which case a case system's case folder (its systemId) became.
CREATE TABLE fiks_cases (
	case_id             TEXT PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
	office_id           TEXT NOT NULL REFERENCES offices (id),
	system_id           TEXT NOT NULL,
	organisasjonsnummer TEXT NOT NULL,
	UNIQUE (office_id, system_id)
);

-- A mappe message: the case folder as indexed for one party (minPart).
-- melding_id is the case system's meldingId; a resend with the same id and
-- the same body (body_sha256) changes nothing. revoked_at is set when the
-- case system withdraws the folder from that party.
CREATE TABLE fiks_mapper (
	office_id   TEXT NOT NULL REFERENCES offices (id),
	melding_id  TEXT NOT NULL,
	case_id     TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	user_id     TEXT NOT NULL REFERENCES users (id),
	rolle       TEXT NOT NULL,  -- the format's role: MOR, FAR, HOVEDPERSON, ...
	fornavn     TEXT NOT NULL,
	etternavn   TEXT NOT NULL,
	body_sha256 TEXT NOT NULL,
	received_at TIMESTAMPTZ NOT NULL,
	updated_at  TIMESTAMPTZ NOT NULL,
	revoked_at  TIMESTAMPTZ,
	PRIMARY KEY (office_id, melding_id)
);
CREATE INDEX fiks_mapper_case_idx ON fiks_mapper (case_id);

-- The milestones of one mappe message, replaced when the message is.
CREATE TABLE fiks_milepeler (
	office_id   TEXT NOT NULL,
	melding_id  TEXT NOT NULL,
	pos         INTEGER NOT NULL,
	status      TEXT NOT NULL CHECK (status IN ('received', 'investigation', 'measures', 'closed')),
	startdato   TIMESTAMPTZ NOT NULL,
	sluttdato   TIMESTAMPTZ,
	beskrivelse TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (office_id, melding_id, pos),
	FOREIGN KEY (office_id, melding_id) REFERENCES fiks_mapper (office_id, melding_id) ON DELETE CASCADE
);

-- A journal post of a case. It is one post however many parties it was
-- indexed for: system_id (the case system's systemId) ties the messages
-- together; a post without one is known by its single meldingId.
CREATE TABLE fiks_journalposter (
	id           TEXT PRIMARY KEY,
	case_id      TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	system_id    TEXT,
	tittel       TEXT NOT NULL,
	kind         TEXT NOT NULL CHECK (kind IN ('decision', 'plan', 'report', 'minutes', 'letter')),
	dated_at     TIMESTAMPTZ NOT NULL,  -- journaldato, else dokumentetsDato, else when first received
	klagefrist   TIMESTAMPTZ,
	tidslinje    BOOLEAN NOT NULL DEFAULT FALSE,
	received_at  TIMESTAMPTZ NOT NULL,
	withdrawn_at TIMESTAMPTZ,
	UNIQUE (case_id, system_id)
);

-- Each journalpost message: which post it is, and the mappe (party) it was
-- indexed under (forelderMeldingId).
CREATE TABLE fiks_journalpost_meldinger (
	office_id        TEXT NOT NULL REFERENCES offices (id),
	melding_id       TEXT NOT NULL,
	journalpost_id   TEXT NOT NULL REFERENCES fiks_journalposter (id) ON DELETE CASCADE,
	mappe_melding_id TEXT NOT NULL,
	body_sha256      TEXT NOT NULL,
	received_at      TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (office_id, melding_id),
	FOREIGN KEY (office_id, mappe_melding_id) REFERENCES fiks_mapper (office_id, melding_id)
);
CREATE INDEX fiks_journalpost_meldinger_post_idx ON fiks_journalpost_meldinger (journalpost_id);

-- Who a journal post is exposed to (eksponertFor), as the latest message
-- said: the portal role, the keyed hash of the national id if given, and
-- the name (matched with the role when there is no national id).
CREATE TABLE fiks_eksponert (
	journalpost_id TEXT NOT NULL REFERENCES fiks_journalposter (id) ON DELETE CASCADE,
	pos            INTEGER NOT NULL,
	role           TEXT NOT NULL CHECK (role IN ('mother', 'father', 'parent', 'guardian', 'youth')),
	pid_hash       TEXT,
	name           TEXT NOT NULL,
	PRIMARY KEY (journalpost_id, pos)
);

-- The documents of a journal post, by their place in dokumenter. The
-- portal's document (documents.id) exists once the bytes have arrived.
CREATE TABLE fiks_dokumenter (
	journalpost_id TEXT NOT NULL REFERENCES fiks_journalposter (id) ON DELETE CASCADE,
	pos            INTEGER NOT NULL,
	filnavn        TEXT NOT NULL,
	mime_type      TEXT NOT NULL,
	tittel         TEXT NOT NULL,
	storrelse      BIGINT,
	document_id    TEXT UNIQUE REFERENCES documents (id) ON DELETE SET NULL,
	withdrawn_at   TIMESTAMPTZ,
	PRIMARY KEY (journalpost_id, pos)
);

-- Timeline events the case system's data made (from milestones and from
-- journal posts with tidslinje), so they can be rebuilt when it changes.
CREATE TABLE fiks_events (
	event_id       TEXT PRIMARY KEY REFERENCES timeline_events (id) ON DELETE CASCADE,
	case_id        TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	source         TEXT NOT NULL CHECK (source IN ('milepel', 'journalpost'))
);
CREATE INDEX fiks_events_case_idx ON fiks_events (case_id);

-- A family member's request to see the documents withheld from them
-- (innsynsforespørsel). The status is the format's: FORESPURT when asked,
-- then GODKJENT or AVVIST as the case system answers.
CREATE TABLE access_requests (
	id         TEXT PRIMARY KEY,
	case_id    TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL REFERENCES users (id),
	status     TEXT NOT NULL CHECK (status IN ('FORESPURT', 'GODKJENT', 'AVVIST')),
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX access_requests_case_user_idx ON access_requests (case_id, user_id);

-- What the case system must archive, in the order it happened: family
-- messages, first reads of its documents, requests for access. Rows are
-- added by the triggers below, in the transaction that stores the event,
-- so nothing committed is missing.
--
-- A reader's cursor (id > last seen) must never skip a row, so ids must be
-- assigned in commit order. SQLite gets that from running one writer at a
-- time; PostgreSQL hands out identity values at insert time, so a
-- transaction that commits later could hold a lower id. api_feed_insert
-- therefore takes a transaction-scoped advisory lock per office before it
-- takes an id: the writers of one office's feed take turns until commit,
-- and a reader of that office's feed (cursors are per office) sees ids
-- appear in order.
CREATE TABLE api_feed (
	id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	office_id TEXT NOT NULL,
	kind      TEXT NOT NULL CHECK (kind IN ('message', 'document_read', 'access_request')),
	object_id TEXT NOT NULL,
	user_id   TEXT NOT NULL,
	at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_feed_office_idx ON api_feed (office_id, id);

CREATE FUNCTION api_feed_insert(p_office TEXT, p_kind TEXT, p_object TEXT, p_user TEXT, p_at TIMESTAMPTZ)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF p_office IS NULL THEN
		RETURN; -- as in SQLite, where the INSERT ... SELECT finds no row
	END IF;
	PERFORM pg_advisory_xact_lock(hashtextextended('api_feed:' || p_office, 0));
	INSERT INTO api_feed (office_id, kind, object_id, user_id, at)
	VALUES (p_office, p_kind, p_object, p_user, p_at);
END;
$$;

-- A text message written by a family member (never staff, never automatic
-- replies or notices).
CREATE FUNCTION api_feed_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.kind = 'text' AND EXISTS (SELECT 1 FROM users u WHERE u.id = NEW.sender_id AND u.kind = 'citizen') THEN
		PERFORM api_feed_insert(
			(SELECT k.office_id FROM conversations c JOIN cases k ON k.id = c.case_id WHERE c.id = NEW.conversation_id),
			'message', NEW.id, NEW.sender_id, NEW.created_at);
	END IF;
	RETURN NULL;
END;
$$;

CREATE TRIGGER api_feed_message AFTER INSERT ON messages
	FOR EACH ROW EXECUTE FUNCTION api_feed_message();

-- A family member's first read of a document that came from the case system.
CREATE FUNCTION api_feed_document_read() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM fiks_dokumenter f WHERE f.document_id = NEW.document_id) THEN
		PERFORM api_feed_insert(
			(SELECT k.office_id FROM documents d JOIN cases k ON k.id = d.case_id WHERE d.id = NEW.document_id),
			'document_read', NEW.document_id, NEW.user_id, NEW.read_at);
	END IF;
	RETURN NULL;
END;
$$;

CREATE TRIGGER api_feed_document_read AFTER INSERT ON document_reads
	FOR EACH ROW EXECUTE FUNCTION api_feed_document_read();

CREATE FUNCTION api_feed_access_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM api_feed_insert(
		(SELECT k.office_id FROM cases k WHERE k.id = NEW.case_id),
		'access_request', NEW.id, NEW.user_id, NEW.created_at);
	RETURN NULL;
END;
$$;

CREATE TRIGGER api_feed_access_request AFTER INSERT ON access_requests
	FOR EACH ROW EXECUTE FUNCTION api_feed_access_request();

CREATE FUNCTION api_feed_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the feed is append-only';
END;
$$;

CREATE TRIGGER api_feed_no_update BEFORE UPDATE ON api_feed
	FOR EACH ROW EXECUTE FUNCTION api_feed_append_only();
