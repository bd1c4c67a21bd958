-- Auto-replies ask whether staff answered a conversation within a closed
-- period: find its messages by time without reading its whole history.
CREATE INDEX messages_conversation_time_idx ON messages (conversation_id, created_at);
