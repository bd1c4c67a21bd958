-- Messaging: conversations between the parties of a case and its caseworkers,
-- their messages and read state. Messages are part of the case file: they are
-- never edited or deleted, only removed with their case (retention).
--
-- PostgreSQL version of sqlite/0002_messaging.sql. Trigger conditions with a
-- subquery move into the plpgsql functions (a WHEN clause cannot hold one).

-- A conversation belongs to one case. 'party' is the default one-party
-- conversation with the case's caseworkers (a youth's is private from the
-- parents); 'shared' is one a caseworker opens with several parties.
-- last_seq is the highest message sequence taken so far: InsertMessage
-- increments it in the same transaction as the insert, so sequences have no
-- gaps and no duplicates.
CREATE TABLE conversations (
	id         TEXT PRIMARY KEY,
	case_id    TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
	kind       TEXT NOT NULL CHECK (kind IN ('party', 'shared')),
	last_seq   BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX conversations_case_idx ON conversations (case_id);

-- The family side of a conversation: parties only. The case's caseworkers
-- are deliberately not rows here; they see every conversation of their
-- cases, so assignment changes need no bookkeeping in this table.
-- last_read_seq is the member's read cursor.
CREATE TABLE conversation_members (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         TEXT NOT NULL REFERENCES users (id),
	last_read_seq   BIGINT NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0),
	joined_at       TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user_idx ON conversation_members (user_id);

-- Read cursors of staff (caseworkers, team leads), who are not members.
-- A row appears the first time a staff member reads the conversation.
CREATE TABLE conversation_reads (
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	user_id         TEXT NOT NULL REFERENCES users (id),
	last_read_seq   BIGINT NOT NULL CHECK (last_read_seq >= 0),
	read_at         TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_reads_user_idx ON conversation_reads (user_id);

-- seq is the message's place in its conversation, 1, 2, 3, ... without gaps.
-- (sender_id, client_id) makes a resend idempotent: the client's id for the
-- message identifies it, whichever socket or form post it came through.
CREATE TABLE messages (
	id              TEXT PRIMARY KEY,
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq             BIGINT NOT NULL CHECK (seq > 0),
	sender_id       TEXT NOT NULL REFERENCES users (id),
	client_id       TEXT NOT NULL,
	body            TEXT NOT NULL,
	kind            TEXT NOT NULL CHECK (kind IN ('text', 'auto_reply', 'system')),
	created_at      TIMESTAMPTZ NOT NULL,
	UNIQUE (conversation_id, seq),
	UNIQUE (sender_id, client_id)
);
-- The two UNIQUE constraints are the indexes for replay (conversation_id,
-- seq) and for the idempotency lookup (sender_id, client_id).

-- Messages are immutable. A delete is allowed only as part of the cascade
-- that removes the whole conversation (its row is already gone when the
-- cascade reaches the messages), never one message at a time.
CREATE FUNCTION messages_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = OLD.conversation_id) THEN
		RETURN OLD; -- the cascade from a deleted conversation
	END IF;
	RAISE EXCEPTION 'messages are immutable';
END;
$$;

CREATE TRIGGER messages_no_update BEFORE UPDATE ON messages
	FOR EACH ROW EXECUTE FUNCTION messages_immutable();

CREATE TRIGGER messages_no_delete BEFORE DELETE ON messages
	FOR EACH ROW EXECUTE FUNCTION messages_immutable();

-- Likewise a conversation goes only with its case, so deleting a
-- conversation cannot be used to erase its messages.
CREATE FUNCTION conversations_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM cases k WHERE k.id = OLD.case_id) THEN
		RAISE EXCEPTION 'conversations are deleted only with their case';
	END IF;
	RETURN OLD;
END;
$$;

CREATE TRIGGER conversations_no_delete BEFORE DELETE ON conversations
	FOR EACH ROW EXECUTE FUNCTION conversations_no_delete();

-- A sequence never goes back and a conversation never moves to another case
-- (its members and history belong to that case).
CREATE FUNCTION conversations_seq_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'conversation sequence and case are fixed';
END;
$$;

CREATE TRIGGER conversations_seq_forward BEFORE UPDATE ON conversations
	FOR EACH ROW
	WHEN (NEW.last_seq < OLD.last_seq OR NEW.case_id <> OLD.case_id OR NEW.id <> OLD.id)
	EXECUTE FUNCTION conversations_seq_forward();

-- SQLite has no TRUNCATE; PostgreSQL's skips row triggers, so it gets its own.
CREATE FUNCTION messages_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'messages are immutable';
END;
$$;

CREATE TRIGGER messages_no_truncate BEFORE TRUNCATE ON messages
	FOR EACH STATEMENT EXECUTE FUNCTION messages_no_truncate();
