-- Each conversation keeps who wrote its newest text (a person's message,
-- not an automatic reply or a notice) and when. The caseworker inbox sorts
-- and files conversations by it ("waiting on us" is a family's word last),
-- and used to find it by walking each conversation's messages back from
-- the newest and reading the sender: three lookups per conversation on
-- every inbox. It is now read with the conversation's row.
--
-- A trigger keeps it, so every way a message is stored keeps it the same.
-- Its update is of the row the message's insert has just updated (the
-- sequence), so it adds no page to the write. last_text_seq makes it
-- independent of insertion order: an older text never replaces a newer one.
ALTER TABLE conversations ADD COLUMN last_text_seq INTEGER;
ALTER TABLE conversations ADD COLUMN last_text_at TIMESTAMP;
ALTER TABLE conversations ADD COLUMN last_text_role TEXT;

UPDATE conversations SET (last_text_seq, last_text_at, last_text_role) = (
	SELECT m.seq, m.created_at, u.kind
	FROM messages m JOIN users u ON u.id = m.sender_id
	WHERE m.conversation_id = conversations.id AND m.kind = 'text'
	ORDER BY m.seq DESC LIMIT 1);

CREATE TRIGGER conversations_last_text AFTER INSERT ON messages
WHEN NEW.kind = 'text'
BEGIN
	UPDATE conversations
	SET last_text_seq = NEW.seq, last_text_at = NEW.created_at,
	    last_text_role = (SELECT kind FROM users WHERE id = NEW.sender_id)
	WHERE id = NEW.conversation_id AND (last_text_seq IS NULL OR last_text_seq < NEW.seq);
END;
