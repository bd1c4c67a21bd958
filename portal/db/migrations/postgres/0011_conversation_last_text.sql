-- Each conversation keeps who wrote its newest text and when.
--
-- PostgreSQL version of sqlite/0011_conversation_last_text.sql: the
-- caseworker inbox reads it with the conversation's row instead of walking
-- each conversation's messages back to the newest text. A trigger keeps
-- it, so every way a message is stored keeps it the same; an older text
-- never replaces a newer one.
ALTER TABLE conversations ADD COLUMN last_text_seq BIGINT;
ALTER TABLE conversations ADD COLUMN last_text_at TIMESTAMPTZ;
ALTER TABLE conversations ADD COLUMN last_text_role TEXT;

UPDATE conversations SET (last_text_seq, last_text_at, last_text_role) = (
	SELECT m.seq, m.created_at, u.kind
	FROM messages m JOIN users u ON u.id = m.sender_id
	WHERE m.conversation_id = conversations.id AND m.kind = 'text'
	ORDER BY m.seq DESC LIMIT 1);

CREATE FUNCTION conversations_last_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE conversations
	SET last_text_seq = NEW.seq, last_text_at = NEW.created_at,
	    last_text_role = (SELECT kind FROM users WHERE id = NEW.sender_id)
	WHERE id = NEW.conversation_id AND (last_text_seq IS NULL OR last_text_seq < NEW.seq);
	RETURN NULL;
END;
$$;

CREATE TRIGGER conversations_last_text AFTER INSERT ON messages
	FOR EACH ROW WHEN (NEW.kind = 'text')
	EXECUTE FUNCTION conversations_last_text();
