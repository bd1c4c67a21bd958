-- Fewer pages written per chat message.
--
-- PostgreSQL version of sqlite/0010_lighter_message_writes.sql. The time
-- index goes here too: it repeated the order of the (conversation_id, seq)
-- index, and the auto-replier now walks that one back from the newest
-- message. The second half of the SQLite migration, dropping AUTOINCREMENT
-- from audit and api_feed, has no counterpart: identity columns keep their
-- counter in a sequence, not in a table every insert updates.
DROP INDEX messages_conversation_time_idx;
