-- Notifications: how a person wants to hear that a new message is waiting,
-- and the outbox the notifier sends from. A notification never carries
-- content: the outbox holds ids and a state, and the text is the catalog's
-- "you have a new message" in the person's language, made at send time.

-- How a person wants to be told about new messages. No row means no
-- notifications (the default). The addresses are personal data: they are
-- read when a notification is sent and never copied into the outbox or the
-- log, so a changed address is used at once and a deleted one is gone.
CREATE TABLE contact_preferences (
	user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	channel    TEXT NOT NULL DEFAULT 'none' CHECK (channel IN ('none', 'email', 'sms')),
	email      TEXT NOT NULL DEFAULT '',
	sms        TEXT NOT NULL DEFAULT '',  -- a mobile number, E.164 (+4791234567)
	updated_at TIMESTAMP NOT NULL,
	CHECK (channel <> 'email' OR email <> ''),
	CHECK (channel <> 'sms' OR sms <> '')
);

-- One notification to one family member about one conversation. The row is
-- the truth: the notifier claims a row before it sends (attempts + 1, due_at
-- moved past the send timeout, so a crash mid-send is retried later) and
-- marks it sent only after the mail server accepted it.
--
-- seq is the newest message the notification is about: a later message
-- while the row is pending raises it, and the row is dropped if the member
-- has read up to it by the time it is due. last_error says why a row failed
-- or was dropped, in words of our own or the server's reply code; never
-- content, and never an address.
CREATE TABLE outbox (
	id              INTEGER PRIMARY KEY,
	user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
	seq             INTEGER NOT NULL CHECK (seq > 0),
	channel         TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
	due_at          TIMESTAMP NOT NULL,
	state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dropped', 'failed')),
	attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	last_error      TEXT NOT NULL DEFAULT '',
	created_at      TIMESTAMP NOT NULL,
	sent_at         TIMESTAMP
);
-- The worker's query: pending rows by due time.
CREATE INDEX outbox_due_idx ON outbox (state, due_at);
-- At most one pending notification per member and conversation; a new
-- message while one is pending is folded into it. Also the index for the
-- "last sent" lookup behind the half-hour throttle.
CREATE UNIQUE INDEX outbox_one_pending_idx ON outbox (conversation_id, user_id) WHERE state = 'pending';
CREATE INDEX outbox_member_idx ON outbox (conversation_id, user_id, sent_at);
CREATE INDEX outbox_user_idx ON outbox (user_id);
