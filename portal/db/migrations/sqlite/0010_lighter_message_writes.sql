-- Fewer pages written per chat message. A family's message wrote 13 pages
-- to the WAL (portal-bench's write path on its dataset): every B-tree it
-- touches is a page, and the commit and the checkpoint copy each one. This
-- takes two of them away (10.9 pages per message).
--
-- 1. messages_conversation_time_idx goes. It repeated the order of the
--    (conversation_id, seq) index, since a message's created_at is taken
--    while its seq is, and its one reader, the auto-replier's "did staff
--    answer since the period closed?", now walks that index back from the
--    newest message instead (messaging/availability_store.go).
DROP INDEX messages_conversation_time_idx;

-- 2. audit and api_feed without AUTOINCREMENT, which updated
--    sqlite_sequence in every transaction that added a row. Its one
--    promise, that an id is never used twice, holds without it for a table
--    whose rows are never deleted: a new row's id is the largest plus one.
--    Both are append-only, by the triggers below (api_feed gains the one
--    for deletes that it lacked), so ids keep growing in commit order and a
--    feed reader's cursor never skips a row. Each table is rebuilt with its
--    rows and ids; the feed's triggers on other tables name it, so they go
--    first and come back unchanged after.
DROP TRIGGER api_feed_message;
DROP TRIGGER api_feed_document_read;
DROP TRIGGER api_feed_access_request;

CREATE TABLE api_feed_rebuilt (
	id        INTEGER PRIMARY KEY,
	office_id TEXT NOT NULL,
	kind      TEXT NOT NULL CHECK (kind IN ('message', 'document_read', 'access_request')),
	object_id TEXT NOT NULL,
	user_id   TEXT NOT NULL,
	at        TIMESTAMP NOT NULL
);
INSERT INTO api_feed_rebuilt (id, office_id, kind, object_id, user_id, at)
SELECT id, office_id, kind, object_id, user_id, at FROM api_feed;
DROP TABLE api_feed;
ALTER TABLE api_feed_rebuilt RENAME TO api_feed;
CREATE INDEX api_feed_office_idx ON api_feed (office_id, id);

CREATE TRIGGER api_feed_no_update BEFORE UPDATE ON api_feed
BEGIN
	SELECT RAISE(ABORT, 'the feed is append-only');
END;

CREATE TRIGGER api_feed_no_delete BEFORE DELETE ON api_feed
BEGIN
	SELECT RAISE(ABORT, 'the feed is append-only');
END;

-- As in 0006_api.sql.
CREATE TRIGGER api_feed_message AFTER INSERT ON messages
WHEN NEW.kind = 'text' AND EXISTS (SELECT 1 FROM users u WHERE u.id = NEW.sender_id AND u.kind = 'citizen')
BEGIN
	INSERT INTO api_feed (office_id, kind, object_id, user_id, at)
	SELECT k.office_id, 'message', NEW.id, NEW.sender_id, NEW.created_at
	FROM conversations c JOIN cases k ON k.id = c.case_id
	WHERE c.id = NEW.conversation_id;
END;

CREATE TRIGGER api_feed_document_read AFTER INSERT ON document_reads
WHEN EXISTS (SELECT 1 FROM fiks_dokumenter f WHERE f.document_id = NEW.document_id)
BEGIN
	INSERT INTO api_feed (office_id, kind, object_id, user_id, at)
	SELECT k.office_id, 'document_read', NEW.document_id, NEW.user_id, NEW.read_at
	FROM documents d JOIN cases k ON k.id = d.case_id
	WHERE d.id = NEW.document_id;
END;

CREATE TRIGGER api_feed_access_request AFTER INSERT ON access_requests
BEGIN
	INSERT INTO api_feed (office_id, kind, object_id, user_id, at)
	SELECT k.office_id, 'access_request', NEW.id, NEW.user_id, NEW.created_at
	FROM cases k WHERE k.id = NEW.case_id;
END;

-- The audit log, as in 0001_portal.sql but for AUTOINCREMENT.
CREATE TABLE audit_rebuilt (
	id          INTEGER PRIMARY KEY,
	at          TIMESTAMP NOT NULL,
	actor_id    TEXT NOT NULL DEFAULT '',
	actor_kind  TEXT NOT NULL DEFAULT '',
	action      TEXT NOT NULL,
	case_id     TEXT NOT NULL DEFAULT '',
	object_id   TEXT NOT NULL DEFAULT '',
	outcome     TEXT NOT NULL CHECK (outcome IN ('allowed', 'denied', 'failed')),
	purpose     TEXT NOT NULL DEFAULT ''
);
INSERT INTO audit_rebuilt (id, at, actor_id, actor_kind, action, case_id, object_id, outcome, purpose)
SELECT id, at, actor_id, actor_kind, action, case_id, object_id, outcome, purpose FROM audit;
DROP TABLE audit;
ALTER TABLE audit_rebuilt RENAME TO audit;
CREATE INDEX audit_case_idx ON audit (case_id, id);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
	SELECT RAISE(ABORT, 'audit is append-only');
END;

DELETE FROM sqlite_sequence WHERE name IN ('audit', 'api_feed');
