-- Fewer pages written per chat message.
--
-- PostgreSQL version of sqlite/0010_lighter_message_writes.sql. The time
-- index goes here too: it repeated the order of the (conversation_id, seq)
-- index, and the auto-replier now walks that one back from the newest
-- message. Dropping AUTOINCREMENT from audit and api_feed has no
-- counterpart: identity columns keep their counter in a sequence, not in a
-- table every insert updates. The feed becomes append-only for deletes as
-- on SQLite (and TRUNCATE, which skips row triggers, as for audit).
DROP INDEX messages_conversation_time_idx;

CREATE TRIGGER api_feed_no_delete BEFORE DELETE ON api_feed
	FOR EACH ROW EXECUTE FUNCTION api_feed_append_only();
CREATE TRIGGER api_feed_no_truncate BEFORE TRUNCATE ON api_feed
	FOR EACH STATEMENT EXECUTE FUNCTION api_feed_append_only();
