-- access_version counts changes to what the access rules read: the chat
-- keeps access decisions and audiences in memory, and reuses one only while
-- this number is what it was when the decision was made (portal/access_memo.go).
-- Every table that canUseConversation or the audience query reads bumps it,
-- in the same transaction as the change, so a revoked party or a removed
-- caseworker is refused at the very next frame, on every instance.
-- Adding a table to those rules means adding it here.
CREATE TABLE access_version (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	v  INTEGER NOT NULL
);
INSERT INTO access_version (id, v) VALUES (1, 0);
CREATE TRIGGER access_version_conversations_insert AFTER INSERT ON conversations
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_conversations_delete AFTER DELETE ON conversations
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_conversations_update AFTER UPDATE OF case_id ON conversations
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_cases_insert AFTER INSERT ON cases
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_cases_delete AFTER DELETE ON cases
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_cases_update AFTER UPDATE OF id, team_id ON cases
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_conversation_members_insert AFTER INSERT ON conversation_members
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_conversation_members_delete AFTER DELETE ON conversation_members
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_conversation_members_update AFTER UPDATE OF conversation_id, user_id ON conversation_members
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_parties_insert AFTER INSERT ON parties
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_parties_delete AFTER DELETE ON parties
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_parties_update AFTER UPDATE ON parties
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_case_caseworkers_insert AFTER INSERT ON case_caseworkers
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_case_caseworkers_delete AFTER DELETE ON case_caseworkers
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_case_caseworkers_update AFTER UPDATE ON case_caseworkers
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_users_insert AFTER INSERT ON users
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_users_delete AFTER DELETE ON users
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_users_update AFTER UPDATE OF id, kind, team_id ON users
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_availability_absences_insert AFTER INSERT ON availability_absences
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_availability_absences_delete AFTER DELETE ON availability_absences
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
CREATE TRIGGER access_version_availability_absences_update AFTER UPDATE ON availability_absences
BEGIN UPDATE access_version SET v = v + 1 WHERE id = 1; END;
