-- Auto-replies ask whether staff answered a conversation within a closed
-- period: find its messages by time without reading its whole history.
--
-- PostgreSQL version of sqlite/0007_message_time_index.sql (the same index).
CREATE INDEX messages_conversation_time_idx ON messages (conversation_id, created_at);
